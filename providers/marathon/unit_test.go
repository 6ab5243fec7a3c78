package marathon_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string // substring of the error; "" = valid
	}{
		{"minimal", map[string]any{"address": "http://m:8080"}, ""},
		{"all", map[string]any{"address": "https://dcos.example/service/marathon/", "group": "/team/berth", "force": true, "tokenEnv": "DCOS_TOKEN"}, ""},
		{"missing address", map[string]any{}, "settings.address: required"},
		{"bad scheme", map[string]any{"address": "tcp://m:8080"}, "settings.address: want an http"},
		{"relative group", map[string]any{"address": "http://m", "group": "berth"}, "settings.group: want an absolute"},
		{"upper-case group", map[string]any{"address": "http://m", "group": "/Berth"}, `settings.group: segment "Berth"`},
		{"force not bool", map[string]any{"address": "http://m", "force": "yes"}, "settings.force: want a bool"},
		{"bad token variable", map[string]any{"address": "http://m", "tokenEnv": "not a name"}, "settings.tokenEnv"},
		{"unknown", map[string]any{"address": "http://m", "region": "x"}, "settings.region: unknown setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := schema.Target{Name: "m", Type: "marathon", Settings: tc.set, Pos: schema.Pos{File: "berth.cue", Line: 3, Column: 2}}
			_, err := providers.New(tg, providers.Options{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), "berth.cue:3:2: "):
				t.Fatalf("error %q does not name the file and line", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	p, err := marathon.NewWithHTTPClient(target("m", "http://m", nil), nil, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := referenceWorkload("web")
	if ps := p.Validate(w); len(ps) != 0 {
		t.Fatalf("reference workload: %v", ps)
	}
	w.Health.HTTP.Port = 9090
	if ps := p.Validate(w); len(ps) != 1 || ps[0].Field != "health.http.port" {
		t.Fatalf("health on an undeclared port: %v", ps)
	}
}

func desired(o providers.Owner, tgt string, w schema.Workload) providers.Desired {
	return providers.Desired{Owner: o, Target: tgt, Workload: w, SpecHash: providers.SpecHash(w)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestNotOwned: an app at berth's id without berth's labels is neither adopted nor deleted.
func TestNotOwned(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "m", nil)
	o := providers.Owner{Instance: "i1", Environment: "dev"}
	emu.CreateLookAlike("/berth/i1/dev/web", 1)
	err := p.Apply(ctx(t), desired(o, "m", referenceWorkload("web")))
	if !errors.Is(err, marathon.ErrNotOwned) || !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply over an unowned app: %v", err)
	}
	err = p.Delete(ctx(t), o, "m", "web")
	if !errors.Is(err, marathon.ErrNotOwned) || !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Delete of an unowned app: %v", err)
	}
	if !emu.AppExists("/berth/i1/dev/web") {
		t.Fatal("the unowned app is gone")
	}
	if obs, err := p.List(ctx(t), o, "m"); err != nil || len(obs) != 0 {
		t.Fatalf("List = %v, %v", obs, err)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrors(t *testing.T) {
	hermetic(t)
	o := providers.Owner{Instance: "i1", Environment: "dev"}
	t.Run("invalid app is permanent with details", func(t *testing.T) {
		emu := emulator(t, marathonemu.Options{})
		p := newProvider(t, emu, "m", nil)
		w := referenceWorkload("web")
		w.Replicas = -1
		err := p.Apply(ctx(t), desired(o, "m", w))
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "/instances") {
			t.Fatalf("Apply: %v", err)
		}
	})
	t.Run("invalid id segment", func(t *testing.T) {
		emu := emulator(t, marathonemu.Options{})
		p := newProvider(t, emu, "m", nil)
		err := p.Apply(ctx(t), desired(providers.Owner{Instance: "I_1", Environment: "dev"}, "m", referenceWorkload("web")))
		if !errors.Is(err, providers.ErrPermanent) || len(emu.Requests()) != 0 {
			t.Fatalf("Apply: %v after %d requests", err, len(emu.Requests()))
		}
	})
	t.Run("server errors beyond the budget are transient", func(t *testing.T) {
		emu := emulator(t, marathonemu.Options{})
		p := newProvider(t, emu, "m", nil)
		emu.Fail(100, marathonemu.Unavailable)
		err := p.Apply(ctx(t), desired(o, "m", referenceWorkload("web")))
		if err == nil || errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Apply: %v", err)
		}
		if n := len(emu.Requests()); n != marathon.DefaultRetryAttempts {
			t.Fatalf("%d requests, want %d tries", n, marathon.DefaultRetryAttempts)
		}
	})
	t.Run("token", func(t *testing.T) {
		const secret = "very-secret-token"
		emu := emulator(t, marathonemu.Options{Token: secret})
		p := newProvider(t, emu, "m", map[string]any{"tokenEnv": "BERTH_TEST_TOKEN"})
		t.Setenv("BERTH_TEST_TOKEN", "")
		if _, err := p.List(ctx(t), o, "m"); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "BERTH_TEST_TOKEN") {
			t.Fatalf("List without a token: %v", err)
		}
		t.Setenv("BERTH_TEST_TOKEN", "wrong-"+secret)
		_, err := p.List(ctx(t), o, "m")
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), secret) {
			t.Fatalf("List with a wrong token: %v", err)
		}
		t.Setenv("BERTH_TEST_TOKEN", secret)
		if _, err := p.List(ctx(t), o, "m"); err != nil {
			t.Fatalf("List with the token: %v", err)
		}
	})
}

// TestListFilters: only apps of the owner's environment and this target, at the id berth gives them, are listed.
func TestListFilters(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	o := providers.Owner{Instance: "i1", Environment: "dev"}
	a := newProvider(t, emu, "a", nil)
	b := newProvider(t, emu, "b", map[string]any{"group": "/other"})
	w := referenceWorkload("web")
	w.Replicas = 1
	for _, p := range []*marathon.Provider{a, b} {
		if err := p.Apply(ctx(t), desired(o, map[*marathon.Provider]string{a: "a", b: "b"}[p], w)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Apply(ctx(t), desired(providers.Owner{Instance: "i1", Environment: "prod"}, "a", w)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    *marathon.Provider
		tgt  string
		want string
	}{{a, "a", "/berth"}, {b, "b", "/other"}} {
		obs, err := tc.p.List(ctx(t), o, tc.tgt)
		if err != nil || len(obs) != 1 || obs[0].Workload != "web" || obs[0].Target != tc.tgt || len(obs[0].Replicas) != 1 {
			t.Fatalf("List on %s = %+v, %v", tc.tgt, obs, err)
		}
		if !strings.HasPrefix(obs[0].Replicas[0].ID, strings.TrimPrefix(tc.want, "/")+"_i1_dev_web.") {
			t.Fatalf("List on %s shows task %s", tc.tgt, obs[0].Replicas[0].ID)
		}
	}
	// Another target's name with our group: not listed.
	if obs, err := a.List(ctx(t), o, "b"); err != nil || len(obs) != 0 {
		t.Fatalf("List as target b through group /berth = %+v, %v", obs, err)
	}
}
