package swarm_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

// BenchmarkList is one List pass over three services (one task each), reporting the engine requests it makes
// and its time.
func BenchmarkList(b *testing.B) {
	base := dockertest.Client(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if info, err := base.Info(ctx); err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		b.Fatalf("the engine is not in swarm mode: %v", err)
	}
	if err := dockertest.BuildImage(ctx, base, testAppPkg, testImage); err != nil {
		b.Fatalf("build test image: %v", err)
	}
	ct := &conformance.CountingTransport{Next: base.HTTPClient().Transport}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHTTPClient(&http.Client{Transport: ct}),
		client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	owner := providers.Owner{Instance: fmt.Sprintf("bench%d", time.Now().UnixNano()%1e6), Environment: "dev"}
	target := "swarm-bench"
	p, err := berthswarm.NewWithClient(cli, schema.Target{Name: target, Type: "swarm"}, providers.Options{Instance: owner.Instance})
	if err != nil {
		b.Fatal(err)
	}
	p.PollInterval = 100 * time.Millisecond
	p.UpdateMonitor = 500 * time.Millisecond
	defer p.Close()
	var names []string
	defer func() {
		for _, n := range names {
			if err := p.Delete(context.Background(), owner, target, n); err != nil {
				b.Errorf("Delete %s: %v", n, err)
			}
		}
	}()
	for i := range 3 {
		w := workerWorkload(fmt.Sprintf("bench%d", i))
		names = append(names, w.Name)
		if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
			b.Fatalf("Apply %s: %v", w.Name, err)
		}
	}
	if _, err := p.List(ctx, owner, target); err != nil { // warm: negotiation
		b.Fatal(err)
	}
	ct.Reset()
	b.ResetTimer()
	for b.Loop() {
		obs, err := p.List(ctx, owner, target)
		if err != nil || len(obs) != 3 {
			b.Fatalf("List: %d workloads, %v", len(obs), err)
		}
	}
	b.ReportMetric(float64(ct.Requests())/float64(b.N), "requests/op")
}
