package nomad

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// live is the workload as the job runs it, read from the job's own fields (never from a copy berth stored): the
// docker task's image, entrypoint, args and env, its CPU (MHz, or reserved cores) and memory, the group's network
// ports (static = public, in the order of the task's config.ports), the group service's check and the group's
// count. It is in the form Normalize gives a desired workload, so List and Apply compare the two directly.
func live(k wkey, job *api.Job) schema.Workload {
	w := schema.Workload{Name: k.Workload, Provider: k.Target, Replicas: groupCount(job)}
	if w.Replicas < 0 {
		w.Replicas = 0
	}
	if len(job.TaskGroups) == 0 {
		return providers.Normalize(w)
	}
	g := job.TaskGroups[0]
	var task *api.Task
	for _, t := range g.Tasks {
		if t.Name == TaskName || task == nil {
			task = t
		}
	}
	var cfg map[string]any
	if task != nil {
		cfg = task.Config
		w.Image, _ = cfg["image"].(string)
		w.Command = stringList(cfg["entrypoint"])
		w.Args = stringList(cfg["args"])
		if len(task.Env) > 0 {
			w.Env = make(map[string]string, len(task.Env))
			for k, v := range task.Env {
				w.Env[k] = v
			}
		}
		readSecrets(task, &w)
		if r := task.Resources; r != nil {
			if c := deref(r.Cores); c > 0 {
				w.Resources.CPUMillis = int64(c) * 1000
			} else if c := deref(r.CPU); c > 0 {
				w.Resources.CPUMillis = int64(c) * 1000 / MHzPerCPU
			}
			if m := deref(r.MemoryMB); m > 0 {
				w.Resources.MemoryBytes = int64(m) << 20
			}
		}
	}

	// Ports by label: static ones are public (their value the host port), dynamic ones internal.
	type netPort struct {
		api.Port
		static bool
	}
	byLabel := map[string]netPort{}
	var order []string
	for _, n := range g.Networks {
		for _, p := range n.ReservedPorts {
			byLabel[p.Label] = netPort{p, true}
			order = append(order, p.Label)
		}
		for _, p := range n.DynamicPorts {
			byLabel[p.Label] = netPort{p, false}
			order = append(order, p.Label)
		}
	}
	containerPort := func(p netPort) int {
		if p.To == 0 && p.static {
			return p.Value // the docker driver maps a static port without `to` to the same port
		}
		return p.To
	}

	// The health check: the group service's first check.
	var svc *api.Service
	for _, s := range g.Services {
		if svc == nil || s.Name == serviceName(deref(job.ID)) {
			svc = s
		}
	}
	healthLabel := ""
	if svc != nil && len(svc.Checks) > 0 {
		c := svc.Checks[0]
		h := &schema.HealthCheck{Interval: schema.Duration(c.Interval), Timeout: schema.Duration(c.Timeout)}
		if r := c.CheckRestart; r != nil {
			h.Retries, h.StartPeriod = r.Limit, schema.Duration(deref(r.Grace))
		}
		label := c.PortLabel
		if label == "" {
			label = svc.PortLabel
		}
		port := 0
		if p, ok := byLabel[label]; ok {
			port = containerPort(p)
		}
		switch strings.ToLower(c.Type) {
		case "http":
			h.HTTP = &schema.HTTPCheck{Path: c.Path, Port: port}
			healthLabel = label
		case "tcp":
			h.TCP = &schema.TCPCheck{Port: port}
			healthLabel = label
		case "script":
			h.Command = append([]string{c.Command}, c.Args...)
		default: // grpc and others berth never sets: shown as a check of an unknown kind
			h.Command = []string{c.Type + " check"}
		}
		w.Health = h
	}

	// Port order: the task's config.ports first (berth lists them in the workload's order), then any other.
	seen := map[string]bool{}
	var labels []string
	for _, l := range append(stringList(cfg["ports"]), order...) {
		if _, ok := byLabel[l]; ok && !seen[l] {
			seen[l] = true
			labels = append(labels, l)
		}
	}
	for _, l := range labels {
		p := byLabel[l]
		port := containerPort(p)
		if !p.static && l == healthLabel && l == healthPortLabel(port) {
			continue // the port berth adds for a check on an undeclared port
		}
		pt := schema.Port{Name: portName(l, port), Port: port, Protocol: "tcp", Public: p.static}
		if p.static {
			pt.HostPort = p.Value
		}
		w.Ports = append(w.Ports, pt)
	}
	return providers.Normalize(w)
}

// Normalize is the form in which Nomad reads a workload back: CPU in whole MHz and memory in whole MB (Nomad's
// defaults, 100 MHz and 300 MB, when unset; at least MinMemoryMB), ports without a protocol (the docker driver
// publishes tcp and udp alike) and named by their Nomad label, and no start period without retries (it travels in
// check_restart, which only a retry limit creates).
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	def := api.DefaultResources()
	if w.Resources.CPUMillis > 0 {
		w.Resources.CPUMillis = int64(cpuMHz(w.Resources.CPUMillis)) * 1000 / MHzPerCPU
	} else {
		w.Resources.CPUMillis = int64(*def.CPU) * 1000 / MHzPerCPU
	}
	if w.Resources.MemoryBytes > 0 {
		w.Resources.MemoryBytes = int64(max(memoryMB(w.Resources.MemoryBytes), MinMemoryMB)) << 20
	} else {
		w.Resources.MemoryBytes = int64(*def.MemoryMB) << 20
	}
	checkPort := healthPort(w.Health)
	var ports []schema.Port
	for _, pt := range w.Ports {
		l := portLabel(pt)
		if !pt.Public && pt.Port == checkPort && l == healthPortLabel(pt.Port) {
			continue // reads back as the check's own port, not as a declared one
		}
		pt.Name, pt.Protocol = portName(l, pt.Port), "tcp"
		ports = append(ports, pt)
	}
	w.Ports = ports
	if w.Health != nil && w.Health.Retries <= 0 {
		h := *w.Health
		h.Retries, h.StartPeriod = 0, 0
		w.Health = &h
	}
	return w
}

// portName is the workload port name a Nomad port label reads back as: "" for the label of an unnamed port.
func portName(label string, port int) string {
	if label == fmt.Sprintf("port_%d", port) {
		return ""
	}
	return label
}

// healthPortLabel is the label of the dynamic port berth adds for a check on a port the workload does not declare.
func healthPortLabel(port int) string { return fmt.Sprintf("health_%d", port) }

func healthPort(h *schema.HealthCheck) int {
	switch h.Kind() {
	case "http":
		return h.HTTP.Port
	case "tcp":
		return h.TCP.Port
	}
	return 0
}

// stringList reads a list of strings from a decoded driver config value ([]any from JSON, or []string).
func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return append([]string(nil), l...)
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// upToDate tells whether a running job already runs d (mapped to want): its spec-hash and secrets meta, the
// templates delivering the secrets, and every field berth manages, as read back, equal to the desired workload in
// Nomad's read-back form (a hand edit keeps the hash meta).
func (p *Provider) upToDate(k wkey, job, want *api.Job, d providers.Desired) bool {
	if deref(job.Stop) || job.Meta[providers.LabelSpecHash] != d.SpecHash || job.Meta[MetaSecrets] != want.Meta[MetaSecrets] ||
		job.Meta[providers.LabelPreview] != want.Meta[providers.LabelPreview] {
		return false
	}
	if t, wt := liveTask(job), liveTask(want); t != nil && wt != nil && !sameTemplates(t, wt) {
		return false
	}
	if !makesBeforeBreaking(job, want) {
		return false
	}
	return equalSpec(live(k, job), p.readBack(k, d.Workload))
}

// liveTask is the job's docker task (the one named TaskName, else the first).
func liveTask(job *api.Job) *api.Task {
	if len(job.TaskGroups) == 0 {
		return nil
	}
	var task *api.Task
	for _, t := range job.TaskGroups[0].Tasks {
		if t.Name == TaskName || task == nil {
			task = t
		}
	}
	return task
}

// readBack is the desired workload as the job will read it back.
func (p *Provider) readBack(k wkey, w schema.Workload) schema.Workload {
	w.Name, w.Provider = k.Workload, k.Target
	return providers.Normalize(p.Normalize(providers.Normalize(w)))
}

// equalSpec compares two workloads in read-back form.
func equalSpec(a, b schema.Workload) bool {
	a.Pos, b.Pos = nil, nil
	return reflect.DeepEqual(a, b)
}

// makesBeforeBreaking tells whether the live job's update block places the canaries want's does and promotes
// them as want's does (a job registered before berth rolled with canaries, or edited by hand, is registered
// again: an update block alone is an in-place change, nothing restarts).
func makesBeforeBreaking(job, want *api.Job) bool {
	u, wu := groupUpdate(job), want.Update
	if wu == nil {
		return true
	}
	return deref(u.Canary) == deref(wu.Canary) && deref(u.AutoPromote) == deref(wu.AutoPromote)
}

// groupUpdate is the update block that applies to the job's first group: the group's (Nomad merges the job's
// into it), else the job's; never nil.
func groupUpdate(job *api.Job) *api.UpdateStrategy {
	if len(job.TaskGroups) > 0 && job.TaskGroups[0].Update != nil {
		return job.TaskGroups[0].Update
	}
	if job.Update != nil {
		return job.Update
	}
	return &api.UpdateStrategy{}
}
