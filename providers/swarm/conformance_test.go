package swarm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

const (
	testImage   = "berth-test-app:dev"
	testImageV2 = "berth-test-app:swarm-v2"
	testAppPkg  = "github.com/berth-dev/berth/examples/quickstart/app"
	testWait    = 90 * time.Second
)

// testImages builds the quickstart image and a second tag of it, then makes HOME a temporary directory (after the
// build, which wants the developer's Go build cache).
func testImages(t *testing.T, cli *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dockertest.BuildImage(ctx, cli, testAppPkg, testImage); err != nil {
		t.Fatalf("build test image: %v", err)
	}
	if err := cli.ImageTag(ctx, testImage, testImageV2); err != nil {
		t.Fatalf("tag %s: %v", testImageV2, err)
	}
	t.Setenv("HOME", t.TempDir())
}

// faultyClient is a client of the local engine whose transport answers the next n requests itself with a 503,
// without reaching the engine, after inject(n).
func faultyClient(t *testing.T, base *client.Client) (cli *client.Client, inject func(n int)) {
	t.Helper()
	ft := &faultTransport{base: base.HTTPClient().Transport}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHTTPClient(&http.Client{Transport: ft}),
		client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, func(n int) { ft.left.Add(int64(n)) }
}

type faultTransport struct {
	base     http.RoundTripper
	left     atomic.Int64
	injected atomic.Int64
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		n := f.left.Load()
		if n <= 0 {
			return f.base.RoundTrip(req)
		}
		if f.left.CompareAndSwap(n, n-1) {
			break
		}
	}
	f.injected.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	body := `{"message":"injected fault: service unavailable"}`
	return &http.Response{
		StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Proto: "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}, nil
}

// routingMesh tells whether the ingress routing mesh can work here: it needs IPVS in the kernel.
func routingMesh() bool {
	_, err := os.Stat("/proc/net/ip_vs")
	return err == nil
}

// TestConformance runs the shared provider suite on the local engine in swarm mode: drift by removing or stopping
// a task's container through the API (swarm replaces the task), look-alikes as unlabelled services, faults as 503
// answers of the transport, and public ports probed on 127.0.0.1 (through the routing mesh when this kernel has
// IPVS, else through berth's proxies of host-mode publishing, which the provider then chooses).
func TestConformance(t *testing.T) {
	base := swarmClient(t)
	testImages(t, base)
	cli, inject := faultyClient(t, base)

	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	target := "swarm-" + owner.Instance
	t.Cleanup(func() { sweep(t, base, owner.Instance) })

	var mu sync.Mutex
	ports := map[string]int{}
	publicPort := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		if ports[name] == 0 {
			ports[name] = freeTCPPort(t)
		}
		return ports[name]
	}
	// Public ports answer on 127.0.0.1 through the routing mesh where the kernel has IPVS, else (the provider
	// detects it) through berth's proxies in host mode.
	var probe func(ctx context.Context, w schema.Workload) (string, error)
	if routingMesh() || newTestProvider(t, cli, target, owner.Instance).Publish == berthswarm.PublishHost {
		httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		probe = func(ctx context.Context, w schema.Workload) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(w.Ports[0].HostPort)+"/", nil)
			if err != nil {
				return "", err
			}
			resp, err := httpc.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
			return string(body), err
		}
	} else {
		t.Log("no IPVS in this kernel and the provider publishes through the routing mesh: the suite runs without Probe")
	}

	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			return newTestProvider(t, cli, target, owner.Instance)
		},
		Target:  target,
		Owner:   owner,
		Image:   testImage,
		ImageV2: testImageV2,
		Workload: func(name string) schema.Workload {
			w := referenceWorkload(name)
			w.Image = testImage
			w.Replicas = 1
			w.Resources = schema.Resources{}
			w.Ports[0].HostPort = publicPort(name)
			// The quickstart's own check: HTTP, which berth probes on each task (the image has no shell nor curl).
			w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080},
				Interval: schema.Duration(300 * time.Millisecond), Timeout: schema.Duration(2 * time.Second), Retries: 3}
			return w
		},
		Probe: probe,
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			drift(ctx, t, base, berthswarm.ServiceName(owner, workload), i, kind)
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			return lookAlike(ctx, t, base, berthswarm.ServiceName(owner, workload)+"-lookalike")
		},
		Unhealthy: unhealthy,
		Tamper:    tamperHooks(base, owner),
		Unmanaged: unmanagedLabel(base, owner),
		Faults:    inject,
		Secrets: &conformance.SecretsCase{Leaks: func(ctx context.Context, t *testing.T, _, value string) string {
			return swarmLeaks(ctx, t, base, owner, value)
		}},
		Timeout: testWait,
	})
}

// tamperHooks change one managed field of a workload's service behind berth's back, each one ServiceUpdate through
// the engine API with the current version, as `docker service update` does (--image, --entrypoint, --args,
// --env-add, --publish-add, --health-retries, --limit-memory, --replicas); and delete the environment network,
// berth's one side object, as `docker service update --network-rm` and `docker network rm` do.
func tamperHooks(cli *client.Client, owner providers.Owner) map[string]func(context.Context, *testing.T, string) {
	edit := func(f func(*swarm.ServiceSpec)) func(context.Context, *testing.T, string) {
		return func(ctx context.Context, t *testing.T, workload string) {
			serviceUpdate(ctx, t, cli, berthswarm.ServiceName(owner, workload), f)
		}
	}
	return map[string]func(context.Context, *testing.T, string){
		conformance.TamperImage: edit(func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = testImageV2 }),
		conformance.TamperCommand: edit(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Command = []string{"/app", "serve"} // runs "/app serve serve": still serves
		}),
		conformance.TamperArgs: edit(func(s *swarm.ServiceSpec) {
			cs := s.TaskTemplate.ContainerSpec
			cs.Args = append(cs.Args, "by-hand")
		}),
		conformance.TamperEnv: edit(func(s *swarm.ServiceSpec) {
			cs := s.TaskTemplate.ContainerSpec
			cs.Env = append(cs.Env, "GREETING=set by hand") // --env-add: the last value of a name wins
			for i, kv := range cs.Env[:len(cs.Env)-1] {
				if strings.HasPrefix(kv, "GREETING=") {
					cs.Env = append(cs.Env[:i], cs.Env[i+1:]...)
					break
				}
			}
		}),
		conformance.TamperPorts: func(ctx context.Context, t *testing.T, workload string) {
			port := uint32(freeTCPPort(t))
			serviceUpdate(ctx, t, cli, berthswarm.ServiceName(owner, workload), func(s *swarm.ServiceSpec) {
				s.EndpointSpec.Ports = append(s.EndpointSpec.Ports, swarm.PortConfig{Protocol: swarm.PortConfigProtocolTCP,
					TargetPort: 9090, PublishedPort: port, PublishMode: swarm.PortConfigPublishModeIngress})
			})
		},
		conformance.TamperHealth: edit(func(s *swarm.ServiceSpec) {
			// The HTTP check berth probes lives in its service label (`docker service update --label-add`).
			s.Labels[berthswarm.LabelHealth] = strings.Replace(s.Labels[berthswarm.LabelHealth], `"retries":3`, `"retries":9`, 1)
		}),
		conformance.TamperResources: edit(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 1 << 30}}
		}),
		conformance.TamperReplicas: edit(func(s *swarm.ServiceSpec) { *s.Mode.Replicated.Replicas++ }),
		conformance.TamperObject + "network": func(ctx context.Context, t *testing.T, workload string) {
			name := berthswarm.NetworkName(owner)
			serviceUpdate(ctx, t, cli, berthswarm.ServiceName(owner, workload), func(s *swarm.ServiceSpec) {
				s.TaskTemplate.Networks = nil
			})
			// The engine refuses while tasks of the old spec are still attached: retried until they left.
			waitCond(t, ctx, "docker network rm "+name, func() (bool, error) {
				err := cli.NetworkRemove(ctx, name)
				return err == nil || cerrdefs.IsNotFound(err), err
			})
			// The node keeps its copy until the last task left it: gone when `docker network ls` no longer shows it.
			waitCond(t, ctx, "network "+name+" to go from the node", func() (bool, error) {
				nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
				return err == nil && len(nets) == 0, err
			})
		},
	}
}

// serviceUpdate reads the service and updates it with f applied, passing the version read.
func serviceUpdate(ctx context.Context, t *testing.T, cli *client.Client, service string, f func(*swarm.ServiceSpec)) {
	t.Helper()
	svc, _, err := cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service %s: %v", service, err)
	}
	f(&svc.Spec)
	if _, err := cli.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("docker service update %s: %v", service, err)
	}
}

// unmanagedLabel adds a service label of the operator's (`docker service update --label-add`): berth manages only
// its own berth.dev/ labels, so the plan stays empty and Apply keeps it.
func unmanagedLabel(cli *client.Client, owner providers.Owner) func(context.Context, *testing.T, string) func(context.Context) (bool, error) {
	const label = "ops.example/owner"
	return func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
		name := berthswarm.ServiceName(owner, workload)
		serviceUpdate(ctx, t, cli, name, func(s *swarm.ServiceSpec) { s.Labels[label] = "team-a" })
		return func(ctx context.Context) (bool, error) {
			svc, _, err := cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
			return err == nil && svc.Spec.Labels[label] == "team-a", err
		}
	}
}

// newTestProvider is the provider on cli with the test's pace: fast polls and retries, a short update monitor.
func newTestProvider(t *testing.T, cli *client.Client, target, instance string) *berthswarm.Provider {
	t.Helper()
	p, err := berthswarm.NewWithClient(cli, schema.Target{Name: target, Type: "swarm"}, providers.Options{Instance: instance})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval = 100 * time.Millisecond
	p.RetryBase, p.RetryMax = 10*time.Millisecond, 200*time.Millisecond
	p.UpdateMonitor = 500 * time.Millisecond
	p.PublicAddress = "127.0.0.1"
	t.Cleanup(func() { p.Close() })
	return p
}

// referenceWorkload is the quickstart HTTP service with a command health check (swarm runs no HTTP probe).
func referenceWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:     name,
		Image:    "registry.example/berth-app:1",
		Args:     []string{"serve"},
		Env:      map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:    []schema.Port{{Name: "http", Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}, {Name: "metrics", Port: 9090, Protocol: "tcp"}},
		Replicas: 2,
		Resources: schema.Resources{
			CPUMillis: 250, MemoryBytes: 128 << 20,
		},
		Health: &schema.HealthCheck{
			Command:  []string{"/app", "healthcheck"},
			Interval: schema.Duration(300 * time.Millisecond),
			Timeout:  schema.Duration(2 * time.Second),
			Retries:  3,
		},
	}
}

// drift removes or stops the container of the i-th task (by slot) of service, then waits until swarm saw it: the
// task no longer runs.
func drift(ctx context.Context, t *testing.T, cli *client.Client, service string, i int, kind string) {
	t.Helper()
	ts, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatalf("drift: list tasks: %v", err)
	}
	var running []swarm.Task
	for _, tk := range ts {
		if tk.Status.State == swarm.TaskStateRunning && tk.Status.ContainerStatus != nil {
			running = append(running, tk)
		}
	}
	if len(running) == 0 {
		t.Fatalf("drift: no running task of %s", service)
	}
	sort.Slice(running, func(a, b int) bool { return running[a].Slot < running[b].Slot })
	task := running[i%len(running)]
	id := task.Status.ContainerStatus.ContainerID
	switch kind {
	case conformance.DriftRemove:
		err = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	case conformance.DriftStop:
		timeout := 10
		err = cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
	default:
		t.Fatalf("drift: unknown kind %q", kind)
	}
	if err != nil {
		t.Fatalf("drift %s of container %.12s: %v", kind, id, err)
	}
	waitCond(t, ctx, fmt.Sprintf("swarm to see task %s stop", task.ID), func() (bool, error) {
		tk, _, err := cli.TaskInspectWithRaw(ctx, task.ID)
		if err != nil {
			return false, err
		}
		return tk.Status.State != swarm.TaskStateRunning || tk.DesiredState != swarm.TaskStateRunning, nil
	})
}

// lookAlike creates an unlabelled service named name, removed at cleanup, and returns whether it still exists.
func lookAlike(ctx context.Context, t *testing.T, cli *client.Client, name string) func() bool {
	t.Helper()
	one := uint64(1)
	resp, err := cli.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: testImage, Args: []string{"serve"}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("look-alike: create %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := cli.ServiceRemove(ctx, resp.ID); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("look-alike: remove %s: %v", name, err)
		}
	})
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		_, _, err := cli.ServiceInspectWithRaw(ctx, resp.ID, swarm.ServiceInspectOptions{})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("look-alike: inspect %s: %v", name, err)
		}
		return err == nil
	}
}

// waitCond polls cond every 50ms until it holds, failing the test at ctx's end or after testWait.
func waitCond(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, testWait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		case <-tick.C:
		}
	}
}

// sweep removes every service and network of the instance, whatever state the tests left.
func sweep(t *testing.T, cli *client.Client, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+instance))
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		t.Errorf("sweep: %v", err)
	}
	for _, s := range svcs {
		if err := cli.ServiceRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("sweep service %s: %v", s.Spec.Name, err)
		}
	}
	// Networks go once their tasks have left them.
	waitCond(t, ctx, "the instance's containers to go", func() (bool, error) {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		return err == nil && len(cs) == 0, err
	})
	objs, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		t.Errorf("sweep secret objects: %v", err)
	}
	for _, o := range objs {
		if err := cli.SecretRemove(ctx, o.ID); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("sweep secret object %s: %v", o.Spec.Name, err)
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("sweep networks: %v", err)
	}
	for _, n := range nets {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("sweep network %s: %v", n.Name, err)
		}
	}
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Errorf("free port: %v", err)
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// unhealthy points w's HTTP check at a path the quickstart app answers 404 on.
func unhealthy(w schema.Workload) schema.Workload {
	h := *w.Health
	check := *h.HTTP
	check.Path = "/nonexistent"
	h.HTTP = &check
	w.Health = &h
	return w
}
