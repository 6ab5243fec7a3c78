package marathon

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Marathon's defaults for the resources berth leaves unset (the app RAML: cpus 1, mem 128 MiB).
const (
	defaultCpus  = 1.0
	defaultMemMB = 128.0
)

// live is the workload as the app runs it, read from the app's own fields (never from a copy berth stored): the
// docker image, the entrypoint parameter (or a shell cmd, as Mesos runs it) and args, env, the port mappings
// (a host port makes a port public), cpus and mem, the first health check and instances. It is in the form
// Normalize gives a desired workload, so List and Apply compare the two directly.
func live(a *app, workload, target string) schema.Workload {
	w := schema.Workload{Name: workload, Provider: target, Replicas: a.Instances, Args: a.Args}
	var pms []portMapping
	if c := a.Container; c != nil {
		w.Image = c.Docker.Image
		for _, p := range c.Docker.Parameters {
			if p.Key == "entrypoint" {
				w.Command = []string{p.Value}
			}
		}
		pms = c.Docker.PortMappings
		if len(pms) == 0 {
			pms = c.PortMappings
		}
	}
	if a.Cmd != "" {
		w.Command = []string{"/bin/sh", "-c", a.Cmd}
	}
	if len(a.Env) > 0 {
		w.Env = make(map[string]string, len(a.Env))
		for k, v := range a.Env {
			switch v := v.(type) {
			case string:
				w.Env[k] = v
			case map[string]any: // a secret reference, set by someone else: shown (by name), and removed by Apply
				w.Env[k] = fmt.Sprintf("(secret %v)", v["secret"])
			default:
				w.Env[k] = fmt.Sprint(v)
			}
		}
	}
	// The variables berth set from a secret (its label names them): names only, never the value.
	for env, name := range pairs(a.Labels[LabelSecretEnv]) {
		if _, ok := a.Env[env].(string); ok && name != "" {
			delete(w.Env, env)
			if w.SecretEnv == nil {
				w.SecretEnv = map[string]string{}
			}
			w.SecretEnv[env] = name
		}
	}
	w.Resources.CPUMillis = int64(math.Round(a.Cpus * 1000))
	w.Resources.MemoryBytes = int64(math.Round(a.Mem * (1 << 20)))
	for _, pm := range pms {
		w.Ports = append(w.Ports, schema.Port{Name: pm.Name, Port: pm.ContainerPort, Protocol: cmp(pm.Protocol, "tcp"),
			Public: pm.HostPort != 0, HostPort: pm.HostPort})
	}
	if len(a.HealthChecks) > 0 {
		hc := a.HealthChecks[0]
		h := &schema.HealthCheck{Interval: secs(hc.IntervalSeconds), Timeout: secs(hc.TimeoutSeconds),
			Retries: hc.MaxConsecutiveFailures, StartPeriod: secs(hc.GracePeriodSeconds)}
		port := 0
		if i := hc.PortIndex; i != nil && *i >= 0 && *i < len(pms) {
			port = pms[*i].ContainerPort
		}
		switch strings.TrimPrefix(strings.TrimPrefix(hc.Protocol, "MESOS_"), "MARATHON_") {
		case "HTTP", "HTTPS":
			h.HTTP = &schema.HTTPCheck{Path: hc.Path, Port: port}
		case "TCP":
			h.TCP = &schema.TCPCheck{Port: port}
		default:
			value := ""
			if hc.Command != nil {
				value = hc.Command.Value
			}
			h.Command = []string{"/bin/sh", "-c", value}
		}
		w.Health = h
	}
	return providers.Normalize(w)
}

func secs(s int) schema.Duration { return schema.Duration(s) * schema.Duration(1e9) }

// Normalize is the form in which Marathon reads a workload back: a command is the docker entrypoint parameter (its
// first word) with the rest of it before the args, cpus 1 and mem 128 MiB when unset, health durations in whole
// seconds (at least 1 for the interval and the timeout), and a command check as the shell line Mesos runs.
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	if len(w.Command) > 0 {
		w.Args = append(append([]string(nil), w.Command[1:]...), w.Args...)
		w.Command = w.Command[:1]
	}
	if w.Resources.CPUMillis == 0 {
		w.Resources.CPUMillis = int64(defaultCpus * 1000)
	}
	if w.Resources.MemoryBytes == 0 {
		w.Resources.MemoryBytes = int64(defaultMemMB) << 20
	}
	if h := w.Health; h != nil {
		c := *h
		c.Interval = secs(max(seconds(h.Interval), 1))
		c.Timeout = secs(max(seconds(h.Timeout), 1))
		c.StartPeriod = secs(seconds(h.StartPeriod))
		c.Retries = max(h.Retries, 0)
		if c.Kind() == "command" {
			c.Command = []string{"/bin/sh", "-c", shellQuote(h.Command)}
		}
		w.Health = &c
	}
	return w
}

// readBack is the desired workload as the app will read it back.
func (p *Provider) readBack(w schema.Workload, target string) schema.Workload {
	w.Provider = target
	return providers.Normalize(p.Normalize(providers.Normalize(w)))
}

// upToDate tells whether the running app already runs d as want says it: berth's labels (ownership and spec hash)
// and every managed field as read back equal to the desired workload (a hand edit keeps the labels). Labels and
// fields of others are not compared, nor berth.dev/head (informational: it names the head the app was last
// created or rolled from, and a new head with the same spec rolls nothing).
func (p *Provider) upToDate(cur, want *app, d providers.Desired) bool {
	for k, v := range want.Labels {
		if cur.Labels[k] != v && k != providers.LabelHead { // the head alone is no reason to restart the tasks
			return false
		}
	}
	for env := range d.Workload.SecretEnv { // the value itself, compared in memory only: a hand edit is repaired
		if v, ok := cur.Env[env].(string); !ok || v != want.Env[env] {
			return false
		}
	}
	got, exp := live(cur, d.Workload.Name, d.Target), p.readBack(d.Workload, d.Target)
	got.Pos, exp.Pos = nil, nil
	return reflect.DeepEqual(got, exp)
}

// keepUnmanaged is want with what berth does not manage on cur carried over: the labels of others (any key not
// under berth.dev/), docker parameters other than the entrypoint, and the top-level fields berth never sets. A PUT with partialUpdate=false replaces the whole
// definition; this keeps it from resetting them.
func keepUnmanaged(want, cur *app) *app {
	c := *want
	c.Labels = maps.Clone(want.Labels)
	for k, v := range cur.Labels {
		if !strings.HasPrefix(k, "berth.dev/") {
			c.Labels[k] = v
		}
	}
	c.extra = cur.extra
	if want.Container != nil && cur.Container != nil {
		ct := *want.Container
		ct.Docker.Parameters = slices.Clone(want.Container.Docker.Parameters)
		for _, p := range cur.Container.Docker.Parameters {
			if p.Key != "entrypoint" {
				ct.Docker.Parameters = append(ct.Docker.Parameters, p)
			}
		}
		c.Container = &ct
	}
	return &c
}

// sentKeys are the app fields berth sets (a PUT replaces them), and readOnly those Marathon reports but does not
// take: neither is carried over from the live app. portDefinitions, ports and networks follow from berth's
// container networking and are not carried either.
var (
	sentKeys = []string{"id", "cmd", "args", "instances", "cpus", "mem", "env", "labels", "container", "healthChecks",
		"upgradeStrategy", "portDefinitions", "ports", "networks"}
	readOnly = []string{"version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
		"deployments", "tasks", "lastTaskFailure", "taskStats", "readinessCheckResults"}
)

// wireApp is app without its methods, for encoding.
type wireApp app

// UnmarshalJSON decodes an app and keeps its unmanaged fields in extra.
func (a *app) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*wireApp)(a)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	a.extra = nil
	for k, v := range all {
		if !contains(sentKeys, k) && !contains(readOnly, k) {
			if a.extra == nil {
				a.extra = map[string]json.RawMessage{}
			}
			a.extra[k] = v
		}
	}
	return nil
}

// MarshalJSON encodes an app with its carried-over fields.
func (a *app) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal((*wireApp)(a))
	if err != nil || len(a.extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range a.extra {
		if _, set := all[k]; !set {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
