package edge

import (
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/providers/endpoint"
)

const (
	watchImage  = "berth-edge-test-app:dev"
	watchAppPkg = "github.com/berth-dev/berth/examples/quickstart/app"
	watchLabel  = "berth.dev/test-edge"
)

// runApp starts the quickstart app (HTTP on 8080, "hello from <hostname>") with labels, its port published on a
// free 127.0.0.1 port, and returns its short ID (its host name).
func runApp(t *testing.T, cli *client.Client, labels map[string]string) string {
	t.Helper()
	ctx := tctx(t)
	port := nat.Port("8080/tcp")
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: watchImage, Cmd: []string{"serve"}, Labels: labels, ExposedPorts: nat.PortSet{port: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1"}}}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID[:12]
}

// TestWatchContainers: a member that watches labelled containers on the real engine is served at the port they
// publish, and follows a replacement once the first container is removed.
func TestWatchContainers(t *testing.T) {
	cli := dockertest.Client(t)
	ctx := tctx(t)
	if err := dockertest.BuildImage(ctx, cli, watchAppPkg, watchImage); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{watchLabel: strconv.FormatInt(time.Now().UnixNano(), 36)}
	first := runApp(t, cli, labels)

	s := startEdge(t, "", func(o *Options) { o.Docker = DockerClient })
	r := routerOf(t, s)
	name := freeName(t)
	w := &providers.Watch{Kind: providers.WatchContainers, Labels: labels, Port: 8080, HealthPath: "/healthz"}
	if err := r.Set(ctx, testOwner, name, 0, []endpoint.Member{{Target: "docker", Watch: w, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	answer := func() string {
		resp, err := hc.Get("http://" + name + "/")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	eventually(t, "the edge to forward to "+first, func() bool { return answer() == "hello from "+first })

	second := runApp(t, cli, labels)
	eventually(t, "both containers ready", func() bool {
		st, err := r.Status(ctx, name)
		if err != nil || len(st.Members[0].Resolved) != 2 {
			return false
		}
		for _, a := range st.Members[0].Resolved {
			if !a.Ready {
				return false
			}
		}
		return true
	})
	if err := cli.ContainerRemove(ctx, first, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watch to drop "+first, func() bool {
		st, err := r.Status(ctx, name)
		return err == nil && len(st.Members[0].Resolved) == 1
	})
	for i := range 10 {
		if got := answer(); got != "hello from "+second {
			t.Fatalf("request %d after the replacement answered %q, want hello from %s", i, got, second)
		}
	}
	st, _ := r.Status(ctx, name)
	t.Logf("served %s by watching %v: %+v", name, labels, st.Members[0].Resolved)
	if st.Members[0].WatchError != "" {
		t.Errorf("watch error: %s", st.Members[0].WatchError)
	}
}

// TestWatchFailing: a watch whose engine fails keeps the member's addresses and says why.
func TestWatchFailing(t *testing.T) {
	s := startEdge(t, "", nil) // Docker always fails
	r := routerOf(t, s)
	name, b := freeName(t), echoBackend(t)
	w := &providers.Watch{Kind: providers.WatchContainers, Labels: map[string]string{"a": "b"}, Port: 80}
	if err := r.Set(tctx(t), testOwner, name, 0, []endpoint.Member{{Target: "docker", Addresses: []string{b}, Watch: w, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watch error", func() bool {
		st, err := r.Status(tctx(t), name)
		return err == nil && st.Members[0].WatchError != ""
	})
	if got := lookup(t, name, 5); len(got) != 5 || got[0] != b {
		t.Fatalf("with a failing watch, answers %v; want the member's addresses %s", got, b)
	}
	bad := *w
	bad.Kind = "pods"
	err := r.Set(tctx(t), testOwner, name, 0, []endpoint.Member{{Target: "docker", Watch: &bad, Weight: 100}})
	if err == nil || !strings.Contains(err.Error(), "watch kind") {
		t.Fatalf("a watch of kind pods: %v", err)
	}
}

// TestWatchTasksSwarm: the same against the real engine in swarm mode (`. hack/lib.sh; ensure_swarm`): a
// labelled service publishing its port in host mode is served through the edge, and its replacement task after a
// forced update.
func TestWatchTasksSwarm(t *testing.T) {
	cli := dockertest.Client(t)
	ctx := tctx(t)
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		if os.Getenv("BERTH_REQUIRE_SWARM") != "" {
			t.Fatalf("swarm required (BERTH_REQUIRE_SWARM) but the engine is not a swarm manager (state %q)", info.Swarm.LocalNodeState)
		}
		t.Skipf("the engine is not a swarm manager (state %q): run `. hack/lib.sh; ensure_swarm` first", info.Swarm.LocalNodeState)
	}
	if err := dockertest.BuildImage(ctx, cli, watchAppPkg, watchImage); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{watchLabel: strconv.FormatInt(time.Now().UnixNano(), 36)}
	replicas := uint64(1)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "berth-edge-test-" + labels[watchLabel], Labels: labels},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: watchImage, Args: []string{"serve"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Order: swarm.UpdateOrderStartFirst},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8080, PublishMode: swarm.PortConfigPublishModeHost}}},
	}
	created, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli.ServiceRemove(ctx, created.ID)
	})

	s := startEdge(t, "", func(o *Options) { o.Docker = DockerClient })
	r := routerOf(t, s)
	name := freeName(t)
	w := &providers.Watch{Kind: providers.WatchTasks, Labels: labels, Port: 8080, HealthPath: "/healthz"}
	if err := r.Set(ctx, testOwner, name, 0, []endpoint.Member{{Target: "swarm", Watch: w, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	answer := func() string {
		resp, err := hc.Get("http://" + name + "/")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	var first string
	eventually(t, "the edge to forward to the service's task", func() bool {
		first = answer()
		return strings.HasPrefix(first, "hello from ")
	})
	svc, _, err := cli.ServiceInspectWithRaw(ctx, created.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.TaskTemplate.ForceUpdate++
	if _, err := cli.ServiceUpdate(ctx, created.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var second string
	eventually(t, "the edge to forward to the replacement task", func() bool {
		second = answer()
		return strings.HasPrefix(second, "hello from ") && second != first
	})
	st, _ := r.Status(ctx, name)
	t.Logf("%s answered %q, then %q after a forced update; resolved now %+v", name, first, second, st.Members[0].Resolved)
}
