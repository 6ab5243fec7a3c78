package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/proxy"
	"github.com/berth-dev/berth/schema"
)

// Apply converges one workload to d, make-before-break, one replica at a time. See providers.Provider.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	k := wkey{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name}
	if err := p.checkDesired(d); err != nil {
		return providers.Permanent(fmt.Errorf("workload %s: %w", k.Workload, err))
	}
	if err := p.begin(k); err != nil {
		return err
	}
	defer p.end(k)
	log := p.log.With("env", k.Environment, "workload", k.Workload)

	pub := publicPorts(d.Workload)
	if err := p.claimPorts(k, pub); err != nil {
		return err
	}
	img, err := p.ensureImage(ctx, log, d.Workload.Image, d.ImageAuth)
	if err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	// want is the workload as a container made for d reads back: a container of d.SpecHash that reads otherwise
	// was changed by hand, and is replaced.
	want := readBack(d.Workload, img)
	want.Replicas = 0
	if _, err := p.ensureNetwork(ctx, k, d.Owner.Preview); err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	cs, err := p.listContainers(ctx, k.labels(), true)
	if err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	byIndex := map[int][]container.InspectResponse{}
	var surplus []container.InspectResponse
	for _, c := range cs {
		if i := replicaIndex(c.Config.Labels); i >= 0 && i < d.Workload.Replicas {
			byIndex[i] = append(byIndex[i], c)
		} else {
			surplus = append(surplus, c)
		}
	}
	// Scale down first, highest index first.
	sort.SliceStable(surplus, func(i, j int) bool {
		return replicaIndex(surplus[i].Config.Labels) > replicaIndex(surplus[j].Config.Labels)
	})
	for _, c := range surplus {
		if err := p.retire(ctx, log, k, c); err != nil {
			return fmt.Errorf("workload %s: scale down: %w", k.Workload, err)
		}
	}
	h := healthOf(d.Workload.Health)
	for i := range d.Workload.Replicas {
		if err := p.convergeReplica(ctx, log, k, d, want, h, i, byIndex[i]); err != nil {
			return fmt.Errorf("workload %s replica %d: %w", k.Workload, i, err)
		}
	}
	p.releasePorts(k, pub)
	return nil
}

func (p *Provider) checkDesired(d providers.Desired) error {
	switch {
	case d.Owner.Instance == "" || d.Owner.Environment == "":
		return errors.New("owner instance and environment are required")
	case d.Target != p.target:
		return fmt.Errorf("target %q: this provider serves target %q", d.Target, p.target)
	case d.Workload.Name == "":
		return errors.New("workload name is required")
	case d.SpecHash == "":
		return errors.New("spec hash is required")
	case d.Workload.Image == "":
		return errors.New("image is required")
	case d.Workload.Replicas < 0:
		return fmt.Errorf("replicas: %d is negative", d.Workload.Replicas)
	}
	if probs := p.Validate(d.Workload); len(probs) > 0 {
		return fmt.Errorf("%s: %s", probs[0].Field, probs[0].Message)
	}
	return checkSecrets(d)
}

// convergeReplica makes replica i one ready container of d.SpecHash whose live fields read as want, replacing what
// is there make-before-break.
func (p *Provider) convergeReplica(ctx context.Context, log *slog.Logger, k wkey, d providers.Desired, want schema.Workload,
	h health, i int, cands []container.InspectResponse) error {
	var keep *container.InspectResponse
	var old []container.InspectResponse
	for _, c := range cands {
		if keep == nil && c.Config.Labels[providers.LabelSpecHash] == d.SpecHash && c.State.Running {
			got, err := p.liveOf(ctx, c)
			if err != nil {
				return err
			}
			if liveHash(got) != liveHash(want) {
				log.InfoContext(ctx, "replica changed by hand, replacing it", "replica", i, "container", c.Name)
				old = append(old, c)
				continue
			}
			ready, err := p.waitReady(ctx, h, c.ID)
			if err == nil {
				keep = &ready
				continue
			}
			if ctx.Err() != nil {
				return err
			}
			log.WarnContext(ctx, "replica not ready, replacing it", "replica", i, "container", c.Name, "err", err)
		}
		old = append(old, c)
	}
	if keep == nil {
		// A container holding the deterministic name goes out of the way first: renamed while it runs (changed by
		// hand, or not ready), so it leaves only once the new replica is ready; removed at once when stopped.
		name := containerName(k, d.SpecHash, i)
		rest := old[:0]
		for _, c := range old {
			if c.Name == name {
				if c.State.Running {
					aside := fmt.Sprintf("%s-replaced-%.12s", name, c.ID)
					if err := p.rename(ctx, c.ID, aside); err != nil {
						return err
					}
					c.Name = aside
					rest = append(rest, c)
					continue
				}
				if err := p.retire(ctx, log, k, c); err != nil {
					return err
				}
				continue
			}
			rest = append(rest, c)
		}
		old = rest
		ci, err := p.startReplica(ctx, log, k, d, want, h, i, name)
		if err != nil {
			return err
		}
		keep = &ci
	}
	if err := p.addBackend(k, *keep); err != nil {
		return err
	}
	for _, c := range old {
		if err := p.retire(ctx, log, k, c); err != nil {
			return err
		}
	}
	return nil
}

// rename gives a container another name.
func (p *Provider) rename(ctx context.Context, id, name string) error {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	if err := p.cli.ContainerRename(cctx, id, name); err != nil {
		return fmt.Errorf("rename container %.12s to %s: %w", id, name, err)
	}
	return nil
}

// startReplica creates (or finds, after a crash) the named container, starts it and waits until it is ready. A
// replica that does not get ready is removed, unless ctx ended (the next Apply reuses it).
func (p *Provider) startReplica(ctx context.Context, log *slog.Logger, k wkey, d providers.Desired, want schema.Workload,
	h health, i int, name string) (container.InspectResponse, error) {
	id, err := p.createContainer(ctx, k, d, want, h, i, name)
	if err != nil {
		return container.InspectResponse{}, err
	}
	log.InfoContext(ctx, "replica created", "replica", i, "container", name, "spec_hash", d.SpecHash)
	cctx, cancel := callCtx(ctx)
	err = p.cli.ContainerStart(cctx, id, container.StartOptions{})
	cancel()
	var ci container.InspectResponse
	if err != nil {
		err = fmt.Errorf("start container %s: %w", name, err)
	} else {
		ci, err = p.waitReady(ctx, h, id)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.removeContainer(ctx, log, id, name)
		}
		return container.InspectResponse{}, err
	}
	log.InfoContext(ctx, "replica ready", "replica", i, "container", name)
	return ci, nil
}

func (p *Provider) createContainer(ctx context.Context, k wkey, d providers.Desired, want schema.Workload, h health, i int,
	name string) (string, error) {
	w := d.Workload
	cfg, hc, nc, err := containerConfig(k, d, want, h, i)
	if err != nil {
		return "", err
	}
	p.netUse.RLock()
	if _, err = p.ensureNetwork(ctx, k, d.Owner.Preview); err != nil {
		p.netUse.RUnlock()
		return "", err
	}
	cctx, cancel := callCtx(ctx)
	resp, err := p.cli.ContainerCreate(cctx, cfg, hc, nc, nil, name)
	cancel()
	p.netUse.RUnlock()
	if cerrdefs.IsConflict(err) {
		resp.ID, err = p.adoptByName(ctx, k, d, want, i, name)
		if err != nil {
			return "", err
		}
	}
	switch {
	case err == nil:
		// Before the start, so the process finds its files (again, for an adopted container: the crash may have
		// come between create and copy).
		if err := p.copySecretFiles(ctx, resp.ID, name, d); err != nil {
			if ctx.Err() == nil {
				p.removeContainer(ctx, p.log, resp.ID, name)
			}
			return "", err
		}
		return resp.ID, nil
	case cerrdefs.IsNotFound(err):
		return "", providers.Permanent(fmt.Errorf("create container %s: image %q: %w", name, w.Image, err))
	default:
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
}

// containerConfig is what a replica is created with.
func containerConfig(k wkey, d providers.Desired, want schema.Workload, h health, i int) (*container.Config,
	*container.HostConfig, *network.NetworkingConfig, error) {
	w := d.Workload
	labels, err := containerLabels(k, d, i, want)
	if err != nil {
		return nil, nil, nil, err
	}
	env := make([]string, 0, len(w.Env))
	for key, v := range w.Env {
		env = append(env, key+"="+v)
	}
	sort.Strings(env)
	env = append(env, secretEnv(d)...)
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, port := range w.Ports {
		proto := strings.ToLower(port.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		np := nat.Port(strconv.Itoa(port.Port) + "/" + proto)
		exposed[np] = struct{}{}
		bindings[np] = []nat.PortBinding{{HostIP: "127.0.0.1"}} // engine-chosen host port
	}
	stop := int(StopGrace / time.Second)
	netName := networkName(k.Instance, k.Environment)
	cfg := &container.Config{
		Image:        w.Image,
		Entrypoint:   w.Command,
		Cmd:          w.Args,
		Env:          env,
		Labels:       labels,
		ExposedPorts: exposed,
		Healthcheck:  h.engineHealthcheck(),
		StopTimeout:  &stop,
	}
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(netName),
		PortBindings:  bindings,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Resources: container.Resources{
			NanoCPUs: w.Resources.CPUMillis * 1_000_000,
			Memory:   w.Resources.MemoryBytes,
		},
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: {Aliases: []string{w.Name}},
	}}
	return cfg, hc, nc, nil
}

// adoptByName resolves a name conflict: the container is reused when it is ours for the same spec and replica and
// its live fields read as want.
func (p *Provider) adoptByName(ctx context.Context, k wkey, d providers.Desired, want schema.Workload, i int, name string) (string, error) {
	cctx, cancel := callCtx(ctx)
	ci, err := p.cli.ContainerInspect(cctx, name)
	cancel()
	if err != nil {
		return "", fmt.Errorf("create container %s: name taken, inspecting it: %w", name, err)
	}
	var l map[string]string
	if ci.Config != nil {
		l = ci.Config.Labels
	}
	if !k.owns(l) || l[providers.LabelSpecHash] != d.SpecHash || replicaIndex(l) != i {
		return "", providers.Permanent(fmt.Errorf("container name %s is taken by container %.12s, which berth does not own for this workload; rename or remove it", name, ci.ID))
	}
	ci.Name = strings.TrimPrefix(ci.Name, "/")
	got, err := p.liveOf(ctx, ci)
	if err != nil {
		return "", err
	}
	if liveHash(got) != liveHash(want) {
		// Changed by hand and not seen by this Apply's listing: the next attempt renames it out of the way.
		return "", fmt.Errorf("container name %s is held by replica %.12s, changed by hand since berth made it", name, ci.ID)
	}
	return ci.ID, nil
}

// waitReady waits until the container passes its health check (or runs, without one). It fails when the container
// stops, when the check fails retries times in a row after the start period, or after the check's ready timeout.
func (p *Provider) waitReady(parent context.Context, h health, id string) (container.InspectResponse, error) {
	ctx, cancel := context.WithTimeout(parent, h.readyTimeout())
	defer cancel()
	poll := min(h.interval, 250*time.Millisecond)
	fails := 0
	var lastCounted time.Time
	for {
		cctx, ccancel := callCtx(ctx)
		ci, err := p.cli.ContainerInspect(cctx, id)
		ccancel()
		if err != nil {
			return ci, fmt.Errorf("inspect container %.12s: %w", id, err)
		}
		ci.Name = strings.TrimPrefix(ci.Name, "/")
		if !ci.State.Running {
			return ci, fmt.Errorf("container %s is %s (exit code %d)", ci.Name, ci.State.Status, ci.State.ExitCode)
		}
		switch h.probe(ctx, ci) {
		case "", "healthy":
			return ci, nil
		case "unhealthy":
			if h.spec.Kind() == "command" {
				return ci, fmt.Errorf("container %s: health command reports unhealthy", ci.Name)
			}
			started, _ := time.Parse(time.RFC3339Nano, ci.State.StartedAt)
			now := time.Now()
			if now.Sub(started) >= h.startPeriod && now.Sub(lastCounted) >= h.interval {
				fails++
				lastCounted = now
				if fails >= h.retries {
					return ci, fmt.Errorf("container %s: %s health check failed %d times", ci.Name, h.spec.Kind(), fails)
				}
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			if parent.Err() != nil {
				return ci, fmt.Errorf("waiting for container %s to get ready: %w", ci.Name, parent.Err())
			}
			return ci, fmt.Errorf("container %s not ready after %s: %w", ci.Name, h.readyTimeout(), ctx.Err())
		case <-t.C:
		}
	}
}

// retire drains a container from the proxies, stops it gracefully and removes it.
func (p *Provider) retire(ctx context.Context, log *slog.Logger, k wkey, c container.InspectResponse) error {
	settle := p.drain(k, c.ID)
	defer p.undrain(c.ID)
	if wait := time.Until(settle); wait > 0 && c.State.Running {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if c.State.Running {
		timeout := int(StopGrace / time.Second)
		sctx, cancel := context.WithTimeout(ctx, StopGrace+CallTimeout)
		err := p.cli.ContainerStop(sctx, c.ID, container.StopOptions{Timeout: &timeout})
		cancel()
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("stop container %s: %w", c.Name, err)
		}
	}
	return p.removeContainer(ctx, log, c.ID, c.Name)
}

func (p *Provider) removeContainer(ctx context.Context, log *slog.Logger, id, name string) error {
	cctx, cancel := callCtx(ctx)
	err := p.cli.ContainerRemove(cctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	cancel()
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	log.InfoContext(ctx, "replica removed", "container", name)
	return nil
}

// claimPorts makes sure a proxy listens on each public port of k, before anything is created, so a taken port
// fails early with a clear error.
func (p *Provider) claimPorts(k wkey, pub []publicMapping) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	for _, m := range pub {
		if l, ok := p.listeners[m.HostPort]; ok {
			if l.owner != k {
				return providers.Permanent(fmt.Errorf("workload %s: public port %d is already served for workload %s", k.Workload, m.HostPort, l.owner))
			}
			continue
		}
		addr := net.JoinHostPort(p.publicAddress, strconv.Itoa(m.HostPort))
		px, err := proxy.Listen(addr, p.log.With("env", k.Environment, "workload", k.Workload))
		if err != nil {
			return fmt.Errorf("workload %s: public port %s is not available%s: %w", k.Workload, addr, takenHint(err), err)
		}
		p.listeners[m.HostPort] = &listener{owner: k, p: px}
	}
	return nil
}

// releasePorts closes k's proxies that are no longer among its public ports (all of them when pub is empty).
func (p *Provider) releasePorts(k wkey, pub []publicMapping) {
	want := map[int]bool{}
	for _, m := range pub {
		want[m.HostPort] = true
	}
	p.mu.Lock()
	var closing []*proxy.Proxy
	for hp, l := range p.listeners {
		if l.owner == k && !want[hp] {
			closing = append(closing, l.p)
			delete(p.listeners, hp)
		}
	}
	p.mu.Unlock()
	for _, px := range closing {
		px.Close()
	}
}

// addBackend routes k's public ports to the ready container ci.
func (p *Provider) addBackend(k wkey, ci container.InspectResponse) error {
	pub, err := parsePublicPorts(ci.Config.Labels[LabelPublicPorts])
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range pub {
		l, ok := p.listeners[m.HostPort]
		if !ok || l.owner != k {
			continue // port no longer public for k: releasePorts closes it
		}
		hp, ok := publishedPort(ci, m.ContainerPort)
		if !ok {
			return fmt.Errorf("container %s: port %d/tcp is not published on 127.0.0.1", ci.Name, m.ContainerPort)
		}
		l.p.Add(proxy.Backend{ID: ci.ID, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(hp))})
	}
	return nil
}

// drain takes a container out of every proxy of k and marks it so the sync does not put it back. It returns when the
// container may be stopped without cutting a connection that was just handed to it.
func (p *Provider) drain(k wkey, id string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining[id] = true
	var last time.Time
	for _, l := range p.listeners {
		if l.owner != k {
			continue
		}
		if t := l.p.Remove(id); t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return last
	}
	return last.Add(DrainSettle)
}

func (p *Provider) undrain(id string) {
	p.mu.Lock()
	delete(p.draining, id)
	p.mu.Unlock()
}

// Delete drains, stops and removes every container of the workload owned by owner on this target, closes its public
// ports and removes the environment's network once nothing of it is left.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	k := wkey{owner.Instance, owner.Environment, target, workload}
	if owner.Instance == "" || owner.Environment == "" || workload == "" || target == "" {
		return providers.Permanent(errors.New("delete: owner instance, environment, target and workload are required"))
	}
	if err := p.begin(k); err != nil {
		return err
	}
	defer p.end(k)
	log := p.log.With("env", k.Environment, "workload", k.Workload)
	cs, err := p.listContainers(ctx, k.labels(), true)
	if err != nil {
		return fmt.Errorf("delete workload %s: %w", workload, err)
	}
	sort.SliceStable(cs, func(i, j int) bool {
		return replicaIndex(cs[i].Config.Labels) > replicaIndex(cs[j].Config.Labels)
	})
	for _, c := range cs {
		if !k.owns(c.Config.Labels) {
			continue // label filters matched; this re-check is cheap insurance
		}
		if err := p.retire(ctx, log, k, c); err != nil {
			return fmt.Errorf("delete workload %s: %w", workload, err)
		}
	}
	p.releasePorts(k, nil)
	p.removeNetworkIfUnused(ctx, owner.Instance, owner.Environment)
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
