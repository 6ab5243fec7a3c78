package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/reconciler/store"
	"github.com/berth-dev/berth/schema"
)

// Migration phases, as the store records them (store.Migration.Phase) and status shows them.
const (
	MoveStart   = "start"   // the move began
	MoveReady   = "ready"   // the new copy runs and is ready
	MoveAdd     = "add"     // the new copy is a member of every stable name, at weight 0 (or 100 alone)
	MoveShift   = "shift"   // the new copy has Weight percent of the traffic
	MoveDrain   = "drain"   // the new copy has it all; waiting out the TTL and the drain
	MoveRemove  = "remove"  // the old members are removed from the names
	MoveDone    = "done"    // the old copies are deleted
	MoveAbort   = "abort"   // shifting back: the new copy failed (Detail)
	MoveAborted = "aborted" // shifted back, the new copy removed; the move waits for a change of the workload
)

// ErrMoveAborted is returned (wrapped, Permanent) by a migration that shifted back.
var ErrMoveAborted = errors.New("migration aborted")

// route is one public port's stable name as planned: the router's entry and what the name serves now.
type route struct {
	Port     int             `json:"port"`
	Endpoint schema.Endpoint `json:"endpoint"`
	// Edge tells whether the router is berth's edge (members are host:port and may carry a watch).
	Edge   bool                  `json:"edge"`
	Caps   endpoint.Capabilities `json:"caps"`
	Record *endpoint.Record      `json:"record,omitempty"`
	router endpoint.Router
}

// cacheTTL is how long clients may keep an answer of the route's name: its TTL for DNS, nothing for the edge
// (clients connect to its address, there is no answer to keep).
func (rt route) cacheTTL() time.Duration {
	if rt.Edge {
		return 0
	}
	return rt.Endpoint.TTL.D()
}

// MovePhase is one phase of a planned move, as `berth plan` shows it.
type MovePhase struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
	// Duration is how long the phase is expected to take at least; 0 for the phases that last as long as the
	// runtime or the API does (making the copy ready, a DNS change).
	Duration time.Duration `json:"duration,omitempty"`
}

// router returns the cached router of the dns entry name of cfg.
func (e *Engine) router(cfg *schema.Config, name string) (endpoint.Router, error) {
	t, ok := cfg.DNS[name]
	if !ok {
		return nil, providers.Permanent(fmt.Errorf("dns router %q is not declared", name))
	}
	if t.Name == "" {
		t.Name = name
	}
	fp := fingerprint(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.routers[name]; ok && c.fingerprint == fp {
		return c.r, c.err
	}
	r, err := e.opts.Routers(t, endpoint.Options{Logger: e.log.With("dns", name), Instance: e.opts.Instance})
	e.routers[name] = cachedRouter{fingerprint: fp, r: r, err: err}
	return r, err
}

type cachedRouter struct {
	fingerprint string
	r           endpoint.Router
	err         error
}

// endpointOwner is the owner of w's stable names in ev.
func (e *Engine) endpointOwner(ev schema.Environment, workload string) endpoint.Owner {
	return endpoint.Owner{Instance: e.opts.Instance, Environment: ev.Name, Workload: workload}
}

// routes reads what every stable name of w serves now. A name with records berth does not own is a problem at the
// endpoint's name (nothing is changed); an unreachable router is an error (the plan cannot be made).
func (e *Engine) routes(ctx context.Context, cfg *schema.Config, ev schema.Environment, w schema.Workload) ([]route, []Problem, error) {
	var rs []route
	var problems []Problem
	for i, p := range w.Ports {
		if p.Endpoint == nil {
			continue
		}
		field := fmt.Sprintf("ports[%d].endpoint", i)
		r, err := e.router(cfg, p.Endpoint.DNS)
		if err != nil {
			problems = append(problems, Problem{Workload: w.Name, Target: w.Provider, Field: field + ".dns",
				Pos: w.Position(field + ".dns"), Message: fmt.Sprintf("dns %s: %v", p.Endpoint.DNS, err)})
			continue
		}
		rec, err := r.Get(ctx, e.endpointOwner(ev, w.Name), p.Endpoint.Name)
		if errors.Is(err, endpoint.ErrNotOwned) {
			problems = append(problems, Problem{Workload: w.Name, Target: w.Provider, Field: field + ".name",
				Pos: w.Position(field + ".name"), Message: fmt.Sprintf("dns %s: %s already has records that berth does not own for this workload (%v); berth will not touch them: remove them, or choose another name",
					p.Endpoint.DNS, p.Endpoint.Name, err)})
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("workload %s: dns %s: read %s: %w", w.Name, p.Endpoint.DNS, p.Endpoint.Name, err)
		}
		rs = append(rs, route{Port: p.Port, Endpoint: *p.Endpoint, Edge: cfg.DNS[p.Endpoint.DNS].Type == schema.EdgeType,
			Caps: r.Capabilities(), Record: rec, router: r})
	}
	return rs, problems, nil
}

// memberOf is the member a copy o of the workload is for route rt: its address for the route's port, as the runtime
// reported it (the host alone for DNS, host:port and the watch for the edge); false when the runtime reported none.
func memberOf(o providers.Observed, rt route, weight int) (endpoint.Member, bool) {
	for _, ep := range o.Endpoints {
		if ep.Port != rt.Port || ep.Address == "" {
			continue
		}
		m := endpoint.Member{Target: o.Target, Weight: weight}
		if rt.Edge && ep.Watch != nil {
			// The address is a proxy in the controller's process (it may have no replica to forward to yet, and
			// it dies with the controller): the edge finds the replicas by the watch, and probes them first.
			m.Watch = ep.Watch
			return m, true
		}
		if rt.Edge {
			m.Addresses = []string{ep.Address}
			return m, true
		}
		host, _, err := net.SplitHostPort(ep.Address)
		if err != nil {
			host = ep.Address
		}
		m.Addresses = []string{host}
		return m, true
	}
	return endpoint.Member{}, false
}

// weightOf is target's weight in rec, -1 when it is no member.
func weightOf(rec *endpoint.Record, target string) int {
	if m, ok := rec.Member(target); ok {
		return m.Weight
	}
	return -1
}

// moveSafety says why w must not be moved between targets, "" when it may.
func moveSafety(w schema.Workload) string {
	if w.Moves().AllowUnsafe {
		return ""
	}
	switch {
	case w.Stateful:
		return "the workload is stateful: its data does not move with it; move it by hand, or set migration.allowUnsafe: true to move it anyway"
	case w.Health == nil:
		return "the workload has no health check, so berth cannot tell when the new copy is ready to take the traffic; add one, or set migration.allowUnsafe: true to move it anyway"
	}
	return ""
}

// movePhases are the phases a move of w to target still has, given the names' records now: what `berth plan` shows.
func movePhases(w schema.Workload, target string, leaving []string, routes []route) ([]MovePhase, time.Duration) {
	m := w.Moves()
	var ps []MovePhase
	add := func(name, detail string, d time.Duration) {
		ps = append(ps, MovePhase{Name: name, Detail: detail, Duration: d})
	}
	add(MoveReady, fmt.Sprintf("apply %s on %s and wait until it is ready", w.Name, target), 0)
	names := make([]string, 0, len(routes))
	have := 100
	served := false
	var ttl, drain time.Duration
	for _, rt := range routes {
		names = append(names, rt.Endpoint.Name)
		have = min(have, max(weightOf(rt.Record, target), 0))
		if rt.Record != nil {
			for _, mem := range rt.Record.Members {
				if mem.Target != target {
					served = true
				}
			}
		}
		ttl = max(ttl, rt.cacheTTL())
		drain = max(drain, rt.Endpoint.Drain.D())
	}
	on := strings.Join(names, ", ")
	if len(routes) > 0 && !served {
		add(MoveAdd, fmt.Sprintf("serve %s from %s alone", on, target), 0)
	} else if len(routes) > 0 {
		if have == 0 {
			add(MoveAdd, fmt.Sprintf("add %s to %s at weight 0", target, on), 0)
		}
		for _, st := range m.Steps {
			switch {
			case st == 100 && st > have:
				add(MoveShift, fmt.Sprintf("shift 100%% to %s", target), 0)
			case st >= have && st < 100:
				add(MoveShift, fmt.Sprintf("shift %d%% to %s, watch %s", st, target, m.Interval.D()), m.Interval.D())
			}
		}
		add(MoveDrain, fmt.Sprintf("wait ttl %s + drain %s, watching %s", ttl, drain, target), ttl+drain)
		add(MoveRemove, fmt.Sprintf("remove %s from %s", strings.Join(leaving, ", "), on), 0)
	}
	if len(leaving) > 0 {
		add(MoveDone, fmt.Sprintf("delete %s on %s", w.Name, strings.Join(leaving, ", ")), 0)
	}
	var total time.Duration
	for _, p := range ps {
		total += p.Duration
	}
	return ps, total
}

// moveRecorder appends the transitions of one move to the store, and remembers the last.
type moveRecorder struct {
	e    *Engine
	base store.Migration
}

func (r *moveRecorder) phase(phase string, weight int, detail string) {
	m := r.base
	m.Time, m.Phase, m.Weight, m.Detail = r.e.opts.Clock.Now(), phase, weight, detail
	r.e.log.Info("migration", "env", m.Environment, "workload", m.Workload, "to", m.To, "phase", phase, "weight", weight, "detail", detail)
	if r.e.opts.Store == nil {
		return
	}
	if err := r.e.opts.Store.AppendMigration(m); err != nil {
		r.e.log.Warn("record migration", "env", m.Environment, "workload", m.Workload, "err", err)
	}
}

// lastMove is the newest recorded transition of workload in env, nil when none (or no store).
func (e *Engine) lastMove(env, workload string) *store.Migration {
	if e.opts.Store == nil {
		return nil
	}
	ms, err := e.opts.Store.Migrations(env, 0)
	if err != nil {
		return nil
	}
	for i := range ms {
		if ms[i].Workload == workload {
			return &ms[i]
		}
	}
	return nil
}

// phaseSince is when the newest run of phase began in the current move of workload to target (the transitions
// after its last start), false when it is not recorded.
func (e *Engine) phaseSince(env, workload, target, phase string) (time.Time, bool) {
	if e.opts.Store == nil {
		return time.Time{}, false
	}
	ms, err := e.opts.Store.Migrations(env, 0)
	if err != nil {
		return time.Time{}, false
	}
	var since time.Time
	found := false
	for _, m := range ms { // newest first
		if m.Workload != workload {
			continue
		}
		if m.To != target || m.Phase == MoveStart || m.Phase == MoveDone || m.Phase == MoveAborted {
			break
		}
		if m.Phase == phase {
			since, found = m.Time, true
		} else if found {
			break
		}
	}
	return since, found
}

// heldMove says why a move of w to target is held after an abort of the same spec, "" when it is not.
func (e *Engine) heldMove(env string, w schema.Workload, target, hash string) string {
	last := e.lastMove(env, w.Name)
	if last == nil || last.Phase != MoveAborted || last.To != target || last.SpecHash != hash {
		return ""
	}
	return fmt.Sprintf("the move to %s was aborted at %s: %s; the old copy serves. Change the workload (or its provider) to try again",
		target, last.Time.UTC().Format(time.RFC3339), last.Detail)
}

// moveTimeout bounds a whole move: the step timeout for each wait on a runtime or an API, plus the steps' watches,
// the TTL and the drain, twice over for a shift back.
func moveTimeout(w schema.Workload, base time.Duration) time.Duration {
	m := w.Moves()
	var ttl, drain time.Duration
	for _, p := range w.Endpoints() {
		ttl = max(ttl, p.Endpoint.TTL.D())
		drain = max(drain, p.Endpoint.Drain.D())
	}
	return 3*base + 2*(time.Duration(len(m.Steps))*m.Interval.D()+ttl+drain)
}

// mover carries out one move (or converges the names of a workload that runs on one target).
type mover struct {
	e       *Engine
	owner   providers.Owner
	eowner  endpoint.Owner
	w       schema.Workload
	target  string
	leaving []string
	prov    func(string) (providers.Provider, error)
	routes  []route
	rec     *moveRecorder
}

// observe lists the workload's copy on target, waiting (bounded by ctx) until it reports an address for every
// route's port.
func (m *mover) observe(ctx context.Context, target string) (providers.Observed, error) {
	p, err := m.prov(target)
	if err != nil {
		return providers.Observed{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.e.opts.StepTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		os, err := p.List(ctx, m.owner, target)
		if err != nil {
			return providers.Observed{}, fmt.Errorf("list %s: %w", target, err)
		}
		for _, o := range os {
			if o.Workload != m.w.Name {
				continue
			}
			complete := true
			for _, rt := range m.routes {
				if _, ok := memberOf(o, rt, 0); !ok {
					complete = false
				}
			}
			if complete {
				return o, nil
			}
		}
		if err := m.e.sleep(ctx, wait); err != nil {
			return providers.Observed{}, fmt.Errorf("%s reports no address for the public ports of %s: %w", target, m.w.Name, err)
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// list is the workload's copy on target as the runtime reports it now, and whether there is one.
func (m *mover) list(ctx context.Context, target string) (providers.Observed, bool, error) {
	p, err := m.prov(target)
	if err != nil {
		return providers.Observed{}, false, err
	}
	os, err := p.List(ctx, m.owner, target)
	if err != nil {
		return providers.Observed{}, false, fmt.Errorf("list %s: %w", target, err)
	}
	for _, o := range os {
		if o.Workload == m.w.Name {
			return o, true, nil
		}
	}
	return providers.Observed{}, false, nil
}

// healthy tells whether the copy on target runs every desired replica ready.
func (m *mover) healthy(ctx context.Context, target string) (bool, string, error) {
	o, found, err := m.list(ctx, target)
	if err != nil {
		return false, "", err
	}
	if found {
		ready := 0
		for _, r := range o.Replicas {
			if r.Ready() {
				ready++
			}
		}
		if ready >= m.w.Replicas && ready > 0 || m.w.Replicas == 0 {
			return true, "", nil
		}
		return false, fmt.Sprintf("%d of %d replicas ready on %s", ready, m.w.Replicas, target), nil
	}
	return false, fmt.Sprintf("no copy of %s on %s", m.w.Name, target), nil
}

// watch looks at the new copy's health until d has passed; an error of kind ErrMoveAborted when it failed two looks
// in a row (one failed look may be a replica being replaced).
func (m *mover) watch(ctx context.Context, d time.Duration) error {
	look := max(min(d/4, 5*time.Second), 10*time.Millisecond)
	end := m.e.opts.Clock.Now().Add(d)
	failed := 0
	for {
		ok, why, err := m.healthy(ctx, m.target)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			// A runtime that cannot be listed is unknown, not unhealthy: look again.
		case !ok:
			failed++
			if failed >= 2 {
				return fmt.Errorf("%w: the new copy failed its health: %s", ErrMoveAborted, why)
			}
		default:
			failed = 0
		}
		left := end.Sub(m.e.opts.Clock.Now())
		if left <= 0 && failed == 0 {
			return nil
		}
		if err := m.e.sleep(ctx, max(min(look, left), 10*time.Millisecond)); err != nil {
			return err
		}
	}
}

// set makes every route serve members made by f from each route's current members.
func (m *mover) set(ctx context.Context, weights map[string]int, copies map[string]providers.Observed) error {
	for i := range m.routes {
		rt := &m.routes[i]
		var ms []endpoint.Member
		// The new copy comes last: a router without weights that answers one member breaks a tie for the later
		// one (Azure DNS with a load balancer's host name among the members), so a tie goes to the new copy
		// whatever the targets' names.
		order := slices.DeleteFunc(sortedKeys(weights), func(t string) bool { return t == m.target })
		if _, ok := weights[m.target]; ok {
			order = append(order, m.target)
		}
		for _, t := range order {
			o, ok := copies[t]
			var mem endpoint.Member
			if ok {
				mem, ok = memberOf(o, *rt, weights[t])
			}
			if !ok {
				// No copy reports an address (it is gone): keep what the name had for it, if anything.
				old, had := rt.Record.Member(t)
				if !had {
					continue
				}
				mem = old
				mem.Weight = weights[t]
			}
			ms = append(ms, mem)
		}
		if err := rt.router.Set(ctx, m.eowner, rt.Endpoint.Name, rt.Endpoint.TTL.D(), ms); err != nil {
			return fmt.Errorf("dns %s: set %s: %w", rt.Endpoint.DNS, rt.Endpoint.Name, err)
		}
		rt.Record = &endpoint.Record{Name: rt.Endpoint.Name, TTL: rt.Endpoint.TTL.D(), Members: ms}
	}
	return nil
}

// share splits rest among the leaving members in proportion to base (evenly when base gives them nothing).
func share(rest int, leaving []string, base map[string]int) map[string]int {
	out := map[string]int{}
	sum := 0
	for _, t := range leaving {
		sum += max(base[t], 0)
	}
	given := 0
	for _, t := range leaving {
		var n int
		if sum == 0 {
			n = rest / len(leaving)
		} else {
			n = rest * max(base[t], 0) / sum
		}
		out[t] = n
		given += n
	}
	if len(leaving) > 0 {
		out[leaving[0]] += rest - given
	}
	return out
}

// run moves the workload to m.target: see the phases. in.workload is applied on the target first.
func (m *mover) run(ctx context.Context, d providers.Desired) error {
	e := m.e
	mv := m.w.Moves()
	last := e.lastMove(m.owner.Environment, m.w.Name)
	aborting := last != nil && last.Phase == MoveAbort && last.To == m.target
	// The leaving members' weights before this move shifted anything: what a shift back restores.
	base := map[string]int{}
	for _, rt := range m.routes {
		if rt.Record == nil {
			continue
		}
		for _, mem := range rt.Record.Members {
			if w, ok := base[mem.Target]; mem.Target != m.target && (!ok || mem.Weight > w) {
				base[mem.Target] = mem.Weight
			}
		}
	}
	copies := map[string]providers.Observed{}
	for _, t := range m.leaving {
		o, found, err := m.list(ctx, t)
		if err != nil {
			return err
		}
		if found {
			copies[t] = o
		}
	}
	// A member whose copy is gone gets nothing from here on.
	for t := range base {
		if _, ok := copies[t]; !ok {
			base[t] = 0
		}
	}
	served := false      // does any name send clients to a leaving copy now?
	listed := []string{} // the leaving copies that are members of a name, at any weight: they are drained
	for _, t := range sortedKeys(base) {
		served = served || base[t] > 0
		if _, ok := copies[t]; ok {
			listed = append(listed, t)
		}
	}
	if aborting {
		return m.abort(ctx, copies, base, last.Detail)
	}
	moving := len(m.leaving) > 0 || len(listed) > 0
	if moving && (last == nil || last.To != m.target || last.Phase == MoveDone || last.Phase == MoveAborted) {
		from := append(slices.Clone(m.leaving), sortedKeys(base)...)
		slices.Sort(from)
		m.rec.phase(MoveStart, max(m.weight(), 0), "from "+strings.Join(slices.Compact(from), ", "))
	}

	p, err := m.prov(m.target)
	if err != nil {
		return err
	}
	// The new copy gets the step timeout to become ready, as any create does; until it has weight, a failure
	// here leaves the names as they are and the old copy serving, and the next pass tries again.
	actx, cancel := context.WithTimeout(ctx, e.opts.StepTimeout)
	err = p.Apply(actx, d)
	cancel()
	if err != nil {
		return err
	}
	o, err := m.observe(ctx, m.target)
	if err != nil {
		return err
	}
	copies[m.target] = o
	if moving {
		m.rec.phase(MoveReady, max(m.weight(), 0), "")
	}
	if len(m.routes) > 0 && len(listed) > 0 {
		leavingMembers := sortedKeys(base)
		if m.weight() < 0 {
			ws := map[string]int{m.target: 0}
			for t, w := range base {
				ws[t] = w
			}
			if err := m.set(ctx, ws, copies); err != nil {
				return err
			}
			m.rec.phase(MoveAdd, 0, "")
		}
		for _, st := range mv.Steps {
			cur := m.weight()
			if st < cur || !served {
				continue
			}
			if st > cur {
				ws := share(100-st, leavingMembers, base)
				ws[m.target] = st
				if err := m.set(ctx, ws, copies); err != nil {
					return err
				}
				m.rec.phase(MoveShift, st, "")
			}
			if st == 100 {
				break
			}
			if err := m.watch(ctx, mv.Interval.D()); err != nil {
				if errors.Is(err, ErrMoveAborted) {
					return m.abort(ctx, copies, base, strings.TrimPrefix(err.Error(), ErrMoveAborted.Error()+": "))
				}
				return err
			}
		}
		if !served && m.weight() < endpoint.MaxWeight {
			// No leaving copy has weight, but the new one is short of all of it (a name left half-set): all of it
			// goes to the new copy before the drain, so that no weight-0 copy is answered for want of another.
			ws := share(0, leavingMembers, base)
			ws[m.target] = endpoint.MaxWeight
			if err := m.set(ctx, ws, copies); err != nil {
				return err
			}
			m.rec.phase(MoveShift, endpoint.MaxWeight, "")
		}
		// Every name now sends everything to the new copy. The leaving members stay, at weight 0, while clients'
		// cached answers expire and open connections finish; the new copy is still watched.
		since, ok := e.phaseSince(m.owner.Environment, m.w.Name, m.target, MoveDrain)
		if !ok {
			since = e.opts.Clock.Now()
			m.rec.phase(MoveDrain, 100, "")
		}
		if err := m.drain(ctx, since, leavingMembers); err != nil {
			if errors.Is(err, ErrMoveAborted) {
				return m.abort(ctx, copies, base, strings.TrimPrefix(err.Error(), ErrMoveAborted.Error()+": "))
			}
			return err
		}
	}
	if len(m.routes) > 0 {
		if err := m.set(ctx, map[string]int{m.target: endpoint.MaxWeight}, copies); err != nil {
			return err
		}
		if len(listed) > 0 {
			m.rec.phase(MoveRemove, 100, "")
		}
	}
	for _, t := range m.leaving {
		lp, err := m.prov(t)
		if err != nil {
			return err
		}
		if err := lp.Delete(ctx, m.owner, t, m.w.Name); err != nil {
			return fmt.Errorf("delete from %s after migrating: %w", t, err)
		}
	}
	if moving {
		m.rec.phase(MoveDone, 100, "")
	}
	return nil
}

// weight is the new copy's weight in the names now: the smallest over the routes, -1 when it is no member of one.
func (m *mover) weight() int {
	w := endpoint.MaxWeight
	if len(m.routes) == 0 {
		return -1
	}
	for _, rt := range m.routes {
		x := weightOf(rt.Record, m.target)
		if x < 0 {
			return -1
		}
		w = min(w, x)
	}
	return w
}

// drain waits from since for the TTL, then for the drain (or until the leaving members have no connection open,
// where the router can tell), watching the new copy.
func (m *mover) drain(ctx context.Context, since time.Time, leaving []string) error {
	var ttl, drain time.Duration
	for _, rt := range m.routes {
		ttl = max(ttl, rt.cacheTTL())
		drain = max(drain, rt.Endpoint.Drain.D())
	}
	if left := since.Add(ttl).Sub(m.e.opts.Clock.Now()); left > 0 {
		if err := m.watch(ctx, left); err != nil {
			return err
		}
	}
	end := since.Add(ttl + drain)
	for m.e.opts.Clock.Now().Before(end) {
		if m.idle(ctx, leaving) {
			return nil
		}
		if err := m.watch(ctx, min(end.Sub(m.e.opts.Clock.Now()), time.Second)); err != nil {
			return err
		}
	}
	return nil
}

// idle tells whether every route can tell and says no leaving member has a connection open.
func (m *mover) idle(ctx context.Context, leaving []string) bool {
	for _, rt := range m.routes {
		d, ok := rt.router.(endpoint.Drainer)
		if !ok || !rt.Caps.Connections {
			return false
		}
		conns, err := d.Connections(ctx, m.eowner, rt.Endpoint.Name)
		if err != nil {
			return false
		}
		for _, t := range leaving {
			if conns[t] > 0 {
				return false
			}
		}
	}
	return true
}

// abort shifts every name back to the leaving members (their weights before the move), waits out the TTL and the
// drain, removes the new member and deletes the new copy. The old copies serve throughout.
func (m *mover) abort(ctx context.Context, copies map[string]providers.Observed, base map[string]int, why string) error {
	m.e.log.Warn("migration aborted", "env", m.owner.Environment, "workload", m.w.Name, "to", m.target, "why", why)
	var leavingMembers []string
	ws := map[string]int{}
	sum := 0
	for _, t := range sortedKeys(base) {
		leavingMembers = append(leavingMembers, t)
		sum += base[t]
	}
	for _, t := range leavingMembers {
		ws[t] = base[t]
		if sum == 0 {
			ws[t] = endpoint.MaxWeight
		}
	}
	since, ok := m.e.phaseSince(m.owner.Environment, m.w.Name, m.target, MoveAbort)
	if len(leavingMembers) > 0 && m.weight() >= 0 {
		ws[m.target] = 0
		if err := m.set(ctx, ws, copies); err != nil {
			return err
		}
	}
	if !ok {
		since = m.e.opts.Clock.Now()
		m.rec.phase(MoveAbort, 0, why)
	}
	var ttl, drain time.Duration
	for _, rt := range m.routes {
		ttl = max(ttl, rt.cacheTTL())
		drain = max(drain, rt.Endpoint.Drain.D())
	}
	if err := m.e.sleep(ctx, since.Add(ttl+drain).Sub(m.e.opts.Clock.Now())); err != nil {
		return err
	}
	if len(leavingMembers) > 0 {
		delete(ws, m.target)
		if err := m.set(ctx, ws, copies); err != nil {
			return err
		}
	}
	p, err := m.prov(m.target)
	if err != nil {
		return err
	}
	if err := p.Delete(ctx, m.owner, m.target, m.w.Name); err != nil {
		return fmt.Errorf("delete the new copy on %s after shifting back: %w", m.target, err)
	}
	m.rec.phase(MoveAborted, 0, why)
	return providers.Permanent(fmt.Errorf("%w: %s; shifted back to %s, which serves", ErrMoveAborted, why, strings.Join(leavingMembers, ", ")))
}

// sleep waits d on the engine's clock, or until ctx ends.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := e.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// describeRecord renders what a name serves for plans: "aws=100 [203.0.113.7]", "(none)".
func describeRecord(rec *endpoint.Record) string {
	if rec == nil || len(rec.Members) == 0 {
		return "(none)"
	}
	parts := make([]string, 0, len(rec.Members))
	for _, m := range rec.Members {
		parts = append(parts, describeMember(m))
	}
	return strings.Join(parts, " ")
}

func describeMember(m endpoint.Member) string {
	s := fmt.Sprintf("%s=%d [%s]", m.Target, m.Weight, strings.Join(m.Addresses, " "))
	if m.Watch != nil {
		s += " watching " + m.Watch.Kind
	}
	return s
}

// sameMember tells whether two members serve alike (a watch is compared by what it selects).
func sameMember(a, b endpoint.Member) bool {
	if a.Target != b.Target || a.Weight != b.Weight || (a.Watch == nil) != (b.Watch == nil) {
		return false
	}
	if a.Watch != nil {
		if a.Watch.Kind != b.Watch.Kind || a.Watch.Port != b.Watch.Port || a.Watch.Engine != b.Watch.Engine ||
			a.Watch.HealthPath != b.Watch.HealthPath || !maps.Equal(a.Watch.Labels, b.Watch.Labels) {
			return false
		}
		return true // the addresses are what the edge found, not what berth gave
	}
	x, y := slices.Clone(a.Addresses), slices.Clone(b.Addresses)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// releases are the steps deleting the stable names of env that this instance owns on the routers of cfg (those
// that can list them) and that no public port of env declares any more.
func (e *Engine) releases(ctx context.Context, cfg *schema.Config, ev schema.Environment) ([]Step, error) {
	declared := map[string]bool{}
	for _, w := range ev.Workloads {
		for _, p := range w.Endpoints() {
			declared[p.Endpoint.DNS+"\x00"+w.Name+"\x00"+canonicalName(p.Endpoint.Name)] = true
		}
	}
	var steps []Step
	for _, dn := range sortedKeys(cfg.DNS) {
		r, err := e.router(cfg, dn)
		if err != nil {
			continue // the plan's problems say so where a port uses it
		}
		l, ok := r.(endpoint.Lister)
		if !ok {
			continue
		}
		names, err := l.Names(ctx, e.opts.Instance)
		if err != nil {
			return nil, fmt.Errorf("dns %s: list names: %w", dn, err)
		}
		for _, n := range sortedKeys(names) {
			o := names[n]
			if o.Environment != ev.Name || declared[dn+"\x00"+o.Workload+"\x00"+canonicalName(n)] {
				continue
			}
			steps = append(steps, Step{Action: ActionRelease, Workload: o.Workload, Target: dn, Name: n,
				Reason: "no longer declared"})
		}
	}
	return steps, nil
}

// canonicalName is the form names compare in: lower case, without a trailing dot.
func canonicalName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

// finishMoves records the end of moves that finished without it: a controller killed after it deleted the old
// copies and before it wrote "done" leaves the workload on its target alone, and the plan then has no step for it.
// Only the store's record is written; nothing that runs changes.
func (e *Engine) finishMoves(ev schema.Environment, p *Plan) {
	if e.opts.Store == nil {
		return
	}
	for _, w := range ev.Workloads {
		last := e.lastMove(ev.Name, w.Name)
		if last == nil || last.To != w.Provider || last.Phase == MoveDone || last.Phase == MoveAborted || last.Phase == MoveAbort {
			continue
		}
		if slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Workload == w.Name }) {
			continue
		}
		os := p.observed[w.Name]
		if len(os) != 1 || os[0].Target != w.Provider {
			continue
		}
		m := *last
		m.Time, m.Phase, m.Weight, m.Detail = e.opts.Clock.Now(), MoveDone, endpoint.MaxWeight, "finished before a restart"
		if err := e.opts.Store.AppendMigration(m); err != nil {
			e.log.Warn("record migration", "env", ev.Name, "workload", w.Name, "err", err)
		}
	}
}

// sortedKeys are m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
