package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/registryauth"
)

// maxSequenceRetries bounds the re-reads after a stale service Version.
const maxSequenceRetries = 8

// Apply creates or updates the workload's service and waits until Replicas tasks of d.SpecHash run (and pass their
// health check). A changed spec is a rolling start-first update (swarm starts each new task before it stops an old
// one, and rolls back on failure), for an HTTP or TCP check only once a canary of the new spec passed it (see
// canary.go); a changed replica count only scales; missing tasks are swarm's to replace.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	k := keyOf(d)
	name := ServiceName(d.Owner, d.Workload.Name)
	if err := checkName(name); err != nil {
		return err
	}
	if d.Workload.Replicas < 0 {
		return providers.Permanent(fmt.Errorf("workload %s: replicas %d: want 0 or more", d.Workload.Name, d.Workload.Replicas))
	}
	if err := checkSecrets(d); err != nil {
		return providers.Permanent(fmt.Errorf("workload %s: %w", d.Workload.Name, err))
	}
	if probs := p.Validate(d.Workload); len(probs) > 0 {
		return providers.Permanent(fmt.Errorf("workload %s: %s: %s", d.Workload.Name, probs[0].Field, probs[0].Message))
	}
	auth, err := registryauth.Encode(d.Workload.Image, d.ImageAuth)
	if err != nil {
		return providers.Permanent(fmt.Errorf("workload %s: %w", d.Workload.Name, err))
	}
	log := p.log.With("env", k.Environment, "workload", k.Workload)
	if err := p.negotiate(ctx); err != nil {
		return err
	}
	p.begin(k)
	defer p.end(k)
	var ms []hostMapping // the public ports berth's proxies serve (PublishHost)
	if p.Publish == PublishHost {
		ms = publicMappings(d.Workload)
		if err := p.claimPorts(k, ms); err != nil {
			return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
		}
	}
	netID, err := p.ensureNetwork(ctx, d.Owner)
	if err != nil {
		return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
	}
	spec, err := publishSpec(d, netID, p.UpdateMonitor, p.Publish)
	if err != nil {
		return providers.Permanent(err)
	}
	if len(d.Workload.Files) > 0 {
		// The files go to the image's user; an image the manager does not have leaves them root's.
		user, _, err := p.imageUser(ctx, d.Workload.Image)
		if err != nil {
			return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
		}
		uid, gid, err := fileOwner(user)
		if err != nil {
			return providers.Permanent(fmt.Errorf("workload %s: files: %w", d.Workload.Name, err))
		}
		setFileOwner(&spec, uid, gid)
	}
	// The values of a rotation are new objects, made before the update that refers to them.
	ids, err := p.ensureSecrets(ctx, d, log)
	if err != nil {
		return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
	}
	setSecretIDs(&spec, ids)
	if err := p.removeCanaries(ctx, k, log); err != nil {
		return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
	}
	id, err := p.converge(ctx, k, spec, netID, d, auth, log)
	if err != nil {
		return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
	}
	if err := p.wait(ctx, k, id, d, ms); err != nil {
		return fmt.Errorf("workload %s: %w", d.Workload.Name, err)
	}
	p.releasePorts(k, ms) // ports no longer public, or all of them after a switch to the routing mesh
	// The old values' objects go once every task runs the new ones (the service's previous spec, kept for a
	// rollback, may still hold one: the engine then refuses, and the next Apply or Delete tries again).
	if err := p.removeSecrets(ctx, k, referencedSecrets(spec), log); err != nil {
		return fmt.Errorf("workload %s: secret objects: %w", d.Workload.Name, err)
	}
	log.InfoContext(ctx, "workload converged", "service", spec.Name, "replicas", d.Workload.Replicas, "hash", d.SpecHash)
	return nil
}

// converge makes the service say spec: creates it, updates it with the current Version (re-reading after a
// sequence conflict) when its hash label, its live fields or its network differ, scales it when only the count
// differs, or leaves it when it already says it. It returns the service ID.
//
// auth is the X-Registry-Auth of Desired.ImageAuth ("" for none). With one, the image is first looked up in its
// registry through the manager (checkPull: a wrong credential or an unknown image fails here, before the service
// changes), and the service is created or updated with it and QueryRegistry: the manager pins the tag's digest
// (and the image's platforms) unless the reference has one, and keeps the credential with the service for the
// nodes' pulls (`docker service create --with-registry-auth`). Without one, an update of the spec sends an empty
// credential, which replaces the one the manager holds (it would keep it otherwise). A scaling-only update sends
// none: the manager keeps the credential it has, for the tasks it adds.
func (p *Provider) converge(ctx context.Context, k wkey, spec swarm.ServiceSpec, netID string, d providers.Desired,
	auth string, log *slog.Logger) (string, error) {
	checked, canaried := false, false
	check := func() error {
		if auth == "" || checked {
			return nil
		}
		checked = true
		return p.checkPull(ctx, spec.TaskTemplate.ContainerSpec.Image, auth)
	}
	for range maxSequenceRetries {
		svc, found, err := p.inspect(ctx, spec.Name)
		if err != nil {
			return "", err
		}
		if !found {
			if err := check(); err != nil {
				return "", err
			}
			var resp swarm.ServiceCreateResponse
			conflict := false
			err := p.call(ctx, "create service "+spec.Name, func(ctx context.Context) error {
				r, err := p.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: auth,
					QueryRegistry: auth != ""})
				if cerrdefs.IsConflict(err) {
					conflict = true // made meanwhile (by a retried call of ours, or someone else): read it again
					return nil
				}
				resp = r
				return err
			})
			if err != nil {
				return "", err
			}
			if conflict {
				continue
			}
			for _, w := range resp.Warnings {
				log.DebugContext(ctx, "service create warning", "service", spec.Name, "warning", w)
			}
			log.InfoContext(ctx, "service created", "service", spec.Name, "hash", d.SpecHash)
			return resp.ID, nil
		}
		if !k.owns(svc.Spec.Labels) {
			return "", providers.Permanent(fmt.Errorf("service %s exists but is not owned by berth instance %q "+
				"environment %q target %q: not adopted", spec.Name, k.Instance, k.Environment, k.Target))
		}
		var next swarm.ServiceSpec
		opts := swarm.ServiceUpdateOptions{}
		rollout := svc.Spec.Labels[providers.LabelSpecHash] != d.SpecHash
		drifted := !rollout && (liveHash(readBack(svc)) != liveHash(normalize(d.Workload)) ||
			!attached(svc.Spec, netID, NetworkName(d.Owner)) || publishingOf(svc.Spec) != publishingOf(spec))
		switch {
		case rollout || drifted:
			// The whole spec, whatever was changed by hand (the hash label stays when someone edits a field); service
			// labels and networks of someone else's are carried over.
			next = spec
			next.Labels = maps.Clone(spec.Labels)
			for l, v := range svc.Spec.Labels {
				if _, ours := next.Labels[l]; !ours && !strings.HasPrefix(l, "berth.dev/") {
					next.Labels[l] = v
				}
			}
			next.TaskTemplate.Networks = slices.Clone(spec.TaskTemplate.Networks)
			for _, n := range svc.Spec.TaskTemplate.Networks {
				if n.Target != netID && n.Target != NetworkName(d.Owner) {
					next.TaskTemplate.Networks = append(next.TaskTemplate.Networks, n)
				}
			}
			if drifted {
				log.InfoContext(ctx, "service changed by hand, updating it", "service", spec.Name)
			}
			if err := check(); err != nil {
				return "", err
			}
			if rollout && !canaried && needsCanary(d) {
				// The new spec's check is berth's, which swarm's update would not wait for: proved first.
				if err := p.canary(ctx, k, spec, d, auth, svc.Spec.Labels[providers.LabelSpecHash], log); err != nil {
					return "", err
				}
				canaried = true
				continue // the canary took a while: the service's Version is read again
			}
			opts = swarm.ServiceUpdateOptions{EncodedRegistryAuth: auth, QueryRegistry: auth != ""}
			if auth == "" {
				// The manager keeps the credential of the spec before when given none: an empty one replaces it,
				// so that the nodes pull as berth says, anonymously.
				opts.EncodedRegistryAuth = anonymousAuth
			}
		case replicasOf(svc.Spec) != d.Workload.Replicas:
			next = svc.Spec // scaling only: the task template is left exactly as the engine stored it
			n := uint64(d.Workload.Replicas)
			next.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}
		default:
			return svc.ID, nil
		}
		stale := false
		err = p.call(ctx, "update service "+spec.Name, func(ctx context.Context) error {
			resp, err := p.cli.ServiceUpdate(ctx, svc.ID, svc.Version, next, opts)
			for _, w := range resp.Warnings {
				log.DebugContext(ctx, "service update warning", "service", spec.Name, "warning", w)
			}
			if isSequenceConflict(err) {
				stale = true
				return nil
			}
			return err
		})
		if err != nil {
			return "", err
		}
		if stale {
			log.DebugContext(ctx, "service version conflict, re-reading", "service", spec.Name)
			continue
		}
		log.InfoContext(ctx, "service updated", "service", spec.Name, "hash", d.SpecHash,
			"replicas", d.Workload.Replicas, "rollout", rollout || drifted)
		return svc.ID, nil
	}
	return "", fmt.Errorf("service %s: version conflicts persist after %d re-reads", spec.Name, maxSequenceRetries)
}

// anonymousAuth is the X-Registry-Auth of no credential: base64url of "{}".
const anonymousAuth = "e30="

// checkPull looks image up in its registry through the manager's engine with the credential auth (the
// registry's answer to the manager is what the nodes will get): unauthorized, or an image the registry does not
// have, is a permanent error naming the image. Errors never show the credential.
func (p *Provider) checkPull(ctx context.Context, image, auth string) error {
	err := p.call(ctx, "look up image "+image+" in its registry", func(ctx context.Context) error {
		_, err := p.cli.DistributionInspect(ctx, image, auth)
		if err != nil && pullRefused(err) {
			return providers.Permanent(err)
		}
		return err
	})
	if err != nil && errors.Is(err, providers.ErrPermanent) {
		return fmt.Errorf("image %q cannot be pulled with the credential given: %w", image, err)
	}
	return err
}

// pullRefused tells a registry's refusal (unauthorized, denied, unknown), which the engine passes on as a server
// error whose message alone says so.
func pullRefused(err error) bool {
	if cerrdefs.IsNotFound(err) || cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unauthorized", "authentication required", "denied", "manifest unknown", "not found",
		"no such host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// attached tells whether a service's tasks join the environment network, by its ID netID ("" when the network is
// gone) or its name.
func attached(s swarm.ServiceSpec, netID, name string) bool {
	if netID == "" {
		return false
	}
	for _, n := range s.TaskTemplate.Networks {
		if n.Target == netID || n.Target == name {
			return true
		}
	}
	return false
}

// inspect reads a service by name or ID; found is false when there is none.
func (p *Provider) inspect(ctx context.Context, name string) (svc swarm.Service, found bool, err error) {
	err = p.call(ctx, "inspect service "+name, func(ctx context.Context) error {
		var err error
		svc, _, err = p.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		return err
	})
	if cerrdefs.IsNotFound(err) {
		return swarm.Service{}, false, nil
	}
	return svc, err == nil, err
}

// tasks lists the tasks of a service.
func (p *Provider) tasks(ctx context.Context, serviceID string) ([]swarm.Task, error) {
	var ts []swarm.Task
	err := p.call(ctx, "list tasks", func(ctx context.Context) error {
		var err error
		ts, err = p.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
		return err
	})
	return ts, err
}

// wait polls the service and its tasks every PollInterval until progress says done or fails. An HTTP or TCP check
// is probed by berth on every running task of the spec (swarm cannot see it): a task failing it Retries times in a
// row fails the wait, and a rollout is then rolled back to the service's previous spec, as swarm does on a failed
// update.
//
// With ms (PublishHost), every poll also sets the proxies' backends to the running tasks of older specs and those
// of d that are ready, so traffic moves to new tasks as they pass their check.
func (p *Provider) wait(ctx context.Context, k wkey, id string, d providers.Desired, ms []hostMapping) error {
	nodeAddr := p.nodeAddrs(ctx)
	var chk *checker
	if probed(d.Workload.Health) {
		chk = newChecker(d.Workload.Health, nodeAddr, time.Now)
	}
	for {
		svc, found, err := p.inspect(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("service %s was removed while its rollout was awaited", id)
		}
		ts, err := p.tasks(ctx, id)
		if err != nil {
			return err
		}
		var health map[string]probeResult
		if chk != nil {
			health = probeTasks(ctx, chk, ts, d.SpecHash)
		}
		if len(ms) > 0 {
			p.route(k, ms, ts, func(t swarm.Task) bool {
				return taskHash(t) != d.SpecHash || chk == nil || health[t.ID].State == "healthy"
			}, nodeAddr)
		}
		done, err := progress(svc, ts, d, p.FailedTasks, health)
		var uh *unhealthyError
		if errors.As(err, &uh) {
			return p.rollback(ctx, svc, d, err)
		}
		if err != nil || done {
			return err
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("waiting for %d ready tasks of spec %s: %w", d.Workload.Replicas, d.SpecHash, err)
		}
	}
}

// probeTasks checks the running tasks of hash (each at most once per interval) and returns their health by task ID.
func probeTasks(ctx context.Context, chk *checker, ts []swarm.Task, hash string) map[string]probeResult {
	health := map[string]probeResult{}
	for _, t := range ts {
		if liveDesired(t) && t.Status.State == swarm.TaskStateRunning && (hash == "" || taskHash(t) == hash) {
			health[t.ID] = chk.check(ctx, t)
		}
	}
	return health
}

// unhealthyError is a task of the applied spec failing the HTTP or TCP check berth probes.
type unhealthyError struct {
	task, kind, check string
	addr              string // where the task was probed
	err               string
}

func (e *unhealthyError) Error() string {
	at := ""
	if e.addr != "" {
		at = " at " + e.addr
	}
	return fmt.Sprintf("task %s%s fails its %s health check (%s): %s", e.task, at, e.kind, e.check, e.err)
}

// rollback undoes a rollout whose new tasks fail berth's probes, when the service has a previous spec of another
// hash (swarm's own rollback of `docker service rollback`), and returns cause, saying so.
func (p *Provider) rollback(ctx context.Context, svc swarm.Service, d providers.Desired, cause error) error {
	prev := svc.PreviousSpec
	if prev == nil || prev.Labels[providers.LabelSpecHash] == "" || prev.Labels[providers.LabelSpecHash] == d.SpecHash {
		return cause
	}
	err := p.call(ctx, "roll back service "+svc.Spec.Name, func(ctx context.Context) error {
		_, err := p.cli.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"})
		return err
	})
	if err != nil {
		return fmt.Errorf("%w; rolling back to spec %s: %w", cause, prev.Labels[providers.LabelSpecHash], err)
	}
	p.log.WarnContext(ctx, "rollout failed its health check, rolled back", "service", svc.Spec.Name,
		"hash", d.SpecHash, "previous", prev.Labels[providers.LabelSpecHash], "err", cause)
	return fmt.Errorf("%w: rolled back to spec %s", cause, prev.Labels[providers.LabelSpecHash])
}

// nodeAddrs maps a node ID to the address its host-mode published ports answer at, inspecting each node once: its
// Status.Addr, or the manager's host (nodeAddress) when that is a wildcard or a loopback address of a remote
// engine. "" when the node cannot be read.
func (p *Provider) nodeAddrs(ctx context.Context) func(string) string {
	cache := map[string]string{}
	fallback := nodeAddress(p.cli.DaemonHost())
	return func(id string) string {
		if a, ok := cache[id]; ok {
			return a
		}
		var n swarm.Node
		err := p.call(ctx, "inspect node", func(ctx context.Context) error {
			var err error
			n, _, err = p.cli.NodeInspectWithRaw(ctx, id)
			return err
		})
		if err != nil {
			return ""
		}
		a := n.Status.Addr
		if ip := net.ParseIP(a); ip == nil || ip.IsUnspecified() || (ip.IsLoopback() && fallback != "127.0.0.1") {
			a = fallback
		}
		cache[id] = a
		return a
	}
}

// liveDesired tells whether swarm means the task to run (it is one of the replicas).
func liveDesired(t swarm.Task) bool {
	return t.DesiredState == swarm.TaskStateRunning || t.DesiredState == swarm.TaskStateReady
}

// taskHash is the spec hash a task runs.
func taskHash(t swarm.Task) string {
	if t.Spec.ContainerSpec == nil {
		return ""
	}
	return t.Spec.ContainerSpec.Labels[providers.LabelSpecHash]
}

// taskCurrent tells whether a task runs the service's task template as it is now: after a hand edit is repaired,
// the tasks of the edited template carry the same hash label, and only their own spec tells them apart.
func taskCurrent(svc swarm.Service, t swarm.Task) bool {
	was := svc
	was.Spec.TaskTemplate = t.Spec
	if liveHash(readBack(was)) != liveHash(readBack(svc)) {
		return false
	}
	return slices.EqualFunc(t.Spec.Networks, svc.Spec.TaskTemplate.Networks, func(a, b swarm.NetworkAttachmentConfig) bool {
		return a.Target == b.Target
	})
}

// progress decides from one reading whether the rollout of d is done: the service says d.SpecHash, no update is
// under way, and exactly Replicas tasks are meant to run, all of d.SpecHash and of the current template, and
// running (swarm holds a task with a health check in "starting" until it is healthy) and, for an HTTP or TCP check,
// "healthy" in health (by task ID, from berth's probes). A rolled-back or paused update, failedLimit failed tasks
// of the spec with none running, or a running task "unhealthy" in health (an *unhealthyError) is an error.
func progress(svc swarm.Service, ts []swarm.Task, d providers.Desired, failedLimit int, health map[string]probeResult) (bool, error) {
	us := svc.UpdateStatus
	if h := svc.Spec.Labels[providers.LabelSpecHash]; h != d.SpecHash {
		if us != nil && strings.HasPrefix(string(us.State), "rollback") {
			err := fmt.Errorf("the rollout of spec %s failed: swarm rolls the service back to spec %s (%s): %s",
				d.SpecHash, h, us.State, us.Message)
			if last := lastTaskError(ts, d.SpecHash); last != "" {
				err = fmt.Errorf("%w; a task of spec %s failed with: %s", err, d.SpecHash, last)
			}
			return false, err
		}
		return false, fmt.Errorf("service %s now says spec %s, not %s: changed by someone else meanwhile",
			svc.Spec.Name, h, d.SpecHash)
	}
	if us != nil {
		switch us.State {
		case swarm.UpdateStateUpdating, swarm.UpdateStateRollbackStarted:
			return false, nil
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
			return false, fmt.Errorf("the update of service %s is %s: %s", svc.Spec.Name, us.State, us.Message)
		}
	}
	want := d.Workload.Replicas
	live, ready, failed := 0, 0, 0
	var lastErr string
	for _, t := range ts {
		ours := taskHash(t) == d.SpecHash && taskCurrent(svc, t)
		if liveDesired(t) {
			live++
			if ours && t.Status.State == swarm.TaskStateRunning {
				switch {
				case !probed(d.Workload.Health) || health[t.ID].State == "healthy":
					ready++
				case health[t.ID].State == "unhealthy":
					return false, &unhealthyError{task: t.ID, kind: d.Workload.Health.Kind(),
						check: describeCheck(d.Workload.Health), addr: health[t.ID].Addr, err: health[t.ID].Err}
				}
			}
		}
		if ours && (t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected) {
			failed++
			if t.Status.Err != "" {
				lastErr = t.Status.Err
			}
		}
	}
	if ready == want && live == want {
		return true, nil
	}
	if failedLimit > 0 && failed >= failedLimit && ready == 0 {
		err := fmt.Errorf("%d tasks of spec %s failed and none runs; last error: %s", failed, d.SpecHash, lastErr)
		if strings.Contains(lastErr, "No such image") {
			return false, providers.Permanent(err)
		}
		return false, err
	}
	return false, nil
}

// lastTaskError is the error of the newest failed or rejected task of spec hash ("" for none): a pull that failed
// says "No such image: <image>".
func lastTaskError(ts []swarm.Task, hash string) string {
	var last swarm.Task
	for _, t := range ts {
		if taskHash(t) == hash && t.Status.Err != "" && (t.Status.State == swarm.TaskStateFailed ||
			t.Status.State == swarm.TaskStateRejected) && !t.Status.Timestamp.Before(last.Status.Timestamp) {
			last = t
		}
	}
	return last.Status.Err
}

// ensureNetwork returns the ID of the environment's overlay network, creating it when missing (with LabelPreview in
// a preview environment). A network of that name without our labels is a permanent error.
func (p *Provider) ensureNetwork(ctx context.Context, o providers.Owner) (string, error) {
	name := NetworkName(o)
	p.netMu.Lock()
	defer p.netMu.Unlock()
	for range 2 {
		id, err := p.findNetwork(ctx, o)
		if err != nil || id != "" {
			return id, err
		}
		var resp network.CreateResponse
		err = p.call(ctx, "create network "+name, func(ctx context.Context) error {
			var err error
			labels := map[string]string{providers.LabelInstance: o.Instance, providers.LabelEnvironment: o.Environment}
			maps.Copy(labels, providers.PreviewLabels(o, nil))
			resp, err = p.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "overlay", Scope: "swarm", Labels: labels})
			if cerrdefs.IsConflict(err) {
				return nil // made meanwhile: find it again
			}
			return err
		})
		if err != nil {
			return "", err
		}
		if resp.ID != "" {
			p.log.InfoContext(ctx, "network created", "env", o.Environment, "network", name)
			return resp.ID, nil
		}
	}
	return "", errors.New("network " + name + ": created but not found")
}

// findNetwork returns the ID of the environment network ("" when there is none).
func (p *Provider) findNetwork(ctx context.Context, o providers.Owner) (string, error) {
	name := NetworkName(o)
	var nets []network.Summary
	err := p.call(ctx, "list networks", func(ctx context.Context) error {
		var err error
		nets, err = p.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		return err
	})
	if err != nil {
		return "", err
	}
	id := ""
	for _, n := range nets {
		if n.Name != name { // the name filter matches substrings
			continue
		}
		if n.Labels[providers.LabelInstance] != o.Instance || n.Labels[providers.LabelEnvironment] != o.Environment ||
			n.Driver != "overlay" {
			return "", providers.Permanent(fmt.Errorf("network %s exists but is not berth's overlay network of "+
				"instance %q environment %q: not adopted", name, o.Instance, o.Environment))
		}
		if id == "" || n.ID < id { // duplicates by name are possible: pick one deterministically
			id = n.ID
		}
	}
	return id, nil
}
