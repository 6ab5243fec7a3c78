package docker

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/proxy"
)

// syncLoop rebuilds the proxies from the running containers at start and every SyncInterval, so public ports keep
// being served after a restart of berth without an Apply, and replicas that stop or fail their checks leave the
// rotation.
func (p *Provider) syncLoop(ctx context.Context) {
	defer close(p.syncDone)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.syncOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "proxy sync", "err", err)
		}
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(SyncInterval))
		t.Reset(SyncInterval + jitter)
	}
}

// syncOnce is one level-based pass: list this target's running containers with public ports, probe them, and set
// each public port's backends to the ready ones. Workloads with an Apply or Delete in flight, or whose Apply or
// Delete ran while this pass was looking, are left alone: Apply and Delete manage their own proxies.
func (p *Provider) syncOnce(ctx context.Context) error {
	p.mu.Lock()
	gens := make(map[wkey]uint64, len(p.gen))
	for k, g := range p.gen {
		gens[k] = g
	}
	p.mu.Unlock()

	match := map[string]string{
		providers.LabelTarget: p.target,
		LabelPublicPorts:      "",
	}
	if p.instance != "" {
		match[providers.LabelInstance] = p.instance
	}
	cs, err := p.listContainers(ctx, match, false)
	if err != nil {
		return err
	}
	routes := map[int]*route{} // by public host port
	seen := map[string]bool{}
	for _, c := range cs {
		if !c.State.Running {
			continue
		}
		k := keyOf(c.Config.Labels)
		pub, err := parsePublicPorts(c.Config.Labels[LabelPublicPorts])
		if err != nil {
			p.log.WarnContext(ctx, "container labels", "env", k.Environment, "workload", k.Workload, "container", c.Name, "err", err)
			continue
		}
		spec, err := p.liveOf(ctx, c)
		if err != nil {
			return err
		}
		seen[c.ID] = true
		h := healthOf(spec.Health)
		ready := p.syncReady(c.ID, h, h.probe(ctx, c), pub)
		for _, m := range pub {
			r := routes[m.HostPort]
			if r == nil {
				r = &route{owner: k}
				routes[m.HostPort] = r
			}
			if r.owner != k {
				p.log.WarnContext(ctx, "public port claimed by two workloads", "port", m.HostPort, "workload", k.Workload, "other", r.owner.Workload)
				continue
			}
			hp, ok := publishedPort(c, m.ContainerPort)
			if ready && ok {
				r.backends = append(r.backends, proxy.Backend{ID: c.ID, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(hp))})
			}
		}
	}

	// Closing a proxy waits for its goroutines: do it without the lock.
	for _, px := range p.setRoutes(ctx, gens, routes, seen) {
		px.Close()
	}
	return nil
}

// route is what one public port should forward to.
type route struct {
	owner    wkey
	backends []proxy.Backend
}

// setRoutes applies a sync pass's routes to the listeners and returns the proxies to close.
func (p *Provider) setRoutes(ctx context.Context, gens map[wkey]uint64, routes map[int]*route, seen map[string]bool) []*proxy.Proxy {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	for id := range p.fails {
		if !seen[id] {
			delete(p.fails, id)
		}
	}
	settled := func(k wkey) bool { return p.busy[k] == 0 && p.gen[k] == gens[k] }
	var closing []*proxy.Proxy
	for hp, l := range p.listeners {
		if _, wanted := routes[hp]; !wanted && settled(l.owner) {
			closing = append(closing, l.p)
			delete(p.listeners, hp)
		}
	}
	for hp, r := range routes {
		if !settled(r.owner) {
			continue
		}
		l := p.listeners[hp]
		if l != nil && l.owner != r.owner {
			continue // another workload holds it; its Apply reported the conflict
		}
		if l == nil {
			addr := net.JoinHostPort(p.publicAddress, strconv.Itoa(hp))
			px, err := proxy.Listen(addr, p.log.With("env", r.owner.Environment, "workload", r.owner.Workload))
			if err != nil {
				p.log.WarnContext(ctx, "public port not available", "env", r.owner.Environment, "workload", r.owner.Workload, "addr", addr, "err", err)
				continue
			}
			l = &listener{owner: r.owner, p: px}
			p.listeners[hp] = l
			p.log.InfoContext(ctx, "public port served", "env", r.owner.Environment, "workload", r.owner.Workload, "addr", addr)
		}
		var bs []proxy.Backend
		for _, b := range r.backends {
			if !p.draining[b.ID] {
				bs = append(bs, b)
			}
		}
		l.p.Set(bs)
	}
	return closing
}

// syncReady decides whether a running container belongs in the rotation: it passes its check, or it is already in
// and has failed fewer than retries probes in a row.
func (p *Provider) syncReady(id string, h health, status string, pub []publicMapping) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if status == "" || status == "healthy" {
		delete(p.fails, id)
		return true
	}
	if status == "starting" {
		return false
	}
	p.fails[id]++
	if p.fails[id] >= h.retries {
		return false
	}
	for _, m := range pub {
		if l := p.listeners[m.HostPort]; l != nil && l.p.Has(id) {
			return true
		}
	}
	return false
}
