package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// List returns every workload owned by owner on target, found by the ownership labels and read from the
// containers' own fields (see live). HTTP and TCP health is probed once per running replica; command health is the
// engine's status.
//
// Spec is one replica's live workload, with Replicas the number of containers: the first replica (by index) whose
// fields no longer match what berth made it with (LabelLiveHash), so a hand edit of one replica shows even when
// the others are intact; when none was edited, the first replica of the majority spec hash. Endpoints are the
// public ports of Spec as berth's proxy serves them (see endpoints).
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	cs, err := p.listContainers(ctx, map[string]string{
		providers.LabelInstance:    owner.Instance,
		providers.LabelEnvironment: owner.Environment,
		providers.LabelTarget:      target,
	}, true)
	if err != nil {
		return nil, err
	}
	groups := map[string][]container.InspectResponse{}
	for _, c := range cs {
		if w := c.Config.Labels[providers.LabelWorkload]; w != "" {
			groups[w] = append(groups[w], c)
		}
	}
	out := make([]providers.Observed, 0, len(groups))
	for name, group := range groups {
		o, err := p.observe(ctx, name, target, group)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out, nil
}

// observed is one container as List sees it.
type observed struct {
	replica providers.Replica
	index   int
	spec    schema.Workload
	edited  bool // its live fields no longer hash to LabelLiveHash
	labels  map[string]string
}

// observe builds one workload's Observed from its containers (oldest first).
func (p *Provider) observe(ctx context.Context, name, target string, group []container.InspectResponse) (providers.Observed, error) {
	o := providers.Observed{Workload: name, Target: target}
	count := map[string]int{}
	latest := map[string]int{} // hash → position of its newest container
	seen := make([]observed, 0, len(group))
	for i, c := range group {
		hash := c.Config.Labels[providers.LabelSpecHash]
		count[hash]++
		latest[hash] = i
		spec, err := p.liveOf(ctx, c)
		if err != nil {
			return o, fmt.Errorf("workload %s: %w", name, err)
		}
		r := providers.Replica{
			ID:       c.ID,
			Name:     strings.TrimPrefix(c.Name, "/"),
			SpecHash: hash,
			State:    c.State.Status,
			Running:  c.State.Running,
		}
		if c.State.Running {
			r.Health = healthOf(spec.Health).probe(ctx, c)
		}
		seen = append(seen, observed{replica: r, index: replicaIndex(c.Config.Labels), spec: spec,
			edited: c.Config.Labels[LabelLiveHash] != liveHash(spec), labels: c.Config.Labels})
	}
	for h, n := range count {
		if o.SpecHash == "" || n > count[o.SpecHash] || (n == count[o.SpecHash] && latest[h] > latest[o.SpecHash]) {
			o.SpecHash = h
		}
	}
	sort.SliceStable(seen, func(a, b int) bool {
		if seen[a].index != seen[b].index {
			return seen[a].index < seen[b].index
		}
		return seen[a].replica.Name < seen[b].replica.Name
	})
	pick := -1
	for i, s := range seen {
		o.Replicas = append(o.Replicas, s.replica)
		switch {
		case s.edited && (pick < 0 || !seen[pick].edited):
			pick = i
		case pick < 0 && s.replica.SpecHash == o.SpecHash:
			pick = i
		}
	}
	o.Spec = seen[pick].spec
	o.Spec.Replicas = len(seen)
	o.Endpoints = endpoints(o.Spec, group, endpointHost(p.publicAddress))
	for i := range o.Endpoints {
		o.Endpoints[i].Watch = p.watches.Intern(watchOf(p.engine, keyOf(group[0].Config.Labels), o.Spec.Health, o.Endpoints[i].Port))
	}
	if fps := providers.ParseSecretsRecord(seen[pick].labels[LabelSecrets]).Fingerprints; len(fps) > 0 {
		o.SecretFingerprints = fps
	}
	return o, nil
}

// endpoints are where the public ports of spec answer: berth's proxy listens at host on each public host port and
// forwards to the replicas. A port is left out until a running replica can be served on it: its LabelPublicPorts
// names the mapping and the engine published its container port on 127.0.0.1.
func endpoints(spec schema.Workload, cs []container.InspectResponse, host string) []providers.Endpoint {
	var out []providers.Endpoint
	for _, port := range spec.Ports {
		if !port.Public || port.Protocol != "tcp" || port.HostPort <= 0 {
			continue
		}
		m := publicMapping{HostPort: port.HostPort, ContainerPort: port.Port}
		serves := slices.ContainsFunc(cs, func(c container.InspectResponse) bool {
			if c.State == nil || !c.State.Running || c.Config == nil {
				return false
			}
			pub, err := parsePublicPorts(c.Config.Labels[LabelPublicPorts])
			if err != nil || !slices.Contains(pub, m) {
				return false
			}
			_, ok := publishedPort(c, port.Port)
			return ok
		})
		if serves {
			out = append(out, providers.Endpoint{Port: port.Port, Address: net.JoinHostPort(host, strconv.Itoa(port.HostPort))})
		}
	}
	return out
}

// endpointHost is the host clients reach the proxies at: the publicAddress setting, 127.0.0.1 for a wildcard.
func endpointHost(publicAddress string) string {
	if ip := net.ParseIP(publicAddress); publicAddress == "" || ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return publicAddress
}

// Environments implements providers.EnvironmentLister: one ContainerList of every state, filtered on the instance
// and target labels, read from the listing's labels alone (see environments).
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	if instance == "" || target == "" {
		return nil, providers.Permanent(errors.New("environments: instance and target are required"))
	}
	if err := p.negotiate(ctx); err != nil {
		return nil, err
	}
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+instance),
		filters.Arg("label", providers.LabelTarget+"="+target))
	cctx, cancel := callCtx(ctx)
	sums, err := p.cli.ContainerList(cctx, container.ListOptions{All: true, Filters: f})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return environments(sums), nil
}

// environments groups containers by LabelEnvironment, sorted by name: each environment once, its Preview from
// previewOf and its Head the LabelHead of its newest container that has one.
func environments(sums []container.Summary) []providers.EnvironmentRef {
	sums = slices.Clone(sums)
	sort.SliceStable(sums, func(i, j int) bool { return sums[i].Created < sums[j].Created })
	by := map[string]*providers.EnvironmentRef{}
	for _, s := range sums {
		env := s.Labels[providers.LabelEnvironment]
		if env == "" {
			continue
		}
		r := by[env]
		if r == nil {
			r = &providers.EnvironmentRef{Name: env}
			by[env] = r
		}
		if n := providers.PreviewOf(env, s.Labels); n != 0 {
			r.Preview = n
		}
		if h := providers.HeadOf(s.Labels); h != "" {
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

// watchOf is how berth's edge follows the replicas behind container port port of workload k (see
// providers.NewWatch).
func watchOf(engine string, k wkey, h *schema.HealthCheck, port int) *providers.Watch {
	return providers.NewWatch(providers.WatchContainers, engine, k.labels(), h, port)
}
