package nomad

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Names, meta keys and mapping constants beyond the shared ownership labels of package providers.
const (
	// GroupName and TaskName name the one group and the one docker task of every job.
	GroupName = "app"
	TaskName  = "app"
	// MHzPerCPU converts CPU millis to Nomad's MHz shares: a CPU is taken as a 1000 MHz core, so 1 milli = 1 MHz
	// (250m → 250 MHz). Nomad's CPU is a share of the node's total clock, not a core count.
	MHzPerCPU = 1000
	// MinMemoryMB is Nomad's smallest task memory.
	MinMemoryMB = 10
	// minCheckInterval and minCheckTimeout are the shortest check interval and timeout Nomad accepts.
	minCheckInterval = time.Second
	minCheckTimeout  = time.Second
	// maxIDLen bounds job IDs (Nomad allows more; names stay readable in the UI and in allocation names).
	maxIDLen = 128
	// maxServiceLen is the longest service name (a DNS label).
	maxServiceLen = 63
)

// Update stanza values.
const (
	DefaultMinHealthyTime   = 10 * time.Second
	DefaultHealthyDeadline  = 5 * time.Minute
	DefaultProgressDeadline = 10 * time.Minute
)

// wkey identifies one owned workload on one target.
type wkey struct {
	Instance, Environment, Target, Workload string
}

// jobPrefix is the start of the IDs of owner's jobs: berth-<instance>-<env>-.
func jobPrefix(instance, env string) string {
	return sanitize("berth-" + instance + "-" + env + "-")
}

// jobID is berth-<instance>-<env>-<workload>, characters outside [a-zA-Z0-9_.-] mapped to '-', cut with a hash
// suffix when longer than maxIDLen or changed by the mapping. Deterministic, so a retry after a crash finds it.
func jobID(k wkey) string {
	raw := "berth-" + k.Instance + "-" + k.Environment + "-" + k.Workload
	name := sanitize(raw)
	if len(name) <= maxIDLen && name == raw {
		return name
	}
	sum := sha256.Sum256([]byte(raw))
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	if len(name) > maxIDLen-len(suffix) {
		name = name[:maxIDLen-len(suffix)]
	}
	return name + suffix
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// serviceName is the job ID as a DNS label: lower case letters, digits and '-', at most 63 characters.
func serviceName(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > maxServiceLen {
		sum := sha256.Sum256([]byte(id))
		name = strings.TrimRight(name[:maxServiceLen-9], "-") + "-" + hex.EncodeToString(sum[:])[:8]
	}
	return name
}

// owns tells whether meta carries exactly this workload's ownership.
func (k wkey) owns(meta map[string]string) bool {
	return meta[providers.LabelInstance] == k.Instance && meta[providers.LabelEnvironment] == k.Environment &&
		meta[providers.LabelTarget] == k.Target && meta[providers.LabelWorkload] == k.Workload
}

func memoryMB(bytes int64) int { return int((bytes + (1<<20 - 1)) >> 20) }

// cpuMHz converts millis to MHz (MHzPerCPU per CPU), rounding up.
func cpuMHz(millis int64) int { return int((millis*MHzPerCPU + 999) / 1000) }

func hostPort(pt schema.Port) int {
	if pt.HostPort != 0 {
		return pt.HostPort
	}
	return pt.Port
}

// portLabel is the Nomad port label of ports[i]: its name, or port_<n>, as [a-zA-Z0-9_].
func portLabel(pt schema.Port) string {
	name := pt.Name
	if name == "" {
		name = fmt.Sprintf("port_%d", pt.Port)
	}
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// jobFor maps a desired workload to its Nomad job. A secret it cannot deliver is a permanent error.
func (p *Provider) jobFor(k wkey, d providers.Desired) (*api.Job, error) {
	w := d.Workload
	id := jobID(k)

	// Ports: a static host port for public ones, a dynamic one otherwise; the docker driver maps them to the
	// container port (`to`). A health check on a port not declared gets a dynamic port of its own.
	net := &api.NetworkResource{}
	var labels []string
	byPort := map[int]string{}
	for _, pt := range w.Ports {
		l := portLabel(pt)
		if pt.Public {
			net.ReservedPorts = append(net.ReservedPorts, api.Port{Label: l, Value: hostPort(pt), To: pt.Port})
		} else {
			net.DynamicPorts = append(net.DynamicPorts, api.Port{Label: l, To: pt.Port})
		}
		labels = append(labels, l)
		if _, ok := byPort[pt.Port]; !ok {
			byPort[pt.Port] = l
		}
	}
	checkPort := 0
	switch w.Health.Kind() {
	case "http":
		checkPort = w.Health.HTTP.Port
	case "tcp":
		checkPort = w.Health.TCP.Port
	}
	if _, ok := byPort[checkPort]; checkPort != 0 && !ok {
		l := fmt.Sprintf("health_%d", checkPort)
		net.DynamicPorts = append(net.DynamicPorts, api.Port{Label: l, To: checkPort})
		labels = append(labels, l)
		byPort[checkPort] = l
	}

	config := map[string]any{"image": w.Image}
	if len(w.Command) > 0 {
		config["entrypoint"] = w.Command
	}
	if len(w.Args) > 0 {
		config["args"] = w.Args
	}
	if len(labels) > 0 {
		config["ports"] = labels
	}
	res := &api.Resources{}
	if w.Resources.CPUMillis > 0 {
		res.CPU = new(cpuMHz(w.Resources.CPUMillis))
	}
	if w.Resources.MemoryBytes > 0 {
		res.MemoryMB = new(max(memoryMB(w.Resources.MemoryBytes), MinMemoryMB))
	}
	task := &api.Task{Name: TaskName, Driver: "docker", Config: config, Resources: res}
	if len(w.Env) > 0 {
		task.Env = w.Env
	}
	secrets, err := secretTask(id, d, task)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", w.Name, err)
	}

	group := &api.TaskGroup{Name: new(GroupName), Count: new(w.Replicas), Tasks: []*api.Task{task}}
	if len(net.ReservedPorts)+len(net.DynamicPorts) > 0 {
		group.Networks = []*api.NetworkResource{net}
	}
	if svc := service(id, w, byPort, labels); svc != nil {
		group.Services = []*api.Service{svc}
	}

	// Make before break for every count, one included: a change that replaces allocations places Replicas
	// canaries beside the old allocations, Nomad promotes them once all are healthy (auto_promote) and only then
	// stops the old ones; a canary that fails or is not healthy by the healthy deadline fails the deployment,
	// which stops the canaries and (auto_revert) puts the job back at its last stable version, the old
	// allocations running throughout. A change of count alone is an in-place update and places no canary.
	update := &api.UpdateStrategy{
		MaxParallel: new(1), HealthCheck: new("task_states"), MinHealthyTime: new(DefaultMinHealthyTime),
		HealthyDeadline: new(DefaultHealthyDeadline), ProgressDeadline: new(DefaultProgressDeadline),
		AutoRevert: new(true), Canary: new(w.Replicas), AutoPromote: new(w.Replicas > 0),
	}
	if h := w.Health; h != nil {
		update.HealthCheck = new("checks")
		// The deadline leaves room for the start period and a full run of failing retries.
		need := h.StartPeriod.D() + time.Duration(h.Retries+1)*(h.Interval.D()+h.Timeout.D())
		if dl := max(DefaultHealthyDeadline, 2*need); dl > DefaultHealthyDeadline {
			update.HealthyDeadline = new(dl)
			update.ProgressDeadline = new(dl + DefaultProgressDeadline - DefaultHealthyDeadline)
		}
	}

	job := &api.Job{
		ID: new(id), Name: new(id), Type: new("service"),
		TaskGroups: []*api.TaskGroup{group},
		Update:     update,
		Meta: map[string]string{
			providers.LabelInstance:    k.Instance,
			providers.LabelEnvironment: k.Environment,
			providers.LabelTarget:      k.Target,
			providers.LabelWorkload:    k.Workload,
			providers.LabelSpecHash:    d.SpecHash,
		},
	}
	if secrets != "" {
		job.Meta[MetaSecrets] = secrets
	}
	if d.Owner.Preview != 0 {
		job.Meta[providers.LabelPreview] = strconv.Itoa(d.Owner.Preview)
	}
	if d.Preview != nil && d.Preview.Head != "" {
		job.Meta[providers.LabelHead] = d.Preview.Head
	}
	if len(p.set.datacenters) > 0 {
		job.Datacenters = p.set.datacenters
	}
	if p.set.namespace != "" {
		job.Namespace = new(p.set.namespace)
	}
	if p.set.region != "" {
		job.Region = new(p.set.region)
	}
	return job, nil
}

// service is the group's service with its check: Nomad's own provider for HTTP and TCP checks, Consul's for
// script checks (Nomad's provider has none). Retries map to check_restart's limit, the start period to its grace.
func service(id string, w schema.Workload, byPort map[int]string, labels []string) *api.Service {
	h := w.Health
	if h == nil && len(labels) == 0 {
		return nil
	}
	svc := &api.Service{Name: serviceName(id), Provider: "nomad"}
	if len(labels) > 0 {
		svc.PortLabel = labels[0]
	}
	if h == nil {
		return svc
	}
	check := api.ServiceCheck{Name: "berth-health", Interval: h.Interval.D(), Timeout: h.Timeout.D()}
	switch h.Kind() {
	case "http":
		check.Type, check.Path, check.PortLabel = "http", h.HTTP.Path, byPort[h.HTTP.Port]
	case "tcp":
		check.Type, check.PortLabel = "tcp", byPort[h.TCP.Port]
	default:
		svc.Provider = "consul"
		check.Type, check.TaskName, check.Command = "script", TaskName, h.Command[0]
		check.Args = h.Command[1:]
	}
	if h.Retries > 0 {
		check.CheckRestart = &api.CheckRestart{Limit: h.Retries, Grace: new(h.StartPeriod.D())}
	}
	svc.Checks = []api.ServiceCheck{check}
	return svc
}
