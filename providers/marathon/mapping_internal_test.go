package marathon

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

func TestAppFor(t *testing.T) {
	w := schema.Workload{
		Name: "dns", Image: "img:1", Command: []string{"/bin/dns", "--verbose"}, Args: []string{"serve"},
		Ports: []schema.Port{{Port: 53, Protocol: "udp"}, {Port: 9000, Protocol: "tcp", Public: true}},
		Health: &schema.HealthCheck{Command: []string{"/bin/dns", "check", "it's up"},
			Interval: schema.Duration(1500 * time.Millisecond), Timeout: schema.Duration(time.Second), Retries: 2,
			StartPeriod: schema.Duration(30 * time.Second)},
		Replicas: 1,
	}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "dev"}, Target: "m", Workload: w, SpecHash: providers.SpecHash(w)}
	a, err := appFor("/berth/i/dev/dns", d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(struct {
		Args   []string      `json:"args"`
		Docker docker        `json:"docker"`
		Checks []healthCheck `json:"checks"`
		Cpus   float64       `json:"cpus"`
	}{a.Args, a.Container.Docker, a.HealthChecks, a.Cpus})
	want := `{"args":["--verbose","serve"],"docker":{"image":"img:1","network":"BRIDGE","portMappings":[{"containerPort":53,"hostPort":0,"protocol":"udp"},{"containerPort":9000,"hostPort":9000,"protocol":"tcp"}],"parameters":[{"key":"entrypoint","value":"/bin/dns"}]},"checks":[{"protocol":"COMMAND","command":{"value":"/bin/dns check 'it'\\''s up'"},"gracePeriodSeconds":30,"intervalSeconds":2,"timeoutSeconds":1,"maxConsecutiveFailures":2}],"cpus":0}`
	if string(got) != want {
		t.Fatalf("mapping:\n got %s\nwant %s", got, want)
	}

	w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 7}}
	if _, err := appFor("/x", providers.Desired{Workload: w}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("TCP check on an undeclared port: %v", err)
	}
}

func TestObserve(t *testing.T) {
	const v0, v1, v2, v2scaled = "2025-01-01T00:00:00.001Z", "2025-01-01T00:00:00.010Z", "2025-01-01T00:00:00.020Z", "2025-01-01T00:00:01.500Z"
	const v3 = "2025-01-01T00:00:02Z" // a version rolled back from: past the app's own
	a := &app{ID: "/berth/i/dev/web", Instances: 3, Args: []string{"serve"}, Labels: map[string]string{
		providers.LabelWorkload: "web", providers.LabelSpecHash: "h2", "berth.dev/spec": `{"name":"web","image":"old"}`},
		Container:    &container{Docker: docker{Image: "img:2"}},
		Env:          map[string]any{"A": "1", "S": map[string]any{"secret": "s"}},
		HealthChecks: []healthCheck{{Protocol: "HTTP"}},
		Version:      v2scaled,
		VersionInfo:  &versionInfo{LastConfigChangeAt: v2, LastScalingAt: v2scaled},
		Tasks: []task{
			{ID: "t1", State: "TASK_RUNNING", Version: v1, HealthCheckResults: []healthCheckResult{{Alive: true}}},
			{ID: "t2", State: "TASK_RUNNING", Version: v2},
			{ID: "t3", State: "TASK_STAGING", Version: v2},
			{ID: "t4", State: "TASK_RUNNING", Version: v2, HealthCheckResults: []healthCheckResult{{Alive: false}}},
			{ID: "t5", State: "TASK_RUNNING", Version: v2scaled}, // launched after a scale: the same configuration
			{ID: "t6", State: "TASK_RUNNING", Version: v0},       // a version Marathon no longer has
			{ID: "t7", State: "TASK_RUNNING", Version: v3},
		}}
	if got := olderVersions(a); len(got) != 3 || got[0] != v0 || got[1] != v1 || got[2] != v3 {
		t.Fatalf("olderVersions = %q, want [%s %s %s]", got, v0, v1, v3)
	}
	o := observe(a, "m", map[string]string{v1: "h1", v3: "h3"})
	if o.Spec.Image != "img:2" || o.Spec.Replicas != 3 || o.Spec.Env["A"] != "1" || o.Spec.Env["S"] != "(secret s)" ||
		len(o.Spec.Args) != 1 || o.Spec.Args[0] != "serve" {
		t.Fatalf("spec: %+v", o.Spec)
	}
	want := []providers.Replica{
		{ID: "t1", Name: "t1", SpecHash: "h1", State: "running", Running: true, Health: "healthy"},
		{ID: "t2", Name: "t2", SpecHash: "h2", State: "running", Running: true, Health: "starting"},
		{ID: "t3", Name: "t3", SpecHash: "h2", State: "staging", Health: "starting"},
		{ID: "t4", Name: "t4", SpecHash: "h2", State: "running", Running: true, Health: "unhealthy"},
		{ID: "t5", Name: "t5", SpecHash: "h2", State: "running", Running: true, Health: "starting"},
		{ID: "t6", Name: "t6", State: "running", Running: true, Health: "starting"},
		{ID: "t7", Name: "t7", SpecHash: "h3", State: "running", Running: true, Health: "starting"},
	}
	if len(o.Replicas) != len(want) {
		t.Fatalf("%d replicas, want %d: %+v", len(o.Replicas), len(want), o.Replicas)
	}
	for i, r := range o.Replicas {
		if r != want[i] {
			t.Errorf("replica %d = %+v, want %+v", i, r, want[i])
		}
	}
	if why := readyWhy(a); why == "" {
		t.Fatal("an app with a stale and unhealthy tasks reads as ready")
	}
}

func TestSelectorTerm(t *testing.T) {
	if got := selectorTerm("berth.dev/instance"); got != `berth.dev\/instance` {
		t.Fatalf("selectorTerm = %s", got)
	}
	if got := selectorTerm("a-b_c.9"); got != "a-b_c.9" {
		t.Fatalf("selectorTerm = %s", got)
	}
}

// TestAPIErrorRedacted: Marathon's words are redacted, so an answer quoting the definition (env values included)
// cannot carry a registered secret into an error.
func TestAPIErrorRedacted(t *testing.T) {
	const value = "s3cr3t-quoted-by-marathon"
	redact.Register(value)
	e := &APIError{Method: "PUT", Path: "/v2/apps/x", Status: 422, Message: "Object is not valid: env " + value,
		Details: []ErrorDetail{{Path: "/env/DB", Errors: []string{"bad value " + value}}}}
	if strings.Contains(e.Error(), value) || !strings.Contains(e.Error(), "422") {
		t.Fatalf("error %q", e.Error())
	}
}
