package nomademu

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Limits of Nomad's job validation (nomad/structs) for the fields berth sends. The api package exports the job
// types, the check-restart and service-provider constants and the resource minimums (api.MinResources); the rest
// is not exported by any client package and is copied here from the server's validators.
const (
	// minCheckInterval and minCheckTimeout are the smallest service check interval and timeout.
	minCheckInterval = time.Second
	minCheckTimeout  = time.Second
	// maxPort is the largest port number.
	maxPort = 65535
)

// jobTypes are the job types a submitter may use.
var jobTypes = []string{api.JobTypeService, api.JobTypeBatch, api.JobTypeSystem, api.JobTypeSysbatch}

// updateHealthChecks are the values of update.health_check.
var updateHealthChecks = []string{"checks", "task_states", "manual"}

// checkTypes are the check types each service provider accepts.
var checkTypes = map[string][]string{
	api.ServiceProviderConsul: {"grpc", "http", "script", "tcp"},
	"nomad":                   {"http", "tcp"},
}

// serviceName is RFC 1123's label, as Nomad checks a service name.
var serviceName = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$`)

// multiError formats errs as hashicorp/go-multierror does (the text Nomad answers a failed validation with).
func multiError(errs []string) string {
	if len(errs) == 1 {
		return fmt.Sprintf("1 error occurred:\n\t* %s\n\n", errs[0])
	}
	return fmt.Sprintf("%d errors occurred:\n\t* %s\n\n", len(errs), strings.Join(errs, "\n\t* "))
}

// validate checks a canonicalized job as Nomad's register and plan RPCs do, for the fields berth sends. A failure
// is what Nomad answers: HTTP 500 (the RPC error is not a coded one) with the multi-error text as a plain body.
func validate(j *api.Job) *httpError {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	switch {
	case j.ID == nil || *j.ID == "":
		add("Missing job ID")
	case strings.ContainsAny(*j.ID, " \x00"):
		add("Job ID contains a space or null character")
	}
	if j.Name == nil || *j.Name == "" {
		add("Missing job name")
	}
	if j.Type == nil || !slices.Contains(jobTypes, *j.Type) {
		add("Invalid job type: %q", deref(j.Type))
	}
	if p := deref(j.Priority); p < 1 || p > 100 {
		add("job priority must be between [1, 100]")
	}
	if len(j.TaskGroups) == 0 {
		add("Missing job task groups")
	}
	groups := map[string]bool{}
	for i, g := range j.TaskGroups {
		name := deref(g.Name)
		switch {
		case name == "":
			add("Job task group %d missing name", i+1)
		case groups[name]:
			add("Job task group %d redefines '%s'", i+1, name)
		}
		groups[name] = true
		if ge := validateGroup(j, g); len(ge) > 0 {
			add("Task group %s validation failed: %s", name, multiError(ge))
		}
	}
	if len(errs) > 0 {
		return &httpError{code: http.StatusInternalServerError, msg: multiError(errs)}
	}
	return nil
}

func validateGroup(j *api.Job, g *api.TaskGroup) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if deref(g.Count) < 0 {
		add("Task group count can't be negative")
	}
	if len(g.Tasks) == 0 {
		add("Missing tasks for task group")
	}
	if u := g.Update; u != nil {
		if t := deref(j.Type); t != api.JobTypeService && t != api.JobTypeSystem {
			add("Job type %q does not allow update block", t)
		}
		errs = append(errs, validateUpdate(u)...)
	}
	labels := map[string]bool{}
	static := map[int]string{}
	for _, n := range g.Networks {
		for _, p := range append(append([]api.Port(nil), n.ReservedPorts...), n.DynamicPorts...) {
			if labels[p.Label] {
				add("Port label %q is already in use", p.Label)
			}
			labels[p.Label] = true
			if p.To < -1 || p.To > maxPort {
				add("Port %q has an invalid mapped port value %d", p.Label, p.To)
			}
		}
		for _, p := range n.ReservedPorts {
			switch other, dup := static[p.Value]; {
			case p.Value <= 0 || p.Value > maxPort:
				add("Port %q has an invalid port value %d", p.Label, p.Value)
			case dup:
				add("Static port %d already reserved by %s", p.Value, other)
			}
			static[p.Value] = p.Label
		}
	}
	for i, s := range g.Services {
		if se := validateService(s, labels); len(se) > 0 {
			add("Service[%d] %s validation failed: %s", i, s.Name, multiError(se))
		}
	}
	tasks := map[string]bool{}
	for i, t := range g.Tasks {
		switch {
		case t.Name == "":
			add("Task %d missing name", i+1)
		case tasks[t.Name]:
			add("Task %d redefines '%s'", i+1, t.Name)
		}
		tasks[t.Name] = true
		if te := validateTask(t); len(te) > 0 {
			add("Task %s validation failed: %s", t.Name, multiError(te))
		}
	}
	return errs
}

// validateUpdate is the server's UpdateStrategy.Validate, on the group's update (the job's merged into it).
func validateUpdate(u *api.UpdateStrategy) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if hc := deref(u.HealthCheck); !slices.Contains(updateHealthChecks, hc) {
		add("Invalid health check given: %q", hc)
	}
	if n := deref(u.MaxParallel); n < 0 {
		add("Max parallel can not be less than zero: %d < 0", n)
	}
	if n := deref(u.Canary); n < 0 {
		add("Canary count can not be less than zero: %d < 0", n)
	}
	if deref(u.Canary) == 0 && deref(u.AutoPromote) {
		add("Auto Promote requires a Canary count greater than zero")
	}
	minHealthy, healthy, progress := deref(u.MinHealthyTime), deref(u.HealthyDeadline), deref(u.ProgressDeadline)
	if minHealthy < 0 {
		add("Minimum healthy time may not be less than zero: %v", minHealthy)
	}
	if healthy <= 0 {
		add("Healthy deadline must be greater than zero: %v", healthy)
	}
	if progress < 0 {
		add("Progress deadline must be zero or greater: %v", progress)
	}
	if minHealthy >= healthy {
		add("Minimum healthy time must be less than healthy deadline: %v > %v", minHealthy, healthy)
	}
	if progress != 0 && healthy >= progress {
		add("Healthy deadline must be less than progress deadline: %v > %v", healthy, progress)
	}
	if s := deref(u.Stagger); s <= 0 {
		add("Stagger must be greater than zero: %v", s)
	}
	return errs
}

func validateService(s *api.Service, labels map[string]bool) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if !serviceName.MatchString(s.Name) {
		add("Service name must be valid per RFC 1123 and can contain only alphanumeric characters or dashes: %q", s.Name)
	}
	allowed, ok := checkTypes[s.Provider]
	if !ok {
		add("Service provider must be %q, or %q", api.ServiceProviderConsul, "nomad")
	}
	if s.PortLabel != "" && !labels[s.PortLabel] {
		add("port label %q referenced by services %v does not exist", s.PortLabel, s.Name)
	}
	for _, c := range s.Checks {
		if c.PortLabel != "" && !labels[c.PortLabel] {
			add("Check %s invalid: refers to non-existent port label %s", c.Name, c.PortLabel)
			continue
		}
		needsPort := c.Type == "http" || c.Type == "tcp" || c.Type == "grpc"
		if needsPort && c.PortLabel == "" && s.PortLabel == "" {
			add("Check %s invalid: check requires a port but neither check nor service %+q have a port", c.Name, s.Name)
			continue
		}
		if ok {
			if msg := validateCheck(c, allowed); msg != "" {
				add("Check %s invalid: %s", c.Name, msg)
			}
		}
	}
	return errs
}

// validateCheck is the server's ServiceCheck validation for the check fields berth sends.
func validateCheck(c api.ServiceCheck, allowed []string) string {
	typ := strings.ToLower(c.Type)
	if !slices.Contains(allowed, typ) {
		return fmt.Sprintf("invalid check type (%q), must be one of %s", typ, strings.Join(allowed, ", "))
	}
	switch typ {
	case "http":
		u, err := url.Parse(c.Path)
		switch {
		case c.Path == "":
			return "http type must have http path"
		case err != nil:
			return "http type must have valid http path"
		case u.IsAbs():
			return "http type must have relative http path"
		}
	case "script":
		if c.Command == "" {
			return "script type must have a valid script path"
		}
	}
	switch {
	case c.Interval == 0:
		return fmt.Sprintf("missing required value interval. Interval cannot be less than %v", minCheckInterval)
	case c.Interval < minCheckInterval:
		return fmt.Sprintf("interval (%v) cannot be lower than %v", c.Interval, minCheckInterval)
	case c.Timeout == 0:
		return fmt.Sprintf("missing required value timeout. Timeout cannot be less than %v", minCheckInterval)
	case c.Timeout < minCheckTimeout:
		return fmt.Sprintf("timeout (%v) is lower than required minimum timeout %v", c.Timeout, minCheckInterval)
	}
	if r := c.CheckRestart; r != nil {
		if r.Limit < 0 {
			return fmt.Sprintf("limit must be greater than or equal to 0 but found %d", r.Limit)
		}
		if g := deref(r.Grace); g < 0 {
			return fmt.Sprintf("grace period must be greater than or equal to 0 but found %d", g)
		}
	}
	return ""
}

func validateTask(t *api.Task) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if strings.Contains(t.Name, "/") {
		add("Task name cannot include slashes")
	}
	if t.Driver == "" {
		add("Missing task driver")
	}
	// Stricter than the server: Nomad validates a driver's config on the client, where the allocation then fails.
	if t.Driver == "docker" {
		if img, _ := t.Config["image"].(string); img == "" {
			add("docker config: image is required")
		}
	}
	if r := t.Resources; r != nil {
		minimum := api.MinResources()
		if deref(r.CPU) > 0 && deref(r.Cores) > 0 {
			add("Task can only ask for 'cpu' or 'cores' resource, not both.")
		}
		if c := deref(r.CPU); deref(r.Cores) == 0 && c < *minimum.CPU {
			add("minimum CPU value is %d; got %d", *minimum.CPU, c)
		}
		if m := deref(r.MemoryMB); m < *minimum.MemoryMB {
			add("minimum MemoryMB value is %d; got %d", *minimum.MemoryMB, m)
		}
		if mx := deref(r.MemoryMaxMB); mx != 0 && mx < deref(r.MemoryMB) {
			add("MemoryMaxMB value (%d) should be larger than MemoryMB value (%d)", mx, deref(r.MemoryMB))
		}
	}
	for i, tp := range t.Templates {
		if te := validateTemplate(tp); len(te) > 0 {
			add("Template %d validation failed: %s", i+1, multiError(te))
		}
	}
	return errs
}

// templateChangeModes are the values of a template's change_mode.
var templateChangeModes = []string{"noop", "restart", "signal", "script"}

// validateTemplate checks a template block as the server's Template.Validate does.
func validateTemplate(t *api.Template) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if deref(t.SourcePath) == "" && deref(t.EmbeddedTmpl) == "" {
		add("Must specify a source path or have an embedded template")
	}
	dest := deref(t.DestPath)
	switch {
	case dest == "":
		add("Must specify a destination for the template")
	case escapesTaskDir(dest):
		add("destination escapes allocation directory")
	}
	switch mode := deref(t.ChangeMode); {
	case !slices.Contains(templateChangeModes, mode):
		add("Invalid change mode %q", mode)
	case mode == "signal" && deref(t.ChangeSignal) == "":
		add("Must specify signal value when change mode is signal")
	case mode == "signal" && deref(t.Envvars):
		add("cannot use signals with env var templates")
	}
	if deref(t.Splay) < 0 {
		add("Must specify positive splay value")
	}
	if _, err := strconv.ParseUint(deref(t.Perms), 8, 12); err != nil {
		add("Failed to parse %q as octal: %v", deref(t.Perms), err)
	}
	return errs
}

// escapesTaskDir tells whether a template destination, relative to the task directory, leaves the allocation
// directory (the task directory is one level below it).
func escapesTaskDir(dest string) bool {
	clean := path.Clean(path.Join("/alloc/task", dest))
	return !strings.HasPrefix(clean+"/", "/alloc/")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
