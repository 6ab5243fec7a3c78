package preview

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema"
)

// Preview states, as Status.State gives them.
const (
	StateDiscovered       = "discovered"
	StateAwaitingApproval = "awaiting-approval"
	StateGated            = "gated"
	StateQueued           = "queued"
	StateApplying         = "applying"
	StateReady            = "ready"
	StateFailed           = "failed"
	StateExpiring         = "expiring"
	StateDestroying       = "destroying"
	StateGone             = "gone"
)

// States lists every state, in lifecycle order (for metrics).
var States = []string{StateDiscovered, StateAwaitingApproval, StateGated, StateQueued, StateApplying, StateReady,
	StateFailed, StateExpiring, StateDestroying, StateGone}

// Defaults.
const (
	DefaultInterval    = 30 * time.Second
	DefaultConcurrency = 4
	// ApproveCommand is the comment a user with write permission writes on a fork's pull request to approve its
	// current head ("/berth preview", or "/berth preview <sha>" to name the commit).
	ApproveCommand = "/berth preview"
	// CommentKey is the marker key of a preview's comment (forge.Marker(instance, CommentKey)).
	CommentKey = "preview"
	// goneKept is how long a torn-down preview stays listed (state gone) for people to see.
	goneKept = time.Hour
)

// HeadFetcher fetches the tree of a pull request's head commit (repos' Git source implements it).
type HeadFetcher interface {
	FetchRef(ctx context.Context, ref, want string) (*repos.Snapshot, error)
}

// PortRange is the host ports given to previews' public ports.
type PortRange struct{ From, To int }

// Options configure a Controller.
type Options struct {
	// Name names the source in logs and status.
	Name string
	// Instance names this berth: ownership labels, comment markers and status contexts.
	Instance string
	// Source is the base repository (trusted branch); it must implement HeadFetcher to get heads.
	Source repos.Source
	// Path is the directory inside the repository holding the .cue files.
	Path   string
	Forge  forge.Forge
	Engine *reconciler.Engine
	// LoadContext renders a snapshot's tree under the evaluation bounds (schema.Evaluator.Load); schema.Load when
	// nil. Heads are untrusted: give the bounded one.
	LoadContext func(ctx context.Context, dir string) (*schema.Config, error)
	// CheckHead is the trust check of a head against the base; schema.CheckPreviewHead when nil.
	CheckHead func(base, head *schema.Config, p *schema.PreviewPolicy) ([]schema.Workload, schema.Errors)
	Clock     reconciler.Clock
	// Interval between passes; DefaultInterval when 0.
	Interval time.Duration
	// Concurrency bounds the previews applied or destroyed at once; DefaultConcurrency when 0.
	Concurrency int
	Logger      *slog.Logger
	Metrics     *Metrics
	// Router, when set, serves the previews' public ports by host name (for targets that do not route by host
	// themselves); RouterPort and Scheme make the URLs: Scheme://<host>:RouterPort/.
	Router     *Router
	RouterPort int
	Scheme     string
	// Domain is the domain of preview host names; "localhost" when "".
	Domain string
	// Ports are the host ports given to public ports; 20000-20999 when zero.
	Ports PortRange
	// HostKey keys the random part of host names (stable across restarts when it is); random when nil.
	HostKey []byte
	// PlanComments keeps a plan comment on every open pull request against a branch that ordinary environments
	// of the base follow (see planComments).
	PlanComments bool
}

// Status is one preview's state, for people, the API and the CLI. It holds no untrusted text but the author's
// login.
type Status struct {
	Number      int    `json:"number"`
	Environment string `json:"environment"`
	State       string `json:"state"`
	// Reason says why in a few words ("waiting for ci/build", "queued: 10 previews run (max.total)").
	Reason string `json:"reason,omitempty"`
	Head   string `json:"head,omitempty"`
	// Deployed is the head the running preview was made from ("" before the first apply).
	Deployed string                 `json:"deployed,omitempty"`
	Author   string                 `json:"author,omitempty"`
	Fork     bool                   `json:"fork,omitempty"`
	Base     string                 `json:"base,omitempty"`
	URLs     []string               `json:"urls,omitempty"`
	Errors   []reconciler.ErrorInfo `json:"errors,omitempty"`
	Plan     string                 `json:"plan,omitempty"`
	Steps    []string               `json:"steps,omitempty"`
	// Workloads are the preview's workloads as last seen.
	Workloads []WorkloadStatus `json:"workloads,omitempty"`
	UpdatedAt time.Time        `json:"updatedAt"`
}

// WorkloadStatus is one preview workload.
type WorkloadStatus struct {
	Name     string   `json:"name"`
	Target   string   `json:"target"`
	Ready    int      `json:"ready"`
	Desired  int      `json:"desired"`
	URLs     []string `json:"urls,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Report is the controller's state.
type Report struct {
	Name      string    `json:"name"`
	Enabled   bool      `json:"enabled"`
	From      string    `json:"from,omitempty"`
	Forge     string    `json:"forge"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// LastError is the last forge or base error ("" after a good pass): while it is set nothing is torn down.
	LastError string   `json:"lastError,omitempty"`
	Previews  []Status `json:"previews"`
	// Plans are the plan comments of pull requests against ordinary environments, by pull request.
	Plans []PlanStatus `json:"plans,omitempty"`
}

// PlanStatus is what merging one pull request would change in one ordinary environment.
type PlanStatus struct {
	Number      int      `json:"number"`
	Environment string   `json:"environment"`
	Head        string   `json:"head"`
	Summary     string   `json:"summary"`
	Steps       []string `json:"steps,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// Controller runs the previews of one source. Create it with New, run it with Run.
type Controller struct {
	opts    Options
	log     *slog.Logger
	trigger chan struct{}
	running atomic.Bool
	ready   atomic.Bool
	hostKey []byte

	// Owned by the Run goroutine.
	baseRev  string
	base     *schema.Config
	baseErr  error
	etag     string
	changes  []forge.Change
	haveList bool
	wakeAt   time.Time
	// firstSeen is when this controller first saw each head commit (approval by a bare command must be newer).
	firstSeen map[string]time.Time

	mu      sync.Mutex
	report  Report
	prs     map[int]*pr
	sem     chan struct{}
	wg      sync.WaitGroup
	posted  map[string]string // comment key (number/marker) → body last posted
	plans   map[string]PlanStatus
	workers atomic.Int64
}

// pr is the controller's record of one pull request's preview.
type pr struct {
	status Status
	change forge.Change
	// exists is true when the runtime has (or may have) objects of the preview.
	exists bool
	// job is what the worker runs or will run; running its cancel func.
	job     *job
	cancel  context.CancelFunc
	busy    bool
	pending *job
	// head is the loaded and checked head: its sha and its preview environment (nil when it failed).
	headSHA  string
	headBase string
	headEnv  *schema.Environment
	headErr  []reconciler.ErrorInfo
	// deployed is the environment last applied in full: its host ports stay reserved while it runs.
	deployed *schema.Environment
	// fetchFails counts the passes in a row the head could not be fetched.
	fetchFails int
}

type job struct {
	destroy bool
	reason  string
	change  forge.Change
	cfg     *schema.Config // the base configuration, for targets
	baseRev string
	policy  *schema.PreviewPolicy
}

// New validates opts and returns a controller.
func New(opts Options) (*Controller, error) {
	switch {
	case opts.Source == nil:
		return nil, errors.New("preview: Options.Source is required")
	case opts.Forge == nil:
		return nil, errors.New("preview: Options.Forge is required")
	case opts.Engine == nil:
		return nil, errors.New("preview: Options.Engine is required")
	}
	if _, ok := opts.Source.(HeadFetcher); !ok {
		return nil, fmt.Errorf("preview: source %s cannot fetch pull-request heads (a Git source can)", opts.Source)
	}
	if opts.Instance == "" {
		opts.Instance = reconciler.DefaultInstance
	}
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Clock == nil {
		opts.Clock = reconciler.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LoadContext == nil {
		opts.LoadContext = func(_ context.Context, dir string) (*schema.Config, error) { return schema.Load(dir) }
	}
	if opts.CheckHead == nil {
		opts.CheckHead = schema.CheckPreviewHead
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	if opts.Scheme == "" {
		opts.Scheme = "http"
	}
	if opts.Ports == (PortRange{}) {
		opts.Ports = PortRange{From: 20000, To: 20999}
	}
	if opts.Ports.From <= 0 || opts.Ports.To > 65535 || opts.Ports.To < opts.Ports.From {
		return nil, fmt.Errorf("preview: port range %d-%d is not within 1-65535", opts.Ports.From, opts.Ports.To)
	}
	if strings.Contains(opts.Path, "..") || filepath.IsAbs(opts.Path) {
		return nil, fmt.Errorf("preview: Path %q must stay inside the repository", opts.Path)
	}
	key := opts.HostKey
	if len(key) == 0 {
		key = make([]byte, 32)
		for i := range key {
			key[i] = byte(rand.IntN(256))
		}
	}
	c := &Controller{opts: opts, log: opts.Logger, trigger: make(chan struct{}, 1), hostKey: key,
		firstSeen: map[string]time.Time{}, prs: map[int]*pr{}, sem: make(chan struct{}, opts.Concurrency),
		posted: map[string]string{}, plans: map[string]PlanStatus{}}
	c.report = Report{Name: opts.Name, Forge: opts.Forge.Kind(), Previews: []Status{}}
	return c, nil
}

// Trigger asks for a pass as soon as possible (a webhook arrived); coalesced, never blocking.
func (c *Controller) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Ready tells whether the first pass is done.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Report returns a copy of the controller's state.
func (c *Controller) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.report
	r.Previews = nil
	for _, n := range slices.Sorted(maps.Keys(c.prs)) {
		r.Previews = append(r.Previews, c.prs[n].status)
	}
	b, _ := json.Marshal(r)
	var out Report
	_ = json.Unmarshal(b, &out)
	if out.Previews == nil {
		out.Previews = []Status{}
	}
	return out
}

// Run makes a pass at once, then one per interval or trigger, until ctx ends; then it waits for the workers.
func (c *Controller) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("preview: controller already running")
	}
	defer c.running.Store(false)
	defer c.wg.Wait()
	for {
		c.pass(ctx)
		c.ready.Store(true)
		if ctx.Err() != nil {
			return nil
		}
		now := c.opts.Clock.Now()
		wait := c.opts.Interval
		if !c.wakeAt.IsZero() && c.wakeAt.After(now) && c.wakeAt.Sub(now) > wait {
			wait = c.wakeAt.Sub(now) // a rate limit asked for longer
		}
		t := c.opts.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-c.trigger:
			t.Stop()
		}
	}
}

func (c *Controller) setError(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report.LastError = msg
}

// loadBase fetches the base branch and loads it when its revision moved.
func (c *Controller) loadBase(ctx context.Context) (*schema.Config, string, error) {
	snap, err := c.opts.Source.Fetch(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("fetch the base branch: %w", err)
	}
	if snap.Revision != c.baseRev || c.base == nil && c.baseErr == nil {
		cfg, err := c.opts.LoadContext(ctx, filepath.Join(snap.Dir, filepath.FromSlash(c.opts.Path)))
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		c.baseRev, c.base, c.baseErr = snap.Revision, cfg, err
	}
	if c.baseErr != nil {
		return nil, c.baseRev, fmt.Errorf("load the base branch at %s: %w", c.baseRev, c.baseErr)
	}
	return c.base, c.baseRev, nil
}

// pass is one level-based look at the forge and the previews.
func (c *Controller) pass(ctx context.Context) {
	now := c.opts.Clock.Now()
	c.gcGone(now)
	base, rev, err := c.loadBase(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("previews: base", "err", err)
			c.setError(err.Error())
		}
		return // nothing changes while the trusted configuration is unknown
	}
	var policy *schema.PreviewPolicy
	if base.Previews != nil {
		policy = base.Previews.PR
	}
	c.mu.Lock()
	c.report.Enabled = policy != nil
	c.report.From = ""
	if policy != nil {
		c.report.From = policy.From
	}
	c.mu.Unlock()

	list, err := c.opts.Forge.ListOpen(ctx, c.etag)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.forgeError("list open pull requests", err, now)
		return
	}
	if !list.NotModified {
		c.changes, c.etag, c.haveList = list.Changes, list.ETag, true
	}
	if !c.haveList {
		c.setError("the forge answered not-modified to the first listing; waiting for a full one")
		return
	}
	c.wakeAt = time.Time{}
	open := map[int]forge.Change{}
	for _, ch := range c.changes {
		if ch.State == forge.StateOpen && ch.Number > 0 {
			open[ch.Number] = ch
			if _, ok := c.firstSeen[ch.HeadSHA]; !ok {
				c.firstSeen[ch.HeadSHA] = now
			}
		}
	}
	for sha, t := range c.firstSeen { // bounded: heads not open any more are forgotten after a day
		if now.Sub(t) > 24*time.Hour && !slices.ContainsFunc(c.changes, func(ch forge.Change) bool { return ch.HeadSHA == sha }) {
			delete(c.firstSeen, sha)
		}
	}

	existing, existErr := c.onRuntime(ctx, base)
	if existErr != nil {
		c.log.Warn("previews: listing the environments on the runtimes", "err", existErr)
	}
	passErr := ""
	if existErr != nil {
		passErr = "list previews on the runtimes: " + existErr.Error()
	}

	// Desired previews of the open, selected pull requests.
	want := map[int]decision{}
	if policy != nil {
		want = c.decide(ctx, base, policy, open, existing, now)
	}
	for n, d := range want {
		if d.err != "" && passErr == "" {
			passErr = d.err
		}
		c.apply(ctx, n, d, base, rev, policy, now)
	}

	// Previews to remove: known here or found on a runtime, and not wanted. Only a fresh read of the pull request
	// decides; any error keeps the preview.
	candidates := map[int]bool{}
	c.mu.Lock()
	for n, p := range c.prs {
		if _, ok := want[n]; !ok && p.exists {
			candidates[n] = true
		}
	}
	c.mu.Unlock()
	for n := range existing {
		if _, ok := want[n]; !ok {
			candidates[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(candidates)) {
		if ctx.Err() != nil {
			return
		}
		reason, err := c.mustGo(ctx, n, policy, now)
		if err != nil {
			c.forgeError(fmt.Sprintf("read pull request %d", n), err, now)
			passErr = fmt.Sprintf("read pull request %d: %v", n, err)
			continue
		}
		if reason == "" {
			continue // the listing was behind: the next pass sees it open
		}
		c.teardown(ctx, n, reason, base, rev, policy)
	}
	if c.opts.PlanComments {
		c.planComments(ctx, base, rev, policy, open)
	}
	c.mu.Lock()
	c.report.CheckedAt, c.report.LastError = now, passErr
	c.mu.Unlock()
	c.metrics()
}

// forgeError reports a failed forge call; nothing changes because of it.
func (c *Controller) forgeError(op string, err error, now time.Time) {
	c.log.Warn("previews: forge", "op", op, "err", err)
	c.setError(op + ": " + err.Error())
	var fe *forge.Error
	if errors.As(err, &fe) && fe.RetryAfter > 0 {
		c.wakeAt = now.Add(fe.RetryAfter)
	}
}

// onRuntime lists the previews on the base's targets by their labels: number → head.
func (c *Controller) onRuntime(ctx context.Context, base *schema.Config) (map[int]string, error) {
	out := map[int]string{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(base.Targets)) {
		refs, err := c.opts.Engine.Environments(ctx, base, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range refs {
			if r.Preview > 0 && r.Name == schema.PreviewName(r.Preview) {
				out[r.Preview] = r.Head
			}
		}
	}
	return out, errors.Join(errs...)
}

// decision is what one open pull request should have.
type decision struct {
	change forge.Change
	state  string // StateAwaitingApproval, StateGated, StateQueued, or StateApplying (deploy)
	reason string
	err    string
}

// selected tells whether the policy selects ch, and why not.
func selected(p *schema.PreviewPolicy, ch forge.Change, baseBranch string) (bool, string) {
	if ch.Draft && !p.When.Drafts {
		return false, "draft"
	}
	branches := p.When.TargetBranches
	if len(branches) == 0 {
		branches = []string{baseBranch}
	}
	if !slices.ContainsFunc(branches, func(pat string) bool { ok, _ := path.Match(pat, ch.BaseRef); return ok }) {
		return false, "targets branch " + safeRef(ch.BaseRef)
	}
	for _, l := range ch.Labels {
		if slices.Contains(p.When.ExcludeLabels, l) {
			return false, "excluded by a label"
		}
	}
	if len(p.When.Labels) > 0 && !slices.ContainsFunc(ch.Labels, func(l string) bool { return slices.Contains(p.When.Labels, l) }) {
		return false, "not labelled"
	}
	return true, ""
}

// safeRef is untrusted branch text made safe to show in a status: printable ASCII letters, digits and -_./, cut.
func safeRef(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			b.WriteString("…")
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '/':
			b.WriteRune(r)
		default:
			b.WriteRune('?')
		}
	}
	return b.String()
}

// decide computes the desired state of every open pull request the policy selects.
func (c *Controller) decide(ctx context.Context, base *schema.Config, p *schema.PreviewPolicy, open map[int]forge.Change,
	existing map[int]string, now time.Time) map[int]decision {
	baseEnv := base.Environments[p.From]
	out := map[int]decision{}
	var ready []int
	for _, n := range slices.Sorted(maps.Keys(open)) {
		ch := open[n]
		if ok, _ := selected(p, ch, baseEnv.Branch); !ok {
			continue
		}
		if p.TTL > 0 && now.Sub(ch.UpdatedAt) > p.TTL.D() {
			continue // expired: torn down (after a fresh read) like an unselected one
		}
		d := decision{change: ch, state: StateApplying}
		if _, clash := base.Environments[schema.PreviewName(n)]; clash {
			d.state, d.reason = StateFailed, "an ordinary environment named "+schema.PreviewName(n)+" is declared: rename it (pr-<number> names belong to previews)"
			out[n] = d
			continue
		}
		if ch.Fork {
			switch p.Forks {
			case schema.ForksApproveEachCommit:
				ok, err := c.approved(ctx, ch, p.ApproveLabel)
				switch {
				case err != nil:
					d.err = fmt.Sprintf("pull request %d: approvals: %v", n, err)
					d.state, d.reason = StateAwaitingApproval, "approvals could not be read"
				case !ok:
					d.state, d.reason = StateAwaitingApproval, fmt.Sprintf("a fork: waiting for a user with write permission to comment `%s %s`", ApproveCommand, short(ch.HeadSHA))
				}
			default:
				d.state, d.reason = StateAwaitingApproval, "a fork: previews are not made for forks (previews.pr.forks)"
			}
		}
		if d.state == StateApplying && len(p.Gate.Statuses) > 0 {
			sts, err := c.opts.Forge.Statuses(ctx, ch.HeadSHA)
			if err != nil {
				d.err = fmt.Sprintf("pull request %d: statuses: %v", n, err)
				d.state, d.reason = StateGated, "commit statuses could not be read"
			} else {
				var waiting []string
				for _, g := range p.Gate.Statuses {
					if sts[g] != forge.StatusSuccess {
						st := string(sts[g])
						if st == "" {
							st = "missing"
						}
						waiting = append(waiting, g+" ("+st+")")
					}
				}
				if len(waiting) > 0 {
					d.state, d.reason = StateGated, "waiting for "+strings.Join(waiting, ", ")
				}
			}
		}
		out[n] = d
		if d.state == StateApplying {
			ready = append(ready, n)
		}
	}
	// max: previews that exist keep their place; new ones fill what is left, oldest pull request first.
	total, perAuthor := p.Max.Total, p.Max.PerAuthor
	if total <= 0 {
		total = 10
	}
	if perAuthor <= 0 {
		perAuthor = 3
	}
	c.mu.Lock()
	exists := func(n int) bool {
		if _, ok := existing[n]; ok {
			return true
		}
		r, ok := c.prs[n]
		return ok && r.exists
	}
	c.mu.Unlock()
	used, byAuthor := 0, map[string]int{}
	for _, n := range slices.Sorted(maps.Keys(out)) {
		if exists(n) {
			used++
			byAuthor[out[n].change.Author]++
		}
	}
	for _, n := range ready {
		if exists(n) {
			continue
		}
		d := out[n]
		switch {
		case used >= total:
			d.state, d.reason = StateQueued, fmt.Sprintf("queued: %d previews exist (previews.pr.max.total %d)", used, total)
		case byAuthor[d.change.Author] >= perAuthor:
			d.state, d.reason = StateQueued, fmt.Sprintf("queued: this author has %d previews (previews.pr.max.perAuthor %d)", byAuthor[d.change.Author], perAuthor)
		default:
			used++
			byAuthor[d.change.Author]++
		}
		out[n] = d
	}
	return out
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// approved tells whether a user with write permission approved the fork's current head: the approval label added
// after this controller first saw the head (forge.LabelHistory says who added it and when) and still on the pull
// request, a comment "/berth preview <sha>" naming it (at least 7 hex digits), or a bare "/berth preview" written
// after this controller first saw the head. Either way an approval cannot cover a commit pushed after it.
func (c *Controller) approved(ctx context.Context, ch forge.Change, label string) (bool, error) {
	seen, known := c.firstSeen[ch.HeadSHA]
	perms := map[string]bool{}
	canWrite := func(user string) (bool, error) {
		if w, ok := perms[user]; ok {
			return w, nil
		}
		if user == "" {
			return false, nil
		}
		perm, err := c.opts.Forge.Permission(ctx, user)
		if err != nil && !errors.Is(err, forge.ErrNotFound) {
			return false, err
		}
		perms[user] = err == nil && perm.CanWrite()
		return perms[user], nil
	}
	// The approval label, added by a user with write permission after this head was first seen, and still there.
	if lh, ok := c.opts.Forge.(forge.LabelHistory); ok && label != "" && known && slices.Contains(ch.Labels, label) {
		events, err := lh.LabelEvents(ctx, ch.Number)
		if err != nil {
			return false, err
		}
		for i := len(events) - 1; i >= 0; i-- {
			e := events[i]
			if e.Label != label {
				continue
			}
			if e.Added && !e.Created.Before(seen) {
				w, err := canWrite(e.Actor)
				if err != nil {
					return false, err
				}
				if w {
					return true, nil
				}
			}
			break // the newest event of the label decides
		}
	}
	comments, err := c.opts.Forge.Comments(ctx, ch.Number)
	if err != nil {
		return false, err
	}
	for i := len(comments) - 1; i >= 0; i-- {
		cm := comments[i]
		sha, ok := approval(cm.Body)
		if !ok {
			continue
		}
		switch {
		case sha != "":
			if len(sha) < 7 || !strings.HasPrefix(strings.ToLower(ch.HeadSHA), sha) {
				continue
			}
		case !known || cm.Created.Before(seen):
			continue
		}
		w, err := canWrite(cm.Author)
		if err != nil {
			return false, err
		}
		if w {
			return true, nil
		}
	}
	return false, nil
}

// approval parses an approval command: the first line "/berth preview" optionally followed by a commit SHA.
func approval(body string) (sha string, ok bool) {
	line, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "/berth" || f[1] != "preview" || len(f) > 3 {
		return "", false
	}
	if len(f) == 3 {
		s := strings.ToLower(f[2])
		if len(s) > 40 || strings.Trim(s, "0123456789abcdef") != "" {
			return "", false
		}
		return s, true
	}
	return "", true
}

// mustGo reads pull request n afresh and says why its preview must go ("" to keep it).
func (c *Controller) mustGo(ctx context.Context, n int, p *schema.PreviewPolicy, now time.Time) (string, error) {
	if p == nil {
		return "previews are no longer configured on the base branch", nil
	}
	ch, err := c.opts.Forge.Get(ctx, n)
	if err != nil {
		return "", err // a 404 too: a token that lost access answers it; not evidence
	}
	if ch.Number != n {
		return "", fmt.Errorf("the forge answered pull request %d for %d", ch.Number, n)
	}
	switch ch.State {
	case forge.StateClosed:
		return "closed", nil
	case forge.StateMerged:
		return "merged", nil
	case forge.StateOpen:
	default:
		return "", fmt.Errorf("pull request %d has state %q", n, ch.State)
	}
	base := c.base.Environments[p.From]
	if ok, why := selected(p, ch, base.Branch); !ok {
		return why, nil
	}
	if p.TTL > 0 && now.Sub(ch.UpdatedAt) > p.TTL.D() {
		return "expired (previews.pr.ttl " + p.TTL.D().String() + ")", nil
	}
	return "", nil
}

// record returns the record of pull request n, creating it.
func (c *Controller) record(n int) *pr {
	r, ok := c.prs[n]
	if !ok {
		r = &pr{status: Status{Number: n, Environment: schema.PreviewName(n), State: StateDiscovered}}
		c.prs[n] = r
	}
	return r
}

// apply brings pull request n towards decision d.
func (c *Controller) apply(ctx context.Context, n int, d decision, base *schema.Config, rev string, p *schema.PreviewPolicy, now time.Time) {
	c.mu.Lock()
	r := c.record(n)
	r.change = d.change
	r.status.Head, r.status.Author, r.status.Fork, r.status.Base = d.change.HeadSHA, d.change.Author, d.change.Fork, p.From
	if d.state != StateApplying {
		// Waiting: what runs (an approved or green older head) keeps running; the comment says why.
		if r.status.State != d.state || r.status.Reason != d.reason {
			r.status.State, r.status.Reason, r.status.UpdatedAt = d.state, d.reason, now
		}
		c.mu.Unlock()
		c.publish(ctx, n)
		return
	}
	c.mu.Unlock()
	c.schedule(ctx, n, &job{change: d.change, cfg: base, baseRev: rev, policy: p})
}

// teardown schedules the removal of pull request n's preview.
func (c *Controller) teardown(ctx context.Context, n int, reason string, base *schema.Config, rev string, p *schema.PreviewPolicy) {
	c.mu.Lock()
	r := c.record(n)
	if r.status.State == StateGone || r.status.State == StateDestroying && r.busy {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.schedule(ctx, n, &job{destroy: true, reason: reason, cfg: base, baseRev: rev, policy: p})
}

// schedule runs j for pull request n: at once when nothing runs for it, else after the running job, which is
// cancelled when j supersedes it (a newer head, or a teardown).
func (c *Controller) schedule(ctx context.Context, n int, j *job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.record(n)
	if r.busy {
		cur := r.job
		if cur.destroy && j.destroy {
			return
		}
		if !j.destroy && !cur.destroy && cur.change.HeadSHA == j.change.HeadSHA && cur.baseRev == j.baseRev {
			return // already at it
		}
		if j.destroy || cur.change.HeadSHA != j.change.HeadSHA || cur.baseRev != j.baseRev {
			r.cancel() // superseded; the worker starts r.pending when it returns
		}
		r.pending = j
		return
	}
	c.start(ctx, n, r, j)
}

// start runs j in a worker; c.mu is held.
func (c *Controller) start(ctx context.Context, n int, r *pr, j *job) {
	wctx, cancel := context.WithCancel(ctx)
	r.job, r.cancel, r.busy = j, cancel, true
	c.wg.Add(1)
	c.workers.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.workers.Add(-1)
		select {
		case c.sem <- struct{}{}:
			func() {
				defer func() { <-c.sem }()
				if j.destroy {
					c.destroy(wctx, n, j)
				} else {
					c.deploy(wctx, n, j)
				}
			}()
		case <-wctx.Done():
		}
		cancel()
		c.mu.Lock()
		r.busy, r.job = false, nil
		next := r.pending
		r.pending = nil
		if next != nil && ctx.Err() == nil {
			c.start(ctx, n, r, next)
		}
		c.mu.Unlock()
		c.metrics()
	}()
}

// setStatus updates pull request n's status under the lock and publishes it.
func (c *Controller) setStatus(ctx context.Context, n int, f func(*Status)) {
	c.mu.Lock()
	r := c.record(n)
	f(&r.status)
	r.status.UpdatedAt = c.opts.Clock.Now()
	c.mu.Unlock()
	c.publish(ctx, n)
}

// previewEnv builds the preview environment of j's head: the checked head workloads, capped, with hosts and
// host ports of their own.
func (c *Controller) previewEnv(ctx context.Context, n int, j *job) (*schema.Environment, []reconciler.ErrorInfo, error) {
	ch, p := j.change, j.policy
	fetch := c.opts.Source.(HeadFetcher)
	snap, err := fetch.FetchRef(ctx, headRef(c.opts.Forge.Kind(), n), ch.HeadSHA)
	if err != nil {
		// The Git host is unreachable, or the ref is not at the forge's head yet (a push between the listing and
		// the fetch): not the head's fault. Nothing changes; the next pass fetches again.
		return nil, nil, fmt.Errorf("fetch the head: %w", err)
	}
	head, err := c.opts.LoadContext(ctx, filepath.Join(snap.Dir, filepath.FromSlash(c.opts.Path)))
	if err != nil {
		return nil, reconciler.ErrorInfos(err), nil
	}
	ws, errs := c.opts.CheckHead(j.cfg, head, p)
	if len(errs) > 0 {
		return nil, reconciler.ErrorInfos(errs), nil
	}
	baseEnv := j.cfg.Environments[p.From]
	env := &schema.Environment{Name: schema.PreviewName(n), Branch: baseEnv.Branch,
		Preview: &schema.Preview{Number: n, Head: ch.HeadSHA, Base: p.From, Hosts: map[string]string{}}}
	if p.Secrets != "" && !ch.Fork {
		if se, ok := j.cfg.Environments[p.Secrets]; ok {
			env.Secrets = se.Secrets
		}
	}
	var problems []reconciler.ErrorInfo
	for _, w := range ws {
		w = capWorkload(w, p.Caps)
		for _, name := range w.Secrets() {
			if _, ok := env.Secrets[name]; ok {
				continue
			}
			why := "previews get no secrets unless previews.pr.secrets names an environment whose secrets they use"
			if ch.Fork {
				why = "a fork's preview never gets secrets"
			}
			pos := w.Position("")
			problems = append(problems, reconciler.ErrorInfo{File: pos.File, Line: pos.Line, Column: pos.Column,
				Path: "workloads." + w.Name, Message: "uses secret " + name + ": " + why})
		}
		env.Workloads = append(env.Workloads, w)
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	sort.Slice(env.Workloads, func(a, b int) bool { return env.Workloads[a].Name < env.Workloads[b].Name })
	shared := map[string]bool{}
	for name := range j.cfg.Targets {
		if caps, err := c.opts.Engine.Capabilities(j.cfg, name); err == nil {
			shared[name] = caps.SharedHostPorts
		}
	}
	if err := c.assignPorts(n, env, shared); err != nil {
		return nil, []reconciler.ErrorInfo{{Message: err.Error()}}, nil
	}
	return env, nil, nil
}

// headRef is the ref a forge publishes a pull request's head at.
func headRef(kind string, n int) string {
	if kind == "gitlab" {
		return "refs/merge-requests/" + strconv.Itoa(n) + "/head"
	}
	return "refs/pull/" + strconv.Itoa(n) + "/head"
}

// capWorkload cuts w to the preview caps. A preview never takes its base's stable names: its ports' endpoints
// are dropped (it is served at host names of its own).
func capWorkload(w schema.Workload, caps schema.PreviewCaps) schema.Workload {
	if len(w.Endpoints()) > 0 {
		ps := slices.Clone(w.Ports)
		for i := range ps {
			ps[i].Endpoint = nil
		}
		w.Ports = ps
	}
	max := caps.Replicas
	if max <= 0 {
		max = 1
	}
	if w.Replicas > max {
		w.Replicas = max
	}
	if caps.CPUMillis > 0 && (w.Resources.CPUMillis == 0 || w.Resources.CPUMillis > caps.CPUMillis) {
		w.Resources.CPUMillis = caps.CPUMillis
	}
	if caps.MemoryBytes > 0 && (w.Resources.MemoryBytes == 0 || w.Resources.MemoryBytes > caps.MemoryBytes) {
		w.Resources.MemoryBytes = caps.MemoryBytes
	}
	return w
}

// hostName is the host name of pull request n's public port: "pr-42-<random>.<domain>" for the first public port
// of the preview, "pr-42-<random>-<workload>-<port>.<domain>" for the others; the random part is keyed, so it is
// stable across restarts with the same key and not guessable without it. Labels longer than 63 are cut with a hash.
func (c *Controller) hostName(n int, workload string, port int, first bool) string {
	m := hmac.New(sha256.New, c.hostKey)
	fmt.Fprintf(m, "%s\x00%d", c.opts.Instance, n)
	label := fmt.Sprintf("pr-%d-%s", n, hex.EncodeToString(m.Sum(nil))[:8])
	if !first {
		label += "-" + workload + "-" + strconv.Itoa(port)
	}
	if len(label) > 63 {
		h := sha256.Sum256([]byte(label))
		label = strings.TrimRight(label[:54], "-") + "-" + hex.EncodeToString(h[:])[:8]
	}
	return label + "." + c.opts.Domain
}

// assignPorts gives env's public ports host names and, on targets whose workloads share host ports
// (Capabilities.SharedHostPorts), host ports of their own from the range. A port is taken from a hash of (preview,
// workload, port), probing past the ports other previews hold, so it is the same on every pass and after a
// restart while the set of previews is.
func (c *Controller) assignPorts(n int, env *schema.Environment, shared map[string]bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	taken := map[int]string{}
	for m, r := range c.prs {
		env := r.deployed
		if env == nil {
			env = r.headEnv
		}
		if m == n || env == nil {
			continue
		}
		for _, w := range env.Workloads {
			for _, p := range w.Ports {
				if p.Public {
					taken[p.HostPort] = fmt.Sprintf("%d/%s/%d", m, w.Name, p.Port)
				}
			}
		}
	}
	size := c.opts.Ports.To - c.opts.Ports.From + 1
	first := true
	for wi := range env.Workloads {
		w := &env.Workloads[wi]
		w.Ports = slices.Clone(w.Ports)
		for pi := range w.Ports {
			p := &w.Ports[pi]
			if !p.Public {
				continue
			}
			key := fmt.Sprintf("%d/%s/%d", n, w.Name, p.Port)
			h := sha256.Sum256([]byte(key))
			start := int(uint32(h[0])<<24|uint32(h[1])<<16|uint32(h[2])<<8|uint32(h[3])) % size
			if shared[w.Provider] {
				found := false
				for i := 0; i < size; i++ {
					hp := c.opts.Ports.From + (start+i)%size
					if _, used := taken[hp]; !used {
						p.HostPort, taken[hp], found = hp, key, true
						break
					}
				}
				if !found {
					return fmt.Errorf("workloads.%s.ports: no free host port left in the preview range %d-%d (previews.ports in the serve configuration)",
						w.Name, c.opts.Ports.From, c.opts.Ports.To)
				}
			}
			env.Preview.Hosts[schema.HostKey(w.Name, p.Port)] = c.hostName(n, w.Name, p.Port, first)
			first = false
		}
	}
	return nil
}

// deploy applies j's head as pull request n's preview.
func (c *Controller) deploy(ctx context.Context, n int, j *job) {
	log := c.log.With("preview", n, "head", short(j.change.HeadSHA))
	c.mu.Lock()
	r := c.record(n)
	env, errs := r.headEnv, r.headErr
	cached := r.headSHA == j.change.HeadSHA && r.headBase == j.baseRev && (env != nil || errs != nil)
	c.mu.Unlock()
	if !cached {
		var err error
		env, errs, err = c.previewEnv(ctx, n, j)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		if err != nil {
			r.fetchFails++
		} else {
			r.fetchFails = 0
		}
		fails := r.fetchFails
		c.mu.Unlock()
		if err != nil {
			// Transient: what runs keeps running and the next pass tries again; after a few passes the comment says
			// why the preview does not move.
			log.Warn("preview head", "err", err, "passes", fails)
			if fails >= 3 {
				c.setStatus(ctx, n, func(s *Status) { s.Reason = "the head cannot be fetched yet: " + err.Error() })
			}
			return
		}
		c.mu.Lock()
		r.headSHA, r.headBase, r.headEnv, r.headErr = j.change.HeadSHA, j.baseRev, env, errs
		c.mu.Unlock()
	}
	if errs != nil {
		log.Warn("preview head refused", "errors", len(errs))
		c.setStatus(ctx, n, func(s *Status) {
			s.State, s.Reason, s.Errors, s.Plan, s.Steps = StateFailed, "the head cannot be previewed", errs, "", nil
		})
		return
	}
	cfg := &schema.Config{Targets: j.cfg.Targets, Environments: map[string]schema.Environment{env.Name: *env}, Root: j.cfg.Root,
		Registries: j.cfg.Registries}
	plan, err := c.opts.Engine.Plan(ctx, cfg, env.Name, j.change.HeadSHA)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		c.setStatus(ctx, n, func(s *Status) {
			s.State, s.Reason, s.Errors = StateFailed, "plan failed", []reconciler.ErrorInfo{{Message: err.Error()}}
		})
		return
	}
	if plan.Blocked() {
		c.setStatus(ctx, n, func(s *Status) {
			s.State, s.Reason, s.Errors = StateFailed, "plan blocked", reconciler.BlockErrors(plan)
			s.Plan, s.Steps = plan.Summary(), reconciler.StepLines(plan)
		})
		return
	}
	if !plan.Empty() {
		c.mu.Lock()
		r.exists = true
		c.mu.Unlock()
		c.setStatus(ctx, n, func(s *Status) {
			s.State, s.Reason, s.Errors = StateApplying, "", nil
			s.Plan, s.Steps = plan.Summary(), reconciler.StepLines(plan)
		})
		res, err := c.opts.Engine.Apply(ctx, cfg, plan)
		if ctx.Err() != nil {
			return // superseded or shutting down: the next job (or pass) takes over
		}
		if err != nil || res.Failed() > 0 {
			var ei []reconciler.ErrorInfo
			if err != nil {
				ei = append(ei, reconciler.ErrorInfo{Message: err.Error()})
			}
			if res != nil {
				for _, s := range res.Steps {
					if !s.OK {
						ei = append(ei, reconciler.ErrorInfo{Path: "workloads." + s.Step.Workload, Message: s.Step.Action + ": " + s.Error})
					}
				}
			}
			c.setStatus(ctx, n, func(s *Status) { s.State, s.Reason, s.Errors = StateFailed, "apply failed", ei })
			return
		}
		// Read back what runs, for the endpoints.
		if plan, err = c.opts.Engine.Plan(ctx, cfg, env.Name, j.change.HeadSHA); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setStatus(ctx, n, func(s *Status) {
				s.State, s.Reason, s.Errors = StateFailed, "reading back", []reconciler.ErrorInfo{{Message: err.Error()}}
			})
			return
		}
	}
	ws, urls, ready := c.workloads(env, plan, cfg)
	c.mu.Lock()
	r.exists = r.exists || len(plan.ObservedWorkloads()) > 0
	r.deployed = env
	c.mu.Unlock()
	c.route(n, env, plan, cfg)
	c.setStatus(ctx, n, func(s *Status) {
		s.Workloads, s.URLs, s.Errors, s.Deployed = ws, urls, nil, j.change.HeadSHA
		s.Plan, s.Steps = plan.Summary(), reconciler.StepLines(plan)
		if ready {
			s.State, s.Reason = StateReady, ""
		} else {
			s.State, s.Reason = StateApplying, "waiting for replicas to be ready"
		}
	})
}

// workloads reports env's workloads from plan's observations: ready replicas and URLs.
func (c *Controller) workloads(env *schema.Environment, plan *reconciler.Plan, cfg *schema.Config) ([]WorkloadStatus, []string, bool) {
	var out []WorkloadStatus
	var urls []string
	ready := plan.Empty()
	for _, w := range env.Workloads {
		st := WorkloadStatus{Name: w.Name, Target: w.Provider, Desired: w.Replicas}
		for _, o := range plan.Observed(w.Name) {
			if o.Target != w.Provider {
				continue
			}
			for _, rep := range o.Replicas {
				if rep.Ready() {
					st.Ready++
				}
			}
			for _, e := range o.Endpoints {
				u := c.url(env, w.Name, e, c.routed(cfg, w.Provider))
				if u != "" {
					st.URLs = append(st.URLs, u)
				}
			}
		}
		if st.Ready < st.Desired {
			ready = false
		}
		urls = append(urls, st.URLs...)
		out = append(out, st)
	}
	return out, urls, ready
}

// url is the address people use for endpoint e of workload: the runtime's own host route, else berth's router
// (when it runs), else the endpoint's address.
func (c *Controller) url(env *schema.Environment, workload string, e providers.Endpoint, routed bool) string {
	if e.URL != "" {
		return e.URL
	}
	host := env.Preview.Hosts[schema.HostKey(workload, e.Port)]
	if routed && host != "" && e.Address != "" {
		if c.opts.RouterPort == 0 || c.opts.RouterPort == 80 && c.opts.Scheme == "http" || c.opts.RouterPort == 443 && c.opts.Scheme == "https" {
			return c.opts.Scheme + "://" + host + "/"
		}
		return fmt.Sprintf("%s://%s:%d/", c.opts.Scheme, host, c.opts.RouterPort)
	}
	if e.Address != "" {
		return "http://" + e.Address + "/"
	}
	return ""
}

// routed tells whether berth's router serves the previews' ports on target: where the runtime's workloads share
// host ports (Docker, Swarm, Nomad, Marathon: the preview's port is one of the preview range, not one people know).
// Elsewhere each workload has an address of its own, which the URL gives as it is.
func (c *Controller) routed(cfg *schema.Config, target string) bool {
	if c.opts.Router == nil {
		return false
	}
	caps, err := c.opts.Engine.Capabilities(cfg, target)
	return err == nil && caps.SharedHostPorts && !caps.HostRoutes
}

// route points berth's router at the preview's endpoints.
func (c *Controller) route(n int, env *schema.Environment, plan *reconciler.Plan, cfg *schema.Config) {
	if c.opts.Router == nil {
		return
	}
	routes := map[string]string{}
	for _, w := range env.Workloads {
		if !c.routed(cfg, w.Provider) {
			continue
		}
		for _, o := range plan.Observed(w.Name) {
			if o.Target != w.Provider {
				continue
			}
			for _, e := range o.Endpoints {
				if host := env.Preview.Hosts[schema.HostKey(w.Name, e.Port)]; host != "" && e.URL == "" && e.Address != "" {
					routes[host] = e.Address
				}
			}
		}
	}
	c.opts.Router.Set(n, routes)
}

// destroy removes pull request n's preview from every target of the base.
func (c *Controller) destroy(ctx context.Context, n int, j *job) {
	log := c.log.With("preview", n, "reason", j.reason)
	state := StateDestroying
	if strings.HasPrefix(j.reason, "expired") {
		state = StateExpiring
	}
	c.setStatus(ctx, n, func(s *Status) { s.State, s.Reason = state, j.reason })
	if c.opts.Router != nil {
		c.opts.Router.Set(n, nil)
	}
	name := schema.PreviewName(n)
	cfg := &schema.Config{Targets: j.cfg.Targets, Environments: map[string]schema.Environment{name: {Name: name,
		Preview: &schema.Preview{Number: n}}}}
	if err := c.opts.Engine.Destroy(ctx, cfg, name); err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Warn("preview teardown", "err", err)
		c.setStatus(ctx, n, func(s *Status) {
			s.State, s.Errors = StateDestroying, []reconciler.ErrorInfo{{Message: err.Error()}}
		})
		return
	}
	log.Info("preview removed")
	c.mu.Lock()
	r := c.record(n)
	r.exists, r.headEnv, r.headSHA, r.headErr, r.deployed = false, nil, "", nil, nil
	c.mu.Unlock()
	c.setStatus(ctx, n, func(s *Status) {
		s.State, s.Errors, s.URLs, s.Workloads, s.Plan, s.Steps = StateGone, nil, nil, nil, "", nil
		s.Reason = "removed: " + j.reason
	})
}

// gcGone forgets previews that have been gone a while.
func (c *Controller) gcGone(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, r := range c.prs {
		if r.status.State == StateGone && !r.busy && now.Sub(r.status.UpdatedAt) > goneKept {
			delete(c.prs, n)
		}
	}
}
