package swarm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

// httpChecked is the reference workload with the quickstart's HTTP health check instead of a command one.
func httpChecked() schema.Workload {
	w := referenceWorkload("web")
	w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080},
		Interval: schema.Duration(time.Second), Timeout: schema.Duration(time.Second), Retries: 2}
	return w
}

// TestHTTPHealthSpec: an HTTP check is no engine Healthcheck (a scratch image has nothing to run it with) but
// LabelHealth, which berth probes, at a port published in host mode for it; the service reads back as desired.
func TestHTTPHealthSpec(t *testing.T) {
	for _, h := range []*schema.HealthCheck{
		httpChecked().Health,
		{TCP: &schema.TCPCheck{Port: 9090}, StartPeriod: schema.Duration(3 * time.Second)},
	} {
		t.Run(h.Kind(), func(t *testing.T) {
			w := referenceWorkload("web")
			w.Health = h
			d := desiredOf(w)
			spec, err := berthswarm.ServiceSpecFor(d, "n", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if cs := spec.TaskTemplate.ContainerSpec; cs.Healthcheck != nil {
				t.Errorf("engine health check %+v, want none", cs.Healthcheck)
			}
			if spec.Labels[berthswarm.LabelHealth] == "" {
				t.Errorf("no %s label: %v", berthswarm.LabelHealth, spec.Labels)
			}
			var hp []swarm.PortConfig
			for _, pc := range spec.EndpointSpec.Ports {
				if pc.PublishMode == swarm.PortConfigPublishModeHost {
					hp = append(hp, pc)
				}
			}
			port := 8080
			if h.TCP != nil {
				port = 9090
			}
			if len(hp) != 1 || int(hp[0].TargetPort) != port || hp[0].PublishedPort != 0 || hp[0].Protocol != "tcp" {
				t.Errorf("host-mode ports %+v, want one for %d/tcp at a port the engine picks", hp, port)
			}
			got := berthswarm.ReadBack(swarm.Service{Spec: spec})
			if want := (&berthswarm.Provider{}).Normalize(w); providers.SpecHash(got) != providers.SpecHash(want) {
				t.Errorf("read back %+v (health %+v), want %+v (health %+v)", got, got.Health, want, want.Health)
			}
			// The label removed by hand reads as no check: drift.
			delete(spec.Labels, berthswarm.LabelHealth)
			if got := berthswarm.ReadBack(swarm.Service{Spec: spec}); got.Health != nil {
				t.Errorf("without the label the check reads %+v", got.Health)
			}
		})
	}
}

// TestProgressProbed: with an HTTP check a running task is ready only once berth's probe passed; one that fails
// it Retries times is an error.
func TestProgressProbed(t *testing.T) {
	d := desiredOf(httpChecked())
	h := d.SpecHash
	svc := swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "berth-berth-prod-web",
		Labels: map[string]string{providers.LabelSpecHash: h}}}}
	run := swarm.TaskStateRunning
	ts := []swarm.Task{task("a", 1, h, run, run), task("b", 2, h, run, run)}
	healthy := berthswarm.ProbeResult{State: "healthy"}
	for _, c := range []struct {
		name   string
		health map[string]berthswarm.ProbeResult
		done   bool
		err    bool
	}{
		{"not probed yet", nil, false, false},
		{"one starting", map[string]berthswarm.ProbeResult{"a": healthy, "b": {State: "starting"}}, false, false},
		{"both healthy", map[string]berthswarm.ProbeResult{"a": healthy, "b": healthy}, true, false},
		{"one unhealthy", map[string]berthswarm.ProbeResult{"a": healthy, "b": {State: "unhealthy", Err: "GET /healthz: 500"}}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			done, err := berthswarm.Progress(svc, ts, d, berthswarm.DefaultFailedTasks, c.health)
			if done != c.done || (err != nil) != c.err {
				t.Errorf("done %t, err %v; want done %t, an error %t", done, err, c.done, c.err)
			}
		})
	}
}

// TestChecker probes a task's host-mode published health port, once per interval, healthy after a pass and
// unhealthy after Retries failures in a row (not before).
func TestChecker(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	_, ps, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(ps)

	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	w := httpChecked()
	chk := berthswarm.NewChecker(w.Health, func(node string) string {
		if node != "node1" {
			t.Errorf("node %q", node)
		}
		return "127.0.0.1"
	}, clock)
	tk := task("a", 1, "h", swarm.TaskStateRunning, swarm.TaskStateRunning)
	tk.NodeID = "node1"
	ctx := context.Background()
	if r := berthswarm.CheckTask(chk, ctx, tk); r.State != "starting" || r.Err == "" {
		t.Errorf("before the port is published: %+v, want starting with an error", r)
	}
	now = now.Add(time.Second)
	tk.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 8080, PublishedPort: uint32(port),
		PublishMode: swarm.PortConfigPublishModeHost}}
	if r := berthswarm.CheckTask(chk, ctx, tk); r.State != "healthy" {
		t.Errorf("serving: %+v", r)
	}
	if r := berthswarm.CheckTask(chk, ctx, tk); r.State != "healthy" || hits.Load() != 1 {
		t.Errorf("within the interval: %+v after %d probes, want healthy after 1", r, hits.Load())
	}
	status.Store(http.StatusInternalServerError)
	now = now.Add(time.Second)
	if r := berthswarm.CheckTask(chk, ctx, tk); r.State != "healthy" || r.Err == "" {
		t.Errorf("one failure of 2: %+v, want still healthy with the error", r)
	}
	now = now.Add(time.Second)
	if r := berthswarm.CheckTask(chk, ctx, tk); r.State != "unhealthy" {
		t.Errorf("two failures: %+v", r)
	}
	status.Store(http.StatusNoContent)
	now = now.Add(time.Second)
	if r := berthswarm.CheckTask(chk, ctx, tk); r.State != "healthy" {
		t.Errorf("serving again: %+v", r)
	}

	// A TCP check of a closed port fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tcp := berthswarm.NewChecker(&schema.HealthCheck{TCP: &schema.TCPCheck{Port: 9090}, Retries: 1},
		func(string) string { return "127.0.0.1" }, clock)
	tk.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 9090, PublishedPort: uint32(dead),
		PublishMode: swarm.PortConfigPublishModeHost}}
	if r := berthswarm.CheckTask(tcp, ctx, tk); r.State != "unhealthy" || r.Err == "" {
		t.Errorf("tcp to a closed port: %+v", r)
	}
}

// TestHealthFailureHolds: a rollout whose new spec fails the HTTP check berth probes fails Apply in its canary,
// naming the check and where it failed, and leaves the service as it was (same spec, same tasks, no update); the
// canary is gone. A canary left behind (berth stopped mid-Apply) is never a replica in List and goes with the next
// Apply; a rollout to a healthy spec then passes its canary and converges.
func TestHealthFailureHolds(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "hf" + hex.EncodeToString(b[:]), Environment: "dev"}
	target := "swarm-" + owner.Instance
	t.Cleanup(func() { sweep(t, base, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()
	p := newTestProvider(t, base, target, owner.Instance)

	w := httpChecked()
	w.Image, w.Replicas, w.Resources = testImage, 1, schema.Resources{}
	w.Health.Interval = schema.Duration(200 * time.Millisecond)
	w.Ports = w.Ports[:1]
	w.Ports[0].HostPort = freeTCPPort(t)
	good := providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, good); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	name := berthswarm.ServiceName(owner, w.Name)
	before, _, err := base.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	taskIDs := func() []string {
		ts, err := base.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", name),
			filters.Arg("desired-state", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tk := range ts {
			ids = append(ids, tk.ID)
		}
		slices.Sort(ids)
		return ids
	}
	tasksBefore := taskIDs()

	// A leftover canary of an Apply that never finished: not a replica, not a workload of its own.
	leftover := berthswarm.CanarySpecFor(before.Spec, good)
	if _, err := base.ServiceCreate(ctx, leftover, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatalf("create a leftover canary: %v", err)
	}
	waitCond(t, ctx, "the leftover canary's task to run", func() (bool, error) {
		ts, err := base.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", leftover.Name))})
		return err == nil && len(ts) > 0 && ts[0].Status.State == swarm.TaskStateRunning, err
	})
	obs, err := p.List(ctx, owner, target)
	if err != nil || len(obs) != 1 || len(obs[0].Replicas) != 1 {
		t.Fatalf("List with a leftover canary: %+v, %v; want the one workload with its one replica", obs, err)
	}

	bad := w
	bad.Env = map[string]string{"GREETING": "broken", "PORT": "8080"}
	h := *w.Health
	h.HTTP = &schema.HTTPCheck{Path: "/no-such-path", Port: 8080}
	bad.Health = &h
	badHash := providers.SpecHash(bad)
	err = p.Apply(ctx, providers.Desired{Owner: owner, Target: target, Workload: bad, SpecHash: badHash})
	var ce *berthswarm.CanaryError
	if !errors.As(err, &ce) || ce.Hash != badHash || ce.Kept != good.SpecHash ||
		!strings.Contains(err.Error(), "fails its http health check (GET /no-such-path on port 8080)") ||
		!strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), " at 127.0.0.1:") {
		t.Fatalf("Apply of a failing check: %v; want a CanaryError naming the check, the address and the answer", err)
	}
	after, _, err := base.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Version.Index != before.Version.Index || after.Spec.Labels[providers.LabelSpecHash] != good.SpecHash {
		t.Errorf("the service changed: version %d → %d, hash %s", before.Version.Index, after.Version.Index,
			after.Spec.Labels[providers.LabelSpecHash])
	}
	if got := taskIDs(); !slices.Equal(got, tasksBefore) {
		t.Errorf("tasks %v, want the same %v", got, tasksBefore)
	}
	canaries, err := base.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+owner.Instance), filters.Arg("label", berthswarm.LabelCanary))})
	if err != nil || len(canaries) != 0 {
		t.Errorf("canaries after the failed Apply: %d, %v; want none (the leftover and its own removed)", len(canaries), err)
	}

	// A canary still in its start period when Apply's context ends: Apply fails saying so, the canary is removed
	// all the same, the service is untouched.
	slow := bad
	sh := *bad.Health
	sh.StartPeriod = schema.Duration(time.Hour)
	slow.Health = &sh
	short, stop := context.WithTimeout(ctx, 3*time.Second)
	err = p.Apply(short, providers.Desired{Owner: owner, Target: target, Workload: slow, SpecHash: providers.SpecHash(slow)})
	stop()
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last probe") {
		t.Errorf("Apply whose context ends before the canary is healthy: %v", err)
	}
	canaries, err = base.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+owner.Instance), filters.Arg("label", berthswarm.LabelCanary))})
	if err != nil || len(canaries) != 0 {
		t.Errorf("canaries after an Apply cut short: %d, %v; want none", len(canaries), err)
	}
	if after, _, err := base.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{}); err != nil ||
		after.Version.Index != before.Version.Index {
		t.Errorf("the service changed after an Apply cut short: %v", err)
	}

	// A healthy new spec passes its canary and rolls.
	v2 := w
	v2.Env = map[string]string{"GREETING": "two", "PORT": "8080"}
	d2 := providers.Desired{Owner: owner, Target: target, Workload: v2, SpecHash: providers.SpecHash(v2)}
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatalf("Apply of a healthy spec: %v", err)
	}
	obs, err = p.List(ctx, owner, target)
	if err != nil || len(obs) != 1 || obs[0].SpecHash != d2.SpecHash || len(obs[0].Replicas) != 1 || !obs[0].Replicas[0].Ready() {
		t.Fatalf("List after the rollout: %+v, %v", obs, err)
	}
	canaries, err = base.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+owner.Instance), filters.Arg("label", berthswarm.LabelCanary))})
	if err != nil || len(canaries) != 0 {
		t.Errorf("canaries after the rollout: %d, %v", len(canaries), err)
	}
}

// TestCommandHealthHolds: a command check needs no canary, because swarm runs it itself: during a rollout to a
// spec whose command check fails, the new task is never running-and-healthy, swarm keeps the old tasks (start-first
// stops an old one only once the new one is healthy) and rolls the update back, and Apply fails. At every look
// while Apply runs, both old replicas are ready and no new one is.
func TestCommandHealthHolds(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "hc" + hex.EncodeToString(b[:]), Environment: "dev"}
	target := "swarm-" + owner.Instance
	t.Cleanup(func() { sweep(t, base, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()
	p := newTestProvider(t, base, target, owner.Instance)

	w := referenceWorkload("web") // the command check /app healthcheck
	w.Image, w.Replicas, w.Resources = testImage, 2, schema.Resources{}
	w.Ports = w.Ports[:1]
	w.Ports[0].HostPort = freeTCPPort(t)
	good := providers.Desired{Owner: owner, Target: target, Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, good); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	bad := w
	bad.Env = map[string]string{"GREETING": "broken", "PORT": "8080"}
	h := *w.Health
	h.Command = []string{"/app", "no-such-mode"} // exits 1
	bad.Health = &h
	badHash := providers.SpecHash(bad)

	done := make(chan error, 1)
	go func() {
		done <- p.Apply(ctx, providers.Desired{Owner: owner, Target: target, Workload: bad, SpecHash: badHash})
	}()
	looks, newSeen := 0, false
	var problems []string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var err error
watch:
	for {
		obs, lerr := p.List(ctx, owner, target)
		looks++
		switch {
		case lerr != nil:
			problems = append(problems, "List: "+lerr.Error())
		case len(obs) != 1:
			problems = append(problems, "not one workload listed")
		default:
			ready := 0
			for _, r := range obs[0].Replicas {
				switch {
				case r.SpecHash == good.SpecHash && r.Ready():
					ready++
				case r.SpecHash == badHash:
					newSeen = true
					if r.Ready() {
						problems = append(problems, "a replica of the failing spec is ready: "+r.ID)
					}
				}
			}
			if ready < 2 {
				problems = append(problems, "old replicas ready: "+strconv.Itoa(ready))
			}
		}
		select {
		case err = <-done:
			break watch
		case <-tick.C:
		}
	}
	if err == nil || !strings.Contains(err.Error(), "roll") {
		t.Errorf("Apply of a failing command check: %v; want swarm's rollback", err)
	}
	if len(problems) > 0 {
		t.Errorf("%d of %d looks went wrong, first: %s", len(problems), looks, problems[0])
	}
	t.Logf("%d looks, a task of the failing spec seen: %t; Apply: %v", looks, newSeen, err)
	canaries, lerr := base.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+owner.Instance), filters.Arg("label", berthswarm.LabelCanary))})
	if lerr != nil || len(canaries) != 0 {
		t.Errorf("canaries: %d, %v; a command check needs none", len(canaries), lerr)
	}
	if err := p.Apply(ctx, good); err != nil {
		t.Fatalf("Apply of the old spec again: %v", err)
	}
}
