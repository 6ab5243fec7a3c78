package nomad

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
)

// Apply converges one workload: it reads the job, registers the mapped job when the spec hash or any field berth
// manages differs from the desired workload as the job reads it back (a hand edit keeps the hash meta; meta keys
// and docker config keys of others are kept) (compare-and-set on the job's JobModifyIndex, 0 for a create; a lost race re-reads and decides again),
// then waits until the deployment of the job's version is no longer running and exactly Replicas allocations of
// that version run healthy. A failed deployment (Nomad auto-reverts it) is a permanent error. Nomad itself
// reschedules failed or stopped allocations (drift); Apply waits for that too.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	k := wkey{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name}
	log := p.log.With("env", k.Environment, "workload", k.Workload, "revision", d.SpecHash)
	id := jobID(k)
	want, err := p.jobFor(k, d)
	if err != nil {
		return err
	}
	items, err := variableItems(d)
	if err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	var jmi uint64
	stale := false // the job read berth's variable, the new one does not: remove it after the rollout
	for attempt := 1; ; attempt++ {
		job, err := p.info(ctx, id)
		if err != nil {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
		if job != nil && !k.owns(job.Meta) {
			return providers.Permanent(p.notOwned(id, k))
		}
		stale = stale || items == nil && usesVariable(job)
		if items != nil {
			// Before the register: the new allocations render the variable when they start.
			if err := p.ensureVariable(ctx, id, items); err != nil {
				return fmt.Errorf("workload %s: %w", k.Workload, err)
			}
		}
		if job != nil && p.upToDate(k, job, want, d) {
			jmi = deref(job.JobModifyIndex)
			break
		}
		var index uint64
		reg := want
		if job != nil {
			index = deref(job.JobModifyIndex)
			reg = keepForeign(want, job)
		}
		log.InfoContext(ctx, "registering nomad job", "job", id, "enforceIndex", index, "count", d.Workload.Replicas)
		var resp *api.JobRegisterResponse
		err = p.call(ctx, "Jobs.Register", 0, func(ctx context.Context) error {
			var err error
			resp, _, err = p.client.Jobs().EnforceRegister(reg, index, p.write(ctx))
			return err
		})
		if errors.Is(err, errConflict) && attempt < p.RetryAttempts {
			log.InfoContext(ctx, "nomad job changed since it was read; reading it again", "job", id)
			continue
		}
		if err != nil {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
		jmi = resp.JobModifyIndex
		break
	}
	if err := p.waitConverged(ctx, k, id, d, want, jmi); err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	if stale {
		log.InfoContext(ctx, "removing the nomad variable the job no longer reads", "path", variablePath(id))
		if err := p.deleteVariable(ctx, id); err != nil {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
	}
	return nil
}

func (p *Provider) notOwned(id string, k wkey) error {
	return fmt.Errorf("nomad job %s exists and is not owned by berth instance %q environment %q target %q; rename or remove it",
		id, k.Instance, k.Environment, k.Target)
}

// keepForeign is want with what others put on the live job inside what berth writes carried over: job meta keys
// outside berth.dev/ and docker config keys berth does not set (a register replaces the whole job).
func keepForeign(want, job *api.Job) *api.Job {
	c := *want
	c.Meta = maps.Clone(want.Meta)
	for k, v := range job.Meta {
		if !strings.HasPrefix(k, "berth.dev/") {
			c.Meta[k] = v
		}
	}
	if len(job.TaskGroups) == 0 || len(want.TaskGroups) == 0 || len(job.TaskGroups[0].Tasks) == 0 {
		return &c
	}
	g := *want.TaskGroups[0]
	t := *g.Tasks[0]
	t.Config = maps.Clone(t.Config)
	for k, v := range job.TaskGroups[0].Tasks[0].Config {
		if _, set := t.Config[k]; !set && !slices.Contains(configKeys, k) {
			t.Config[k] = v
		}
	}
	g.Tasks = []*api.Task{&t}
	c.TaskGroups = []*api.TaskGroup{&g}
	return &c
}

// configKeys are the docker config keys berth sets (or leaves out on purpose).
var configKeys = []string{"image", "entrypoint", "args", "ports"}

func groupCount(job *api.Job) int {
	if len(job.TaskGroups) == 0 || job.TaskGroups[0].Count == nil {
		return -1
	}
	return *job.TaskGroups[0].Count
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// waitConverged polls (blocking queries on the job's allocations, PollInterval long) until convergedWhy says "".
func (p *Provider) waitConverged(ctx context.Context, k wkey, id string, d providers.Desired, want *api.Job, jmi uint64) error {
	var index uint64
	for {
		why, next, err := p.convergedWhy(ctx, k, id, d, want, jmi, index)
		if err != nil || why == "" {
			return err
		}
		p.log.DebugContext(ctx, "waiting for nomad job", "env", k.Environment, "workload", k.Workload, "job", id, "why", why)
		if next == index { // the blocking query timed out or was not used: pace the next look
			if err := providers.Sleep(ctx, p.PollInterval); err != nil {
				return fmt.Errorf("waiting for nomad job %s: %s: %w", id, why, err)
			}
		}
		index = next
	}
}

// convergedWhy says why the job is not converged yet ("" when it is); next is the allocations' index for the next
// blocking query. A failed deployment of the job's version is a permanent error.
func (p *Provider) convergedWhy(ctx context.Context, k wkey, id string, d providers.Desired, want *api.Job, jmi, index uint64) (string, uint64, error) {
	job, err := p.info(ctx, id)
	if err != nil {
		return "", index, err
	}
	if job == nil {
		return "", index, fmt.Errorf("nomad job %s disappeared while berth waited for it", id)
	}
	if deref(job.JobModifyIndex) != jmi && !p.upToDate(k, job, want, d) {
		if dep := p.deploymentOf(ctx, id, jmi); dep != nil && dep.Status == api.DeploymentStatusFailed {
			return "", index, p.deploymentFailed(ctx, id, dep)
		}
		return "", index, fmt.Errorf("nomad job %s was changed by another writer while berth waited (now version %d, spec %s)",
			id, deref(job.Version), job.Meta[providers.LabelSpecHash])
	}
	var dep *api.Deployment
	if err := p.call(ctx, "Jobs.LatestDeployment", 0, func(ctx context.Context) error {
		var err error
		dep, _, err = p.client.Jobs().LatestDeployment(id, p.query(ctx))
		return err
	}); err != nil {
		return "", index, err
	}
	if dep != nil && dep.JobVersion == deref(job.Version) {
		switch dep.Status {
		case api.DeploymentStatusFailed:
			return "", index, p.deploymentFailed(ctx, id, dep)
		case api.DeploymentStatusSuccessful, api.DeploymentStatusCancelled:
		default:
			healthy, total, canaries := 0, 0, 0
			for _, st := range dep.TaskGroups {
				healthy, total, canaries = healthy+st.HealthyAllocs, total+st.DesiredTotal, canaries+st.DesiredCanaries
			}
			return fmt.Sprintf("deployment %s %s: %s (%d/%d healthy, %d canaries)", short(dep.ID), dep.Status,
				dep.StatusDescription, healthy, total, canaries), index, nil
		}
	}
	allocs, next, err := p.allocations(ctx, id, index)
	if err != nil {
		return "", index, err
	}
	live, ready := 0, 0
	for _, a := range allocs {
		if !isLive(a) {
			continue
		}
		live++
		if a.JobVersion == deref(job.Version) && a.ClientStatus == api.AllocClientStatusRunning &&
			(a.DeploymentStatus == nil || a.DeploymentStatus.Healthy == nil || *a.DeploymentStatus.Healthy) {
			ready++
		}
	}
	if live != d.Workload.Replicas || ready != d.Workload.Replicas {
		return fmt.Sprintf("%d allocations live, %d ready on version %d, want %d", live, ready, deref(job.Version),
			d.Workload.Replicas), next, nil
	}
	return "", next, nil
}

// deploymentFailed is the permanent error of a failed deployment: Nomad's description, the allocations it judged
// unhealthy (read from the job's allocations; left out when that read fails) and, for a deployment with canaries,
// that the old allocations were never stopped (Nomad stops the canaries of a failed deployment and, with
// auto_revert, registers the last stable version again).
func (p *Provider) deploymentFailed(ctx context.Context, id string, dep *api.Deployment) error {
	var b strings.Builder
	fmt.Fprintf(&b, "nomad job %s: deployment %s of version %d failed: %s", id, short(dep.ID), dep.JobVersion, dep.StatusDescription)
	canaries := 0
	for _, st := range dep.TaskGroups {
		canaries += st.DesiredCanaries
	}
	if allocs, _, err := p.allocations(ctx, id, 0); err == nil {
		var bad []string
		for _, a := range allocs {
			ds := a.DeploymentStatus
			if a.JobVersion != dep.JobVersion || ds == nil || ds.Healthy == nil || *ds.Healthy {
				continue
			}
			what, why := "allocation", "its health checks did not pass by the healthy deadline"
			if ds.Canary {
				what = "canary"
			}
			if a.ClientStatus == api.AllocClientStatusFailed {
				why = "failed: " + a.ClientDescription
			}
			bad = append(bad, fmt.Sprintf("%s %s (%s) unhealthy: %s", what, a.Name, short(a.ID), why))
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			b.WriteString("; " + strings.Join(bad, "; "))
		}
	}
	if canaries > 0 {
		b.WriteString("; the previous version's allocations kept running throughout (Nomad stopped the canaries)")
	}
	return providers.Permanent(errors.New(b.String()))
}

// deploymentOf finds the deployment of the job registered at jmi (nil when none or on error: it only names why).
func (p *Provider) deploymentOf(ctx context.Context, id string, jmi uint64) *api.Deployment {
	var deps []*api.Deployment
	if err := p.call(ctx, "Jobs.Deployments", 0, func(ctx context.Context) error {
		var err error
		deps, _, err = p.client.Jobs().Deployments(id, false, p.query(ctx))
		return err
	}); err != nil {
		return nil
	}
	for _, d := range deps {
		if d.JobSpecModifyIndex == jmi {
			return d
		}
	}
	return nil
}

// allocations lists the job's allocations; with index > 0 it is a blocking query waiting up to PollInterval for
// the index to pass it.
func (p *Provider) allocations(ctx context.Context, id string, index uint64) ([]*api.AllocationListStub, uint64, error) {
	var allocs []*api.AllocationListStub
	var meta *api.QueryMeta
	err := p.call(ctx, "Jobs.Allocations", p.PollInterval, func(ctx context.Context) error {
		q := p.query(ctx)
		if index > 0 {
			q.WaitIndex, q.WaitTime = index, p.PollInterval
		}
		var err error
		allocs, meta, err = p.client.Jobs().Allocations(id, false, q)
		return err
	})
	if err != nil {
		return nil, index, err
	}
	return allocs, meta.LastIndex, nil
}

// isLive: the allocation should run and is pending or running.
func isLive(a *api.AllocationListStub) bool {
	return a.DesiredStatus == api.AllocDesiredStatusRun &&
		(a.ClientStatus == api.AllocClientStatusPending || a.ClientStatus == api.AllocClientStatusRunning)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Delete deregisters and purges the workload's job when it carries owner's meta, then waits until it is gone.
// An unowned job of that name is a permanent error and is left alone.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	k := wkey{owner.Instance, owner.Environment, target, workload}
	id := jobID(k)
	job, err := p.info(ctx, id)
	if err != nil {
		return err
	}
	if job == nil { // gone, maybe after a crash between the variable's write and the job's register
		return p.deleteVariable(ctx, id)
	}
	if !k.owns(job.Meta) {
		return providers.Permanent(p.notOwned(id, k))
	}
	p.log.InfoContext(ctx, "deregistering nomad job", "env", k.Environment, "workload", k.Workload, "job", id)
	err = p.call(ctx, "Jobs.Deregister", 0, func(ctx context.Context) error {
		_, _, err := p.client.Jobs().Deregister(id, true, p.write(ctx))
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("workload %s: %w", workload, err)
	}
	for {
		job, err := p.info(ctx, id)
		if err != nil {
			return fmt.Errorf("workload %s: %w", workload, err)
		}
		if job == nil {
			// After the job: berth's variable (if any) holds the values the job's tasks were given.
			if err := p.deleteVariable(ctx, id); err != nil {
				return fmt.Errorf("workload %s: %w", workload, err)
			}
			return nil
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("workload %s: waiting for job %s to be purged: %w", workload, id, err)
		}
	}
}
