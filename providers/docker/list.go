package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// List returns every workload owned by owner on target, found by the ownership labels and read from the
// containers' own fields (see live). HTTP and TCP health is probed once per running replica; command health is the
// engine's status.
//
// Spec is one replica's live workload, with Replicas the number of containers: the first replica (by index) whose
// fields no longer match what berth made it with (LabelLiveHash), so a hand edit of one replica shows even when
// the others are intact; when none was edited, the first replica of the majority spec hash.
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
	if fps := providers.ParseSecretsRecord(seen[pick].labels[LabelSecrets]).Fingerprints; len(fps) > 0 {
		o.SecretFingerprints = fps
	}
	return o, nil
}
