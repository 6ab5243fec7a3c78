// Package fake is an in-memory endpoint.Router for tests of the reconciler: names with members and an ownership
// owner, a log of the calls, faults on demand, and a client's view (Lookup) that picks members by weight with a
// seeded random source. It is what the migration transcripts run against.
//
// Non-goals: any wire protocol (the route53, clouddns, azuredns and edge packages have real ones).
package fake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
)

// Call is one Set or Delete that changed something.
type Call struct {
	Op      string // "set", "delete"
	Name    string
	Members []endpoint.Member
}

// String renders a call for transcripts: "set web.example.com aws=0 gcp=100".
func (c Call) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", c.Op, c.Name)
	for _, m := range c.Members {
		fmt.Fprintf(&b, " %s=%d", m.Target, m.Weight)
	}
	return b.String()
}

type entry struct {
	owner   endpoint.Owner
	foreign bool
	ttl     time.Duration
	members []endpoint.Member
}

// Router is the fake. The zero value is not usable; call New.
type Router struct {
	caps endpoint.Capabilities

	mu    sync.Mutex
	names map[string]*entry
	calls []Call
	fails map[string]int // op → failures left
	rng   *rand.Rand
	conns map[string]map[string]int
}

// New returns an empty weighted router.
func New() *Router {
	return &Router{caps: endpoint.Capabilities{Weighted: true, HostNames: true}, names: map[string]*entry{},
		fails: map[string]int{}, rng: rand.New(rand.NewPCG(1, 2)), conns: map[string]map[string]int{}}
}

var _ endpoint.Router = (*Router)(nil)

func (r *Router) Type() string                        { return "fake" }
func (r *Router) Capabilities() endpoint.Capabilities { return r.caps }

// SetCapabilities replaces what the router says it can do (weights off: members of weight > 0 answered alike).
func (r *Router) SetCapabilities(c endpoint.Capabilities) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caps = c
}

// Plant puts a record berth did not write at name.
func (r *Router) Plant(name string, addresses ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[key(name)] = &entry{foreign: true, members: []endpoint.Member{{Target: "(foreign)", Addresses: addresses, Weight: 1}}}
}

// FailNext makes the next n calls of op ("get", "set", "delete") fail with a transient error.
func (r *Router) FailNext(op string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails[op] = n
}

// ErrInjected is the error of a FailNext fault.
var ErrInjected = errors.New("fake router: injected fault")

func (r *Router) fail(op string) error {
	if r.fails[op] > 0 {
		r.fails[op]--
		return fmt.Errorf("%s: %w", op, ErrInjected)
	}
	return nil
}

func key(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func (r *Router) check(owner endpoint.Owner, name string) (*entry, error) {
	e, ok := r.names[key(name)]
	if !ok {
		return nil, nil
	}
	if e.foreign || e.owner != owner {
		return nil, fmt.Errorf("%s: %w", name, endpoint.ErrNotOwned)
	}
	return e, nil
}

func (r *Router) Get(ctx context.Context, owner endpoint.Owner, name string) (*endpoint.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail("get"); err != nil {
		return nil, err
	}
	e, err := r.check(owner, name)
	if err != nil || e == nil {
		return nil, err
	}
	return &endpoint.Record{Name: key(name), TTL: e.ttl, Members: cloneMembers(e.members)}, nil
}

func (r *Router) Set(ctx context.Context, owner endpoint.Owner, name string, ttl time.Duration, members []endpoint.Member) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail("set"); err != nil {
		return err
	}
	if err := endpoint.CheckMembers(members, r.caps.HostNames); err != nil {
		return err
	}
	e, err := r.check(owner, name)
	if err != nil {
		return err
	}
	ms := cloneMembers(members)
	if e != nil && e.ttl == ttl && slices.EqualFunc(e.members, ms, sameMember) {
		return nil
	}
	r.names[key(name)] = &entry{owner: owner, ttl: ttl, members: ms}
	r.calls = append(r.calls, Call{Op: "set", Name: key(name), Members: cloneMembers(ms)})
	return nil
}

func (r *Router) Delete(ctx context.Context, owner endpoint.Owner, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail("delete"); err != nil {
		return err
	}
	e, err := r.check(owner, name)
	if err != nil || e == nil {
		return err
	}
	delete(r.names, key(name))
	r.calls = append(r.calls, Call{Op: "delete", Name: key(name)})
	return nil
}

// Names lists the names of instance (endpoint.Lister).
func (r *Router) Names(ctx context.Context, instance string) (map[string]endpoint.Owner, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]endpoint.Owner{}
	for n, e := range r.names {
		if !e.foreign && e.owner.Instance == instance {
			out[n] = e.owner
		}
	}
	return out, nil
}

// SetConnections sets the open connections the router reports for a member of name (endpoint.Drainer); it also
// turns Capabilities.Connections on.
func (r *Router) SetConnections(name, target string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caps.Connections = true
	if r.conns[key(name)] == nil {
		r.conns[key(name)] = map[string]int{}
	}
	r.conns[key(name)][target] = n
}

// Connections implements endpoint.Drainer.
func (r *Router) Connections(ctx context.Context, owner endpoint.Owner, name string) (map[string]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.check(owner, name); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for t, n := range r.conns[key(name)] {
		out[t] = n
	}
	return out, nil
}

// Calls returns the changing calls so far, and forgets them when reset.
func (r *Router) Calls(reset bool) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.calls)
	if reset {
		r.calls = nil
	}
	return out
}

// Members returns what name serves now (nil when nothing).
func (r *Router) Members(name string) []endpoint.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.names[key(name)]; ok {
		return cloneMembers(e.members)
	}
	return nil
}

// Lookup is what one client gets for name now: the target of a member chosen by weight (members of weight > 0
// alike when the router has no weights), "" when the name serves nothing.
func (r *Router) Lookup(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.names[key(name)]
	if !ok || len(e.members) == 0 {
		return ""
	}
	sum := 0
	for _, m := range e.members {
		if r.caps.Weighted {
			sum += m.Weight
		} else if m.Weight > 0 {
			sum++
		}
	}
	if sum == 0 {
		return e.members[r.rng.IntN(len(e.members))].Target
	}
	x := r.rng.IntN(sum)
	for _, m := range e.members {
		w := m.Weight
		if !r.caps.Weighted && w > 0 {
			w = 1
		}
		if x < w {
			return m.Target
		}
		x -= w
	}
	return e.members[len(e.members)-1].Target
}

func cloneMembers(ms []endpoint.Member) []endpoint.Member {
	out := make([]endpoint.Member, len(ms))
	for i, m := range ms {
		m.Addresses = slices.Clone(m.Addresses)
		if m.Watch != nil {
			w := *m.Watch
			m.Watch = &w
		}
		out[i] = m
	}
	return out
}

func sameMember(a, b endpoint.Member) bool {
	return a.Target == b.Target && a.Weight == b.Weight && slices.Equal(a.Addresses, b.Addresses) &&
		(a.Watch == nil) == (b.Watch == nil) && (a.Watch == nil || a.Watch.Kind == b.Watch.Kind && a.Watch.Port == b.Watch.Port)
}
