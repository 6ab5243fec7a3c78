package nomad_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite with the real Nomad API client against the emulator: drift as an
// allocation dying (KillAlloc) and an operator's `nomad alloc stop` (StopAlloc), field drift as `nomad job run` of
// the live job with one field edited (and `nomad job scale`), an unmanaged change as a meta key of someone else's,
// look-alikes as jobs without berth meta, faults as 500s, 429s and lost compare-and-sets.
func TestConformance(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	const tgt = "nomad-test"
	name := func(workload string) string {
		return fmt.Sprintf("berth-%s-%s-%s", owner.Instance, owner.Environment, workload)
	}
	ports := &hostPorts{}
	emu.FailCheckPath(unhealthyPath)
	conformance.Run(t, conformance.Harness{
		New:     func(t *testing.T) providers.Provider { return newProvider(t, emu, tgt) },
		Target:  tgt,
		Owner:   owner,
		Image:   "registry.example/berth-app:1",
		ImageV2: "registry.example/berth-app:2",
		Workload: func(n string) schema.Workload {
			w := ports.workload(n)
			w.Replicas = 1
			return w
		},
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			live := emu.LiveAllocs(testNamespace, name(workload))
			if len(live) == 0 {
				t.Fatalf("drift: no live allocation of %s", workload)
			}
			id := live[i%len(live)]
			var err error
			switch kind {
			case conformance.DriftRemove:
				err = emu.KillAlloc(id)
			case conformance.DriftStop:
				err = emu.StopAlloc(id)
			default:
				t.Fatalf("drift: unknown kind %q", kind)
			}
			if err != nil {
				t.Fatal(err)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			n := name(workload) + "-lookalike"
			emu.CreateLookAlike(testNamespace, n, 1)
			return func() bool { return emu.JobExists(testNamespace, n) }
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage: run(emu, name, func(j *api.Job) {
				task(j).Config["image"] = "registry.example/berth-app:hand"
			}),
			conformance.TamperCommand: run(emu, name, func(j *api.Job) { task(j).Config["entrypoint"] = []string{"/bin/sh"} }),
			conformance.TamperArgs:    run(emu, name, func(j *api.Job) { task(j).Config["args"] = []string{"debug"} }),
			conformance.TamperEnv:     run(emu, name, func(j *api.Job) { task(j).Env["GREETING"] = "by hand" }),
			conformance.TamperPorts: run(emu, name, func(j *api.Job) {
				j.TaskGroups[0].Networks[0].ReservedPorts[0].Value = 9090
			}),
			conformance.TamperHealth: run(emu, name, func(j *api.Job) {
				j.TaskGroups[0].Services[0].Checks[0].CheckRestart.Limit = 9
			}),
			conformance.TamperResources: run(emu, name, func(j *api.Job) { task(j).Resources.MemoryMB = new(1024) }),
			conformance.TamperReplicas: func(ctx context.Context, t *testing.T, workload string) {
				jobs := operator(t, emu).Jobs()
				j, _, err := jobs.Info(name(workload), nil)
				if err != nil {
					t.Fatal(err)
				}
				// `nomad job scale`
				if _, _, err := jobs.Scale(name(workload), *j.TaskGroups[0].Name, new(*j.TaskGroups[0].Count+1),
					"by hand", false, nil, nil); err != nil {
					t.Fatal(err)
				}
			},
		},
		Unmanaged: func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
			run(emu, name, func(j *api.Job) { j.Meta["team"] = "payments" })(ctx, t, workload)
			return func(ctx context.Context) (bool, error) {
				j, _, err := operator(t, emu).Jobs().Info(name(workload), nil)
				return err == nil && j.Meta["team"] == "payments", err
			}
		},
		// What the workload answers: the reference app echoes GREETING, here the environment each running
		// allocation's task started with (its env, and its env templates rendered from the variables).
		Probe: func(ctx context.Context, w schema.Workload) (string, error) {
			return probe(ctx, emu, name(w.Name))
		},
		Secrets: &conformance.SecretsCase{
			Leaks: func(ctx context.Context, t *testing.T, workload, value string) string {
				return leaks(t, emu, name(workload), value)
			},
		},
		Unhealthy: unhealthy,
		Faults: func(n int) { // one of each kind, the rest lost compare-and-sets
			emu.Fail(1, nomademu.ServerError)
			emu.Fail(1, nomademu.RateLimited)
			emu.Fail(max(n-2, 0), nomademu.Conflict)
		},
		Timeout: 60 * time.Second,
	})
}

// hostPorts gives each workload name of a conformance run a static host port of its own (the base and its
// preview copy, "<name>-pr", run side by side on the one node): 8080 for the first name, then the next free ones.
type hostPorts struct {
	mu    sync.Mutex
	ports map[string]int
}

func (h *hostPorts) workload(name string) schema.Workload {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ports == nil {
		h.ports = map[string]int{}
	}
	port, ok := h.ports[name]
	if !ok {
		port = 8080 + len(h.ports)
		if port >= 9090 { // the port the ports tamper moves to
			port++
		}
		h.ports[name] = port
	}
	w := referenceWorkload(name)
	w.Ports[0].HostPort = port
	return w
}

// operator is a Nomad client as an operator's CLI would hold it.
func operator(t *testing.T, emu *nomademu.Server) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: emu.URL(), SecretID: testToken, Namespace: testNamespace, Region: "global"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run is a Tamper hook doing what `nomad job run` of the edited job does: the live job, one field changed,
// registered again (against its modify index, as `nomad job run -check-index` would).
func run(emu *nomademu.Server, name func(string) string, edit func(*api.Job)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		jobs := operator(t, emu).Jobs()
		j, _, err := jobs.Info(name(workload), nil)
		if err != nil {
			t.Fatal(err)
		}
		edit(j)
		if _, _, err := jobs.EnforceRegister(j, *j.JobModifyIndex, nil); err != nil {
			t.Fatalf("nomad job run: %v", err)
		}
	}
}

func task(j *api.Job) *api.Task { return j.TaskGroups[0].Tasks[0] }

// probe answers as the reference app would: the GREETING of every running allocation of the job, one per line.
func probe(ctx context.Context, emu *nomademu.Server, job string) (string, error) {
	c, err := api.NewClient(&api.Config{Address: emu.URL(), SecretID: testToken, Namespace: testNamespace, Region: "global"})
	if err != nil {
		return "", err
	}
	allocs, _, err := c.Jobs().Allocations(job, false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", err
	}
	var out []string
	for _, a := range allocs {
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		env, ok := emu.AllocEnv(a.ID)
		if !ok {
			return "", fmt.Errorf("allocation %s: no environment", a.ID)
		}
		out = append(out, env["GREETING"])
	}
	if len(out) == 0 {
		return "", fmt.Errorf("job %s: no running allocation", job)
	}
	return strings.Join(out, "\n"), nil
}

// leaks searches what Nomad shows of the job besides the variable's items (the store the value is meant for): every
// version of the job (meta, templates, env), its allocations and deployments, and the variables' metadata.
func leaks(t *testing.T, emu *nomademu.Server, job, value string) string {
	t.Helper()
	c := operator(t, emu)
	versions, _, _, err := c.Jobs().Versions(job, true, nil)
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	allocs, _, err := c.Jobs().Allocations(job, true, nil)
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	deps, _, err := c.Jobs().Deployments(job, false, nil)
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	vars, _, err := c.Variables().PrefixList("", nil)
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	for what, v := range map[string]any{"the job's versions": versions, "the allocations": allocs,
		"the deployments": deps, "the variables' metadata": vars} {
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), value) {
			return what
		}
	}
	return ""
}

// TestConformanceReference runs the suite (its secret case is the point) with GREETING from a Nomad variable the
// operator owns: berth writes only the template reading it, never the value. A rotation is a new variable path
// (a fresh version), which changes the reference and so the spec.
func TestConformanceReference(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	owner := providers.Owner{Instance: "cfref", Environment: "dev"}
	const tgt = "nomad-test"
	name := func(workload string) string {
		return fmt.Sprintf("berth-%s-%s-%s", owner.Instance, owner.Environment, workload)
	}
	version := 0
	conformance.Run(t, conformance.Harness{
		New:      func(t *testing.T) providers.Provider { return newProvider(t, emu, tgt) },
		Target:   tgt,
		Owner:    owner,
		Image:    "registry.example/berth-app:1",
		Workload: (&hostPorts{}).workload,
		Probe: func(ctx context.Context, w schema.Workload) (string, error) {
			return probe(ctx, emu, name(w.Name))
		},
		Secrets: &conformance.SecretsCase{
			Source: func(ctx context.Context, t *testing.T, secret, value string) (schema.Secret, []byte) {
				version++
				path := fmt.Sprintf("nomad/jobs/shared/%s-v%d", secret, version)
				emu.SetVariable(testNamespace, path, map[string]string{"value": value})
				return schema.Secret{Nomad: &schema.NomadSecret{Path: path, Key: "value"}}, nil
			},
			Leaks: func(ctx context.Context, t *testing.T, workload, value string) string {
				if _, ok := emu.Variable(testNamespace, "nomad/jobs/"+name(workload)); ok {
					return "a variable berth wrote for a reference"
				}
				return leaks(t, emu, name(workload), value)
			},
		},
		Timeout: 60 * time.Second,
	})
}

// unhealthyPath is a path the emulated app answers 404 on (FailCheckPath), as the quickstart app does.
const unhealthyPath = "/nonexistent"

// unhealthy points w's HTTP check at unhealthyPath.
func unhealthy(w schema.Workload) schema.Workload {
	h := *w.Health
	check := *h.HTTP
	check.Path = unhealthyPath
	h.HTTP = &check
	w.Health = &h
	return w
}
