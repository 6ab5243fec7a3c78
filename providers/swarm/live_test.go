package swarm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// TestLive creates, scales, reads and deletes one small workload on a real swarm. It runs only with
// BERTH_LIVE_SWARM_HOST (a manager's engine, DOCKER_HOST syntax; TLS from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)
// and BERTH_LIVE_SWARM_IMAGE (an image every node can pull, run with its own entrypoint) set.
func TestLive(t *testing.T) {
	host, image := os.Getenv("BERTH_LIVE_SWARM_HOST"), os.Getenv("BERTH_LIVE_SWARM_IMAGE")
	if host == "" || image == "" {
		t.Skip("set BERTH_LIVE_SWARM_HOST and BERTH_LIVE_SWARM_IMAGE to run")
	}
	const target = "swarm-live"
	p, err := providers.New(schema.Target{Name: target, Type: "swarm", Settings: map[string]any{"host": host}}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.(providers.Closer).Close() })
	var b [3]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "live" + hex.EncodeToString(b[:]), Environment: "test"}
	w := schema.Workload{Name: "app", Image: image, Replicas: 1, Env: map[string]string{"BERTH_LIVE": "1"},
		Resources: schema.Resources{CPUMillis: 100, MemoryBytes: 64 << 20}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := p.Delete(ctx, owner, target, w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	for _, n := range []int{1, 2} {
		w.Replicas = n
		d := providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("Apply (%d replicas): %v", n, err)
		}
		obs, err := p.List(ctx, owner, target)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(obs) != 1 || obs[0].SpecHash != d.SpecHash || len(obs[0].Replicas) != n || obs[0].Spec.Image != image {
			t.Fatalf("List = %+v", obs)
		}
	}
}
