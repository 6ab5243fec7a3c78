package marathonemu

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault kinds for Fail.
const (
	ServerError = "server"
	Unavailable = "unavailable"
	Reset       = "reset"
	Slow        = "slow"
	// Denied answers 403 as Marathon does in DC/OS strict mode for an account without the permission.
	Denied = "denied"
)

// Defaults of Options.
const (
	DefaultStepsPerState = 1
	DefaultSlowSteps     = 10
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Token, when set, is the DC/OS token every request must carry ("Authorization: token=<Token>").
	Token string
	// StepsPerState is how many steps a task stays staging, then running before its health checks pass.
	StepsPerState int
	// SlowSteps is the extra start-up of a task under a slow fault.
	SlowSteps int
	// Manual stops requests from advancing the simulation: only Step does.
	Manual bool
	// AgentHost is the host name the one agent registered with (tasks' "host"; default DefaultAgentHost).
	AgentHost string
}

// DefaultAgentHost is the agent's host name when Options.AgentHost is empty.
const DefaultAgentHost = "agent-1"

// Request is one call received, for goldens and assertions.
type Request struct {
	Method string
	// Path is the escaped path with its query, e.g. "/v2/apps/berth/i/dev/web?force=false".
	Path string
	Body json.RawMessage
	// Status is the HTTP status answered (0 for a dropped connection).
	Status int
}

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu          sync.Mutex
	seq         int
	requests    []Request
	faults      []string
	slow        int
	apps        map[string]*app
	stopping    map[string][]*task // tasks of deleted apps, by app id
	deployments []*deployment
	sickPaths   map[string]bool // FailHealthPath
}

type app struct {
	id        string
	def       map[string]any // as stored: the definition given, with defaults filled
	prev      map[string]any // the definition before the last change, for rollbacks
	instances int
	checks    int
	paths     []string // the paths of its HTTP-kind health checks
	image     string
	hostPorts []int // per port mapping: the fixed host port asked for, 0 for one the agent picks
	minHealth float64
	maxOver   float64
	version   string
	versions  map[string]map[string]any // every definition it had, by version (GET /v2/apps/{id}/versions/{v})
	config    string                    // versionInfo.lastConfigChangeAt
	scaled    string                    // versionInfo.lastScalingAt
	tasks     []*task
}

type task struct {
	id, version       string
	running, healthy  bool
	sick              bool // its app answers 404 on the path of one of its HTTP health checks (FailHealthPath)
	wait              int
	stagedAt, started string
	ports             []int
	env               map[string]string // the environment the task was launched with
}

type deployment struct {
	id, version, action, app string
}

// New starts an emulator; Close stops it.
func New(opts Options) *Server {
	if opts.AgentHost == "" {
		opts.AgentHost = DefaultAgentHost
	}
	if opts.StepsPerState <= 0 {
		opts.StepsPerState = DefaultStepsPerState
	}
	if opts.SlowSteps <= 0 {
		opts.SlowSteps = DefaultSlowSteps
	}
	s := &Server{opts: opts, apps: map[string]*app{}, stopping: map[string][]*task{}, sickPaths: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the base address of the emulator ("http://127.0.0.1:port").
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Fail makes the next n requests (or, for Slow, the next n task launches) fail with kind.
func (s *Server) Fail(n int, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == Slow {
		s.slow += n
		return
	}
	for range n {
		s.faults = append(s.faults, kind)
	}
}

// FailHealthPath makes the app of every task launched from now on answer path with 404, as the quickstart app
// does for any path but its health path: a task of an app with an HTTP (HTTPS, MESOS_HTTP, MESOS_HTTPS) health
// check of that path runs but never passes it. Its healthCheckResults say alive false, the app counts it in
// tasksUnhealthy, and a deployment waiting on it (minimumHealthCapacity) keeps the old tasks and never completes.
func (s *Server) FailHealthPath(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sickPaths[path] = true
}

// Step advances the simulation n steps.
func (s *Server) Step(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.advance()
	}
}

// Requests returns the calls received so far (faulted ones included).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests forgets the calls received.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// KillTask kills task i (in launch order) of app id out of band, as a dying task or an operator's
// DELETE /v2/apps/{id}/tasks/{taskId}; with scale the app's instances go down by one, otherwise Marathon
// relaunches it. It returns the killed task's id.
func (s *Server) KillTask(id string, i int, scale bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil || len(a.tasks) == 0 {
		return "", fmt.Errorf("marathonemu: app %s has no tasks", id)
	}
	t := a.tasks[i%len(a.tasks)]
	s.killTask(a, t.id, scale)
	return t.id, nil
}

// CreateLookAlike creates an app without any label (not berth's), running instances tasks at once.
func (s *Server) CreateLookAlike(id string, instances int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	def := map[string]any{"id": id, "instances": float64(instances), "cpus": 0.1, "mem": 32.0,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "lookalike:1", "network": "BRIDGE"}}}
	a := &app{id: id}
	s.setDef(a, def, true)
	for range instances {
		t := s.newTask(a)
		t.running, t.wait = true, 0
	}
	s.apps[id] = a
}

// AppExists tells whether app id exists.
func (s *Server) AppExists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apps[id] != nil
}

// Tasks returns the ids of app id's tasks, in launch order.
func (s *Server) Tasks(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if a := s.apps[id]; a != nil {
		for _, t := range a.tasks {
			out = append(out, t.id)
		}
	}
	return out
}

// TaskEnv returns the environment task taskID of app id was launched with (the app's env at its launch): what the
// container sees. False for an unknown task.
func (s *Server) TaskEnv(id, taskID string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[id]; a != nil {
		for _, t := range a.tasks {
			if t.id == taskID {
				return maps.Clone(t.env), true
			}
		}
	}
	return nil, false
}

// Deployments returns the ids of the deployments in progress.
func (s *Server) Deployments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, d := range s.deployments {
		out = append(out, d.id)
	}
	return out
}

// apiError is an answer other than 2xx.
type apiError struct {
	status int
	body   map[string]any
}

func errMsg(status int, format string, a ...any) *apiError {
	return &apiError{status: status, body: map[string]any{"message": fmt.Sprintf(format, a...)}}
}

// detail is one entry of a 422 answer.
type detail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

func invalid(ds []detail) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, body: map[string]any{"message": "Object is not valid", "details": ds}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	path := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Body: json.RawMessage(slices.Clone(body))})
	rec := &s.requests[len(s.requests)-1]
	if !s.opts.Manual {
		s.advance()
	}
	var fault string
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
	}
	var out any
	var aerr *apiError
	switch {
	case fault == ServerError:
		aerr = errMsg(http.StatusInternalServerError, "Internal server error: injected fault")
	case fault == Unavailable:
		aerr = errMsg(http.StatusServiceUnavailable, "Marathon is not the leader: injected fault")
	case fault == Reset:
	case fault == Denied:
		aerr = errMsg(http.StatusForbidden, "Not Authorized to perform this action!")
	case s.opts.Token != "" && r.Header.Get("Authorization") != "token="+s.opts.Token:
		aerr = errMsg(http.StatusUnauthorized, "Unauthorized: missing or invalid DC/OS token")
	default:
		out, aerr = s.dispatch(r, body)
	}
	status := http.StatusOK
	if aerr != nil {
		status, out = aerr.status, aerr.body
	} else if c, ok := out.(created); ok {
		status, out = http.StatusCreated, c.v
	}
	if fault != Reset {
		rec.Status = status
	}
	s.mu.Unlock()

	if fault == Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(out)
}

// created wraps an answer given with 201.
type created struct{ v any }

func (s *Server) dispatch(r *http.Request, body []byte) (any, *apiError) {
	p := r.URL.Path
	q := r.URL.Query()
	force := q.Get("force") == "true"
	switch {
	case p == "/v2/apps" && r.Method == http.MethodGet:
		return s.listApps(q.Get("label"), embedTasks(q))
	case p == "/v2/deployments" && r.Method == http.MethodGet:
		return s.listDeployments(), nil
	case strings.HasPrefix(p, "/v2/deployments/") && r.Method == http.MethodDelete:
		return s.deleteDeployment(strings.TrimPrefix(p, "/v2/deployments/"), force)
	case strings.HasPrefix(p, "/v2/apps/"):
		id := "/" + strings.Trim(strings.TrimPrefix(p, "/v2/apps/"), "/")
		if i := strings.Index(id, "/tasks/"); i >= 0 && r.Method == http.MethodDelete {
			a := s.apps[id[:i]]
			if a == nil || !s.killTask(a, id[i+len("/tasks/"):], q.Get("scale") == "true") {
				return nil, errMsg(http.StatusNotFound, "Task '%s' does not exist", id[i+len("/tasks/"):])
			}
			return map[string]any{"task": map[string]any{"id": id[i+len("/tasks/"):]}}, nil
		}
		switch r.Method {
		case http.MethodGet:
			if i := strings.LastIndex(id, "/versions"); i > 0 {
				if out, ok := s.versionsOf(id[:i], strings.TrimPrefix(id[i+len("/versions"):], "/")); ok {
					return out, nil
				}
			}
			a := s.apps[id]
			if a == nil {
				return nil, errMsg(http.StatusNotFound, "App '%s' does not exist", id)
			}
			return map[string]any{"app": s.appOut(a, embedTasks(q))}, nil
		case http.MethodPut:
			return s.putApp(id, body, force, q.Get("partialUpdate") != "false")
		case http.MethodDelete:
			return s.deleteApp(id, force)
		}
	}
	return nil, errMsg(http.StatusNotFound, "no endpoint %s %s", r.Method, p)
}

// versionsOf answers GET /v2/apps/{id}/versions ({"versions": [...]}, newest first) and
// /v2/apps/{id}/versions/{version} (the definition at that version); ok is false when id is no app (the path is
// then an app id of its own) or the version is unknown.
func (s *Server) versionsOf(id, version string) (any, bool) {
	a := s.apps[id]
	if a == nil {
		return nil, false
	}
	if version == "" {
		vs := slices.Collect(maps.Keys(a.versions))
		sort.Sort(sort.Reverse(sort.StringSlice(vs)))
		return map[string]any{"versions": vs}, true
	}
	def, ok := a.versions[version]
	return def, ok
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func embedTasks(q map[string][]string) bool {
	return slices.Contains(q["embed"], "apps.tasks") || slices.Contains(q["embed"], "app.tasks")
}

// version returns a fresh synthetic timestamp.
func (s *Server) version() string {
	s.seq++
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s.seq) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

func (s *Server) uuid() string {
	s.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq, s.seq)
}

var segment = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$`)

// appDef is the part of an app definition the emulator checks and acts on.
type appDef struct {
	ID        string         `json:"id"`
	Cmd       *string        `json:"cmd"`
	Args      []string       `json:"args"`
	Instances *float64       `json:"instances"`
	Cpus      *float64       `json:"cpus"`
	Mem       *float64       `json:"mem"`
	Env       map[string]any `json:"env"`
	Labels    map[string]any `json:"labels"`
	Container *containerDef  `json:"container"`
	Checks    []healthCheck  `json:"healthChecks"`
	Upgrade   *upgradeDef    `json:"upgradeStrategy"`

	BackoffSeconds        *float64 `json:"backoffSeconds"`
	BackoffFactor         *float64 `json:"backoffFactor"`
	MaxLaunchDelaySeconds *float64 `json:"maxLaunchDelaySeconds"`
}

type containerDef struct {
	Type   string `json:"type"`
	Docker *struct {
		Image        string        `json:"image"`
		Network      string        `json:"network"`
		PortMappings []portMapping `json:"portMappings"`
	} `json:"docker"`
}

type portMapping struct {
	ContainerPort *int   `json:"containerPort"`
	HostPort      *int   `json:"hostPort"`
	ServicePort   *int   `json:"servicePort"`
	Protocol      string `json:"protocol"`
	Name          string `json:"name"`
}

type healthCheck struct {
	Protocol  string `json:"protocol"`
	Path      string `json:"path"`
	PortIndex *int   `json:"portIndex"`
	Port      *int   `json:"port"`
	Command   *struct {
		Value string `json:"value"`
	} `json:"command"`
	GracePeriodSeconds     *int `json:"gracePeriodSeconds"`
	IntervalSeconds        *int `json:"intervalSeconds"`
	TimeoutSeconds         *int `json:"timeoutSeconds"`
	MaxConsecutiveFailures *int `json:"maxConsecutiveFailures"`
	DelaySeconds           *int `json:"delaySeconds"`
}

// HealthCheckProtocols is the AppHealthCheckProtocol enum of Marathon's API definition (healthCheck.raml).
var HealthCheckProtocols = []string{"HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_TCP", "MESOS_HTTP", "MESOS_HTTPS"}

// healthCheckDefaults are the AppHealthCheck defaults Marathon fills in (healthCheck.raml).
var healthCheckDefaults = map[string]any{"protocol": "HTTP", "gracePeriodSeconds": 300.0, "intervalSeconds": 60.0,
	"timeoutSeconds": 20.0, "maxConsecutiveFailures": 3.0, "delaySeconds": 15.0, "ipProtocol": "IPv4"}

type upgradeDef struct {
	MinimumHealthCapacity *float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   *float64 `json:"maximumOverCapacity"`
}

// validate checks a definition as Marathon's validators do (the subset berth uses).
func validate(id string, d appDef) []detail {
	var ds []detail
	add := func(path, msg string) { ds = append(ds, detail{Path: path, Errors: []string{msg}}) }
	if d.ID != "" && "/"+strings.Trim(d.ID, "/") != id {
		add("/id", "id in the body does not match the path")
	}
	for _, seg := range strings.Split(strings.Trim(id, "/"), "/") {
		if !segment.MatchString(seg) {
			add("/id", "must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'")
			break
		}
	}
	if d.Instances != nil && (*d.Instances < 0 || *d.Instances != math.Trunc(*d.Instances)) {
		add("/instances", "got "+fmt.Sprint(*d.Instances)+", expected 0 or more")
	}
	if d.Cpus != nil && *d.Cpus < 0.001 {
		add("/cpus", "got "+fmt.Sprint(*d.Cpus)+", expected 0.001 or more")
	}
	if d.Mem != nil && *d.Mem < 0 {
		add("/mem", "got "+fmt.Sprint(*d.Mem)+", expected 0.0 or more")
	}
	if d.Cmd != nil && *d.Cmd != "" && len(d.Args) > 0 {
		add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
	}
	for k, v := range d.Env {
		if _, ok := v.(string); !ok {
			add("/env/"+k, "must be a string")
		}
	}
	for k, v := range d.Labels {
		if _, ok := v.(string); !ok {
			add("/labels/"+k, "must be a string")
		}
	}
	ports := 0
	switch c := d.Container; {
	case c == nil:
		if d.Cmd == nil && len(d.Args) == 0 {
			add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
		}
	case c.Type != "DOCKER" && c.Type != "MESOS":
		add("/container/type", "must be one of DOCKER, MESOS")
	case c.Type == "DOCKER" && (c.Docker == nil || c.Docker.Image == ""):
		add("/container/docker/image", "must not be empty")
	case c.Docker != nil:
		if n := c.Docker.Network; n != "" && n != "BRIDGE" && n != "HOST" && n != "USER" {
			add("/container/docker/network", "must be one of BRIDGE, HOST, USER")
		}
		ports = len(c.Docker.PortMappings)
		names := map[string]bool{}
		for i, pm := range c.Docker.PortMappings {
			if pm.Name != "" && names[pm.Name] {
				add(fmt.Sprintf("/container/docker/portMappings(%d)/name", i), "Port names must be unique.")
			}
			names[pm.Name] = true
			if pm.ServicePort != nil && (*pm.ServicePort < 0 || *pm.ServicePort > 65535) {
				add(fmt.Sprintf("/container/docker/portMappings(%d)/servicePort", i), "must be between 0 and 65535")
			}
			pp := fmt.Sprintf("/container/docker/portMappings(%d)", i)
			if pm.ContainerPort == nil || *pm.ContainerPort < 0 || *pm.ContainerPort > 65535 {
				add(pp+"/containerPort", "must be between 0 and 65535")
			}
			if pm.HostPort != nil && (*pm.HostPort < 0 || *pm.HostPort > 65535) {
				add(pp+"/hostPort", "must be between 0 and 65535")
			}
			if pm.Protocol != "" && pm.Protocol != "tcp" && pm.Protocol != "udp" && pm.Protocol != "udp,tcp" {
				add(pp+"/protocol", "must be one of tcp, udp, udp,tcp")
			}
		}
	}
	for i, hc := range d.Checks {
		hp := fmt.Sprintf("/healthChecks(%d)", i)
		switch protocol := cmpStr(hc.Protocol, "HTTP"); {
		case !slices.Contains(HealthCheckProtocols, protocol):
			add(hp+"/protocol", "error.unknown.enum.literal: expected one of "+strings.Join(HealthCheckProtocols, ", "))
		case protocol == "COMMAND":
			if hc.Command == nil || hc.Command.Value == "" {
				add(hp+"/command", "must not be empty for a COMMAND health check")
			}
		case hc.Port == nil && (hc.PortIndex == nil || *hc.PortIndex < 0 || *hc.PortIndex >= ports):
			add(hp+"/portIndex", fmt.Sprintf("must be an index into the %d port mappings", ports))
		}
		for name, v := range map[string]*int{"gracePeriodSeconds": hc.GracePeriodSeconds, "intervalSeconds": hc.IntervalSeconds,
			"timeoutSeconds": hc.TimeoutSeconds, "maxConsecutiveFailures": hc.MaxConsecutiveFailures, "delaySeconds": hc.DelaySeconds} {
			if v != nil && *v < 0 {
				add(hp+"/"+name, fmt.Sprintf("got %d, expected 0 or more", *v))
			}
		}
	}
	if d.Cmd != nil && *d.Cmd == "" {
		add("/cmd", "must not be empty")
	}
	if v := d.BackoffSeconds; v != nil && *v < 0 {
		add("/backoffSeconds", fmt.Sprintf("got %v, expected 0 or more", *v))
	}
	if v := d.BackoffFactor; v != nil && *v < 1 {
		add("/backoffFactor", fmt.Sprintf("got %v, expected 1.0 or more", *v))
	}
	if v := d.MaxLaunchDelaySeconds; v != nil && *v < 0 {
		add("/maxLaunchDelaySeconds", fmt.Sprintf("got %v, expected 0 or more", *v))
	}
	if u := d.Upgrade; u != nil {
		if u.MinimumHealthCapacity != nil && (*u.MinimumHealthCapacity < 0 || *u.MinimumHealthCapacity > 1) {
			add("/upgradeStrategy/minimumHealthCapacity", "must be between 0 and 1")
		}
		if u.MaximumOverCapacity != nil && (*u.MaximumOverCapacity < 0 || *u.MaximumOverCapacity > 1) {
			add("/upgradeStrategy/maximumOverCapacity", "must be between 0 and 1")
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Path < ds[j].Path })
	return ds
}

// setDef stores def on a (filling Marathon's defaults) and tells whether the configuration (all but instances)
// changed.
func (s *Server) setDef(a *app, def map[string]any, fresh bool) (configChanged bool) {
	for k, v := range map[string]any{"instances": 1.0, "cpus": 1.0, "mem": 128.0, "env": map[string]any{},
		"labels": map[string]any{}, "healthChecks": []any{},
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
		"backoffSeconds":  1.0, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 3600.0} {
		if def[k] == nil {
			def[k] = v
		}
	}
	if hcs, ok := def["healthChecks"].([]any); ok {
		for _, hc := range hcs {
			if m, ok := hc.(map[string]any); ok {
				for k, v := range healthCheckDefaults {
					if m[k] == nil {
						m[k] = v
					}
				}
			}
		}
	}
	def["id"] = a.id
	raw, _ := json.Marshal(def)
	var d appDef
	json.Unmarshal(raw, &d)
	without := func(m map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			if k != "instances" {
				c[k] = v
			}
		}
		return c
	}
	configChanged = fresh || !reflect.DeepEqual(without(a.def), without(def))
	a.prev, a.def = a.def, def
	a.instances = int(*d.Instances)
	a.checks, a.paths = len(d.Checks), nil
	for _, hc := range d.Checks {
		if p := cmpStr(hc.Protocol, "HTTP"); p == "HTTP" || p == "HTTPS" || p == "MESOS_HTTP" || p == "MESOS_HTTPS" {
			a.paths = append(a.paths, cmpStr(hc.Path, "/"))
		}
	}
	a.image, a.hostPorts = "", nil
	if d.Container != nil && d.Container.Docker != nil {
		a.image = d.Container.Docker.Image
		for _, pm := range d.Container.Docker.PortMappings {
			hp := 0
			if pm.HostPort != nil {
				hp = *pm.HostPort
			}
			a.hostPorts = append(a.hostPorts, hp)
		}
	}
	a.minHealth, a.maxOver = 1, 1
	if u := d.Upgrade; u != nil {
		if u.MinimumHealthCapacity != nil {
			a.minHealth = *u.MinimumHealthCapacity
		}
		if u.MaximumOverCapacity != nil {
			a.maxOver = *u.MaximumOverCapacity
		}
	}
	a.version = s.version()
	if configChanged {
		a.config = a.version
	}
	a.scaled = a.version
	s.keepVersion(a)
	return configChanged
}

// keepVersion records a's definition as its current version (GET /v2/apps/{id}/versions/{version}).
func (s *Server) keepVersion(a *app) {
	if a.versions == nil {
		a.versions = map[string]map[string]any{}
	}
	var kept map[string]any
	b, _ := json.Marshal(a.def)
	_ = json.Unmarshal(b, &kept)
	kept["version"] = a.version
	a.versions[a.version] = kept
}

// locks returns the deployments touching app id.
func (s *Server) locks(id string) []*deployment {
	var out []*deployment
	for _, d := range s.deployments {
		if d.app == id {
			out = append(out, d)
		}
	}
	return out
}

// locked checks the lock of app id: 409 as Marathon answers, or (with force) the cancellation of its deployments.
func (s *Server) locked(id string, force bool) *apiError {
	ls := s.locks(id)
	if len(ls) == 0 {
		return nil
	}
	if force {
		s.deployments = slices.DeleteFunc(s.deployments, func(d *deployment) bool { return d.app == id })
		return nil
	}
	var ds []any
	for _, d := range ls {
		ds = append(ds, map[string]any{"id": d.id})
	}
	return &apiError{status: http.StatusConflict, body: map[string]any{
		"message":     "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
		"deployments": ds,
	}}
}

func (s *Server) putApp(id string, body []byte, force, partial bool) (any, *apiError) {
	var raw map[string]any
	var d appDef
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, errMsg(http.StatusBadRequest, "Invalid JSON")
	}
	a := s.apps[id]
	fresh := a == nil
	if !fresh && partial { // a partial update is validated as the definition it makes
		merged := map[string]any{}
		for k, v := range a.def {
			merged[k] = v
		}
		for k, v := range raw {
			merged[k] = v
		}
		raw = merged
		body, _ = json.Marshal(raw)
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, invalid([]detail{{Path: "/", Errors: []string{"invalid JSON types: " + err.Error()}}})
	}
	if ds := validate(id, d); len(ds) > 0 {
		return nil, invalid(ds)
	}
	if e := s.locked(id, force); e != nil {
		return nil, e
	}
	if fresh {
		a = &app{id: id}
	}
	changed := s.setDef(a, raw, fresh)
	s.apps[id] = a
	action := "ScaleApplication"
	switch {
	case fresh:
		action = "StartApplication"
	case changed:
		action = "RestartApplication"
	}
	dep := &deployment{id: s.uuid(), version: a.version, action: action, app: id}
	s.deployments = append(s.deployments, dep)
	out := map[string]any{"version": a.version, "deploymentId": dep.id}
	if fresh {
		return created{out}, nil
	}
	return out, nil
}

func (s *Server) deleteApp(id string, force bool) (any, *apiError) {
	a := s.apps[id]
	if a == nil {
		return nil, errMsg(http.StatusNotFound, "App '%s' does not exist", id)
	}
	if e := s.locked(id, force); e != nil {
		return nil, e
	}
	delete(s.apps, id)
	s.stopping[id] = append(s.stopping[id], a.tasks...)
	dep := &deployment{id: s.uuid(), version: s.version(), action: "StopApplication", app: id}
	s.deployments = append(s.deployments, dep)
	return map[string]any{"version": dep.version, "deploymentId": dep.id}, nil
}

func (s *Server) deleteDeployment(id string, force bool) (any, *apiError) {
	i := slices.IndexFunc(s.deployments, func(d *deployment) bool { return d.id == id })
	if i < 0 {
		return nil, errMsg(http.StatusNotFound, "DeploymentPlan %s does not exist", id)
	}
	d := s.deployments[i]
	s.deployments = slices.Delete(s.deployments, i, i+1)
	if force {
		return map[string]any{}, nil // 202 in Marathon; the body is empty
	}
	// Rollback: restore the previous definition in a new deployment (a first start rolls back to nothing).
	a := s.apps[d.app]
	if a == nil {
		return map[string]any{}, nil
	}
	if a.prev == nil {
		delete(s.apps, d.app)
		s.stopping[d.app] = append(s.stopping[d.app], a.tasks...)
	} else {
		s.setDef(a, a.prev, false)
	}
	back := &deployment{id: s.uuid(), version: s.version(), action: "RollbackApplication", app: d.app}
	s.deployments = append(s.deployments, back)
	return map[string]any{"version": back.version, "deploymentId": back.id}, nil
}

func (s *Server) listDeployments() []any {
	out := []any{}
	for _, d := range s.deployments {
		act := map[string]any{"action": d.action, "app": d.app}
		out = append(out, map[string]any{
			"id": d.id, "version": d.version, "affectedApps": []string{d.app}, "affectedPods": []string{},
			"steps": []any{map[string]any{"actions": []any{act}}}, "currentActions": []any{act},
			"currentStep": 1, "totalSteps": 1,
		})
	}
	return out
}

// selector is one term of a label selector.
type selector struct {
	key, op string
	values  []string
}

var term = regexp.MustCompile(`^(\\.|[-A-Za-z0-9_.])+`)

// parseSelector reads Marathon's label selector grammar: selector {, selector}; selector is key, key==v, key!=v,
// key in (v, ...), key notin (v, ...); terms are [-A-Za-z0-9_.] with anything else escaped by a backslash.
func parseSelector(q string) ([]selector, error) {
	var out []selector
	rest := strings.TrimSpace(q)
	readTerm := func() (string, error) {
		rest = strings.TrimLeft(rest, " ")
		m := term.FindString(rest)
		if m == "" {
			return "", fmt.Errorf("expected a term at %q", rest)
		}
		rest = rest[len(m):]
		return regexp.MustCompile(`\\(.)`).ReplaceAllString(m, "$1"), nil
	}
	for rest != "" {
		k, err := readTerm()
		if err != nil {
			return nil, err
		}
		sel := selector{key: k}
		rest = strings.TrimLeft(rest, " ")
		switch {
		case strings.HasPrefix(rest, "=="), strings.HasPrefix(rest, "!="):
			sel.op, rest = rest[:2], rest[2:]
			v, err := readTerm()
			if err != nil {
				return nil, err
			}
			sel.values = []string{v}
		case strings.HasPrefix(rest, "in ("), strings.HasPrefix(rest, "notin ("):
			sel.op, rest, _ = strings.Cut(rest, " (")
			for {
				v, err := readTerm()
				if err != nil {
					return nil, err
				}
				sel.values = append(sel.values, v)
				rest = strings.TrimLeft(rest, " ")
				if strings.HasPrefix(rest, ")") {
					rest = rest[1:]
					break
				}
				if !strings.HasPrefix(rest, ",") {
					return nil, fmt.Errorf("expected , or ) at %q", rest)
				}
				rest = rest[1:]
			}
		}
		out = append(out, sel)
		rest = strings.TrimLeft(rest, " ")
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("expected , at %q", rest)
			}
			rest = rest[1:]
		}
	}
	return out, nil
}

func (sel selector) matches(labels map[string]any) bool {
	v, ok := labels[sel.key].(string)
	if !ok {
		return false
	}
	switch sel.op {
	case "==", "in":
		return slices.Contains(sel.values, v)
	case "!=", "notin":
		return !slices.Contains(sel.values, v)
	}
	return true
}

func (s *Server) listApps(label string, tasks bool) (any, *apiError) {
	var sels []selector
	if label != "" {
		var err error
		if sels, err = parseSelector(label); err != nil {
			return nil, errMsg(http.StatusBadRequest, "Invalid label selector query: %s", err)
		}
	}
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := []any{}
	for _, id := range ids {
		a := s.apps[id]
		labels, _ := a.def["labels"].(map[string]any)
		if slices.ContainsFunc(sels, func(sel selector) bool { return !sel.matches(labels) }) {
			continue
		}
		out = append(out, s.appOut(a, tasks))
	}
	return map[string]any{"apps": out}, nil
}

func (s *Server) ready(a *app, t *task) bool { return t.running && (a.checks == 0 || t.healthy) }

func (s *Server) appOut(a *app, withTasks bool) map[string]any {
	out := map[string]any{}
	for k, v := range a.def {
		out[k] = v
	}
	var staged, running, healthy, unhealthy int
	var tasks []any
	for _, t := range a.tasks {
		state := "TASK_STAGING"
		if t.running {
			state = "TASK_RUNNING"
			running++
			if t.healthy {
				healthy++
			}
		} else {
			staged++
		}
		to := map[string]any{"id": t.id, "appId": a.id, "host": s.opts.AgentHost, "ports": t.ports, "stagedAt": t.stagedAt,
			"version": t.version, "state": state, "slaveId": "agent-1-S0"}
		if t.running {
			to["startedAt"] = t.started
		}
		if a.checks > 0 && t.running && (t.healthy || t.sick) {
			var rs []any
			for range a.checks {
				r := map[string]any{"alive": true, "consecutiveFailures": 0, "taskId": t.id}
				if t.sick {
					r["alive"], r["consecutiveFailures"] = false, 1
				}
				rs = append(rs, r)
			}
			to["healthCheckResults"] = rs
			if t.sick {
				unhealthy++
			}
		}
		tasks = append(tasks, to)
	}
	deps := []any{}
	for _, d := range s.locks(a.id) {
		deps = append(deps, map[string]any{"id": d.id})
	}
	out["version"] = a.version
	out["versionInfo"] = map[string]any{"lastConfigChangeAt": a.config, "lastScalingAt": a.scaled}
	out["tasksStaged"], out["tasksRunning"], out["tasksHealthy"] = staged, running, healthy
	out["tasksUnhealthy"] = unhealthy
	out["deployments"] = deps
	if withTasks {
		if tasks == nil {
			tasks = []any{}
		}
		out["tasks"] = tasks
	}
	return out
}

func (s *Server) newTask(a *app) *task {
	now := s.version()
	t := &task{id: strings.ReplaceAll(strings.Trim(a.id, "/"), "/", "_") + "." + s.uuid(), version: a.version,
		wait: s.opts.StepsPerState, stagedAt: now, env: map[string]string{}}
	for _, p := range a.paths {
		t.sick = t.sick || s.sickPaths[p]
	}
	if env, ok := a.def["env"].(map[string]any); ok {
		for k, v := range env {
			if str, ok := v.(string); ok {
				t.env[k] = str
			}
		}
	}
	if s.slow > 0 {
		s.slow--
		t.wait += s.opts.SlowSteps
	}
	for _, hp := range a.hostPorts {
		if hp == 0 { // BRIDGE networking: a host port from the agent's offered range
			s.seq++
			hp = 31000 + s.seq%1000
		}
		t.ports = append(t.ports, hp)
	}
	a.tasks = append(a.tasks, t)
	return t
}

// killTask removes a task of a; with scale, instances go down by one (a new app version, no deployment).
func (s *Server) killTask(a *app, id string, scale bool) bool {
	i := slices.IndexFunc(a.tasks, func(t *task) bool { return t.id == id })
	if i < 0 {
		return false
	}
	a.tasks = slices.Delete(a.tasks, i, i+1)
	if scale && a.instances > 0 {
		a.instances--
		a.def["instances"] = float64(a.instances)
		a.version = s.version()
		a.scaled = a.version
		s.keepVersion(a)
	}
	return true
}

// advance moves every task, app and deployment one step.
func (s *Server) advance() {
	for id, ts := range s.stopping {
		if len(ts) > 0 {
			s.stopping[id] = nil // killed in one step
			continue
		}
		delete(s.stopping, id)
	}
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s.advanceApp(s.apps[id])
	}
	s.deployments = slices.DeleteFunc(s.deployments, func(d *deployment) bool {
		if d.action == "StopApplication" || s.apps[d.app] == nil {
			_, stopping := s.stopping[d.app]
			return !stopping
		}
		return s.converged(s.apps[d.app])
	})
}

func (s *Server) advanceApp(a *app) {
	for _, t := range a.tasks {
		if t.wait > 0 {
			t.wait--
			continue
		}
		switch {
		case !t.running:
			t.running, t.started = true, s.version()
			t.wait = s.opts.StepsPerState
			if a.checks == 0 {
				t.wait = 0
			}
		case a.checks > 0 && !t.healthy && !t.sick:
			t.healthy = true
		}
	}
	var cur, old []*task
	for _, t := range a.tasks {
		if a.current(t) {
			cur = append(cur, t)
		} else {
			old = append(old, t)
		}
	}
	// Scale down: not-ready tasks first, then the newest.
	if len(cur) > a.instances {
		sort.SliceStable(cur, func(i, j int) bool { return s.ready(a, cur[i]) && !s.ready(a, cur[j]) })
		for _, t := range cur[a.instances:] {
			s.killTask(a, t.id, false)
		}
		cur = cur[:a.instances]
	}
	// Kill old tasks only while minimumHealthCapacity stays served by ready tasks.
	readyCur := 0
	for _, t := range cur {
		if s.ready(a, t) {
			readyCur++
		}
	}
	keep := max(0, int(math.Ceil(float64(a.instances)*a.minHealth))-readyCur)
	sort.SliceStable(old, func(i, j int) bool { return s.ready(a, old[i]) && !s.ready(a, old[j]) })
	if len(old) > keep {
		for _, t := range old[keep:] {
			s.killTask(a, t.id, false)
		}
		old = old[:keep]
	}
	// Start new tasks within maximumOverCapacity.
	limit := a.instances + int(math.Floor(float64(a.instances)*a.maxOver))
	for n := len(cur); n < a.instances && n+len(old) < max(limit, a.instances); n++ {
		s.newTask(a)
	}
}

// current tells whether t runs a's configuration: a task carries the app version it was launched at (Marathon's
// runSpecVersion), the last configuration change or a later version of the same configuration (a scale); the
// synthetic versions have one fixed width, so they compare as strings.
func (a *app) current(t *task) bool { return t.version >= a.config }

// converged tells whether a runs exactly its instances, all ready on the current version.
func (s *Server) converged(a *app) bool {
	if len(a.tasks) != a.instances {
		return false
	}
	for _, t := range a.tasks {
		if !a.current(t) || !s.ready(a, t) {
			return false
		}
	}
	return true
}
