package reconciler

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/schema"
)

func TestPlan(t *testing.T) {
	web1 := wl("web", "local", "app:1", 1)
	web3 := wl("web", "local", "app:1", 3)
	web3.Env = map[string]string{"GREETING": "hello", "API_TOKEN": "s3cret-new"}
	web1e := web1
	web1e.Env = map[string]string{"GREETING": "hi", "API_TOKEN": "s3cret-old"}
	worker := wl("worker", "local", "app:1", 1)
	db := wl("db", "local", "db:1", 1)
	webRemote := wl("web", "remote", "app:1", 1)
	webRemote.Migration.AllowUnsafe = true // no health check: the move must be allowed
	webRemoteChecked := webRemote
	webRemoteChecked.Migration.AllowUnsafe = false

	type drift func(p map[string]*fake.Provider) error
	tests := []struct {
		name     string
		observed []schema.Workload
		drift    drift
		desired  []schema.Workload
		allow    bool
		want     []string // Step.String()
		changes  []Change // of the first step
		refused  string   // substring
		// stepError is a substring of the first step's Error: the apply fails it and the test stops there.
		stepError string
	}{
		{name: "create", desired: []schema.Workload{worker, web1},
			want: []string{"+ create web on local (not running)", "+ create worker on local (not running)"}},
		{name: "no changes", observed: []schema.Workload{web1}, desired: []schema.Workload{web1}},
		{name: "update with field diff", observed: []schema.Workload{web1e}, desired: []schema.Workload{web3},
			want: []string{"~ update web on local (spec changed)"},
			changes: []Change{{"env.API_TOKEN", "(sensitive)", "(sensitive)"}, {"env.GREETING", `"hi"`, `"hello"`},
				{"replicas", "1", "3"}}},
		{name: "drift missing replica", observed: []schema.Workload{web3},
			drift:   func(p map[string]*fake.Provider) error { return p["local"].RemoveReplica("web", 0) },
			desired: []schema.Workload{web3}, want: []string{"~ update web on local (drift: 1 of 3 replicas missing)"}},
		{name: "drift stopped replica", observed: []schema.Workload{web3},
			drift:   func(p map[string]*fake.Provider) error { return p["local"].StopReplica("web", 2) },
			desired: []schema.Workload{web3}, want: []string{"~ update web on local (drift: 1 of 3 replicas not running)"}},
		{name: "drift field edited by hand keeps the hash labels", observed: []schema.Workload{web3},
			drift: func(p map[string]*fake.Provider) error {
				return p["local"].Edit("web", func(w *schema.Workload) {
					w.Image = "app:hand"
					w.Env["GREETING"] = "by hand"
					w.Env["API_TOKEN"] = "s3cret-hand"
				})
			},
			desired: []schema.Workload{web3}, want: []string{"~ update web on local (drift: 3 fields changed on the runtime)"},
			changes: []Change{{"image", `"app:hand"`, `"app:1"`}, {"env.API_TOKEN", "(sensitive)", "(sensitive)"},
				{"env.GREETING", `"by hand"`, `"hello"`}}},
		{name: "drift side object deleted", observed: []schema.Workload{web3},
			drift:   func(p map[string]*fake.Provider) error { return p["local"].RemoveObject("web", "Service web-public") },
			desired: []schema.Workload{web3}, want: []string{"~ update web on local (drift: 1 object missing)"},
			changes: []Change{{"object Service web-public", "(missing)", "(recreated)"}}},
		{name: "drift scaled by hand", observed: []schema.Workload{web3},
			drift: func(p map[string]*fake.Provider) error {
				return p["local"].Edit("web", func(w *schema.Workload) { w.Replicas = 1 })
			},
			desired: []schema.Workload{web3}, want: []string{"~ update web on local (drift: 1 field changed on the runtime)"},
			changes: []Change{{"replicas", "1", "3"}}},
		{name: "migrate", observed: []schema.Workload{web1, worker}, desired: []schema.Workload{webRemote, worker},
			want:    []string{"> migrate web from local to remote (target changed)"},
			changes: []Change{{"provider", "local", "remote"}}},
		{name: "migrate refused without a health check", observed: []schema.Workload{web1}, desired: []schema.Workload{webRemoteChecked},
			want: []string{"> migrate web from local to remote (target changed)"}, stepError: "migration refused: the workload has no health check"},
		{name: "delete one of three", observed: []schema.Workload{db, web1, worker}, desired: []schema.Workload{web1, worker},
			want: []string{"- delete db on local (no longer declared)"}},
		{name: "prune all refused", observed: []schema.Workload{web1}, desired: nil,
			want: []string{"- delete web on local (no longer declared)"}, refused: "every running workload"},
		{name: "prune all allowed", observed: []schema.Workload{web1}, desired: nil, allow: true,
			want: []string{"- delete web on local (no longer declared)"}},
		{name: "more than share refused", observed: []schema.Workload{db, web1, worker}, desired: []schema.Workload{web1},
			want:    []string{"- delete db on local (no longer declared)", "- delete worker on local (no longer declared)"},
			refused: "2 of 3"},
		{name: "deterministic order", observed: []schema.Workload{db, web1e}, desired: []schema.Workload{worker, web3, db},
			want: []string{"~ update web on local (spec changed)", "+ create worker on local (not running)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := map[string]*fake.Provider{"local": fake.New(), "remote": fake.New()}
			for _, w := range tc.observed {
				seed(ps[w.Provider], w)
			}
			if tc.drift != nil {
				if err := tc.drift(ps); err != nil {
					t.Fatal(err)
				}
			}
			e := newTestEngine(t, ps, func(o *Options) { o.AllowPruneAll = tc.allow })
			p, err := e.Plan(context.Background(), config([]string{"local", "remote"}, tc.desired...), "prod", "r1")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range p.Steps {
				got = append(got, s.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("steps:\n got %q\nwant %q", got, tc.want)
			}
			if tc.changes != nil && !reflect.DeepEqual(p.Steps[0].Changes, tc.changes) {
				t.Errorf("changes:\n got %v\nwant %v", p.Steps[0].Changes, tc.changes)
			}
			if (tc.refused == "") != (p.Refused == "") || !strings.Contains(p.Refused, tc.refused) {
				t.Errorf("refused = %q, want containing %q", p.Refused, tc.refused)
			}
			if p.Blocked() != (tc.refused != "") {
				t.Errorf("Blocked() = %v", p.Blocked())
			}
			if strings.Contains(p.String(), "s3cret") {
				t.Errorf("plan shows a secret:\n%s", p)
			}
			if tc.stepError != "" {
				if len(p.Steps) == 0 || !strings.Contains(p.Steps[0].Error, tc.stepError) {
					t.Fatalf("first step's error: %+v, want containing %q", p.Steps, tc.stepError)
				}
				if _, err := e.Apply(context.Background(), config([]string{"local", "remote"}, tc.desired...), p); err == nil {
					t.Fatal("Apply of a refused migration succeeded")
				}
				return
			}
			// Applying the plan converges: the next plan is empty.
			if !p.Blocked() {
				if _, err := e.Apply(context.Background(), config([]string{"local", "remote"}, tc.desired...), p); err != nil {
					t.Fatal(err)
				}
				again, err := e.Plan(context.Background(), config([]string{"local", "remote"}, tc.desired...), "prod", "r1")
				if err != nil {
					t.Fatal(err)
				}
				if !again.Empty() {
					t.Errorf("after apply, plan is not empty:\n%s", again)
				}
			}
		})
	}
}

func TestPlanProblems(t *testing.T) {
	ps := map[string]*fake.Provider{"local": fake.New()}
	ps["local"].SetCapabilities(providers.Capabilities{HealthHTTP: true, MaxReplicas: 2})
	ps["local"].SetValidator(func(w schema.Workload) []providers.Problem {
		var out []providers.Problem
		if strings.HasSuffix(w.Image, ":latest") {
			out = append(out, providers.Problem{Field: "image", Message: "latest is not allowed here"})
		}
		if len(w.Ports) > 0 && w.Ports[0].Protocol == "udp" {
			// A provider's own word on a field replaces the generic one.
			out = append(out, providers.Problem{Field: "ports[0].protocol", Message: "UDP needs host networking here"})
		}
		return out
	})
	w := wl("web", "local", "app:latest", 3)
	w.Health = &schema.HealthCheck{Command: []string{"/app", "healthcheck"}}
	w.Ports = []schema.Port{{Port: 8080, Protocol: "udp", Public: true, HostPort: 8080}}
	w.Pos = map[string]schema.Pos{"": {File: "prod.cue", Line: 3, Column: 2}, "replicas": {File: "prod.cue", Line: 5, Column: 13}}
	orphan := wl("api", "nowhere", "api:1", 1)
	e := newTestEngine(t, ps, nil)
	p, err := e.Plan(context.Background(), config([]string{"local"}, w, orphan), "prod", "r1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range p.Problems {
		got = append(got, pr.String())
	}
	want := []string{
		"prod.cue:3:2: workload web: health.command: target local: command health checks are not supported",
		"prod.cue:3:2: workload web: ports[0].public: target local: public ports are not supported",
		"prod.cue:5:13: workload web: replicas: target local: 3 replicas asked, at most 2 supported",
		"prod.cue:3:2: workload web: image: target local: latest is not allowed here",
		"prod.cue:3:2: workload web: ports[0].protocol: target local: UDP needs host networking here",
		"workload api: provider: target nowhere: no target of that name is declared",
	}
	// Problems come in workload order of the environment as given.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	if !p.Blocked() {
		t.Fatal("plan with problems is not blocked")
	}
	if _, err := e.Apply(context.Background(), config([]string{"local"}, w, orphan), p); err == nil {
		t.Fatal("Apply of a blocked plan succeeded")
	}
	if n := len(ps["local"].Calls(false)); n != 1 { // the List only
		t.Errorf("blocked plan made %d calls", n)
	}
}

func TestPlanPolicyDenyBlocks(t *testing.T) {
	ps := map[string]*fake.Provider{"local": fake.New()}
	e := newTestEngine(t, ps, nil)
	p, err := e.Plan(context.Background(), config([]string{"local"}, wl("web", "local", "app:1", 9)), "prod", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Blocked() || !strings.Contains(p.BlockedReason(), "max-replicas") {
		t.Errorf("BlockedReason() = %q", p.BlockedReason())
	}
}

func TestPlanJSONRoundTrip(t *testing.T) {
	ps := map[string]*fake.Provider{"local": fake.New()}
	seed(ps["local"], wl("old", "local", "x:1", 1))
	seed(ps["local"], wl("web", "local", "app:1", 1))
	seed(ps["local"], wl("db", "local", "db:1", 1))
	e := newTestEngine(t, ps, nil)
	w := wl("web", "local", "app:2", 6)
	p, err := e.Plan(context.Background(), config([]string{"local"}, w, wl("db", "local", "db:1", 1)), "prod", "r1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != p.String() {
		t.Errorf("round trip changed the plan:\n%s\n---\n%s", back.String(), p.String())
	}
	want := `Environment prod at revision r1:
  ~ update web on local (spec changed)
      image: "app:1" → "app:2"
      replicas: 1 → 6
  - delete old on local (no longer declared)
Findings:
  deny max-replicas: workloads.web.replicas: 6 replicas, at most 5 allowed
Plan: 0 to create, 1 to update, 1 to delete, 0 to migrate.
Blocked: nothing will be applied.
`
	if got := p.String(); got != want {
		t.Errorf("String():\n%s\nwant:\n%s", got, want)
	}
}

func TestDiffSpec(t *testing.T) {
	a := schema.Workload{Image: "a:1", Replicas: 1, Command: []string{"/app"}, Ports: []schema.Port{{Port: 80, Protocol: "tcp"}}}
	b := schema.Workload{Image: "a:2", Replicas: 1, Args: []string{"serve"}, Env: map[string]string{"X": "1"},
		Ports:     []schema.Port{{Port: 80, Protocol: "tcp", Public: true, HostPort: 8080}, {Port: 9, Protocol: "udp"}},
		Resources: schema.Resources{CPUMillis: 250}, Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}}}
	got := diffSpec(a, b)
	want := []Change{
		{"image", `"a:1"`, `"a:2"`},
		{"command", `["/app"]`, "[]"},
		{"args", "[]", `["serve"]`},
		{"env.X", "(unset)", `"1"`},
		{"ports[0]", "80/tcp", "80/tcp public:8080"},
		{"ports[1]", "(none)", "9/udp"},
		{"resources.cpuMillis", "0", "250"},
		{"health", "(none)", "tcp :80 every 0s timeout 0s retries 0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diffSpec:\n got %v\nwant %v", got, want)
	}
	if len(diffSpec(b, b)) != 0 {
		t.Error("equal specs differ")
	}
	c := b
	h := *b.Health
	h.StartPeriod = schema.Duration(30 * time.Second)
	c.Health = &h
	if got := diffSpec(b, c); len(got) != 1 || got[0].New != "tcp :80 every 0s timeout 0s retries 0 start period 30s" {
		t.Errorf("a start period change: %v", got)
	}
}

// lossy is a fake whose runtime keeps health-check periods in whole seconds and keeps an env value another
// manager owns, as Kubernetes does.
type lossy struct {
	*fake.Provider
}

func (l lossy) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	obs, err := l.Provider.List(ctx, owner, target)
	for i := range obs {
		if h := obs[i].Spec.Health; h != nil {
			c := *h
			c.Interval = schema.Duration(time.Duration(c.Interval).Round(time.Second))
			obs[i].Spec.Health = &c
		}
		obs[i].Kept = []providers.Kept{{Path: "env.EXTRA", Reason: `owned by field manager "kubectl-edit"`}}
	}
	return obs, err
}

type normalizing struct{ lossy }

func (normalizing) Normalize(w schema.Workload) schema.Workload {
	if w.Health != nil {
		c := *w.Health
		c.Interval = schema.Duration(time.Duration(c.Interval).Round(time.Second))
		w.Health = &c
	}
	return w
}

func TestPlanNormalizerAndKept(t *testing.T) {
	w := wl("web", "local", "app:1", 1)
	w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}, Interval: schema.Duration(1500 * time.Millisecond)}
	for _, tc := range []struct {
		name string
		wrap func(*fake.Provider) providers.Provider
		want []string
	}{
		{"without a normalizer, the rounding shows", func(f *fake.Provider) providers.Provider { return lossy{f} },
			[]string{"~ update web on local (drift: 1 field changed on the runtime)"}},
		{"with one, the plan is empty", func(f *fake.Provider) providers.Provider { return normalizing{lossy{f}} }, nil},
	} {

		t.Run(tc.name, func(t *testing.T) {
			f := fake.New()
			seed(f, w)
			e, err := NewEngine(Options{Evaluate: testPolicy, Clock: clockAdapter{fakeclock.New(t0)},
				Providers: func(schema.Target, providers.Options) (providers.Provider, error) { return tc.wrap(f), nil }})
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.Plan(context.Background(), config([]string{"local"}, w), "prod", "r1")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range p.Steps {
				got = append(got, s.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("steps:\n got %q\nwant %q\n%s", got, tc.want, p)
			}
			wantKept := []KeptValue{{Workload: "web", Target: "local", Path: "env.EXTRA", Reason: `owned by field manager "kubectl-edit"`}}
			if !reflect.DeepEqual(p.Kept, wantKept) {
				t.Errorf("kept = %+v", p.Kept)
			}
			if !strings.Contains(p.String(), "Kept (set outside berth; the apply leaves them):\n  web on local: env.EXTRA: owned by") {
				t.Errorf("the plan does not say what it keeps:\n%s", p)
			}
		})
	}
}

// A kept value the configuration now declares is a change the apply makes, not a kept one.
func TestPlanKeptNowDeclared(t *testing.T) {
	f := fake.New()
	running := wl("web", "local", "app:1", 1)
	seed(f, running)
	w := running
	w.Env = map[string]string{"EXTRA": "2"}
	e, err := NewEngine(Options{Evaluate: testPolicy, Clock: clockAdapter{fakeclock.New(t0)},
		Providers: func(schema.Target, providers.Options) (providers.Provider, error) { return lossy{f}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Plan(context.Background(), config([]string{"local"}, w), "prod", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Kept) != 0 || len(p.Steps) != 1 || p.Steps[0].Changes[0].Path != "env.EXTRA" {
		t.Errorf("plan:\n%s", p)
	}
}
