package edge

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	swarmprov "github.com/berth-dev/berth/providers/swarm"
)

// watchCallTimeout bounds each call of a watch to its engine.
const watchCallTimeout = 10 * time.Second

// Docker is what watches need of a Docker engine; *client.Client is one.
type Docker interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	NodeInspectWithRaw(ctx context.Context, nodeID string) (swarm.Node, []byte, error)
	DaemonHost() string
	Close() error
}

var _ Docker = (*client.Client)(nil)

// DockerClient is the default Options.Docker: the Docker SDK's client of engine (DOCKER_HOST syntax), or of the
// environment's engine (DOCKER_HOST, DOCKER_CERT_PATH, ...) for "", with the API version negotiated.
func DockerClient(engine string) (Docker, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if engine != "" {
		opts = append(opts, client.WithHost(engine))
	}
	return client.NewClientWithOpts(opts...)
}

// watchJob is one member whose watch to look at.
type watchJob struct {
	route string
	m     *member
	key   string
	w     providers.Watch
}

// watchAll looks once at every watch and makes each member's addresses what it found; new addresses are probed
// at once (they get connections once a probe passes). A watch that fails keeps the member's addresses.
func (s *Server) watchAll(ctx context.Context) {
	var jobs []watchJob
	s.mu.Lock()
	for _, r := range s.routes {
		for _, m := range r.members {
			if m.spec.Watch != nil {
				jobs = append(jobs, watchJob{route: r.name, m: m, key: m.watchKey, w: *m.spec.Watch})
			}
		}
	}
	s.mu.Unlock()
	type found struct {
		addrs []string
		err   error
	}
	looked := map[string]found{} // one look per distinct watch
	var probes []probeJob
	for _, j := range jobs {
		f, ok := looked[j.key]
		if !ok {
			f.addrs, f.err = s.look(ctx, j.w)
			looked[j.key] = f
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if j.m.watchKey != j.key { // the member was set again meanwhile
			s.mu.Unlock()
			continue
		}
		if f.err != nil {
			if j.m.watchErr == nil || j.m.watchErr.Error() != f.err.Error() {
				s.log.Warn("edge watch failed; keeping the member's addresses", "name", j.route, "target", j.m.spec.Target, "err", f.err)
			}
			j.m.watchErr = f.err
			s.mu.Unlock()
			continue
		}
		j.m.watchErr = nil
		before := j.m.hostports()
		j.m.watched = true
		added := j.m.setAddrs(f.addrs, false)
		if !slices.Equal(before, j.m.hostports()) {
			s.log.Info("edge watch: member addresses", "name", j.route, "target", j.m.spec.Target, "addresses", f.addrs)
		}
		for _, a := range added {
			probes = append(probes, probeJob{route: j.route, target: j.m.spec.Target, a: a, path: j.w.HealthPath})
		}
		s.mu.Unlock()
	}
	s.probe(ctx, probes)
}

func (m *member) hostports() []string {
	out := make([]string, 0, len(m.addrs))
	for _, a := range m.addrs {
		out = append(out, a.hostport)
	}
	return out
}

// look asks w's engine where its replicas answer, sorted.
func (s *Server) look(ctx context.Context, w providers.Watch) ([]string, error) {
	cli, err := s.docker(w.Engine)
	if err != nil {
		return nil, err
	}
	var addrs []string
	switch w.Kind {
	case providers.WatchContainers:
		addrs, err = containerAddrs(ctx, cli, w)
	case providers.WatchTasks:
		addrs, err = taskAddrs(ctx, cli, w)
	default:
		err = fmt.Errorf("unknown watch kind %q", w.Kind)
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// docker is the (cached) client of engine.
func (s *Server) docker(engine string) (Docker, error) {
	s.dockerMu.Lock()
	defer s.dockerMu.Unlock()
	if c, ok := s.dockers[engine]; ok {
		return c, nil
	}
	c, err := s.opts.Docker(engine)
	if err != nil {
		return nil, fmt.Errorf("docker engine %q: %w", engine, err)
	}
	s.dockers[engine] = c
	return c, nil
}

func labelFilters(labels map[string]string) filters.Args {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
}

// containerAddrs: the running containers carrying w.Labels, at the host port w.Port/tcp is published on, on
// 127.0.0.1 or a wildcard address (then the engine's host: 127.0.0.1 for a local engine).
func containerAddrs(ctx context.Context, cli Docker, w providers.Watch) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	cs, err := cli.ContainerList(cctx, container.ListOptions{Filters: labelFilters(w.Labels)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	host := engineHost(cli.DaemonHost())
	var out []string
	for _, c := range cs {
		if c.State != container.StateRunning {
			continue
		}
		for _, p := range c.Ports {
			if int(p.PrivatePort) != w.Port || p.Type != "tcp" || p.PublicPort == 0 {
				continue
			}
			switch ip := net.ParseIP(p.IP); {
			case p.IP == "127.0.0.1":
				out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.PublicPort))))
			case p.IP == "" || ip != nil && ip.IsUnspecified():
				out = append(out, net.JoinHostPort(host, strconv.Itoa(int(p.PublicPort))))
			}
		}
	}
	return out, nil
}

// taskAddrs: the running tasks of the swarm services carrying w.Labels, at their node's address and the port
// their container port w.Port is published on in host mode.
func taskAddrs(ctx context.Context, cli Docker, w providers.Watch) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	svcs, err := cli.ServiceList(cctx, swarm.ServiceListOptions{Filters: labelFilters(w.Labels)})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	fallback := engineHost(cli.DaemonHost())
	nodes := map[string]string{}
	nodeAddr := func(id string) (string, error) {
		if a, ok := nodes[id]; ok {
			return a, nil
		}
		cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
		n, _, err := cli.NodeInspectWithRaw(cctx, id)
		cancel()
		if err != nil {
			return "", fmt.Errorf("inspect node %s: %w", id, err)
		}
		a := n.Status.Addr
		if ip := net.ParseIP(a); ip == nil || ip.IsUnspecified() || (ip.IsLoopback() && fallback != "127.0.0.1") {
			a = fallback
		}
		nodes[id] = a
		return a, nil
	}
	var out []string
	for _, svc := range svcs {
		if _, canary := svc.Spec.Labels[swarmprov.LabelCanary]; canary {
			// A rollout's canary carries the workload's labels too, for a moment: it is not a replica.
			continue
		}
		f := filters.NewArgs(filters.Arg("service", svc.ID), filters.Arg("desired-state", "running"))
		cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
		ts, err := cli.TaskList(cctx, swarm.TaskListOptions{Filters: f})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list tasks of %s: %w", svc.Spec.Name, err)
		}
		for _, t := range ts {
			if t.Status.State != swarm.TaskStateRunning || t.Status.PortStatus.Ports == nil {
				continue
			}
			for _, pc := range t.Status.PortStatus.Ports {
				if pc.PublishMode != swarm.PortConfigPublishModeHost || int(pc.TargetPort) != w.Port || pc.PublishedPort == 0 ||
					pc.Protocol == swarm.PortConfigProtocolUDP || pc.Protocol == swarm.PortConfigProtocolSCTP {
					continue
				}
				host, err := nodeAddr(t.NodeID)
				if err != nil {
					return nil, err
				}
				out = append(out, net.JoinHostPort(host, strconv.Itoa(int(pc.PublishedPort))))
			}
		}
	}
	return out, nil
}

// engineHost is the host of a tcp:// engine address, 127.0.0.1 for a local engine (a unix socket, a wildcard).
func engineHost(daemonHost string) string {
	u, err := url.Parse(daemonHost)
	host := ""
	if err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") {
		host = u.Hostname()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return host
}
