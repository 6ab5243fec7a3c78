package reconciler

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/schema"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clockAdapter makes a fakeclock.Clock a Clock.
type clockAdapter struct{ *fakeclock.Clock }

func (c clockAdapter) NewTimer(d time.Duration) Timer { return c.Clock.NewTimer(d) }

// factory serves the fake providers of a test by target name.
func factory(ps map[string]*fake.Provider) providers.Factory {
	return func(t schema.Target, _ providers.Options) (providers.Provider, error) {
		if t.Type != fake.Type {
			return nil, fmt.Errorf("target %q: unknown type %q", t.Name, t.Type)
		}
		p, ok := ps[t.Name]
		if !ok {
			return nil, fmt.Errorf("target %q: no fake provider", t.Name)
		}
		return p, nil
	}
}

// testPolicy is a stand-in for policies.Evaluate with one rule, so these tests do not depend on the built-in rules.
func testPolicy(cfg *schema.Config, env string, opts policies.Options) []policies.Finding {
	var fs []policies.Finding
	for _, w := range cfg.Environments[env].Workloads {
		if opts.MaxReplicas > 0 && w.Replicas > opts.MaxReplicas {
			fs = append(fs, policies.Finding{Rule: "max-replicas", Severity: policies.Deny, Environment: env,
				Workload: w.Name, Field: "replicas", Pos: w.Position("replicas"),
				Message: fmt.Sprintf("%d replicas, at most %d allowed", w.Replicas, opts.MaxReplicas)})
		}
	}
	return fs
}

func newTestEngine(t testing.TB, ps map[string]*fake.Provider, mod func(*Options)) *Engine {
	t.Helper()
	o := Options{Providers: factory(ps), Evaluate: testPolicy, Policy: policies.Options{MaxReplicas: 5},
		Clock: clockAdapter{fakeclock.New(t0)}}
	if mod != nil {
		mod(&o)
	}
	e, err := NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func wl(name, target, image string, replicas int) schema.Workload {
	return schema.Workload{Name: name, Provider: target, Image: image, Replicas: replicas}
}

// config builds a config with fake targets and one environment "prod" on branch main.
func config(targets []string, ws ...schema.Workload) *schema.Config {
	cfg := &schema.Config{Targets: map[string]schema.Target{}, Environments: map[string]schema.Environment{}}
	for _, t := range targets {
		cfg.Targets[t] = schema.Target{Name: t, Type: fake.Type}
	}
	cfg.Environments["prod"] = schema.Environment{Name: "prod", Branch: "main", Workloads: ws}
	return cfg
}

// seed makes p run w for prod as if it had been applied.
func seed(p *fake.Provider, w schema.Workload) {
	p.Seed(providers.Desired{Owner: providers.Owner{Instance: DefaultInstance, Environment: "prod"}, Target: w.Provider,
		Workload: w, SpecHash: providers.SpecHash(w)})
}

// loadText is the transcript tests' loader: a line format standing in for CUE.
//
//	target NAME TYPE
//	env NAME BRANCH
//	workload ENV NAME TARGET image=I replicas=N env.K=V health=http|tcp|command port=P
func loadText(dir string) (*schema.Config, error) {
	const file = "config.txt"
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := &schema.Config{Targets: map[string]schema.Target{}, Environments: map[string]schema.Environment{}}
	var errs schema.Errors
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Fields(sc.Text())
		pos := schema.Pos{File: file, Line: line, Column: 1}
		bad := func(path, msg string) { errs = append(errs, &schema.Error{Pos: pos, Path: path, Message: msg}) }
		switch {
		case len(fs) == 0:
		case fs[0] == "target" && len(fs) == 3:
			cfg.Targets[fs[1]] = schema.Target{Name: fs[1], Type: fs[2], Pos: pos}
		case fs[0] == "env" && len(fs) == 3:
			cfg.Environments[fs[1]] = schema.Environment{Name: fs[1], Branch: fs[2], Pos: pos}
		case fs[0] == "workload" && len(fs) >= 4:
			e, ok := cfg.Environments[fs[1]]
			if !ok {
				bad("environments."+fs[1], "environment not declared")
				continue
			}
			w := schema.Workload{Name: fs[2], Provider: fs[3], Replicas: 1, Pos: map[string]schema.Pos{"": pos}}
			for _, kv := range fs[4:] {
				k, v, _ := strings.Cut(kv, "=")
				p := pos
				p.Column = strings.Index(sc.Text(), kv) + 1
				w.Pos[k] = p
				switch {
				case k == "image":
					w.Image = v
				case k == "unsafe":
					w.Migration.AllowUnsafe = v == "true"
				case k == "replicas":
					n, err := strconv.Atoi(v)
					if err != nil {
						errs = append(errs, &schema.Error{Pos: p, Path: "workloads." + w.Name + ".replicas", Message: "not a number"})
					}
					w.Replicas = n
				case strings.HasPrefix(k, "env."):
					if w.Env == nil {
						w.Env = map[string]string{}
					}
					w.Env[strings.TrimPrefix(k, "env.")] = v
				case k == "health" && v == "http":
					w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}}
				case k == "health" && v == "command":
					w.Health = &schema.HealthCheck{Command: []string{"/app", "healthcheck"}}
				case k == "port":
					n, _ := strconv.Atoi(v)
					w.Ports = append(w.Ports, schema.Port{Port: n, Protocol: "tcp", Public: true, HostPort: n})
				default:
					errs = append(errs, &schema.Error{Pos: p, Path: "workloads." + w.Name + "." + k, Message: "unknown field"})
				}
			}
			e.Workloads = append(e.Workloads, w)
			cfg.Environments[fs[1]] = e
		default:
			bad(fs[0], "unknown statement")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}
