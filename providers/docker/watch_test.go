package docker

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// addresses are eps without their Watch, for comparisons of port and address (Watch is a pointer).
func addresses(eps []providers.Endpoint) []providers.Endpoint {
	out := make([]providers.Endpoint, len(eps))
	for i, ep := range eps {
		ep.Watch = nil
		out[i] = ep
	}
	return out
}

// TestWatchOf: the labels are the workload's four ownership labels, the port the container port, and the health
// path that of an HTTP check on that very port only.
func TestWatchOf(t *testing.T) {
	k := wkey{Instance: "berth", Environment: "prod", Target: "local", Workload: "web"}
	labels := map[string]string{providers.LabelInstance: "berth", providers.LabelEnvironment: "prod",
		providers.LabelTarget: "local", providers.LabelWorkload: "web"}
	for _, c := range []struct {
		name string
		h    *schema.HealthCheck
		path string
	}{
		{"none", nil, ""},
		{"http same port", &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}}, "/healthz"},
		{"http empty path", &schema.HealthCheck{HTTP: &schema.HTTPCheck{Port: 8080}}, "/"},
		{"http other port", &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 9090}}, ""},
		{"tcp", &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}}, ""},
		{"command", &schema.HealthCheck{Command: []string{"/app", "check"}}, ""},
	} {
		got := watchOf("tcp://10.0.0.5:2376", k, c.h, 8080)
		want := &providers.Watch{Kind: providers.WatchContainers, Engine: "tcp://10.0.0.5:2376", Labels: labels,
			Port: 8080, HealthPath: c.path}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, want)
		}
	}
}

// TestWatchEngine: a provider New built names its engine by the host setting ("" for the environment's default);
// one built on a client, by the client's address.
func TestWatchEngine(t *testing.T) {
	for host, want := range map[string]string{"": "", "tcp://10.0.0.5:2376": "tcp://10.0.0.5:2376"} {
		tgt := schema.Target{Name: "local", Type: "docker", Settings: map[string]any{}}
		if host != "" {
			tgt.Settings["host"] = host
		}
		pp, err := New(tgt, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pp.(*Provider).engine; got != want {
			t.Errorf("host %q: engine %q, want %q", host, got, want)
		}
		pp.(*Provider).Close()
	}
}

// TestWatchSelectsReplicas: the containers that the engine lists by exactly an endpoint's Watch labels are the
// workload's running replicas on this target (not another workload's of the environment, nor the same workload's
// of another environment), each publishing the watched port on 127.0.0.1 where its health path answers; after a
// rollout, the new replicas and no others.
func TestWatchSelectsReplicas(t *testing.T) {
	e := newEnv(t)
	hp := freePort(t)
	w := web(2, hp, "watched")
	e.apply(e.p, w)
	other := web(1, freePort(t), "other")
	other.Name = "other"
	e.apply(e.p, other)
	stage := e.owner
	stage.Environment = "stage"
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	ws := web(1, freePort(t), "stage")
	if err := e.p.Apply(ctx, providers.Desired{Owner: stage, Target: e.target, Workload: ws, SpecHash: providers.SpecHash(ws)}); err != nil {
		t.Fatal(err)
	}

	check := func(what string) {
		t.Helper()
		var o providers.Observed
		for _, x := range e.list() {
			if x.Workload == "web" {
				o = x
			}
		}
		if len(o.Endpoints) != 1 || o.Endpoints[0].Watch == nil {
			t.Fatalf("%s: endpoints %+v", what, o.Endpoints)
		}
		got := o.Endpoints[0].Watch
		want := &providers.Watch{Kind: providers.WatchContainers, Engine: e.cli.DaemonHost(), Port: 8080,
			HealthPath: "/healthz", Labels: map[string]string{providers.LabelInstance: e.owner.Instance,
				providers.LabelEnvironment: e.owner.Environment, providers.LabelTarget: e.target,
				providers.LabelWorkload: "web"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: watch %+v, want %+v", what, got, want)
		}
		running := map[string]bool{}
		for _, r := range o.Replicas {
			if r.Running {
				running[r.ID] = true
			}
		}
		f := filters.NewArgs()
		for k, v := range got.Labels {
			f.Add("label", k+"="+v)
		}
		sums, err := e.cli.ContainerList(ctx, container.ListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range sums {
			ids = append(ids, s.ID)
			ci, err := e.cli.ContainerInspect(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			port, ok := publishedPort(ci, got.Port)
			if !ok {
				t.Fatalf("%s: container %s does not publish %d on 127.0.0.1: %+v", what, s.ID[:12], got.Port,
					ci.NetworkSettings.Ports)
			}
			resp, err := freshClient.Get("http://127.0.0.1:" + strconv.Itoa(port) + got.HealthPath)
			if err != nil {
				t.Fatalf("%s: %s: %v", what, got.HealthPath, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s: %s", what, got.HealthPath, resp.Status)
			}
		}
		if len(ids) != len(running) || !slices.ContainsFunc(ids, func(id string) bool { return running[id] }) ||
			slices.ContainsFunc(ids, func(id string) bool { return !running[id] }) {
			t.Fatalf("%s: the watch labels list %v, the running replicas are %v", what, ids, running)
		}
		if len(ids) != w.Replicas {
			t.Fatalf("%s: %d containers, want %d", what, len(ids), w.Replicas)
		}
	}
	check("after create")
	w.Env["GREETING"] = "rolled"
	e.apply(e.p, w)
	check("after a rollout")
}
