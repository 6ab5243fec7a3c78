package aws_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
)

func count(emu *ecsemu.Server, op string) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Op == op {
			n++
		}
	}
	return n
}

func desired(w string) providers.Desired {
	wl := referenceWorkload(w)
	return providers.Desired{Owner: providers.Owner{Instance: "berth", Environment: "dev"}, Target: "aws-test",
		Workload: wl, SpecHash: providers.SpecHash(wl)}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Transient faults on the create are retried inside one Apply, and the service is created once.
func TestTransientFaultsRetried(t *testing.T) {
	hermetic(t)
	for _, kind := range []string{ecsemu.Throttle, ecsemu.ServerError, ecsemu.Unavailable, ecsemu.Conflict, ecsemu.Reset} {
		t.Run(kind, func(t *testing.T) {
			emu := emulator(t)
			p := newProvider(t, emu, "aws-test")
			emu.FailOp("CreateService", 3, kind)
			emu.FailOp("DescribeTasks", 2, kind)
			if err := p.Apply(testCtx(t), desired("web")); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if n := count(emu, "CreateService"); n != 4 {
				t.Errorf("CreateService sent %d times, want 4 (3 faults, then success)", n)
			}
			if active, running := emu.ServiceRunning(testCluster, "berth-berth-dev-web"); !active || running != 2 {
				t.Errorf("service active %t running %d, want true 2", active, running)
			}
		})
	}
}

// Beyond the retry budget a transient fault surfaces, and not as permanent: the reconciler retries later.
func TestRetryBudget(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	emu.Fail(1000, ecsemu.Throttle)
	err := p.Apply(testCtx(t), desired("web"))
	if err == nil || errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Fatalf("Apply = %v, want a transient ThrottlingException", err)
	}
	if n := len(emu.Requests()); n != p.RetryAttempts {
		t.Errorf("%d requests, want %d (the budget)", n, p.RetryAttempts)
	}
}

// A missing image fails the deployment (circuit breaker): a permanent error naming the cause, after one register
// and one create, not a hot loop.
func TestMissingImagePermanent(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	d := desired("web")
	emu.MissingImage(d.Workload.Image)
	err := p.Apply(testCtx(t), d)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "CannotPullContainerError") {
		t.Fatalf("Apply = %v, want a permanent error naming CannotPullContainerError", err)
	}
	if r, c := count(emu, "RegisterTaskDefinition"), count(emu, "CreateService"); r != 1 || c != 1 {
		t.Errorf("RegisterTaskDefinition %d, CreateService %d times; want 1 and 1", r, c)
	}
}

// A rollout to a missing image is rolled back by ECS; Apply reports it as permanent and the old tasks serve.
func TestFailedRolloutRolledBack(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	d := desired("web")
	if err := p.Apply(testCtx(t), d); err != nil {
		t.Fatal(err)
	}
	before := emu.LiveTasks(testCluster, "berth-berth-dev-web")
	d.Workload.Image = "registry.example/missing:2"
	d.SpecHash = providers.SpecHash(d.Workload)
	emu.MissingImage(d.Workload.Image)
	if err := p.Apply(testCtx(t), d); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply = %v, want permanent", err)
	}
	after := emu.LiveTasks(testCluster, "berth-berth-dev-web")
	if strings.Join(before, ",") != strings.Join(after, ",") {
		t.Errorf("old tasks %v replaced by %v after a failed rollout", before, after)
	}
}

// A Fargate size that does not exist is refused before any call, as permanent.
func TestInvalidSizePermanent(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	d := desired("web")
	d.Workload.Resources.MemoryBytes = 8 << 30 // 250m CPU gets at most 2 GiB
	d.SpecHash = providers.SpecHash(d.Workload)
	err := p.Apply(testCtx(t), d)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "resources.memory") {
		t.Fatalf("Apply = %v, want a permanent error on resources.memory", err)
	}
	if n := count(emu, "RegisterTaskDefinition"); n != 0 {
		t.Errorf("RegisterTaskDefinition sent %d times", n)
	}
}

// The API's own validation errors (here an unknown cluster) are permanent and not retried.
func TestAPIValidationPermanent(t *testing.T) {
	hermetic(t)
	emu := ecsemu.New(ecsemu.Options{Clusters: []string{"other"}})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu, "aws-test")
	err := p.Apply(testCtx(t), desired("web"))
	var nf *types.ClusterNotFoundException
	if !errors.Is(err, providers.ErrPermanent) || !errors.As(err, &nf) {
		t.Fatalf("Apply = %v, want a permanent ClusterNotFoundException", err)
	}
	if n := len(emu.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// The emulator answers as ECS does: the Fargate table, clientToken idempotency.
func TestEmulatorValidationAndTokens(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	ctx := testCtx(t)
	c := sdkClient(ctx, t, emu)
	_, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("x"), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("4096"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("img")}},
	})
	var ce *types.ClientException
	if !errors.As(err, &ce) || !strings.Contains(ce.ErrorMessage(), "No Fargate configuration exists") {
		t.Fatalf("RegisterTaskDefinition 256/4096 = %v, want ClientException", err)
	}
	td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("x"), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("img")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := func(count int32) *ecs.CreateServiceInput {
		return &ecs.CreateServiceInput{Cluster: aws.String(testCluster), ServiceName: aws.String("x"),
			TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(count),
			LaunchType: types.LaunchTypeFargate, ClientToken: aws.String("tok-1"),
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}}}
	}
	a, err := c.CreateService(ctx, in(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateService(ctx, in(1))
	if err != nil || aws.ToString(a.Service.ServiceArn) != aws.ToString(b.Service.ServiceArn) {
		t.Fatalf("repeated CreateService with the same token = %v, %v", b, err)
	}
	var ip *types.InvalidParameterException
	if _, err := c.CreateService(ctx, in(2)); !errors.As(err, &ip) || !strings.Contains(ip.ErrorMessage(), "not idempotent") {
		t.Fatalf("same token, other request = %v, want InvalidParameterException", err)
	}
	// Eventual consistency: the new service is missing from the first list.
	l1, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(testCluster)})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(testCluster)})
	if err != nil {
		t.Fatal(err)
	}
	if len(l1.ServiceArns) != 0 || len(l2.ServiceArns) != 1 {
		t.Errorf("ListServices gave %v then %v, want nothing then the service", l1.ServiceArns, l2.ServiceArns)
	}
}
