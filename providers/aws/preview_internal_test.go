package aws

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// The longest names a preview gives (a 40-character workload in pr-2147483647) fit ECS's 255 characters uncut
// under an instance of ordinary length, and are cut deterministically with a hash under a long one; a name that
// fits is never changed (existing deployments keep theirs).
func TestPreviewNames(t *testing.T) {
	workload := "cf-" + strings.Repeat("l", 36) + "x"
	env := schema.PreviewName(2147483647)
	k := wkey{"cf0123abcd", env, "aws-test", workload}
	if got, want := resourceName(k), "berth-cf0123abcd-pr-2147483647-"+workload; got != want {
		t.Errorf("resourceName = %q, want %q uncut", got, want)
	}
	if got := resourceName(wkey{"berth", "staging", "aws", "web"}); got != "berth-berth-staging-web" {
		t.Errorf("a base workload's name changed: %q", got)
	}
	long := wkey{strings.Repeat("i", 230), env, "aws-test", workload}
	a, b := resourceName(long), resourceName(long)
	if a != b || len(a) != maxNameLen || !nameOK(a) {
		t.Errorf("long name %q (%d): not deterministic, not cut to %d or not ECS's characters", a, len(a), maxNameLen)
	}
	other := long
	other.Workload = workload[:len(workload)-1] + "y"
	if resourceName(other) == a {
		t.Errorf("two workloads past the limit share the name %q", a)
	}
	if p := familyPrefix(providers.Owner{Instance: long.Instance, Environment: env}); !strings.HasPrefix(a, p) {
		t.Errorf("the cut name %q does not start with the family prefix %q", a, p)
	}
	if n := smName(k, strings.Repeat("s", 64)); len(n) > maxSecretNameLen {
		t.Errorf("secret name %q longer than %d", n, maxSecretNameLen)
	}
}

func nameOK(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func TestPreviewTagValues(t *testing.T) {
	head := strings.Repeat("ab", 20)
	got := tagMap(previewTags(providers.Owner{Environment: "pr-42", Preview: 42}, &schema.Preview{Number: 42, Head: head}))
	if !reflect.DeepEqual(got, map[string]string{providers.LabelPreview: "42", providers.LabelHead: head}) {
		t.Errorf("preview tags %v", got)
	}
	if got := previewTags(providers.Owner{Environment: "dev"}, nil); got != nil {
		t.Errorf("a base environment's preview tags: %v", got)
	}
	for _, h := range []string{"", "main", "../../etc", strings.Repeat("a", 65), head + " x"} {
		if got := tagMap(previewTags(providers.Owner{Environment: "pr-1", Preview: 1}, &schema.Preview{Head: h})); len(got) != 1 {
			t.Errorf("head %q: tags %v, want the number alone", h, got)
		}
	}
	for v, want := range map[string]int{"42": 42, "2147483647": 2147483647, "": 0, "0": 0, "-3": 0, "042": 0, "+4": 0, "4x": 0, " 4": 0} {
		if got := previewNumber(v); got != want {
			t.Errorf("previewNumber(%q) = %d, want %d", v, got, want)
		}
	}
}

// LabelPublicPorts says which ports are public, with their protocol; a port it does not name reads back internal.
func TestPublicPortsLabel(t *testing.T) {
	ports := []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}, {Port: 53, Protocol: "udp", Public: true},
		{Port: 9090, Protocol: "tcp"}}
	l := publicPorts(ports)
	if l != "8080,53/udp" {
		t.Fatalf("label %q", l)
	}
	got := readPublicPorts(l)
	if !got["8080/tcp"] || !got["53/udp"] || got["9090/tcp"] || got["53/tcp"] || len(got) != 2 {
		t.Errorf("read back %v", got)
	}
	if publicPorts(ports[2:]) != "" {
		t.Error("internal ports make a label")
	}
}
