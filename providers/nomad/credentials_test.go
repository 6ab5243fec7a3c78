package nomad_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
)

// A refused ACL token fails a plan-time List once, permanent, with Nomad's words and how to fix the token; the
// token itself never shows.
func TestPermissionDeniedExplained(t *testing.T) {
	hermetic(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	for _, c := range []struct {
		name     string
		tokenEnv bool
		want     []string
	}{
		{"wrong token", true, []string{`nomad target "nomad": permission denied`, "403", "Permission denied",
			testTokenEnv + " (settings.tokenEnv) is unknown, expired", "nomad acl token self", `namespace "berth"`}},
		{"no token", false, []string{"permission denied", "the target sends no ACL token", "settings.tokenEnv",
			"nomad acl token create"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(testTokenEnv, "wrong-secret-token")
			emu := emulator(t)
			tgt := target("nomad", emu.URL())
			if !c.tokenEnv {
				delete(tgt.Settings, "tokenEnv")
			}
			pr, err := providers.New(tgt, providers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = pr.List(testCtx(t), owner, "nomad")
			if !errors.Is(err, providers.ErrPermanent) {
				t.Fatalf("List = %v, want permanent", err)
			}
			if n := len(emu.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), "wrong-secret-token") {
				t.Errorf("the token leaked: %s", err)
			}
		})
	}
}
