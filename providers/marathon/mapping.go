package marathon

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// app is a Marathon app definition as sent and as read back (the read-only fields are omitted when sending).
type app struct {
	ID string `json:"id"`
	// Cmd is never sent (berth runs the image's entrypoint or a docker entrypoint parameter); it is read back so
	// that a shell command set by hand shows as a changed command.
	Cmd             string            `json:"cmd,omitempty"`
	Args            []string          `json:"args,omitempty"`
	Instances       int               `json:"instances"`
	Cpus            float64           `json:"cpus,omitempty"`
	Mem             float64           `json:"mem,omitempty"`
	Env             map[string]any    `json:"env,omitempty"` // values are strings, or {"secret": ...} objects
	Labels          map[string]string `json:"labels"`
	Container       *container        `json:"container,omitempty"`
	HealthChecks    []healthCheck     `json:"healthChecks"`
	UpgradeStrategy *upgradeStrategy  `json:"upgradeStrategy,omitempty"`

	// Read only.
	Version        string       `json:"version,omitempty"`
	VersionInfo    *versionInfo `json:"versionInfo,omitempty"`
	TasksStaged    int          `json:"tasksStaged,omitempty"`
	TasksRunning   int          `json:"tasksRunning,omitempty"`
	TasksHealthy   int          `json:"tasksHealthy,omitempty"`
	TasksUnhealthy int          `json:"tasksUnhealthy,omitempty"`
	Deployments    []struct {
		ID string `json:"id"`
	} `json:"deployments,omitempty"`
	Tasks []task `json:"tasks,omitempty"`

	// extra holds the fields of the app as read that berth neither manages nor treats as read-only
	// (backoffSeconds, constraints, ...): a replacing PUT carries them over, so Apply leaves them alone.
	extra map[string]json.RawMessage
}

type container struct {
	Type   string `json:"type"`
	Docker docker `json:"docker"`
	// PortMappings is where Marathon 1.5 and later answer the docker port mappings (read only: berth sends them in
	// docker.portMappings, which those versions still accept).
	PortMappings []portMapping `json:"portMappings,omitempty"`
}

type docker struct {
	Image        string        `json:"image"`
	Network      string        `json:"network"`
	PortMappings []portMapping `json:"portMappings,omitempty"`
	Parameters   []parameter   `json:"parameters,omitempty"`
}

type portMapping struct {
	ContainerPort int    `json:"containerPort"`
	HostPort      int    `json:"hostPort"`
	Protocol      string `json:"protocol"`
	Name          string `json:"name,omitempty"`
}

type parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type healthCheck struct {
	Protocol               string   `json:"protocol"`
	Path                   string   `json:"path,omitempty"`
	PortIndex              *int     `json:"portIndex,omitempty"`
	Command                *command `json:"command,omitempty"`
	GracePeriodSeconds     int      `json:"gracePeriodSeconds"`
	IntervalSeconds        int      `json:"intervalSeconds"`
	TimeoutSeconds         int      `json:"timeoutSeconds"`
	MaxConsecutiveFailures int      `json:"maxConsecutiveFailures"`
}

type command struct {
	Value string `json:"value"`
}

type upgradeStrategy struct {
	MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
}

type versionInfo struct {
	LastConfigChangeAt string `json:"lastConfigChangeAt"`
	LastScalingAt      string `json:"lastScalingAt"`
}

type task struct {
	ID                 string              `json:"id"`
	Host               string              `json:"host"`
	Ports              []int               `json:"ports"`
	State              string              `json:"state"`
	Version            string              `json:"version"`
	StartedAt          string              `json:"startedAt,omitempty"`
	HealthCheckResults []healthCheckResult `json:"healthCheckResults,omitempty"`
}

type healthCheckResult struct {
	Alive bool `json:"alive"`
}

// appID is the deterministic app id of a workload: <group>/<instance>/<environment>/<workload>.
func appID(group string, o providers.Owner, workload string) (string, error) {
	for _, seg := range []struct{ what, v string }{{"instance", o.Instance}, {"environment", o.Environment}, {"workload", workload}} {
		if !segment.MatchString(seg.v) {
			return "", providers.Permanent(fmt.Errorf("%s %q cannot be a Marathon id segment (lowercase letters, digits, '-' and '.')", seg.what, seg.v))
		}
	}
	return strings.TrimRight(group, "/") + "/" + o.Instance + "/" + o.Environment + "/" + workload, nil
}

// ownerLabels are the ownership labels of a workload's app.
func ownerLabels(o providers.Owner, target, workload, hash string) map[string]string {
	l := map[string]string{
		providers.LabelInstance:    o.Instance,
		providers.LabelEnvironment: o.Environment,
		providers.LabelWorkload:    workload,
		providers.LabelTarget:      target,
		providers.LabelSpecHash:    hash,
	}
	if o.Preview != 0 {
		l[providers.LabelPreview] = strconv.Itoa(o.Preview)
	}
	return l
}

// owned tells whether a carries the ownership labels of owner's workload on target.
func owned(a *app, o providers.Owner, target, workload string) bool {
	l := a.Labels
	return l[providers.LabelInstance] == o.Instance && l[providers.LabelEnvironment] == o.Environment &&
		l[providers.LabelWorkload] == workload && l[providers.LabelTarget] == target
}

func healthPort(h *schema.HealthCheck) int {
	switch h.Kind() {
	case "http":
		return h.HTTP.Port
	case "tcp":
		return h.TCP.Port
	}
	return 0
}

// portIndex is the index of the workload port with container port port, or -1.
func portIndex(w schema.Workload, port int) int {
	return slices.IndexFunc(w.Ports, func(p schema.Port) bool { return p.Port == port })
}

// hostPort is the agent port of p: the stable HostPort of a public port, 0 (dynamic) for an internal one.
func hostPort(p schema.Port) int {
	if !p.Public {
		return 0
	}
	if p.HostPort != 0 {
		return p.HostPort
	}
	return p.Port
}

func seconds(d schema.Duration) int { return int(math.Ceil(d.D().Seconds())) }

// shellQuote joins argv for /bin/sh -c (COMMAND health checks run through a shell).
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@%+", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// appFor maps a desired workload to its Marathon app.
func appFor(id string, d providers.Desired) (*app, error) {
	w := d.Workload
	a := &app{
		ID:        id,
		Instances: w.Replicas,
		Cpus:      float64(w.Resources.CPUMillis) / 1000,
		Mem:       float64(w.Resources.MemoryBytes) / (1 << 20),
		Labels:    ownerLabels(d.Owner, d.Target, w.Name, d.SpecHash),
		Container: &container{Type: "DOCKER", Docker: docker{Image: w.Image, Network: "BRIDGE"}},
		// Make before break: keep every instance serving, start up to as many new ones beside them.
		UpgradeStrategy: &upgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1},
		HealthChecks:    []healthCheck{},
	}
	if d.Preview != nil && d.Preview.Head != "" {
		a.Labels[providers.LabelHead] = d.Preview.Head
	}
	if len(w.Env) > 0 {
		a.Env = map[string]any{}
		for k, v := range w.Env {
			a.Env[k] = v
		}
	}
	if err := secretEnv(a, d); err != nil {
		return nil, err
	}
	// The command replaces the image's entrypoint (exec form, no shell): docker --entrypoint takes the executable,
	// the rest goes before the args.
	if len(w.Command) > 0 {
		a.Container.Docker.Parameters = []parameter{{Key: "entrypoint", Value: w.Command[0]}}
		a.Args = append(slices.Clone(w.Command[1:]), w.Args...)
	} else if len(w.Args) > 0 {
		a.Args = slices.Clone(w.Args)
	}
	for _, p := range w.Ports {
		a.Container.Docker.PortMappings = append(a.Container.Docker.PortMappings,
			portMapping{ContainerPort: p.Port, HostPort: hostPort(p), Protocol: cmp(p.Protocol, "tcp"), Name: p.Name})
	}
	if h := w.Health; h != nil {
		hc := healthCheck{GracePeriodSeconds: seconds(h.StartPeriod), IntervalSeconds: max(seconds(h.Interval), 1),
			TimeoutSeconds: max(seconds(h.Timeout), 1), MaxConsecutiveFailures: max(h.Retries, 0)}
		switch h.Kind() {
		case "http", "tcp":
			i := portIndex(w, healthPort(h))
			if i < 0 {
				return nil, providers.Permanent(fmt.Errorf("workload %s: health.%s.port %d is not in ports: Marathon checks a declared port by its index",
					w.Name, h.Kind(), healthPort(h)))
			}
			hc.PortIndex = &i
			hc.Protocol = "TCP"
			if h.Kind() == "http" {
				hc.Protocol, hc.Path = "HTTP", h.HTTP.Path
			}
		default:
			hc.Protocol, hc.Command = "COMMAND", &command{Value: shellQuote(h.Command)}
		}
		a.HealthChecks = append(a.HealthChecks, hc)
	}
	return a, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// configVersion is the app version its current tasks must run: the last change of its configuration (a scale
// alone makes a new version, not a new configuration).
func configVersion(a *app) string {
	if a.VersionInfo != nil && a.VersionInfo.LastConfigChangeAt != "" {
		return a.VersionInfo.LastConfigChangeAt
	}
	return a.Version
}

// current tells whether task t runs a's configuration. A task carries the app version it was launched at: the
// last configuration change (configVersion) or a later version of the same configuration (a task launched after
// a scale), never one past the app's own version (a task of a version rolled back from is not current). Versions
// are Marathon's ISO 8601 timestamps; ones that do not parse count as current only when equal to the
// configuration's.
func current(t task, a *app) bool {
	cfg := configVersion(a)
	if t.Version == cfg {
		return true
	}
	tv, err1 := time.Parse(time.RFC3339Nano, t.Version)
	cv, err2 := time.Parse(time.RFC3339Nano, cfg)
	if err1 != nil || err2 != nil || tv.Before(cv) {
		return false
	}
	av, err := time.Parse(time.RFC3339Nano, a.Version)
	return err != nil || !tv.After(av)
}

// observe turns an app read back into what berth observes: its live spec (see live) and its tasks. A task of the
// current configuration carries the app's spec hash; one of an earlier version (mid-rollout, the old tasks still
// serving) the hash older gives for its version ("" when older does not know it).
func observe(a *app, target string, older map[string]string) providers.Observed {
	hash := a.Labels[providers.LabelSpecHash]
	o := providers.Observed{Workload: a.Labels[providers.LabelWorkload], Target: target, SpecHash: hash}
	o.Spec = live(a, o.Workload, target)
	o.SecretFingerprints = pairs(a.Labels[LabelSecrets])
	o.Endpoints = endpoints(a)
	tasks := slices.Clone(a.Tasks)
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].ID < tasks[j].ID })
	for _, t := range tasks {
		r := providers.Replica{ID: t.ID, Name: t.ID, State: strings.ToLower(strings.TrimPrefix(t.State, "TASK_")),
			Running: t.State == "TASK_RUNNING", SpecHash: older[t.Version]}
		if current(t, a) {
			r.SpecHash = hash
		}
		if len(a.HealthChecks) > 0 {
			r.Health = taskHealth(t)
		}
		o.Replicas = append(o.Replicas, r)
	}
	return o
}

// olderVersions are the versions a's tasks not of its current configuration run, each once, sorted.
func olderVersions(a *app) []string {
	var vs []string
	for _, t := range a.Tasks {
		if !current(t, a) && t.Version != "" && !slices.Contains(vs, t.Version) {
			vs = append(vs, t.Version)
		}
	}
	sort.Strings(vs)
	return vs
}

// taskHealth is "healthy" when every health check result is alive, "unhealthy" when one is not, "starting" before
// the first result.
func taskHealth(t task) string {
	if len(t.HealthCheckResults) == 0 {
		return "starting"
	}
	for _, r := range t.HealthCheckResults {
		if !r.Alive {
			return "unhealthy"
		}
	}
	return "healthy"
}

// readyWhy says why a is not converged to want ("" when it is): no deployment, instances tasks on the current
// configuration version, all ready.
func readyWhy(a *app) string {
	if len(a.Deployments) > 0 {
		return fmt.Sprintf("deployment %s in progress", a.Deployments[0].ID)
	}
	cfg := configVersion(a)
	ready, stale := 0, 0
	for _, t := range a.Tasks {
		if !current(t, a) {
			stale++
			continue
		}
		if t.State == "TASK_RUNNING" && (len(a.HealthChecks) == 0 || taskHealth(t) == "healthy") {
			ready++
		}
	}
	if ready != a.Instances || stale > 0 || len(a.Tasks) != a.Instances {
		return fmt.Sprintf("%d of %d tasks ready on version %s (%d tasks, %d on older versions; running %d, healthy %d)",
			ready, a.Instances, cfg, len(a.Tasks), stale, a.TasksRunning, a.TasksHealthy)
	}
	return ""
}

// endpoints are where a's public ports (the port mappings with a host port) answer: the task's host and its host
// port at the mapping's index (task.ports lists them in port-mapping order), from a running task (one of the
// current configuration first, then the lowest ID); a wildcard host reads as 127.0.0.1. A port no running task
// has a host port for is left out.
func endpoints(a *app) []providers.Endpoint {
	var pms []portMapping
	if c := a.Container; c != nil {
		pms = c.Docker.PortMappings
		if len(pms) == 0 {
			pms = c.PortMappings
		}
	}
	var running []task
	for _, t := range a.Tasks {
		if t.State == "TASK_RUNNING" && t.Host != "" {
			running = append(running, t)
		}
	}
	sort.SliceStable(running, func(i, j int) bool {
		if ci, cj := current(running[i], a), current(running[j], a); ci != cj {
			return ci
		}
		return running[i].ID < running[j].ID
	})
	var out []providers.Endpoint
	for i, pm := range pms {
		if pm.HostPort == 0 {
			continue
		}
		for _, t := range running {
			if i < len(t.Ports) && t.Ports[i] > 0 {
				host := t.Host
				if host == "0.0.0.0" || host == "::" {
					host = "127.0.0.1"
				}
				addr := net.JoinHostPort(host, strconv.Itoa(t.Ports[i]))
				out = append(out, providers.Endpoint{Port: pm.ContainerPort, Address: addr})
				break
			}
		}
	}
	return out
}
