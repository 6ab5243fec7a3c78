package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/providers"
)

// List returns every workload owned by owner on target, from the container labels alone. HTTP and TCP health is
// probed once per running replica; command health is the engine's status. Spec is the applied workload of the
// majority spec hash, with Replicas set to the number of containers carrying that hash.
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

// observe builds one workload's Observed from its containers (oldest first).
func (p *Provider) observe(ctx context.Context, name, target string, group []container.InspectResponse) (providers.Observed, error) {
	o := providers.Observed{Workload: name, Target: target}
	count := map[string]int{}
	latest := map[string]int{} // hash → position of its newest container
	var index []int
	for i, c := range group {
		hash := c.Config.Labels[providers.LabelSpecHash]
		count[hash]++
		latest[hash] = i
		spec, err := specOf(c.Config.Labels)
		if err != nil {
			return o, fmt.Errorf("workload %s: container %s: %w", name, c.Name, err)
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
		o.Replicas = append(o.Replicas, r)
		index = append(index, replicaIndex(c.Config.Labels))
	}
	for h, n := range count {
		if o.SpecHash == "" || n > count[o.SpecHash] || (n == count[o.SpecHash] && latest[h] > latest[o.SpecHash]) {
			o.SpecHash = h
		}
	}
	for _, c := range group {
		if c.Config.Labels[providers.LabelSpecHash] == o.SpecHash {
			spec, _ := specOf(c.Config.Labels) // decoded above
			spec.Replicas = count[o.SpecHash]
			o.Spec = spec
			break
		}
	}
	order := make([]int, len(o.Replicas))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ia, ib := order[a], order[b]
		if index[ia] != index[ib] {
			return index[ia] < index[ib]
		}
		return o.Replicas[ia].Name < o.Replicas[ib].Name
	})
	sorted := make([]providers.Replica, len(order))
	for i, j := range order {
		sorted[i] = o.Replicas[j]
	}
	o.Replicas = sorted
	return o, nil
}
