package aciemu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/azure/aciemu"
)

const group = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/"

func do(t *testing.T, s *aciemu.Server, method, path, body string, auth bool) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if auth {
		req.Header.Set("Authorization", "Bearer x")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return resp, v
}

func body(image string) string {
	return `{"location":"westeurope","tags":{"a":"b"},"properties":{"osType":"Linux","containers":[{"name":"c","properties":{"image":"` +
		image + `","resources":{"requests":{"cpu":0.5,"memoryInGB":1}}}}]}}`
}

func errCode(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestEmulator(t *testing.T) {
	s := aciemu.New(aciemu.Options{OperationTicks: 3, StartTicks: 1})
	defer s.Close()
	q := "?api-version=" + aciemu.APIVersion

	if resp, v := do(t, s, "GET", group+"g1"+q, "", false); resp.StatusCode != 401 || errCode(v) != "AuthenticationFailed" {
		t.Fatalf("no token: %d %v", resp.StatusCode, v)
	}
	if resp, v := do(t, s, "GET", group+"g1", "", true); resp.StatusCode != 400 || errCode(v) != "MissingApiVersionParameter" {
		t.Fatalf("no api-version: %d %v", resp.StatusCode, v)
	}
	if resp, v := do(t, s, "PUT", group+"Bad_Name"+q, body("img"), true); resp.StatusCode != 400 || errCode(v) != "InvalidContainerGroupName" {
		t.Fatalf("bad name: %d %v", resp.StatusCode, v)
	}
	resp, _ := do(t, s, "PUT", group+"g1"+q, body("img"), true)
	op := resp.Header.Get("Azure-AsyncOperation")
	if resp.StatusCode != 201 || op == "" || resp.Header.Get("Location") == "" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("create: %d %v", resp.StatusCode, resp.Header)
	}
	// Same request again: same operation, no new one.
	if resp, _ := do(t, s, "PUT", group+"g1"+q, body("img"), true); resp.StatusCode != 200 || resp.Header.Get("Azure-AsyncOperation") != op {
		t.Fatalf("idempotent repeat: %d, operation %q want %q", resp.StatusCode, resp.Header.Get("Azure-AsyncOperation"), op)
	}
	// A different request while the operation runs: conflict.
	if resp, v := do(t, s, "PUT", group+"g1"+q, body("img2"), true); resp.StatusCode != 409 || errCode(v) != "Conflict" {
		t.Fatalf("different request in flight: %d %v", resp.StatusCode, v)
	}
	// Eventual consistency: the first list misses the new group, the next one shows it.
	list := func() int {
		_, v := do(t, s, "GET", strings.TrimSuffix(group, "/")+q, "", true)
		vs, _ := v["value"].([]any)
		return len(vs)
	}
	if a, b := list(), list(); a != 0 || b != 1 {
		t.Fatalf("list reads: %d then %d, want 0 then 1", a, b)
	}
	// The operation converges over requests; then the group starts.
	var status string
	for range 10 {
		_, v := do(t, s, "GET", strings.TrimPrefix(op, s.URL()), "", true)
		if status, _ = v["status"].(string); status != "InProgress" {
			break
		}
	}
	if status != "Succeeded" {
		t.Fatalf("operation status %q", status)
	}
	var state string
	for range 5 {
		_, v := do(t, s, "GET", group+"g1"+q, "", true)
		props := v["properties"].(map[string]any)
		state = props["instanceView"].(map[string]any)["state"].(string)
		if state == "Running" {
			break
		}
	}
	if state != "Running" {
		t.Fatalf("instance state %q", state)
	}
	s.Fail(1, aciemu.Throttle)
	if resp, v := do(t, s, "GET", group+"g1"+q, "", true); resp.StatusCode != 429 || errCode(v) != "TooManyRequests" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("throttle: %d %v", resp.StatusCode, v)
	}
	s.StopGroup("s", "rg", "g1")
	if g := s.Groups(); len(g) != 1 || g[0].State != "Stopped" {
		t.Fatalf("after StopGroup: %+v", g)
	}
	if resp, _ := do(t, s, "DELETE", group+"g1"+q, "", true); resp.StatusCode != 202 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	for range 5 {
		do(t, s, "GET", group+"g1"+q, "", true)
	}
	if s.Exists("s", "rg", "g1") {
		t.Fatal("group still exists after its delete operation")
	}
	if resp, _ := do(t, s, "DELETE", group+"g1"+q, "", true); resp.StatusCode != 204 {
		t.Fatalf("delete of a missing group: %d, want 204", resp.StatusCode)
	}
}

// probed is body with readiness and liveness probes, an httpGet of path.
func probed(path string) string {
	probe := `{"httpGet":{"path":"` + path + `","port":8080,"scheme":"http"},"periodSeconds":1,"failureThreshold":3}`
	return `{"location":"westeurope","properties":{"osType":"Linux","containers":[{"name":"c","properties":{"image":"img",` +
		`"ports":[{"port":8080}],"resources":{"requests":{"cpu":0.5,"memoryInGB":1}},` +
		`"readinessProbe":` + probe + `,"livenessProbe":` + probe + `}}]}}`
}

// TestFailProbePath: a container probed on a failing path crash-loops under its liveness probe; the group stays
// Running, not Ready; one probed elsewhere runs and is Ready.
func TestFailProbePath(t *testing.T) {
	s := aciemu.New(aciemu.Options{OperationTicks: 1, StartTicks: 1})
	defer s.Close()
	s.FailProbePath("/nonexistent")
	q := "?api-version=" + aciemu.APIVersion
	for _, name := range []string{"good", "sick"} {
		path := map[string]string{"good": "/healthz", "sick": "/nonexistent"}[name]
		if resp, v := do(t, s, "PUT", group+name+q, probed(path), true); resp.StatusCode != 201 {
			t.Fatalf("create %s: %d %v", name, resp.StatusCode, v)
		}
	}
	view := func(name string) (state string, c map[string]any) {
		_, v := do(t, s, "GET", group+name+q, "", true)
		props := v["properties"].(map[string]any)
		state = props["instanceView"].(map[string]any)["state"].(string)
		cp := props["containers"].([]any)[0].(map[string]any)["properties"].(map[string]any)
		return state, cp["instanceView"].(map[string]any)
	}
	for range 10 {
		if st, _ := view("sick"); st == "Running" {
			break
		}
	}
	state, c := view("sick")
	cur := c["currentState"].(map[string]any)
	if state != "Running" || cur["state"] != "Waiting" || !strings.HasPrefix(cur["detailStatus"].(string), "CrashLoopBackOff") ||
		c["restartCount"].(float64) < 1 || c["previousState"].(map[string]any)["state"] != "Terminated" {
		t.Fatalf("sick group: state %s, container view %v", state, c)
	}
	events, _ := json.Marshal(c["events"])
	if !strings.Contains(string(events), "Readiness probe failed") || !strings.Contains(string(events), "Liveness probe failed") {
		t.Fatalf("sick container's events: %s", events)
	}
	if state, c := view("good"); state != "Running" || c["currentState"].(map[string]any)["state"] != "Running" || c["events"] != nil {
		t.Fatalf("good group: state %s, container view %v", state, c)
	}
	for _, g := range s.Groups() {
		if g.State != "Running" || g.Ready != (g.Name == "good") {
			t.Errorf("group %s: state %s, ready %t", g.Name, g.State, g.Ready)
		}
	}
}
