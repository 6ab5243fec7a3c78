package registry

import (
	"reflect"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	for _, c := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`, "bearer",
			map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/nginx:pull"}},
		{`Bearer realm="https://r.example/t", scope="repository:a:pull,push", error="insufficient_scope"`, "bearer",
			map[string]string{"realm": "https://r.example/t", "scope": "repository:a:pull,push", "error": "insufficient_scope"}},
		{`Basic realm="Registry Realm"`, "basic", map[string]string{"realm": "Registry Realm"}},
		{`bearer Realm=https://r.example/t,Service=reg`, "bearer", map[string]string{"realm": "https://r.example/t", "service": "reg"}},
		{`Bearer realm="a\"b"`, "bearer", map[string]string{"realm": `a"b`}},
		{``, "", map[string]string{}},
	} {
		scheme, params := parseChallenge(c.in)
		if scheme != c.scheme || !reflect.DeepEqual(params, c.params) {
			t.Errorf("parseChallenge(%q) = %q %v, want %q %v", c.in, scheme, params, c.scheme, c.params)
		}
	}
}
