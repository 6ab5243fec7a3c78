package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/docker"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/schema"
)

const (
	conformanceImage   = "berth-test-app:dev"
	conformanceImageV2 = "berth-test-app:conformance-v2"
	conformanceAppPkg  = "github.com/berth-dev/berth/examples/quickstart/app"
	conformanceWait    = 60 * time.Second
)

// TestConformance runs the shared provider suite on the local Docker engine: a unique instance, public ports on
// 127.0.0.1 (free ports), drift and look-alikes made through the Docker API.
func TestConformance(t *testing.T) {
	cli := dockertest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dockertest.BuildImage(ctx, cli, conformanceAppPkg, conformanceImage); err != nil {
		t.Fatalf("build test image: %v", err)
	}
	if err := cli.ImageTag(ctx, conformanceImage, conformanceImageV2); err != nil {
		t.Fatalf("tag %s: %v", conformanceImageV2, err)
	}
	t.Setenv("HOME", t.TempDir()) // after the build, which wants the developer's Go build cache

	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	target := "docker-" + owner.Instance
	t.Cleanup(func() { sweep(t, cli, owner.Instance) })

	var mu sync.Mutex
	ports := map[string]int{} // one stable public port per workload name
	publicPort := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		if ports[name] == 0 {
			ports[name] = freeTCPPort(t)
		}
		return ports[name]
	}
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			p, err := docker.NewWithClient(cli, schema.Target{Name: target, Type: "docker",
				Settings: map[string]any{"publicAddress": "127.0.0.1"}},
				providers.Options{Instance: owner.Instance, Background: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			return p
		},
		Target:  target,
		Owner:   owner,
		Image:   conformanceImage,
		ImageV2: conformanceImageV2,
		Workload: func(name string) schema.Workload {
			return schema.Workload{
				Name:     name,
				Image:    conformanceImage,
				Args:     []string{"serve"},
				Env:      map[string]string{"GREETING": "hello", "PORT": "8080"},
				Ports:    []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: publicPort(name)}},
				Replicas: 1,
				Health: &schema.HealthCheck{
					HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
					Interval: schema.Duration(300 * time.Millisecond),
					Timeout:  schema.Duration(2 * time.Second),
					Retries:  3,
				},
			}
		},
		Probe: func(ctx context.Context, w schema.Workload) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				"http://127.0.0.1:"+strconv.Itoa(w.Ports[0].HostPort)+"/", nil)
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
		},
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			f := filters.NewArgs(
				filters.Arg("label", providers.LabelInstance+"="+owner.Instance),
				filters.Arg("label", providers.LabelEnvironment+"="+owner.Environment),
				filters.Arg("label", providers.LabelWorkload+"="+workload),
				filters.Arg("label", providers.LabelReplica+"="+strconv.Itoa(i)))
			cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: f})
			if err != nil {
				t.Fatalf("drift: list containers: %v", err)
			}
			if len(cs) != 1 {
				t.Fatalf("drift: %d running containers of %s replica %d, want 1", len(cs), workload, i)
			}
			switch kind {
			case conformance.DriftRemove:
				err = cli.ContainerRemove(ctx, cs[0].ID, container.RemoveOptions{Force: true})
			case conformance.DriftStop:
				timeout := 10
				err = cli.ContainerStop(ctx, cs[0].ID, container.StopOptions{Timeout: &timeout})
			default:
				t.Fatalf("drift: unknown kind %q", kind)
			}
			if err != nil {
				t.Fatalf("drift %s of container %.12s: %v", kind, cs[0].ID, err)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			name := fmt.Sprintf("berth-%s-%s-%s-lookalike", owner.Instance, owner.Environment, workload)
			resp, err := cli.ContainerCreate(ctx, &container.Config{Image: conformanceImage, Cmd: []string{"serve"}},
				&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
			if err != nil {
				t.Fatalf("look-alike: create %s: %v", name, err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), conformanceWait)
				defer cancel()
				if err := cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
					t.Errorf("look-alike: remove %s: %v", name, err)
				}
			})
			if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
				t.Fatalf("look-alike: start %s: %v", name, err)
			}
			return func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), conformanceWait)
				defer cancel()
				ci, err := cli.ContainerInspect(ctx, resp.ID)
				if err != nil && !cerrdefs.IsNotFound(err) {
					t.Errorf("look-alike: inspect %s: %v", name, err)
				}
				return err == nil && ci.State != nil && ci.State.Running
			}
		},
		Unhealthy: unhealthy,
		Tamper:    tamperHooks(cli, owner),
		Unmanaged: unmanaged(cli, owner),
		Secrets:   &conformance.SecretsCase{Leaks: leaks(cli, owner)},
		Timeout:   conformanceWait,
	})
}

// tamperHooks change one managed field of a workload's replica 0 behind berth's back, through the engine API, as an
// operator would: `docker update` for resources (the only field a container lets change in place), and for the
// rest `docker rm -f` and `docker run` again under the same name with berth's labels copied and one field changed.
// The public port and the HTTP check are berth's proxy and prober configuration, read from the labels they run
// from: an operator changes them the same way, with --label. The environment network is berth's only side object
// on the engine, and the engine refuses to remove it while replicas are attached: no TamperObject hook.
func tamperHooks(cli *client.Client, owner providers.Owner) map[string]func(context.Context, *testing.T, string) {
	return map[string]func(context.Context, *testing.T, string){
		conformance.TamperImage: recreate(cli, owner, func(c *container.Config, _ *container.HostConfig) {
			c.Image = conformanceImageV2
		}),
		conformance.TamperCommand: recreate(cli, owner, func(c *container.Config, _ *container.HostConfig) {
			c.Entrypoint = []string{"/app", "serve"} // runs "/app serve serve": still serves
		}),
		conformance.TamperArgs: recreate(cli, owner, func(c *container.Config, _ *container.HostConfig) {
			c.Cmd = append(c.Cmd, "by-hand")
		}),
		conformance.TamperEnv: recreate(cli, owner, func(c *container.Config, _ *container.HostConfig) {
			for i, kv := range c.Env {
				if strings.HasPrefix(kv, "GREETING=") {
					c.Env[i] = "GREETING=set by hand"
				}
			}
		}),
		conformance.TamperPorts: recreate(cli, owner, func(c *container.Config, h *container.HostConfig) {
			p := nat.Port("9090/tcp")
			c.ExposedPorts[p] = struct{}{}
			h.PortBindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1"}}
		}),
		conformance.TamperHealth: recreate(cli, owner, func(c *container.Config, _ *container.HostConfig) {
			var h schema.HealthCheck
			if err := json.Unmarshal([]byte(c.Labels[docker.LabelHealth]), &h); err != nil {
				panic(err) // berth wrote it
			}
			h.Retries = 9
			b, _ := json.Marshal(h)
			c.Labels[docker.LabelHealth] = string(b)
		}),
		conformance.TamperResources: func(ctx context.Context, t *testing.T, workload string) {
			ci := replicaZero(ctx, t, cli, owner, workload)
			_, err := cli.ContainerUpdate(ctx, ci.ID, container.UpdateConfig{Resources: container.Resources{
				Memory: 1 << 30, MemorySwap: -1}})
			if err != nil {
				t.Fatalf("docker update --memory 1g %s: %v", ci.Name, err)
			}
		},
		conformance.TamperReplicas: func(ctx context.Context, t *testing.T, workload string) {
			ci := replicaZero(ctx, t, cli, owner, workload)
			cfg, hc, nc := copyOf(ci, workload)
			cs := containersOf(ctx, t, cli, owner, workload)
			cfg.Labels[providers.LabelReplica] = strconv.Itoa(len(cs)) // the next index
			run(ctx, t, cli, cfg, hc, nc, strings.TrimPrefix(ci.Name, "/")+"-by-hand")
		},
	}
}

// containersOf lists the containers of workload (all states).
func containersOf(ctx context.Context, t *testing.T, cli *client.Client, owner providers.Owner, workload string) []container.Summary {
	t.Helper()
	f := filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+owner.Instance),
		filters.Arg("label", providers.LabelEnvironment+"="+owner.Environment),
		filters.Arg("label", providers.LabelWorkload+"="+workload))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("list containers of %s: %v", workload, err)
	}
	return cs
}

// replicaZero inspects the running container of workload's replica 0.
func replicaZero(ctx context.Context, t *testing.T, cli *client.Client, owner providers.Owner, workload string) container.InspectResponse {
	t.Helper()
	for _, c := range containersOf(ctx, t, cli, owner, workload) {
		if c.Labels[providers.LabelReplica] == "0" && c.State == container.StateRunning {
			ci, err := cli.ContainerInspect(ctx, c.ID)
			if err != nil {
				t.Fatalf("inspect %.12s: %v", c.ID, err)
			}
			return ci
		}
	}
	t.Fatalf("no running replica 0 of %s", workload)
	return container.InspectResponse{}
}

// copyOf is what `docker run` needs to make a copy of ci by hand: its config and labels, its host settings, and
// berth's network with the workload's alias.
func copyOf(ci container.InspectResponse, workload string) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	cfg := *ci.Config
	cfg.Hostname = ""
	cfg.Labels = maps.Clone(ci.Config.Labels)
	cfg.Env = slices.Clone(ci.Config.Env)
	cfg.Cmd = slices.Clone(ci.Config.Cmd)
	cfg.ExposedPorts = maps.Clone(ci.Config.ExposedPorts)
	hc := *ci.HostConfig
	hc.PortBindings = maps.Clone(ci.HostConfig.PortBindings)
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		string(hc.NetworkMode): {Aliases: []string{workload}},
	}}
	return &cfg, &hc, nc
}

func run(ctx context.Context, t *testing.T, cli *client.Client, cfg *container.Config, hc *container.HostConfig,
	nc *network.NetworkingConfig, name string) {
	t.Helper()
	resp, err := cli.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if err != nil {
		t.Fatalf("docker create %s: %v", name, err)
	}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("docker start %s: %v", name, err)
	}
}

// recreate is a Tamper hook: replica 0 removed and run again by hand under its name, berth's labels copied, with
// edit applied.
func recreate(cli *client.Client, owner providers.Owner, edit func(*container.Config, *container.HostConfig)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		ci := replicaZero(ctx, t, cli, owner, workload)
		cfg, hc, nc := copyOf(ci, workload)
		edit(cfg, hc)
		if err := cli.ContainerRemove(ctx, ci.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("docker rm -f %s: %v", ci.Name, err)
		}
		run(ctx, t, cli, cfg, hc, nc, strings.TrimPrefix(ci.Name, "/"))
	}
}

// unmanaged connects replica 0 to a second network of the operator's (`docker network connect`): berth manages
// only its own network's membership, so the plan stays empty and Apply keeps the replica, still connected.
func unmanaged(cli *client.Client, owner providers.Owner) func(context.Context, *testing.T, string) func(context.Context) (bool, error) {
	return func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
		ci := replicaZero(ctx, t, cli, owner, workload)
		name := "operator-" + owner.Instance
		// Labelled with the instance only so that the sweep removes it at the end.
		n, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge",
			Labels: map[string]string{providers.LabelInstance: owner.Instance}})
		if err != nil {
			t.Fatalf("docker network create %s: %v", name, err)
		}
		if err := cli.NetworkConnect(ctx, n.ID, ci.ID, nil); err != nil {
			t.Fatalf("docker network connect %s %s: %v", name, ci.Name, err)
		}
		return func(ctx context.Context) (bool, error) {
			got, err := cli.ContainerInspect(ctx, ci.ID)
			if err != nil {
				return false, err
			}
			_, ok := got.NetworkSettings.Networks[name]
			return ok, nil
		}
	}
}

// leaks searches what the engine holds of the workload besides its containers' environment (which holds the
// value, as `docker inspect` shows): the labels and names of every container of the instance, the labels of its
// networks.
func leaks(cli *client.Client, owner providers.Owner) func(context.Context, *testing.T, string, string) string {
	return func(ctx context.Context, t *testing.T, workload, value string) string {
		f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+owner.Instance))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatalf("leaks: list containers: %v", err)
		}
		for _, c := range cs {
			ci, err := cli.ContainerInspect(ctx, c.ID)
			if err != nil {
				t.Fatalf("leaks: inspect %.12s: %v", c.ID, err)
			}
			if strings.Contains(ci.Name, value) {
				return "the name of container " + ci.Name
			}
			for k, v := range ci.Config.Labels {
				if strings.Contains(k+"="+v, value) {
					return fmt.Sprintf("label %s of container %s", k, ci.Name)
				}
			}
			if ci.Config.Labels[providers.LabelWorkload] == workload && !slices.ContainsFunc(ci.Config.Env, func(kv string) bool {
				return kv == "GREETING="+value
			}) && ci.State.Running {
				t.Errorf("container %s runs without GREETING from the secret in its environment", ci.Name)
			}
		}
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Fatalf("leaks: list networks: %v", err)
		}
		for _, n := range nets {
			for k, v := range n.Labels {
				if strings.Contains(k+"="+v, value) {
					return fmt.Sprintf("label %s of network %s", k, n.Name)
				}
			}
		}
		return ""
	}
}

// sweep removes every container and network of the instance, whatever state the suite left.
func sweep(t *testing.T, cli *client.Client, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), conformanceWait)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+instance))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("sweep: %v", err)
	}
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("sweep container %.12s: %v", c.ID, err)
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("sweep networks: %v", err)
	}
	for _, n := range nets {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil {
			t.Errorf("sweep network %s: %v", n.Name, err)
		}
	}
}

// freeTCPPort returns a port free on 127.0.0.1 right now. It may run on a subtest's goroutine, so it reports
// with Errorf (0 then makes the workload's Apply fail on port 8080 or succeed on it by chance: the test failed).
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
