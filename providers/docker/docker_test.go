package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/schema"
)

const (
	testImage = "berth-test-app:dev"
	appPkg    = "github.com/berth-dev/berth/examples/quickstart/app"
	deadline  = 60 * time.Second
)

var (
	buildOnce sync.Once
	buildErr  error
)

// env is one test's world: a unique instance and target, a provider, and a sweep of everything at cleanup.
type env struct {
	t      *testing.T
	cli    *client.Client
	owner  providers.Owner
	target string
	p      *Provider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cli := dockertest.Client(t)
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildErr = dockertest.BuildImage(ctx, cli, appPkg, testImage)
	})
	if buildErr != nil {
		t.Fatalf("build test image: %v", buildErr)
	}
	// After the build, which wants the developer's Go build cache.
	t.Setenv("HOME", t.TempDir())
	var b [4]byte
	rand.Read(b[:])
	inst := "t" + hex.EncodeToString(b[:])
	e := &env{t: t, cli: cli, owner: providers.Owner{Instance: inst, Environment: "dev"}, target: "docker-" + inst}
	t.Cleanup(e.sweep)
	e.p = e.provider()
	return e
}

// provider builds a new Provider for the env's target (public ports on 127.0.0.1), closed at cleanup.
func (e *env) provider() *Provider {
	e.t.Helper()
	p, err := NewWithClient(e.cli, schema.Target{Name: e.target, Type: "docker",
		Settings: map[string]any{"publicAddress": "127.0.0.1"}}, providers.Options{Instance: e.owner.Instance, Background: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p
}

// sweep removes every container and network of the env's instance, whatever state the test left.
func (e *env) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+e.owner.Instance))
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Errorf("sweep: %v", err)
	}
	for _, c := range cs {
		if err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			e.t.Errorf("sweep container %s: %v", c.ID[:12], err)
		}
	}
	nets, _ := e.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range nets {
		if err := e.cli.NetworkRemove(ctx, n.ID); err != nil {
			e.t.Errorf("sweep network %s: %v", n.Name, err)
		}
	}
}

func (e *env) desired(w schema.Workload) providers.Desired {
	return providers.Desired{Owner: e.owner, Target: e.target, Workload: w, SpecHash: providers.SpecHash(w)}
}

func (e *env) apply(p *Provider, w schema.Workload) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	if err := p.Apply(ctx, e.desired(w)); err != nil {
		e.t.Fatalf("Apply %s: %v", w.Name, err)
	}
}

func (e *env) list() []providers.Observed {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	obs, err := e.p.List(ctx, e.owner, e.target)
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	return obs
}

// containers lists the env's containers (all states) carrying the extra label filter, if any.
func (e *env) containers(extra ...string) []container.Summary {
	e.t.Helper()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+e.owner.Instance))
	for _, x := range extra {
		f.Add("label", x)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// web is the example app serving HTTP on 8080, public on hostPort, checked on /healthz.
func web(replicas, hostPort int, greeting string) schema.Workload {
	return schema.Workload{
		Name:     "web",
		Image:    testImage,
		Args:     []string{"serve"},
		Env:      map[string]string{"GREETING": greeting, "PORT": "8080"},
		Ports:    []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: hostPort}},
		Replicas: replicas,
		Health: &schema.HealthCheck{
			HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
			Interval: schema.Duration(300 * time.Millisecond),
			Timeout:  schema.Duration(2 * time.Second),
			Retries:  3,
		},
	}
}

var freshClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(c *http.Client, port int) (string, error) {
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// waitFor polls cond until it holds or the deadline passes; cond's string says what was last seen.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(deadline)
	var last string
	for time.Now().Before(end) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an outcome
	}
	t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
}

func replicaIDs(o providers.Observed) map[string]bool {
	ids := map[string]bool{}
	for _, r := range o.Replicas {
		ids[r.ID] = true
	}
	return ids
}

func onlyWorkload(t *testing.T, obs []providers.Observed) providers.Observed {
	t.Helper()
	if len(obs) != 1 {
		t.Fatalf("List: %d workloads, want 1: %+v", len(obs), obs)
	}
	return obs[0]
}

func checkReady(t *testing.T, o providers.Observed, hash string, n int) {
	t.Helper()
	if o.SpecHash != hash || len(o.Replicas) != n {
		t.Fatalf("observed hash %s with %d replicas, want %s with %d: %+v", o.SpecHash, len(o.Replicas), hash, n, o.Replicas)
	}
	for _, r := range o.Replicas {
		if !r.Ready() || r.SpecHash != hash || r.Health != "healthy" {
			t.Fatalf("replica not ready on the new spec: %+v", r)
		}
	}
}

func TestCreateScaleRepeat(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	w := web(1, port, "hello")
	e.apply(e.p, w)
	if s, err := get(freshClient, port); err != nil || !strings.HasPrefix(s, "hello from ") {
		t.Fatalf("GET through the public port: %q, %v", s, err)
	}
	o := onlyWorkload(t, e.list())
	checkReady(t, o, providers.SpecHash(w), 1)
	if o.Spec.Image != testImage || o.Spec.Env["GREETING"] != "hello" || o.Spec.Replicas != 1 || o.Workload != "web" {
		t.Fatalf("spec read back: %+v", o.Spec)
	}
	first := o.Replicas[0].ID

	w.Replicas = 3
	e.apply(e.p, w)
	o = onlyWorkload(t, e.list())
	checkReady(t, o, providers.SpecHash(w), 3)
	hosts := map[string]bool{}
	waitFor(t, "answers from 3 replicas", func() (bool, string) {
		s, err := get(freshClient, port)
		if err != nil {
			return false, err.Error()
		}
		hosts[s] = true
		return len(hosts) == 3, fmt.Sprint(hosts)
	})

	// Nothing changed: nothing replaced.
	before := replicaIDs(o)
	e.apply(e.p, w)
	o = onlyWorkload(t, e.list())
	if after := replicaIDs(o); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("repeat Apply replaced containers: before %v after %v", before, after)
	}

	w.Replicas = 1
	e.apply(e.p, w)
	o = onlyWorkload(t, e.list())
	checkReady(t, o, providers.SpecHash(w), 1)
	if o.Replicas[0].ID != first {
		t.Fatalf("scale down kept %s, want replica 0 (%s)", o.Replicas[0].ID, first)
	}
	if n := len(e.containers()); n != 1 {
		t.Fatalf("%d containers after scale down, want 1", n)
	}
}

func TestRollingUpdateZeroFailures(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.apply(e.p, web(2, port, "v1"))

	keepAlive := &http.Client{Timeout: 10 * time.Second}
	var stop atomic.Bool
	var okCount, failCount atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for _, c := range []*http.Client{freshClient, keepAlive} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := get(c, port); err != nil {
					failCount.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				} else {
					okCount.Add(1)
				}
			}
		}()
	}
	w2 := web(2, port, "v2")
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	err := e.p.Apply(ctx, e.desired(w2))
	cancel()
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("Apply v2: %v", err)
	}
	if n := failCount.Load(); n > 0 {
		t.Fatalf("%d failed requests during the rolling update (of %d): %v", n, n+okCount.Load(), failures)
	}
	t.Logf("%d requests succeeded during the update", okCount.Load())
	if okCount.Load() < 10 {
		t.Fatalf("only %d requests ran during the update: the client loop did not exercise it", okCount.Load())
	}
	for range 10 {
		for _, c := range []*http.Client{freshClient, keepAlive} {
			if s, err := get(c, port); err != nil || !strings.HasPrefix(s, "v2 from ") {
				t.Fatalf("after the update: %q, %v", s, err)
			}
		}
	}
	checkReady(t, onlyWorkload(t, e.list()), providers.SpecHash(w2), 2)
	if n := len(e.containers()); n != 2 {
		t.Fatalf("%d containers after the update, want 2", n)
	}
}

func TestRepairsRemovedAndStoppedReplicas(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	w := web(3, port, "hello")
	e.apply(e.p, w)
	o := onlyWorkload(t, e.list())
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := e.cli.ContainerRemove(ctx, o.Replicas[0].ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.cli.ContainerStop(ctx, o.Replicas[1].ID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	untouched := o.Replicas[2].ID
	o = onlyWorkload(t, e.list())
	ready := 0
	for _, r := range o.Replicas {
		if r.Ready() {
			ready++
		}
	}
	if ready != 1 {
		t.Fatalf("List after drift: %d ready replicas, want 1: %+v", ready, o.Replicas)
	}
	e.apply(e.p, w)
	o = onlyWorkload(t, e.list())
	checkReady(t, o, providers.SpecHash(w), 3)
	if !replicaIDs(o)[untouched] {
		t.Fatalf("the healthy replica %s was replaced", untouched)
	}
	if s, err := get(freshClient, port); err != nil || !strings.HasPrefix(s, "hello from ") {
		t.Fatalf("GET: %q, %v", s, err)
	}
}

// lookalike runs an unlabelled container with the given name.
func (e *env) lookalike(name string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	resp, err := e.cli.ContainerCreate(ctx, &container.Config{Image: testImage, Cmd: []string{"work"}}, nil, nil, nil, name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		e.cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	})
	if err := e.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return resp.ID
}

func TestDeleteTouchesOnlyOurs(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	w := web(2, port, "hello")
	k := wkey{e.owner.Instance, e.owner.Environment, e.target, w.Name}

	// A stranger holding replica 0's name: a clear permanent error, then success once it is gone.
	name0 := containerName(k, providers.SpecHash(w), 0)
	squatter := e.lookalike(name0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	err := e.p.Apply(ctx, e.desired(w))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), name0) {
		t.Fatalf("Apply with a taken name: %v, want a permanent error naming %s", err, name0)
	}
	if err := e.cli.ContainerRemove(ctx, squatter, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}

	similar := e.lookalike("berth-" + e.owner.Instance + "-dev-web-lookalike")
	e.apply(e.p, w)
	if err := e.p.Delete(ctx, e.owner, e.target, "web"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if cs := e.containers(); len(cs) != 0 {
		t.Fatalf("%d owned containers left after Delete", len(cs))
	}
	if _, err := e.cli.ContainerInspect(ctx, similar); err != nil {
		t.Fatalf("the look-alike container is gone: %v", err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		c.Close()
		t.Fatal("public port still served after Delete")
	}
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+e.owner.Instance))})
	if err != nil || len(nets) != 0 {
		t.Fatalf("networks left after Delete: %v, %v", nets, err)
	}
	if err := e.p.Delete(ctx, e.owner, e.target, "web"); err != nil {
		t.Fatalf("Delete of what is gone: %v", err)
	}
	if obs := e.list(); len(obs) != 0 {
		t.Fatalf("List after Delete: %+v", obs)
	}
}

func TestNeverReadyKeepsOldServing(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	w1 := web(2, port, "v1")
	e.apply(e.p, w1)
	w2 := web(2, port, "v2")
	w2.Health.HTTP.Path = "/wrong"
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	err := e.p.Apply(ctx, e.desired(w2))
	if err == nil || errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply of a never-ready spec: %v, want a retryable error", err)
	}
	checkReady(t, onlyWorkload(t, e.list()), providers.SpecHash(w1), 2)
	if n := len(e.containers(providers.LabelSpecHash + "=" + providers.SpecHash(w2))); n != 0 {
		t.Fatalf("%d containers of the failed spec left", n)
	}
	for range 6 {
		if s, err := get(freshClient, port); err != nil || !strings.HasPrefix(s, "v1 from ") {
			t.Fatalf("old version not serving: %q, %v", s, err)
		}
	}
}

func TestCrashMidApplyConverges(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.apply(e.p, web(2, port, "v1"))
	w2 := web(2, port, "v2")
	w2.Health.StartPeriod = schema.Duration(2 * time.Second) // widen the window while the new replica is not ready
	h2 := providers.SpecHash(w2)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.p.Apply(ctx, e.desired(w2)) }()
	var adopted string
	waitFor(t, "a running container of the new spec", func() (bool, string) {
		for _, c := range e.containers(providers.LabelSpecHash + "=" + h2) {
			if c.State == "running" {
				adopted = c.ID
				return true, c.State
			}
		}
		return false, "none running"
	})
	cancel()
	if err := <-done; err == nil {
		t.Log("the abandoned Apply finished before it was cancelled")
	} else {
		t.Logf("abandoned Apply: %v", err)
	}
	e.p.Close() // the old berth is gone

	p2 := e.provider()
	e.p = p2
	e.apply(p2, w2)
	o := onlyWorkload(t, e.list())
	checkReady(t, o, h2, 2)
	if n := len(e.containers()); n != 2 {
		t.Fatalf("%d containers after recovery, want 2 (no duplicates)", n)
	}
	if !replicaIDs(o)[adopted] {
		t.Fatalf("the new-spec container %.12s left by the abandoned Apply was not reused", adopted)
	}
	if s, err := get(freshClient, port); err != nil || !strings.HasPrefix(s, "v2 from ") {
		t.Fatalf("GET: %q, %v", s, err)
	}
}

func TestRestartServesFromSync(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.apply(e.p, web(2, port, "hello"))
	e.p.Close()
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		c.Close()
		t.Fatal("public port still served after Close")
	}
	e.p = e.provider() // no Apply
	hosts := map[string]bool{}
	waitFor(t, "the public port served by the new provider from both replicas", func() (bool, string) {
		s, err := get(freshClient, port)
		if err != nil {
			return false, err.Error()
		}
		hosts[s] = true
		return len(hosts) == 2, fmt.Sprint(hosts)
	})
}

func TestCommandHealthCheck(t *testing.T) {
	e := newEnv(t)
	w := schema.Workload{
		Name:      "api",
		Image:     testImage,
		Args:      []string{"serve"},
		Env:       map[string]string{"PORT": "8080"},
		Ports:     []schema.Port{{Port: 8080, Protocol: "tcp"}},
		Replicas:  1,
		Resources: schema.Resources{CPUMillis: 500, MemoryBytes: 64 << 20},
		Health: &schema.HealthCheck{
			Command:  []string{"/app", "healthcheck"},
			Interval: schema.Duration(300 * time.Millisecond),
			Timeout:  schema.Duration(2 * time.Second),
			Retries:  3,
		},
	}
	e.apply(e.p, w)
	o := onlyWorkload(t, e.list())
	checkReady(t, o, providers.SpecHash(w), 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	ci, err := e.cli.ContainerInspect(ctx, o.Replicas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if hc := ci.Config.Healthcheck; hc == nil || strings.Join(hc.Test, " ") != "CMD /app healthcheck" {
		t.Fatalf("engine health check: %+v", ci.Config.Healthcheck)
	}
	if ci.HostConfig.NanoCPUs != 500_000_000 || ci.HostConfig.Memory != 64<<20 || ci.HostConfig.RestartPolicy.Name != "no" {
		t.Fatalf("host config: cpus %d memory %d restart %q", ci.HostConfig.NanoCPUs, ci.HostConfig.Memory, ci.HostConfig.RestartPolicy.Name)
	}
	if aliases := ci.NetworkSettings.Networks[networkName(e.owner.Instance, e.owner.Environment)]; aliases == nil ||
		!strings.Contains(strings.Join(aliases.Aliases, ","), "api") {
		t.Fatalf("network aliases: %+v", ci.NetworkSettings.Networks)
	}
}

func TestMissingImageIsPermanent(t *testing.T) {
	e := newEnv(t)
	w := web(1, freePort(t), "x")
	w.Image = "berth-missing-" + e.owner.Instance + ":none"
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	err := e.p.Apply(ctx, e.desired(w))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), w.Image) {
		t.Fatalf("Apply with a missing image: %v, want a permanent error naming it", err)
	}
}

func TestPublicPortTaken(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	err = e.p.Apply(ctx, e.desired(web(1, port, "x")))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("Apply on a taken public port: %v, want an error naming the address", err)
	}
	if n := len(e.containers()); n != 0 {
		t.Fatalf("%d containers created despite the taken port", n)
	}
}

// TestHandEditedReplicaReplaced: one replica changed by hand (`docker update --cpus`) keeps berth's labels, hash
// label included; List shows its live fields, and Apply replaces that one replica make-before-break while the
// public port keeps answering, and keeps the other.
func TestHandEditedReplicaReplaced(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	w := web(2, port, "v1")
	e.apply(e.p, w)
	o := onlyWorkload(t, e.list())
	var edited, intact string
	for _, r := range o.Replicas {
		if edited == "" {
			edited = r.ID // replica 0: it holds the deterministic name, so Apply must move it aside first
		} else {
			intact = r.ID
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := e.cli.ContainerUpdate(ctx, edited, container.UpdateConfig{Resources: container.Resources{NanoCPUs: 500_000_000}}); err != nil {
		t.Fatalf("docker update --cpus 0.5: %v", err)
	}
	o = onlyWorkload(t, e.list())
	if o.SpecHash != providers.SpecHash(w) || o.Spec.Resources.CPUMillis != 500 || o.Spec.Replicas != 2 {
		t.Fatalf("after docker update: hash %s, spec %+v; want the hand-set cpu of 500 millis, 2 replicas", o.SpecHash, o.Spec)
	}

	var stop atomic.Bool
	var okCount, failCount atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := get(freshClient, port); err != nil {
				failCount.Add(1)
			} else {
				okCount.Add(1)
			}
		}
	}()
	e.apply(e.p, w)
	stop.Store(true)
	wg.Wait()
	if n := failCount.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed while the edited replica was replaced", n, n+okCount.Load())
	}
	o = onlyWorkload(t, e.list())
	checkReady(t, o, providers.SpecHash(w), 2)
	ids := replicaIDs(o)
	if !ids[intact] || ids[edited] || o.Spec.Resources.CPUMillis != 0 {
		t.Fatalf("after Apply: replicas %v (edited %.12s, intact %.12s), spec %+v", ids, edited, intact, o.Spec)
	}
	if n := len(e.containers()); n != 2 {
		t.Fatalf("%d containers after the repair, want 2", n)
	}
}
