package swarm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/proxy"
	"github.com/berth-dev/berth/schema"
)

// Ways of publishing public ports (Provider.Publish).
const (
	// PublishIngress publishes each public port on every node through swarm's routing mesh, which needs IPVS in
	// the nodes' kernels.
	PublishIngress = "ingress"
	// PublishHost publishes each task's port in host mode at a port the engine picks on its node, and serves the
	// public port from a TCP proxy in the berth process that forwards to the ready tasks (as the Docker provider
	// does): no IPVS is needed.
	PublishHost = "host"
)

// DefaultPublicAddress is where the proxies of PublishHost listen unless Provider.PublicAddress says otherwise.
const DefaultPublicAddress = "0.0.0.0"

// LabelPublicPorts is the service label of PublishHost naming each public port as "hostPort:port/protocol"
// (comma-separated): its tasks publish it at ports of the engine's choosing, and berth's proxy serves the host port.
const LabelPublicPorts = "berth.dev/public-ports"

// detectPublish chooses how public ports are published on the engine at daemonHost: ingress unless the engine runs
// on this machine (a local socket, or a loopback address) and this kernel has no IPVS, which the routing mesh needs.
// An engine elsewhere is assumed to have it (berth cannot look at its kernel).
func detectPublish(daemonHost string, root fs.FS) string {
	if !localEngine(daemonHost) || hasIPVS(root) {
		return PublishIngress
	}
	return PublishHost
}

// localEngine tells whether the engine address names this machine.
func localEngine(daemonHost string) bool {
	u, err := url.Parse(daemonHost)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix", "npipe", "":
		return true
	case "tcp", "http", "https":
		h := u.Hostname()
		ip := net.ParseIP(h)
		return h == "localhost" || ip != nil && ip.IsLoopback()
	}
	return false
}

// hasIPVS tells whether the kernel of root ("/" in production) has IPVS: loaded (/proc/net/ip_vs, /sys/module/ip_vs),
// built in, or a module the engine can load (modules.builtin or modules.dep of the running release).
func hasIPVS(root fs.FS) bool {
	for _, p := range []string{"proc/net/ip_vs", "sys/module/ip_vs"} {
		if _, err := fs.Stat(root, p); err == nil {
			return true
		}
	}
	rel, err := fs.ReadFile(root, "proc/sys/kernel/osrelease")
	if err != nil {
		return false
	}
	dir := "lib/modules/" + strings.TrimSpace(string(rel))
	for _, f := range []string{"modules.builtin", "modules.dep"} {
		fh, err := root.Open(dir + "/" + f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		found := false
		for sc.Scan() {
			name, _, _ := strings.Cut(sc.Text(), ":")
			if b := name[strings.LastIndex(name, "/")+1:]; strings.HasPrefix(b, "ip_vs.ko") {
				found = true
				break
			}
		}
		fh.Close()
		if found {
			return true
		}
	}
	return false
}

// osRoot is the file system hasIPVS reads in production.
var osRoot fs.FS = os.DirFS("/")

// hostMapping is one public port of PublishHost: served at HostPort, forwarded to the tasks' Port.
type hostMapping struct {
	HostPort, Port int
	Protocol       string
}

// formatPublicPorts is LabelPublicPorts of w's public ports, in publishing order.
func formatPublicPorts(ms []hostMapping) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%d:%d/%s", m.HostPort, m.Port, m.Protocol)
	}
	return strings.Join(parts, ",")
}

// parsePublicPorts reads LabelPublicPorts; entries it cannot read are left out.
func parsePublicPorts(s string) []hostMapping {
	var out []hostMapping
	for _, e := range strings.Split(s, ",") {
		hp, rest, ok := strings.Cut(e, ":")
		port, proto, ok2 := strings.Cut(rest, "/")
		h, err1 := strconv.Atoi(hp)
		c, err2 := strconv.Atoi(port)
		if ok && ok2 && err1 == nil && err2 == nil && h > 0 && c > 0 && proto != "" {
			out = append(out, hostMapping{HostPort: h, Port: c, Protocol: proto})
		}
	}
	return out
}

// publicMappings are the public ports of w as PublishHost serves them.
func publicMappings(w schema.Workload) []hostMapping {
	var out []hostMapping
	for _, p := range w.Ports {
		if p.Public {
			out = append(out, hostMapping{HostPort: publishedPort(p), Port: p.Port, Protocol: protocolOf(p)})
		}
	}
	slices.SortFunc(out, func(a, b hostMapping) int { return a.HostPort - b.HostPort })
	return out
}

func protocolOf(p schema.Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

// served is one public port's proxy and the workload it serves.
type served struct {
	owner wkey
	px    *proxy.Proxy
}

// claimPorts makes sure a proxy listens on each public port of k, before anything changes, so a taken port fails
// early and clearly.
func (p *Provider) claimPorts(k wkey, ms []hostMapping) error {
	p.pxMu.Lock()
	defer p.pxMu.Unlock()
	if p.closed {
		return providers.Permanent(fmt.Errorf("swarm provider of target %q is closed", p.target))
	}
	for _, m := range ms {
		if s, ok := p.proxies[m.HostPort]; ok {
			if s.owner != k {
				return providers.Permanent(fmt.Errorf("public port %d is already served for workload %s of environment %s",
					m.HostPort, s.owner.Workload, s.owner.Environment))
			}
			continue
		}
		addr := net.JoinHostPort(p.PublicAddress, strconv.Itoa(m.HostPort))
		px, err := proxy.Listen(addr, p.log.With("env", k.Environment, "workload", k.Workload))
		if err != nil {
			return fmt.Errorf("public port %s is not available%s: %w", addr, takenHint(err), err)
		}
		p.proxies[m.HostPort] = &served{owner: k, px: px}
	}
	return nil
}

// takenHint says, for a public port whose address is in use, what may hold it and what to set: on one host, the
// proxies of two berth targets (a Docker and a Swarm target running one workload during a migration) can share a
// host port only at two distinct publicAddress values, neither a wildcard.
func takenHint(err error) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	return " (in use by another process, or by the proxy of another berth target on this host: give each target " +
		"a publicAddress of its own, not a wildcard)"
}

// releasePorts closes k's proxies whose host port is not in keep (all of them when keep is empty).
func (p *Provider) releasePorts(k wkey, keep []hostMapping) {
	p.pxMu.Lock()
	var closing []*proxy.Proxy
	for hp, s := range p.proxies {
		if s.owner == k && !slices.ContainsFunc(keep, func(m hostMapping) bool { return m.HostPort == hp }) {
			closing = append(closing, s.px)
			delete(p.proxies, hp)
		}
	}
	p.pxMu.Unlock()
	for _, px := range closing {
		px.Close()
	}
}

// route sets the backends of k's proxies to the tasks ready says are, at their node's address and the port the
// engine published each one's container port at.
func (p *Provider) route(k wkey, ms []hostMapping, ts []swarm.Task, ready func(swarm.Task) bool, nodeAddr func(string) string) {
	for _, m := range ms {
		var bs []proxy.Backend
		for _, t := range ts {
			if !liveDesired(t) || t.Status.State != swarm.TaskStateRunning || !ready(t) {
				continue
			}
			if addr := taskAddr(t, m.Port, nodeAddr); addr != "" {
				bs = append(bs, proxy.Backend{ID: t.ID, Addr: addr})
			}
		}
		p.pxMu.Lock()
		s, ok := p.proxies[m.HostPort]
		p.pxMu.Unlock()
		if ok && s.owner == k {
			s.px.Set(bs)
		}
	}
}

// taskAddr is where the task's container port answers when published in host mode: its node's address and the
// port the engine published it at (PortStatus), or "" when it has none yet.
func taskAddr(t swarm.Task, port int, nodeAddr func(string) string) string {
	for _, pc := range t.Status.PortStatus.Ports {
		if pc.PublishMode == swarm.PortConfigPublishModeHost && int(pc.TargetPort) == port && pc.PublishedPort != 0 &&
			pc.Protocol != swarm.PortConfigProtocolUDP {
			host := nodeAddr(t.NodeID)
			if host == "" {
				return ""
			}
			return net.JoinHostPort(host, strconv.Itoa(int(pc.PublishedPort)))
		}
	}
	return ""
}

// publicHost is the address endpoints of PublishHost report: PublicAddress, 127.0.0.1 for a wildcard.
func (p *Provider) publicHost() string {
	if ip := net.ParseIP(p.PublicAddress); p.PublicAddress == "" || ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return p.PublicAddress
}

// hostEndpoints are the endpoints of a PublishHost service: each public port of LabelPublicPorts at the proxy's
// address, once a task runs.
func hostEndpoints(svc swarm.Service, ts []swarm.Task, host string) []providers.Endpoint {
	running := slices.ContainsFunc(ts, func(t swarm.Task) bool {
		return liveDesired(t) && t.Status.State == swarm.TaskStateRunning
	})
	if !running {
		return nil
	}
	ms := parsePublicPorts(svc.Spec.Labels[LabelPublicPorts])
	slices.SortStableFunc(ms, func(a, b hostMapping) int { return a.Port - b.Port })
	var out []providers.Endpoint
	for _, m := range ms {
		out = append(out, providers.Endpoint{Port: m.Port, Address: net.JoinHostPort(host, strconv.Itoa(m.HostPort))})
	}
	return out
}

// syncPorts serves the public ports of every PublishHost service of this instance and target from what runs: a
// proxy for each (claimed when missing: after a restart of berth), its backends the ready tasks; proxies of
// services gone are closed. Workloads with an Apply or Delete in flight are left alone.
func (p *Provider) syncPorts(ctx context.Context) error {
	match := map[string]string{providers.LabelTarget: p.target}
	if p.instance != "" {
		match[providers.LabelInstance] = p.instance
	}
	svcs, err := p.services(ctx, match)
	if err != nil {
		return err
	}
	nodeAddr := p.nodeAddrs(ctx)
	seen := map[wkey]bool{}
	for _, svc := range svcs {
		l := svc.Spec.Labels
		k := wkey{l[providers.LabelInstance], l[providers.LabelEnvironment], l[providers.LabelTarget], l[providers.LabelWorkload]}
		ms := parsePublicPorts(l[LabelPublicPorts])
		if k.Workload == "" || len(ms) == 0 || isCanary(l) || p.busy(k) {
			seen[k] = true
			continue
		}
		seen[k] = true
		if err := p.claimPorts(k, ms); err != nil {
			p.log.DebugContext(ctx, "sync: public port not served", "env", k.Environment, "workload", k.Workload, "err", err)
			continue
		}
		ts, err := p.tasks(ctx, svc.ID)
		if err != nil {
			continue
		}
		health := probeEach(ctx, svc, ts, nodeAddr)
		p.route(k, ms, ts, func(t swarm.Task) bool {
			pr, checked := health[t.ID]
			return !checked || pr.State == "healthy"
		}, nodeAddr)
	}
	p.pxMu.Lock()
	var gone []wkey
	for _, s := range p.proxies {
		if !seen[s.owner] && p.inflight[s.owner] == 0 {
			gone = append(gone, s.owner)
		}
	}
	p.pxMu.Unlock()
	for _, k := range gone {
		p.releasePorts(k, nil)
	}
	return nil
}

// begin marks k as having an Apply or Delete in flight (the sync leaves its proxies alone); end undoes it.
func (p *Provider) begin(k wkey) {
	p.pxMu.Lock()
	p.inflight[k]++
	p.pxMu.Unlock()
}

func (p *Provider) end(k wkey) {
	p.pxMu.Lock()
	p.inflight[k]--
	if p.inflight[k] <= 0 {
		delete(p.inflight, k)
	}
	p.pxMu.Unlock()
}

func (p *Provider) busy(k wkey) bool {
	p.pxMu.Lock()
	defer p.pxMu.Unlock()
	return p.inflight[k] > 0
}
