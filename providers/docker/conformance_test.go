package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

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
		Timeout: conformanceWait,
	})
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
