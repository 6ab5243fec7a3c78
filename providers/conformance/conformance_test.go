package conformance_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/schema"
)

// envBroken selects the broken provider TestBrokenProvider runs the suite on (in a child process).
const envBroken = "BERTH_CONFORMANCE_BROKEN"

// broken is the fake with one deliberate bug.
type broken struct {
	*fake.Provider
	mode   string
	copies *sync.Map // workload name → the schema.Workload last applied ("stored-copy")
}

func (b broken) Apply(ctx context.Context, d providers.Desired) error {
	if b.mode == "fresh-ids" { // replaces every replica on every Apply
		if err := b.Provider.Delete(ctx, d.Owner, d.Target, d.Workload.Name); err != nil {
			return err
		}
	}
	if b.mode == "stored-copy" {
		b.copies.Store(d.Workload.Name, providers.Normalize(d.Workload))
	}
	return b.Provider.Apply(ctx, d)
}

func (b broken) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	if b.mode == "env-blind-delete" { // deletes the workload of the suite's environment, whatever owner says
		owner.Environment = "dev"
	}
	return b.Provider.Delete(ctx, owner, target, workload)
}

func (b broken) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	obs, err := b.Provider.List(ctx, owner, target)
	for i := range obs {
		switch b.mode {
		case "no-env-readback":
			obs[i].Spec.Env = nil
		case "stored-copy": // reads back what it was asked, not what runs: hand edits are invisible
			if w, ok := b.copies.Load(obs[i].Workload); ok {
				obs[i].Spec = w.(schema.Workload)
				obs[i].Spec.Replicas = len(obs[i].Replicas)
			}
		case "extra-replica": // a stray copy, as a provider creating duplicates would show
			obs[i].Replicas = append(obs[i].Replicas, providers.Replica{ID: "stray", Name: "stray",
				SpecHash: obs[i].SpecHash, State: "running", Running: true})
		}
	}
	return obs, err
}

func harness(p providers.Provider, f *fake.Provider, timeout time.Duration) conformance.Harness {
	edit := func(e func(*schema.Workload)) func(context.Context, *testing.T, string) {
		return func(_ context.Context, t *testing.T, workload string) {
			if err := f.Edit(workload, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return conformance.Harness{
		New:    func(*testing.T) providers.Provider { return p },
		Target: "local",
		Owner:  providers.Owner{Instance: "selftest", Environment: "dev"},
		Image:  "app:1",
		Workload: func(name string) schema.Workload {
			return schema.Workload{Name: name, Image: "app:1", Args: []string{"serve"},
				Env: map[string]string{"GREETING": "hello"}, Replicas: 1,
				Health: &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}}}
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage: edit(func(w *schema.Workload) { w.Image = "app:hand" }),
			conformance.TamperEnv:   edit(func(w *schema.Workload) { w.Env["GREETING"] = "by hand" }),
		},
		Timeout: timeout,
	}
}

// TestBrokenProvider is run by TestSuiteCatchesBrokenProviders in a child process; alone, it skips.
func TestBrokenProvider(t *testing.T) {
	mode := os.Getenv(envBroken)
	if mode == "" {
		t.Skip("helper of TestSuiteCatchesBrokenProviders")
	}
	// Every wait on a broken provider runs out: keep it short (a case timing out spuriously only adds failures).
	f := fake.New()
	conformance.Run(t, harness(broken{Provider: f, mode: mode, copies: &sync.Map{}}, f, 500*time.Millisecond))
}

// TestSuiteCatchesBrokenProviders shows the suite fails where it should: each bug fails the named cases.
func TestSuiteCatchesBrokenProviders(t *testing.T) {
	if os.Getenv(envBroken) != "" {
		t.Skip("in the child process")
	}
	for mode, cases := range map[string][]string{
		"fresh-ids":        {"reapply", "scale"},
		"env-blind-delete": {"ownership"},
		"no-env-readback":  {"status", "create", "fielddrift"},
		"stored-copy":      {"fielddrift"},
		"extra-replica":    {"create", "reapply", "rollout", "scale", "crash", "ownership", "status"},
	} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenProvider$", "-test.v")
			cmd.Env = append(os.Environ(), envBroken+"="+mode)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a provider with bug %q:\n%s", mode, out)
			}
			for _, c := range cases {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenProvider/"+c+" ") {
					t.Errorf("bug %q: case %s did not fail:\n%s", mode, c, out)
				}
			}
		})
	}
}

// TestFakePasses is the control: the unbroken fake passes every case it can run.
func TestFakePasses(t *testing.T) {
	f := fake.New()
	conformance.Run(t, harness(f, f, 30*time.Second))
}
