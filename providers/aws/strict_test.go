package aws_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// validTaskDefinition is a registration the emulator accepts, for the strictness cases to spoil one field of.
func validTaskDefinition() *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("strict"), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("img"),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080), Protocol: types.TransportProtocolTcp, Name: aws.String("http")}},
			HealthCheck: &types.HealthCheck{Command: []string{"CMD", "/app", "healthcheck"}, Interval: aws.Int32(5),
				Timeout: aws.Int32(2), Retries: aws.Int32(3), StartPeriod: aws.Int32(0)},
		}},
	}
}

// wantAPIError checks that err is the SDK's typed error of the kind ECS answers, with a message containing msg.
func wantAPIError(t *testing.T, what string, err error, kind, msg string) {
	t.Helper()
	var ce *types.ClientException
	var ip *types.InvalidParameterException
	var got, text string
	switch {
	case errors.As(err, &ce):
		got, text = "ClientException", ce.ErrorMessage()
	case errors.As(err, &ip):
		got, text = "InvalidParameterException", ip.ErrorMessage()
	}
	if got != kind || !strings.Contains(text, msg) {
		t.Errorf("%s: got %v, want *types.%s containing %q", what, err, kind, msg)
	}
}

// The emulator refuses, with ECS's error types, the registrations ECS refuses: health check values out of the
// documented ranges, one container port in two mappings (TCP and UDP), enum values outside the SDK's own lists,
// missing required fields the SDK does not check itself (those it checks are in package ecsemu's tests), awsvpc
// host ports that differ from the container port, port names ECS cannot store.
func TestEmulatorRefusesTaskDefinitions(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	ctx := testCtx(t)
	c := sdkClient(ctx, t, emu)
	if _, err := c.RegisterTaskDefinition(ctx, validTaskDefinition()); err != nil {
		t.Fatalf("the valid registration: %v", err)
	}
	for _, tc := range []struct {
		name      string
		spoil     func(*ecs.RegisterTaskDefinitionInput)
		kind, msg string
	}{
		{"timeout 61", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.Timeout = aws.Int32(61)
		},
			"ClientException", "timeout value"},
		{"timeout 120", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.Timeout = aws.Int32(120)
		},
			"ClientException", "timeout value"},
		{"timeout 1", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.Timeout = aws.Int32(1)
		},
			"ClientException", "timeout value"},
		{"interval 4", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.Interval = aws.Int32(4)
		},
			"ClientException", "interval value"},
		{"retries 11", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.Retries = aws.Int32(11)
		},
			"ClientException", "retries value"},
		{"startPeriod 301", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.StartPeriod = aws.Int32(301)
		}, "ClientException", "startPeriod value"},
		{"check without CMD", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck.Command = []string{"/app", "healthcheck"}
		}, "ClientException", "command"},
		{"tcp and udp on one port", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].PortMappings = append(in.ContainerDefinitions[0].PortMappings,
				types.PortMapping{ContainerPort: aws.Int32(8080), Protocol: types.TransportProtocolUdp})
		}, "InvalidParameterException", "Container port 8080 is used in more than one port mapping for container app"},
		{"protocol", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].PortMappings[0].Protocol = types.TransportProtocol("sctp")
		}, "InvalidParameterException", "portMappings.protocol"},
		{"network mode", func(in *ecs.RegisterTaskDefinitionInput) { in.NetworkMode = types.NetworkMode("vpc") },
			"InvalidParameterException", "networkMode"},
		{"compatibility", func(in *ecs.RegisterTaskDefinitionInput) {
			in.RequiresCompatibilities = []types.Compatibility{"fargate"}
		}, "InvalidParameterException", "requiresCompatibilities"},
		{"no image", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Image = nil },
			"ClientException", "Container.image"},
		{"no container name", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Name = nil },
			"ClientException", "Container.name"},
		{"awsvpc host port", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].PortMappings[0].HostPort = aws.Int32(80)
		}, "ClientException", "host ports and container ports"},
		{"port name", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].PortMappings[0].Name = aws.String("HTTP")
		},
			"ClientException", "'name' setting"},
		{"fargate pair", func(in *ecs.RegisterTaskDefinitionInput) { in.Memory = aws.String("4096") },
			"ClientException", "No Fargate configuration exists"},
	} {
		in := validTaskDefinition()
		tc.spoil(in)
		_, err := c.RegisterTaskDefinition(ctx, in)
		wantAPIError(t, tc.name, err, tc.kind, tc.msg)
	}
}

// The emulator echoes a registration as ECS does: the awsvpc host port and the health check defaults filled in.
func TestEmulatorEchoesDefaults(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	ctx := testCtx(t)
	c := sdkClient(ctx, t, emu)
	in := validTaskDefinition()
	in.ContainerDefinitions[0].HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "true"}}
	out, err := c.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	cd := out.TaskDefinition.ContainerDefinitions[0]
	hc := cd.HealthCheck
	if aws.ToInt32(cd.PortMappings[0].HostPort) != 8080 || aws.ToInt32(hc.Interval) != 30 || aws.ToInt32(hc.Timeout) != 5 ||
		aws.ToInt32(hc.Retries) != 3 {
		t.Errorf("echoed port %+v, health check %+v; want host port 8080, interval 30, timeout 5, retries 3", cd.PortMappings[0], hc)
	}
}

// Service calls: enum values outside the SDK's lists, a launch type the task definition does not support.
func TestEmulatorRefusesServiceCalls(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	ctx := testCtx(t)
	c := sdkClient(ctx, t, emu)
	td, err := c.RegisterTaskDefinition(ctx, validTaskDefinition())
	if err != nil {
		t.Fatal(err)
	}
	ec2 := validTaskDefinition()
	ec2.Family, ec2.RequiresCompatibilities = aws.String("ec2-only"), []types.Compatibility{types.CompatibilityEc2}
	ec2td, err := c.RegisterTaskDefinition(ctx, ec2)
	if err != nil {
		t.Fatal(err)
	}
	create := func(spoil func(*ecs.CreateServiceInput)) error {
		in := &ecs.CreateServiceInput{Cluster: aws.String(testCluster), ServiceName: aws.String("strict"),
			TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
				Subnets: []string{"s"}, AssignPublicIp: types.AssignPublicIpEnabled}}}
		spoil(in)
		_, err := c.CreateService(ctx, in)
		return err
	}
	for _, tc := range []struct {
		name      string
		spoil     func(*ecs.CreateServiceInput)
		kind, msg string
	}{
		{"launch type", func(in *ecs.CreateServiceInput) { in.LaunchType = "SPOT" }, "InvalidParameterException", "launchType"},
		{"propagate tags", func(in *ecs.CreateServiceInput) { in.PropagateTags = "ALL" }, "InvalidParameterException", "propagateTags"},
		{"assign public ip", func(in *ecs.CreateServiceInput) {
			in.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp = "YES"
		}, "InvalidParameterException", "assignPublicIp"},
		{"deployment controller", func(in *ecs.CreateServiceInput) {
			in.DeploymentController = &types.DeploymentController{Type: "ROLLING"}
		}, "InvalidParameterException", "deploymentController.type"},
		{"scheduling strategy", func(in *ecs.CreateServiceInput) { in.SchedulingStrategy = "SPREAD" },
			"InvalidParameterException", "schedulingStrategy"},
		{"fargate on an EC2 task definition", func(in *ecs.CreateServiceInput) { in.TaskDefinition = ec2td.TaskDefinition.TaskDefinitionArn },
			"InvalidParameterException", "does not support launch_type FARGATE"},
	} {
		wantAPIError(t, tc.name, create(tc.spoil), tc.kind, tc.msg)
	}
	if err := create(func(*ecs.CreateServiceInput) {}); err != nil {
		t.Fatalf("the valid create: %v", err)
	}
	_, err = c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(testCluster), DesiredStatus: "DONE"})
	wantAPIError(t, "ListTasks desiredStatus", err, "InvalidParameterException", "desiredStatus")
	_, err = c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(testCluster), Services: []string{"strict"},
		Include: []types.ServiceField{"TAG"}})
	wantAPIError(t, "DescribeServices include", err, "InvalidParameterException", "include")
	_, err = c.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{Status: "GONE"})
	wantAPIError(t, "ListTaskDefinitionFamilies status", err, "InvalidParameterException", "status")
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster), Service: aws.String("strict"),
		TaskDefinition: ec2td.TaskDefinition.TaskDefinitionArn})
	wantAPIError(t, "UpdateService to an EC2 task definition", err, "InvalidParameterException", "does not support launch_type FARGATE")
}

// What the emulator refuses, the provider does not send: Validate refuses it at plan time, and Apply (called
// directly) clamps the health check into ECS's bounds and refuses a port shared by TCP and UDP before any call.
func TestProviderSendsNothingECSRefuses(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	d := desired("web")
	d.Workload.Health.Timeout = schema.Duration(120 * time.Second)
	d.Workload.Health.Interval = schema.Duration(300 * time.Second)
	d.Workload.Replicas = 1
	d.SpecHash = providers.SpecHash(d.Workload)
	var fields []string
	for _, pr := range p.Validate(d.Workload) {
		fields = append(fields, pr.Field)
	}
	if strings.Join(fields, ",") != "health.timeout" {
		t.Errorf("Validate of a 120 s timeout: problems on %v, want [health.timeout]", fields)
	}
	if err := p.Apply(testCtx(t), d); err != nil {
		t.Fatalf("Apply with a 120 s timeout: %v", err)
	}
	for _, r := range emu.Requests() {
		if r.Op != "RegisterTaskDefinition" {
			continue
		}
		var body struct {
			ContainerDefinitions []struct {
				HealthCheck struct{ Timeout int } `json:"healthCheck"`
			} `json:"containerDefinitions"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if got := body.ContainerDefinitions[0].HealthCheck.Timeout; got != 60 {
			t.Errorf("sent a health check timeout of %d s, want 60 (clamped)", got)
		}
	}

	emu.ResetRequests()
	u := desired("dns")
	u.Workload.Ports = []schema.Port{{Port: 53, Protocol: "tcp"}, {Port: 53, Protocol: "udp"}}
	u.SpecHash = providers.SpecHash(u.Workload)
	fields = nil
	for _, pr := range p.Validate(u.Workload) {
		fields = append(fields, pr.Field)
	}
	if strings.Join(fields, ",") != "ports[1].port" {
		t.Errorf("Validate of 53/tcp and 53/udp: problems on %v, want [ports[1].port]", fields)
	}
	if err := p.Apply(testCtx(t), u); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "ports[1].port") {
		t.Errorf("Apply of 53/tcp and 53/udp = %v, want a permanent error on ports[1].port", err)
	}
	if n := count(emu, "RegisterTaskDefinition"); n != 0 {
		t.Errorf("RegisterTaskDefinition sent %d times for a port ECS refuses", n)
	}
}

// LimitExceededException (a quota) is not retried: Apply fails at once, permanently, after one request.
func TestLimitExceededPermanent(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	emu.FailOp("RegisterTaskDefinition", 1, "limit")
	err := p.Apply(testCtx(t), desired("web"))
	var le *types.LimitExceededException
	if !errors.Is(err, providers.ErrPermanent) || !errors.As(err, &le) {
		t.Fatalf("Apply = %v, want a permanent *types.LimitExceededException", err)
	}
	if n := count(emu, "RegisterTaskDefinition"); n != 1 {
		t.Errorf("RegisterTaskDefinition sent %d times, want 1 (no retry)", n)
	}
}
