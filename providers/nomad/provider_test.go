package nomad_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/nomad"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/schema"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func desired(owner providers.Owner, tgt string, w schema.Workload) providers.Desired {
	return providers.Desired{Owner: owner, Target: tgt, Workload: w, SpecHash: providers.SpecHash(w)}
}

// TestErrors: what comes back permanent and what is retried, and that no token leaks into an error.
func TestErrors(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := referenceWorkload("web")

	t.Run("permission denied", func(t *testing.T) {
		t.Setenv(testTokenEnv, "wrong-secret-token")
		p := newProvider(t, emu, "nomad")
		err := p.Apply(testCtx(t), desired(owner, "nomad", w))
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("Apply with a wrong token: %v, want a permanent 403", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-token") {
			t.Fatalf("the token leaked into the error: %v", err)
		}
	})
	t.Run("invalid job", func(t *testing.T) {
		p := newProvider(t, emu, "nomad")
		bad := w
		bad.Image = ""
		err := p.Apply(testCtx(t), desired(owner, "nomad", bad))
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "image is required") ||
			!strings.Contains(err.Error(), "500") {
			t.Fatalf("Apply of a job without image: %v, want Nomad's validation refusal (a 500) as permanent", err)
		}
	})
	t.Run("transient budget", func(t *testing.T) {
		p := newProvider(t, emu, "nomad")
		p.RetryAttempts = 3
		emu.Fail(3, nomademu.ServerError)
		_, err := p.List(testCtx(t), owner, "nomad")
		if err == nil || errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "after 3 tries") {
			t.Fatalf("List through 3 server errors with 3 tries: %v, want a transient error", err)
		}
		emu.Fail(2, nomademu.RateLimited)
		if _, err := p.List(testCtx(t), owner, "nomad"); err != nil {
			t.Fatalf("List through 2 rate limits with 3 tries: %v", err)
		}
	})
}

func TestNotOwned(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	emu.CreateLookAlike(testNamespace, "berth-berth-prod-web", 1) // our name, no meta
	ctx := testCtx(t)
	for op, err := range map[string]error{
		"Apply":  p.Apply(ctx, desired(owner, "nomad", referenceWorkload("web"))),
		"Delete": p.Delete(ctx, owner, "nomad", "web"),
	} {
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "not owned") {
			t.Errorf("%s over an unowned job: %v, want a permanent not-owned error", op, err)
		}
	}
	if !emu.JobExists(testNamespace, "berth-berth-prod-web") {
		t.Fatal("the unowned job was removed")
	}
	if obs, err := p.List(ctx, owner, "nomad"); err != nil || len(obs) != 0 {
		t.Fatalf("List shows %v, %v; want nothing", obs, err)
	}
}

// TestFailedRollout: a new version whose allocations fail makes Nomad fail the deployment and revert; Apply says so
// permanently, and the old version keeps serving.
func TestFailedRollout(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	v1 := referenceWorkload("web")
	if err := p.Apply(ctx, desired(owner, "nomad", v1)); err != nil {
		t.Fatal(err)
	}
	v2 := v1
	v2.Image = "registry.example/berth-app:broken"
	emu.FailImage(v2.Image)
	err := p.Apply(ctx, desired(owner, "nomad", v2))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("Apply of a failing image: %v, want a permanent deployment failure", err)
	}
	// Nomad reverted: v1 converges again without berth re-registering it.
	if err := p.Apply(ctx, desired(owner, "nomad", v1)); err != nil {
		t.Fatal(err)
	}
	obs, err := p.List(ctx, owner, "nomad")
	if err != nil || len(obs) != 1 || obs[0].SpecHash != providers.SpecHash(v1) || obs[0].Spec.Image != v1.Image {
		t.Fatalf("after the revert: %+v, %v", obs, err)
	}
}

func TestPlan(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	w := referenceWorkload("web")
	changes, err := p.Plan(ctx, desired(owner, "nomad", w))
	if err != nil || len(changes) == 0 || changes[0].Type != "Added" {
		t.Fatalf("Plan of a new job: %v, %v; want added fields", changes, err)
	}
	if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	if changes, err := p.Plan(ctx, desired(owner, "nomad", w)); err != nil || len(changes) != 0 {
		t.Fatalf("Plan of the applied spec: %v, %v; want no change", changes, err)
	}
	before := len(emu.LiveAllocs(testNamespace, "berth-berth-prod-web"))
	w.Replicas = 3
	changes, err = p.Plan(ctx, desired(owner, "nomad", w))
	// The count, and the canaries of the update block with it (canary = count: make before break for any count).
	wantChanges := []nomad.Change{
		{Type: "Edited", Path: "TaskGroups[0].Count", Old: "2", New: "3"},
		{Type: "Edited", Path: "TaskGroups[0].Update.Canary", Old: "2", New: "3"},
		{Type: "Edited", Path: "Update.Canary", Old: "2", New: "3"},
	}
	if err != nil || !reflect.DeepEqual(changes, wantChanges) {
		t.Fatalf("Plan of a scale-up: %+v, %v; want %+v", changes, err, wantChanges)
	}
	if n := len(emu.LiveAllocs(testNamespace, "berth-berth-prod-web")); n != before {
		t.Fatalf("Plan changed what runs: %d allocations, then %d", before, n)
	}
}

// TestReadBack: what List reads from the live job equals the desired workload in the provider's read-back form, for
// the mappings that lose something (defaults, MB rounding, port labels, a check on an undeclared port, a script
// check): an untouched workload plans empty.
func TestReadBack(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	for _, c := range []struct {
		name string
		edit func(*schema.Workload)
	}{
		{"reference", func(*schema.Workload) {}},
		{"no resources", func(w *schema.Workload) { w.Resources = schema.Resources{} }},
		{"odd memory", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 1500, MemoryBytes: 128e6} }},
		{"unnamed and internal ports", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 8080, Public: true}, {Name: "metrics-port", Port: 9100, Protocol: "udp"}}
		}},
		{"check on an undeclared port", func(w *schema.Workload) {
			w.Health.HTTP = nil
			w.Health.TCP = &schema.TCPCheck{Port: 8081}
		}},
		{"script check", func(w *schema.Workload) {
			w.Health.HTTP, w.Health.Command = nil, []string{"/app", "healthcheck", "--quick"}
			w.Health.StartPeriod = schema.Duration(10 * time.Second)
		}},
		{"command and no health", func(w *schema.Workload) { w.Command, w.Health = []string{"/bin/app", "-v"}, nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := referenceWorkload(strings.ReplaceAll(c.name, " ", "-"))
			c.edit(&w)
			if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
				t.Fatal(err)
			}
			obs, err := p.List(ctx, owner, "nomad")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range obs {
				if o.Workload != w.Name {
					continue
				}
				want := providers.Normalize(p.Normalize(providers.Normalize(w)))
				got := providers.Normalize(o.Spec)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
				}
				return
			}
			t.Fatalf("%s not listed", w.Name)
		})
	}
}

// TestRepairKeepsForeignMeta: a field edited by hand is put back by Apply although the hash meta still matches, and
// the meta key and the docker config key someone else added survive the register.
func TestRepairKeepsForeignMeta(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	w := referenceWorkload("web")
	if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(&api.Config{Address: emu.URL(), SecretID: testToken, Namespace: testNamespace})
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := c.Jobs().Info("berth-berth-prod-web", nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Meta["team"] = "payments"
	j.TaskGroups[0].Tasks[0].Env["GREETING"] = "by hand"
	j.TaskGroups[0].Tasks[0].Config["hostname"] = "web-by-hand"
	if _, _, err := c.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	j, _, err = c.Jobs().Info("berth-berth-prod-web", nil)
	if err != nil || j.TaskGroups[0].Tasks[0].Env["GREETING"] != "hello" || j.Meta["team"] != "payments" ||
		j.TaskGroups[0].Tasks[0].Config["hostname"] != "web-by-hand" {
		t.Fatalf("after the repair: env %v, meta %v, config %v, %v; want GREETING put back, team and hostname kept",
			j.TaskGroups[0].Tasks[0].Env, j.Meta, j.TaskGroups[0].Tasks[0].Config, err)
	}
}
