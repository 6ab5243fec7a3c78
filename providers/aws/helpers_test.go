package aws_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/schema"
)

const testCluster = "berth-test"

// hermetic points the AWS SDK at static credentials and away from the developer's files and instance metadata.
func hermetic(t testing.TB) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", home+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", home+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_ECS", "")
}

func emulator(t testing.TB) *ecsemu.Server {
	s := ecsemu.New(ecsemu.Options{Region: "eu-west-1", Clusters: []string{testCluster}})
	t.Cleanup(s.Close)
	return s
}

func target(name, endpoint string) schema.Target {
	return schema.Target{Name: name, Type: "aws", Settings: map[string]any{
		"type": "aws", "region": "eu-west-1", "cluster": testCluster, "endpoint": endpoint,
		"subnets": []any{"subnet-0a1b2c3d"}, "securityGroups": []any{"sg-0a1b2c3d"}, "assignPublicIp": true,
		"executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
	}}
}

// newProvider builds the provider through the registered factory, as the controller does, with test pacing.
func newProvider(t testing.TB, s *ecsemu.Server, targetName string) *berthaws.Provider {
	t.Helper()
	pr, err := providers.New(target(targetName, s.URL()), providers.Options{Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*berthaws.Provider)
	p.PollInterval = 2 * time.Millisecond
	p.RetryBase = time.Millisecond
	p.RetryMax = 5 * time.Millisecond
	return p
}

// referenceWorkload is the HTTP service of the goldens and the conformance suite, as ECS without a load balancer
// can run it: an internal port and a command health check (exec form; ECS runs it inside the container).
func referenceWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:      name,
		Image:     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/berth-app:1",
		Args:      []string{"serve"},
		Env:       map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:     []schema.Port{{Name: "http", Port: 8080, Protocol: "tcp"}},
		Replicas:  2,
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20},
		Health: &schema.HealthCheck{
			Command:  []string{"/app", "healthcheck"},
			Interval: schema.Duration(5 * time.Second),
			Timeout:  schema.Duration(2 * time.Second),
			Retries:  3,
		},
	}
}
