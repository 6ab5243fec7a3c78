package reconciler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/schema"

	_ "github.com/berth-dev/berth/providers/azure"    // the azure target type
	_ "github.com/berth-dev/berth/providers/marathon" // the marathon target type
	_ "github.com/berth-dev/berth/providers/nomad"    // the nomad target type
)

func at(line, col int) schema.Pos { return schema.Pos{File: "berth.cue", Line: line, Column: col} }

// CheckOffline finds, from the files, what the plan finds with the built providers: the same check, once per
// problem with the environments it is in, sorted by position.
func TestCheckOfflineFake(t *testing.T) {
	fake.Register()
	local := fake.Lookup("offline-local")
	local.SetCapabilities(providers.Capabilities{HealthHTTP: true, MaxReplicas: 2})
	local.SetValidator(func(w schema.Workload) []providers.Problem {
		if strings.HasSuffix(w.Image, ":latest") {
			return []providers.Problem{{Field: "image", Message: "latest is not allowed here"}}
		}
		return nil
	})
	web := wl("web", "offline-local", "app:latest", 3)
	web.Health = &schema.HealthCheck{Command: []string{"/app", "check"}}
	web.Pos = map[string]schema.Pos{"": at(10, 12), "image": at(11, 2), "replicas": at(13, 2), "health.command": at(14, 10)}
	api := wl("api", "offline-local", "api:1", 1)
	api.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}}
	api.Pos = map[string]schema.Pos{"": at(30, 2), "health.tcp": at(31, 10)}
	orphan := wl("orphan", "nowhere", "app:1", 1) // the unknown-provider policy's
	orphan.Pos = map[string]schema.Pos{"": at(40, 2)}
	cfg := &schema.Config{
		Targets: map[string]schema.Target{
			"offline-local": {Name: "offline-local", Type: fake.Type, Pos: at(1, 10)},
			"odd":           {Name: "odd", Type: "nope", Pos: at(2, 10)},
		},
		Environments: map[string]schema.Environment{
			"prod":    {Name: "prod", Branch: "main", Workloads: []schema.Workload{orphan, web}},
			"staging": {Name: "staging", Branch: "staging", Workloads: []schema.Workload{api, web}},
		},
	}
	both := []string{"prod", "staging"}
	want := []OfflineProblem{
		{Problem{Target: "odd", Field: "type", Pos: at(2, 10),
			Message: fmt.Sprintf(`target "odd": unknown type "nope" (known: %v)`, providers.Types())}, nil},
		{Problem{Workload: "web", Target: "offline-local", Field: "image", Pos: at(11, 2), Message: "latest is not allowed here"}, both},
		{Problem{Workload: "web", Target: "offline-local", Field: "replicas", Pos: at(13, 2), Message: "3 replicas asked, at most 2 supported"}, both},
		{Problem{Workload: "web", Target: "offline-local", Field: "health.command", Pos: at(14, 10), Message: "command health checks are not supported"}, both},
		{Problem{Workload: "api", Target: "offline-local", Field: "health.tcp", Pos: at(31, 10), Message: "TCP health checks are not supported"}, []string{"staging"}},
	}
	got := CheckOffline(cfg)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CheckOffline:\n%s\nwant\n%s", offlineLines(got), offlineLines(want))
	}
	if again := CheckOffline(cfg); !reflect.DeepEqual(again, got) {
		t.Errorf("a second run differs:\n%s", offlineLines(again))
	}
	if s := got[1].String(); s != "berth.cue:11:2: workload web on target offline-local: field image: latest is not allowed here" {
		t.Errorf("String() = %q", s)
	}
	if s := got[0].String(); !strings.HasPrefix(s, `berth.cue:2:10: target odd: field type: target "odd": unknown type "nope"`) {
		t.Errorf("String() = %q", s)
	}

	// The plan of each environment reports the same workload problems.
	e := newTestEngine(t, nil, func(o *Options) {
		o.Providers = func(t schema.Target, _ providers.Options) (providers.Provider, error) {
			if t.Type != fake.Type {
				return nil, fmt.Errorf("target %q: unknown type %q", t.Name, t.Type)
			}
			return fake.Lookup(t.Name), nil
		}
	})
	for _, env := range both {
		p, err := e.Plan(context.Background(), cfg, env, "r1")
		if err != nil {
			t.Fatal(err)
		}
		var planned, offline []string
		for _, pr := range p.Problems {
			if pr.Workload != "" && pr.Field != "provider" {
				planned = append(planned, pr.String())
			}
		}
		for _, op := range got {
			if slices.Contains(op.Environments, env) {
				offline = append(offline, op.Problem.String())
			}
		}
		slices.Sort(planned)
		slices.Sort(offline)
		if !slices.Equal(planned, offline) {
			t.Errorf("%s: the plan's problems\n%s\nCheckOffline's\n%s", env, strings.Join(planned, "\n"), strings.Join(offline, "\n"))
		}
	}
}

// With real target types, from a real repository: the providers' own problems at the fields' positions, a target
// with bad settings at the target, and nothing reached (the addresses are closed ports, the token unset).
func TestCheckOfflineProviders(t *testing.T) {
	src := `package berth

targets: {
	aci: {type: "azure", subscriptionId: "s", resourceGroup: "rg", location: "westeurope"}
	acibad: {type: "azure", subscriptionId: "s", resourceGroup: "rg", location: "westeurope", dnsLabelPrefix: "Bad_Prefix"}
	cluster: {type: "nomad", address: "http://127.0.0.1:1", tokenEnv: "BERTH_TEST_TOKEN_NEVER_SET"}
	dcos: {type: "marathon", address: "http://127.0.0.1:1"}
}
environments: production: {branch: "main"}
workloads: {
	web: {
		image:    "app:v1"
		provider: "aci"
		ports: [{port: 8080, public: true}]
		health: tcp: port: 8080
	}
	job: {
		image:    "app:v1"
		provider: "cluster"
		health: command: ["/app", "check"]
	}
	api: {
		image:    "app:v1"
		provider: "dcos"
		ports: [{port: 8080, public: true}]
		health: http: {path: "/healthz", port: 8080}
	}
	lost: {image: "app:v1", provider: "acibad"}
}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	line := func(s string) int {
		i := strings.Index(src, s)
		if i < 0 {
			t.Fatalf("%q is not in the source", s)
		}
		return strings.Count(src[:i], "\n") + 1
	}
	got := CheckOffline(cfg)
	if len(got) != 3 {
		t.Fatalf("CheckOffline:\n%s\nwant 3 problems", offlineLines(got))
	}
	w := func(name string) schema.Workload {
		ws := cfg.Environments["production"].Workloads
		return ws[slices.IndexFunc(ws, func(w schema.Workload) bool { return w.Name == name })]
	}
	for i, c := range []struct {
		workload, target, field string
		line                    int
		pos                     schema.Pos
		message                 string
	}{
		{"", "acibad", "settings", line("acibad:"), cfg.Targets["acibad"].Pos, `target "acibad": settings.dnsLabelPrefix: "Bad_Prefix" must be`},
		{"web", "aci", "health.tcp", line("health: tcp"), w("web").Position("health.tcp"), "Azure Container Instances probes are exec or httpGet only"},
		{"job", "cluster", "health.command", line("health: command"), w("job").Position("health.command"), "Nomad runs command checks as Consul script checks"},
	} {
		p := got[i]
		if p.Workload != c.workload || p.Target != c.target || p.Field != c.field || p.Pos != c.pos || p.Pos.Line != c.line ||
			p.Pos.File != "berth.cue" || !strings.HasPrefix(p.Message, c.message) {
			t.Errorf("problem %d: %+v, want %s on %s field %s at line %d (%v): %s...", i, p, c.workload, c.target, c.field, c.line, c.pos, c.message)
		}
		if c.workload != "" && !slices.Equal(p.Environments, []string{"production"}) {
			t.Errorf("problem %d: environments %v", i, p.Environments)
		}
	}
}

func offlineLines(ps []OfflineProblem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s %v\n", p, p.Environments)
	}
	return b.String()
}
