package nomad

import (
	"context"
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
)

// Change is one field a register of the desired job would change, from Nomad's plan diff.
type Change struct {
	// Type is Nomad's: "Added", "Deleted" or "Edited".
	Type string `json:"type"`
	// Path names the field, e.g. "TaskGroups[app].Count" or "Meta.berth.dev/spec-hash".
	Path string `json:"path"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// Plan is the dry run of Apply: Nomad's job plan (PUT /v1/job/:id/plan with diff) of the mapped job, flattened to
// the changed fields. Nothing is registered. An unowned job of the workload's name is a permanent error.
// It is an optional capability: callers find it by type assertion.
func (p *Provider) Plan(ctx context.Context, d providers.Desired) ([]Change, error) {
	k := wkey{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name}
	id := jobID(k)
	job, err := p.info(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	if job != nil && !k.owns(job.Meta) {
		return nil, providers.Permanent(p.notOwned(id, k))
	}
	want, err := p.jobFor(k, d)
	if err != nil {
		return nil, err
	}
	if job != nil {
		want = keepForeign(want, job) // as Apply registers it
	}
	var resp *api.JobPlanResponse
	if err := p.call(ctx, "Jobs.Plan", 0, func(ctx context.Context) error {
		var err error
		resp, _, err = p.client.Jobs().Plan(want, true, p.write(ctx))
		return err
	}); err != nil {
		return nil, fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	if resp.Diff == nil {
		return nil, nil
	}
	var out []Change
	addFields(&out, "", resp.Diff.Fields)
	addObjects(&out, "", resp.Diff.Objects)
	for _, g := range resp.Diff.TaskGroups {
		prefix := "TaskGroups[" + g.Name + "]."
		addFields(&out, prefix, g.Fields)
		addObjects(&out, prefix, g.Objects)
		for _, t := range g.Tasks {
			tp := prefix + "Tasks[" + t.Name + "]."
			addFields(&out, tp, t.Fields)
			addObjects(&out, tp, t.Objects)
		}
	}
	return out, nil
}

func addFields(out *[]Change, prefix string, fields []*api.FieldDiff) {
	for _, f := range fields {
		if f.Type != "None" && f.Type != "" {
			*out = append(*out, Change{Type: f.Type, Path: prefix + f.Name, Old: f.Old, New: f.New})
		}
	}
}

func addObjects(out *[]Change, prefix string, objs []*api.ObjectDiff) {
	for _, o := range objs {
		if o.Type == "None" {
			continue
		}
		p := prefix + o.Name + "."
		addFields(out, p, o.Fields)
		addObjects(out, p, o.Objects)
	}
}
