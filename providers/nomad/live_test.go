package nomad_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/nomad"
	"github.com/berth-dev/berth/schema"
)

// TestLive creates, reads, scales and deletes one small workload on a real Nomad cluster with the docker driver.
// It runs only with BERTH_LIVE_NOMAD_ADDR set; optional BERTH_LIVE_NOMAD_TOKEN (the ACL token), _REGION,
// _NAMESPACE, _DATACENTERS (comma separated) and _IMAGE (default busybox:stable, which the clients must be able to
// pull).
func TestLive(t *testing.T) {
	addr := os.Getenv("BERTH_LIVE_NOMAD_ADDR")
	if addr == "" {
		t.Skip("set BERTH_LIVE_NOMAD_ADDR (and BERTH_LIVE_NOMAD_TOKEN with ACLs) to run")
	}
	settings := map[string]any{"address": addr}
	if os.Getenv("BERTH_LIVE_NOMAD_TOKEN") != "" {
		settings["tokenEnv"] = "BERTH_LIVE_NOMAD_TOKEN"
	}
	for _, k := range []string{"region", "namespace"} {
		if v := os.Getenv("BERTH_LIVE_NOMAD_" + strings.ToUpper(k)); v != "" {
			settings[k] = v
		}
	}
	if v := os.Getenv("BERTH_LIVE_NOMAD_DATACENTERS"); v != "" {
		var dcs []any
		for _, dc := range strings.Split(v, ",") {
			dcs = append(dcs, strings.TrimSpace(dc))
		}
		settings["datacenters"] = dcs
	}
	image := os.Getenv("BERTH_LIVE_NOMAD_IMAGE")
	if image == "" {
		image = "busybox:stable"
	}
	pr, err := providers.New(schema.Target{Name: "nomad-live", Type: "nomad", Settings: settings}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*nomad.Provider)
	defer p.Close()
	var b [3]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "live" + hex.EncodeToString(b[:]), Environment: "test"}
	w := schema.Workload{Name: "sleeper", Image: image, Command: []string{"sleep"}, Args: []string{"3600"}, Replicas: 1,
		Resources: schema.Resources{CPUMillis: 100, MemoryBytes: 64 << 20}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := p.Delete(ctx, owner, "nomad-live", w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	for _, n := range []int{1, 2} {
		w.Replicas = n
		d := providers.Desired{Owner: owner, Target: "nomad-live", Workload: w, SpecHash: providers.SpecHash(w)}
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("Apply (%d replicas): %v", n, err)
		}
		obs, err := p.List(ctx, owner, "nomad-live")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(obs) != 1 || obs[0].SpecHash != d.SpecHash || len(obs[0].Replicas) != n || obs[0].Spec.Image != image {
			t.Fatalf("List = %+v", obs)
		}
	}
}
