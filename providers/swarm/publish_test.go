package swarm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

func TestDetectPublish(t *testing.T) {
	const rel = "6.1.0-test\n"
	for _, c := range []struct {
		name, host string
		fs         fstest.MapFS
		want       string
	}{
		{"local, no IPVS", "unix:///var/run/docker.sock", fstest.MapFS{"proc/sys/kernel/osrelease": {Data: []byte(rel)}}, berthswarm.PublishHost},
		{"loopback tcp, no IPVS", "tcp://127.0.0.1:2375", fstest.MapFS{}, berthswarm.PublishHost},
		{"local, loaded", "unix:///var/run/docker.sock", fstest.MapFS{"proc/net/ip_vs": {}}, berthswarm.PublishIngress},
		{"local, module", "unix:///var/run/docker.sock", fstest.MapFS{
			"proc/sys/kernel/osrelease":          {Data: []byte(rel)},
			"lib/modules/6.1.0-test/modules.dep": {Data: []byte("kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/lib/libcrc32c.ko.xz\n")},
		}, berthswarm.PublishIngress},
		{"local, built in", "unix:///var/run/docker.sock", fstest.MapFS{
			"proc/sys/kernel/osrelease":              {Data: []byte(rel)},
			"lib/modules/6.1.0-test/modules.builtin": {Data: []byte("kernel/net/netfilter/ipvs/ip_vs.ko\n")},
		}, berthswarm.PublishIngress},
		{"other modules only", "unix:///var/run/docker.sock", fstest.MapFS{
			"proc/sys/kernel/osrelease":          {Data: []byte(rel)},
			"lib/modules/6.1.0-test/modules.dep": {Data: []byte("kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko\n")},
		}, berthswarm.PublishHost},
		{"remote engine", "tcp://10.0.0.5:2376", fstest.MapFS{}, berthswarm.PublishIngress},
	} {
		if got := berthswarm.DetectPublish(c.host, c.fs); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestHostPublishSpec: in host mode each public port is published per task at a port the engine picks, the host
// ports berth serves are LabelPublicPorts, the HTTP check reuses the public port's publication, and the service
// reads back as desired; its endpoints are the proxy's address once a task runs.
func TestHostPublishSpec(t *testing.T) {
	w := httpChecked()
	d := desiredOf(w)
	spec, err := berthswarm.PublishSpecFor(d, "n", time.Second, berthswarm.PublishHost)
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Labels[berthswarm.LabelPublicPorts]; got != "8080:8080/tcp" {
		t.Errorf("%s = %q", berthswarm.LabelPublicPorts, got)
	}
	ps := spec.EndpointSpec.Ports
	if len(ps) != 1 || ps[0].PublishMode != swarm.PortConfigPublishModeHost || ps[0].PublishedPort != 0 || ps[0].TargetPort != 8080 {
		t.Errorf("ports %+v, want 8080/tcp in host mode only", ps)
	}
	got := berthswarm.ReadBack(swarm.Service{Spec: spec})
	if want := (&berthswarm.Provider{}).Normalize(w); providers.SpecHash(got) != providers.SpecHash(want) {
		t.Errorf("read back %+v, want %+v", got, want)
	}
	svc := swarm.Service{Spec: spec}
	if eps := berthswarm.HostEndpoints(svc, nil, "127.0.0.1"); len(eps) != 0 {
		t.Errorf("endpoints without a running task: %+v", eps)
	}
	run := task("a", 1, d.SpecHash, swarm.TaskStateRunning, swarm.TaskStateRunning)
	eps := berthswarm.HostEndpoints(svc, []swarm.Task{run}, "127.0.0.1")
	if len(eps) != 1 || eps[0].Port != 8080 || eps[0].Address != "127.0.0.1:8080" {
		t.Errorf("endpoints %+v", eps)
	}
	// The same workload published through the routing mesh reads back alike: only the publishing differs.
	ing, err := berthswarm.PublishSpecFor(d, "n", time.Second, berthswarm.PublishIngress)
	if err != nil {
		t.Fatal(err)
	}
	if providers.SpecHash(berthswarm.ReadBack(swarm.Service{Spec: ing})) != providers.SpecHash(got) {
		t.Errorf("ingress and host publishing read back differently")
	}
}

// TestHostPublishingSync: in host mode a provider with Options.Background serves the public port of a service it
// did not apply (a restarted berth), follows the task swarm puts in place of one removed by hand, and stops serving
// once the service is deleted.
func TestHostPublishingSync(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "hp" + hex.EncodeToString(b[:]), Environment: "dev"}
	target := "swarm-" + owner.Instance
	t.Cleanup(func() { sweep(t, base, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()

	w := httpChecked()
	w.Image, w.Replicas, w.Resources = testImage, 1, schema.Resources{}
	w.Ports = w.Ports[:1]
	w.Ports[0].HostPort = freeTCPPort(t)
	w.Env["GREETING"] = "sync"
	d := providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}
	first := newTestProvider(t, base, target, owner.Instance)
	first.Publish = berthswarm.PublishHost
	if err := first.Apply(ctx, d); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(w.Ports[0].HostPort) + "/"
	get := func() (string, error) {
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	serves := func(what string) {
		t.Helper()
		waitCond(t, ctx, what, func() (bool, error) {
			body, err := get()
			return err == nil && strings.Contains(body, "sync"), err
		})
	}
	serves("the applying provider to serve " + url)
	obs, err := first.List(ctx, owner, target)
	if err != nil || len(obs) != 1 || len(obs[0].Endpoints) != 1 ||
		obs[0].Endpoints[0].Address != "127.0.0.1:"+strconv.Itoa(w.Ports[0].HostPort) || !obs[0].Replicas[0].Ready() {
		t.Fatalf("List = %+v, %v", obs, err)
	}
	first.Close()
	if _, err := get(); err == nil {
		t.Fatalf("%s still answers after the provider closed", url)
	}

	second, err := berthswarm.NewWithClient(base, schema.Target{Name: target, Type: "swarm"},
		providers.Options{Instance: owner.Instance, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	second.Publish, second.PublicAddress = berthswarm.PublishHost, "127.0.0.1"
	t.Cleanup(func() { second.Close() })
	if _, err := second.List(ctx, owner, target); err != nil { // the first call starts the sync
		t.Fatal(err)
	}
	serves("the restarted provider's sync to serve " + url)

	drift(ctx, t, base, berthswarm.ServiceName(owner, w.Name), 0, conformance.DriftRemove)
	serves("the sync to follow the replacement task")

	if err := second.Delete(ctx, owner, target, w.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := get(); err == nil {
		t.Errorf("%s still answers after Delete", url)
	}
}
