package swarm

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
)

// Environments implements providers.EnvironmentLister: one ServiceList filtered on the instance and target labels,
// read from the services' labels alone (see environments).
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	if instance == "" || target == "" {
		return nil, providers.Permanent(errors.New("environments: instance and target are required"))
	}
	if err := p.negotiate(ctx); err != nil {
		return nil, err
	}
	svcs, err := p.services(ctx, map[string]string{providers.LabelInstance: instance, providers.LabelTarget: target})
	if err != nil {
		return nil, err
	}
	return environments(svcs), nil
}

// environments groups services by LabelEnvironment, sorted by name: each environment once, its Preview from
// previewOf and its Head the LabelHead of its most recently updated service that has one.
func environments(svcs []swarm.Service) []providers.EnvironmentRef {
	svcs = slices.Clone(svcs)
	sort.SliceStable(svcs, func(i, j int) bool { return svcs[i].UpdatedAt.Before(svcs[j].UpdatedAt) })
	by := map[string]*providers.EnvironmentRef{}
	for _, s := range svcs {
		l := s.Spec.Labels
		env := l[providers.LabelEnvironment]
		if env == "" || isCanary(l) {
			continue
		}
		r := by[env]
		if r == nil {
			r = &providers.EnvironmentRef{Name: env}
			by[env] = r
		}
		if n := providers.PreviewOf(env, l); n != 0 {
			r.Preview = n
		}
		if h := l[providers.LabelHead]; providers.HeadOf(l) != "" {
			r.Head = h
		}
	}
	out := make([]providers.EnvironmentRef, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// endpoints are where a service's public ports answer: every port swarm published in ingress mode
// (Endpoint.Ports, filled in once swarm allocated it; a port missing there has no address yet), at host, since
// the routing mesh answers on every node at the published port. Sorted by container port, then protocol.
func endpoints(svc swarm.Service, host string) []providers.Endpoint {
	var ps []swarm.PortConfig
	for _, pc := range svc.Endpoint.Ports {
		if pc.PublishedPort != 0 && pc.TargetPort != 0 &&
			(pc.PublishMode == "" || pc.PublishMode == swarm.PortConfigPublishModeIngress) {
			ps = append(ps, pc)
		}
	}
	slices.SortStableFunc(ps, func(a, b swarm.PortConfig) int {
		if a.TargetPort != b.TargetPort {
			return int(a.TargetPort) - int(b.TargetPort)
		}
		return strings.Compare(string(a.Protocol), string(b.Protocol))
	})
	var out []providers.Endpoint
	for _, pc := range ps {
		out = append(out, providers.Endpoint{Port: int(pc.TargetPort),
			Address: net.JoinHostPort(host, strconv.Itoa(int(pc.PublishedPort)))})
	}
	return out
}

// nodeAddress is the address clients reach the routing mesh at: the manager's host when the engine is addressed
// over the network (tcp://host:port), 127.0.0.1 for a local socket or a wildcard host.
func nodeAddress(daemonHost string) string {
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
