package docker

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

const testHead = "0123456789abcdef0123456789abcdef01234567"

// TestPreviewLabels: a preview's containers carry its number and head; a base's carry neither; a head that is
// not a commit ID is left out, and only a number naming its own environment reads back.
func TestPreviewLabels(t *testing.T) {
	w := schema.Workload{Name: "web", Image: "img", Replicas: 1}
	pr := providers.Owner{Instance: "i", Environment: "pr-42", Preview: 42}
	d := providers.Desired{Owner: pr, Target: "t", Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &schema.Preview{Number: 42, Head: testHead, Base: "staging"}}
	l, err := containerLabels(wkey{"i", "pr-42", "t", "web"}, d, 0, readBack(w, imageDefaults{}))
	if err != nil {
		t.Fatal(err)
	}
	if l[providers.LabelPreview] != "42" || l[providers.LabelHead] != testHead {
		t.Fatalf("preview labels %v", l)
	}
	if providers.PreviewOf("pr-42", l) != 42 || providers.HeadOf(l) != testHead {
		t.Fatalf("read back as %d %q", providers.PreviewOf("pr-42", l), providers.HeadOf(l))
	}
	d.Preview.Head = "main; rm -rf /"
	if l := providers.PreviewLabels(pr, d.Preview); l[providers.LabelHead] != "" || l[providers.LabelPreview] != "42" {
		t.Fatalf("a malformed head is labelled: %v", l)
	}
	if l := providers.PreviewLabels(providers.Owner{Instance: "i", Environment: "staging"}, d.Preview); l != nil {
		t.Fatalf("a base environment gets preview labels %v", l)
	}
	for _, c := range []struct {
		env, label string
		want       int
	}{
		{"pr-7", "7", 7}, {"pr-7", "07", 0}, {"pr-7", "+7", 0}, {"pr-7", "-7", 0}, {"pr-7", "x", 0}, {"pr-7", "", 0},
		{"staging", "7", 0}, {"pr-8", "7", 0}, {"pr-2147483647", "2147483647", 2147483647},
	} {
		if got := providers.PreviewOf(c.env, map[string]string{providers.LabelPreview: c.label}); got != c.want {
			t.Errorf("providers.PreviewOf(%q, %q) = %d, want %d", c.env, c.label, got, c.want)
		}
	}
}

// TestEnvironments: each environment once, sorted, with its number and the head of its newest container.
func TestEnvironments(t *testing.T) {
	const oldHead = "1111111111111111111111111111111111111111"
	c := func(created int64, env, preview, head string) container.Summary {
		l := map[string]string{providers.LabelEnvironment: env}
		if preview != "" {
			l[providers.LabelPreview] = preview
		}
		if head != "" {
			l[providers.LabelHead] = head
		}
		return container.Summary{Created: created, Labels: l}
	}
	got := environments([]container.Summary{
		c(3, "pr-42", "42", testHead), c(1, "pr-42", "42", oldHead), c(2, "staging", "", ""),
		c(4, "pr-5", "5", "not-a-head"), c(5, "dev", "9", ""), {Created: 6},
	})
	want := []providers.EnvironmentRef{{Name: "dev"}, {Name: "pr-42", Preview: 42, Head: testHead},
		{Name: "pr-5", Preview: 5}, {Name: "staging"}}
	if !slices.Equal(got, want) {
		t.Fatalf("environments:\n got %+v\nwant %+v", got, want)
	}
}

// TestEndpoints: one endpoint per public TCP port that a running replica serves, at the public address (a
// wildcard reads as 127.0.0.1); a port no running replica publishes yet is left out.
func TestEndpoints(t *testing.T) {
	spec := schema.Workload{Ports: []schema.Port{
		{Port: 8080, Protocol: "tcp", Public: true, HostPort: 18080},
		{Port: 9090, Protocol: "tcp", Public: true, HostPort: 19090},
		{Port: 7070, Protocol: "tcp"},
	}}
	c := func(running bool, published ...int) container.InspectResponse {
		ports := nat.PortMap{}
		for _, p := range published {
			ports[nat.Port(strconv.Itoa(p)+"/tcp")] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: "32768"}}
		}
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Running: running}},
			Config:            &container.Config{Labels: map[string]string{LabelPublicPorts: "18080:8080,19090:9090"}},
			NetworkSettings:   &container.NetworkSettings{NetworkSettingsBase: container.NetworkSettingsBase{Ports: ports}},
		}
	}
	got := endpoints(spec, []container.InspectResponse{c(false, 8080, 9090), c(true, 8080)}, endpointHost("0.0.0.0"))
	if want := []providers.Endpoint{{Port: 8080, Address: "127.0.0.1:18080"}}; !slices.Equal(got, want) {
		t.Fatalf("endpoints %+v, want %+v", got, want)
	}
	if got := endpoints(spec, []container.InspectResponse{c(false, 8080)}, "127.0.0.1"); len(got) != 0 {
		t.Fatalf("endpoints of stopped replicas: %+v", got)
	}
	for addr, want := range map[string]string{"0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "": "127.0.0.1",
		"192.0.2.7": "192.0.2.7", "::1": "::1", "edge.example": "edge.example"} {
		if got := endpointHost(addr); got != want {
			t.Errorf("endpointHost(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := endpoints(spec, []container.InspectResponse{c(true, 8080, 9090)}, endpointHost("::1")); got[1].Address != "[::1]:19090" {
		t.Fatalf("IPv6 endpoint %+v", got)
	}
}

// TestPreviewBesideBase: a preview runs beside its base on a host port of its own, with a proxy of its own; List
// of either environment shows only its own containers; Environments finds both in one listing; deleting the
// preview closes its proxy and its network and leaves the base serving.
func TestPreviewBesideBase(t *testing.T) {
	e := newEnv(t)
	basePort, prPort := freePort(t), freePort(t)
	e.apply(e.p, web(1, basePort, "base"))
	pr := providers.Owner{Instance: e.owner.Instance, Environment: schema.PreviewName(7), Preview: 7}
	w := web(1, prPort, "preview")
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	d := providers.Desired{Owner: pr, Target: e.target, Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &schema.Preview{Number: 7, Head: testHead, Base: e.owner.Environment}}
	if err := e.p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply the preview: %v", err)
	}
	for port, want := range map[int]string{basePort: "base", prPort: "preview"} {
		if s, err := get(freshClient, port); err != nil || !strings.HasPrefix(s, want+" from ") {
			t.Fatalf("GET :%d: %q, %v; want %s", port, s, err, want)
		}
	}
	if n := len(e.containers(providers.LabelPreview + "=7")); n != 1 {
		t.Fatalf("%d containers labelled as preview 7, want 1", n)
	}
	if n := len(e.containers(providers.LabelHead + "=" + testHead)); n != 1 {
		t.Fatalf("%d containers labelled with the head, want 1", n)
	}
	n, err := e.cli.NetworkInspect(ctx, networkName(pr.Instance, pr.Environment), network.InspectOptions{})
	if err != nil || n.Labels[providers.LabelPreview] != "7" {
		t.Fatalf("preview network: labels %v, %v", n.Labels, err)
	}

	prObs, err := e.p.List(ctx, pr, e.target)
	if err != nil {
		t.Fatal(err)
	}
	o := onlyWorkload(t, prObs)
	if want := []providers.Endpoint{{Port: 8080, Address: "127.0.0.1:" + strconv.Itoa(prPort)}}; !slices.Equal(addresses(o.Endpoints), want) {
		t.Fatalf("preview endpoints %+v, want %+v", o.Endpoints, want)
	}
	base := onlyWorkload(t, e.list())
	if slices.ContainsFunc(base.Replicas, func(r providers.Replica) bool { return r.ID == o.Replicas[0].ID }) {
		t.Fatalf("the base lists the preview's replica: %+v", base.Replicas)
	}
	if want := []providers.Endpoint{{Port: 8080, Address: "127.0.0.1:" + strconv.Itoa(basePort)}}; !slices.Equal(addresses(base.Endpoints), want) {
		t.Fatalf("base endpoints %+v, want %+v", base.Endpoints, want)
	}
	refs, err := e.p.Environments(ctx, e.owner.Instance, e.target)
	if err != nil {
		t.Fatal(err)
	}
	if want := []providers.EnvironmentRef{{Name: e.owner.Environment}, {Name: pr.Environment, Preview: 7, Head: testHead}}; !slices.Equal(refs, want) {
		t.Fatalf("Environments %+v, want %+v", refs, want)
	}

	if err := e.p.Delete(ctx, pr, e.target, w.Name); err != nil {
		t.Fatalf("Delete the preview: %v", err)
	}
	e.p.mu.Lock()
	_, open := e.p.listeners[prPort]
	e.p.mu.Unlock()
	if open {
		t.Fatalf("the preview's proxy on port %d is still held after Delete", prPort)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(prPort), time.Second); err == nil {
		c.Close()
		t.Fatalf("port %d still accepts connections after the preview was deleted", prPort)
	}
	if _, err := e.cli.NetworkInspect(ctx, networkName(pr.Instance, pr.Environment), network.InspectOptions{}); err == nil {
		t.Fatal("the preview's network is left after its last workload was deleted")
	}
	if s, err := get(freshClient, basePort); err != nil || !strings.HasPrefix(s, "base from ") {
		t.Fatalf("the base after the preview's teardown: %q, %v", s, err)
	}
	if refs, err := e.p.Environments(ctx, e.owner.Instance, e.target); err != nil || len(refs) != 1 {
		t.Fatalf("Environments after the teardown: %+v, %v", refs, err)
	}
	if _, err := e.p.Environments(ctx, "", e.target); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Environments without an instance: %v", err)
	}
}
