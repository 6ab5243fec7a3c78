package reconciler

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// OfflineProblem is a Problem found from the files alone (CheckOffline), with the environments it was found in:
// a workload declared once at the top level is checked in every environment, and says so once. A problem of a
// target itself (its type, its settings) names no environment.
type OfflineProblem struct {
	Problem
	Environments []string `json:"environments,omitempty"`
}

// String is "file:line:col: workload W on target T: field F: message" ("target T: field F: message" for a
// problem of the target itself; no position when there is none).
func (p OfflineProblem) String() string {
	var b strings.Builder
	if p.Pos.File != "" {
		fmt.Fprintf(&b, "%s: ", p.Pos)
	}
	if p.Workload != "" {
		fmt.Fprintf(&b, "workload %s on ", p.Workload)
	}
	fmt.Fprintf(&b, "target %s: ", p.Target)
	if p.Field != "" {
		fmt.Fprintf(&b, "field %s: ", p.Field)
	}
	b.WriteString(p.Message)
	return b.String()
}

// CheckOffline checks every workload of every environment against what its target's type honours, known from the
// files alone (providers.OfflineFor): no provider is built, nothing is reached, no credential or environment
// variable is read. It runs the plan's own capability check on each, so what it reports is what a plan would
// report before it lists anything; the plan checks again with the built providers, which may know more (a Swarm
// without IPVS). A target whose type is unknown or whose settings are wrong is a problem at the target, and its
// workloads are not checked further; a workload naming no declared target is left to the unknown-provider policy.
// The problems are sorted by position, then workload, target, field and message.
func CheckOffline(cfg *schema.Config) []OfflineProblem {
	byKey := map[Problem]*OfflineProblem{}
	var out []*OfflineProblem
	add := func(p Problem, env string) {
		op := byKey[p]
		if op == nil {
			op = &OfflineProblem{Problem: p}
			byKey[p] = op
			out = append(out, op)
		}
		if env != "" && !slices.Contains(op.Environments, env) {
			op.Environments = append(op.Environments, env)
		}
	}
	type offline struct {
		caps providers.Capabilities
		v    providers.Validator
	}
	usable := map[string]offline{}
	for _, name := range targetNames(cfg) {
		t := cfg.Targets[name]
		if t.Name == "" {
			t.Name = name
		}
		caps, v, err := providers.OfflineFor(t)
		if err != nil {
			field := "settings"
			if !slices.Contains(providers.Types(), t.Type) {
				field = "type"
			}
			// Settings errors start with the target's position, which the problem carries already.
			msg := err.Error()
			if t.Pos.File != "" {
				msg = strings.TrimPrefix(msg, t.Pos.String()+": ")
			}
			add(Problem{Target: name, Field: field, Pos: t.Pos, Message: msg}, "")
			continue
		}
		usable[name] = offline{caps, v}
	}
	for _, env := range slices.Sorted(maps.Keys(cfg.Environments)) {
		ev := cfg.Environments[env]
		for _, w := range ev.Workloads {
			o, ok := usable[w.Provider]
			if !ok {
				continue
			}
			for _, p := range checkCapabilities(w, ev, w.Provider, o.caps, o.v) {
				add(p, env)
			}
		}
	}
	slices.SortFunc(out, func(a, b *OfflineProblem) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column), cmp.Compare(a.Workload, b.Workload),
			cmp.Compare(a.Target, b.Target), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
	ps := make([]OfflineProblem, len(out))
	for i, p := range out {
		slices.Sort(p.Environments)
		ps[i] = *p
	}
	return ps
}
