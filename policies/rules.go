package policies

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/schema"
)

// DefaultMaxReplicas is the replica cap when Options.MaxReplicas is 0.
const DefaultMaxReplicas = 50

// Options tune the built-in rules.
type Options struct {
	// MaxReplicas caps replicas per workload; DefaultMaxReplicas when 0.
	MaxReplicas int
}

// Rule checks one workload of an environment and reports what it finds.
type Rule struct {
	Name  string
	Check func(cfg *schema.Config, env string, w schema.Workload, opts Options) []Finding
}

// Builtin lists the built-in rules in the order they run.
var Builtin = []Rule{
	{Name: "image-tag", Check: checkImageTag},
	{Name: "max-replicas", Check: checkMaxReplicas},
	{Name: "health-check", Check: checkHealth},
	{Name: "unknown-provider", Check: checkProvider},
}

// Evaluate runs the built-in rules over every workload of environment env. An unknown environment is itself a deny
// finding. Findings are sorted by workload, then rule.
func Evaluate(cfg *schema.Config, env string, opts Options) []Finding {
	if opts.MaxReplicas <= 0 {
		opts.MaxReplicas = DefaultMaxReplicas
	}
	e, ok := cfg.Environments[env]
	if !ok {
		return []Finding{{Rule: "environment", Severity: Deny, Environment: env,
			Message: fmt.Sprintf("environment %q is not declared (declared: %s)", env, strings.Join(envNames(cfg), ", "))}}
	}
	var out []Finding
	for _, w := range e.Workloads {
		for _, r := range Builtin {
			for _, f := range r.Check(cfg, env, w, opts) {
				f.Rule, f.Environment, f.Workload = r.Name, env, w.Name
				out = append(out, f)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Workload != out[j].Workload {
			return out[i].Workload < out[j].Workload
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

func envNames(cfg *schema.Config) []string {
	var ns []string
	for n := range cfg.Environments {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func finding(sev Severity, w schema.Workload, field, format string, args ...any) Finding {
	return Finding{Severity: sev, Field: field, Pos: w.Position(field), Message: fmt.Sprintf(format, args...)}
}

func checkImageTag(_ *schema.Config, _ string, w schema.Workload, _ Options) []Finding {
	tag, digest := splitImage(w.Image)
	switch {
	case digest != "":
		return nil
	case tag == "":
		return []Finding{finding(Deny, w, "image", "image %q has no tag or digest: pin a version", w.Image)}
	case tag == "latest":
		return []Finding{finding(Deny, w, "image", "image %q uses the moving tag \"latest\": pin a version", w.Image)}
	}
	return nil
}

// splitImage returns the tag and digest of an image reference. A colon before the last slash belongs to a registry
// host:port, not a tag.
func splitImage(ref string) (tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	name := ref
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 {
		tag = name[i+1:]
	}
	return tag, digest
}

func checkMaxReplicas(_ *schema.Config, _ string, w schema.Workload, opts Options) []Finding {
	if w.Replicas > opts.MaxReplicas {
		return []Finding{finding(Deny, w, "replicas", "replicas %d is above the cap of %d", w.Replicas, opts.MaxReplicas)}
	}
	return nil
}

func checkHealth(_ *schema.Config, _ string, w schema.Workload, _ Options) []Finding {
	if w.Health == nil {
		return []Finding{finding(Warn, w, "health", "no health check: a replica counts as ready as soon as it runs")}
	}
	return nil
}

func checkProvider(cfg *schema.Config, _ string, w schema.Workload, _ Options) []Finding {
	if _, ok := cfg.Targets[w.Provider]; ok {
		return nil
	}
	var names []string
	for n := range cfg.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return []Finding{finding(Deny, w, "provider", "provider %q names no target (targets: %s)", w.Provider, strings.Join(names, ", "))}
}
