package swarm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

// ownerLabels are the four labels a Watch selects one workload's objects on one target by.
func ownerLabels(o providers.Owner, target, workload string) map[string]string {
	return map[string]string{providers.LabelInstance: o.Instance, providers.LabelEnvironment: o.Environment,
		providers.LabelTarget: target, providers.LabelWorkload: workload}
}

// TestWatchEndpoints: in host mode each endpoint has a tasks Watch (the manager, the four ownership labels, the
// container port, the path of an HTTP check on that port only), the same pointer from one look to the next; in
// ingress mode none.
func TestWatchEndpoints(t *testing.T) {
	p := newUnitProvider(t)
	for _, c := range []struct {
		name string
		h    *schema.HealthCheck
		path string
	}{
		{"http", httpChecked().Health, "/healthz"},
		{"http, empty path", &schema.HealthCheck{HTTP: &schema.HTTPCheck{Port: 8080}}, "/"},
		{"http, another port", &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 9090}}, ""},
		{"tcp", &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}}, ""},
		{"command", referenceWorkload("web").Health, ""},
	} {
		w := httpChecked()
		w.Health = c.h
		d := desiredOf(w)
		spec, err := berthswarm.PublishSpecFor(d, "n", time.Second, berthswarm.PublishHost)
		if err != nil {
			t.Fatal(err)
		}
		svc := swarm.Service{Spec: spec}
		run := []swarm.Task{task("a", 1, d.SpecHash, swarm.TaskStateRunning, swarm.TaskStateRunning)}
		eps := berthswarm.EndpointsOf(p, svc, run)
		if len(eps) != 1 || eps[0].Watch == nil {
			t.Fatalf("%s: endpoints %+v", c.name, eps)
		}
		want := &providers.Watch{Kind: providers.WatchTasks, Engine: "tcp://127.0.0.1:1", Port: 8080,
			HealthPath: c.path, Labels: ownerLabels(d.Owner, d.Target, w.Name)}
		if !reflect.DeepEqual(eps[0].Watch, want) {
			t.Errorf("%s: watch %+v, want %+v", c.name, eps[0].Watch, want)
		}
		if again := berthswarm.EndpointsOf(p, svc, run); again[0] != eps[0] {
			t.Errorf("%s: endpoint %+v, then %+v", c.name, eps[0], again[0])
		}

		ing, err := berthswarm.PublishSpecFor(d, "n", time.Second, berthswarm.PublishIngress)
		if err != nil {
			t.Fatal(err)
		}
		isvc := swarm.Service{Spec: ing}
		isvc.Endpoint.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 8080, PublishedPort: 8080,
			PublishMode: swarm.PortConfigPublishModeIngress}}
		if eps := berthswarm.EndpointsOf(p, isvc, run); len(eps) != 1 || eps[0].Watch != nil {
			t.Errorf("%s: ingress endpoints %+v, want one without a watch", c.name, eps)
		}
	}
}

// TestWatchEngine: a provider New built names the manager by the host setting ("" for the environment's
// default); one built on a client, by the client's address.
func TestWatchEngine(t *testing.T) {
	for host, want := range map[string]string{"": "", "tcp://10.0.0.5:2376": "tcp://10.0.0.5:2376"} {
		tgt := schema.Target{Name: "s", Type: "swarm", Settings: map[string]any{"publish": "host"}}
		if host != "" {
			tgt.Settings["host"] = host
		}
		p, err := berthswarm.New(tgt, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := berthswarm.Engine(p.(*berthswarm.Provider)); got != want {
			t.Errorf("host %q: engine %q, want %q", host, got, want)
		}
		p.(*berthswarm.Provider).Close()
	}
	if got := berthswarm.Engine(newUnitProvider(t)); got != "tcp://127.0.0.1:1" {
		t.Errorf("NewWithClient: engine %q", got)
	}
}

// watchedTasks checks what an edge following w finds: exactly one service carries w's labels, swarm's name of
// it is service, and the running tasks of it are running (List's running replicas), each publishing w's port in
// host mode on its node where w's health path answers 2xx. It returns the tasks' addresses.
func watchedTasks(ctx context.Context, t *testing.T, cli *client.Client, w *providers.Watch, service string,
	running map[string]bool) []string {
	t.Helper()
	f := filters.NewArgs()
	for k, v := range w.Labels {
		f.Add("label", k+"="+v)
	}
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || svcs[0].Spec.Name != service {
		var names []string
		for _, s := range svcs {
			names = append(names, s.Spec.Name)
		}
		t.Fatalf("the watch labels select services %v, want [%s]", names, service)
	}
	ts, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svcs[0].ID),
		filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	seen := map[string]bool{}
	for _, tk := range ts {
		if tk.Status.State != swarm.TaskStateRunning {
			continue
		}
		seen[tk.ID] = true
		i := slices.IndexFunc(tk.Status.PortStatus.Ports, func(pc swarm.PortConfig) bool {
			return pc.PublishMode == swarm.PortConfigPublishModeHost && int(pc.TargetPort) == w.Port &&
				pc.Protocol == swarm.PortConfigProtocolTCP && pc.PublishedPort != 0
		})
		if i < 0 {
			t.Fatalf("task %s does not publish %d in host mode: %+v", tk.ID, w.Port, tk.Status.PortStatus.Ports)
		}
		n, _, err := cli.NodeInspectWithRaw(ctx, tk.NodeID)
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(n.Status.Addr, strconv.Itoa(int(tk.Status.PortStatus.Ports[i].PublishedPort)))
		if code := status(t, "http://"+addr+w.HealthPath); code/100 != 2 && code/100 != 3 {
			t.Fatalf("task %s at %s: %s answers %d", tk.ID, addr, w.HealthPath, code)
		}
		addrs = append(addrs, addr)
	}
	if !maps.Equal(seen, running) {
		t.Fatalf("running tasks %v, List's running replicas %v", seen, running)
	}
	return addrs
}

func status(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func runningReplicas(o providers.Observed) map[string]bool {
	ids := map[string]bool{}
	for _, r := range o.Replicas {
		if r.Running {
			ids[r.ID] = true
		}
	}
	return ids
}

// TestHostWatchSelectsTasks: the service the engine lists by exactly a host-mode endpoint's Watch labels is the
// workload's (not another workload's of the environment), and its running tasks are the workload's running
// replicas, each published in host mode on its node where the health path answers; after a rollout (which runs a
// canary first), still exactly the service, with the new spec's tasks.
func TestHostWatchSelectsTasks(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "wt" + hex.EncodeToString(b[:]), Environment: "dev"}
	target := "swarm-" + owner.Instance
	t.Cleanup(func() { sweep(t, base, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*testWait)
	defer cancel()
	p := newTestProvider(t, base, target, owner.Instance)
	p.Publish = berthswarm.PublishHost

	w := httpChecked()
	w.Image, w.Replicas, w.Resources = testImage, 2, schema.Resources{}
	w.Ports = w.Ports[:1]
	w.Ports[0].HostPort = freeTCPPort(t)
	other := w
	other.Name, other.Replicas = "other", 1
	other.Ports = []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: freeTCPPort(t)}}
	for _, x := range []schema.Workload{w, other} {
		if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: target, Workload: x, SpecHash: providers.SpecHash(x)}); err != nil {
			t.Fatalf("Apply %s: %v", x.Name, err)
		}
	}
	check := func(what string) {
		t.Helper()
		obs, err := p.List(ctx, owner, target)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(obs, func(o providers.Observed) bool { return o.Workload == w.Name })
		if i < 0 || len(obs[i].Endpoints) != 1 || obs[i].Endpoints[0].Watch == nil {
			t.Fatalf("%s: List = %+v", what, obs)
		}
		got := obs[i].Endpoints[0].Watch
		want := &providers.Watch{Kind: providers.WatchTasks, Engine: base.DaemonHost(), Port: 8080,
			HealthPath: "/healthz", Labels: ownerLabels(owner, target, w.Name)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: watch %+v, want %+v", what, got, want)
		}
		if addrs := watchedTasks(ctx, t, base, got, berthswarm.ServiceName(owner, w.Name), runningReplicas(obs[i])); len(addrs) != w.Replicas {
			t.Fatalf("%s: tasks at %v, want %d", what, addrs, w.Replicas)
		}
	}
	check("after create")
	w.Env["GREETING"] = "rolled"
	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	check("after a rollout")
}

// TestDockerAndSwarmSameHostPort: a Docker target and a Swarm target (host mode) on one engine run the same
// workload with the same public host port at once, as a migration from one to the other does, when each has a
// publicAddress of its own; both serve, and both report their endpoints and watches, each selecting only its own
// replicas. With both on the wildcard default, the second Apply fails, naming the address taken.
func TestDockerAndSwarmSameHostPort(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "ds" + hex.EncodeToString(b[:]), Environment: "dev"}
	dtarget, starget := "docker-"+owner.Instance, "swarm-"+owner.Instance
	t.Cleanup(func() { sweep(t, base, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*testWait)
	defer cancel()

	newDocker := func(addr string) *docker.Provider {
		t.Helper()
		d, err := docker.NewWithClient(base, schema.Target{Name: dtarget, Type: "docker",
			Settings: map[string]any{"publicAddress": addr}}, providers.Options{Instance: owner.Instance})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	// The Docker containers go before the swarm sweep waits for every container of the instance to go.
	t.Cleanup(func() {
		f := filters.NewArgs(filters.Arg("label", providers.LabelTarget+"="+dtarget))
		cctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		cs, _ := base.ContainerList(cctx, container.ListOptions{All: true, Filters: f})
		for _, c := range cs {
			base.ContainerRemove(cctx, c.ID, container.RemoveOptions{Force: true})
		}
	})

	w := httpChecked()
	w.Image, w.Replicas, w.Resources = testImage, 1, schema.Resources{}
	w.Ports = w.Ports[:1]
	hp := freeTCPPort(t)
	w.Ports[0].HostPort = hp
	dw, sw := w, w
	dw.Env = map[string]string{"GREETING": "from-docker", "PORT": "8080"}
	sw.Env = map[string]string{"GREETING": "from-swarm", "PORT": "8080"}
	desired := func(target string, w schema.Workload) providers.Desired {
		return providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}
	}

	// A wildcard beside the other's address, or both on the wildcard default: the second cannot listen, and says
	// where and what to set.
	for _, c := range []struct{ docker, swarm string }{
		{docker.DefaultPublicAddress, berthswarm.DefaultPublicAddress},
		{"127.0.0.1", berthswarm.DefaultPublicAddress},
		{docker.DefaultPublicAddress, "127.0.0.2"},
	} {
		dp := newDocker(c.docker)
		if err := dp.Apply(ctx, desired(dtarget, dw)); err != nil {
			t.Fatalf("docker Apply: %v", err)
		}
		sp := newTestProvider(t, base, starget, owner.Instance)
		sp.Publish, sp.PublicAddress = berthswarm.PublishHost, c.swarm
		err := sp.Apply(ctx, desired(starget, sw))
		addr := net.JoinHostPort(c.swarm, strconv.Itoa(hp))
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), addr) ||
			!strings.Contains(err.Error(), "publicAddress") {
			t.Fatalf("swarm Apply on %s beside docker on %s: %v, want address in use naming %s and publicAddress",
				c.swarm, c.docker, err, addr)
		}
		t.Logf("docker on %s, swarm on %s: %v", c.docker, c.swarm, err)
		dp.Close()
		sp.Close()
	}

	// Each on an address of its own.
	dp := newDocker("127.0.0.1")
	sp := newTestProvider(t, base, starget, owner.Instance)
	sp.Publish, sp.PublicAddress = berthswarm.PublishHost, "127.0.0.2"
	if err := dp.Apply(ctx, desired(dtarget, dw)); err != nil {
		t.Fatalf("docker Apply: %v", err)
	}
	if err := sp.Apply(ctx, desired(starget, sw)); err != nil {
		t.Fatalf("swarm Apply beside docker: %v", err)
	}
	for addr, greeting := range map[string]string{"127.0.0.1": "from-docker", "127.0.0.2": "from-swarm"} {
		url := "http://" + net.JoinHostPort(addr, strconv.Itoa(hp)) + "/"
		waitCond(t, ctx, url+" to answer "+greeting, func() (bool, error) {
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get(url)
			if err != nil {
				return false, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return err == nil && strings.Contains(string(body), greeting), err
		})
	}

	// Docker: its endpoint, and its watch selects its container only (the swarm task's container carries the
	// same instance, environment and workload, another target).
	dobs, err := dp.List(ctx, owner, dtarget)
	if err != nil || len(dobs) != 1 || len(dobs[0].Endpoints) != 1 {
		t.Fatalf("docker List = %+v, %v", dobs, err)
	}
	dep := dobs[0].Endpoints[0]
	if dep.Address != "127.0.0.1:"+strconv.Itoa(hp) || dep.Watch == nil ||
		!reflect.DeepEqual(*dep.Watch, providers.Watch{Kind: providers.WatchContainers, Engine: base.DaemonHost(),
			Port: 8080, HealthPath: "/healthz", Labels: ownerLabels(owner, dtarget, w.Name)}) {
		t.Fatalf("docker endpoint %+v, watch %+v", dep, dep.Watch)
	}
	f := filters.NewArgs()
	for k, v := range dep.Watch.Labels {
		f.Add("label", k+"="+v)
	}
	cs, err := base.ContainerList(ctx, container.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || !runningReplicas(dobs[0])[cs[0].ID] {
		t.Fatalf("the docker watch selects %d containers, want its one replica %+v", len(cs), dobs[0].Replicas)
	}
	ci, err := base.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	bound := slices.ContainsFunc(ci.NetworkSettings.Ports[nat.Port("8080/tcp")], func(b nat.PortBinding) bool {
		return b.HostIP == "127.0.0.1" && b.HostPort != ""
	})
	if !bound {
		t.Fatalf("the docker replica does not publish 8080 on 127.0.0.1: %+v", ci.NetworkSettings.Ports)
	}

	// Swarm: its endpoint, and its watch selects its service only.
	sobs, err := sp.List(ctx, owner, starget)
	if err != nil || len(sobs) != 1 || len(sobs[0].Endpoints) != 1 {
		t.Fatalf("swarm List = %+v, %v", sobs, err)
	}
	sep := sobs[0].Endpoints[0]
	if sep.Address != "127.0.0.2:"+strconv.Itoa(hp) || sep.Watch == nil ||
		!reflect.DeepEqual(*sep.Watch, providers.Watch{Kind: providers.WatchTasks, Engine: base.DaemonHost(),
			Port: 8080, HealthPath: "/healthz", Labels: ownerLabels(owner, starget, w.Name)}) {
		t.Fatalf("swarm endpoint %+v, watch %+v", sep, sep.Watch)
	}
	watchedTasks(ctx, t, base, sep.Watch, berthswarm.ServiceName(owner, w.Name), runningReplicas(sobs[0]))

	// The migration ends: the Docker copy goes, with its network (the swarm tasks' containers, of the same
	// environment, do not hold it), and the swarm copy keeps serving.
	if err := dp.Delete(ctx, owner, dtarget, w.Name); err != nil {
		t.Fatalf("docker Delete: %v", err)
	}
	bridge := "berth-" + owner.Instance + "-" + owner.Environment
	nets, err := base.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", bridge))})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(nets, func(n network.Summary) bool { return n.Name == bridge }) {
		t.Errorf("the Docker copy's network %s is left after its last workload was deleted", bridge)
	}
	if code := status(t, "http://127.0.0.2:"+strconv.Itoa(hp)+"/healthz"); code != http.StatusOK {
		t.Fatalf("the swarm copy answers %d after the docker copy was deleted", code)
	}
	sobs, err = sp.List(ctx, owner, starget)
	if err != nil || len(sobs) != 1 || len(sobs[0].Endpoints) != 1 || sobs[0].Endpoints[0] != sep {
		t.Fatalf("swarm List after the docker Delete = %+v, %v; want the endpoint %+v", sobs, err, sep)
	}
}
