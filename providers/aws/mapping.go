package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Names beyond the shared ownership tags of package providers. ECS tag keys allow letters, digits, spaces and
// + - = . _ : / @, so the providers.Label* keys are used as they are.
const (
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
	name := sanitize(raw)
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

// sanitize maps each character outside [a-zA-Z0-9_-] to '-'.
func sanitize(raw string) string {
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// familyPrefix starts the family name of every workload of owner (see resourceName), for
// ListTaskDefinitionFamilies; a longer owner is cut to what every such name keeps before its hash suffix.
func familyPrefix(o providers.Owner) string {
	prefix := sanitize("berth-" + o.Instance + "-" + o.Environment + "-")
	return prefix[:min(len(prefix), maxNameLen-13)]
}

// clientToken is CreateService's idempotency token (at most 36 characters): the same workload, spec and count
// always give the same token, so a create repeated after a lost answer or a crash is deduplicated by ECS.
//
// The preview's tags are part of the request, so they are part of the token (ECS refuses a token repeated with
// another request); a workload outside previews keeps the token it always had.
func clientToken(k wkey, hash string, replicas int, preview []types.Tag, lbs ...types.LoadBalancer) string {
	parts := []string{"create-service", k.Instance, k.Environment, k.Target, k.Workload, hash, strconv.Itoa(replicas)}
	for _, t := range preview {
		parts = append(parts, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	for _, lb := range lbs { // a target group made again has another ARN: another request
		parts = append(parts, "lb="+aws.ToString(lb.TargetGroupArn)+":"+strconv.Itoa(int(aws.ToInt32(lb.ContainerPort))))
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
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

// LabelPublicPorts is the docker label of the container "app" that lists its public container ports
// ("8080,9090/udp"): on awsvpc every port of a task answers at the task's own address, so which of them a workload
// declared public (and reports an Endpoint for) is said by this field of the task definition.
const LabelPublicPorts = "berth.dev/public-ports"

// headRE is what LabelHead may hold: a commit id (SHA-1 or SHA-256, hex). Anything else is left out of the tags.
var headRE = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// previewTags are the tags of a preview's objects beside ownerTags: LabelPreview (the pull request's number) for
// a preview environment, and LabelHead (the head commit) where d says one. None for another environment.
func previewTags(o providers.Owner, pv *schema.Preview) []types.Tag {
	var out []types.Tag
	if o.Preview != 0 {
		out = append(out, types.Tag{Key: aws.String(providers.LabelPreview), Value: aws.String(strconv.Itoa(o.Preview))})
	}
	if pv != nil && headRE.MatchString(pv.Head) {
		out = append(out, types.Tag{Key: aws.String(providers.LabelHead), Value: aws.String(pv.Head)})
	}
	return out
}

// previewNumber parses a LabelPreview value: 0 when absent or malformed (not a positive decimal in its canonical
// form).
func previewNumber(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || strconv.Itoa(n) != v {
		return 0
	}
	return n
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

// duplicatePorts reports each port whose container port an earlier one already maps: ECS allows a container port
// in one port mapping only, so TCP and UDP cannot share one.
func duplicatePorts(ports []schema.Port) []providers.Problem {
	var out []providers.Problem
	first := map[int]int{} // container port → index of its first mapping
	for i, pt := range ports {
		if j, ok := first[pt.Port]; ok {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].port", i),
				Message: fmt.Sprintf("ECS refuses a container port in more than one port mapping (ports[%d] already maps %d/%s): "+
					"one container port cannot serve both TCP and UDP on ECS", j, pt.Port, ports[j].Protocol)})
		} else {
			first[pt.Port] = i
		}
	}
	return out
}

// Health check bounds of ECS container health checks, in seconds (retries: count).
const (
	minInterval, maxInterval       = 5, 300
	minTimeout, maxTimeout         = 2, 60
	minRetries, maxRetries         = 1, 10
	minStartPeriod, maxStartPeriod = 0, 300
)

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

// healthCheck maps a command check to the ECS exec form; HTTP and TCP checks are the target groups' (healthOf)
// and map to none here.
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

// taskDefinitionInput is the RegisterTaskDefinition request for a workload; refs maps each secret it uses to the
// valueFrom of its container's secrets[] (secretRefs).
func (p *Provider) taskDefinitionInput(k wkey, d providers.Desired, refs map[string]string) (*ecs.RegisterTaskDefinitionInput, error) {
	w := d.Workload
	if len(w.Files) > 0 {
		return nil, providers.Permanent(fmt.Errorf("workload %q: files: ECS has no secret files; deliver the secret as env", w.Name))
	}
	secrets, labels, err := containerSecrets(d, refs)
	if err != nil {
		return nil, err
	}
	cpu, mem, problems := fargateSize(w.Resources)
	if len(problems) > 0 {
		return nil, providers.Permanent(fmt.Errorf("workload %q: %s: %s", w.Name, problems[0].Field, problems[0].Message))
	}
	if w.Image == "" {
		return nil, providers.Permanent(fmt.Errorf("workload %q: image: empty", w.Name))
	}
	if prs := duplicatePorts(w.Ports); len(prs) > 0 {
		return nil, providers.Permanent(fmt.Errorf("workload %q: %s: %s", w.Name, prs[0].Field, prs[0].Message))
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
	names := portNames(w.Ports)
	for i, pt := range w.Ports {
		pm := types.PortMapping{ContainerPort: aws.Int32(int32(pt.Port)), Protocol: types.TransportProtocolTcp}
		if pt.Protocol == "udp" {
			pm.Protocol = types.TransportProtocolUdp
		}
		if names[i] != "" {
			pm.Name = aws.String(names[i])
		}
		ports = append(ports, pm)
	}
	if public := publicPorts(w.Ports); public != "" {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelPublicPorts] = public
	}
	tags := append(ownerTags(k), types.Tag{Key: aws.String(providers.LabelSpecHash), Value: aws.String(d.SpecHash)})
	tags = append(tags, previewTags(d.Owner, d.Preview)...)
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
			Secrets:      secrets,
			DockerLabels: labels,
			PortMappings: ports,
			HealthCheck:  healthCheck(w.Health),
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

// publicPorts is LabelPublicPorts for ports: the public ones' container ports, "/udp" after a UDP one, in order;
// "" for none.
func publicPorts(ports []schema.Port) string {
	var out []string
	for _, pt := range ports {
		if !pt.Public {
			continue
		}
		v := strconv.Itoa(pt.Port)
		if strings.EqualFold(pt.Protocol, "udp") {
			v += "/udp"
		}
		out = append(out, v)
	}
	return strings.Join(out, ",")
}

// readPublicPorts is the set of "port/protocol" LabelPublicPorts names.
func readPublicPorts(label string) map[string]bool {
	out := map[string]bool{}
	for _, v := range strings.Split(label, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if !strings.Contains(v, "/") {
			v += "/tcp"
		}
		out[v] = true
	}
	return out
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

// tdInfo is what berth reads back from one task definition revision. Revisions are immutable (only their status
// changes, and it is not kept here), so it is cached by ARN.
type tdInfo struct {
	owned  wkey
	hash   string
	family string
	// spec is the workload the revision runs, read from its own fields (no name, provider or replicas), in the
	// form Provider.Normalize gives a desired workload.
	spec      schema.Workload
	hasHealth bool
	// secrets are the container's secrets[] as registered (variable → valueFrom), fingerprints the secrets'
	// fingerprints LabelSecrets records for them (secret name → fingerprint).
	secrets      []types.Secret
	fingerprints map[string]string
}

// readTaskDefinition turns a described task definition and its tags into a tdInfo.
func readTaskDefinition(td *types.TaskDefinition, tags []types.Tag) tdInfo {
	tm := tagMap(tags)
	info := tdInfo{
		owned: wkey{tm[providers.LabelInstance], tm[providers.LabelEnvironment], tm[providers.LabelTarget], tm[providers.LabelWorkload]},
		hash:  tm[providers.LabelSpecHash],
	}
	if td == nil {
		return info
	}
	info.family = aws.ToString(td.Family)
	info.spec = liveSpec(td)
	if c := appContainer(td); c != nil {
		info.hasHealth = c.HealthCheck != nil
		info.secrets = slices.Clone(c.Secrets)
		_, info.fingerprints = readSecrets(c)
	}
	return info
}

// appContainer is the task definition's container "app", else its first one (a hand-made revision), else nil.
func appContainer(td *types.TaskDefinition) *types.ContainerDefinition {
	for i := range td.ContainerDefinitions {
		if aws.ToString(td.ContainerDefinitions[i].Name) == ContainerName {
			return &td.ContainerDefinitions[i]
		}
	}
	if len(td.ContainerDefinitions) > 0 {
		return &td.ContainerDefinitions[0]
	}
	return nil
}

// ECS's defaults of a container health check, in seconds, for fields a revision leaves out.
const (
	defaultInterval, defaultTimeout, defaultRetries = 30, 5, 3
)

// liveSpec reads every field berth manages from a task definition's own fields: the container's image,
// entryPoint (command), command (args), environment, secrets (the variables' secret names, readSecrets), port
// mappings (public as LabelPublicPorts says, on their own container port) and health check, and the task size
// (the container's own cpu or hard memory limit where a hand edit set a smaller one). The form is providers.Normalize's, then the
// provider's Normalize (which maps a desired workload to the same shape), so an untouched workload compares
// equal.
func liveSpec(td *types.TaskDefinition) schema.Workload {
	var w schema.Workload
	c := appContainer(td)
	if c == nil {
		return w
	}
	w.Image = aws.ToString(c.Image)
	w.Command = slices.Clone(c.EntryPoint)
	w.Args = slices.Clone(c.Command)
	for _, kv := range c.Environment {
		if w.Env == nil {
			w.Env = map[string]string{}
		}
		w.Env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	w.SecretEnv, _ = readSecrets(c)
	public := readPublicPorts(c.DockerLabels[LabelPublicPorts])
	for _, pm := range c.PortMappings {
		pt := schema.Port{Port: int(aws.ToInt32(pm.ContainerPort)), Protocol: strings.ToLower(string(pm.Protocol))}
		if pt.Protocol == "" {
			pt.Protocol = "tcp"
		}
		pt.Name = aws.ToString(pm.Name)
		if public[fmt.Sprintf("%d/%s", pt.Port, pt.Protocol)] {
			pt.Public, pt.HostPort = true, pt.Port
		}
		w.Ports = append(w.Ports, pt)
	}
	cpu, _ := strconv.Atoi(aws.ToString(td.Cpu))
	if c.Cpu > 0 && int(c.Cpu) < cpu {
		cpu = int(c.Cpu)
	}
	mem, _ := strconv.Atoi(aws.ToString(td.Memory))
	if m := int(aws.ToInt32(c.Memory)); m > 0 && (mem == 0 || m < mem) {
		mem = m
	}
	w.Resources = schema.Resources{CPUMillis: unitsToMillis(cpu), MemoryBytes: int64(mem) << 20}
	if hc := c.HealthCheck; hc != nil {
		h := &schema.HealthCheck{
			Interval:    seconds(hc.Interval, defaultInterval),
			Timeout:     seconds(hc.Timeout, defaultTimeout),
			Retries:     int(aws.ToInt32(hc.Retries)),
			StartPeriod: seconds(hc.StartPeriod, 0),
		}
		if hc.Retries == nil {
			h.Retries = defaultRetries
		}
		switch {
		case len(hc.Command) > 0 && hc.Command[0] == "CMD":
			h.Command = slices.Clone(hc.Command[1:])
		default: // CMD-SHELL (or a malformed check) reads back as it is: a command berth never sends
			h.Command = slices.Clone(hc.Command)
		}
		w.Health = h
	}
	return providers.Normalize(w)
}

func seconds(v *int32, def int) schema.Duration {
	if v == nil {
		return schema.Duration(time.Duration(def) * time.Second)
	}
	return schema.Duration(time.Duration(*v) * time.Second)
}

// unitsToMillis turns ECS CPU units (1024 a vCPU) into CPU millis; every Fargate size is a whole number of millis.
func unitsToMillis(units int) int64 { return int64(units) * 1000 / 1024 }

// portNameRE is what ECS accepts as a port mapping name: up to 64 lower-case letters, digits, underscores and
// hyphens, not starting with a hyphen.
var portNameRE = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,63}$`)

// portNames are the port mapping names sent for ports: each port's name where ECS can store it (the pattern, and
// unique in the task definition: the first port of a name keeps it), "" where it cannot.
func portNames(ports []schema.Port) []string {
	out := make([]string, len(ports))
	used := map[string]bool{}
	for i, pt := range ports {
		if portNameRE.MatchString(pt.Name) && !used[pt.Name] {
			out[i], used[pt.Name] = pt.Name, true
		}
	}
	return out
}

// Normalize is the form in which ECS reads a workload back: a public port on its own container port (awsvpc: each
// task has an address of its own, so there is no host port to choose and none is shared; a HostPort asked for,
// such as one a preview is given, reads back as the port), ports without names ECS cannot store (its pattern; a
// name taken by an earlier port), the task size of the Fargate table, a command check's durations in whole
// seconds within ECS's bounds, an HTTP or TCP check as its target groups hold it (whole seconds within ELBv2's
// bounds, retries at least 2, startPeriod the service's grace period), as Apply sends them.
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	if len(w.Ports) > 0 {
		ps := make([]schema.Port, len(w.Ports))
		names := portNames(w.Ports)
		for i, pt := range w.Ports {
			pt.HostPort, pt.Name = 0, names[i]
			if pt.Public {
				pt.HostPort = pt.Port
			}
			ps[i] = pt
		}
		w.Ports = ps
	}
	if cpu, mem, problems := fargateSize(w.Resources); len(problems) == 0 {
		w.Resources = schema.Resources{CPUMillis: unitsToMillis(cpu), MemoryBytes: int64(mem) << 20}
	}
	switch hc := healthCheck(w.Health); {
	case w.Health.Kind() == "http" || w.Health.Kind() == "tcp":
		w.Health = healthOf(w.Health).check(int32(secsUp(w.Health.StartPeriod)))
	case hc == nil:
		w.Health = nil
	default:
		w.Health = &schema.HealthCheck{
			Command:     slices.Clone(hc.Command[1:]),
			Interval:    seconds(hc.Interval, 0),
			Timeout:     seconds(hc.Timeout, 0),
			Retries:     int(aws.ToInt32(hc.Retries)),
			StartPeriod: seconds(hc.StartPeriod, 0),
		}
	}
	return providers.Normalize(w)
}

// sameTask tells whether the live spec of a revision runs what want asks, in every field a task definition holds
// (replicas are the service's, HTTP and TCP checks the target groups').
func (p *Provider) sameTask(live, want schema.Workload) bool {
	want = p.Normalize(providers.Normalize(want))
	if k := want.Health.Kind(); k == "http" || k == "tcp" {
		want.Health = nil // the target groups hold it, not the task definition
	}
	want.Name, want.Provider, want.Replicas = "", "", 0
	live.Name, live.Provider, live.Replicas = "", "", 0
	return reflect.DeepEqual(providers.Normalize(live), want)
}

// taskDefinitionOf is the task definition a registration describes (what DescribeTaskDefinition would answer).
func taskDefinitionOf(in *ecs.RegisterTaskDefinitionInput) *types.TaskDefinition {
	return &types.TaskDefinition{Family: in.Family, ContainerDefinitions: in.ContainerDefinitions, Cpu: in.Cpu, Memory: in.Memory}
}
