package kubernetes_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/schema"
)

// BenchmarkList measures one List pass over four workloads (with public ports, so each has two Services) against
// the real kube-apiserver: ns/op and the apiserver requests per pass.
func BenchmarkList(b *testing.B) {
	c := cluster(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	counter := &conformance.CountingTransport{}
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.Next = rt; return counter })
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	p, err := kubernetes.NewWithClient(cs, schema.Target{Name: "bench", Type: kubernetes.Type}, providers.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p.PollInterval = 20 * time.Millisecond
	owner := providers.Owner{Instance: "bench" + randomID(b), Environment: "bench"}
	const workloads = 4
	for i := range workloads {
		w := referenceWorkload("bench-" + strconv.Itoa(i))
		w.Replicas = 1
		if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: "bench", Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Delete(context.Background(), owner, "bench", w.Name) })
	}
	b.ResetTimer()
	before := counter.Requests()
	for range b.N {
		obs, err := p.List(ctx, owner, "bench")
		if err != nil || len(obs) != workloads {
			b.Fatalf("List = %d workloads, %v", len(obs), err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(counter.Requests()-before)/float64(b.N), "requests/op")
}
