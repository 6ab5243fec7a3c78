package preview

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema"
)

// planComments keeps, on every open pull request against a branch that ordinary environments follow, one comment
// per environment with berth's plan of what merging it would change there (terraform-plan style). The head's
// workloads are planned against the base branch's targets: a pull request never makes berth talk to a runtime its
// trusted branch does not name. Fork pull requests get plans only once approved, like previews. A plan is made
// again when the head or the base moves.
func (c *Controller) planComments(ctx context.Context, base *schema.Config, rev string, p *schema.PreviewPolicy, open map[int]forge.Change) {
	var out []PlanStatus
	for _, n := range slices.Sorted(maps.Keys(open)) {
		ch := open[n]
		var envs []string
		for name, e := range base.Environments {
			if e.Branch == ch.BaseRef && e.Preview == nil {
				envs = append(envs, name)
			}
		}
		if len(envs) == 0 {
			continue
		}
		slices.Sort(envs)
		if ch.Fork {
			if p == nil || p.Forks != schema.ForksApproveEachCommit {
				continue
			}
			if ok, err := c.approved(ctx, ch, p.ApproveLabel); err != nil || !ok {
				continue
			}
		}
		for _, env := range envs {
			if ctx.Err() != nil {
				return
			}
			ps := c.planFor(ctx, base, rev, ch, env)
			out = append(out, ps)
			c.publishPlan(ctx, ps)
		}
	}
	c.mu.Lock()
	c.report.Plans = out
	c.mu.Unlock()
}

// planFor is the plan of environment env at ch's head, cached by head and base revision.
func (c *Controller) planFor(ctx context.Context, base *schema.Config, rev string, ch forge.Change, env string) PlanStatus {
	key := fmt.Sprintf("%d/%s/%s/%s", ch.Number, env, ch.HeadSHA, rev)
	c.mu.Lock()
	ps, ok := c.plans[key]
	c.mu.Unlock()
	if ok {
		return ps
	}
	ps = PlanStatus{Number: ch.Number, Environment: env, Head: ch.HeadSHA}
	fail := func(format string, args ...any) PlanStatus {
		ps.Summary = "no plan"
		ps.Errors = append(ps.Errors, fmt.Sprintf(format, args...))
		return ps
	}
	done := func(ps PlanStatus) PlanStatus {
		c.mu.Lock()
		for k := range c.plans {
			if strings.HasPrefix(k, fmt.Sprintf("%d/%s/", ch.Number, env)) {
				delete(c.plans, k)
			}
		}
		c.plans[key] = ps
		c.mu.Unlock()
		return ps
	}
	snap, err := c.opts.Source.(HeadFetcher).FetchRef(ctx, headRef(c.opts.Forge.Kind(), ch.Number), ch.HeadSHA)
	if err != nil {
		return fail("fetch the head: %v", err) // not cached: retried on the next pass
	}
	head, err := c.opts.LoadContext(ctx, filepath.Join(snap.Dir, filepath.FromSlash(c.opts.Path)))
	if err != nil {
		for _, e := range reconciler.ErrorInfos(err) {
			ps.Errors = append(ps.Errors, errorLine(e))
		}
		ps.Summary = "the head does not load"
		return done(ps)
	}
	if _, ok := head.Environments[env]; !ok {
		ps.Summary = "merging removes environment " + env + " from this branch; berth will stop applying it"
		return done(ps)
	}
	if !reflect.DeepEqual(targetsOf(head), targetsOf(base)) {
		ps.Errors = append(ps.Errors, "the pull request changes targets: this plan uses the base branch's targets; the merge applies the new ones")
	}
	// Secrets are read from the base branch's files: a pull request's own encrypted files are not decrypted.
	cfg := &schema.Config{Targets: base.Targets, Environments: head.Environments, Previews: head.Previews, Root: base.Root,
		Registries: base.Registries}
	plan, err := c.opts.Engine.Plan(ctx, cfg, env, ch.HeadSHA)
	if err != nil {
		return fail("plan: %v", err)
	}
	ps.Summary = plan.Summary()
	var b strings.Builder
	_ = plan.Write(&b)
	ps.Steps = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for _, e := range reconciler.BlockErrors(plan) {
		ps.Errors = append(ps.Errors, errorLine(e))
	}
	return done(ps)
}

func targetsOf(cfg *schema.Config) map[string]any {
	out := map[string]any{}
	for n, t := range cfg.Targets {
		out[n] = []any{t.Type, t.Settings}
	}
	return out
}

func errorLine(e reconciler.ErrorInfo) string {
	line := e.Message
	if e.Path != "" {
		line = e.Path + ": " + line
	}
	if e.File != "" {
		line = fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, line)
	}
	return line
}

// RenderPlan is the body of a plan comment.
func RenderPlan(marker string, ps PlanStatus, limit int) string {
	var sum strings.Builder
	sum.WriteString(marker + "\n")
	fmt.Fprintf(&sum, "### berth plan for `%s` at `%s`\n\n", ps.Environment, short(ps.Head))
	fmt.Fprintf(&sum, "Merging this pull request would change: **%s**\n\n", codeText(ps.Summary))
	var det strings.Builder
	if len(ps.Errors) > 0 {
		det.WriteString("**Problems**\n\n```\n")
		for _, e := range ps.Errors {
			det.WriteString(codeText(e) + "\n")
		}
		det.WriteString("```\n\n")
	}
	if len(ps.Steps) > 0 {
		det.WriteString("```diff\n")
		for _, s := range ps.Steps {
			det.WriteString(codeText(s) + "\n")
		}
		det.WriteString("```\n")
	}
	return fit(sum.String(), det.String(),
		"\n_The plan is cut to fit the forge's comment size; `berth plan --pr N` prints all of it._\n", limit)
}

// publishPlan upserts a plan comment when it changed.
func (c *Controller) publishPlan(ctx context.Context, ps PlanStatus) {
	marker := forge.Marker(c.opts.Instance, "plan-"+ps.Environment)
	body := RenderPlan(marker, ps, c.opts.Forge.Limits().CommentBytes)
	key := fmt.Sprintf("%d/plan-%s", ps.Number, ps.Environment)
	c.mu.Lock()
	same := c.posted[key] == body
	c.mu.Unlock()
	if same {
		return
	}
	if _, err := c.opts.Forge.UpsertComment(ctx, ps.Number, marker, body); err != nil {
		c.log.Warn("previews: plan comment", "pr", ps.Number, "env", ps.Environment, "err", err)
		return
	}
	c.mu.Lock()
	c.posted[key] = body
	c.mu.Unlock()
}

// DryRun is what berth would post on pull request n now, without changing or posting anything: the preview's
// comment (its decision and the plan of the preview environment) when the base's previews select it, and the plan
// comment of every ordinary environment following the branch it targets.
func (c *Controller) DryRun(ctx context.Context, n int) (string, error) {
	base, rev, err := c.loadBase(ctx)
	if err != nil {
		return "", err
	}
	ch, err := c.opts.Forge.Get(ctx, n)
	if err != nil {
		return "", err
	}
	if ch.State != forge.StateOpen {
		return "", fmt.Errorf("pull request %d is %s", n, ch.State)
	}
	var out strings.Builder
	var policy *schema.PreviewPolicy
	if base.Previews != nil {
		policy = base.Previews.PR
	}
	if policy != nil {
		if _, ok := c.firstSeen[ch.HeadSHA]; !ok {
			c.firstSeen[ch.HeadSHA] = c.opts.Clock.Now()
		}
		d := c.decide(ctx, base, policy, map[int]forge.Change{n: ch}, nil, c.opts.Clock.Now())[n]
		st := Status{Number: n, Environment: schema.PreviewName(n), Head: ch.HeadSHA, Author: ch.Author,
			Fork: ch.Fork, Base: policy.From, State: d.state, Reason: d.reason}
		switch {
		case d.change.Number == 0:
			st.State, st.Reason = StateDiscovered, "not selected by previews.pr.when"
			if ok, why := selected(policy, ch, base.Environments[policy.From].Branch); !ok {
				st.Reason = "not selected: " + why
			}
		case d.state == StateApplying:
			env, errs, err := c.previewEnv(ctx, n, &job{change: ch, cfg: base, baseRev: rev, policy: policy})
			if err != nil {
				return "", err
			}
			if errs != nil {
				st.State, st.Reason, st.Errors = StateFailed, "the head cannot be previewed", errs
				break
			}
			cfg := &schema.Config{Targets: base.Targets, Environments: map[string]schema.Environment{env.Name: *env}, Root: base.Root,
				Registries: base.Registries}
			plan, err := c.opts.Engine.Plan(ctx, cfg, env.Name, ch.HeadSHA)
			if err != nil {
				return "", err
			}
			st.Plan, st.Steps = plan.Summary(), reconciler.StepLines(plan)
			st.Errors = reconciler.BlockErrors(plan)
			if plan.Blocked() {
				st.State, st.Reason = StateFailed, "plan blocked"
			}
		}
		out.WriteString(RenderComment(forge.Marker(c.opts.Instance, CommentKey), st, 0))
		out.WriteString("\n")
	}
	var envs []string
	for name, e := range base.Environments {
		if e.Branch == ch.BaseRef {
			envs = append(envs, name)
		}
	}
	slices.Sort(envs)
	for _, env := range envs {
		ps := c.planFor(ctx, base, rev, ch, env)
		out.WriteString(RenderPlan(forge.Marker(c.opts.Instance, "plan-"+env), ps, 0))
		out.WriteString("\n")
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("pull request %d: no environment follows the branch it targets and previews are not configured", n)
	}
	return out.String(), nil
}
