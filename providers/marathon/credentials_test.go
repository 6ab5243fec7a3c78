package marathon_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
)

// A refused DC/OS token (401) and a missing permission (403) fail a List once, permanent, with Marathon's words
// and what to fix; the token never shows.
func TestRefusedExplained(t *testing.T) {
	hermetic(t)
	const secret = "dcos-secret-token-value"
	o := providers.Owner{Instance: "test", Environment: "dev"}
	for _, c := range []struct {
		name     string
		tokenEnv bool
		token    string
		fault    string
		want     []string
	}{
		{"wrong token", true, "wrong-" + secret, "", []string{`marathon target "m": authentication refused`, "401",
			"BERTH_TEST_TOKEN (settings.tokenEnv) is wrong or expired", "dcos auth login"}},
		{"no token", false, "", "", []string{"authentication refused", "the target sends no DC/OS token",
			"settings.tokenEnv"}},
		{"denied", true, secret, marathonemu.Denied, []string{"permission denied", "403",
			"Not Authorized to perform this action!", "dcos:service:marathon:marathon:services:/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			emu := emulator(t, marathonemu.Options{Token: secret})
			extra := map[string]any{}
			if c.tokenEnv {
				extra["tokenEnv"] = "BERTH_TEST_TOKEN"
				t.Setenv("BERTH_TEST_TOKEN", c.token)
			}
			p := newProvider(t, emu, "m", extra)
			if c.fault != "" {
				emu.Fail(1, c.fault)
			}
			_, err := p.List(ctx(t), o, "m")
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
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the token leaked: %s", err)
			}
		})
	}
}
