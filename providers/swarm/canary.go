package swarm

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
)

// A canary proves a new spec's HTTP or TCP check before the workload's service is updated to it. Swarm does not
// see a check berth probes: its start-first update stops an old task as soon as the new one's container runs, so
// a version whose check fails would replace the old one before berth's prober could tell. Instead, a rollout of a
// probed workload first runs the new spec as a one-task service of its own (the canary), on the same networks
// without the workload's alias (nothing resolves the workload's name to it) and without its public ports (only
// the checked port, in host mode, for berth's probe); once its task passes the check, the canary is removed and
// the service updated. A canary that fails its check, crashes, or is still not healthy when Apply's context
// ends fails Apply with the service untouched. Command checks need none: the engine runs them, and swarm counts a
// task running (and stops an old one) only once the engine's HEALTHCHECK says healthy.

// LabelCanary marks a canary service and its containers; its value is the name of the service it is the canary
// of. List, the background sync and Environments never count a canary; Apply and Delete remove any they find.
const LabelCanary = "berth.dev/canary"

// isCanary tells whether service labels are a canary's.
func isCanary(labels map[string]string) bool {
	_, ok := labels[LabelCanary]
	return ok
}

// CanaryName is the name of the canary service of a workload: its service's name with "-canary", cut like a
// service name (cutName) when over swarm's 63 characters.
func CanaryName(o providers.Owner, workload string) string {
	name := ServiceName(o, workload) + "-canary"
	if len(name) <= maxNameLen {
		return name
	}
	return cutName(name, o.Instance+"\x00"+o.Environment+"\x00"+workload+"\x00canary", maxNameLen)
}

// needsCanary tells whether a rollout of d is proved by a canary first: its check is one berth probes, and it
// runs replicas.
func needsCanary(d providers.Desired) bool {
	return probed(d.Workload.Health) && d.Workload.Replicas > 0
}

// canarySpec is spec (the workload's service spec) made into its canary named name: one replica, the ownership
// labels, the spec hash, LabelHealth and LabelCanary; the same task template (image, command, env, secrets,
// resources) with LabelCanary on its containers; the same networks without aliases; no published port but the
// checked one, in host mode at a port the engine picks.
func canarySpec(spec swarm.ServiceSpec, k wkey, name string) swarm.ServiceSpec {
	c := spec
	labels := k.labels()
	labels[providers.LabelSpecHash] = spec.Labels[providers.LabelSpecHash]
	labels[LabelCanary] = spec.Name
	if h := spec.Labels[LabelHealth]; h != "" {
		labels[LabelHealth] = h
	}
	c.Annotations = swarm.Annotations{Name: name, Labels: labels}
	if spec.TaskTemplate.ContainerSpec != nil {
		cs := *spec.TaskTemplate.ContainerSpec
		cs.Labels = maps.Clone(cs.Labels)
		if cs.Labels == nil {
			cs.Labels = map[string]string{}
		}
		cs.Labels[LabelCanary] = spec.Name
		c.TaskTemplate.ContainerSpec = &cs
	}
	c.TaskTemplate.Networks = nil
	for _, n := range spec.TaskTemplate.Networks {
		c.TaskTemplate.Networks = append(c.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: n.Target,
			DriverOpts: n.DriverOpts})
	}
	one := uint64(1)
	c.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}
	c.UpdateConfig, c.RollbackConfig = nil, nil
	c.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
	if h := labelHealth(labels); h != nil {
		c.EndpointSpec.Ports = []swarm.PortConfig{{Name: healthPortName, Protocol: swarm.PortConfigProtocolTCP,
			TargetPort: uint32(checkPort(h)), PublishMode: swarm.PortConfigPublishModeHost}}
	}
	return c
}

// canary runs spec's canary until its task passes d's check: nil then. It fails when the task fails the check
// (Retries probes in a row), when FailedTasks of its tasks failed with none running, or when ctx ends first. The
// canary is removed whatever the outcome (with a context of its own when ctx ended). auth is the service's
// X-Registry-Auth ("" for none; checked already).
func (p *Provider) canary(ctx context.Context, k wkey, spec swarm.ServiceSpec, d providers.Desired, auth string,
	old string, log *slog.Logger) (err error) {
	name := CanaryName(d.Owner, d.Workload.Name)
	cs := canarySpec(spec, k, name)
	start := time.Now()
	var id string
	err = p.call(ctx, "create canary service "+name, func(ctx context.Context) error {
		r, err := p.cli.ServiceCreate(ctx, cs, swarm.ServiceCreateOptions{EncodedRegistryAuth: auth,
			QueryRegistry: auth != ""})
		if cerrdefs.IsConflict(err) {
			// A canary of ours left by a call retried meanwhile: removeCanaries ran before, so it is this one.
			svc, found, ierr := p.inspect(ctx, name)
			if ierr != nil || !found || !isCanary(svc.Spec.Labels) || !k.owns(svc.Spec.Labels) {
				return err
			}
			id = svc.ID
			return nil
		}
		id = r.ID
		return err
	})
	if err != nil {
		return fmt.Errorf("canary of spec %s: %w", d.SpecHash, err)
	}
	log.InfoContext(ctx, "canary created", "service", name, "hash", d.SpecHash)
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CallTimeout)
		defer cancel()
		rerr := p.call(rctx, "remove canary service "+name, func(ctx context.Context) error {
			return p.cli.ServiceRemove(ctx, id)
		})
		if rerr != nil && !cerrdefs.IsNotFound(rerr) {
			// The next Apply or Delete removes it (removeCanaries); List never counts it.
			log.WarnContext(rctx, "remove canary", "service", name, "err", rerr)
			return
		}
		log.InfoContext(rctx, "canary removed", "service", name, "hash", d.SpecHash, "passed", err == nil,
			"took", time.Since(start).Round(time.Millisecond))
	}()

	one := d
	one.Workload.Replicas = 1
	chk := newChecker(d.Workload.Health, p.nodeAddrs(ctx), time.Now)
	last := ""
	late := func(err error) error { // ctx ended before the canary passed
		cause := fmt.Errorf("its task did not pass its %s health check (%s) in time: %w", d.Workload.Health.Kind(),
			describeCheck(d.Workload.Health), err)
		if last != "" {
			cause = fmt.Errorf("%w; last probe: %s", cause, last)
		}
		return &CanaryError{Hash: d.SpecHash, Kept: old, Service: spec.Name, Cause: cause}
	}
	for {
		svc, found, err := p.inspect(ctx, id)
		if err == nil && !found {
			err = fmt.Errorf("canary service %s of spec %s was removed while it was awaited", name, d.SpecHash)
		}
		var ts []swarm.Task
		if err == nil {
			ts, err = p.tasks(ctx, id)
		}
		if err != nil && ctx.Err() != nil {
			return late(ctx.Err())
		}
		if err != nil {
			return err
		}
		health := probeTasks(ctx, chk, ts, d.SpecHash)
		for _, r := range health {
			if r.Err != "" {
				last = r.Err
			}
		}
		done, err := progress(svc, ts, one, p.FailedTasks, health)
		switch {
		case err != nil: // the check failed (an *unhealthyError), or the task keeps failing
			return &CanaryError{Hash: d.SpecHash, Kept: old, Service: spec.Name, Cause: err}
		case done:
			log.InfoContext(ctx, "canary passed its health check", "service", name, "hash", d.SpecHash)
			return nil
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return late(err)
		}
	}
}

// CanaryError is a new spec that failed in its canary: the service was not updated and keeps running spec Kept.
type CanaryError struct {
	Hash, Kept, Service string
	Cause               error
}

func (e *CanaryError) Error() string {
	return fmt.Sprintf("spec %s failed in its canary (service %s left at spec %s): %v", e.Hash, e.Service, e.Kept,
		e.Cause)
}

func (e *CanaryError) Unwrap() error { return e.Cause }

// removeCanaries removes every canary service of k: left by an Apply that ended before it could remove its own
// (berth stopped). A canary never serves, so it goes without waiting for its tasks.
func (p *Provider) removeCanaries(ctx context.Context, k wkey, log *slog.Logger) error {
	svcs, err := p.services(ctx, k.labels())
	if err != nil {
		return err
	}
	for _, svc := range svcs {
		if !isCanary(svc.Spec.Labels) || !k.owns(svc.Spec.Labels) {
			continue
		}
		err := p.call(ctx, "remove canary service "+svc.Spec.Name, func(ctx context.Context) error {
			return p.cli.ServiceRemove(ctx, svc.ID)
		})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove canary service %s: %w", svc.Spec.Name, err)
		}
		log.InfoContext(ctx, "leftover canary removed", "service", svc.Spec.Name)
	}
	return nil
}
