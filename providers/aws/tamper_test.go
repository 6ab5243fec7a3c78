package aws_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers/aws/ecsemu"
)

// The hand edits of the tests, through the SDK against the emulator, as the ECS console or the AWS CLI makes them:
// "create new revision" from the service's current task definition with one field changed, then "update service"
// to it; or an UpdateService of the desired count; or a deregistration.

// currentTaskDefinition describes the service's current revision with its tags.
func currentTaskDefinition(ctx context.Context, t *testing.T, c *ecs.Client, service string) (*types.Service, *ecs.DescribeTaskDefinitionOutput) {
	t.Helper()
	out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(testCluster), Services: []string{service}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("tamper: DescribeServices %s: %v (%d services)", service, err, len(out.Services))
	}
	svc := out.Services[0]
	td, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.TaskDefinition,
		Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatalf("tamper: DescribeTaskDefinition %s: %v", aws.ToString(svc.TaskDefinition), err)
	}
	return &svc, td
}

// reviseTaskDefinition registers a copy of the service's current revision (its tags too, the spec hash
// included, as the console's "create new revision" keeps them) with edit applied, and points the service at it.
func reviseTaskDefinition(ctx context.Context, t *testing.T, emu *ecsemu.Server, service string, edit func(*ecs.RegisterTaskDefinitionInput)) {
	t.Helper()
	c := sdkClient(ctx, t, emu)
	_, cur := currentTaskDefinition(ctx, t, c, service)
	td := cur.TaskDefinition
	cds := slices.Clone(td.ContainerDefinitions)
	for i := range cds {
		cds[i].Environment = slices.Clone(cds[i].Environment)
		cds[i].PortMappings = slices.Clone(cds[i].PortMappings)
		if hc := cds[i].HealthCheck; hc != nil {
			h := *hc
			cds[i].HealthCheck = &h
		}
	}
	in := &ecs.RegisterTaskDefinitionInput{
		Family: td.Family, ContainerDefinitions: cds, Cpu: td.Cpu, Memory: td.Memory, NetworkMode: td.NetworkMode,
		RequiresCompatibilities: td.RequiresCompatibilities, ExecutionRoleArn: td.ExecutionRoleArn,
		TaskRoleArn: td.TaskRoleArn, Tags: cur.Tags,
	}
	edit(in)
	reg, err := c.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatalf("tamper: RegisterTaskDefinition: %v", err)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster), Service: aws.String(service),
		TaskDefinition: reg.TaskDefinition.TaskDefinitionArn}); err != nil {
		t.Fatalf("tamper: UpdateService: %v", err)
	}
}

// editContainer is a tamper of the "app" container of a new revision.
func editContainer(emu *ecsemu.Server, name func(string) string, edit func(*types.ContainerDefinition)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		reviseTaskDefinition(ctx, t, emu, name(workload), func(in *ecs.RegisterTaskDefinitionInput) {
			edit(&in.ContainerDefinitions[0])
		})
	}
}

// scaleByHand sets the service's desired count one higher, as "update service" with a new count does.
func scaleByHand(emu *ecsemu.Server, name func(string) string) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		c := sdkClient(ctx, t, emu)
		svc, _ := currentTaskDefinition(ctx, t, c, name(workload))
		if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster),
			Service: aws.String(name(workload)), DesiredCount: aws.Int32(svc.DesiredCount + 1)}); err != nil {
			t.Fatalf("tamper: UpdateService desiredCount: %v", err)
		}
	}
}

// deregisterCurrent deregisters the service's current revision (the tasks keep running on it, INACTIVE).
func deregisterCurrent(emu *ecsemu.Server, name func(string) string) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		c := sdkClient(ctx, t, emu)
		svc, _ := currentTaskDefinition(ctx, t, c, name(workload))
		if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: svc.TaskDefinition}); err != nil {
			t.Fatalf("tamper: DeregisterTaskDefinition: %v", err)
		}
	}
}

// foreignTag tags the service with a tag of someone else's (unmanaged) and returns a check that it is still there.
func foreignTag(emu *ecsemu.Server, name func(string) string) func(context.Context, *testing.T, string) func(context.Context) (bool, error) {
	return func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
		c := sdkClient(ctx, t, emu)
		svc, _ := currentTaskDefinition(ctx, t, c, name(workload))
		if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: svc.ServiceArn,
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}}); err != nil {
			t.Fatalf("unmanaged: TagResource: %v", err)
		}
		return func(ctx context.Context) (bool, error) {
			out, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: svc.ServiceArn})
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(out.Tags, func(tg types.Tag) bool {
				return aws.ToString(tg.Key) == "team" && aws.ToString(tg.Value) == "payments"
			}), nil
		}
	}
}
