package swarm

import (
	"context"
	"errors"
	"fmt"
	"sort"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// List returns every workload owner runs on this target, found by the services' ownership labels and read from
// each service's own spec (see readBack); the replicas are the tasks swarm means to run; the endpoints are the
// ports swarm published (see endpoints). A service not attached to the environment network (removed, or detached
// by hand) has it Missing.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	if err := p.negotiate(ctx); err != nil {
		return nil, err
	}
	svcs, err := p.services(ctx, map[string]string{
		providers.LabelInstance: owner.Instance, providers.LabelEnvironment: owner.Environment,
		providers.LabelTarget: target,
	})
	if err != nil {
		return nil, err
	}
	var out []providers.Observed
	if len(svcs) == 0 {
		return out, nil
	}
	netID, err := p.findNetwork(ctx, owner)
	if err != nil && !errors.Is(err, providers.ErrPermanent) {
		return nil, err
	}
	for _, svc := range svcs {
		k := wkey{owner.Instance, owner.Environment, target, svc.Spec.Labels[providers.LabelWorkload]}
		if k.Workload == "" || !k.owns(svc.Spec.Labels) || isCanary(svc.Spec.Labels) {
			continue
		}
		ts, err := p.tasks(ctx, svc.ID)
		if cerrdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		// One probe per running task, with the check of the spec it runs: a List is a look, not a wait.
		o := observe(svc, ts, target, probeEach(ctx, svc, ts, p.nodeAddrs(ctx)))
		o.Endpoints = p.endpointsOf(svc, ts, k)
		if !attached(svc.Spec, netID, NetworkName(owner)) {
			o.Missing = append(o.Missing, "network "+NetworkName(owner))
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out, nil
}

// endpointsOf are the endpoints of k's service svc with its tasks ts: in ingress mode the ports swarm published
// (see endpoints), with no Watch; in host mode those of berth's proxies (see hostEndpoints), each with the Watch by
// which berth's edge follows the tasks itself (see watchOf).
func (p *Provider) endpointsOf(svc swarm.Service, ts []swarm.Task, k wkey) []providers.Endpoint {
	if publishingOf(svc.Spec) != PublishHost {
		return endpoints(svc, nodeAddress(p.cli.DaemonHost()))
	}
	eps := hostEndpoints(svc, ts, p.publicHost())
	for i := range eps {
		eps[i].Watch = p.watches.Intern(watchOf(p.engine, k, labelHealth(svc.Spec.Labels), eps[i].Port))
	}
	return eps
}

// services lists the services carrying every label of match.
func (p *Provider) services(ctx context.Context, match map[string]string) ([]swarm.Service, error) {
	f := filters.NewArgs()
	for k, v := range match {
		f.Add("label", k+"="+v)
	}
	var svcs []swarm.Service
	err := p.call(ctx, "list services", func(ctx context.Context) error {
		var err error
		svcs, err = p.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
		return err
	})
	return svcs, err
}

// observe builds the observation of one service from its tasks and the health berth probed of its running tasks
// that have an HTTP or TCP check (by task ID; a task absent has none).
func observe(svc swarm.Service, ts []swarm.Task, target string, health map[string]probeResult) providers.Observed {
	o := providers.Observed{
		Workload: svc.Spec.Labels[providers.LabelWorkload],
		Target:   target,
		Spec:     readBack(svc),
	}
	if fps := providers.ParseSecretsRecord(svc.Spec.Labels[LabelSecrets]).Fingerprints; len(fps) > 0 {
		o.SecretFingerprints = fps
	}
	live := make([]swarm.Task, 0, len(ts))
	for _, t := range ts {
		if liveDesired(t) {
			live = append(live, t)
		}
	}
	sort.Slice(live, func(i, j int) bool {
		if live[i].Slot != live[j].Slot {
			return live[i].Slot < live[j].Slot
		}
		return live[i].ID < live[j].ID
	})
	votes := map[string]int{}
	for _, t := range live {
		r := replica(svc.Spec.Name, t)
		if pr, checked := health[t.ID]; checked && r.Running {
			r.Health = pr.State
			if r.Health == "" {
				r.Health = "starting"
			}
		}
		votes[r.SpecHash]++
		o.Replicas = append(o.Replicas, r)
	}
	o.SpecHash = majority(votes, svc.Spec.Labels[providers.LabelSpecHash])
	return o
}

// majority is the hash most replicas run; a tie goes to the service's own hash, then to the smaller hash. Without
// replicas it is the service's hash.
func majority(votes map[string]int, service string) string {
	best := service
	for h, n := range votes {
		switch b := votes[best]; {
		case n > b, n == b && best != service && (h == service || h < best):
			best = h
		}
	}
	return best
}

// replica describes one task. A task with a command health check is "starting" until healthy, then "running"
// (an HTTP or TCP check is berth's: observe sets that health).
func replica(service string, t swarm.Task) providers.Replica {
	r := providers.Replica{
		ID:       t.ID,
		Name:     fmt.Sprintf("%s.%d.%s", service, t.Slot, t.ID),
		SpecHash: taskHash(t),
		State:    string(t.Status.State),
	}
	checked := false
	if cs := t.Spec.ContainerSpec; cs != nil && cs.Healthcheck != nil && len(cs.Healthcheck.Test) > 0 &&
		cs.Healthcheck.Test[0] != "NONE" {
		checked = true
	}
	switch t.Status.State {
	case swarm.TaskStateRunning:
		r.Running = true
		if checked {
			r.Health = "healthy"
		}
	case swarm.TaskStateStarting:
		if checked && t.Status.ContainerStatus != nil && t.Status.ContainerStatus.ContainerID != "" {
			r.Running, r.Health = true, "starting"
		}
	}
	return r
}

// Delete removes the workload's service when it carries owner's labels for target, waits until its containers on
// the manager's engine are gone, and removes the environment network once no owned service uses it.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	if err := p.negotiate(ctx); err != nil {
		return err
	}
	k := wkey{owner.Instance, owner.Environment, target, workload}
	log := p.log.With("env", owner.Environment, "workload", workload)
	p.begin(k)
	defer p.end(k)
	svcs, err := p.services(ctx, k.labels())
	if err != nil {
		return err
	}
	for _, svc := range svcs {
		if !k.owns(svc.Spec.Labels) {
			continue
		}
		err := p.call(ctx, "remove service "+svc.Spec.Name, func(ctx context.Context) error {
			return p.cli.ServiceRemove(ctx, svc.ID)
		})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("workload %s: %w", workload, err)
		}
		log.InfoContext(ctx, "service removed", "service", svc.Spec.Name)
	}
	p.releasePorts(k, nil)
	if err := p.waitContainersGone(ctx, k); err != nil {
		return fmt.Errorf("workload %s: %w", workload, err)
	}
	if err := p.removeSecrets(ctx, k, nil, log); err != nil {
		return fmt.Errorf("workload %s: secret objects: %w", workload, err)
	}
	p.removeNetworkIfUnused(ctx, owner)
	return nil
}

// waitContainersGone waits until the engine shows no container of the workload: swarm stops and removes a removed
// service's tasks asynchronously. Only the manager's own node is visible here.
func (p *Provider) waitContainersGone(ctx context.Context, k wkey) error {
	f := filters.NewArgs()
	for l, v := range k.labels() {
		f.Add("label", l+"="+v)
	}
	for {
		var cs []container.Summary
		err := p.call(ctx, "list containers", func(ctx context.Context) error {
			var err error
			cs, err = p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
			return err
		})
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("waiting for %d containers of the removed service to go: %w", len(cs), err)
		}
	}
}

// removeNetworkIfUnused removes the environment network once no service of (instance, environment) is left. A
// failure only leaves an empty network behind, so it is logged, not returned.
func (p *Provider) removeNetworkIfUnused(ctx context.Context, o providers.Owner) {
	p.netMu.Lock()
	defer p.netMu.Unlock()
	svcs, err := p.services(ctx, map[string]string{providers.LabelInstance: o.Instance, providers.LabelEnvironment: o.Environment})
	if err != nil || len(svcs) > 0 {
		return
	}
	id, err := p.findNetwork(ctx, o)
	if err != nil || id == "" {
		return
	}
	err = p.call(ctx, "remove network", func(ctx context.Context) error { return p.cli.NetworkRemove(ctx, id) })
	if err != nil && !cerrdefs.IsNotFound(err) {
		p.log.WarnContext(ctx, "remove network", "env", o.Environment, "network", NetworkName(o), "err", err)
	}
}

// watchOf is how berth's edge follows the replicas behind container port port of workload k (see
// providers.NewWatch).
func watchOf(engine string, k wkey, h *schema.HealthCheck, port int) *providers.Watch {
	return providers.NewWatch(providers.WatchTasks, engine, k.labels(), h, port)
}
