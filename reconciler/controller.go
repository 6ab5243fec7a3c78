package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler/store"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
)

// DefaultInterval is the controller's poll and full-resync period.
const DefaultInterval = 30 * time.Second

// Environment phases.
const (
	PhaseReady       = "Ready"
	PhaseProgressing = "Progressing"
	PhaseFailed      = "Failed"
	PhaseBlocked     = "Blocked"
)

// ControllerOptions configure a Controller. Zero values take the documented defaults.
type ControllerOptions struct {
	// Name names the source in status, logs and metrics; "default" when "".
	Name   string
	Source repos.Source
	// Branch selects the environments to apply: those whose branch equals it; repos.DefaultBranch when "".
	Branch string
	// Environments, when not empty, are the environments to apply instead of those bound to Branch.
	Environments []string
	// Path is the directory inside the snapshot holding the .cue files; the root when "".
	Path string
	// Claims, shared by the controllers of one process, keeps two sources from managing one environment.
	Claims *Claims
	// Interval between passes (poll and full resync), ±10% jitter; DefaultInterval when 0.
	Interval time.Duration
	Engine   *Engine
	Clock    Clock
	Logger   *slog.Logger
	Store    *Store
	Metrics  *Metrics
	// Load renders a snapshot's tree; schema.Load when nil. LoadContext, when set, is used instead.
	Load func(dir string) (*schema.Config, error)
	// LoadContext renders a snapshot's tree and stops when ctx ends (e.g. schema.Evaluator.Load, bounded in time
	// and memory). A load cut short because ctx ended is neither reported nor remembered: the next pass loads
	// the revision again.
	LoadContext func(ctx context.Context, dir string) (*schema.Config, error)
	// Rand returns numbers in [0, 1) for jitter; a randomly seeded generator when nil.
	Rand func() float64
	// BackoffBase and BackoffMax shape the per-workload backoff; DefaultBackoffBase and DefaultBackoffMax when 0.
	BackoffBase, BackoffMax time.Duration
	// OnEnvironment, when set, is told each environment's status after every reconcile of it (serve sets the
	// deployed commit's status on the forge from it). It runs on the controller's goroutine: it must not block.
	OnEnvironment func(EnvironmentStatus)
}

// Controller keeps the environments of one branch converged with a source. Create it with NewController and run
// it with Run; Status, Ready and Trigger are safe to call from any goroutine.
type Controller struct {
	opts    ControllerOptions
	log     *slog.Logger
	trigger chan struct{}
	running atomic.Bool
	ready   atomic.Bool

	// Owned by the Run goroutine.
	backoff  *backoff
	resyncAt time.Time
	cfgRev   string
	cfg      *schema.Config
	cfgErr   error
	// applied is, per environment, the configuration last applied in full. While a newer revision fails to load or
	// its plan is blocked, passes keep what runs as applied says (drift is still repaired) and report why the newer
	// revision is held back.
	applied  map[string]appliedConfig
	lastSeen string
	lastPlan map[string]string
	// idle, when set (tests), is called each time the loop is about to wait.
	idle func()

	mu     sync.Mutex
	status Status
}

// Status is the controller's state for people and the API.
type Status struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Branch string `json:"branch"`
	Path   string `json:"path,omitempty"`
	Ready  bool   `json:"ready"`
	// CheckedAt is the time of the last successful check of the source (fetch, or ls-remote with no change).
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// Verified is how the last fetched revision passed the source's signature policy (nil when none is set).
	Verified *repos.Verification `json:"verified,omitempty"`
	// Revision is the last fetched revision, FetchedAt when it was fetched.
	Revision  string    `json:"revision,omitempty"`
	FetchedAt time.Time `json:"fetchedAt,omitzero"`
	// LastError is the last source or load error, "" after a good pass; Errors details a load error.
	LastError    string              `json:"lastError,omitempty"`
	Errors       []ErrorInfo         `json:"errors,omitempty"`
	Environments []EnvironmentStatus `json:"environments"`
}

// EnvironmentStatus is one environment's state.
type EnvironmentStatus struct {
	Name                  string             `json:"name"`
	Phase                 string             `json:"phase"`
	LastAppliedRevision   string             `json:"lastAppliedRevision,omitempty"`
	LastAttemptedRevision string             `json:"lastAttemptedRevision,omitempty"`
	Errors                []ErrorInfo        `json:"errors,omitempty"`
	Findings              []policies.Finding `json:"findings,omitempty"`
	// Plan is the last plan's summary line, Steps its steps as people read them.
	Plan      string           `json:"plan,omitempty"`
	Steps     []string         `json:"steps,omitempty"`
	Workloads []WorkloadStatus `json:"workloads,omitempty"`
	// LastApply is the most recent apply that carried out steps: what it did, step by step, and how each ended.
	LastApply *ApplyResult `json:"lastApply,omitempty"`
	UpdatedAt time.Time    `json:"updatedAt"`
}

// WorkloadStatus is one desired workload's state.
type WorkloadStatus struct {
	Name            string    `json:"name"`
	Target          string    `json:"target"`
	SpecHash        string    `json:"specHash"`
	DesiredReplicas int       `json:"desiredReplicas"`
	ReadyReplicas   int       `json:"readyReplicas"`
	BackoffUntil    time.Time `json:"backoffUntil,omitzero"`
	// Drift lists the fields (and missing objects) the last plan found changed on the runtime and not yet
	// repaired, as plan paths ("env.GREETING", "object Service web-public"); empty once repaired.
	Drift []string `json:"drift,omitempty"`
	// Kept lists values in managed fields that the runtime keeps and berth leaves (see providers.Kept).
	Kept []providers.Kept `json:"kept,omitempty"`
	// Endpoints are where the workload's public ports answer, as the provider last observed them.
	Endpoints []providers.Endpoint `json:"endpoints,omitempty"`
	// Names are what the workload's stable names serve, as the last plan read them.
	Names []StableName `json:"names,omitempty"`
	// Migration is the last transition of the workload's move while one is in flight, or of one that was shifted
	// back (phase "aborted", with why); nil otherwise.
	Migration *store.Migration `json:"migration,omitempty"`
}

// ErrorInfo is an error with the place in the user's files it is about, when known.
type ErrorInfo struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// NewController validates opts and returns a controller.
func NewController(opts ControllerOptions) (*Controller, error) {
	if opts.Source == nil {
		return nil, errors.New("reconciler: ControllerOptions.Source is required")
	}
	if opts.Engine == nil {
		return nil, errors.New("reconciler: ControllerOptions.Engine is required")
	}
	if opts.Branch == "" {
		opts.Branch = repos.DefaultBranch
	}
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Claims == nil {
		opts.Claims = NewClaims()
	}
	if strings.Contains(opts.Path, "..") || filepath.IsAbs(opts.Path) {
		return nil, fmt.Errorf("reconciler: Path %q must stay inside the repository", opts.Path)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("reconciler: Interval %v is negative", opts.Interval)
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Load == nil {
		opts.Load = schema.Load
	}
	if opts.LoadContext == nil {
		load := opts.Load
		opts.LoadContext = func(_ context.Context, dir string) (*schema.Config, error) { return load(dir) }
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())).Float64
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.BackoffBase < 0 || opts.BackoffMax < opts.BackoffBase {
		return nil, fmt.Errorf("reconciler: backoff base %v and cap %v are not 0 < base <= cap", opts.BackoffBase, opts.BackoffMax)
	}
	c := &Controller{opts: opts, log: opts.Logger, trigger: make(chan struct{}, 1),
		backoff:  newBackoff(opts.BackoffBase, opts.BackoffMax, opts.Rand),
		lastPlan: map[string]string{}, applied: map[string]appliedConfig{}}
	c.status = Status{Name: opts.Name, Source: opts.Source.String(), Branch: opts.Branch, Path: opts.Path,
		Environments: []EnvironmentStatus{}}
	return c, nil
}

// Trigger asks for a pass as soon as possible (coalesced, never blocking).
func (c *Controller) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Ready tells whether the first pass is done.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Status returns a copy of the current status.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(c.status) // a deep copy; every field is plain data
	var s Status
	_ = json.Unmarshal(b, &s)
	s.Ready = c.Ready()
	// A move lasts minutes, within one pass: where it stands is read from the store now, not at the pass's end.
	for i := range s.Environments {
		env := &s.Environments[i]
		for j := range env.Workloads {
			wl := &env.Workloads[j]
			wl.Migration = nil
			if m := c.opts.Engine.lastMove(env.Name, wl.Name); m != nil && m.Phase != MoveDone {
				wl.Migration = m
			}
		}
	}
	return s
}

// Run makes a pass at once, then one each time the interval timer fires, the source reports a change, Trigger is
// called or a workload's backoff ends, until ctx ends. It returns nil when ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("reconciler: controller already running")
	}
	defer c.running.Store(false)
	for {
		c.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := c.opts.Clock.Now()
		wake := c.resyncAt
		if t, ok := c.backoff.next(now); ok && t.Before(wake) {
			wake = t
		}
		t := c.opts.Clock.NewTimer(wake.Sub(now))
		if c.idle != nil {
			c.idle()
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-c.opts.Source.Changes():
			t.Stop()
		case <-c.trigger:
			t.Stop()
		}
	}
}

// pass is one level-based reconcile: fetch, load, then plan and apply every environment of the branch.
func (c *Controller) pass(ctx context.Context) {
	defer c.ready.Store(true)
	now := c.opts.Clock.Now()
	c.resyncAt = now.Add(jitter(c.opts.Interval, c.opts.Rand))
	snap, err := c.opts.Source.Fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.opts.Metrics.fetchError(c.opts.Name)
		c.log.Error("fetch", "location", c.opts.Source.String(), "err", err)
		c.event(store.Event{Time: now, Kind: "fetch-failed", Message: err.Error()})
		c.update(func(s *Status) { s.LastError = "fetch: " + err.Error() })
		// The source is unreachable or its newest revision is not trusted: what was applied keeps running, and
		// its drift is still repaired.
		for _, env := range slices.Sorted(maps.Keys(c.applied)) {
			if ctx.Err() != nil {
				return
			}
			a := c.applied[env]
			c.reconcileEnv(ctx, c.log.With("revision", a.rev, "env", env), a.cfg, env, a.rev, nil)
		}
		return
	}
	c.opts.Metrics.fetched(c.opts.Name, now)
	c.update(func(s *Status) { s.CheckedAt, s.Verified = now, snap.Verified })
	rev := snap.Revision
	log := c.log.With("revision", rev)
	if rev != c.lastSeen {
		c.lastSeen = rev
		log.Info("new revision", "message", snap.Message)
		if c.opts.Store != nil {
			if err := c.opts.Store.AppendRevision(store.Revision{Revision: rev, Branch: snap.Branch,
				Message: snap.Message, Time: snap.Time, Seen: now}); err != nil {
				log.Warn("record revision", "err", err)
			}
		}
	}
	if rev != c.cfgRev {
		cfg, err := c.opts.LoadContext(ctx, filepath.Join(snap.Dir, filepath.FromSlash(c.opts.Path)))
		if ctx.Err() != nil {
			return // shutting down: not the revision's fault
		}
		c.cfgRev, c.cfg, c.cfgErr = rev, cfg, err
		if c.cfgErr != nil {
			log.Error("load", "err", c.cfgErr)
			c.event(store.Event{Time: now, Revision: rev, Kind: "load-failed", Message: c.cfgErr.Error()})
		}
	}
	if c.cfgErr != nil {
		c.opts.Metrics.error("", "load")
		held := &heldBack{rev: rev, phase: PhaseFailed, errors: ErrorInfos(c.cfgErr)}
		c.update(func(s *Status) {
			s.Revision, s.FetchedAt = rev, now
			s.LastError = "load " + rev + ": " + c.cfgErr.Error()
			s.Errors = held.errors
			for i := range s.Environments {
				e := &s.Environments[i]
				e.Phase, e.LastAttemptedRevision, e.Errors, e.UpdatedAt = PhaseFailed, rev, held.errors, now
			}
		})
		// Nothing changes to follow the broken revision, but what was last applied keeps running.
		for _, env := range slices.Sorted(maps.Keys(c.applied)) {
			if ctx.Err() != nil {
				return
			}
			a := c.applied[env]
			c.reconcileEnv(ctx, c.log.With("revision", a.rev, "env", env), a.cfg, env, a.rev, held)
		}
		return
	}
	c.update(func(s *Status) { s.Revision, s.FetchedAt, s.LastError, s.Errors = rev, now, "", nil })
	envs := c.branchEnvs(c.cfg)
	for env := range c.applied {
		if !slices.Contains(envs, env) {
			delete(c.applied, env) // no longer followed here: never kept running from an old revision
			c.opts.Claims.Release(env, c.opts.Name)
		}
	}
	for _, missing := range c.opts.Environments {
		if _, ok := c.cfg.Environments[missing]; !ok {
			log.Warn("environment not declared in this revision", "env", missing)
		}
	}
	c.update(func(s *Status) {
		keep := s.Environments[:0]
		for _, e := range s.Environments {
			if i := sort.SearchStrings(envs, e.Name); i < len(envs) && envs[i] == e.Name {
				keep = append(keep, e)
			}
		}
		s.Environments = keep
	})
	for _, env := range envs {
		if ctx.Err() != nil {
			return
		}
		if holder, ok := c.opts.Claims.Claim(env, c.opts.Name); !ok {
			msg := fmt.Sprintf("environment %s is already applied by source %s: one environment, one source", env, holder)
			log.Error("environment claimed", "env", env, "by", holder)
			c.setEnv(EnvironmentStatus{Name: env, Phase: PhaseBlocked, LastAttemptedRevision: rev, UpdatedAt: now,
				Errors: []ErrorInfo{{Path: "environments." + env, Message: msg}}})
			continue
		}
		c.reconcileEnv(ctx, log.With("env", env), c.cfg, env, rev, nil)
	}
}

// Claims records which source applies each environment, so two sources of one process never manage (and prune)
// the same environment. Safe for concurrent use.
type Claims struct {
	mu sync.Mutex
	by map[string]string
}

// NewClaims returns an empty claim registry.
func NewClaims() *Claims { return &Claims{by: map[string]string{}} }

// Claim gives env to source unless another source holds it; it returns the holder.
func (c *Claims) Claim(env, source string) (holder string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, taken := c.by[env]; taken && h != source {
		return h, false
	}
	c.by[env] = source
	return source, true
}

// Release gives env up if source holds it.
func (c *Claims) Release(env, source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[env] == source {
		delete(c.by, env)
	}
}

// branchEnvs lists, sorted, the environments of cfg this controller applies: those named in
// ControllerOptions.Environments, else those bound to the followed branch.
func (c *Controller) branchEnvs(cfg *schema.Config) []string {
	var envs []string
	for name, e := range cfg.Environments {
		if len(c.opts.Environments) > 0 && slices.Contains(c.opts.Environments, name) ||
			len(c.opts.Environments) == 0 && e.Branch == c.opts.Branch {
			envs = append(envs, name)
		}
	}
	sort.Strings(envs)
	return envs
}

// StepLines renders the plan's steps as people read them.
func StepLines(p *Plan) []string {
	var lines []string
	for _, st := range p.Steps {
		lines = append(lines, st.String())
	}
	return lines
}

// appliedConfig is a configuration applied in full to an environment, at a revision.
type appliedConfig struct {
	cfg *schema.Config
	rev string
}

// heldBack is a newer revision not applied (it failed to load, or its plan is blocked) while the last applied one
// is kept running.
type heldBack struct {
	rev    string
	phase  string
	errors []ErrorInfo
	// plan is the blocked plan of rev, which the status shows (nil when rev failed to load).
	plan *Plan
}

func (c *Controller) update(f func(*Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.status)
}

func (c *Controller) setEnv(es EnvironmentStatus) {
	if c.opts.OnEnvironment != nil {
		c.opts.OnEnvironment(es)
	}
	c.update(func(s *Status) {
		for i := range s.Environments {
			if s.Environments[i].Name == es.Name {
				s.Environments[i] = es
				return
			}
		}
		s.Environments = append(s.Environments, es)
		sort.Slice(s.Environments, func(i, j int) bool { return s.Environments[i].Name < s.Environments[j].Name })
	})
}

func (c *Controller) envStatus(env string) EnvironmentStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.status.Environments {
		if e.Name == env {
			return e
		}
	}
	return EnvironmentStatus{Name: env}
}

func (c *Controller) event(e store.Event) {
	if c.opts.Store == nil {
		return
	}
	if err := c.opts.Store.AppendEvent(e); err != nil {
		c.log.Warn("record event", "err", err)
	}
}

// reconcileEnv plans env of cfg at rev and applies what is not blocked and not backing off. With held set, cfg and
// rev are the last applied configuration kept running, and the status reports the held-back newer revision.
func (c *Controller) reconcileEnv(ctx context.Context, log *slog.Logger, cfg *schema.Config, env, rev string, held *heldBack) {
	start := c.opts.Clock.Now()
	prev := c.envStatus(env)
	es := EnvironmentStatus{Name: env, LastAppliedRevision: prev.LastAppliedRevision, LastAttemptedRevision: rev,
		LastApply: prev.LastApply, UpdatedAt: start}
	result := ""
	set := func(es EnvironmentStatus) {
		if held != nil {
			es.Phase, es.LastAttemptedRevision = held.phase, held.rev
			es.Errors = append(append([]ErrorInfo(nil), held.errors...), es.Errors...)
			result = strings.ToLower(held.phase)
			if held.plan != nil {
				es.Findings, es.Plan, es.Steps = held.plan.Findings, held.plan.Summary(), StepLines(held.plan)
			}
		}
		c.setEnv(es)
	}
	defer func() {
		c.opts.Metrics.reconciled(env, result, c.opts.Clock.Now().Sub(start))
	}()
	plan, err := c.opts.Engine.Plan(ctx, cfg, env, rev)
	if err != nil {
		log.Error("plan", "err", err)
		c.opts.Metrics.error(env, "plan")
		es.Phase, es.Errors, es.Workloads, result = PhaseFailed, []ErrorInfo{{Message: err.Error()}}, prev.Workloads, "failed"
		set(es)
		return
	}
	es.Findings, es.Plan, es.Steps = plan.Findings, plan.Summary(), StepLines(plan)
	c.recordPlan(log, plan, start)
	desired := cfg.Environments[env].Workloads
	if plan.Blocked() && held == nil {
		if a, ok := c.applied[env]; ok && a.rev != rev {
			log.Warn("plan blocked; keeping the last applied revision running", "applied", a.rev, "reason", plan.BlockedReason())
			c.reconcileEnv(ctx, c.log.With("revision", a.rev, "env", env), a.cfg, env, a.rev,
				&heldBack{rev: rev, phase: PhaseBlocked, errors: BlockErrors(plan), plan: plan})
			return
		}
	}
	if plan.Blocked() {
		log.Warn("plan blocked", "reason", plan.BlockedReason())
		es.Phase, es.Errors, result = PhaseBlocked, BlockErrors(plan), "blocked"
		es.Workloads = c.workloadStatus(env, desired, plan, nil, start)
		set(es)
		return
	}
	var run []Step
	skipped := 0
	for _, s := range plan.Steps {
		if wait, until := c.backoff.waiting(env+"/"+s.Workload, start, rev); wait {
			log.Info("backing off", "workload", s.Workload, "until", until)
			skipped++
			continue
		}
		run = append(run, s)
	}
	done := map[string]bool{}
	failed := map[string]bool{}
	if len(run) > 0 {
		es.Phase = PhaseProgressing
		es.Workloads = prev.Workloads
		set(es)
		sub := *plan
		sub.Steps = run
		res, err := c.opts.Engine.Apply(ctx, cfg, &sub)
		if res == nil {
			log.Error("apply", "err", err)
			c.opts.Metrics.error(env, "apply")
			es.Phase, es.Errors, result = PhaseFailed, []ErrorInfo{{Message: err.Error()}}, "failed"
			set(es)
			return
		}
		es.LastApply = res
		now := c.opts.Clock.Now()
		for _, r := range res.Steps {
			key := env + "/" + r.Step.Workload
			if r.OK {
				done[r.Step.Workload] = true
				continue
			}
			failed[r.Step.Workload] = true
			perm := errors.Is(r.Err, providers.ErrPermanent)
			d := c.backoff.failure(key, now, perm, rev)
			log.Warn("step failed", "workload", r.Step.Workload, "action", r.Step.Action, "permanent", perm, "retry_in", d, "err", r.Err)
			c.opts.Metrics.error(env, "step")
			es.Errors = append(es.Errors, ErrorInfo{Path: workloadPath(r.Step.Workload, ""), Message: r.Step.Action + ": " + r.Error})
			c.event(store.Event{Time: now, Environment: env, Workload: r.Step.Workload, Revision: rev, Kind: "step-failed",
				Message: r.Step.Action + ": " + r.Error})
		}
	}
	for _, w := range desired {
		if wait, _ := c.backoff.waiting(env+"/"+w.Name, start, rev); !wait && !failed[w.Name] {
			c.backoff.success(env + "/" + w.Name)
		}
	}
	es.Workloads = c.workloadStatus(env, desired, plan, done, c.opts.Clock.Now())
	switch {
	case len(failed) > 0 || skipped > 0:
		es.Phase, result = PhaseFailed, "failed"
		if skipped > 0 && len(es.Errors) == 0 {
			es.Errors = prev.Errors
		}
	default:
		es.Phase, result, es.LastAppliedRevision = PhaseReady, "ready", rev
		if held == nil {
			c.applied[env] = appliedConfig{cfg: cfg, rev: rev}
		}
		c.opts.Metrics.applied(env, rev)
		if len(run) > 0 {
			log.Info("applied", "steps", len(run))
		}
	}
	set(es)
}

func (c *Controller) recordPlan(log *slog.Logger, p *Plan, now time.Time) {
	if c.opts.Store == nil {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		log.Warn("record plan", "err", err)
		return
	}
	// An unchanged plan (the common "no changes" of every resync) is recorded once.
	if c.lastPlan[p.Environment] == string(b) {
		return
	}
	c.lastPlan[p.Environment] = string(b)
	if err := c.opts.Store.AppendPlan(store.Plan{Time: now, Environment: p.Environment, Revision: p.Revision,
		Summary: p.Summary(), Blocked: p.BlockedReason(), Plan: b}); err != nil {
		log.Warn("record plan", "err", err)
	}
}

func (c *Controller) workloadStatus(env string, desired []schema.Workload, p *Plan, done map[string]bool, now time.Time) []WorkloadStatus {
	var ws []WorkloadStatus
	for _, w := range desired {
		h, ok := p.DesiredHash(w.Name)
		if !ok {
			h = providers.SpecHash(w)
		}
		st := WorkloadStatus{Name: w.Name, Target: w.Provider, SpecHash: h, DesiredReplicas: w.Replicas}
		if done[w.Name] {
			st.ReadyReplicas = w.Replicas
		} else {
			for _, o := range p.observed[w.Name] {
				if o.Target != w.Provider {
					continue
				}
				for _, r := range o.Replicas {
					if r.SpecHash == h && r.Ready() {
						st.ReadyReplicas++
					}
				}
			}
		}
		if wait, until := c.backoff.waiting(env+"/"+w.Name, now, p.Revision); wait {
			st.BackoffUntil = until
		}
		for _, s := range p.Steps {
			if s.Workload == w.Name && s.Target == w.Provider && !done[w.Name] && strings.HasPrefix(s.Reason, "drift") {
				for _, ch := range s.Changes {
					st.Drift = append(st.Drift, ch.Path)
				}
			}
		}
		for _, k := range p.Kept {
			if k.Workload == w.Name && k.Target == w.Provider {
				st.Kept = append(st.Kept, providers.Kept{Path: k.Path, Reason: k.Reason})
			}
		}
		for _, o := range p.observed[w.Name] {
			if o.Target == w.Provider {
				st.Endpoints = append(st.Endpoints, o.Endpoints...)
			}
		}
		st.Names = p.Names(w.Name)
		if m := c.opts.Engine.lastMove(env, w.Name); m != nil && m.Phase != MoveDone {
			st.Migration = m
		}
		ws = append(ws, st)
	}
	return ws
}

// BlockErrors are why p is blocked, each at its place in the user's files: the prune refusal, the capability
// problems and the policy denials.
func BlockErrors(p *Plan) []ErrorInfo {
	var out []ErrorInfo
	if p.Refused != "" {
		out = append(out, ErrorInfo{Message: p.Refused})
	}
	for _, pr := range p.Problems {
		path := pr.Field
		if pr.Workload != "" {
			path = workloadPath(pr.Workload, pr.Field)
		}
		out = append(out, ErrorInfo{File: pr.Pos.File, Line: pr.Pos.Line, Column: pr.Pos.Column, Path: path,
			Message: "target " + pr.Target + ": " + pr.Message})
	}
	for _, f := range p.Findings {
		if f.Severity != policies.Deny {
			continue
		}
		out = append(out, ErrorInfo{File: f.Pos.File, Line: f.Pos.Line, Column: f.Pos.Column, Path: workloadPath(f.Workload, f.Field),
			Message: "policy " + f.Rule + ": " + f.Message})
	}
	return out
}

// workloadPath is a workload field's path as the schema names it: "workloads.web.image".
func workloadPath(workload, field string) string {
	if workload == "" {
		return field
	}
	if field == "" {
		return "workloads." + workload
	}
	return "workloads." + workload + "." + field
}

// ErrorInfos splits a load error into positioned entries.
func ErrorInfos(err error) []ErrorInfo {
	var es schema.Errors
	if errors.As(err, &es) {
		out := make([]ErrorInfo, 0, len(es))
		for _, e := range es {
			out = append(out, ErrorInfo{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Column, Path: e.Path, Message: e.Message})
		}
		return out
	}
	var e *schema.Error
	if errors.As(err, &e) {
		return []ErrorInfo{{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Column, Path: e.Path, Message: e.Message}}
	}
	return []ErrorInfo{{Message: err.Error()}}
}
