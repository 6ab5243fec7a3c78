package swarm_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

// TestCanarySpec: the canary runs the new task template once, labelled as the workload's canary, on the same
// networks without the workload's alias, published at the checked port in host mode only (none of the workload's
// public ports, which the service holds).
func TestCanarySpec(t *testing.T) {
	for _, publish := range []string{berthswarm.PublishIngress, berthswarm.PublishHost} {
		t.Run(publish, func(t *testing.T) {
			w := httpChecked()
			w.Health.HTTP.Port = 9090 // not a public port: the service publishes it for berth's probe
			d := desiredOf(w)
			spec, err := berthswarm.PublishSpecFor(d, "<network-id>", time.Second, publish)
			if err != nil {
				t.Fatal(err)
			}
			c := berthswarm.CanarySpecFor(spec, d)
			if want := berthswarm.CanaryName(d.Owner, w.Name); c.Name != want || c.Name == spec.Name {
				t.Errorf("name %q, want %q (service %q)", c.Name, want, spec.Name)
			}
			l := c.Labels
			if l[berthswarm.LabelCanary] != spec.Name || l[providers.LabelSpecHash] != d.SpecHash ||
				l[providers.LabelWorkload] != w.Name || l[providers.LabelInstance] != "berth" ||
				l[berthswarm.LabelHealth] != spec.Labels[berthswarm.LabelHealth] {
				t.Errorf("labels %v", l)
			}
			if _, ok := l[berthswarm.LabelPublicPorts]; ok {
				t.Errorf("the canary says berth's proxy serves it: %v", l)
			}
			cs := c.TaskTemplate.ContainerSpec
			if cs.Labels[berthswarm.LabelCanary] != spec.Name || cs.Labels[providers.LabelSpecHash] != d.SpecHash {
				t.Errorf("container labels %v", cs.Labels)
			}
			if _, ok := spec.TaskTemplate.ContainerSpec.Labels[berthswarm.LabelCanary]; ok {
				t.Error("the service's own container labels were changed")
			}
			if cs.Image != w.Image || strings.Join(cs.Env, ",") != strings.Join(spec.TaskTemplate.ContainerSpec.Env, ",") {
				t.Errorf("container spec %+v, want the service's", cs)
			}
			if n := c.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "<network-id>" || len(n[0].Aliases) != 0 {
				t.Errorf("networks %+v, want the environment network without aliases", n)
			}
			if len(spec.TaskTemplate.Networks[0].Aliases) != 1 {
				t.Error("the service's own network aliases were changed")
			}
			if c.Mode.Replicated == nil || *c.Mode.Replicated.Replicas != 1 {
				t.Errorf("mode %+v, want one replica", c.Mode)
			}
			ps := c.EndpointSpec.Ports
			if len(ps) != 1 || ps[0].TargetPort != 9090 || ps[0].PublishMode != swarm.PortConfigPublishModeHost ||
				ps[0].PublishedPort != 0 {
				t.Errorf("ports %+v, want 9090 in host mode at a port the engine picks", ps)
			}
		})
	}
}

// TestCanaryName: a canary's name is the service's with "-canary", and a long one is cut to swarm's 63
// characters, distinct from the service's.
func TestCanaryName(t *testing.T) {
	o := providers.Owner{Instance: "berth", Environment: "prod"}
	if got := berthswarm.CanaryName(o, "web"); got != "berth-berth-prod-web-canary" {
		t.Errorf("CanaryName = %q", got)
	}
	long := providers.Owner{Instance: "berth", Environment: "pr-2147483647"}
	w := "a-rather-long-workload-name-of-forty-chars"
	c, s := berthswarm.CanaryName(long, w), berthswarm.ServiceName(long, w)
	if len(c) > 63 || c == s || c == berthswarm.CanaryName(long, w+"x") {
		t.Errorf("CanaryName = %q (%d characters), service %q", c, len(c), s)
	}
}

// TestProbeEachSpecsCheck: List probes each task with the check of the spec it runs: during a rollout to a spec
// whose check fails, the old tasks (of the service's previous spec) still read healthy.
func TestProbeEachSpecsCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	_, ps, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(ps)

	good := httpChecked()
	bad := good
	bad.Env = map[string]string{"GREETING": "two"}
	h := *good.Health
	h.HTTP = &schema.HTTPCheck{Path: "/nonexistent", Port: 8080}
	bad.Health = &h
	oldSpec, err := berthswarm.ServiceSpecFor(desiredOf(good), "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	newSpec, err := berthswarm.ServiceSpecFor(desiredOf(bad), "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	svc := swarm.Service{Spec: newSpec, PreviousSpec: &oldSpec}
	run := swarm.TaskStateRunning
	published := func(tk swarm.Task) swarm.Task {
		tk.NodeID = "node1"
		tk.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 8080,
			PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost}}
		return tk
	}
	ts := []swarm.Task{
		published(task("old1", 1, desiredOf(good).SpecHash, run, run)),
		published(task("old2", 2, desiredOf(good).SpecHash, run, run)),
		published(task("new1", 1, desiredOf(bad).SpecHash, run, run)),
		published(task("unchecked", 3, "other", swarm.TaskStateStarting, run)), // not running: not probed
	}
	nodeAddr := func(string) string { return "127.0.0.1" }
	health := berthswarm.ProbeEach(context.Background(), svc, ts, nodeAddr)
	want := map[string]string{"old1": "healthy", "old2": "healthy", "new1": "unhealthy"}
	if len(health) != len(want) {
		t.Errorf("probed %v, want %v", health, want)
	}
	for id, st := range want {
		if health[id].State != st {
			t.Errorf("task %s: %+v, want %s", id, health[id], st)
		}
	}
	o := berthswarm.Observe(svc, ts, "swarm-prod", health)
	ready := map[string]bool{}
	for _, r := range o.Replicas {
		ready[r.ID] = r.Ready()
	}
	if !ready["old1"] || !ready["old2"] || ready["new1"] {
		t.Errorf("ready %v, want the old tasks only", ready)
	}

	// Rolled back (the failing spec is now the previous one): each task still gets its own spec's check.
	back := swarm.Service{Spec: oldSpec, PreviousSpec: &newSpec}
	health = berthswarm.ProbeEach(context.Background(), back, ts, nodeAddr)
	for id, st := range want {
		if health[id].State != st {
			t.Errorf("after a rollback, task %s: %+v, want %s", id, health[id], st)
		}
	}

	// A spec without an HTTP or TCP check is not probed at all: its running tasks keep the engine's word.
	plain := referenceWorkload("web")
	plain.Health = nil
	plainSpec, err := berthswarm.ServiceSpecFor(desiredOf(plain), "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mixed := swarm.Service{Spec: newSpec, PreviousSpec: &plainSpec}
	ts[0].Spec.ContainerSpec.Labels[providers.LabelSpecHash] = desiredOf(plain).SpecHash
	health = berthswarm.ProbeEach(context.Background(), mixed, ts[:1], nodeAddr)
	if len(health) != 0 {
		t.Errorf("a task of a spec without a probed check: %v", health)
	}
}
