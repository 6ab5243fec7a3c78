package conformance_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	copies *sync.Map     // workload name → the schema.Workload last applied ("stored-copy")
	gaps   *sync.Map     // workload name → a channel closed once a List missed the workload ("break-before-make")
	lists  *atomic.Int64 // Lists so far ("moving-endpoint")
}

func (b broken) Apply(ctx context.Context, d providers.Desired) error {
	if b.mode == "fresh-ids" { // replaces every replica on every Apply
		if err := b.Provider.Delete(ctx, d.Owner, d.Target, d.Workload.Name); err != nil {
			return err
		}
	}
	if b.mode == "break-before-make" { // a rollout removes the old replicas, then (once a List saw the gap) starts new ones
		obs, err := b.Provider.List(ctx, d.Owner, d.Target)
		if err != nil {
			return err
		}
		for _, o := range obs {
			if o.Workload == d.Workload.Name && o.SpecHash != d.SpecHash {
				if err := b.Provider.Delete(ctx, d.Owner, d.Target, d.Workload.Name); err != nil {
					return err
				}
				seen := make(chan struct{})
				b.gaps.Store(d.Workload.Name, seen)
				select {
				case <-seen:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
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
	if b.mode == "break-before-make" && err == nil {
		b.gaps.Range(func(name, seen any) bool {
			if !slices.ContainsFunc(obs, func(o providers.Observed) bool { return o.Workload == name }) {
				if _, mine := b.gaps.LoadAndDelete(name); mine { // another List may have closed it already
					close(seen.(chan struct{}))
				}
			}
			return true
		})
	}
	for i := range obs {
		switch b.mode {
		case "no-endpoints":
			obs[i].Endpoints = nil
		case "moving-endpoint": // a new address at every look, as a provider reporting a task's ephemeral port would
			n := b.lists.Add(1)
			for j := range obs[i].Endpoints {
				obs[i].Endpoints[j].Address = fmt.Sprintf("127.0.0.1:%d", 20000+n%10000)
			}
		case "ignores-health": // reports the replicas healthy whatever their check says
			for j := range obs[i].Replicas {
				obs[i].Replicas[j].Health = "healthy"
			}
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
	f.SetHealth(func(w schema.Workload) bool { return w.Health == nil || w.Health.HTTP.Path != "/nonexistent" })
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
				Ports:  []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}},
				Health: &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}}}
		},
		Unhealthy: func(w schema.Workload) schema.Workload {
			w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/nonexistent", Port: 8080}}
			return w
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
	b := broken{Provider: f, mode: mode, copies: &sync.Map{}, gaps: &sync.Map{}, lists: &atomic.Int64{}}
	conformance.Run(t, harness(b, f, 500*time.Millisecond))
}

// TestSuiteCatchesBrokenProviders shows the suite fails where it should: each bug fails the named cases.
func TestSuiteCatchesBrokenProviders(t *testing.T) {
	if os.Getenv(envBroken) != "" {
		t.Skip("in the child process")
	}
	for mode, cases := range map[string][]string{
		"fresh-ids":         {"reapply", "scale"},
		"env-blind-delete":  {"ownership"},
		"no-env-readback":   {"status", "create", "fielddrift"},
		"stored-copy":       {"fielddrift"},
		"extra-replica":     {"create", "reapply", "rollout", "scale", "crash", "ownership", "status"},
		"no-endpoints":      {"endpoint"},
		"moving-endpoint":   {"endpoint"},
		"break-before-make": {"mbb1", "healthhold"},
		"ignores-health":    {"healthhold"},
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
