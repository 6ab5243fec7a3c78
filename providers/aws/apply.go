package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
)

// Apply converges one workload: a task definition revision that runs the spec (the service's current one or the
// family's latest active one when it is ours, ACTIVE and its own fields equal the spec; a new registration
// otherwise, so a revision edited by hand is replaced even when it kept berth's spec-hash tag), then CreateService
// (with a deterministic clientToken) or UpdateService (new revision or desired count). ECS rolls out
// make-before-break (minimumHealthyPercent 100, circuit breaker with rollback) and replaces stopped tasks itself;
// Apply waits until the primary deployment is COMPLETED and exactly Replicas tasks of the revision run ready, then
// deregisters the family's other revisions berth owns (the one replaced, and any a hand edit left ACTIVE).
//
// Secrets go first: an AWS reference is put in the container's secrets[] as it is; a SOPS value is written to
// berth's own Secrets Manager secret (CreateSecret, or PutSecretValue of a new version when the value rotated)
// before the revision that pins that version is registered, so the new tasks read the new value while the old
// ones, until they stop, keep theirs; a berth secret the workload no longer uses is deleted after the rollout.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	k := wkey{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name}
	log := p.log.With("env", k.Environment, "workload", k.Workload, "revision", d.SpecHash)
	name := resourceName(k)

	svc, err := p.describeService(ctx, name)
	if err != nil {
		return err
	}
	if svc != nil && !k.owns(tagMap(svc.Tags)) {
		return providers.Permanent(fmt.Errorf("ecs service %s in cluster %s exists and is not owned by berth instance %q environment %q; rename or remove it",
			name, p.set.cluster, k.Instance, k.Environment))
	}
	current := ""
	if svc != nil {
		current = aws.ToString(svc.TaskDefinition)
	}
	ptags := previewTags(d.Owner, d.Preview)
	if svc != nil {
		if err := p.retag(ctx, k, svc, ptags); err != nil {
			return err
		}
	}
	refs, err := p.secretRefs(ctx, k, d)
	if err != nil {
		return err
	}
	tdArn, err := p.ensureTaskDefinition(ctx, k, d, refs, current)
	if err != nil {
		return err
	}
	lbs, _, err := p.ensureLoadBalancing(ctx, k, d.Workload)
	if err != nil {
		return err
	}
	grace := gracePeriod(d.Workload, lbs)
	replicas := int32(d.Workload.Replicas)
	var replaced string
	var oldLBs []types.LoadBalancer
	if svc != nil {
		oldLBs = svc.LoadBalancers
	}
	lbChanged := svc != nil && (!sameLoadBalancers(svc.LoadBalancers, lbs) ||
		(grace != nil && aws.ToInt32(svc.HealthCheckGracePeriodSeconds) != *grace))
	switch {
	case svc == nil:
		log.InfoContext(ctx, "creating ecs service", "service", name, "taskDefinition", tdArn)
		in := &ecs.CreateServiceInput{
			Cluster:                       aws.String(p.set.cluster),
			ServiceName:                   aws.String(name),
			TaskDefinition:                aws.String(tdArn),
			DesiredCount:                  aws.Int32(replicas),
			LaunchType:                    types.LaunchTypeFargate,
			NetworkConfiguration:          p.networkConfiguration(),
			DeploymentConfiguration:       deploymentConfiguration(),
			PropagateTags:                 types.PropagateTagsTaskDefinition,
			EnableECSManagedTags:          true,
			Tags:                          append(ownerTags(k), ptags...),
			ClientToken:                   aws.String(clientToken(k, d.SpecHash, d.Workload.Replicas, ptags, lbs...)),
			LoadBalancers:                 lbs,
			HealthCheckGracePeriodSeconds: grace,
		}
		if err := p.call(ctx, "CreateService", func(ctx context.Context) error {
			_, err := p.client.CreateService(ctx, in)
			return err
		}); err != nil {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
	case aws.ToString(svc.TaskDefinition) != tdArn || svc.DesiredCount != replicas || lbChanged:
		if aws.ToString(svc.TaskDefinition) != tdArn {
			replaced = aws.ToString(svc.TaskDefinition)
		}
		log.InfoContext(ctx, "updating ecs service", "service", name, "taskDefinition", tdArn, "desiredCount", replicas)
		in := &ecs.UpdateServiceInput{
			Cluster:        aws.String(p.set.cluster),
			Service:        aws.String(name),
			TaskDefinition: aws.String(tdArn),
			DesiredCount:   aws.Int32(replicas),
		}
		if lbChanged {
			in.LoadBalancers = lbs
			if in.LoadBalancers == nil {
				in.LoadBalancers = []types.LoadBalancer{} // none: ECS removes them
			}
			in.HealthCheckGracePeriodSeconds = grace
		}
		if err := p.call(ctx, "UpdateService", func(ctx context.Context) error {
			_, err := p.client.UpdateService(ctx, in)
			return err
		}); err != nil {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
	}
	if err := p.waitConverged(ctx, name, tdArn, replicas, lbs); err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	if replaced != "" || svc == nil {
		p.deregisterStale(ctx, k, name, tdArn)
	}
	if lbChanged && len(oldLBs) > 0 {
		if err := p.pruneLoadBalancing(ctx, k, d.Workload, oldLBs, lbs); err != nil {
			log.WarnContext(ctx, "removing load balancing the workload no longer uses", "error", err)
		}
	}
	return nil
}

// deregisterStale deregisters the family's ACTIVE revisions berth owns other than keep: the one replaced, and any
// left by a hand edit (the revision a console edit moved the service away from) or a crash. So the family keeps
// one ACTIVE revision, the one the service runs, and List can tell from the family alone when someone
// deregistered it. Errors are only logged: a leftover revision costs nothing and the next Apply or Delete
// removes it.
//
// Then berth's Secrets Manager secrets that those revisions named and the kept one does not (a secret the
// workload no longer uses) are deleted: the old tasks are stopped by now. Errors are only logged too.
func (p *Provider) deregisterStale(ctx context.Context, k wkey, family, keep string) {
	arns, err := p.familyRevisions(ctx, family)
	var gone []tdInfo
	for _, arn := range arns {
		if arn != keep && err == nil {
			var info tdInfo
			info, err = p.deregisterOwned(ctx, k, arn)
			gone = append(gone, info)
		}
	}
	if err != nil {
		p.log.WarnContext(ctx, "deregistering replaced task definitions", "env", k.Environment, "workload", k.Workload,
			"family", family, "error", err)
	}
	kept, _ := p.cached(keep)
	used := map[string]bool{}
	for _, a := range ownedSecretARNs(k, kept) {
		used[a] = true
	}
	var unused []string
	for _, a := range ownedSecretARNs(k, gone...) {
		if !used[a] {
			unused = append(unused, a)
		}
	}
	if err := p.deleteSecrets(ctx, k, unused); err != nil {
		p.log.WarnContext(ctx, "deleting secrets no longer used", "env", k.Environment, "workload", k.Workload, "error", err)
	}
}

// retag brings the service's preview tags (LabelPreview, LabelHead) to want with one TagResource when one differs:
// a new head of a preview is told by the service even when its task definition is unchanged. A head the desired
// state does not give is left as it is (it is informational).
func (p *Provider) retag(ctx context.Context, k wkey, svc *types.Service, want []types.Tag) error {
	have := tagMap(svc.Tags)
	var change []types.Tag
	for _, t := range want {
		if have[aws.ToString(t.Key)] != aws.ToString(t.Value) {
			change = append(change, t)
		}
	}
	if len(change) == 0 {
		return nil
	}
	p.log.InfoContext(ctx, "tagging ecs service", "env", k.Environment, "workload", k.Workload,
		"service", aws.ToString(svc.ServiceName), "tags", len(change))
	if err := p.call(ctx, "TagResource", func(ctx context.Context) error {
		_, err := p.client.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: svc.ServiceArn, Tags: change})
		return err
	}); err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	svc.Tags = append(svc.Tags, change...) // later values win in tagMap
	return nil
}

// describeService returns the named service, or nil when it does not exist or is INACTIVE (deleted).
func (p *Provider) describeService(ctx context.Context, name string) (*types.Service, error) {
	var out *ecs.DescribeServicesOutput
	err := p.call(ctx, "DescribeServices", func(ctx context.Context) error {
		var err error
		out, err = p.client.DescribeServices(ctx, &ecs.DescribeServicesInput{
			Cluster: aws.String(p.set.cluster), Services: []string{name},
			Include: []types.ServiceField{types.ServiceFieldTags},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range out.Services {
		if s := &out.Services[i]; aws.ToString(s.ServiceName) == name && aws.ToString(s.Status) != "INACTIVE" {
			return s, nil
		}
	}
	return nil, nil
}

// ensureTaskDefinition returns the ARN of an ACTIVE revision of the workload's family that carries d.SpecHash and
// whose own fields run d.Workload: current (the service's revision) or the family's latest active one when one
// is (a repeat, or a retry after a crash), a new registration otherwise. Both are described afresh: a revision's
// status is not immutable.
func (p *Provider) ensureTaskDefinition(ctx context.Context, k wkey, d providers.Desired, secretRefs map[string]string, current string) (string, error) {
	in, err := p.taskDefinitionInput(k, d, secretRefs)
	if err != nil {
		return "", err
	}
	family := aws.ToString(in.Family)
	refs := []string{family}
	if current != "" {
		refs = []string{current, family}
	}
	for _, ref := range refs {
		arn, info, status, ok, err := p.describeTaskDefinition(ctx, ref, true)
		if err != nil {
			return "", err
		}
		if ok && status == "ACTIVE" && info.family == family && info.owned == k && info.hash == d.SpecHash &&
			p.sameTask(info.spec, d.Workload) && sameSecrets(info.secrets, in.ContainerDefinitions[0].Secrets) {
			return arn, nil
		}
	}
	var out *ecs.RegisterTaskDefinitionOutput
	if err := p.call(ctx, "RegisterTaskDefinition", func(ctx context.Context) error {
		var err error
		out, err = p.client.RegisterTaskDefinition(ctx, in)
		return err
	}); err != nil {
		return "", fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	p.remember(arn, readTaskDefinition(out.TaskDefinition, out.Tags))
	return arn, nil
}

// describeTaskDefinition reads a revision (by ARN) or a family's latest active one; ok is false when none exists.
// A revision is served from the cache unless fresh (then status is ECS's answer; from the cache it is "").
func (p *Provider) describeTaskDefinition(ctx context.Context, ref string, fresh bool) (string, tdInfo, string, bool, error) {
	if strings.HasPrefix(ref, "arn:") && !fresh {
		p.mu.Lock()
		info, ok := p.tds[ref]
		p.mu.Unlock()
		if ok {
			return ref, info, "", true, nil
		}
	}
	var out *ecs.DescribeTaskDefinitionOutput
	err := p.call(ctx, "DescribeTaskDefinition", func(ctx context.Context) error {
		var err error
		out, err = p.client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(ref), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
		})
		return err
	})
	var ce *types.ClientException
	if errors.As(err, &ce) && strings.Contains(ce.ErrorMessage(), "Unable to describe task definition") {
		return "", tdInfo{}, "", false, nil
	}
	if err != nil {
		return "", tdInfo{}, "", false, err
	}
	arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	info := readTaskDefinition(out.TaskDefinition, out.Tags)
	p.remember(arn, info)
	return arn, info, string(out.TaskDefinition.Status), true, nil
}

func (p *Provider) remember(arn string, info tdInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tds[arn] = info
}

// waitConverged polls until the service's only deployment is the primary one on tdArn, COMPLETED, running
// replicas tasks, and exactly replicas ready tasks of tdArn are listed. A failed rollout (circuit breaker) is a
// permanent error naming why the tasks stopped.
func (p *Provider) waitConverged(ctx context.Context, name, tdArn string, replicas int32, lbs []types.LoadBalancer) error {
	for {
		why, err := p.convergedWhy(ctx, name, tdArn, replicas, lbs)
		if err != nil || why == "" {
			return err
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("waiting for service %s: %s: %w", name, why, err)
		}
	}
}

func (p *Provider) convergedWhy(ctx context.Context, name, tdArn string, replicas int32, lbs []types.LoadBalancer) (string, error) {
	svc, err := p.describeService(ctx, name)
	if err != nil {
		return "", err
	}
	if svc == nil {
		return "service not visible yet", nil
	}
	for _, dep := range svc.Deployments {
		if aws.ToString(dep.TaskDefinition) == tdArn && dep.RolloutState == types.DeploymentRolloutStateFailed {
			return "", providers.Permanent(fmt.Errorf("ecs service %s: deployment of %s failed: %s%s", name, tdArn,
				aws.ToString(dep.RolloutStateReason), p.stoppedReason(ctx, name, tdArn)))
		}
	}
	switch {
	case aws.ToString(svc.Status) != "ACTIVE":
		return "service " + aws.ToString(svc.Status), nil
	case len(svc.Deployments) > 0 && aws.ToString(svc.Deployments[0].TaskDefinition) != tdArn:
		// Only ECS's circuit breaker (or another hand) moves the primary deployment off what Apply asked for.
		return "", providers.Permanent(fmt.Errorf("ecs service %s: the primary deployment runs %s, not %s: %s%s", name,
			aws.ToString(svc.Deployments[0].TaskDefinition), tdArn, aws.ToString(svc.Deployments[0].RolloutStateReason),
			p.stoppedReason(ctx, name, tdArn)))
	case len(svc.Deployments) != 1:
		return fmt.Sprintf("%d deployments in flight", len(svc.Deployments)), nil
	case svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted:
		return "rollout " + string(svc.Deployments[0].RolloutState), nil
	case svc.DesiredCount != replicas || svc.RunningCount != replicas:
		return fmt.Sprintf("running %d, desired %d, want %d", svc.RunningCount, svc.DesiredCount, replicas), nil
	}
	tasks, err := p.tasks(ctx, name, types.DesiredStatusRunning)
	if err != nil {
		return "", err
	}
	var health map[string]map[string]string
	if len(lbs) > 0 {
		var gone []string
		if health, gone, err = p.targetHealth(ctx, lbs); err != nil {
			return "", err
		}
		if len(gone) > 0 {
			return "", fmt.Errorf("ecs service %s: target group %s is gone", name, targetGroupName(gone[0]))
		}
	}
	ready := 0
	for _, t := range tasks {
		info, ok := p.cached(aws.ToString(t.TaskDefinitionArn))
		if aws.ToString(t.TaskDefinitionArn) == tdArn && aws.ToString(t.LastStatus) == "RUNNING" &&
			(!ok || !info.hasHealth || t.HealthStatus == types.HealthStatusHealthy) &&
			(len(lbs) == 0 || taskTargetState(t, lbs, health) == "healthy") {
			ready++
		}
	}
	if len(tasks) != int(replicas) || ready != int(replicas) {
		return fmt.Sprintf("%d tasks listed, %d ready on the spec (healthy in the target groups too), want %d", len(tasks), ready, replicas), nil
	}
	return "", nil
}

func (p *Provider) cached(arn string) (tdInfo, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info, ok := p.tds[arn]
	return info, ok
}

// stoppedReason returns ": <reason>" of a stopped task of tdArn, for the error of a failed rollout ("" if none).
func (p *Provider) stoppedReason(ctx context.Context, name, tdArn string) string {
	tasks, err := p.tasks(ctx, name, types.DesiredStatusStopped)
	if err != nil {
		return ""
	}
	for _, t := range tasks {
		if aws.ToString(t.TaskDefinitionArn) == tdArn && aws.ToString(t.StoppedReason) != "" {
			return "; a task stopped with: " + aws.ToString(t.StoppedReason)
		}
	}
	return ""
}

// tasks lists and describes a service's tasks of one desired status.
func (p *Provider) tasks(ctx context.Context, service string, status types.DesiredStatus) ([]types.Task, error) {
	var arns []string
	var next *string
	for {
		var out *ecs.ListTasksOutput
		if err := p.call(ctx, "ListTasks", func(ctx context.Context) error {
			var err error
			out, err = p.client.ListTasks(ctx, &ecs.ListTasksInput{
				Cluster: aws.String(p.set.cluster), ServiceName: aws.String(service), DesiredStatus: status, NextToken: next,
			})
			return err
		}); err != nil {
			return nil, err
		}
		arns = append(arns, out.TaskArns...)
		if next = out.NextToken; next == nil {
			break
		}
	}
	var tasks []types.Task
	for start := 0; start < len(arns); start += 100 {
		batch := arns[start:min(start+100, len(arns))]
		var out *ecs.DescribeTasksOutput
		if err := p.call(ctx, "DescribeTasks", func(ctx context.Context) error {
			var err error
			out, err = p.client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(p.set.cluster), Tasks: batch})
			return err
		}); err != nil {
			return nil, err
		}
		tasks = append(tasks, out.Tasks...)
	}
	return tasks, nil
}

// Delete removes the workload's service (forced: ECS scales it to 0 and stops its tasks), waits until it is
// INACTIVE, then deregisters the family's revisions berth owns and deletes the Secrets Manager secrets berth made
// for them (ForceDeleteWithoutRecovery). Only objects carrying the owner's tags are touched.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	k := wkey{owner.Instance, owner.Environment, target, workload}
	name := resourceName(k)
	svc, err := p.describeService(ctx, name)
	if err != nil {
		return err
	}
	var running []tdInfo    // the service's revision, even if deregistered by hand: its secrets go too
	var tgArns []string     // the service's target groups, removed once it is gone
	lbCleanup := svc == nil // a Delete resumed after the service went: its load balancing may be left
	if svc != nil && k.owns(tagMap(svc.Tags)) {
		for _, lb := range svc.LoadBalancers {
			tgArns = append(tgArns, aws.ToString(lb.TargetGroupArn))
		}
		lbCleanup = len(svc.LoadBalancers) > 0
		if _, info, _, ok, err := p.describeTaskDefinition(ctx, aws.ToString(svc.TaskDefinition), false); err == nil && ok && info.owned == k {
			running = append(running, info)
		}
		if aws.ToString(svc.Status) == "ACTIVE" {
			p.log.InfoContext(ctx, "deleting ecs service", "env", k.Environment, "workload", k.Workload, "service", name)
			err := p.call(ctx, "DeleteService", func(ctx context.Context) error {
				_, err := p.client.DeleteService(ctx, &ecs.DeleteServiceInput{
					Cluster: aws.String(p.set.cluster), Service: aws.String(name), Force: aws.Bool(true)})
				return err
			})
			var nf *types.ServiceNotFoundException
			var na *types.ServiceNotActiveException
			if err != nil && !errors.As(err, &nf) && !errors.As(err, &na) {
				return fmt.Errorf("workload %s: %w", workload, err)
			}
		}
		for {
			s, err := p.describeService(ctx, name)
			if err != nil {
				return fmt.Errorf("workload %s: %w", workload, err)
			}
			if s == nil {
				break
			}
			if err := providers.Sleep(ctx, p.PollInterval); err != nil {
				return fmt.Errorf("workload %s: waiting for service %s to drain: %w", workload, name, err)
			}
		}
	}
	if lbCleanup {
		if err := p.deleteLoadBalancing(ctx, k, tgArns); err != nil {
			return fmt.Errorf("workload %s: %w", workload, err)
		}
	}
	return p.deregisterFamily(ctx, k, name, running...)
}

// deregisterFamily deregisters every active revision of the family that carries k's tags, then deletes berth's
// Secrets Manager secrets those revisions and also name.
func (p *Provider) deregisterFamily(ctx context.Context, k wkey, family string, also ...tdInfo) error {
	arns, err := p.familyRevisions(ctx, family)
	if err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	gone := also
	for _, arn := range arns {
		info, err := p.deregisterOwned(ctx, k, arn)
		if err != nil {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
		gone = append(gone, info)
	}
	if err := p.deleteSecrets(ctx, k, ownedSecretARNs(k, gone...)); err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	return nil
}

// familyRevisions lists the ACTIVE revisions of one family (ListTaskDefinitions takes the full family name).
func (p *Provider) familyRevisions(ctx context.Context, family string) ([]string, error) {
	var next *string
	var arns []string
	for {
		var out *ecs.ListTaskDefinitionsOutput
		if err := p.call(ctx, "ListTaskDefinitions", func(ctx context.Context) error {
			var err error
			out, err = p.client.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{
				FamilyPrefix: aws.String(family), Status: types.TaskDefinitionStatusActive, NextToken: next})
			return err
		}); err != nil {
			return nil, err
		}
		for _, arn := range out.TaskDefinitionArns {
			if strings.HasSuffix(arn[:strings.LastIndex(arn, ":")], "/"+family) { // only this family's, whatever ECS lists
				arns = append(arns, arn)
			}
		}
		if next = out.NextToken; next == nil {
			return arns, nil
		}
	}
}

// deregisterOwned deregisters one revision if it carries k's tags, and returns what it said (the zero tdInfo for
// a revision not k's). Apply ignores its error: a leftover revision costs nothing and the next Delete removes it.
func (p *Provider) deregisterOwned(ctx context.Context, k wkey, arn string) (tdInfo, error) {
	_, info, _, ok, err := p.describeTaskDefinition(ctx, arn, false)
	if err != nil || !ok || info.owned != k {
		return tdInfo{}, err
	}
	return info, p.call(ctx, "DeregisterTaskDefinition", func(ctx context.Context) error {
		_, err := p.client.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		return err
	})
}
