package marathon_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/schema"
)

// TestLive creates, reads, scales and deletes one small app on a real Marathon. It runs only with
// BERTH_LIVE_MARATHON_ADDRESS set (e.g. https://dcos.example/service/marathon); optional
// BERTH_LIVE_MARATHON_GROUP (default /berth-live), BERTH_LIVE_MARATHON_TOKEN_ENV (the name of a variable holding
// a DC/OS token) and BERTH_LIVE_MARATHON_IMAGE (default busybox:stable, which the agents must be able to pull).
func TestLive(t *testing.T) {
	addr := os.Getenv("BERTH_LIVE_MARATHON_ADDRESS")
	if addr == "" {
		t.Skip("set BERTH_LIVE_MARATHON_ADDRESS to run")
	}
	settings := map[string]any{"address": addr, "group": "/berth-live"}
	if v := os.Getenv("BERTH_LIVE_MARATHON_GROUP"); v != "" {
		settings["group"] = v
	}
	if v := os.Getenv("BERTH_LIVE_MARATHON_TOKEN_ENV"); v != "" {
		settings["tokenEnv"] = v
	}
	image := os.Getenv("BERTH_LIVE_MARATHON_IMAGE")
	if image == "" {
		image = "busybox:stable"
	}
	pr, err := providers.New(schema.Target{Name: "marathon-live", Type: "marathon", Settings: settings}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*marathon.Provider)
	var b [3]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "live" + hex.EncodeToString(b[:]), Environment: "test"}
	w := schema.Workload{Name: "sleeper", Image: image, Command: []string{"sleep"}, Args: []string{"3600"}, Replicas: 1,
		Resources: schema.Resources{CPUMillis: 100, MemoryBytes: 32 << 20}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := p.Delete(ctx, owner, "marathon-live", w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	for _, n := range []int{1, 2} {
		w.Replicas = n
		d := providers.Desired{Owner: owner, Target: "marathon-live", Workload: w, SpecHash: providers.SpecHash(w)}
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("Apply (%d replicas): %v", n, err)
		}
		obs, err := p.List(ctx, owner, "marathon-live")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(obs) != 1 || obs[0].SpecHash != d.SpecHash || len(obs[0].Replicas) != n || obs[0].Spec.Image != image {
			t.Fatalf("List = %+v", obs)
		}
	}
}
