package kubernetes_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/schema"
)

// TestLive applies, scales and deletes a workload on a real cluster with real controllers. It runs only when
// BERTH_LIVE_KUBERNETES_KUBECONFIG is set; BERTH_LIVE_KUBERNETES_CONTEXT, _NAMESPACE (default: berth-<env>,
// created) and _IMAGE (default registry.k8s.io/pause:3.10, which needs no command) are optional.
func TestLive(t *testing.T) {
	kc := os.Getenv("BERTH_LIVE_KUBERNETES_KUBECONFIG")
	if kc == "" {
		t.Skip("BERTH_LIVE_KUBERNETES_KUBECONFIG not set")
	}
	settings := map[string]any{"kubeconfig": kc}
	for env, key := range map[string]string{"BERTH_LIVE_KUBERNETES_CONTEXT": "context", "BERTH_LIVE_KUBERNETES_NAMESPACE": "namespace"} {
		if v := os.Getenv(env); v != "" {
			settings[key] = v
		}
	}
	image := os.Getenv("BERTH_LIVE_KUBERNETES_IMAGE")
	if image == "" {
		image = "registry.k8s.io/pause:3.10"
	}
	prov, err := providers.New(schema.Target{Name: "live", Type: kubernetes.Type, Settings: settings}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	owner := providers.Owner{Instance: "live" + randomID(t), Environment: "live"}
	w := schema.Workload{Name: "berth-live", Image: image, Replicas: 1,
		Ports: []schema.Port{{Port: 8080, Protocol: "tcp"}}}
	t.Cleanup(func() {
		if err := prov.Delete(context.Background(), owner, "live", w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	for _, n := range []int{1, 2} {
		w.Replicas = n
		if err := prov.Apply(ctx, providers.Desired{Owner: owner, Target: "live", Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
			t.Fatalf("Apply %d replicas: %v", n, err)
		}
		obs, err := prov.List(ctx, owner, "live")
		if err != nil || len(obs) != 1 || len(obs[0].Replicas) < n {
			t.Fatalf("List after %d replicas: %+v %v", n, obs, err)
		}
	}
}
