package aws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/providers/aws/secretsemu"
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
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "")
	// EC2 (the tasks' public IPs) has no target setting: a provider a test builds reaches EC2 at its emulator
	// (newProvider) or at a closed loopback port, never AWS.
	t.Setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:1")
	// ELBv2 likewise: a target names its emulator in elbv2Endpoint (target), else this closed port.
	t.Setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "http://127.0.0.1:1")
}

func emulator(t testing.TB) *ecsemu.Server {
	s := ecsemu.New(ecsemu.Options{Region: "eu-west-1", Clusters: []string{testCluster}})
	t.Cleanup(s.Close)
	return s
}

func target(name, endpoint string) schema.Target {
	return schema.Target{Name: name, Type: "aws", Settings: map[string]any{
		"type": "aws", "region": "eu-west-1", "cluster": testCluster, "endpoint": endpoint, "elbv2Endpoint": endpoint,
		"subnets": []any{"subnet-0a1b2c3d"}, "securityGroups": []any{"sg-0a1b2c3d"}, "assignPublicIp": true,
		"executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
	}}
}

// newProvider builds the provider through the registered factory, as the controller does, with test pacing.
func newProvider(t testing.TB, s *ecsemu.Server, targetName string) *berthaws.Provider {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_EC2", s.URL()) // the emulator answers EC2 (DescribeSubnets) too
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

// quickstartWorkload is the quickstart's web workload (examples/quickstart/berth.cue) as it is: one public port
// 8080, an HTTP check of GET /healthz on it every 2 s (ELBv2 checks every 5 s at the fastest), 250m CPU, 64 MiB,
// args ["serve"], 2 replicas.
func quickstartWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:      name,
		Image:     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/berth-app:1",
		Args:      []string{"serve"},
		Env:       map[string]string{"GREETING": "hello"},
		Ports:     []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}},
		Replicas:  2,
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 64 << 20},
		Health: &schema.HealthCheck{
			HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
			Interval: schema.Duration(2 * time.Second),
			Timeout:  schema.Duration(time.Second),
			Retries:  3,
		},
	}
}

// unhealthyImage is an image whose /healthz fails in the emulator (targetHealth).
const unhealthyImage = "registry.example/berth-app:unhealthy"

// targetHealth is the emulated load balancer's view of a target: healthy when a task runs at the address, checked
// on the port its target group names, and its image is not unhealthyImage.
func targetHealth(p ecsemu.HealthProbe) bool {
	return p.Image != "" && p.Image != unhealthyImage
}

// modifyTargetGroups edits, out of band, the health check of each target group of a workload (as an operator
// in the console would).
func modifyTargetGroups(ctx context.Context, t *testing.T, emu *ecsemu.Server, owner providers.Owner, target, workload string,
	edit func(*elb.ModifyTargetGroupInput)) {
	t.Helper()
	c := elbClient(ctx, t, emu)
	out, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tg := range out.TargetGroups {
		tags, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{aws.ToString(tg.TargetGroupArn)}})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tag := range tags.TagDescriptions[0].Tags {
			m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if m[providers.LabelWorkload] != workload || m[providers.LabelEnvironment] != owner.Environment ||
			m[providers.LabelInstance] != owner.Instance || m[providers.LabelTarget] != target {
			continue
		}
		in := &elb.ModifyTargetGroupInput{TargetGroupArn: tg.TargetGroupArn}
		edit(in)
		if _, err := c.ModifyTargetGroup(ctx, in); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no target group of %s", workload)
	}
}

// secretsEmulator is a Secrets Manager and SSM emulator in the test region.
func secretsEmulator(t testing.TB) *secretsemu.Server {
	s := secretsemu.New(secretsemu.Options{Region: "eu-west-1"})
	t.Cleanup(s.Close)
	return s
}

// storeClients are the real SDK clients on the secrets emulator, with static test credentials.
func storeClients(store *secretsemu.Server) (*secretsmanager.Client, *ssm.Client) {
	cfg := aws.Config{Region: "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXECUTIONROLE", "execution-role-secret-key", "")}
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(store.URL())
		o.Retryer = aws.NopRetryer{}
	})
	ps := ssm.NewFromConfig(cfg, func(o *ssm.Options) {
		o.BaseEndpoint = aws.String(store.URL())
		o.Retryer = aws.NopRetryer{}
	})
	return sm, ps
}

// resolver resolves a valueFrom from the store as the ECS agent does with the task execution role: a Secrets
// Manager ARN with ECS's optional :json-key:version-stage:version-id tail, or an SSM parameter ARN or name.
func resolver(store *secretsemu.Server) func(string) (string, error) {
	sm, ps := storeClients(store)
	return func(valueFrom string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		parts := strings.Split(valueFrom, ":")
		if len(parts) >= 7 && parts[2] == "secretsmanager" {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(strings.Join(parts[:7], ":"))}
			key := ""
			if len(parts) > 7 {
				key = parts[7]
			}
			if len(parts) > 8 && parts[8] != "" {
				in.VersionStage = aws.String(parts[8])
			}
			if len(parts) > 9 && parts[9] != "" {
				in.VersionId = aws.String(parts[9])
			}
			out, err := sm.GetSecretValue(ctx, in)
			if err != nil {
				return "", err
			}
			if key == "" {
				return aws.ToString(out.SecretString), nil
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil {
				return "", err
			}
			return fmt.Sprint(doc[key]), nil
		}
		out, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(valueFrom), WithDecryption: aws.Bool(true)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Parameter.Value), nil
	}
}

// emulatorWithStore is an ECS emulator whose tasks resolve their secrets[] from store when they start.
func emulatorWithStore(t testing.TB, store *secretsemu.Server) *ecsemu.Server {
	s := ecsemu.New(ecsemu.Options{Region: "eu-west-1", Clusters: []string{testCluster}, ResolveSecret: resolver(store)})
	t.Cleanup(s.Close)
	return s
}

// newProviderWithStore is newProvider with the target's secretsEndpoint on store.
func newProviderWithStore(t testing.TB, s *ecsemu.Server, store *secretsemu.Server, targetName string) *berthaws.Provider {
	t.Helper()
	tg := target(targetName, s.URL())
	tg.Settings["secretsEndpoint"] = store.URL()
	t.Setenv("AWS_ENDPOINT_URL_EC2", s.URL())
	pr, err := providers.New(tg, providers.Options{Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*berthaws.Provider)
	p.PollInterval = 2 * time.Millisecond
	p.RetryBase = time.Millisecond
	p.RetryMax = 5 * time.Millisecond
	return p
}
