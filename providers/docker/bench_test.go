package docker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/schema"
)

// BenchmarkList is one List pass over three running workloads (one replica each, an HTTP check and a public
// port), reporting the engine requests it makes and its time.
func BenchmarkList(b *testing.B) {
	base := dockertest.Client(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dockertest.BuildImage(ctx, base, appPkg, testImage); err != nil {
		b.Fatalf("build test image: %v", err)
	}
	ct := &conformance.CountingTransport{Next: base.HTTPClient().Transport}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHTTPClient(&http.Client{Transport: ct}),
		client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	e := &env{cli: base, owner: providers.Owner{Instance: fmt.Sprintf("bench%d", time.Now().UnixNano()%1e6), Environment: "dev"}}
	e.target = "docker-" + e.owner.Instance
	defer sweepInstance(b, base, e.owner.Instance)
	p, err := NewWithClient(cli, schema.Target{Name: e.target, Type: "docker",
		Settings: map[string]any{"publicAddress": "127.0.0.1"}}, providers.Options{Instance: e.owner.Instance})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for i := range 3 {
		w := web(1, 0, "bench")
		w.Name = fmt.Sprintf("bench%d", i)
		w.Ports[0].HostPort = freePortB(b)
		if err := p.Apply(ctx, e.desired(w)); err != nil {
			b.Fatalf("Apply %s: %v", w.Name, err)
		}
	}
	if _, err := p.List(ctx, e.owner, e.target); err != nil { // warm: negotiation, caches
		b.Fatal(err)
	}
	ct.Reset()
	b.ResetTimer()
	for b.Loop() {
		obs, err := p.List(ctx, e.owner, e.target)
		if err != nil || len(obs) != 3 {
			b.Fatalf("List: %d workloads, %v", len(obs), err)
		}
	}
	b.ReportMetric(float64(ct.Requests())/float64(b.N), "requests/op")
}

// sweepInstance removes every container and network of instance.
func sweepInstance(tb testing.TB, cli *client.Client, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+instance))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		tb.Errorf("sweep: %v", err)
	}
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			tb.Errorf("sweep container %.12s: %v", c.ID, err)
		}
	}
	nets, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range nets {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil {
			tb.Errorf("sweep network %s: %v", n.Name, err)
		}
	}
}

func freePortB(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
