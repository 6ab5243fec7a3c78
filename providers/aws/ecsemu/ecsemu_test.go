package ecsemu

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// call posts one operation as the SDK would (signature header present, not verified).
func call(t *testing.T, s *Server, op string, in any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", bytes.NewReader(b))
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

// Tasks start over steps, the deployment completes only when they run, and a stopped task is replaced.
func TestSchedulerSteps(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	fam := map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"}, "networkMode": "awsvpc",
		"cpu": "256", "memory": "512", "containerDefinitions": []any{map[string]any{"name": "app", "image": "img"}}}
	if code, out := call(t, s, "RegisterTaskDefinition", fam); code != 200 {
		t.Fatalf("register: %d %v", code, out)
	}
	code, out := call(t, s, "CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "f", "desiredCount": 2,
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"s"}}}})
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	rollout := func() (string, float64) {
		_, out := call(t, s, "DescribeServices", map[string]any{"services": []string{"svc"}})
		svc := out["services"].([]any)[0].(map[string]any)
		dep := svc["deployments"].([]any)[0].(map[string]any)
		return dep["rolloutState"].(string), svc["runningCount"].(float64)
	}
	if st, n := rollout(); st != "IN_PROGRESS" || n != 0 {
		t.Fatalf("before any step: %s running %v", st, n)
	}
	s.Step(3) // schedule + PROVISIONING → PENDING → RUNNING
	if st, n := rollout(); st != "COMPLETED" || n != 2 {
		t.Fatalf("after 3 steps: %s running %v, want COMPLETED 2", st, n)
	}
	if _, err := s.KillTask("default", "svc", 0); err != nil {
		t.Fatal(err)
	}
	if _, n := rollout(); n != 1 {
		t.Fatalf("after a kill: running %v, want 1", n)
	}
	s.Step(3)
	if st, n := rollout(); st != "COMPLETED" || n != 2 {
		t.Fatalf("the scheduler did not replace the task: %s running %v", st, n)
	}
	s.Fail(1, Throttle)
	if code, out := call(t, s, "ListServices", map[string]any{}); code != 400 || out["__type"] != "com.amazonaws.ecs#ThrottlingException" {
		t.Fatalf("throttled call: %d %v", code, out)
	}
	if code, out := call(t, s, "RegisterTaskDefinition", map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"},
		"networkMode": "awsvpc", "cpu": "512", "memory": "512", "containerDefinitions": fam["containerDefinitions"]}); code != 400 || out["__type"] != "com.amazonaws.ecs#ClientException" {
		t.Fatalf("invalid Fargate pair: %d %v", code, out)
	}
}
