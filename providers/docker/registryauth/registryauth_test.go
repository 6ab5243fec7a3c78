package registryauth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
)

func TestSameRegistry(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"docker.io", "index.docker.io", true},
		{"https://index.docker.io/v1/", "registry-1.docker.io", true},
		{"GHCR.io", "ghcr.io", true},
		{"127.0.0.1:5000", "127.0.0.1:5000", true},
		{"127.0.0.1:5000", "127.0.0.1:5001", false},
		{"ghcr.io", "docker.io", false},
	} {
		if got := SameRegistry(c.a, c.b); got != c.want {
			t.Errorf("SameRegistry(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestEncode(t *testing.T) {
	a := &providers.RegistryAuth{Server: "reg.example:5000", Username: "ci", Password: []byte("s3cret-value")}
	enc, err := Encode("reg.example:5000/team/app:1", a)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil || got["username"] != "ci" || got["password"] != "s3cret-value" ||
		got["serveraddress"] != "reg.example:5000" {
		t.Fatalf("decoded %v, %v", got, err)
	}
	if enc, err := Encode("app:1", nil); enc != "" || err != nil {
		t.Fatalf("no credential: %q, %v", enc, err)
	}
	_, err = Encode("other.example/app:1", a)
	if err == nil || !strings.Contains(err.Error(), "other.example") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a credential for another registry: %v", err)
	}
}
