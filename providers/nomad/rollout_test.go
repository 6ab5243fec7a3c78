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
)

// watchRollout applies d in the background and looks at the workload through List after every scheduler step
// (the emulator is manual: only the test's Step moves it) until the Apply returns; every look must find a ready
// replica. It returns the Apply's error, how many looks saw a rollout under way (more live
// replicas than the count, or replicas of two spec hashes) and the ready spec hashes seen, in order, without repeats.
func watchRollout(t *testing.T, ctx context.Context, emu *nomademu.Server, p *nomad.Provider, d providers.Desired) (error, int, []string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Apply(ctx, d) }()
	during := 0
	var seen []string
	for looks := 0; ; looks++ {
		select {
		case err := <-done:
			if looks == 0 {
				t.Fatal("the Apply returned before any look")
			}
			return err, during, seen
		default:
		}
		obs, err := p.List(ctx, d.Owner, d.Target)
		if err != nil {
			t.Fatalf("look %d: List: %v", looks, err)
		}
		if len(obs) != 1 {
			t.Fatalf("look %d: %d workloads listed, want 1", looks, len(obs))
		}
		ready, hashes := 0, map[string]bool{}
		for _, r := range obs[0].Replicas {
			hashes[r.SpecHash] = true
			if r.Ready() {
				ready++
				if len(seen) == 0 || seen[len(seen)-1] != r.SpecHash {
					seen = append(seen, r.SpecHash)
				}
			}
		}
		if ready < d.Workload.Replicas {
			t.Fatalf("look %d: %d ready replicas, want %d: %+v", looks, ready, d.Workload.Replicas, obs[0].Replicas)
		}
		if len(obs[0].Replicas) > d.Workload.Replicas || len(hashes) > 1 {
			during++
		}
		emu.Step(1)
	}
}

// manual is an emulator that only the test's Step advances.
func manual(t *testing.T) *nomademu.Server {
	s := nomademu.New(nomademu.Options{Token: testToken, Manual: true})
	t.Cleanup(s.Close)
	return s
}

// applyStepping applies d while stepping the emulator until the Apply returns.
func applyStepping(t *testing.T, ctx context.Context, emu *nomademu.Server, p *nomad.Provider, d providers.Desired) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Apply(ctx, d) }()
	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		default:
			emu.Step(1)
			if err := providers.Sleep(ctx, time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestMakeBeforeBreakOneReplica: a one-replica workload rolls to a new image with a ready allocation at every look
// (the canary runs and turns healthy beside the old allocation, which Nomad stops only after the promotion).
func TestMakeBeforeBreakOneReplica(t *testing.T) {
	hermetic(t)
	emu := manual(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	v1 := referenceWorkload("web")
	v1.Replicas = 1
	if err := applyStepping(t, ctx, emu, p, desired(owner, "nomad", v1)); err != nil {
		t.Fatal(err)
	}
	for i, image := range []string{"registry.example/berth-app:2", "registry.example/berth-app:3"} {
		v := v1
		v.Image = image
		err, during, seen := watchRollout(t, ctx, emu, p, desired(owner, "nomad", v))
		if err != nil {
			t.Fatalf("rollout %d: %v", i+1, err)
		}
		if during == 0 {
			t.Fatalf("rollout %d: no look saw the rollout under way", i+1)
		}
		if order := []string{providers.SpecHash(v1), providers.SpecHash(v)}; len(seen) > 2 || seen[0] != order[0] ||
			len(seen) == 2 && seen[1] != order[1] {
			t.Fatalf("rollout %d: ready versions seen in order %v, want the old one then the new one %v", i+1, seen, order)
		}
		obs, err := p.List(ctx, owner, "nomad")
		if err != nil || len(obs) != 1 || len(obs[0].Replicas) != 1 || !obs[0].Replicas[0].Ready() ||
			obs[0].Spec.Image != image {
			t.Fatalf("rollout %d: after the Apply: %+v, %v; want one ready replica of %s", i+1, obs, err, image)
		}
		v1 = v
	}
	// A change of count alone places no canary: the allocation keeps running, in place.
	before := emu.LiveAllocs(testNamespace, "berth-berth-prod-web")
	v1.Replicas = 2
	if err := applyStepping(t, ctx, emu, p, desired(owner, "nomad", v1)); err != nil {
		t.Fatal(err)
	}
	if after := emu.LiveAllocs(testNamespace, "berth-berth-prod-web"); len(after) != 2 || !contains(after, before[0]) {
		t.Fatalf("scale-up: allocations %v, then %v; want the first kept and one more", before, after)
	}
}

// TestMakeBeforeBreakTwoReplicas: with two replicas, two canaries; two ready allocations at every look.
func TestMakeBeforeBreakTwoReplicas(t *testing.T) {
	hermetic(t)
	emu := manual(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	v1 := referenceWorkload("web")
	if err := applyStepping(t, ctx, emu, p, desired(owner, "nomad", v1)); err != nil {
		t.Fatal(err)
	}
	v2 := v1
	v2.Image = "registry.example/berth-app:2"
	err, during, _ := watchRollout(t, ctx, emu, p, desired(owner, "nomad", v2))
	if err != nil || during == 0 {
		t.Fatalf("rollout: %v, %d looks under way", err, during)
	}
}

// TestCanaryNeverHealthy: a new version whose health checks never pass fails its canary deployment; the old
// version serves at every look and after, and Apply fails permanently, naming the canary and what happened.
func TestCanaryNeverHealthy(t *testing.T) {
	hermetic(t)
	emu := manual(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	v1 := referenceWorkload("web")
	v1.Replicas = 1
	if err := applyStepping(t, ctx, emu, p, desired(owner, "nomad", v1)); err != nil {
		t.Fatal(err)
	}
	old := emu.LiveAllocs(testNamespace, "berth-berth-prod-web")
	v2 := v1
	v2.Image = "registry.example/berth-app:sick"
	emu.FailChecks(v2.Image)
	err, during, seen := watchRollout(t, ctx, emu, p, desired(owner, "nomad", v2))
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply of a never healthy image: %v, want a permanent error", err)
	}
	t.Logf("Apply: %v", err)
	for _, want := range []string{"deployment", "failed", "Failed due to unhealthy allocations", "canary berth-berth-prod-web.app[0]",
		"health checks did not pass", "previous version's allocations kept running"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Apply's error %q does not say %q", err, want)
		}
	}
	if during == 0 {
		t.Error("no look saw the canary")
	}
	for _, h := range seen {
		if h != providers.SpecHash(v1) {
			t.Errorf("a ready replica of %s was seen, want only %s (the canary never turned healthy)", h, providers.SpecHash(v1))
		}
	}
	if now := emu.LiveAllocs(testNamespace, "berth-berth-prod-web"); len(now) != 1 || now[0] != old[0] {
		t.Fatalf("live allocations %v after the failed canary, want the old one %v alone", now, old)
	}
	obs, err := p.List(ctx, owner, "nomad")
	if err != nil || len(obs) != 1 || len(obs[0].Replicas) != 1 || !obs[0].Replicas[0].Ready() ||
		obs[0].Spec.Image != v1.Image || obs[0].SpecHash != providers.SpecHash(v1) {
		t.Fatalf("after the failed canary: %+v, %v; want v1 serving (Nomad reverted the job)", obs, err)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestRollsInPlaceToCanaries: a job whose update stanza places no canaries (as an older berth registered it) is
// registered again with berth's, in place: the allocations keep running.
func TestRollsInPlaceToCanaries(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ctx := testCtx(t)
	w := referenceWorkload("web")
	if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	jobs := operator(t, emu).Jobs()
	j, _, err := jobs.Info("berth-berth-prod-web", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*api.UpdateStrategy{j.Update, j.TaskGroups[0].Update} {
		u.Canary, u.AutoPromote = new(0), new(false)
	}
	if _, _, err := jobs.Register(j, nil); err != nil {
		t.Fatal(err)
	}
	before := emu.LiveAllocs(testNamespace, "berth-berth-prod-web")
	if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	j, _, err = jobs.Info("berth-berth-prod-web", nil)
	if err != nil || *j.TaskGroups[0].Update.Canary != 2 || !*j.TaskGroups[0].Update.AutoPromote {
		t.Fatalf("update stanza after the Apply: %+v, %v; want canary 2 and auto_promote", j.TaskGroups[0].Update, err)
	}
	if after := emu.LiveAllocs(testNamespace, "berth-berth-prod-web"); !reflect.DeepEqual(after, before) {
		t.Fatalf("allocations %v, then %v; want them kept (an in-place update)", before, after)
	}
}
