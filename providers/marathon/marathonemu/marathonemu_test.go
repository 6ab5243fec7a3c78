package marathonemu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/marathon/marathonemu"
)

type client struct {
	t   *testing.T
	url string
}

func (c client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func def(image string, instances int) map[string]any {
	return map[string]any{"instances": instances, "cpus": 0.25, "mem": 64,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": image, "network": "BRIDGE",
			"portMappings": []any{map[string]any{"containerPort": 8080, "hostPort": 0}}}},
		"healthChecks":    []any{map[string]any{"protocol": "HTTP", "path": "/", "portIndex": 0}},
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1}}
}

// counts returns the tasks of app id that are ready on the app's configuration version, and on older ones.
func counts(t *testing.T, c client, id string) (cur, old int, deployments int) {
	t.Helper()
	code, out := c.do("GET", "/v2/apps"+id+"?embed=apps.tasks", nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %v", id, code, out)
	}
	app := out["app"].(map[string]any)
	cfg := app["versionInfo"].(map[string]any)["lastConfigChangeAt"]
	for _, tk := range app["tasks"].([]any) {
		tm := tk.(map[string]any)
		ready := tm["state"] == "TASK_RUNNING" && tm["healthCheckResults"] != nil
		for _, r := range asList(tm["healthCheckResults"]) {
			ready = ready && r.(map[string]any)["alive"] == true
		}
		switch {
		case !ready:
		case tm["version"].(string) >= cfg.(string): // launched at the configuration or at a later scale of it
			cur++
		default:
			old++
		}
	}
	return cur, old, len(app["deployments"].([]any))
}

// TestRestartIsMakeBeforeBreak steps a restart deployment and checks that ready tasks never drop below the
// instances, that the 409 lock body is Marathon's, and that the deployment ends with only new tasks.
func TestRestartIsMakeBeforeBreak(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{Manual: true, StepsPerState: 2})
	defer s.Close()
	c := client{t, s.URL()}
	const id = "/berth/i/dev/web"
	if code, out := c.do("PUT", "/v2/apps"+id, def("app:1", 3)); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	for i := 0; ; i++ {
		if _, _, deps := counts(t, c, id); deps == 0 {
			break
		}
		if i > 100 {
			t.Fatal("the start deployment never completed")
		}
		s.Step(1)
	}
	if code, out := c.do("PUT", "/v2/apps"+id, def("app:2", 3)); code != 200 || out["deploymentId"] == nil {
		t.Fatalf("update: %d %v", code, out)
	}
	code, out := c.do("PUT", "/v2/apps"+id, def("app:3", 3))
	if code != 409 || !strings.HasPrefix(out["message"].(string), "App is locked by one or more deployments.") || len(out["deployments"].([]any)) != 1 {
		t.Fatalf("a change of a locked app: %d %v", code, out)
	}
	for i := 0; ; i++ {
		cur, old, deps := counts(t, c, id)
		if cur+old < 3 {
			t.Fatalf("step %d: only %d ready tasks (%d new, %d old) while 3 instances must keep serving", i, cur+old, cur, old)
		}
		if deps == 0 {
			if cur != 3 || old != 0 {
				t.Fatalf("deployment done with %d new and %d old ready tasks", cur, old)
			}
			break
		}
		if i > 100 {
			t.Fatal("the restart deployment never completed")
		}
		s.Step(1)
	}
}

func TestValidationAndSelectors(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{})
	defer s.Close()
	c := client{t, s.URL()}
	bad := def("", -1)
	bad["healthChecks"] = []any{map[string]any{"protocol": "HTTP", "portIndex": 4}}
	code, out := c.do("PUT", "/v2/apps/berth/Upper_Case", bad)
	if code != 422 || out["message"] != "Object is not valid" {
		t.Fatalf("invalid app: %d %v", code, out)
	}
	var paths []string
	for _, d := range out["details"].([]any) {
		paths = append(paths, d.(map[string]any)["path"].(string))
	}
	if got := strings.Join(paths, " "); got != "/container/docker/image /healthChecks(0)/portIndex /id /instances" {
		t.Fatalf("details paths: %s", got)
	}

	a := def("app:1", 1)
	a["labels"] = map[string]any{"berth.dev/instance": "i1", "berth.dev/environment": "dev"}
	c.do("PUT", "/v2/apps/berth/i1/dev/web", a)
	s.CreateLookAlike("/berth/i1/dev/web-lookalike", 1)
	for _, tc := range []struct {
		sel  string
		code int
		n    int
	}{
		{`berth.dev\/instance==i1`, 200, 1},
		{`berth.dev\/instance==i2`, 200, 0},
		{`berth.dev\/instance in (i2, i1), berth.dev\/environment`, 200, 1},
		{`berth.dev\/environment!=prod`, 200, 1},
		{`berth.dev/instance==i1`, 400, 0},
	} {
		code, out := c.do("GET", "/v2/apps?label="+url.QueryEscape(tc.sel), nil)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d (%v)", tc.sel, code, tc.code, out)
			continue
		}
		if code == 200 && len(out["apps"].([]any)) != tc.n {
			t.Errorf("%s: %d apps, want %d", tc.sel, len(out["apps"].([]any)), tc.n)
		}
	}
}

// TestKillRollbackDelete covers relaunching a killed task, rolling back a deployment, and deleting an app.
func TestKillRollbackDelete(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{Manual: true})
	defer s.Close()
	c := client{t, s.URL()}
	const id = "/x/web"
	c.do("PUT", "/v2/apps"+id, def("app:1", 2))
	s.Step(10)
	if len(s.Deployments()) != 0 || len(s.Tasks(id)) != 2 {
		t.Fatalf("after start: deployments %v, tasks %v", s.Deployments(), s.Tasks(id))
	}
	killed, _ := s.KillTask(id, 0, false)
	s.Step(1)
	if ts := s.Tasks(id); len(ts) != 2 || ts[0] == killed || ts[1] == killed {
		t.Fatalf("killed %s not relaunched: %v", killed, ts)
	}
	_, out := c.do("PUT", "/v2/apps"+id, def("app:2", 2))
	dep := out["deploymentId"].(string)
	if code, _ := c.do("DELETE", "/v2/deployments/"+dep, nil); code != 200 {
		t.Fatalf("rollback: %d", code)
	}
	s.Step(10)
	_, out = c.do("GET", "/v2/apps"+id, nil)
	if img := out["app"].(map[string]any)["container"].(map[string]any)["docker"].(map[string]any)["image"]; img != "app:1" {
		t.Fatalf("after rollback the image is %v", img)
	}
	if code, _ := c.do("DELETE", "/v2/apps"+id, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := c.do("GET", "/v2/apps"+id, nil); code != 404 || len(s.Deployments()) != 1 {
		t.Fatalf("after delete: GET %d, deployments %v", code, s.Deployments())
	}
	s.Step(2)
	if len(s.Deployments()) != 0 {
		t.Fatalf("the stop deployment is still listed: %v", s.Deployments())
	}
}

// TestTaskEnv: a task keeps the environment it was launched with; a new definition's tasks get the new one.
func TestTaskEnv(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{Manual: true})
	defer s.Close()
	c := client{t, s.URL()}
	d := def("img:1", 1)
	d["env"] = map[string]any{"GREETING": "one"}
	if code, out := c.do("PUT", "/v2/apps/a", d); code/100 != 2 {
		t.Fatalf("PUT: %d %v", code, out)
	}
	s.Step(1)
	first := s.Tasks("/a")
	if len(first) != 1 {
		t.Fatalf("tasks %v", first)
	}
	d["env"] = map[string]any{"GREETING": "two"}
	if code, out := c.do("PUT", "/v2/apps/a?force=true", d); code/100 != 2 {
		t.Fatalf("PUT: %d %v", code, out)
	}
	s.Step(1)
	if env, ok := s.TaskEnv("/a", first[0]); !ok || env["GREETING"] != "one" {
		t.Fatalf("the first task's env %v, %t", env, ok)
	}
	tasks := s.Tasks("/a")
	last := tasks[len(tasks)-1]
	if env, ok := s.TaskEnv("/a", last); last == first[0] || !ok || env["GREETING"] != "two" {
		t.Fatalf("the new task %s's env %v, %t", last, env, ok)
	}
	if _, ok := s.TaskEnv("/a", "nope"); ok {
		t.Fatal("an unknown task has an env")
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestFailHealthPath: new tasks whose HTTP check asks a failing path never pass it; the restart keeps every old
// task and never completes, and the app reports them unhealthy.
func TestFailHealthPath(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{Manual: true, StepsPerState: 2})
	defer s.Close()
	s.FailHealthPath("/nonexistent")
	c := client{t, s.URL()}
	const id = "/berth/i/dev/web"
	if code, out := c.do("PUT", "/v2/apps"+id, def("app:1", 2)); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	s.Step(20)
	if cur, _, deps := counts(t, c, id); cur != 2 || deps != 0 {
		t.Fatalf("after the create: %d ready, %d deployments", cur, deps)
	}
	sick := def("app:2", 2)
	sick["healthChecks"] = []any{map[string]any{"protocol": "HTTP", "path": "/nonexistent", "portIndex": 0}}
	if code, out := c.do("PUT", "/v2/apps"+id, sick); code != 200 {
		t.Fatalf("update: %d %v", code, out)
	}
	for step := range 30 {
		s.Step(1)
		if cur, old, deps := counts(t, c, id); cur != 0 || old != 2 || deps != 1 {
			t.Fatalf("step %d: %d ready new tasks, %d ready old, %d deployments; want 0, 2, 1", step, cur, old, deps)
		}
	}
	_, out := c.do("GET", "/v2/apps"+id+"?embed=apps.tasks", nil)
	app := out["app"].(map[string]any)
	if app["tasksUnhealthy"] != 2.0 || app["tasksHealthy"] != 2.0 {
		t.Fatalf("tasksHealthy %v, tasksUnhealthy %v; want 2 and 2", app["tasksHealthy"], app["tasksUnhealthy"])
	}
}

// TestAppVersions: every definition an app had is answered by its version, the one a task of it carries.
func TestAppVersions(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{Manual: true, StepsPerState: 1})
	defer s.Close()
	c := client{t, s.URL()}
	const id = "/berth/i/dev/web"
	c.do("PUT", "/v2/apps"+id, def("app:1", 1))
	s.Step(5)
	_, out := c.do("GET", "/v2/apps"+id+"?embed=apps.tasks", nil)
	first := out["app"].(map[string]any)["tasks"].([]any)[0].(map[string]any)["version"].(string)
	c.do("PUT", "/v2/apps"+id, def("app:2", 1))
	code, out := c.do("GET", "/v2/apps"+id+"/versions/"+first, nil)
	if code != 200 || out["version"] != first || out["container"].(map[string]any)["docker"].(map[string]any)["image"] != "app:1" {
		t.Fatalf("GET the first version: %d %v", code, out)
	}
	code, out = c.do("GET", "/v2/apps"+id+"/versions", nil)
	if vs, _ := out["versions"].([]any); code != 200 || len(vs) != 2 || vs[1] != first {
		t.Fatalf("GET versions: %d %v", code, out)
	}
	if code, _ := c.do("GET", "/v2/apps"+id+"/versions/2001-01-01T00:00:00.000Z", nil); code != 404 {
		t.Fatalf("GET an unknown version: %d, want 404", code)
	}
}

// TestScaleVersions: a scale makes a new app version of the same configuration; a task launched after it carries
// that version (Marathon's runSpecVersion), is no task to replace, and its version is answered like any other.
func TestScaleVersions(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{Manual: true, StepsPerState: 1})
	defer s.Close()
	c := client{t, s.URL()}
	const id = "/berth/i/dev/web"
	c.do("PUT", "/v2/apps"+id, def("app:1", 1))
	s.Step(5)
	if code, out := c.do("PUT", "/v2/apps"+id, map[string]any{"instances": 2}); code != 200 {
		t.Fatalf("scale: %d %v", code, out)
	}
	s.Step(5)
	_, out := c.do("GET", "/v2/apps"+id+"?embed=apps.tasks", nil)
	app := out["app"].(map[string]any)
	vi := app["versionInfo"].(map[string]any)
	tasks := app["tasks"].([]any)
	if len(tasks) != 2 || vi["lastScalingAt"] == vi["lastConfigChangeAt"] || len(app["deployments"].([]any)) != 0 {
		t.Fatalf("after the scale: %v", app)
	}
	first, second := tasks[0].(map[string]any), tasks[1].(map[string]any)
	if first["version"] != vi["lastConfigChangeAt"] || second["version"] != vi["lastScalingAt"] {
		t.Fatalf("task versions %v and %v, want %v (launch) and %v (scale)", first["version"], second["version"],
			vi["lastConfigChangeAt"], vi["lastScalingAt"])
	}
	if cur, old, _ := counts(t, c, id); cur != 2 || old != 0 {
		t.Fatalf("%d current and %d old ready tasks, want 2 and 0", cur, old)
	}
	// A task killed with scale lowers instances: another version, also answered.
	if code, out := c.do("DELETE", "/v2/apps"+id+"/tasks/"+second["id"].(string)+"?scale=true", nil); code != 200 {
		t.Fatalf("kill with scale: %d %v", code, out)
	}
	_, out = c.do("GET", "/v2/apps"+id, nil)
	v := out["app"].(map[string]any)["version"].(string)
	if code, out := c.do("GET", "/v2/apps"+id+"/versions/"+v, nil); code != 200 || out["instances"] != 1.0 {
		t.Fatalf("GET version %s after the kill with scale: %d %v", v, code, out)
	}
}
