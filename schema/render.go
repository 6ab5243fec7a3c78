package schema

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

type rawWorkload struct {
	Image    string            `json:"image"`
	Command  []string          `json:"command"`
	Args     []string          `json:"args"`
	Provider string            `json:"provider"`
	Replicas *int              `json:"replicas"`
	Env      map[string]string `json:"env"`
	Ports    []rawPort         `json:"ports"`
	Health   *rawHealth        `json:"health"`
}

type rawPort struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Public   bool   `json:"public"`
	HostPort int    `json:"hostPort"`
}

type rawHealth struct {
	HTTP *struct {
		Path *string `json:"path"`
		Port int     `json:"port"`
	} `json:"http"`
	TCP         *TCPCheck `json:"tcp"`
	Command     []string  `json:"command"`
	Interval    *string   `json:"interval"`
	Timeout     *string   `json:"timeout"`
	Retries     *int      `json:"retries"`
	StartPeriod *string   `json:"startPeriod"`
}

// render turns a concrete, schema-checked workload value into a Workload, applying defaults and checking what the
// schema cannot say (durations, quantities, one health kind).
func (l *loader) render(name string, v cue.Value, pos map[string]Pos, path string) (*Workload, bool) {
	at := func(field string) Pos { return nearest(pos, field) }
	nerr := len(l.errs.errs)
	fail := func(field, format string, args ...any) {
		l.errs.add(at(field), path+"."+field, format, args...)
	}

	var raw rawWorkload
	if err := v.Decode(&raw); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: strings.Split(path, "."), stripDef: true, at: pos[""]})
		return nil, false
	}
	w := &Workload{
		Name:     name,
		Provider: raw.Provider,
		Image:    raw.Image,
		Command:  raw.Command,
		Args:     raw.Args,
		Env:      raw.Env,
		Replicas: DefaultReplicas,
		Pos:      pos,
	}
	if raw.Replicas != nil {
		w.Replicas = *raw.Replicas
	}
	// A provider naming no target is the unknown-provider policy's to deny (policies), not a schema error: the
	// rendered environment still tells what the user meant.

	names := map[string]int{}
	for i, rp := range raw.Ports {
		p := Port{Name: rp.Name, Port: rp.Port, Protocol: rp.Protocol, Public: rp.Public, HostPort: rp.HostPort}
		field := "ports[" + strconv.Itoa(i) + "]"
		if p.Protocol == "" {
			p.Protocol = DefaultProtocol
		}
		switch {
		case p.Public && p.HostPort == 0:
			p.HostPort = p.Port
		case !p.Public && p.HostPort != 0:
			fail(field+".hostPort", "hostPort is only allowed on a public port (add public: true)")
		}
		if p.Name != "" {
			if j, dup := names[p.Name]; dup {
				fail(field+".name", "port name %q is already used by ports[%d]", p.Name, j)
			}
			names[p.Name] = i
		}
		w.Ports = append(w.Ports, p)
	}

	if h := raw.Health; h != nil {
		hc := &HealthCheck{TCP: h.TCP, Command: h.Command, Interval: DefaultHealthInterval,
			Timeout: DefaultHealthTimeout, Retries: DefaultHealthRetries}
		var kinds []string
		if h.HTTP != nil {
			kinds = append(kinds, "http")
			hc.HTTP = &HTTPCheck{Path: DefaultHealthHTTPPath, Port: h.HTTP.Port}
			if h.HTTP.Path != nil {
				hc.HTTP.Path = *h.HTTP.Path
			}
		}
		if h.TCP != nil {
			kinds = append(kinds, "tcp")
		}
		if h.Command != nil {
			kinds = append(kinds, "command")
			if len(h.Command) == 0 {
				fail("health.command", "health command must not be empty")
			}
		}
		switch len(kinds) {
		case 0:
			fail("health", "health needs one of http, tcp or command")
		case 1:
		default:
			fail("health", "health must have exactly one of http, tcp or command, found %s", strings.Join(kinds, " and "))
		}
		for _, d := range []struct {
			field string
			s     *string
			dst   *Duration
		}{{"interval", h.Interval, &hc.Interval}, {"timeout", h.Timeout, &hc.Timeout}, {"startPeriod", h.StartPeriod, &hc.StartPeriod}} {
			if d.s == nil {
				continue
			}
			dur, err := parseDuration(*d.s)
			if err != nil {
				fail("health."+d.field, "%v", err)
				continue
			}
			*d.dst = dur
		}
		if h.Retries != nil {
			hc.Retries = *h.Retries
		}
		w.Health = hc
	}

	if cpu := v.LookupPath(cue.ParsePath("resources.cpu")); cpu.Exists() {
		n, err := parseCPU(quantityText(cpu))
		if err != nil {
			fail("resources.cpu", "%v", err)
		}
		w.Resources.CPUMillis = n
	}
	if mem := v.LookupPath(cue.ParsePath("resources.memory")); mem.Exists() {
		n, err := parseMemory(quantityText(mem))
		if err != nil {
			fail("resources.memory", "%v", err)
		}
		w.Resources.MemoryBytes = n
	}
	return w, len(l.errs.errs) == nerr
}

// quantityText is a string value as is, a number as its decimal text.
func quantityText(v cue.Value) string {
	if s, err := v.String(); err == nil {
		return s
	}
	b, err := v.MarshalJSON()
	if err != nil {
		return v.IncompleteKind().String()
	}
	return string(b)
}

// clone returns a deep copy, so environments sharing a rendering cannot change each other's.
func (w *Workload) clone() Workload {
	c := *w
	c.Command = slices.Clone(w.Command)
	c.Args = slices.Clone(w.Args)
	c.Env = maps.Clone(w.Env)
	c.Ports = slices.Clone(w.Ports)
	c.Pos = maps.Clone(w.Pos)
	if w.Health != nil {
		h := *w.Health
		h.Command = slices.Clone(w.Health.Command)
		if h.HTTP != nil {
			x := *h.HTTP
			h.HTTP = &x
		}
		if h.TCP != nil {
			x := *h.TCP
			h.TCP = &x
		}
		c.Health = &h
	}
	return c
}
