package azure_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/schema"
)

// TestLive creates, reads and deletes one small workload on real Azure Container Instances. It runs only when
// BERTH_LIVE_AZURE_SUBSCRIPTION, BERTH_LIVE_AZURE_RESOURCE_GROUP and BERTH_LIVE_AZURE_LOCATION are set; credentials
// come from the default chain (AZURE_* environment variables, workload or managed identity, az login).
// BERTH_LIVE_AZURE_IMAGE overrides the image (default mcr.microsoft.com/azuredocs/aci-helloworld:latest).
func TestLive(t *testing.T) {
	sub, rg, loc := os.Getenv("BERTH_LIVE_AZURE_SUBSCRIPTION"), os.Getenv("BERTH_LIVE_AZURE_RESOURCE_GROUP"), os.Getenv("BERTH_LIVE_AZURE_LOCATION")
	if sub == "" || rg == "" || loc == "" {
		t.Skip("set BERTH_LIVE_AZURE_SUBSCRIPTION, BERTH_LIVE_AZURE_RESOURCE_GROUP and BERTH_LIVE_AZURE_LOCATION to run")
	}
	image := os.Getenv("BERTH_LIVE_AZURE_IMAGE")
	if image == "" {
		image = "mcr.microsoft.com/azuredocs/aci-helloworld:latest"
	}
	target := schema.Target{Name: "live", Type: "azure", Settings: map[string]any{"subscriptionId": sub, "resourceGroup": rg, "location": loc}}
	pp, err := azure.New(target, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pp.(*azure.Provider)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	owner := providers.Owner{Instance: "live" + time.Now().Format("150405"), Environment: "test"}
	w := schema.Workload{Name: "hello", Provider: "live", Image: image, Replicas: 1,
		Ports:     []schema.Port{{Port: 80, Protocol: "tcp", Public: true, HostPort: 80}},
		Resources: schema.Resources{CPUMillis: 500, MemoryBytes: 512 << 20}}
	t.Cleanup(func() {
		if err := p.Delete(context.Background(), owner, "live", w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: "live", Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	obs, err := p.List(ctx, owner, "live")
	if err != nil || len(obs) != 1 || obs[0].Spec.Image != image || len(obs[0].Replicas) != 1 || !obs[0].Replicas[0].Ready() {
		t.Fatalf("List: %+v, %v", obs, err)
	}
	if err := p.Delete(ctx, owner, "live", w.Name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if obs, err := p.List(ctx, owner, "live"); err != nil || len(obs) != 0 {
		t.Fatalf("List after Delete: %+v, %v", obs, err)
	}
}
