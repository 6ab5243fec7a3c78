package fake_test

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite on the in-memory fake. The fake's state is its runtime, so every
// "new provider instance" (a restart of berth) is the same *fake.Provider.
func TestConformance(t *testing.T) {
	p := fake.New()
	p.SetHealth(func(w schema.Workload) bool {
		return w.Health == nil || w.Health.HTTP == nil || w.Health.HTTP.Path != unhealthyPath
	})
	conformance.Run(t, conformance.Harness{
		New:     func(*testing.T) providers.Provider { return p },
		Target:  "local",
		Owner:   providers.Owner{Instance: "conformance", Environment: "dev"},
		Image:   "app:1",
		ImageV2: "app:2",
		Workload: func(name string) schema.Workload {
			return schema.Workload{
				Name:     name,
				Provider: "local",
				Image:    "app:1",
				Args:     []string{"serve"},
				Env:      map[string]string{"GREETING": "hello", "PORT": "8080"},
				Ports:    []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}},
				Replicas: 1,
				Health: &schema.HealthCheck{
					HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
					Interval: schema.Duration(time.Second),
					Timeout:  schema.Duration(time.Second),
					Retries:  3,
				},
			}
		},
		Drift: func(_ context.Context, t *testing.T, workload string, i int, kind string) {
			var err error
			switch kind {
			case conformance.DriftRemove:
				err = p.RemoveReplica(workload, i)
			case conformance.DriftStop:
				err = p.StopReplica(workload, i)
			default:
				t.Fatalf("unknown drift kind %q", kind)
			}
			if err != nil {
				t.Fatalf("drift %s of %s replica %d: %v", kind, workload, i, err)
			}
		},
		// The fake knows no unowned objects: the nearest is a workload of another berth instance, named like ours.
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			other := providers.Owner{Instance: "someone-else", Environment: "dev"}
			w := schema.Workload{Name: workload + "-copy", Provider: "local", Image: "app:1", Replicas: 1}
			p.Seed(providers.Desired{Owner: other, Target: "local", Workload: w, SpecHash: providers.SpecHash(w)})
			t.Cleanup(func() { _ = p.Delete(context.Background(), other, "local", w.Name) })
			return func() bool {
				obs, err := p.List(ctx, other, "local")
				return err == nil && len(obs) == 1 && len(obs[0].Replicas) == 1
			}
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage:   edit(p, func(w *schema.Workload) { w.Image = "app:hand" }),
			conformance.TamperCommand: edit(p, func(w *schema.Workload) { w.Command = []string{"/bin/sh"} }),
			conformance.TamperArgs:    edit(p, func(w *schema.Workload) { w.Args = []string{"debug"} }),
			conformance.TamperEnv:     edit(p, func(w *schema.Workload) { w.Env["GREETING"] = "by hand" }),
			conformance.TamperPorts:   edit(p, func(w *schema.Workload) { w.Ports[0].HostPort = 9090 }),
			conformance.TamperHealth:  edit(p, func(w *schema.Workload) { w.Health.Retries = 9 }),
			conformance.TamperResources: edit(p, func(w *schema.Workload) {
				w.Resources.MemoryBytes = 1 << 30
			}),
			conformance.TamperReplicas: edit(p, func(w *schema.Workload) { w.Replicas++ }),
			conformance.TamperObject + "lb": func(_ context.Context, t *testing.T, workload string) {
				if err := p.RemoveObject(workload, "load balancer"); err != nil {
					t.Fatal(err)
				}
			},
		},
		// What the workload would answer: its GREETING, plain or from a secret.
		Probe: func(_ context.Context, w schema.Workload) (string, error) {
			if n, ok := w.SecretEnv["GREETING"]; ok {
				v, _ := p.SecretValue(w.Name, n)
				return string(v), nil
			}
			obs, err := p.List(context.Background(), providers.Owner{Instance: "conformance", Environment: "dev"}, "local")
			for _, o := range obs {
				if o.Workload == w.Name {
					return o.Spec.Env["GREETING"], err
				}
			}
			return "", err
		},
		// The fake's app, like the quickstart app, answers 404 on any path but its health path.
		Unhealthy: func(w schema.Workload) schema.Workload {
			h := *w.Health
			http := *h.HTTP
			http.Path = unhealthyPath
			h.HTTP = &http
			w.Health = &h
			return w
		},
		Secrets: &conformance.SecretsCase{},
		Faults:  func(n int) { p.FailNext("", n, false) },
		Timeout: 30 * time.Second,
	})
}

// unhealthyPath is the health check path the fake's health checking fails (SetHealth).
const unhealthyPath = "/nonexistent"

// edit is a Tamper hook editing the fake's live spec.
func edit(p *fake.Provider, f func(*schema.Workload)) func(context.Context, *testing.T, string) {
	return func(_ context.Context, t *testing.T, workload string) {
		if err := p.Edit(workload, f); err != nil {
			t.Fatal(err)
		}
	}
}
