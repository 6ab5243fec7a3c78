package fake

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func TestFakeLifecycle(t *testing.T) {
	ctx := context.Background()
	p := New()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := schema.Workload{Name: "web", Provider: "local", Image: "app:1", Replicas: 2,
		Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}}}
	d := providers.Desired{Owner: owner, Target: "local", Workload: w, SpecHash: providers.SpecHash(w)}

	p.FailNext("web", 1, true)
	if err := p.Apply(ctx, d); !errors.Is(err, providers.ErrPermanent) || !errors.Is(err, ErrInjected) {
		t.Fatalf("injected failure = %v", err)
	}
	if os, _ := p.List(ctx, owner, "local"); len(os) != 0 {
		t.Fatal("a failed apply changed state")
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	os, _ := p.List(ctx, owner, "local")
	if len(os) != 1 || len(os[0].Replicas) != 2 || !os[0].Replicas[1].Ready() || os[0].SpecHash != d.SpecHash || os[0].Spec.Image != "app:1" {
		t.Fatalf("observed = %+v", os)
	}
	if os, _ := p.List(ctx, providers.Owner{Instance: "berth", Environment: "staging"}, "local"); len(os) != 0 {
		t.Error("another environment sees prod's workload")
	}
	if err := p.StopReplica("web", 0); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveReplica("web", 1); err != nil {
		t.Fatal(err)
	}
	os, _ = p.List(ctx, owner, "local")
	if len(os[0].Replicas) != 1 || os[0].Replicas[0].Running {
		t.Fatalf("drift not visible: %+v", os[0].Replicas)
	}
	if err := p.Delete(ctx, owner, "local", "web"); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, owner, "local", "web"); err != nil {
		t.Fatalf("deleting what is gone: %v", err)
	}
	var ops []string
	for _, c := range p.Calls(true) {
		ops = append(ops, c.Op)
	}
	if got := len(ops); got != 8 {
		t.Errorf("calls = %v", ops)
	}
}

func TestFakeHoldRespectsContext(t *testing.T) {
	p := New()
	release := p.Hold("web")
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := schema.Workload{Name: "web", Replicas: 1}
	err := p.Apply(ctx, providers.Desired{Target: "local", Workload: w})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("held apply with cancelled context = %v", err)
	}
}

func TestRegister(t *testing.T) {
	Register()
	Register() // idempotent
	pr, err := providers.New(schema.Target{Name: "t1", Type: Type}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pr != Lookup("t1") {
		t.Error("registry instance differs from Lookup")
	}
}

func TestFakeUnhealthyRolloutKeepsTheOldReplicas(t *testing.T) {
	ctx := context.Background()
	p := New()
	p.SetHealth(func(w schema.Workload) bool { return w.Image != "app:sick" })
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	desired := func(image string) providers.Desired {
		w := schema.Workload{Name: "web", Image: image, Replicas: 2, Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}}}
		return providers.Desired{Owner: owner, Target: "local", Workload: w, SpecHash: providers.SpecHash(w)}
	}
	v1, v2 := desired("app:1"), desired("app:sick")
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatal(err)
	}
	before, _ := p.List(ctx, owner, "local")
	if err := p.Apply(ctx, v2); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("Apply of a failing version = %v, want ErrUnhealthy", err)
	}
	obs, _ := p.List(ctx, owner, "local")
	if len(obs) != 1 || obs[0].SpecHash != v1.SpecHash || obs[0].Spec.Image != "app:1" || len(obs[0].Replicas) != 4 {
		t.Fatalf("after the failing apply: %+v", obs)
	}
	for _, r := range obs[0].Replicas {
		if want := r.SpecHash == v1.SpecHash; r.Ready() != want {
			t.Errorf("replica %s of %s: ready %t, want %t", r.Name, r.SpecHash, r.Ready(), want)
		}
	}
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatal(err)
	}
	after, _ := p.List(ctx, owner, "local")
	if len(after[0].Replicas) != 2 || after[0].Replicas[0].ID != before[0].Replicas[0].ID || after[0].Replicas[1].ID != before[0].Replicas[1].ID {
		t.Fatalf("applying the old version again: %+v, want the replicas of %+v", after[0].Replicas, before[0].Replicas)
	}
}
