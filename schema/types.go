package schema

import (
	"fmt"
	"time"
)

// Config is a rendered repository: its targets and every environment with its workloads.
// Rendering is deterministic: the same files give an equal Config whatever their order.
type Config struct {
	Targets      map[string]Target      `json:"targets"`
	Environments map[string]Environment `json:"environments"`
}

// Target is a named provider with its settings, e.g. `local: {type: "docker"}`.
type Target struct {
	Name string `json:"name"`
	// Type selects the provider adapter: "docker", later "swarm", "kubernetes", "nomad", "marathon", "aws", "gcp",
	// "azure".
	Type string `json:"type"`
	// Settings holds the type-specific fields (for docker: host), as decoded JSON values.
	Settings map[string]any `json:"settings,omitempty"`
	Pos      Pos            `json:"-"`
}

// Environment is one deployed copy of the workloads, bound to a branch of the repository.
type Environment struct {
	Name   string `json:"name"`
	Branch string `json:"branch"`
	// Workloads are sorted by Name.
	Workloads []Workload `json:"workloads"`
	Pos       Pos        `json:"-"`
}

// Workload returns the workload with the given name and whether it exists.
func (e Environment) Workload(name string) (Workload, bool) {
	for _, w := range e.Workloads {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// Workload is one container workload as the user declared it, with the schema's defaults filled in.
type Workload struct {
	Name string `json:"name"`
	// Provider names a target in Config.Targets.
	Provider  string            `json:"provider"`
	Image     string            `json:"image"`
	Command   []string          `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Ports     []Port            `json:"ports,omitempty"`
	Replicas  int               `json:"replicas"`
	Resources Resources         `json:"resources"`
	Health    *HealthCheck      `json:"health,omitempty"`
	// Pos maps a field path relative to the workload ("image", "ports[0].port", "" for the workload itself) to the
	// place in the user's files that set it, for error messages. Not part of the spec.
	Pos map[string]Pos `json:"-"`
}

// Position returns where the field path was set, falling back to the workload itself.
func (w Workload) Position(path string) Pos {
	if p, ok := w.Pos[path]; ok {
		return p
	}
	return w.Pos[""]
}

// Port is a container port. A public port is reachable at one stable address on the target (for docker, HostPort
// on the host); an internal one only from other workloads of the environment.
type Port struct {
	Name     string `json:"name,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // "tcp" or "udp"
	Public   bool   `json:"public"`
	// HostPort is the stable public port; defaults to Port for public ports, 0 for internal ones.
	HostPort int `json:"hostPort,omitempty"`
}

// Resources are per-replica requests/limits.
type Resources struct {
	// CPUMillis is thousandths of a CPU ("250m" = 250, "1.5" = 1500); 0 means unset.
	CPUMillis int64 `json:"cpuMillis,omitempty"`
	// MemoryBytes is the memory limit ("128Mi" = 134217728); 0 means unset.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
}

// HealthCheck has exactly one of HTTP, TCP or Command set.
type HealthCheck struct {
	HTTP        *HTTPCheck `json:"http,omitempty"`
	TCP         *TCPCheck  `json:"tcp,omitempty"`
	Command     []string   `json:"command,omitempty"`
	Interval    Duration   `json:"interval"`
	Timeout     Duration   `json:"timeout"`
	Retries     int        `json:"retries"`
	StartPeriod Duration   `json:"startPeriod,omitempty"`
}

// Kind is "http", "tcp" or "command".
func (h *HealthCheck) Kind() string {
	switch {
	case h == nil:
		return ""
	case h.HTTP != nil:
		return "http"
	case h.TCP != nil:
		return "tcp"
	default:
		return "command"
	}
}

// HTTPCheck passes on a 2xx or 3xx answer to GET Path on Port.
type HTTPCheck struct {
	Path string `json:"path"`
	Port int    `json:"port"`
}

// TCPCheck passes when a connection to Port opens.
type TCPCheck struct {
	Port int `json:"port"`
}

// Duration is a time.Duration that reads and writes as a Go duration string ("5s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Pos is a place in the user's files.
type Pos struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Pos) String() string {
	if p.File == "" {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}
