package nomad

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
)

// List finds owner's workloads on target: the jobs whose ID starts with berth-<instance>-<env>- (GET /v1/jobs
// with prefix and meta=true), kept when their meta names owner and target; then each job, its latest deployment
// and its allocations. Servers that do not return meta in the list (before Nomad 1.6) cost one Info per job.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	var stubs []*api.JobListStub
	if err := p.call(ctx, "Jobs.List", 0, func(ctx context.Context) error {
		q := p.query(ctx)
		q.Prefix = jobPrefix(owner.Instance, owner.Environment)
		var err error
		stubs, _, err = p.client.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
		return err
	}); err != nil {
		return nil, err
	}
	var obs []providers.Observed
	readers := map[int]string{} // index in obs → job ID, for the jobs reading berth's variable
	for _, st := range stubs {
		var job *api.Job
		meta := st.Meta
		if meta == nil {
			var err error
			if job, err = p.info(ctx, st.ID); err != nil {
				return nil, err
			}
			if job == nil {
				continue
			}
			meta = job.Meta
		}
		k := wkey{owner.Instance, owner.Environment, target, meta[providers.LabelWorkload]}
		if k.Workload == "" || !k.owns(meta) || st.ID != jobID(k) {
			continue
		}
		o, job, err := p.observe(ctx, k, st.ID, job)
		if err != nil {
			return nil, err
		}
		if job != nil {
			if usesVariable(job) {
				readers[len(obs)] = st.ID
			}
			obs = append(obs, o)
		}
	}
	if err := p.missingVariables(ctx, owner, obs, readers); err != nil {
		return nil, err
	}
	sort.Slice(obs, func(i, j int) bool { return obs[i].Workload < obs[j].Workload })
	return obs, nil
}

// missingVariables reports berth's variable as Missing for each observed job that reads it (readers, by index in
// obs) when it is gone: one listing of the variables' metadata (never their items) under the owner's job prefix.
func (p *Provider) missingVariables(ctx context.Context, owner providers.Owner, obs []providers.Observed, readers map[int]string) error {
	if len(readers) == 0 {
		return nil
	}
	var metas []*api.VariableMetadata
	if err := p.call(ctx, "Variables.PrefixList", 0, func(ctx context.Context) error {
		var err error
		metas, _, err = p.client.Variables().PrefixList(variablePath(jobPrefix(owner.Instance, owner.Environment)), p.query(ctx))
		return err
	}); err != nil {
		return fmt.Errorf("nomad variables: %w", err)
	}
	have := map[string]bool{}
	for _, m := range metas {
		have[m.Path] = true
	}
	for i, id := range readers {
		if path := variablePath(id); !have[path] {
			obs[i].Missing = append(obs[i].Missing, "Nomad variable "+path)
		}
	}
	return nil
}

// observe reads one owned job's allocations and its live spec (the job's own fields, see live), and returns the
// job read; a nil job when it vanished meanwhile.
func (p *Provider) observe(ctx context.Context, k wkey, id string, job *api.Job) (providers.Observed, *api.Job, error) {
	o := providers.Observed{Workload: k.Workload, Target: k.Target}
	if job == nil {
		var err error
		if job, err = p.info(ctx, id); err != nil || job == nil {
			return o, nil, err
		}
	}
	var dep *api.Deployment
	if err := p.call(ctx, "Jobs.LatestDeployment", 0, func(ctx context.Context) error {
		var err error
		dep, _, err = p.client.Jobs().LatestDeployment(id, p.query(ctx))
		return err
	}); err != nil {
		return o, nil, err
	}
	allocs, err := p.allocationsWithPorts(ctx, job)
	if err != nil {
		return o, nil, err
	}
	votes := map[string]int{}
	for _, a := range allocs {
		if !isLive(a) {
			continue
		}
		hash, err := p.hashOf(ctx, job, a.JobVersion)
		if err != nil {
			return o, nil, err
		}
		r := providers.Replica{ID: a.ID, Name: a.Name, SpecHash: hash, State: a.ClientStatus,
			Running: a.ClientStatus == api.AllocClientStatusRunning}
		switch {
		case a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil && *a.DeploymentStatus.Healthy:
			r.Health = "healthy"
		case a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil:
			r.Health = "unhealthy"
		case dep != nil && a.JobVersion == dep.JobVersion && !terminal(dep.Status):
			r.Health = "starting" // placed by a deployment that has not judged it yet
		}
		votes[hash]++
		o.Replicas = append(o.Replicas, r)
	}
	sort.Slice(o.Replicas, func(i, j int) bool { return o.Replicas[i].ID < o.Replicas[j].ID })
	hashes := make([]string, 0, len(votes))
	for h := range votes {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	o.SpecHash = job.Meta[providers.LabelSpecHash] // ties go to the job's current version
	for _, h := range hashes {
		if votes[h] > votes[o.SpecHash] {
			o.SpecHash = h
		}
	}
	o.Spec = live(k, job)
	o.SecretFingerprints = fingerprints(job.Meta)
	o.Endpoints = endpoints(job, allocs)
	return o, job, nil
}

// allocationsWithPorts lists the allocations of job's current instance with the ports they were given: one
// GET /v1/allocations with resources=true and a filter on the job ID (the job's own allocations endpoint answers
// no resources). The answer is checked again here (job ID, namespace, created since the job), so a server that
// ignores the filter costs a larger answer, never a wrong one.
func (p *Provider) allocationsWithPorts(ctx context.Context, job *api.Job) ([]*api.AllocationListStub, error) {
	id, ns := deref(job.ID), deref(job.Namespace)
	var stubs []*api.AllocationListStub
	if err := p.call(ctx, "Allocations.List", 0, func(ctx context.Context) error {
		q := p.query(ctx)
		q.Filter = "JobID == " + strconv.Quote(id)
		q.Params = map[string]string{"resources": "true"}
		var err error
		stubs, _, err = p.client.Allocations().List(q)
		return err
	}); err != nil {
		return nil, err
	}
	out := stubs[:0]
	for _, a := range stubs {
		if a.JobID == id && (ns == "" || a.Namespace == ns) && a.CreateIndex >= deref(job.CreateIndex) {
			out = append(out, a)
		}
	}
	return out, nil
}

// endpoints are where job's public ports (its static ports) answer: the port's value on the address it is bound
// to, read from a running allocation's allocated ports (one of the current version first, then the lowest ID); a
// wildcard address reads as 127.0.0.1. A port no running allocation has an address for is left out.
func endpoints(job *api.Job, allocs []*api.AllocationListStub) []providers.Endpoint {
	if len(job.TaskGroups) == 0 {
		return nil
	}
	running := make([]*api.AllocationListStub, 0, len(allocs))
	for _, a := range allocs {
		if isLive(a) && a.ClientStatus == api.AllocClientStatusRunning && a.AllocatedResources != nil {
			running = append(running, a)
		}
	}
	version := deref(job.Version)
	sort.SliceStable(running, func(i, j int) bool {
		if ci, cj := running[i].JobVersion == version, running[j].JobVersion == version; ci != cj {
			return ci
		}
		return running[i].ID < running[j].ID
	})
	var out []providers.Endpoint
	for _, n := range job.TaskGroups[0].Networks {
		for _, pt := range n.ReservedPorts {
			container := pt.To
			if container == 0 {
				container = pt.Value // the docker driver maps a static port without `to` to the same port
			}
			for _, a := range running {
				if addr := portAddress(a.AllocatedResources, pt.Label); addr != "" {
					out = append(out, providers.Endpoint{Port: container, Address: addr})
					break
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// portAddress is "host:port" of the allocated port labelled label: its host IP (else its network's), a wildcard
// as 127.0.0.1; "" when the allocation has no address for it.
func portAddress(res *api.AllocatedResources, label string) string {
	for _, m := range res.Shared.Ports {
		if m.Label != label || m.Value == 0 {
			continue
		}
		ip := m.HostIP
		for _, n := range res.Shared.Networks {
			if ip == "" && n != nil {
				ip = n.IP
			}
		}
		switch ip {
		case "":
			return ""
		case "0.0.0.0", "::", "[::]":
			ip = "127.0.0.1"
		}
		return net.JoinHostPort(strings.Trim(ip, "[]"), strconv.Itoa(m.Value))
	}
	return ""
}

func terminal(status string) bool {
	switch status {
	case api.DeploymentStatusSuccessful, api.DeploymentStatusFailed, api.DeploymentStatusCancelled:
		return true
	}
	return false
}

// hashOf returns the spec hash of a version of job: the job's own for its current version, else read from the
// job's versions once (versions never change) and cached.
func (p *Provider) hashOf(ctx context.Context, job *api.Job, version uint64) (string, error) {
	if version == deref(job.Version) {
		return job.Meta[providers.LabelSpecHash], nil
	}
	key := versionKey{deref(job.Namespace), deref(job.ID), deref(job.CreateIndex), version}
	p.mu.Lock()
	h, ok := p.hashes[key]
	p.mu.Unlock()
	if ok {
		return h, nil
	}
	var versions []*api.Job
	if err := p.call(ctx, "Jobs.Versions", 0, func(ctx context.Context) error {
		var err error
		versions, _, _, err = p.client.Jobs().Versions(deref(job.ID), false, p.query(ctx))
		return err
	}); err != nil {
		return "", fmt.Errorf("job %s: %w", deref(job.ID), err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range versions {
		p.hashes[versionKey{key.namespace, key.id, key.createIndex, deref(v.Version)}] = v.Meta[providers.LabelSpecHash]
	}
	return p.hashes[key], nil // "" for a version no longer kept
}
