package gcp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/schema"
)

// TestLive creates, reads and deletes one small workload on real Compute Engine. It runs only with
// BERTH_LIVE_GCP_PROJECT and BERTH_LIVE_GCP_REGION set and credentials present (BERTH_LIVE_GCP_CREDENTIALS_FILE or
// GOOGLE_APPLICATION_CREDENTIALS); BERTH_LIVE_GCP_IMAGE, BERTH_LIVE_GCP_NETWORK and BERTH_LIVE_GCP_MACHINE_TYPE are
// optional. It costs a few minutes of one e2-micro.
func TestLive(t *testing.T) {
	project, region := os.Getenv("BERTH_LIVE_GCP_PROJECT"), os.Getenv("BERTH_LIVE_GCP_REGION")
	creds := os.Getenv("BERTH_LIVE_GCP_CREDENTIALS_FILE")
	if project == "" || region == "" || creds == "" && os.Getenv("GOOGLE_APPLICATION_CREDENTIALS") == "" {
		t.Skip("set BERTH_LIVE_GCP_PROJECT, BERTH_LIVE_GCP_REGION and credentials to run against Compute Engine")
	}
	settings := map[string]any{"project": project, "region": region, "machineType": "e2-micro"}
	for key, env := range map[string]string{"credentialsFile": "BERTH_LIVE_GCP_CREDENTIALS_FILE", "network": "BERTH_LIVE_GCP_NETWORK", "machineType": "BERTH_LIVE_GCP_MACHINE_TYPE"} {
		if v := os.Getenv(env); v != "" {
			settings[key] = v
		}
	}
	image := os.Getenv("BERTH_LIVE_GCP_IMAGE")
	if image == "" {
		image = "us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0"
	}
	p, err := gcp.NewWithClientOptions(schema.Target{Name: "live", Type: "gcp", Settings: settings}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b [3]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "live" + hex.EncodeToString(b[:]), Environment: "test"}
	w := schema.Workload{Name: "hello", Provider: "live", Image: image, Env: map[string]string{"PORT": "8080"}, Replicas: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := p.Delete(ctx, owner, "live", w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: "live", Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var obs []providers.Observed
	tick := time.NewTicker(5 * time.Second) // List lags behind inserts: poll until ctx's deadline
	defer tick.Stop()
	for len(obs) == 0 {
		if obs, err = p.List(ctx, owner, "live"); err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(obs) == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("the workload never showed in List")
			case <-tick.C:
			}
		}
	}
	if len(obs) != 1 || obs[0].SpecHash != providers.SpecHash(w) || obs[0].Spec.Image != image || len(obs[0].Replicas) != 1 {
		t.Fatalf("List: %+v", obs)
	}
}
