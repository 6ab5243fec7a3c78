package schema

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultMigrationSteps are the new copy's successive shares of the traffic, in percent, when a workload gives none.
var DefaultMigrationSteps = []int{10, 50, 100}

// EdgeType is the type of the dns routers that are berth's on-prem edge: their endpoint names are host:port.
const EdgeType = "edge"

// endpointNameRE is a DNS name of at least two labels, each 1..63 letters, digits or '-', not starting or ending with '-'.
var endpointNameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$`)

// Moves is how w migrates: its Migration with the defaults filled in (a workload that gives no migration section
// has a zero Migration, so that its encoding, and what was hashed from it, stays as before).
func (w Workload) Moves() Migration {
	m := w.Migration
	if len(m.Steps) == 0 {
		m.Steps = slices.Clone(DefaultMigrationSteps)
	}
	if m.Interval == 0 {
		m.Interval = DefaultMigrationInterval
	}
	return m
}

// Endpoints returns the public ports of w that have a stable name, in port order.
func (w Workload) Endpoints() []Port {
	var out []Port
	for _, p := range w.Ports {
		if p.Endpoint != nil {
			out = append(out, p)
		}
	}
	return out
}

// checkEndpoints checks every endpoint against the dns section: its router is declared, its name has the form the
// router serves, and no two ports (of any environment) claim one name of one router.
func (l *loader) checkEndpoints(cfg *Config, declared bool) {
	type use struct {
		env, workload string
		port          int
	}
	seen := map[string]bool{}
	claimed := map[string]use{}
	add := func(at Pos, path, format string, args ...any) {
		key := fmt.Sprintf("%s\x00%s\x00%s", at, path, fmt.Sprintf(format, args...))
		if !seen[key] {
			seen[key] = true
			l.errs.add(at, path, format, args...)
		}
	}
	for _, en := range slices.Sorted(maps.Keys(cfg.Environments)) {
		for _, w := range cfg.Environments[en].Workloads {
			for i, p := range w.Ports {
				e := p.Endpoint
				if e == nil {
					continue
				}
				field := "ports[" + strconv.Itoa(i) + "].endpoint"
				path := topWorkloads + "." + w.Name + "." + field
				r, ok := cfg.DNS[e.DNS]
				if !ok {
					list := "no dns router is declared"
					if len(cfg.DNS) > 0 {
						list = "declared: " + strings.Join(slices.Sorted(maps.Keys(cfg.DNS)), ", ")
					} else if declared {
						list = "the dns section has no valid router"
					}
					add(w.Position(field+".dns"), path+".dns", "dns router %q is not declared (%s)", e.DNS, list)
					continue
				}
				if msg := endpointNameProblem(r.Type, e.Name); msg != "" {
					add(w.Position(field+".name"), path+".name", "%s", msg)
					continue
				}
				key := e.DNS + "\x00" + canonicalEndpointName(r.Type, e.Name)
				u := use{env: en, workload: w.Name, port: p.Port}
				if prev, dup := claimed[key]; dup && prev.workload == w.Name && prev.port == p.Port {
					add(w.Position(field+".name"), path+".name",
						"endpoint %s of dns %s is the endpoint of this port in environments %s and %s: each environment needs a name of its own (set it under environments.%s.workloads.%s)",
						e.Name, e.DNS, prev.env, en, en, w.Name)
					continue
				} else if dup {
					add(w.Position(field+".name"), path+".name",
						"endpoint %s of dns %s is already the endpoint of port %d of workload %s in environment %s: a stable name serves one port",
						e.Name, e.DNS, prev.port, prev.workload, prev.env)
					continue
				}
				claimed[key] = u
			}
		}
	}
}

// endpointNameProblem says what is wrong with an endpoint name for a router type, "" when nothing is.
func endpointNameProblem(typ, name string) string {
	if typ == EdgeType {
		host, port, err := net.SplitHostPort(name)
		if err != nil {
			return fmt.Sprintf("endpoint name %q of an edge must be the host:port it listens at, e.g. \"0.0.0.0:80\"", name)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("endpoint name %q: port %q is not a number from 1 to 65535", name, port)
		}
		if host != "" && net.ParseIP(host) == nil {
			return fmt.Sprintf("endpoint name %q: the edge listens at an IP address (or none, for every address), not %q", name, host)
		}
		return ""
	}
	if !endpointNameRE.MatchString(name) || len(strings.TrimSuffix(name, ".")) > 253 {
		return fmt.Sprintf("endpoint name %q is not a DNS name of lower-case labels in a zone, e.g. \"web.example.com\"", name)
	}
	return ""
}

// canonicalEndpointName is the form two names are compared in: DNS names without their trailing dot.
func canonicalEndpointName(typ, name string) string {
	if typ == EdgeType {
		return name
	}
	return strings.TrimSuffix(name, ".")
}
