package nomad

import (
	"context"
	"sort"
	"strconv"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
)

// Environments lists the environments that have jobs of instance on target, from the jobs' meta alone: one
// GET /v1/jobs with meta=true, the prefix of the instance's job IDs (berth-<instance>-) and a filter expression
// on the instance and target meta. The meta is checked again here, so a server that ignores the filter (before
// Nomad 1.2) answers more, never wrongly; a server that answers no meta in the list (before Nomad 1.6) costs one
// Info per job. Each environment comes once, with its berth.dev/preview number (0 when absent or malformed) and
// the berth.dev/head of its most recently registered job.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	var stubs []*api.JobListStub
	if err := p.call(ctx, "Jobs.List", 0, func(ctx context.Context) error {
		q := p.query(ctx)
		q.Prefix = sanitize("berth-" + instance + "-")
		q.Filter = ownerFilter(instance, target)
		var err error
		stubs, _, err = p.client.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
		return err
	}); err != nil {
		return nil, err
	}
	type found struct {
		ref   providers.EnvironmentRef
		index uint64 // JobModifyIndex of the job Head was read from
	}
	envs := map[string]*found{}
	for _, st := range stubs {
		meta, index := st.Meta, st.JobModifyIndex
		if meta == nil {
			job, err := p.info(ctx, st.ID)
			if err != nil {
				return nil, err
			}
			if job == nil {
				continue
			}
			meta, index = job.Meta, deref(job.JobModifyIndex)
		}
		env := meta[providers.LabelEnvironment]
		if env == "" || meta[providers.LabelInstance] != instance || meta[providers.LabelTarget] != target {
			continue
		}
		k := wkey{instance, env, target, meta[providers.LabelWorkload]}
		if k.Workload == "" || st.ID != jobID(k) {
			continue // meta copied onto a job berth did not name: not one of its workloads
		}
		f := envs[env]
		if f == nil {
			f = &found{ref: providers.EnvironmentRef{Name: env}}
			envs[env] = f
		}
		if n := previewNumber(meta[providers.LabelPreview]); n != 0 {
			f.ref.Preview = n
		}
		if h := meta[providers.LabelHead]; h != "" && (f.ref.Head == "" || index > f.index) {
			f.ref.Head, f.index = h, index
		}
	}
	out := make([]providers.EnvironmentRef, 0, len(envs))
	for _, f := range envs {
		out = append(out, f.ref)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ownerFilter is the filter expression (Nomad's go-bexpr language, evaluated on each job) for the jobs of
// instance on target.
func ownerFilter(instance, target string) string {
	return "Meta[" + strconv.Quote(providers.LabelInstance) + "] == " + strconv.Quote(instance) +
		" and Meta[" + strconv.Quote(providers.LabelTarget) + "] == " + strconv.Quote(target)
}

// previewNumber parses a berth.dev/preview value: a positive decimal, else 0.
func previewNumber(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || strconv.Itoa(n) != s {
		return 0
	}
	return n
}

var _ providers.EnvironmentLister = (*Provider)(nil)
