package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// The cases here go through the planner and the engine, as the controller does, not through Apply alone: drift
// that only Apply would see is drift a user never sees.

// engine is a reconciler engine whose only target is the harness's, served by p. Policies are not evaluated:
// the suite is about the provider.
func (s *suite) engine(t *testing.T, p providers.Provider) *reconciler.Engine {
	t.Helper()
	return s.engineWith(t, p, nil)
}

// engineWith is engine with a secret resolver (nil: the engine's default).
func (s *suite) engineWith(t *testing.T, p providers.Provider, secrets reconciler.SecretResolver) *reconciler.Engine {
	t.Helper()
	e, err := reconciler.NewEngine(reconciler.Options{
		Instance:  s.h.Owner.Instance,
		Providers: func(schema.Target, providers.Options) (providers.Provider, error) { return p, nil },
		Evaluate: func(*schema.Config, string, policies.Options) []policies.Finding {
			return nil
		},
		Secrets: secrets,
	})
	if err != nil {
		t.Fatalf("conformance: engine: %v", err)
	}
	return e // not closed: closing would close p, which the harness owns
}

// config is a one-environment configuration running ws on the harness's target.
func (s *suite) config(p providers.Provider, ws ...schema.Workload) *schema.Config {
	for i := range ws {
		ws[i].Provider = s.h.Target
	}
	slices.SortFunc(ws, func(a, b schema.Workload) int { return strings.Compare(a.Name, b.Name) })
	return &schema.Config{
		Targets:      map[string]schema.Target{s.h.Target: {Name: s.h.Target, Type: p.Type()}},
		Environments: map[string]schema.Environment{s.h.Owner.Environment: {Name: s.h.Owner.Environment, Workloads: ws}},
	}
}

// plan plans w alone on p. Other workloads of the environment (other cases') would show as deletes; only w's
// steps are kept.
func (s *suite) plan(ctx context.Context, t *testing.T, p providers.Provider, w schema.Workload) (*reconciler.Plan, *schema.Config, error) {
	t.Helper()
	cfg := s.config(p, w)
	plan, err := s.engine(t, p).Plan(ctx, cfg, s.h.Owner.Environment, "conformance")
	if err != nil {
		return nil, nil, err
	}
	if len(plan.Problems) > 0 {
		t.Fatalf("conformance: the reference workload is blocked on this target: %s", plan.BlockedReason())
	}
	s.only(plan, w.Name)
	return plan, cfg, nil
}

// only keeps the steps and kept values of workload name (the other cases' workloads show as deletes) and lifts
// the prune refusal they caused.
func (s *suite) only(plan *reconciler.Plan, name string) {
	steps := plan.Steps[:0]
	for _, st := range plan.Steps {
		if st.Workload == name {
			steps = append(steps, st)
		}
	}
	plan.Steps = steps
	kept := plan.Kept[:0]
	for _, k := range plan.Kept {
		if k.Workload == name {
			kept = append(kept, k)
		}
	}
	plan.Kept = kept
	plan.Refused = ""
}

// planSettles waits until the plan for w on p has no step: every managed field reads back as applied.
func (s *suite) planSettles(t *testing.T, p providers.Provider, w schema.Workload) *reconciler.Plan {
	t.Helper()
	var last *reconciler.Plan
	s.waitFor(t, fmt.Sprintf("an empty plan for %s after the apply", w.Name), func(ctx context.Context) string {
		plan, _, err := s.plan(ctx, t, p, w)
		if err != nil {
			return "Plan: " + err.Error()
		}
		last = plan
		if !plan.Empty() {
			return "the plan after the apply is not empty:\n" + plan.String()
		}
		return ""
	})
	return last
}

// applyPlan plans w, checks the plan with ok (which says why it is wrong, "" when right), applies exactly that
// plan through the engine and returns it.
func (s *suite) applyPlan(t *testing.T, p providers.Provider, w schema.Workload, what string, ok func(*reconciler.Plan) string) *reconciler.Plan {
	t.Helper()
	var plan *reconciler.Plan
	var cfg *schema.Config
	s.waitFor(t, what, func(ctx context.Context) string {
		var err error
		plan, cfg, err = s.plan(ctx, t, p, w)
		if err != nil {
			return "Plan: " + err.Error()
		}
		return ok(plan)
	})
	res, err := s.engine(t, p).Apply(s.ctx(t), cfg, plan)
	if err != nil {
		t.Fatalf("applying the plan\n%s: %v", plan, err)
	}
	if res.Failed() > 0 {
		t.Fatalf("applying the plan\n%s: %d steps failed", plan, res.Failed())
	}
	return plan
}

// changeAt returns the first change of the plan's step for w whose path starts with prefix.
func changeAt(plan *reconciler.Plan, w, prefix string) (reconciler.Change, bool) {
	for _, st := range plan.Steps {
		if st.Workload != w || st.Action != reconciler.ActionUpdate {
			continue
		}
		for _, c := range st.Changes {
			if strings.HasPrefix(c.Path, prefix) {
				return c, true
			}
		}
	}
	return reconciler.Change{}, false
}

// fieldDrift tampers with each managed field through the runtime's own API: the plan shows it at that field, one
// apply of that plan repairs it, and the plan after it is empty.
func (s *suite) fieldDrift(t *testing.T) {
	if len(s.h.Tamper) == 0 {
		t.Skip("Harness.Tamper is empty")
	}
	const name = "cf-fielddrift"
	p := s.provider(t, name)
	w := s.workload(t, name, 2, "conformance-fielddrift")
	s.applyPlan(t, p, w, "a plan creating "+name, func(plan *reconciler.Plan) string {
		if len(plan.Steps) != 1 || plan.Steps[0].Action != reconciler.ActionCreate {
			return "want one create step, plan:\n" + plan.String()
		}
		return ""
	})
	s.converged(t, p, w)
	s.planSettles(t, p, w)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range s.h.Tamper {
			if !yield(k) {
				return
			}
		}
	})
	for _, key := range keys {
		t.Run(strings.ReplaceAll(key, " ", "_"), func(t *testing.T) {
			s.h.Tamper[key](s.ctx(t), t, name)
			prefix := tamperPath(key)
			plan := s.applyPlan(t, p, w, "a plan showing the tampered "+key, func(plan *reconciler.Plan) string {
				if _, ok := changeAt(plan, name, prefix); !ok {
					return fmt.Sprintf("no change at %q in the plan:\n%s", prefix, plan)
				}
				return ""
			})
			c, _ := changeAt(plan, name, prefix)
			t.Logf("drift seen: field %s: %s: %s → %s (%s)", key, c.Path, c.Old, c.New, plan.Steps[0].Reason)
			s.converged(t, p, w)
			s.planSettles(t, p, w)
		})
	}
	s.serves(t, w, "conformance-fielddrift")
}

// unmanaged changes what berth does not manage: no plan step, and Apply leaves it.
func (s *suite) unmanaged(t *testing.T) {
	if s.h.Unmanaged == nil {
		t.Skip("Harness.Unmanaged is nil")
	}
	const name = "cf-unmanaged"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-unmanaged")
	s.apply(t, p, w)
	kept := s.h.Unmanaged(s.ctx(t), t, name)
	check := func(when string) {
		ok, err := kept(s.ctx(t))
		switch {
		case err != nil:
			t.Fatalf("checking the unmanaged change %s: %v", when, err)
		case !ok:
			t.Fatalf("the unmanaged change is gone %s", when)
		}
	}
	check("right after making it")
	plan, _, err := s.plan(s.ctx(t), t, p, w)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if !plan.Empty() {
		t.Fatalf("a change berth does not manage shows in the plan:\n%s", plan)
	}
	s.apply(t, p, w)
	check("after Apply")
}

// foreign: a value another manager owns inside a managed field. Plan and result must agree: either the plan says
// the value is kept and it stays, or the plan shows the change and the apply makes it.
func (s *suite) foreign(t *testing.T) {
	if s.h.Foreign == nil {
		t.Skip("Harness.Foreign is nil")
	}
	const name = "cf-foreign"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-foreign")
	s.apply(t, p, w)
	path := s.h.Foreign(s.ctx(t), t, name)
	kept := func(plan *reconciler.Plan) bool {
		for _, k := range plan.Kept {
			if k.Path == path {
				return true
			}
		}
		return false
	}
	var plan *reconciler.Plan
	s.waitFor(t, "a plan that sees the foreign value at "+path, func(ctx context.Context) string {
		var err error
		if plan, _, err = s.plan(ctx, t, p, w); err != nil {
			return "Plan: " + err.Error()
		}
		_, changed := changeAt(plan, name, path)
		switch {
		case changed && kept(plan):
			return "the plan both changes and keeps " + path + ":\n" + plan.String()
		case !changed && !kept(plan):
			return "the plan neither changes nor keeps " + path + ":\n" + plan.String()
		}
		return ""
	})
	if kept(plan) {
		if !plan.Empty() {
			t.Fatalf("the plan keeps %s yet has steps:\n%s", path, plan)
		}
		s.apply(t, p, w)
		after, _, err := s.plan(s.ctx(t), t, p, w)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		if !kept(after) || !after.Empty() {
			t.Fatalf("after the apply, the plan no longer says %s is kept, or has steps:\n%s", path, after)
		}
		t.Logf("foreign value at %s kept, and said so: %s", path, after.Kept[0].Reason)
		return
	}
	s.applyPlan(t, p, w, "the plan changing "+path, func(plan *reconciler.Plan) string {
		if _, ok := changeAt(plan, name, path); !ok {
			return "no change at " + path + ":\n" + plan.String()
		}
		return ""
	})
	after := s.planSettles(t, p, w)
	if kept(after) {
		t.Fatalf("after the apply that removed %s, the plan says it is kept:\n%s", path, after)
	}
	t.Logf("foreign value at %s shown as a change and removed by the apply", path)
}
