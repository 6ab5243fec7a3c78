package swarm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

// testOwner is a unique owner per test, its resources swept at cleanup.
func testOwner(t *testing.T) providers.Owner {
	var b [4]byte
	rand.Read(b[:])
	return providers.Owner{Instance: "it" + hex.EncodeToString(b[:]), Environment: "dev"}
}

func workerWorkload(name string) schema.Workload {
	w := referenceWorkload(name)
	w.Image = testImage
	w.Ports = nil // internal only: no published port to collide with
	w.Resources = schema.Resources{}
	w.Replicas = 1
	return w
}

// TestUnownedServiceWithOurName: a service named like ours but without our labels is neither adopted nor changed.
func TestUnownedServiceWithOurName(t *testing.T) {
	cli := swarmClient(t)
	testImages(t, cli)
	owner := testOwner(t)
	t.Cleanup(func() { sweep(t, cli, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	exists := lookAlike(ctx, t, cli, berthswarm.ServiceName(owner, "web"))
	p := newTestProvider(t, cli, "swarm-it", owner.Instance)
	w := workerWorkload("web")
	err := p.Apply(ctx, providers.Desired{Owner: owner, Target: "swarm-it", Workload: w, SpecHash: providers.SpecHash(w)})
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "not owned") {
		t.Fatalf("Apply over an unowned service: %v, want a permanent not-owned error", err)
	}
	if err := p.Delete(ctx, owner, "swarm-it", "web"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if !exists() {
		t.Fatal("the unowned service is gone")
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, berthswarm.ServiceName(owner, "web"), swarm.ServiceInspectOptions{})
	if err != nil || len(svc.Spec.Labels) != 0 || svc.Version.Index != svc.Meta.Version.Index || svc.UpdateStatus != nil {
		t.Fatalf("the unowned service was changed: %+v, %v", svc.Spec.Labels, err)
	}
}

// TestStaleVersion checks what the provider relies on: the engine refuses an update with a stale Version with an
// error isSequenceConflict recognises (it then re-reads and retries).
func TestStaleVersion(t *testing.T) {
	cli := swarmClient(t)
	testImages(t, cli)
	owner := testOwner(t)
	t.Cleanup(func() { sweep(t, cli, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	p := newTestProvider(t, cli, "swarm-it", owner.Instance)
	w := workerWorkload("web")
	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: "swarm-it", Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, berthswarm.ServiceName(owner, "web"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec
	if _, err := cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}) // stale now
	if !berthswarm.IsSequenceConflict(err) {
		t.Fatalf("update with a stale version: %v (%T), not recognised as a sequence conflict", err, err)
	}
	t.Logf("stale version error: %v", err)
}

// TestTransientFaults: 503 answers beyond the retry budget fail Apply with a retryable error; the next Apply
// converges.
func TestTransientFaults(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	cli, inject := faultyClient(t, base)
	owner := testOwner(t)
	t.Cleanup(func() { sweep(t, base, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	p := newTestProvider(t, cli, "swarm-it", owner.Instance)
	p.RetryAttempts = 3
	w := workerWorkload("web")
	d := providers.Desired{Owner: owner, Target: "swarm-it", Workload: w, SpecHash: providers.SpecHash(w)}
	if _, err := p.List(ctx, owner, "swarm-it"); err != nil { // settles the API version: Ping spends faults its own way
		t.Fatal(err)
	}
	inject(3)
	err := p.Apply(ctx, d)
	if err == nil || errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "still failing after 3 tries") {
		t.Fatalf("Apply through 3 faults with 3 tries: %v, want a retryable error", err)
	}
	inject(2)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply through 2 faults with 3 tries: %v", err)
	}
}

// TestFailedRolloutKeepsOldVersion: a new spec whose tasks crash makes swarm roll back; Apply reports it and the
// old version still runs (make before break).
func TestFailedRolloutKeepsOldVersion(t *testing.T) {
	cli := swarmClient(t)
	testImages(t, cli)
	owner := testOwner(t)
	t.Cleanup(func() { sweep(t, cli, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	p := newTestProvider(t, cli, "swarm-it", owner.Instance)
	w := workerWorkload("web")
	w.Replicas = 2
	v1 := providers.Desired{Owner: owner, Target: "swarm-it", Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatal(err)
	}
	bad := w
	bad.Args = []string{"no-such-mode"} // the app exits 1 at once
	v2 := providers.Desired{Owner: owner, Target: "swarm-it", Workload: bad, SpecHash: providers.SpecHash(bad)}
	err := p.Apply(ctx, v2)
	if err == nil {
		t.Fatal("Apply of a crashing spec succeeded")
	}
	t.Logf("failed rollout: %v", err)
	waitCond(t, ctx, "the old version to serve again", func() (bool, error) {
		obs, err := p.List(ctx, owner, "swarm-it")
		if err != nil || len(obs) != 1 {
			return false, err
		}
		ready := 0
		for _, r := range obs[0].Replicas {
			if r.SpecHash == v1.SpecHash && r.Ready() {
				ready++
			}
		}
		return ready == 2 && len(obs[0].Replicas) == 2 && obs[0].SpecHash == v1.SpecHash, nil
	})
}
