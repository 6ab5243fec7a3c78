package marathon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite against the emulator: drift as a killed task (Marathon
// relaunches it) and a task killed with scale (instances drop), field drift as the Marathon UI's edit (the live
// definition with one field changed, PUT with force=true) and a scale by the CLI, an unmanaged change as a field
// berth never sets and a label of someone else's, look-alikes as unlabelled apps beside ours, faults as 500/503
// answers and dropped connections. The token setting is on, so every call is authenticated.
func TestConformance(t *testing.T) {
	hermetic(t)
	t.Setenv("BERTH_TEST_DCOS_TOKEN", "s3cr3t-token")
	emu := emulator(t, marathonemu.Options{Token: "s3cr3t-token"})
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	const tgt = "marathon-test"
	id := func(workload string) string {
		return "/berth/" + owner.Instance + "/" + owner.Environment + "/" + workload
	}
	faults := 0
	ports := &hostPorts{}
	emu.FailHealthPath(unhealthyPath)
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			return newProvider(t, emu, tgt, map[string]any{"tokenEnv": "BERTH_TEST_DCOS_TOKEN"})
		},
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
			if _, err := emu.KillTask(id(workload), i, kind == conformance.DriftStop); err != nil {
				t.Fatalf("drift: %v", err)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			n := id(workload) + "-lookalike"
			emu.CreateLookAlike(n, 1)
			return func() bool { return emu.AppExists(n) }
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage: edit(emu, id, func(a map[string]any) {
				docker(a)["image"] = "registry.example/berth-app:hand"
			}),
			conformance.TamperCommand: edit(emu, id, func(a map[string]any) {
				docker(a)["parameters"] = []any{map[string]any{"key": "entrypoint", "value": "/bin/sh"}}
			}),
			conformance.TamperArgs: edit(emu, id, func(a map[string]any) { a["args"] = []any{"debug"} }),
			conformance.TamperEnv: edit(emu, id, func(a map[string]any) {
				a["env"].(map[string]any)["GREETING"] = "by hand"
			}),
			conformance.TamperPorts: edit(emu, id, func(a map[string]any) {
				docker(a)["portMappings"].([]any)[0].(map[string]any)["hostPort"] = 9090
			}),
			conformance.TamperHealth: edit(emu, id, func(a map[string]any) {
				a["healthChecks"].([]any)[0].(map[string]any)["maxConsecutiveFailures"] = 9
			}),
			conformance.TamperResources: edit(emu, id, func(a map[string]any) { a["mem"] = 1024 }),
			conformance.TamperReplicas: func(ctx context.Context, t *testing.T, workload string) {
				a := getApp(t, emu, id(workload))
				// The CLI's `dcos marathon app update <id> instances=N`: a partial PUT.
				putApp(t, emu, id(workload), map[string]any{"instances": a["instances"].(float64) + 1})
			},
		},
		Unmanaged: func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
			edit(emu, id, func(a map[string]any) {
				a["backoffSeconds"] = 7
				a["labels"].(map[string]any)["team"] = "payments"
			})(ctx, t, workload)
			// Any change but instances is a new configuration to Marathon: it restarts the tasks. Wait for that
			// deployment to end, as an operator would, so the plan is about fields, not about tasks in motion.
			for len(operatorCall(t, emu, http.MethodGet, "/v2/apps"+id(workload), nil)["app"].(map[string]any)["deployments"].([]any)) > 0 {
				if ctx.Err() != nil {
					t.Fatal("the restart after the unmanaged change did not end")
				}
			}
			return func(context.Context) (bool, error) {
				a := getApp(t, emu, id(workload))
				return a["backoffSeconds"] == 7.0 && a["labels"].(map[string]any)["team"] == "payments", nil
			}
		},
		// What the workload answers: the reference app echoes GREETING, here from the environment each running task
		// was launched with.
		Probe: func(ctx context.Context, w schema.Workload) (string, error) {
			return probe(t, emu, id(w.Name))
		},
		Secrets: &conformance.SecretsCase{
			Leaks: func(ctx context.Context, t *testing.T, workload, value string) string {
				return leaks(t, emu, id(workload), value)
			},
		},
		Unhealthy: unhealthy,
		Faults: func(n int) {
			kinds := []string{marathonemu.ServerError, marathonemu.Unavailable, marathonemu.Reset}
			emu.Fail(n, kinds[faults%len(kinds)])
			faults++
		},
		Timeout: 60 * time.Second,
	})
}

// readOnly are the fields of an app as read that the UI leaves out of the definition it sends back.
var readOnly = []string{"version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
	"deployments", "tasks", "lastTaskFailure", "taskStats"}

// edit is a Tamper hook doing what an edit in the Marathon UI does: GET the app, change one field of its
// definition, PUT it back with force=true.
func edit(emu *marathonemu.Server, id func(string) string, f func(map[string]any)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		a := getApp(t, emu, id(workload))
		for _, k := range readOnly {
			delete(a, k)
		}
		f(a)
		putApp(t, emu, id(workload), a)
	}
}

func docker(a map[string]any) map[string]any {
	return a["container"].(map[string]any)["docker"].(map[string]any)
}

func operatorCall(t *testing.T, emu *marathonemu.Server, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, emu.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token=s3cr3t-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %v (%v)", method, path, resp.StatusCode, out, err)
	}
	return out
}

func getApp(t *testing.T, emu *marathonemu.Server, id string) map[string]any {
	return operatorCall(t, emu, http.MethodGet, "/v2/apps"+id, nil)["app"].(map[string]any)
}

func putApp(t *testing.T, emu *marathonemu.Server, id string, def map[string]any) {
	operatorCall(t, emu, http.MethodPut, "/v2/apps"+id+"?force=true", def)
}

// probe answers as the reference app would: the GREETING of every running task of the app, one per line.
func probe(t *testing.T, emu *marathonemu.Server, id string) (string, error) {
	a := operatorCall(t, emu, http.MethodGet, "/v2/apps"+id+"?embed=app.tasks", nil)["app"].(map[string]any)
	tasks, _ := a["tasks"].([]any)
	var out []string
	for _, tk := range tasks {
		tm := tk.(map[string]any)
		if tm["state"] != "TASK_RUNNING" {
			continue
		}
		env, ok := emu.TaskEnv(id, tm["id"].(string))
		if !ok {
			return "", fmt.Errorf("task %s: no environment", tm["id"])
		}
		out = append(out, env["GREETING"])
	}
	if len(out) == 0 {
		return "", fmt.Errorf("app %s: no running task", id)
	}
	return strings.Join(out, "\n"), nil
}

// leaks searches the app as Marathon answers it, but for its env (where Marathon delivers the value, and where
// anyone who can read the app sees it): labels, container, health checks, tasks, every other field.
func leaks(t *testing.T, emu *marathonemu.Server, id, value string) string {
	a := getApp(t, emu, id)
	delete(a, "env")
	for k, v := range a {
		if b, _ := json.Marshal(v); strings.Contains(string(b), value) {
			return "the app's " + k
		}
	}
	for _, d := range operatorList(t, emu, "/v2/deployments") {
		if b, _ := json.Marshal(d); strings.Contains(string(b), value) {
			return "a deployment"
		}
	}
	return ""
}

// operatorList is a GET of a Marathon endpoint answering a list.
func operatorList(t *testing.T, emu *marathonemu.Server, path string) []any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, emu.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token=s3cr3t-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return out
}

// hostPorts gives each workload name of a conformance run a fixed host port of its own (the base and its preview
// copy, "<name>-pr", run side by side on the one agent): 8080 for the first name, then the next free ones.
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

// unhealthyPath is a path the emulated app answers 404 on (FailHealthPath), as the quickstart app does.
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
