package aws

import (
	"context"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
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

// endpoints are where the public ports of spec answer: at addr of a running task (its interface's address, see
// addresses) and the container port. The task is the first by ARN among the ready ones with an address, else
// among the running ones; a port is left out while no such task has an address.
func endpoints(spec schema.Workload, tasks []types.Task, ready func(types.Task) bool, addr func(types.Task) string) []providers.Endpoint {
	var public []int
	for _, pt := range spec.Ports {
		if pt.Public {
			public = append(public, pt.Port)
		}
	}
	if len(public) == 0 {
		return nil
	}
	ip := ""
	for _, wantReady := range []bool{true, false} {
		best := ""
		for _, t := range tasks {
			a := addr(t)
			if a == "" || aws.ToString(t.LastStatus) != "RUNNING" || wantReady && !ready(t) {
				continue
			}
			if id := aws.ToString(t.TaskArn); best == "" || id < best {
				best, ip = id, a
			}
		}
		if ip != "" {
			break
		}
	}
	if ip == "" {
		return nil
	}
	out := make([]providers.Endpoint, 0, len(public))
	for _, port := range public {
		out = append(out, providers.Endpoint{Port: port, Address: net.JoinHostPort(ip, strconv.Itoa(port))})
	}
	return out
}

// addresses returns where clients reach each running task of a workload with public ports: the private IPv4
// address of its ElasticNetworkInterface attachment (ECS's answer) when the target assigns no public IP; with
// assignPublicIp the public IP of that interface, which only EC2 tells (one DescribeNetworkInterfaces of the
// running tasks' interfaces). EC2 failing (a missing ec2:DescribeNetworkInterfaces permission, an interface gone
// between the two answers, an outage) leaves the public addresses unknown for this pass, logged, and List goes
// on: the endpoints are left out, never guessed.
func (p *Provider) addresses(ctx context.Context, k wkey, tasks []types.Task) func(types.Task) string {
	if !p.set.assignPublicIP {
		return taskAddress
	}
	var ids []string
	for _, t := range tasks {
		if id := taskDetail(t, "networkInterfaceId"); id != "" && aws.ToString(t.LastStatus) == "RUNNING" {
			ids = append(ids, id)
		}
	}
	public := map[string]string{}
	if p.ec2 != nil && len(ids) > 0 {
		var out *ec2.DescribeNetworkInterfacesOutput
		err := p.callEC2(ctx, "DescribeNetworkInterfaces", func(ctx context.Context) error {
			var err error
			out, err = p.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
				NetworkInterfaceIds: ids[:min(len(ids), maxENIIDs)], IncludeManagedResources: aws.Bool(true)})
			return err
		})
		if err != nil {
			p.log.WarnContext(ctx, "reading the tasks' public IPs (ec2:DescribeNetworkInterfaces); endpoints left out",
				"env", k.Environment, "workload", k.Workload, "error", err)
		} else {
			for _, ni := range out.NetworkInterfaces {
				if a := ni.Association; a != nil {
					if ip := net.ParseIP(aws.ToString(a.PublicIp)); ip != nil && ip.To4() != nil {
						public[aws.ToString(ni.NetworkInterfaceId)] = ip.String()
					}
				}
			}
		}
	}
	return func(t types.Task) string { return public[taskDetail(t, "networkInterfaceId")] }
}

// maxENIIDs bounds the interfaces of one DescribeNetworkInterfaces (EC2's limit of listed values).
const maxENIIDs = 1000

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
	if slices.ContainsFunc(o.Spec.Ports, func(pt schema.Port) bool { return pt.Public }) {
		o.Endpoints = endpoints(o.Spec, tasks, func(t types.Task) bool { return ready[aws.ToString(t.TaskArn)] },
			p.addresses(ctx, k, tasks))
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
