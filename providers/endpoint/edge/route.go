package edge

import (
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/providers/docker/proxy"
	"github.com/berth-dev/berth/providers/endpoint"
)

// route is one stable name: its listener, owner and members. Its fields are guarded by Server.mu.
type route struct {
	name      string
	owner     endpoint.Owner
	ttl       time.Duration
	members   []*member
	ln        net.Listener // nil while the address could not be opened
	listenErr error
	conns     map[net.Conn]struct{} // clients' and members' connections
	killed    bool                  // closeConns ran: connections still dialing give up
	// wg counts the accept loop and the connections being handled.
	wg sync.WaitGroup
}

// member is one target's copy behind a route.
type member struct {
	spec     endpoint.Member
	addrs    []*address
	next     int // round-robin cursor over the ready addresses
	conns    int
	watchKey string // the watch the addresses come from ("" for none)
	watched  bool   // the watch has answered: addrs are what it found
	watchErr error
}

// address is one host:port of a member and what the probes said of it.
type address struct {
	hostport string
	given    bool // the controller gave it: ready until a probe says otherwise
	passed   bool // a probe passed since it was added
	fails    int  // probes failed in a row
}

func (a *address) ready() bool { return a.fails < unreadyAfter && (a.given || a.passed) }

func newRoute(name string, owner endpoint.Owner, ttl time.Duration) *route {
	return &route{name: name, owner: owner, ttl: ttl, conns: map[net.Conn]struct{}{}}
}

func (r *route) specs() []endpoint.Member {
	out := make([]endpoint.Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m.spec)
	}
	return out
}

func (r *route) sameMembers(ms []endpoint.Member) bool {
	return reflect.DeepEqual(r.specs(), slices.Clone(ms)) || (len(ms) == 0 && len(r.members) == 0)
}

// stopListening closes the listener: no new connections. Server.mu is held.
func (r *route) stopListening() {
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
}

// closeConns closes every open connection of r. Server.mu is held.
func (r *route) closeConns() {
	r.killed = true
	for c := range r.conns {
		c.Close()
	}
}

func watchKey(m endpoint.Member) string {
	if m.Watch == nil {
		return ""
	}
	w := m.Watch
	keys := make([]string, 0, len(w.Labels))
	for k := range w.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte(w.Kind + "\x00" + w.Engine + "\x00" + w.HealthPath + "\x00")
	b = append(b, byte(w.Port>>8), byte(w.Port))
	for _, k := range keys {
		b = append(b, 0)
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, w.Labels[k]...)
	}
	return string(b)
}

// setMembers makes r's members specs, keeping what the edge knows of members and addresses that stay (open
// connections, probe results, a watch's addresses while the watch is the same). Server.mu is held, or r is not
// shared yet.
func (s *Server) setMembers(r *route, specs []endpoint.Member) {
	old := map[string]*member{}
	for _, m := range r.members {
		old[m.spec.Target] = m
	}
	ms := make([]*member, 0, len(specs))
	for _, spec := range specs {
		m := old[spec.Target]
		if m == nil {
			m = &member{}
		}
		key := watchKey(spec)
		keep := spec.Watch != nil && key == m.watchKey && m.watched
		m.spec = spec
		if !keep {
			m.watchKey, m.watched, m.watchErr = key, false, nil
			m.setAddrs(spec.Addresses, true)
		}
		ms = append(ms, m)
	}
	r.members = ms
}

// setAddrs makes the member's addresses hps, keeping the state of those it had; new ones are given (ready at
// once) or found by a watch (ready once a probe passes). It returns the new ones.
func (m *member) setAddrs(hps []string, given bool) []*address {
	had := map[string]*address{}
	for _, a := range m.addrs {
		had[a.hostport] = a
	}
	var out, added []*address
	seen := map[string]bool{}
	for _, hp := range hps {
		if seen[hp] {
			continue
		}
		seen[hp] = true
		a := had[hp]
		if a == nil {
			a = &address{hostport: hp}
			added = append(added, a)
		}
		if given {
			a.given = true
		}
		out = append(out, a)
	}
	m.addrs = out
	return added
}

// startListening makes r accept on ln. Server.mu is held, or r is not shared yet.
func (s *Server) startListening(r *route, ln net.Listener) {
	r.ln = ln
	r.wg.Add(1)
	go s.accept(r, ln)
}

func (s *Server) accept(r *route, ln net.Listener) {
	defer r.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("edge accept", "name", r.name, "err", err, "retry", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-s.closing:
				return
			}
		}
		backoff = 0
		s.mu.Lock()
		if r.ln != ln {
			s.mu.Unlock()
			c.Close() // closed meanwhile
			continue
		}
		r.conns[c] = struct{}{}
		r.wg.Add(1)
		s.mu.Unlock()
		go s.handle(r, c)
	}
}

// candidate is one address to try for a connection.
type candidate struct {
	m    *member
	addr string
}

// candidates are the addresses to try for a new connection of r, in order: the ready addresses of the members
// with weight > 0, the members in a random order by weight and each member's addresses from its round-robin
// cursor; then the ready addresses of the weight-0 members (better a draining copy than a failed connection);
// then the addresses of weight > 0 members the probes gave up on, as a last resort.
func (s *Server) candidates(r *route) []candidate {
	s.mu.Lock()
	defer s.mu.Unlock()
	var weighted, idle []*member
	total := 0
	for _, m := range r.members {
		if m.spec.Weight > 0 {
			weighted = append(weighted, m)
			total += m.spec.Weight
		} else {
			idle = append(idle, m)
		}
	}
	var out, last []candidate
	first := true
	for len(weighted) > 0 {
		n := s.rnd.IntN(total)
		i := 0
		for ; n >= weighted[i].spec.Weight; i++ {
			n -= weighted[i].spec.Weight
		}
		m := weighted[i]
		weighted = slices.Delete(weighted, i, i+1)
		total -= m.spec.Weight
		ready, unready := m.rotation()
		if first && len(ready) > 0 {
			m.next++
			first = false
		}
		out = append(out, ready...)
		last = append(last, unready...)
	}
	for _, m := range idle {
		ready, _ := m.rotation()
		out = append(out, ready...)
	}
	return append(out, last...)
}

// rotation is the member's ready addresses from its cursor, and the others.
func (m *member) rotation() (ready, unready []candidate) {
	n := len(m.addrs)
	for i := range n {
		a := m.addrs[(m.next+i)%n]
		c := candidate{m: m, addr: a.hostport}
		if a.ready() {
			ready = append(ready, c)
		} else {
			unready = append(unready, c)
		}
	}
	return ready, unready
}

// handle forwards one accepted connection to the first candidate that answers.
func (s *Server) handle(r *route, client net.Conn) {
	defer r.wg.Done()
	defer s.untrack(r, client)
	for _, c := range s.candidates(r) {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.DialTimeout)
		bc, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
		cancel()
		if err != nil {
			s.log.Debug("edge dial failed, trying the next address", "name", r.name, "target", c.m.spec.Target, "address", c.addr, "err", err)
			continue
		}
		s.mu.Lock()
		if r.killed {
			s.mu.Unlock()
			bc.Close()
			return
		}
		r.conns[bc] = struct{}{}
		c.m.conns++
		s.mu.Unlock()
		proxy.Splice(client, bc)
		s.mu.Lock()
		c.m.conns--
		s.mu.Unlock()
		s.untrack(r, bc)
		return
	}
	s.log.Warn("edge: no member answered", "name", r.name)
}

func (s *Server) untrack(r *route, c net.Conn) {
	s.mu.Lock()
	delete(r.conns, c)
	s.mu.Unlock()
	c.Close()
}

func sortedRoutes(m map[string]*route) []*route {
	out := make([]*route, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// viewLocked is r as the admin API shows it. Server.mu is held.
func (s *Server) viewLocked(r *route) Route {
	v := Route{Name: r.name, Owner: r.owner, TTL: formatTTL(r.ttl), Listening: r.ln != nil, Members: []MemberStatus{}}
	if r.listenErr != nil {
		v.ListenError = r.listenErr.Error()
	}
	for _, m := range r.members {
		ms := MemberStatus{Member: m.spec, Connections: m.conns, Resolved: []AddressStatus{}}
		if m.watchErr != nil {
			ms.WatchError = m.watchErr.Error()
		}
		for _, a := range m.addrs {
			ms.Resolved = append(ms.Resolved, AddressStatus{Address: a.hostport, Ready: a.ready(), Fails: a.fails})
		}
		v.Members = append(v.Members, ms)
	}
	return v
}
