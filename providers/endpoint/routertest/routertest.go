// Package routertest is the conformance suite every endpoint.Router runs: read back, weights as clients see
// them, ownership (another owner's name, a record berth did not write), idempotency and deletion.
//
// A router's test gives a Harness: how to build the router against its emulator (or edge), names and member
// addresses to use, how a client sees a name (Lookup: what each of n lookups or connections answered), and how to
// plant a record berth does not own.
package routertest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// Harness is what a router's test provides.
type Harness struct {
	// New builds a router on a fresh emulator (or edge) for one case.
	New func(t *testing.T) endpoint.Router
	// Name is the i-th stable name a case may use (a DNS name in the emulator's zone, or a free host:port).
	Name func(t *testing.T, i int) string
	// Addresses are the addresses of the i-th member (IPs, or host:port of a backend that answers with its own
	// address for the edge).
	Addresses func(t *testing.T, i int) []string
	// HostName is a load balancer's host name a member may have; "" when the router serves none.
	HostName string
	// Lookup answers what n clients would get from name now, one answer each (an IP, a host name, the edge
	// backend's address). For routers without weights an answer lists every address served, so Lookup returns
	// them all, n times over at most.
	Lookup func(t *testing.T, name string, n int) []string
	// Foreign plants a record at name that berth did not write (a hand-made A record; for the edge, a route of
	// another instance).
	Foreign func(t *testing.T, r endpoint.Router, name string)
}

// TTL is the TTL the cases set.
const TTL = 60 * time.Second

var (
	owner = endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	other = endpoint.Owner{Instance: "berth", Environment: "staging", Workload: "web"}
)

// Run runs every case as a subtest.
func Run(t *testing.T, h Harness) {
	t.Run("absent", func(t *testing.T) { absent(t, h) })
	t.Run("set-get", func(t *testing.T) { setGet(t, h) })
	t.Run("weights", func(t *testing.T) { weights(t, h) })
	t.Run("idempotent", func(t *testing.T) { idempotent(t, h) })
	t.Run("other-owner", func(t *testing.T) { otherOwner(t, h) })
	t.Run("foreign-record", func(t *testing.T) { foreign(t, h) })
	t.Run("delete", func(t *testing.T) { deleteName(t, h) })
	t.Run("bad-member", func(t *testing.T) { badMember(t, h) })
	if h.HostName != "" {
		t.Run("host-name", func(t *testing.T) { hostName(t, h) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func absent(t *testing.T, h Harness) {
	r := h.New(t)
	rec, err := r.Get(ctx(t), owner, h.Name(t, 0))
	if err != nil || rec != nil {
		t.Fatalf("Get of a name never set = %+v, %v; want nil, nil", rec, err)
	}
}

func set(t *testing.T, r endpoint.Router, name string, ms ...endpoint.Member) {
	t.Helper()
	if err := r.Set(ctx(t), owner, name, TTL, ms); err != nil {
		t.Fatalf("Set %s %+v: %v", name, ms, err)
	}
}

func setGet(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	a := endpoint.Member{Target: "aws", Addresses: h.Addresses(t, 0), Weight: endpoint.MaxWeight}
	set(t, r, name, a)
	rec, err := r.Get(ctx(t), owner, name)
	if err != nil || rec == nil {
		t.Fatalf("Get after Set = %+v, %v", rec, err)
	}
	if rec.TTL != TTL && !r.Capabilities().Connections {
		t.Errorf("TTL reads back %v, want %v", rec.TTL, TTL)
	}
	m, ok := rec.Member("aws")
	if !ok || !slices.Equal(sorted(m.Addresses), sorted(a.Addresses)) || m.Weight != a.Weight {
		t.Fatalf("member reads back %+v (found %v), want %+v", m, ok, a)
	}
	if len(rec.Members) != 1 {
		t.Fatalf("members %+v, want one", rec.Members)
	}
	got := h.Lookup(t, name, 20)
	for _, g := range got {
		if !slices.Contains(a.Addresses, g) {
			t.Fatalf("a client got %s; only %v is served", g, a.Addresses)
		}
	}
	if len(got) == 0 {
		t.Fatalf("no client got an answer for %s", name)
	}
}

func weights(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	a0, a1 := h.Addresses(t, 0), h.Addresses(t, 1)
	set(t, r, name, endpoint.Member{Target: "aws", Addresses: a0, Weight: 50},
		endpoint.Member{Target: "gcp", Addresses: a1, Weight: 50})
	got := h.Lookup(t, name, 200)
	n0, n1 := count(got, a0), count(got, a1)
	if n0 == 0 || n1 == 0 || n0+n1 != len(got) {
		t.Fatalf("at 50/50, clients got %d of %v and %d of %v among %d answers", n0, a0, n1, a1, len(got))
	}
	if r.Capabilities().Weighted && (n0 < 50 || n1 < 50) {
		t.Errorf("at 50/50 of 200 lookups, %d went to aws and %d to gcp: not even", n0, n1)
	}
	if r.Capabilities().Weighted {
		set(t, r, name, endpoint.Member{Target: "aws", Addresses: a0, Weight: 90},
			endpoint.Member{Target: "gcp", Addresses: a1, Weight: 10})
		got = h.Lookup(t, name, 200)
		if n0, n1 = count(got, a0), count(got, a1); n1 == 0 || n1 > 50 || n0 < 140 {
			t.Errorf("at 90/10 of 200 lookups, %d went to aws and %d to gcp", n0, n1)
		}
	}
	set(t, r, name, endpoint.Member{Target: "aws", Addresses: a0, Weight: 0},
		endpoint.Member{Target: "gcp", Addresses: a1, Weight: endpoint.MaxWeight})
	got = h.Lookup(t, name, 100)
	if count(got, a0) != 0 || count(got, a1) == 0 {
		t.Fatalf("at 0/100, clients got %v; want only %v", got, a1)
	}
	rec, err := r.Get(ctx(t), owner, name)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := rec.Member("aws"); !ok || m.Weight != 0 {
		if r.Capabilities().Weighted {
			t.Fatalf("weight-0 member reads back %+v (found %v), want it kept with weight 0", m, ok)
		}
	}
}

func idempotent(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	ms := []endpoint.Member{{Target: "aws", Addresses: h.Addresses(t, 0), Weight: 30},
		{Target: "gcp", Addresses: h.Addresses(t, 1), Weight: 70}}
	set(t, r, name, ms...)
	set(t, r, name, ms...)
	rec, err := r.Get(ctx(t), owner, name)
	if err != nil || rec == nil || len(rec.Members) != 2 {
		t.Fatalf("after setting twice, Get = %+v, %v; want the two members", rec, err)
	}
}

func otherOwner(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	a := endpoint.Member{Target: "aws", Addresses: h.Addresses(t, 0), Weight: endpoint.MaxWeight}
	set(t, r, name, a)
	if _, err := r.Get(ctx(t), other, name); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Get by another owner: %v, want ErrNotOwned", err)
	}
	b := endpoint.Member{Target: "gcp", Addresses: h.Addresses(t, 1), Weight: endpoint.MaxWeight}
	if err := r.Set(ctx(t), other, name, TTL, []endpoint.Member{b}); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Set by another owner: %v, want ErrNotOwned", err)
	}
	if err := r.Delete(ctx(t), other, name); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Delete by another owner: %v, want ErrNotOwned", err)
	}
	for _, g := range h.Lookup(t, name, 20) {
		if !slices.Contains(a.Addresses, g) {
			t.Fatalf("after another owner's calls, a client got %s; want only %v", g, a.Addresses)
		}
	}
}

func foreign(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	h.Foreign(t, r, name)
	before := h.Lookup(t, name, 10)
	if _, err := r.Get(ctx(t), owner, name); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Get of a name with a record berth did not write: %v, want ErrNotOwned", err)
	}
	a := endpoint.Member{Target: "aws", Addresses: h.Addresses(t, 0), Weight: endpoint.MaxWeight}
	if err := r.Set(ctx(t), owner, name, TTL, []endpoint.Member{a}); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Set over a record berth did not write: %v, want ErrNotOwned", err)
	}
	if err := r.Delete(ctx(t), owner, name); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Delete of a record berth did not write: %v, want ErrNotOwned", err)
	}
	after := h.Lookup(t, name, 10)
	if !slices.Equal(sorted(before), sorted(after)) || len(after) == 0 {
		t.Errorf("the foreign record answered %v before and %v after berth's calls; want it untouched", before, after)
	}
}

func deleteName(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	set(t, r, name, endpoint.Member{Target: "aws", Addresses: h.Addresses(t, 0), Weight: endpoint.MaxWeight},
		endpoint.Member{Target: "gcp", Addresses: h.Addresses(t, 1), Weight: 0})
	if err := r.Delete(ctx(t), owner, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if rec, err := r.Get(ctx(t), owner, name); err != nil || rec != nil {
		t.Fatalf("Get after Delete = %+v, %v; want nil, nil", rec, err)
	}
	if got := h.Lookup(t, name, 5); len(got) != 0 {
		t.Fatalf("after Delete, clients still got %v", got)
	}
	if err := r.Delete(ctx(t), owner, name); err != nil {
		t.Fatalf("Delete of what is gone: %v", err)
	}
	// The name is free again: another owner can take it.
	if err := r.Set(ctx(t), other, name, TTL, []endpoint.Member{{Target: "aws", Addresses: h.Addresses(t, 0), Weight: 1}}); err != nil {
		t.Fatalf("Set by another owner after Delete: %v", err)
	}
}

func badMember(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	for _, ms := range [][]endpoint.Member{
		{{Target: "aws", Addresses: h.Addresses(t, 0), Weight: endpoint.MaxWeight + 1}},
		{{Target: "aws", Weight: 1}},
		{{Target: "aws", Addresses: h.Addresses(t, 0), Weight: 1}, {Target: "aws", Addresses: h.Addresses(t, 1), Weight: 1}},
	} {
		err := r.Set(ctx(t), owner, name, TTL, ms)
		if !errors.Is(err, endpoint.ErrBadMember) || !errors.Is(err, providers.ErrPermanent) {
			t.Errorf("Set %+v: %v; want a permanent ErrBadMember", ms, err)
		}
	}
	if rec, err := r.Get(ctx(t), owner, name); err != nil || rec != nil {
		t.Errorf("after refused Sets, Get = %+v, %v; want nothing written", rec, err)
	}
}

func hostName(t *testing.T, h Harness) {
	r := h.New(t)
	name := h.Name(t, 0)
	lb := endpoint.Member{Target: "aws", Addresses: []string{h.HostName}, Weight: 50}
	ip := endpoint.Member{Target: "gcp", Addresses: h.Addresses(t, 1), Weight: 50}
	set(t, r, name, lb, ip)
	got := h.Lookup(t, name, 100)
	// A router without weights may serve a host name alone (a CNAME record set holds one record): then clients
	// get one of the two, never anything else.
	if n := count(got, lb.Addresses) + count(got, ip.Addresses); n != len(got) || n == 0 ||
		(r.Capabilities().Weighted && (count(got, lb.Addresses) == 0 || count(got, ip.Addresses) == 0)) {
		t.Fatalf("a host-name member and an IP member at 50/50: clients got %v", got)
	}
	rec, err := r.Get(ctx(t), owner, name)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := rec.Member("aws"); !ok || !slices.Equal(m.Addresses, lb.Addresses) {
		t.Fatalf("host-name member reads back %+v (found %v)", m, ok)
	}
	lb.Weight, ip.Weight = endpoint.MaxWeight, 0
	set(t, r, name, lb, ip)
	if got := h.Lookup(t, name, 50); count(got, ip.Addresses) != 0 || len(got) == 0 {
		t.Fatalf("at 100/0 for the host name, clients got %v", got)
	}
}

func count(got, of []string) int {
	n := 0
	for _, g := range got {
		if slices.Contains(of, g) {
			n++
		}
	}
	return n
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
