package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/reconciler/store"
	"github.com/berth-dev/berth/schema"
)

// Defaults of Options.
const (
	DefaultInstance       = "berth"
	DefaultMaxDeleteShare = 0.5
	DefaultConcurrency    = 4
	DefaultStepTimeout    = 5 * time.Minute
)

// Store is the history store (see package store).
type Store = store.Store

var (
	// ErrBlocked is returned by Apply for a blocked plan.
	ErrBlocked = errors.New("plan is blocked")
	// ErrStalePlan is returned by Apply when the configuration no longer matches the plan.
	ErrStalePlan = errors.New("plan does not match the configuration")
	// ErrUnknownEnvironment is returned for an environment the configuration does not declare.
	ErrUnknownEnvironment = errors.New("unknown environment")
)

// Options configure an Engine. Zero values take the documented defaults.
type Options struct {
	// Instance names this berth in ownership labels; DefaultInstance when "".
	Instance string
	Logger   *slog.Logger
	Clock    Clock
	// MaxDeleteShare refuses plans deleting more than this share of an environment's observed workloads;
	// DefaultMaxDeleteShare when 0.
	MaxDeleteShare float64
	// AllowPruneAll lifts the prune safety.
	AllowPruneAll bool
	// Concurrency bounds the steps running at once; DefaultConcurrency when 0.
	Concurrency int
	// StepTimeout bounds each step; DefaultStepTimeout when 0.
	StepTimeout time.Duration
	Policy      policies.Options
	// Providers builds the provider of a target; providers.New when nil.
	Providers providers.Factory
	// Background lets providers work beyond the calls while the engine lives (see providers.Options.Background):
	// set it for a long-running controller, not for one-shot commands.
	Background bool
	// Evaluate runs the policies; policies.Evaluate when nil.
	Evaluate func(cfg *schema.Config, env string, opts policies.Options) []policies.Finding
	// Store records apply history when not nil.
	Store   *Store
	Metrics *Metrics
	// Secrets resolves the secrets workloads use; without one, a workload using a SOPS secret fails its step
	// (references to stores are still passed on).
	Secrets SecretResolver
	// Registry builds the ImageResolver that pins the images of the configuration's declared registries
	// (`registries:`), given their access with the passwords resolved; it is called again only when that access
	// changes. NewRegistryClient when nil. Images of registries not declared are never looked up.
	Registry func(access map[string]RegistryAccess) ImageResolver
	// RegistryAttempts bounds the tries of a transient registry failure (DefaultRegistryAttempts when 0);
	// RegistryBackoff is the first wait between them (DefaultRegistryBackoff when 0), doubling.
	RegistryAttempts int
	RegistryBackoff  time.Duration
	// Routers builds the router of a `dns:` entry (the stable names of public ports); endpoint.New when nil.
	Routers func(t schema.Target, opts endpoint.Options) (endpoint.Router, error)
}

// Engine plans and applies environments. It is safe for concurrent use; two operations on the same
// (environment, workload) never run at once.
type Engine struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	provs   map[string]cachedProvider
	routers map[string]cachedRouter
	locks   map[string]chan struct{}
	// fallback resolves secrets when Options.Secrets is nil: references only, no identities.
	fallback *Secrets
	registryCache
}

type cachedProvider struct {
	fingerprint string
	p           providers.Provider
	err         error
}

// NewEngine validates opts and returns an engine.
func NewEngine(opts Options) (*Engine, error) {
	if opts.Instance == "" {
		opts.Instance = DefaultInstance
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.MaxDeleteShare == 0 {
		opts.MaxDeleteShare = DefaultMaxDeleteShare
	}
	if opts.MaxDeleteShare < 0 || opts.MaxDeleteShare > 1 {
		return nil, fmt.Errorf("reconciler: MaxDeleteShare %v is not between 0 and 1", opts.MaxDeleteShare)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Concurrency < 0 {
		return nil, fmt.Errorf("reconciler: Concurrency %d is negative", opts.Concurrency)
	}
	if opts.StepTimeout == 0 {
		opts.StepTimeout = DefaultStepTimeout
	}
	if opts.StepTimeout < 0 {
		return nil, fmt.Errorf("reconciler: StepTimeout %v is negative", opts.StepTimeout)
	}
	if opts.Providers == nil {
		opts.Providers = providers.New
	}
	if opts.Evaluate == nil {
		opts.Evaluate = policies.Evaluate
	}
	if opts.Registry == nil {
		opts.Registry = func(access map[string]RegistryAccess) ImageResolver { return NewRegistryClient(access) }
	}
	if opts.Routers == nil {
		opts.Routers = endpoint.New
	}
	if opts.RegistryAttempts == 0 {
		opts.RegistryAttempts = DefaultRegistryAttempts
	}
	if opts.RegistryBackoff == 0 {
		opts.RegistryBackoff = DefaultRegistryBackoff
	}
	if opts.RegistryAttempts < 0 || opts.RegistryBackoff < 0 {
		return nil, fmt.Errorf("reconciler: RegistryAttempts %d or RegistryBackoff %v is negative", opts.RegistryAttempts, opts.RegistryBackoff)
	}
	return &Engine{opts: opts, log: opts.Logger, provs: map[string]cachedProvider{}, routers: map[string]cachedRouter{},
		locks:    map[string]chan struct{}{},
		fallback: &Secrets{}}, nil
}

// provider returns the cached provider of target t, rebuilding it when the target's settings changed.
func (e *Engine) provider(t schema.Target) (providers.Provider, error) {
	fp := fingerprint(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.provs[t.Name]; ok {
		if c.fingerprint == fp {
			return c.p, c.err
		}
		closeProvider(c.p)
	}
	p, err := e.opts.Providers(t, providers.Options{Logger: e.log.With("provider", t.Type, "target", t.Name), Instance: e.opts.Instance,
		Background: e.opts.Background})
	e.provs[t.Name] = cachedProvider{fingerprint: fp, p: p, err: err}
	return p, err
}

// fingerprint identifies a target's (or a dns entry's) type and settings: a cached provider or router is rebuilt
// when it changes.
func fingerprint(t schema.Target) string {
	b, _ := json.Marshal(struct {
		T string
		S map[string]any
	}{t.Type, t.Settings})
	return string(b)
}

func closeProvider(p providers.Provider) error {
	if c, ok := p.(providers.Closer); ok && p != nil {
		return c.Close()
	}
	return nil
}

// Close releases every provider.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for name, c := range e.provs {
		if c.p != nil {
			if err := closeProvider(c.p); err != nil {
				errs = append(errs, fmt.Errorf("close provider %s: %w", name, err))
			}
		}
		delete(e.provs, name)
	}
	return errors.Join(errs...)
}

// owner is the ownership of env's objects: this instance, the environment, and its pull request for a preview.
func (e *Engine) owner(ev schema.Environment) providers.Owner {
	o := providers.Owner{Instance: e.opts.Instance, Environment: ev.Name}
	if ev.Preview != nil {
		o.Preview = ev.Preview.Number
	}
	return o
}

func targetNames(cfg *schema.Config) []string {
	ns := make([]string, 0, len(cfg.Targets))
	for n := range cfg.Targets {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Plan observes every target of cfg, evaluates the policies and capabilities and diffs env's desired workloads
// with what runs. It changes nothing. An error means the plan could not be made (a target could not be listed).
func (e *Engine) Plan(ctx context.Context, cfg *schema.Config, env, revision string) (*Plan, error) {
	ev, ok := cfg.Environments[env]
	if !ok {
		return nil, fmt.Errorf("environment %q: %w", env, ErrUnknownEnvironment)
	}
	var problems []Problem
	var observed []providers.Observed
	usable := map[string]providers.Provider{}
	normalize := map[string]func(schema.Workload) schema.Workload{}
	for _, name := range targetNames(cfg) {
		t := cfg.Targets[name]
		if t.Name == "" {
			t.Name = name
		}
		p, err := e.provider(t)
		if err != nil {
			problems = append(problems, Problem{Target: name, Field: "type", Pos: t.Pos, Message: err.Error()})
			continue
		}
		usable[name] = p
		if n, ok := p.(providers.Normalizer); ok {
			normalize[name] = n.Normalize
		}
		os, err := p.List(ctx, e.owner(ev), name)
		if err != nil {
			return nil, fmt.Errorf("environment %s: list target %s: %w", env, name, err)
		}
		observed = append(observed, os...)
	}
	// The images of declared registries are pinned to digests: what is checked, hashed, diffed and applied.
	pinned, err := e.pin(ctx, cfg, ev)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", env, err)
	}
	problems = append(problems, pinned.problems...)
	ev = pinned.apply(ev)
	for _, w := range ev.Workloads {
		p, ok := usable[w.Provider]
		if !ok {
			if _, declared := cfg.Targets[w.Provider]; !declared {
				problems = append(problems, Problem{Workload: w.Name, Target: w.Provider, Field: "provider",
					Pos: w.Position("provider"), Message: "no target of that name is declared"})
			}
			continue
		}
		v, _ := p.(providers.Validator)
		problems = append(problems, checkCapabilities(w, ev, w.Provider, p.Capabilities(), v)...)
	}
	// What every stable name serves now: a move continues from there, and a name berth does not own stops it.
	routes := map[string][]route{}
	for _, w := range ev.Workloads {
		if len(w.Endpoints()) == 0 {
			continue
		}
		rs, ps, err := e.routes(ctx, cfg, ev, w)
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", env, err)
		}
		routes[w.Name] = rs
		problems = append(problems, ps...)
	}
	releases, err := e.releases(ctx, cfg, ev)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", env, err)
	}
	secrets, secretErrs := e.resolveAll(ctx, cfg, ev)
	plan := computePlan(planInput{env: env, revision: revision, desired: ev.Workloads, observed: observed,
		problems: problems, normalize: normalize, secrets: secrets, secretErrs: secretErrs, imageErrs: pinned.failed,
		images: pinned.images, maxDeleteShare: e.opts.MaxDeleteShare, allowPruneAll: e.opts.AllowPruneAll,
		routes: routes, held: func(w schema.Workload, target, hash string) string { return e.heldMove(env, w, target, hash) }})
	e.finishMoves(ev, plan)
	// Names go before the copies they served are deleted.
	at := slices.IndexFunc(plan.Steps, func(s Step) bool { return s.Action == ActionDelete })
	if at < 0 {
		at = len(plan.Steps)
	}
	plan.Steps = slices.Insert(plan.Steps, at, releases...)
	plan.Findings = e.opts.Evaluate(cfg, env, e.opts.Policy)
	return plan, nil
}

// StepResult is the outcome of one step.
type StepResult struct {
	Step     Step          `json:"step"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
	// Err is the step's error with its identity (errors.Is(Err, providers.ErrPermanent)).
	Err error `json:"-"`
}

// ApplyResult is the outcome of an apply, one result per step in plan order.
type ApplyResult struct {
	Environment string        `json:"environment"`
	Revision    string        `json:"revision"`
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"duration"`
	Steps       []StepResult  `json:"steps"`
}

// Failed counts the failed steps.
func (r *ApplyResult) Failed() int {
	n := 0
	for _, s := range r.Steps {
		if !s.OK {
			n++
		}
	}
	return n
}

// Write renders the result for people.
func (r *ApplyResult) Write(w io.Writer) error {
	var b strings.Builder
	for _, s := range r.Steps {
		if s.OK {
			fmt.Fprintf(&b, "  %s %s on %s: done in %s\n", s.Step.Action, s.Step.Workload, s.Step.Target, s.Duration.Round(time.Millisecond))
		} else {
			fmt.Fprintf(&b, "  %s %s on %s: failed: %s\n", s.Step.Action, s.Step.Workload, s.Step.Target, s.Error)
		}
	}
	fmt.Fprintf(&b, "Apply of %s: %d of %d steps done.\n", r.Environment, len(r.Steps)-r.Failed(), len(r.Steps))
	_, err := io.WriteString(w, b.String())
	return err
}

// lock takes the (environment, workload) key, waiting for an operation in flight on it.
func (e *Engine) lock(ctx context.Context, key string) (func(), error) {
	for {
		e.mu.Lock()
		ch, busy := e.locks[key]
		if !busy {
			ch = make(chan struct{})
			e.locks[key] = ch
			e.mu.Unlock()
			return func() {
				e.mu.Lock()
				delete(e.locks, key)
				e.mu.Unlock()
				close(ch)
			}, nil
		}
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Apply carries out exactly p.Steps against the targets of cfg: creates, updates and migrations first, at most
// Concurrency at once, then deletes. A blocked plan, or a plan made from another configuration, is refused. The
// result holds one entry per step; the error joins the failed steps' errors.
func (e *Engine) Apply(ctx context.Context, cfg *schema.Config, p *Plan) (*ApplyResult, error) {
	if p.Blocked() {
		return nil, fmt.Errorf("environment %s: %w: %s", p.Environment, ErrBlocked, p.BlockedReason())
	}
	ev, ok := cfg.Environments[p.Environment]
	if !ok {
		return nil, fmt.Errorf("environment %q: %w", p.Environment, ErrUnknownEnvironment)
	}
	// Every pinned tag is resolved again: a tag that moved since the plan is a plan of another image.
	applies := map[string]bool{}
	for _, s := range p.Steps {
		applies[s.Workload] = applies[s.Workload] || (s.Action != ActionDelete && s.Action != ActionRelease && s.Error == "")
	}
	stepped := ev
	stepped.Workloads = slices.DeleteFunc(slices.Clone(ev.Workloads), func(w schema.Workload) bool { return !applies[w.Name] })
	pinned, err := e.pin(ctx, cfg, stepped)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", p.Environment, err)
	}
	ev = pinned.apply(ev)
	inputs := map[string]*stepInput{}
	for _, s := range p.Steps {
		if s.Action == ActionDelete || s.Action == ActionRelease || s.Error != "" {
			continue
		}
		w, ok := ev.Workload(s.Workload)
		if !ok || w.Provider != s.Target {
			return nil, fmt.Errorf("environment %s: workload %s: %w", p.Environment, s.Workload, ErrStalePlan)
		}
		if err := pinned.failed[w.Name]; err != nil {
			return nil, fmt.Errorf("environment %s: workload %s: image %s: %w: %w", p.Environment, s.Workload, w.Image, ErrStalePlan, err)
		}
		if s.Image != "" && s.Image != w.Image {
			return nil, fmt.Errorf("environment %s: workload %s: %w: the plan pinned %s, the registry now names %s", p.Environment,
				s.Workload, ErrStalePlan, s.Image, w.Image)
		}
		ss, err := e.resolve(ctx, cfg, ev, w)
		if err != nil || providers.DesiredHash(w, ss) != s.SpecHash {
			// A secret that no longer resolves, or resolves to another value, is a configuration the plan
			// was not made from.
			return nil, fmt.Errorf("environment %s: workload %s: %w", p.Environment, s.Workload, ErrStalePlan)
		}
		inputs[s.Workload] = &stepInput{workload: w, secrets: ss, auth: pinned.auth(w.Image)}
	}
	res := &ApplyResult{Environment: p.Environment, Revision: p.Revision, Started: e.opts.Clock.Now(),
		Steps: make([]StepResult, len(p.Steps))}
	var first, deletes []int
	for i, s := range p.Steps {
		if s.Action == ActionDelete {
			deletes = append(deletes, i)
		} else {
			first = append(first, i)
		}
	}
	run := func(i int) {
		s := p.Steps[i]
		start := e.opts.Clock.Now()
		err := e.step(ctx, cfg, ev, s, inputs[s.Workload])
		r := StepResult{Step: s, OK: err == nil, Duration: e.opts.Clock.Now().Sub(start), Err: err}
		if err != nil {
			r.Error = err.Error()
		}
		res.Steps[i] = r
	}
	e.parallel(first, run)
	e.parallel(deletes, run)
	res.Duration = e.opts.Clock.Now().Sub(res.Started)

	var errs []error
	for _, r := range res.Steps {
		e.opts.Metrics.step(r.Step.Action, r.OK)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s %s on %s: %w", r.Step.Action, r.Step.Workload, r.Step.Target, r.Err))
		}
	}
	e.record(res)
	return res, errors.Join(errs...)
}

// parallel runs f for each index, at most Concurrency at once, and returns when all are done.
func (e *Engine) parallel(idx []int, f func(int)) {
	sem := make(chan struct{}, e.opts.Concurrency)
	var wg sync.WaitGroup
	for _, i := range idx {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// stepInput is what a create, update or migrate step gives its provider: the workload as planned (its image
// pinned), its secrets and the credential of its image's registry.
type stepInput struct {
	workload schema.Workload
	secrets  map[string]providers.Secret
	auth     *providers.RegistryAuth
}

// step carries out one step under its key lock and timeout; in is nil for a delete.
func (e *Engine) step(ctx context.Context, cfg *schema.Config, ev schema.Environment, s Step, in *stepInput) error {
	log := e.log.With("env", ev.Name, "workload", s.Workload, "provider", s.Target)
	if s.Error != "" {
		return providers.Permanent(errors.New(s.Error))
	}
	unlock, err := e.lock(ctx, ev.Name+"/"+s.Workload)
	if err != nil {
		return err
	}
	defer unlock()
	timeout := e.opts.StepTimeout
	if in != nil && (s.Action == ActionMigrate || len(in.workload.Endpoints()) > 0) {
		timeout = moveTimeout(in.workload, e.opts.StepTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prov := func(name string) (providers.Provider, error) {
		t, ok := cfg.Targets[name]
		if !ok {
			return nil, providers.Permanent(fmt.Errorf("target %q is not declared", name))
		}
		if t.Name == "" {
			t.Name = name
		}
		return e.provider(t)
	}
	log.Info("step", "action", s.Action, "reason", s.Reason)
	owner := e.owner(ev)
	switch s.Action {
	case ActionCreate, ActionUpdate, ActionMigrate:
		if in == nil {
			return providers.Permanent(fmt.Errorf("%s of workload %s: nothing was prepared for it", s.Action, s.Workload))
		}
		p, err := prov(s.Target)
		if err != nil {
			return err
		}
		d := providers.Desired{Owner: owner, Target: s.Target, Workload: in.workload, SpecHash: s.SpecHash,
			Secrets: in.secrets, Preview: ev.Preview}
		if p.Capabilities().PullsImages {
			d.ImageAuth = in.auth
		}
		if len(in.workload.Endpoints()) > 0 {
			// The stable names follow the copy: a move shifts them step by step, an update keeps them on it.
			rs, problems, err := e.routes(ctx, cfg, ev, in.workload)
			if err != nil {
				return err
			}
			if len(problems) > 0 {
				return providers.Permanent(errors.New(problems[0].Message))
			}
			leaving := s.Leaving
			m := &mover{e: e, owner: owner, eowner: e.endpointOwner(ev, s.Workload), w: in.workload, target: s.Target,
				leaving: leaving, prov: prov, routes: rs,
				rec: &moveRecorder{e: e, base: store.Migration{Environment: ev.Name, Workload: s.Workload, From: leaving,
					To: s.Target, SpecHash: s.SpecHash}}}
			if err := m.run(ctx, d); err != nil {
				log.Warn("step failed", "action", s.Action, "err", err)
				return err
			}
			return nil
		}
		if err := p.Apply(ctx, d); err != nil {
			log.Warn("step failed", "action", s.Action, "err", err)
			return err
		}
		if s.Action == ActionMigrate {
			old, err := prov(s.FromTarget)
			if err != nil {
				return err
			}
			if err := old.Delete(ctx, owner, s.FromTarget, s.Workload); err != nil {
				log.Warn("step failed", "action", s.Action, "err", err)
				return fmt.Errorf("delete from %s after migrating: %w", s.FromTarget, err)
			}
		}
	case ActionRelease:
		r, err := e.router(cfg, s.Target)
		if err != nil {
			return err
		}
		if err := r.Delete(ctx, e.endpointOwner(ev, s.Workload), s.Name); err != nil {
			log.Warn("step failed", "action", s.Action, "err", err)
			return fmt.Errorf("dns %s: delete %s: %w", s.Target, s.Name, err)
		}
	case ActionDelete:
		p, err := prov(s.Target)
		if err != nil {
			return err
		}
		if err := p.Delete(ctx, owner, s.Target, s.Workload); err != nil {
			log.Warn("step failed", "action", s.Action, "err", err)
			return err
		}
	default:
		return providers.Permanent(fmt.Errorf("unknown action %q", s.Action))
	}
	return nil
}

func (e *Engine) record(res *ApplyResult) {
	if e.opts.Store == nil || len(res.Steps) == 0 {
		return
	}
	a := store.Apply{Time: res.Started, Environment: res.Environment, Revision: res.Revision, Duration: res.Duration}
	for _, r := range res.Steps {
		a.Steps = append(a.Steps, store.Step{Action: r.Step.Action, Workload: r.Step.Workload, Target: r.Step.Target,
			OK: r.OK, Error: r.Error, Duration: r.Duration})
	}
	if err := e.opts.Store.AppendApply(a); err != nil {
		e.log.Warn("record apply", "env", res.Environment, "err", err)
	}
}

// Destroy deletes every workload this instance owns for env on every target of cfg, then the environment's own
// objects where a provider has some (providers.EnvironmentDeleter: a preview's namespace). It is the explicit way
// to remove a whole environment and is not subject to the prune safety. env need not be declared in cfg (a
// preview whose pull request is gone); cfg.Environments[env], when there, gives its preview number.
func (e *Engine) Destroy(ctx context.Context, cfg *schema.Config, env string) error {
	var steps []Step
	var errs []error
	ev, ok := cfg.Environments[env]
	if !ok {
		ev = schema.Environment{Name: env}
	}
	ev.Name = env
	owner := e.owner(ev)
	deleters := map[string]providers.EnvironmentDeleter{}
	for _, name := range targetNames(cfg) {
		t := cfg.Targets[name]
		if t.Name == "" {
			t.Name = name
		}
		p, err := e.provider(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", name, err))
			continue
		}
		if d, ok := p.(providers.EnvironmentDeleter); ok {
			deleters[name] = d
		}
		os, err := p.List(ctx, owner, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("list target %s: %w", name, err))
			continue
		}
		for _, o := range os {
			steps = append(steps, Step{Action: ActionDelete, Workload: o.Workload, Target: name, Reason: "destroy"})
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("environment %s: %w", env, errors.Join(errs...))
	}
	res := &ApplyResult{Environment: env, Revision: "destroy", Started: e.opts.Clock.Now(), Steps: make([]StepResult, len(steps))}
	idx := make([]int, len(steps))
	for i := range idx {
		idx[i] = i
	}
	e.parallel(idx, func(i int) {
		start := e.opts.Clock.Now()
		err := e.step(ctx, cfg, ev, steps[i], nil)
		res.Steps[i] = StepResult{Step: steps[i], OK: err == nil, Err: err, Duration: e.opts.Clock.Now().Sub(start)}
		if err != nil {
			res.Steps[i].Error = err.Error()
		}
	})
	res.Duration = e.opts.Clock.Now().Sub(res.Started)
	for _, r := range res.Steps {
		e.opts.Metrics.step(r.Step.Action, r.OK)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("delete %s on %s: %w", r.Step.Workload, r.Step.Target, r.Err))
		}
	}
	e.record(res)
	if len(errs) > 0 {
		return fmt.Errorf("environment %s: %w", env, errors.Join(errs...))
	}
	// The environment's stable names go with it (routers that can list what this instance owns).
	for _, name := range slices.Sorted(maps.Keys(cfg.DNS)) {
		r, err := e.router(cfg, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("dns %s: %w", name, err))
			continue
		}
		l, ok := r.(endpoint.Lister)
		if !ok {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, e.opts.StepTimeout)
		names, err := l.Names(sctx, e.opts.Instance)
		for _, n := range slices.Sorted(maps.Keys(names)) {
			if err != nil || names[n].Environment != env {
				continue
			}
			if derr := r.Delete(sctx, names[n], n); derr != nil {
				errs = append(errs, fmt.Errorf("dns %s: delete %s: %w", name, n, derr))
			}
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("dns %s: list names: %w", name, err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(deleters)) {
		sctx, cancel := context.WithTimeout(ctx, e.opts.StepTimeout)
		err := deleters[name].DeleteEnvironment(sctx, owner, name)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("target %s: delete the environment's own objects: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("environment %s: %w", env, errors.Join(errs...))
	}
	return nil
}

// Environments lists the environments that have objects of this instance on target of cfg, from the runtime's
// labels alone (providers.EnvironmentLister); nil when the target's provider cannot tell.
func (e *Engine) Environments(ctx context.Context, cfg *schema.Config, target string) ([]providers.EnvironmentRef, error) {
	t, ok := cfg.Targets[target]
	if !ok {
		return nil, fmt.Errorf("target %q is not declared", target)
	}
	if t.Name == "" {
		t.Name = target
	}
	p, err := e.provider(t)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", target, err)
	}
	l, ok := p.(providers.EnvironmentLister)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.StepTimeout)
	defer cancel()
	refs, err := l.Environments(ctx, e.opts.Instance, target)
	if err != nil {
		return nil, fmt.Errorf("target %s: list environments: %w", target, err)
	}
	return refs, nil
}

// Capabilities are what the provider of target of cfg can honour.
func (e *Engine) Capabilities(cfg *schema.Config, target string) (providers.Capabilities, error) {
	t, ok := cfg.Targets[target]
	if !ok {
		return providers.Capabilities{}, fmt.Errorf("target %q is not declared", target)
	}
	if t.Name == "" {
		t.Name = target
	}
	p, err := e.provider(t)
	if err != nil {
		return providers.Capabilities{}, fmt.Errorf("target %s: %w", target, err)
	}
	return p.Capabilities(), nil
}

// Instance is the instance name the engine labels objects with.
func (e *Engine) Instance() string { return e.opts.Instance }

// OpenStore opens the history store at path with default options (see store.Open).
func OpenStore(path string) (*Store, error) { return store.Open(path) }
