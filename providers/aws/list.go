package aws

import (
	"context"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
)

// List finds owner's workloads on target: ListServices of the cluster (ECS cannot filter by tag), DescribeServices
// in batches of 10 with their tags (services), keeping the ACTIVE services whose tags name owner and target. Each
// one's spec is read from its current task definition revision (DescribeTaskDefinition, once per revision: they
// are immutable) and its desired count; its replicas are its running tasks, their spec hash read from their
// revision's tags, its endpoints their addresses (endpoints). One ListTaskDefinitionFamilies of the owner's families tells which have no ACTIVE revision left
// (deregistered by hand): that task definition is Missing.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	var obs []providers.Observed
	var families []string // of each observation, in order
	err := p.services(ctx, func(svc types.Service) error {
		tags := tagMap(svc.Tags)
		k := wkey{owner.Instance, owner.Environment, target, tags[providers.LabelWorkload]}
		if aws.ToString(svc.Status) != "ACTIVE" || k.Workload == "" || !k.owns(tags) {
			return nil
		}
		o, family, err := p.observe(ctx, k, svc)
		if err != nil {
			return err
		}
		obs = append(obs, o)
		families = append(families, family)
		return nil
	})
	if err != nil {
		return nil, err
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

// services calls f with each service of the cluster, tags included: ListServices (ECS cannot filter by tag), then
// DescribeServices in batches of 10, its answer's order kept. A failed call (or f's error) ends it with that error,
// and the callers then return nothing of what f saw: a partial listing is never passed on.
func (p *Provider) services(ctx context.Context, f func(types.Service) error) error {
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
			return err
		}
		arns = append(arns, out.ServiceArns...)
		if next = out.NextToken; next == nil {
			break
		}
	}
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
			return err
		}
		for _, svc := range out.Services {
			if err := f(svc); err != nil {
				return err
			}
		}
	}
	return nil
}

// Environments lists the environments that have ACTIVE services of instance on target, from the services' tags
// alone, at the cost of the first part of a List: ListServices and DescribeServices (with tags) in batches of 10,
// nothing per service. Each environment is listed once, by name, with its LabelPreview (0 when absent or
// malformed) and the LabelHead of the service whose latest deployment is the newest.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	type env struct {
		ref  providers.EnvironmentRef
		when time.Time // of the deployment Head was read with
	}
	envs := map[string]*env{}
	err := p.services(ctx, func(svc types.Service) error {
		tags := tagMap(svc.Tags)
		name := tags[providers.LabelEnvironment]
		if aws.ToString(svc.Status) != "ACTIVE" || name == "" || tags[providers.LabelWorkload] == "" ||
			tags[providers.LabelInstance] != instance || tags[providers.LabelTarget] != target {
			return nil
		}
		e := envs[name]
		if e == nil {
			e = &env{ref: providers.EnvironmentRef{Name: name}}
			envs[name] = e
		}
		if n := previewNumber(tags[providers.LabelPreview]); n > e.ref.Preview {
			e.ref.Preview = n
		}
		if head := tags[providers.LabelHead]; head != "" {
			when := aws.ToTime(svc.CreatedAt)
			if len(svc.Deployments) > 0 {
				when = aws.ToTime(svc.Deployments[0].CreatedAt)
			}
			if e.ref.Head == "" || when.After(e.when) || when.Equal(e.when) && head > e.ref.Head {
				e.ref.Head, e.when = head, when
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]providers.EnvironmentRef, 0, len(envs))
	for _, e := range envs {
		out = append(out, e.ref)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// taskDetail is one detail of a task's ElasticNetworkInterface attachment ("" when absent).
func taskDetail(t types.Task, name string) string {
	for _, a := range t.Attachments {
		if aws.ToString(a.Type) != "ElasticNetworkInterface" {
			continue
		}
		for _, d := range a.Details {
			if aws.ToString(d.Name) == name {
				return aws.ToString(d.Value)
			}
		}
	}
	return ""
}

// taskAddress is the private IPv4 address of a task's ElasticNetworkInterface attachment, "" before ECS has
// attached one.
func taskAddress(t types.Task) string {
	if ip := net.ParseIP(taskDetail(t, "privateIPv4Address")); ip != nil && ip.To4() != nil {
		return ip.String()
	}
	return ""
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
	// Load balancing: the target groups' view of each task, the endpoints, the health check, what is missing.
	var st *lbState
	var health map[string]map[string]string
	lbs := svc.LoadBalancers
	if p.elb != nil && (len(lbs) > 0 || len(elbPorts(primary.spec)) > 0) {
		if st, err = p.observeLB(ctx, k, svc, primary.spec); err != nil {
			return o, "", err
		}
		if health, _, err = p.targetHealth(ctx, lbs); err != nil {
			return o, "", err
		}
		o.Missing = append(o.Missing, st.missing...)
	}
	votes := map[string]int{}
	ready := map[string]bool{} // task ARN → ready
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
		if len(lbs) > 0 && r.Health != "unhealthy" && r.Health != "starting" {
			r.Health = "starting"
			if r.Running {
				r.Health = taskTargetState(t, lbs, health) // ready only once every target group finds it healthy
			}
		}
		votes[info.hash]++
		ready[arn] = r.Ready()
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
	if st != nil {
		o.Endpoints = st.endpointsOf(o.Spec)
		if h := st.health(aws.ToInt32(svc.HealthCheckGracePeriodSeconds)); h != nil && o.Spec.Health == nil {
			o.Spec.Health = h
		}
	}
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
