package aws_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/berth-dev/berth/providers/aws/ecsemu"
)

// sdkClient is a plain ECS client on the emulator, for out-of-band calls of tests (an operator's StopTask).
func sdkClient(ctx context.Context, t *testing.T, emu *ecsemu.Server) *ecs.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	return ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(emu.URL()) })
}

func stopTask(ctx context.Context, t *testing.T, emu *ecsemu.Server, arn string) error {
	_, err := sdkClient(ctx, t, emu).StopTask(ctx, &ecs.StopTaskInput{
		Cluster: aws.String(testCluster), Task: aws.String(arn), Reason: aws.String("drift by hand")})
	return err
}

// elbClient is a plain ELBv2 client on the emulator, for out-of-band calls of tests (an operator's console edit).
func elbClient(ctx context.Context, t *testing.T, emu *ecsemu.Server) *elb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	return elb.NewFromConfig(cfg, func(o *elb.Options) {
		o.BaseEndpoint = aws.String(emu.URL())
		o.Retryer = aws.NopRetryer{}
	})
}
