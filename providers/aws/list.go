package aws

import (
	"context"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
)

// List finds owner's workloads on target: ListServices of the cluster (ECS cannot filter by tag), DescribeServices
// in batches of 10 with their tags, keeping the ACTIVE services whose tags name owner and target. Each one's spec
// is read from its current task definition revision (DescribeTaskDefinition, once per revision: they are
// immutable) and its desired count; its replicas are its running tasks, their spec hash read from their
// revision's tags. One ListTaskDefinitionFamilies of the owner's families tells which have no ACTIVE revision left
// (deregistered by hand): that task definition is Missing.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	var arns []string
	var next *string
	for {
		var out *ecs.ListServicesOutput
		if err := p.call(ctx, "ListServices", func(ctx context.Context) error {
			var err error
			out, err = p.client.ListServices(ctx, &ecs.ListServicesInput{
				Cluster: aws.String(p.set.cluster), NextToken: next, MaxResults: aws.Int32(100)})
			return err
		}); err != nil {
			return nil, err
		}
		arns = append(arns, out.ServiceArns...)
		if next = out.NextToken; next == nil {
			break
		}
	}
	var obs []providers.Observed
	var families []string // of each observation, in order
	for start := 0; start < len(arns); start += 10 {
		batch := arns[start:min(start+10, len(arns))]
		var out *ecs.DescribeServicesOutput
		if err := p.call(ctx, "DescribeServices", func(ctx context.Context) error {
			var err error
			out, err = p.client.DescribeServices(ctx, &ecs.DescribeServicesInput{
				Cluster: aws.String(p.set.cluster), Services: batch,
				Include: []types.ServiceField{types.ServiceFieldTags}})
			return err
		}); err != nil {
			return nil, err
		}
		for _, svc := range out.Services {
			tags := tagMap(svc.Tags)
			k := wkey{owner.Instance, owner.Environment, target, tags[providers.LabelWorkload]}
			if aws.ToString(svc.Status) != "ACTIVE" || k.Workload == "" || !k.owns(tags) {
				continue
			}
			o, family, err := p.observe(ctx, k, svc)
			if err != nil {
				return nil, err
			}
			obs = append(obs, o)
			families = append(families, family)
		}
	}
	if len(obs) > 0 {
		active, err := p.activeFamilies(ctx, owner)
		if err != nil {
			return nil, err
		}
		for i, f := range families {
			if f != "" && !active[f] {
				obs[i].Missing = append(obs[i].Missing, "task definition "+f)
			}
		}
	}
	sort.Slice(obs, func(i, j int) bool { return obs[i].Workload < obs[j].Workload })
	return obs, nil
}

// observe reads one owned service's spec (from its current task definition and its desired count) and tasks; it
// also returns the family of that task definition.
func (p *Provider) observe(ctx context.Context, k wkey, svc types.Service) (providers.Observed, string, error) {
	o := providers.Observed{Workload: k.Workload, Target: k.Target}
	primaryArn := aws.ToString(svc.TaskDefinition)
	_, primary, _, _, err := p.describeTaskDefinition(ctx, primaryArn, false)
	if err != nil {
		return o, "", err
	}
	tasks, err := p.tasks(ctx, aws.ToString(svc.ServiceName), types.DesiredStatusRunning)
	if err != nil {
		return o, "", err
	}
	votes := map[string]int{}
	for _, t := range tasks {
		_, info, _, _, err := p.describeTaskDefinition(ctx, aws.ToString(t.TaskDefinitionArn), false)
		if err != nil {
			return o, "", err
		}
		arn := aws.ToString(t.TaskArn)
		id := arn[strings.LastIndex(arn, "/")+1:]
		status := aws.ToString(t.LastStatus)
		r := providers.Replica{
			ID: id, Name: aws.ToString(svc.ServiceName) + "/" + id, SpecHash: info.hash,
			State: strings.ToLower(status), Running: status == "RUNNING",
		}
		if info.hasHealth {
			switch t.HealthStatus {
			case types.HealthStatusHealthy:
				r.Health = "healthy"
			case types.HealthStatusUnhealthy:
				r.Health = "unhealthy"
			default:
				r.Health = "starting"
			}
		}
		votes[info.hash]++
		o.Replicas = append(o.Replicas, r)
	}
	sort.Slice(o.Replicas, func(i, j int) bool { return o.Replicas[i].ID < o.Replicas[j].ID })
	// The majority's hash; a tie goes to the primary deployment's, then to the smallest.
	hashes := make([]string, 0, len(votes))
	for h := range votes {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	o.SpecHash = primary.hash
	for _, h := range hashes {
		if votes[h] > votes[o.SpecHash] {
			o.SpecHash = h
		}
	}
	o.Spec = primary.spec
	o.SecretFingerprints = primary.fingerprints
	o.Spec.Name = k.Workload
	o.Spec.Replicas = int(svc.DesiredCount)
	family := resourceName(k)
	if primary.family != family {
		family = "" // a revision of another family: the spec shows it; nothing of ours is missing
	}
	return o, family, nil
}

// activeFamilies lists the task definition families of owner that have at least one ACTIVE revision.
func (p *Provider) activeFamilies(ctx context.Context, owner providers.Owner) (map[string]bool, error) {
	prefix := familyPrefix(owner)
	active := map[string]bool{}
	var next *string
	for {
		var out *ecs.ListTaskDefinitionFamiliesOutput
		if err := p.call(ctx, "ListTaskDefinitionFamilies", func(ctx context.Context) error {
			var err error
			out, err = p.client.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{
				FamilyPrefix: aws.String(prefix), Status: types.TaskDefinitionFamilyStatusActive, NextToken: next})
			return err
		}); err != nil {
			return nil, err
		}
		for _, f := range out.Families {
			active[f] = true
		}
		if next = out.NextToken; next == nil {
			return active, nil
		}
	}
}
