package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Names and labels beyond the shared ownership tags of package providers. ECS tag keys allow letters, digits,
// spaces and + - = . _ : / @, so the providers.Label* keys are used as they are.
const (
	// LabelSpec is the container docker label holding the applied workload as JSON, without env values (they are
	// the task definition's environment) and replicas (the service's desired count): List reads it back for diffs.
	LabelSpec = "berth.dev/spec"
	// ContainerName is the one container of every task definition.
	ContainerName = "app"
	// maxNameLen is ECS's limit on family and service names.
	maxNameLen = 255
)

// wkey identifies one owned workload on one target.
type wkey struct {
	Instance, Environment, Target, Workload string
}

// resourceName is the task definition family and the service name: berth-<instance>-<env>-<workload>, with
// characters outside [a-zA-Z0-9_-] mapped to '-', cut to 255 with a hash suffix when longer. Deterministic, so a
// retry after a crash finds what exists.
func resourceName(k wkey) string {
	raw := "berth-" + k.Instance + "-" + k.Environment + "-" + k.Workload
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) <= maxNameLen && name == raw {
		return name
	}
	sum := sha256.Sum256([]byte(raw))
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	if len(name) > maxNameLen-len(suffix) {
		name = name[:maxNameLen-len(suffix)]
	}
	return name + suffix
}

// clientToken is CreateService's idempotency token (at most 36 characters): the same workload, spec and count
// always give the same token, so a create repeated after a lost answer or a crash is deduplicated by ECS.
func clientToken(k wkey, hash string, replicas int) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"create-service", k.Instance, k.Environment, k.Target, k.Workload,
		hash, strconv.Itoa(replicas)}, "\x00")))
	return "berth-" + hex.EncodeToString(sum[:])[:30]
}

// ownerTags are the ownership tags of the service; the task definition also carries the spec hash.
func ownerTags(k wkey) []types.Tag {
	return []types.Tag{
		{Key: aws.String(providers.LabelInstance), Value: aws.String(k.Instance)},
		{Key: aws.String(providers.LabelEnvironment), Value: aws.String(k.Environment)},
		{Key: aws.String(providers.LabelTarget), Value: aws.String(k.Target)},
		{Key: aws.String(providers.LabelWorkload), Value: aws.String(k.Workload)},
	}
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// owns tells whether tags carry exactly this workload's ownership.
func (k wkey) owns(tags map[string]string) bool {
	return tags[providers.LabelInstance] == k.Instance && tags[providers.LabelEnvironment] == k.Environment &&
		tags[providers.LabelTarget] == k.Target && tags[providers.LabelWorkload] == k.Workload
}

// Fargate task sizes: CPU units and the valid memory values (MiB) of each.
var (
	fargateCPU    = []int{256, 512, 1024, 2048, 4096, 8192, 16384}
	fargateMemory = map[int][]int{
		256:   {512, 1024, 2048},
		512:   steps(1024, 4096, 1024),
		1024:  steps(2048, 8192, 1024),
		2048:  steps(4096, 16384, 1024),
		4096:  steps(8192, 30720, 1024),
		8192:  steps(16384, 61440, 4096),
		16384: steps(32768, 122880, 8192),
	}
)

func steps(from, to, step int) []int {
	var out []int
	for v := from; v <= to; v += step {
		out = append(out, v)
	}
	return out
}

// fargateSize maps requests to the smallest Fargate task size that holds them: CPU millis to units (1024 per
// CPU) rounded up to a valid value, memory rounded up to a valid value for that CPU. A request Fargate cannot hold
// is a problem on resources.cpu or resources.memory.
func fargateSize(r schema.Resources) (cpu, mem int, problems []providers.Problem) {
	units := int((r.CPUMillis*1024 + 999) / 1000)
	for _, c := range fargateCPU {
		if c >= units {
			cpu = c
			break
		}
	}
	if cpu == 0 {
		return 0, 0, []providers.Problem{{Field: "resources.cpu",
			Message: fmt.Sprintf("Fargate tasks have at most 16 vCPU (16384 units); %dm asks for %d units", r.CPUMillis, units)}}
	}
	mib := int((r.MemoryBytes + 1<<20 - 1) >> 20)
	valid := fargateMemory[cpu]
	for _, m := range valid {
		if m >= mib {
			return cpu, m, nil
		}
	}
	return cpu, 0, []providers.Problem{{Field: "resources.memory",
		Message: fmt.Sprintf("Fargate gives a task of %d CPU units at most %d MiB; %d MiB asked: raise resources.cpu or lower resources.memory",
			cpu, valid[len(valid)-1], mib)}}
}

// Health check bounds of ECS container health checks, in seconds (retries: count).
const (
	minInterval, maxInterval       = 5, 300
	minTimeout, maxTimeout         = 2, 120
	minRetries, maxRetries         = 1, 10
	minStartPeriod, maxStartPeriod = 0, 300
)

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

// healthCheck maps a command check to the ECS exec form; HTTP and TCP checks have no ECS equivalent without a
// shell in the image and a load balancer (Validate reports them) and map to none.
func healthCheck(h *schema.HealthCheck) *types.HealthCheck {
	if h.Kind() != "command" {
		return nil
	}
	secs := func(d schema.Duration) int { return int((d.D() + 999_999_999) / 1_000_000_000) }
	return &types.HealthCheck{
		Command:     append([]string{"CMD"}, h.Command...),
		Interval:    aws.Int32(int32(clamp(secs(h.Interval), minInterval, maxInterval))),
		Timeout:     aws.Int32(int32(clamp(secs(h.Timeout), minTimeout, maxTimeout))),
		Retries:     aws.Int32(int32(clamp(h.Retries, minRetries, maxRetries))),
		StartPeriod: aws.Int32(int32(clamp(secs(h.StartPeriod), minStartPeriod, maxStartPeriod))),
	}
}

// storedSpec is the workload as kept in LabelSpec: no env values, no replica count, no provider.
func storedSpec(w schema.Workload) (string, error) {
	w.Env, w.Replicas, w.Provider, w.Pos = nil, 0, "", nil
	b, err := json.Marshal(w)
	return string(b), err
}

// taskDefinitionInput is the RegisterTaskDefinition request for a workload.
func (p *Provider) taskDefinitionInput(k wkey, d providers.Desired) (*ecs.RegisterTaskDefinitionInput, error) {
	w := d.Workload
	cpu, mem, problems := fargateSize(w.Resources)
	if len(problems) > 0 {
		return nil, providers.Permanent(fmt.Errorf("workload %q: %s: %s", w.Name, problems[0].Field, problems[0].Message))
	}
	if w.Image == "" {
		return nil, providers.Permanent(fmt.Errorf("workload %q: image: empty", w.Name))
	}
	spec, err := storedSpec(w)
	if err != nil {
		return nil, fmt.Errorf("workload %q: encode spec: %w", w.Name, err)
	}
	envNames := make([]string, 0, len(w.Env))
	for n := range w.Env {
		envNames = append(envNames, n)
	}
	sort.Strings(envNames)
	var env []types.KeyValuePair
	for _, n := range envNames {
		env = append(env, types.KeyValuePair{Name: aws.String(n), Value: aws.String(w.Env[n])})
	}
	var ports []types.PortMapping
	for _, pt := range w.Ports {
		pm := types.PortMapping{ContainerPort: aws.Int32(int32(pt.Port)), Protocol: types.TransportProtocolTcp}
		if pt.Protocol == "udp" {
			pm.Protocol = types.TransportProtocolUdp
		}
		if pt.Name != "" {
			pm.Name = aws.String(pt.Name)
		}
		ports = append(ports, pm)
	}
	tags := append(ownerTags(k), types.Tag{Key: aws.String(providers.LabelSpecHash), Value: aws.String(d.SpecHash)})
	in := &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(resourceName(k)),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode:             types.NetworkModeAwsvpc,
		Cpu:                     aws.String(strconv.Itoa(cpu)),
		Memory:                  aws.String(strconv.Itoa(mem)),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String(ContainerName),
			Image:        aws.String(w.Image),
			Essential:    aws.Bool(true),
			EntryPoint:   w.Command,
			Command:      w.Args,
			Environment:  env,
			PortMappings: ports,
			HealthCheck:  healthCheck(w.Health),
			DockerLabels: map[string]string{LabelSpec: spec},
		}},
		Tags: tags,
	}
	if p.set.executionRoleArn != "" {
		in.ExecutionRoleArn = aws.String(p.set.executionRoleArn)
	}
	if p.set.taskRoleArn != "" {
		in.TaskRoleArn = aws.String(p.set.taskRoleArn)
	}
	return in, nil
}

// networkConfiguration is the awsvpc network of every task, from the target.
func (p *Provider) networkConfiguration() *types.NetworkConfiguration {
	public := types.AssignPublicIpDisabled
	if p.set.assignPublicIP {
		public = types.AssignPublicIpEnabled
	}
	return &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
		Subnets: p.set.subnets, SecurityGroups: p.set.securityGroups, AssignPublicIp: public,
	}}
}

// deploymentConfiguration is make-before-break: the old tasks stay until the new ones are healthy, and a
// deployment whose tasks keep failing is stopped and rolled back.
func deploymentConfiguration() *types.DeploymentConfiguration {
	return &types.DeploymentConfiguration{
		MinimumHealthyPercent:    aws.Int32(100),
		MaximumPercent:           aws.Int32(200),
		DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
	}
}

// tdInfo is what berth reads back from one task definition revision (immutable, so cached by ARN).
type tdInfo struct {
	owned     wkey
	hash      string
	spec      schema.Workload
	hasHealth bool
}

// readTaskDefinition turns a described task definition and its tags into a tdInfo.
func readTaskDefinition(td *types.TaskDefinition, tags []types.Tag) tdInfo {
	tm := tagMap(tags)
	info := tdInfo{
		owned: wkey{tm[providers.LabelInstance], tm[providers.LabelEnvironment], tm[providers.LabelTarget], tm[providers.LabelWorkload]},
		hash:  tm[providers.LabelSpecHash],
	}
	if td == nil || len(td.ContainerDefinitions) == 0 {
		return info
	}
	c := td.ContainerDefinitions[0]
	_ = json.Unmarshal([]byte(c.DockerLabels[LabelSpec]), &info.spec) // a foreign or damaged label leaves the rest
	info.spec.Name = info.owned.Workload
	info.spec.Image = aws.ToString(c.Image)
	info.spec.Command = c.EntryPoint
	info.spec.Args = c.Command
	info.spec.Env = nil
	for _, kv := range c.Environment {
		if info.spec.Env == nil {
			info.spec.Env = map[string]string{}
		}
		info.spec.Env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	info.hasHealth = c.HealthCheck != nil
	return info
}

// taskDefinitionOf is the task definition a registration describes (what DescribeTaskDefinition would answer).
func taskDefinitionOf(in *ecs.RegisterTaskDefinitionInput) *types.TaskDefinition {
	return &types.TaskDefinition{Family: in.Family, ContainerDefinitions: in.ContainerDefinitions, Cpu: in.Cpu, Memory: in.Memory}
}
