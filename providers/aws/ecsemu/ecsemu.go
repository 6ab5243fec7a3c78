package ecsemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TargetPrefix is the X-Amz-Target prefix of every ECS operation.
const TargetPrefix = "AmazonEC2ContainerServiceV20141113."

// Defaults of Options.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"
	// DefaultSlowSteps is how many more steps a task takes to start under a slow fault.
	DefaultSlowSteps = 10
)

// Fault kinds for Fail and FailOp.
const (
	Throttle    = "throttle"
	ServerError = "server"
	Unavailable = "unavailable"
	Conflict    = "conflict"
	Reset       = "reset"
	Slow        = "slow"
	// Limit answers LimitExceededException, as ECS does when a quota is reached (revisions, services, tags).
	Limit = "limit"
	// Denied answers AccessDeniedException, as ECS does when the caller's IAM policies do not allow the action.
	Denied = "denied"
	// Unrecognized answers UnrecognizedClientException, as ECS does for an access key IAM does not know.
	Unrecognized = "unrecognized"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	Region  string
	Account string
	// Clusters that exist; empty accepts any cluster name.
	Clusters []string
	// StepsPerState is how many steps a task stays in PROVISIONING, then PENDING, then RUNNING-but-starting
	// (default 1).
	StepsPerState int
	// SlowSteps is the extra start-up of a task under a slow fault (default DefaultSlowSteps).
	SlowSteps int
	// Manual stops requests from advancing the simulation: only Step does.
	Manual bool
	// Now is the clock of the timestamps in answers (default a fixed instant, so answers are reproducible).
	Now func() time.Time
	// ResolveSecret, when set, resolves a container's secrets[].valueFrom as the ECS agent does at task start
	// with the execution role (a test gives one that reads a Secrets Manager or SSM emulator). A task whose
	// secret cannot be resolved stops with ResourceInitializationError. Nil: secrets are not resolved and
	// TaskEnvironment shows only the plain environment. It is called with the emulator's lock held: it must not
	// call this emulator.
	ResolveSecret func(valueFrom string) (string, error)
	// DrainSteps is how many steps a deregistered ELBv2 target stays draining (its deregistration delay; default 1).
	DrainSteps int
	// VpcID is the VPC of every subnet (EC2's DescribeSubnets, ELBv2's answers; default DefaultVpcID).
	VpcID string
}

// DefaultVpcID is the VPC of every subnet unless Options.VpcID says another.
const DefaultVpcID = "vpc-0e5c0e5c0e5c0e5c0"

// Request is one call received, for goldens and assertions.
type Request struct {
	Op   string
	Body json.RawMessage
}

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	step     int
	seq      int
	requests []Request
	faults   []fault
	slow     int
	missing  map[string]bool
	clusters map[string]*cluster
	taskDefs map[string][]*taskDef // by family; index = revision-1
	enis     int                   // network interfaces made, for their private addresses
	elb      elbState              // the ELBv2 side (elbv2.go)
}

type fault struct {
	op   string // "" = any
	n    int
	kind string
}

type cluster struct {
	name     string
	services map[string]*service
	order    []string // service names in creation order
	tokens   map[string]token
	tasks    map[string]*task // by ID
}

type token struct {
	service string
	hash    string
}

type service struct {
	arn, name, cluster string
	status             string
	desired            int
	taskDef            string // ARN
	propagateTags      string
	netConf            json.RawMessage
	depConf            depConf
	tags               []Tag
	deployments        []*deployment // [0] is PRIMARY
	loadBalancers      []ServiceLoadBalancer
	gracePeriod        *int
	listed             bool
	created            time.Time
}

type depConf struct {
	MinimumHealthyPercent    *int `json:"minimumHealthyPercent,omitempty"`
	MaximumPercent           *int `json:"maximumPercent,omitempty"`
	DeploymentCircuitBreaker *struct {
		Enable   bool `json:"enable"`
		Rollback bool `json:"rollback"`
	} `json:"deploymentCircuitBreaker,omitempty"`
}

type deployment struct {
	id      string
	taskDef string
	desired int
	rollout string
	reason  string
	failed  int
	created time.Time
	updated time.Time
}

type task struct {
	arn, id, cluster, service, deployment, taskDef string
	lastStatus, desiredStatus, health              string
	wait                                           int // steps left in the current state
	stoppedReason                                  string
	created                                        time.Time
	tags                                           []Tag
	env                                            map[string]string // what the container sees, from RUNNING on
	// The task's elastic network interface (awsvpc): its attachment id, ENI id, subnet, private address and the
	// public one its service's assignPublicIp gives (EC2's to tell, not ECS's).
	attachment, eni, subnet, ip, publicIP string
}

type taskDef struct {
	arn, family string
	revision    int
	status      string
	cpu, memory string
	body        map[string]json.RawMessage // the registration, echoed back
	containers  []containerDef
	tags        []Tag
}

type containerDef struct {
	ports       []int           // container ports of its port mappings
	Name        string          `json:"name"`
	Image       string          `json:"image"`
	HealthCheck json.RawMessage `json:"healthCheck,omitempty"`
	Environment []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"environment,omitempty"`
	Secrets []struct {
		Name      string `json:"name"`
		ValueFrom string `json:"valueFrom"`
	} `json:"secrets,omitempty"`
}

// Tag is an ECS tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// New starts an emulator.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Account == "" {
		opts.Account = DefaultAccount
	}
	if opts.StepsPerState <= 0 {
		opts.StepsPerState = 1
	}
	if opts.SlowSteps <= 0 {
		opts.SlowSteps = DefaultSlowSteps
	}
	if opts.Now == nil {
		fixed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		opts.Now = func() time.Time { return fixed }
	}
	s := &Server{opts: opts, missing: map[string]bool{}, clusters: map[string]*cluster{}, taskDefs: map[string][]*taskDef{},
		elb: newELBState()}
	for _, c := range opts.Clusters {
		s.clusters[c] = newCluster(c)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func newCluster(name string) *cluster {
	return &cluster{name: name, services: map[string]*service{}, tokens: map[string]token{}, tasks: map[string]*task{}}
}

// URL is the endpoint to give the SDK (BaseEndpoint).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Fail makes the next n requests (any operation) fail with kind; for Slow, the next n tasks start slowly.
func (s *Server) Fail(n int, kind string) { s.FailOp("", n, kind) }

// FailOp makes the next n requests of operation op fail with kind.
func (s *Server) FailOp(op string, n int, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == Slow {
		s.slow += n
		return
	}
	s.faults = append(s.faults, fault{op: op, n: n, kind: kind})
}

// MissingImage makes image unpullable: its tasks stop with CannotPullContainerError.
func (s *Server) MissingImage(image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.missing[image] = true
}

// Step advances the simulation n steps.
func (s *Server) Step(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.advance()
	}
}

// Requests returns the calls received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests forgets the calls received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// KillTask makes the i-th (in ARN order, as LiveTasks lists them) live task of a service die out of band, as a crashed container or a
// reclaimed host would: it is STOPPED at once and the scheduler replaces it.
func (s *Server) KillTask(clusterName, serviceName string, i int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.liveTasks(clusterName, serviceName)
	if i < 0 || i >= len(live) {
		return "", fmt.Errorf("ecsemu: service %s/%s has %d live tasks, no task %d", clusterName, serviceName, len(live), i)
	}
	t := live[i]
	t.desiredStatus, t.lastStatus, t.stoppedReason = "STOPPED", "STOPPED", "Essential container in task exited"
	return t.arn, nil
}

// LiveTasks returns the ARNs of a service's tasks whose desired status is RUNNING, sorted.
func (s *Server) LiveTasks(clusterName, serviceName string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, t := range s.liveTasks(clusterName, serviceName) {
		out = append(out, t.arn)
	}
	return out
}

func (s *Server) liveTasks(clusterName, serviceName string) []*task {
	c := s.clusters[clusterName]
	if c == nil {
		return nil
	}
	var out []*task
	for _, t := range c.tasks {
		if t.service == serviceName && t.desiredStatus == "RUNNING" {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].arn < out[b].arn })
	return out
}

// CreateLookAlike creates, out of band, an ACTIVE service named name without any tags, running `running` tasks of
// a task definition of its own (family name-lookalike).
func (s *Server) CreateLookAlike(clusterName, name string, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cluster(clusterName, true)
	td := s.register(name, "256", "512", map[string]json.RawMessage{}, []containerDef{{Name: "app", Image: "lookalike"}}, nil)
	svc := s.newService(c, name, td.arn, running, depConf{}, nil, nil, "")
	svc.listed = true
}

// ServiceRunning tells whether the named service is ACTIVE and how many of its tasks run.
func (s *Server) ServiceRunning(clusterName, name string) (active bool, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[clusterName]
	if c == nil || c.services[name] == nil {
		return false, 0
	}
	svc := c.services[name]
	for _, t := range s.liveTasks(clusterName, name) {
		if t.lastStatus == "RUNNING" {
			running++
		}
	}
	return svc.status == "ACTIVE", running
}

// apiError is an ECS error answer.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func clientErr(format string, a ...any) *apiError {
	return &apiError{400, "ClientException", fmt.Sprintf(format, a...)}
}

func invalidParam(format string, a ...any) *apiError {
	return &apiError{400, "InvalidParameterException", fmt.Sprintf(format, a...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	if target == "" && r.Method == http.MethodPost && r.URL.Path == "/" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Version") == ELBv2Version {
			s.serveELBv2(w, r, form) // the ELBv2 Query protocol: an elasticloadbalancingv2 client given this endpoint
			return
		}
		s.serveEC2(w, r, body) // the EC2 Query protocol: an EC2 client given this endpoint
		return
	}
	op, ok := strings.CutPrefix(target, TargetPrefix)
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeErr(w, &apiError{404, "UnknownOperationException", "only POST / is served"})
		return
	case !ok:
		writeErr(w, &apiError{400, "UnknownOperationException", "unknown X-Amz-Target " + target})
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		writeErr(w, &apiError{400, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Op: op, Body: json.RawMessage(slices.Clone(body))})
	reqID := fmt.Sprintf("req-%d", len(s.requests))
	kind := s.takeFault(op)
	if !s.opts.Manual {
		s.advance()
	}
	var out any
	var err *apiError
	if kind == "" {
		out, err = s.dispatch(op, body)
	}
	s.mu.Unlock()

	switch kind {
	case "":
	case Throttle:
		err = &apiError{400, "ThrottlingException", "Rate exceeded"}
	case ServerError:
		err = &apiError{500, "ServerException", "Service Unavailable. Please try again later."}
	case Unavailable:
		err = &apiError{503, "ServerException", "Service Unavailable. Please try again later."}
	case Conflict:
		err = &apiError{400, "UpdateInProgressException", "There is already a current update in progress."}
	case Limit:
		err = &apiError{400, "LimitExceededException", "The limit for the resource was exceeded."}
	case Denied:
		err = &apiError{400, "AccessDeniedException", fmt.Sprintf("User: arn:aws:iam::%s:user/berth is not "+
			"authorized to perform: ecs:%s on resource: %s because no identity-based policy allows the ecs:%s action",
			s.opts.Account, op, s.resourceOf(body), op)}
	case Unrecognized:
		err = &apiError{400, "UnrecognizedClientException", "The security token included in the request is invalid."}
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		err = &apiError{500, "ServerException", "connection reset"}
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	b, jerr := json.Marshal(out)
	if jerr != nil {
		writeErr(w, &apiError{500, "ServerException", jerr.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", reqID)
	w.Write(b)
}

func (s *Server) takeFault(op string) string {
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.op == "" || f.op == op) {
			f.n--
			kind := f.kind
			if f.n == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return kind
		}
	}
	return ""
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.ecs#" + e.typ, "message": e.msg})
	w.Write(b)
}

func (s *Server) dispatch(op string, body []byte) (any, *apiError) {
	h, ok := map[string]func([]byte) (any, *apiError){
		"RegisterTaskDefinition":     s.registerTaskDefinition,
		"DescribeTaskDefinition":     s.describeTaskDefinition,
		"DeregisterTaskDefinition":   s.deregisterTaskDefinition,
		"ListTaskDefinitions":        s.listTaskDefinitions,
		"ListTaskDefinitionFamilies": s.listTaskDefinitionFamilies,
		"CreateService":              s.createService,
		"UpdateService":              s.updateService,
		"DescribeServices":           s.describeServices,
		"ListServices":               s.listServices,
		"DeleteService":              s.deleteService,
		"ListTasks":                  s.listTasks,
		"DescribeTasks":              s.describeTasks,
		"StopTask":                   s.stopTask,
		"TagResource":                s.tagResource,
		"ListTagsForResource":        s.listTagsForResource,
	}[op]
	if !ok {
		return nil, &apiError{400, "UnknownOperationException", "operation " + op + " is not emulated"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return h(body)
}

func decode(body []byte, v any) *apiError {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return &apiError{400, "SerializationException", "malformed request: " + err.Error()}
	}
	return nil
}

// cluster resolves a cluster name or ARN ("" = default).
func (s *Server) cluster(ref string, create bool) *cluster {
	name := lastSegment(ref, "cluster/")
	if name == "" {
		name = "default"
	}
	c := s.clusters[name]
	if c == nil && create && len(s.opts.Clusters) == 0 {
		c = newCluster(name)
		s.clusters[name] = c
	}
	return c
}

func (s *Server) needCluster(ref string) (*cluster, *apiError) {
	if c := s.cluster(ref, true); c != nil {
		return c, nil
	}
	return nil, &apiError{400, "ClusterNotFoundException", "Cluster not found."}
}

func lastSegment(ref, marker string) string {
	if strings.HasPrefix(ref, "arn:") {
		if i := strings.LastIndex(ref, "/"); i >= 0 {
			return ref[i+1:]
		}
	}
	return ref
}

// resourceOf is the resource an access denial names: the request's cluster, else "*".
func (s *Server) resourceOf(body []byte) string {
	var in struct {
		Cluster string `json:"cluster"`
	}
	if json.Unmarshal(body, &in) != nil || in.Cluster == "" {
		return "*"
	}
	if strings.HasPrefix(in.Cluster, "arn:") {
		return in.Cluster
	}
	return s.arn("cluster", in.Cluster)
}

func (s *Server) arn(kind, rest string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:%s/%s", s.opts.Region, s.opts.Account, kind, rest)
}

func (s *Server) now() float64 {
	return float64(s.opts.Now().UnixMilli()) / 1000
}

func (s *Server) nextID() string {
	s.seq++
	sum := sha256.Sum256([]byte("ecsemu-" + strconv.Itoa(s.seq)))
	return hex.EncodeToString(sum[:16])
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// ---- task definitions

// fargate lists the valid memory values (MiB) per task CPU units.
var fargate = map[string][]int{
	"256":   {512, 1024, 2048},
	"512":   seq(1024, 4096, 1024),
	"1024":  seq(2048, 8192, 1024),
	"2048":  seq(4096, 16384, 1024),
	"4096":  seq(8192, 30720, 1024),
	"8192":  seq(16384, 61440, 4096),
	"16384": seq(32768, 122880, 8192),
}

func seq(from, to, step int) []int {
	var out []int
	for v := from; v <= to; v += step {
		out = append(out, v)
	}
	return out
}

func (s *Server) registerTaskDefinition(body []byte) (any, *apiError) {
	var raw map[string]json.RawMessage
	if err := decode(body, &raw); err != nil {
		return nil, err
	}
	var in struct {
		Family                  string            `json:"family"`
		ContainerDefinitions    []json.RawMessage `json:"containerDefinitions"`
		RequiresCompatibilities []string          `json:"requiresCompatibilities"`
		NetworkMode             string            `json:"networkMode"`
		CPU                     string            `json:"cpu"`
		Memory                  string            `json:"memory"`
		Tags                    []Tag             `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	switch {
	case !nameRE.MatchString(in.Family):
		return nil, clientErr("Family contains invalid characters or is empty: up to 255 letters, numbers, hyphens and underscores are allowed.")
	case len(in.ContainerDefinitions) == 0:
		return nil, clientErr("Container list cannot be empty.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if in.NetworkMode != "" {
		if err := enum("networkMode", in.NetworkMode, types.NetworkMode("").Values()); err != nil {
			return nil, err
		}
	}
	for _, c := range in.RequiresCompatibilities {
		if err := enum("requiresCompatibilities", c, types.Compatibility("").Values()); err != nil {
			return nil, err
		}
	}
	containers := make([]containerDef, len(in.ContainerDefinitions))
	echo := make([]map[string]any, len(in.ContainerDefinitions))
	for i, cj := range in.ContainerDefinitions {
		c, out, err := checkContainer(cj, in.NetworkMode)
		if err != nil {
			return nil, err
		}
		containers[i], echo[i] = c, out
	}
	if slices.Contains(in.RequiresCompatibilities, "FARGATE") {
		if in.NetworkMode != "awsvpc" {
			return nil, clientErr("Fargate only supports network mode 'awsvpc'.")
		}
		if in.CPU == "" {
			return nil, clientErr("Fargate requires that 'cpu' be defined at the task level.")
		}
		if in.Memory == "" {
			return nil, clientErr("Fargate requires that 'memory' be defined at the task level.")
		}
		mem, _ := strconv.Atoi(in.Memory)
		if !slices.Contains(fargate[in.CPU], mem) {
			return nil, clientErr("No Fargate configuration exists for given values: %s CPU, %s memory. See the Amazon ECS documentation for the valid values.", in.CPU, in.Memory)
		}
	}
	delete(raw, "tags")
	raw["containerDefinitions"], _ = json.Marshal(echo)
	td := s.register(in.Family, in.CPU, in.Memory, raw, containers, in.Tags)
	return map[string]any{"taskDefinition": s.tdOut(td), "tags": tagsOut(td.tags)}, nil
}

func values[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// enum refuses a value outside the SDK's own list of an enum (types.X("").Values()).
func enum[T ~string](field, v string, values []T) *apiError {
	for _, ok := range values {
		if string(ok) == v {
			return nil
		}
	}
	names := make([]string, len(values))
	for i, ok := range values {
		names[i] = string(ok)
	}
	return invalidParam("Invalid value %q for %s: expected one of %s.", v, field, strings.Join(names, ", "))
}

// Health check bounds of a container definition, in seconds (retries: a count), from the ECS API reference.
var healthBounds = []struct {
	field  string
	lo, hi int
}{{"interval", 5, 300}, {"timeout", 2, 60}, {"retries", 1, 10}, {"startPeriod", 0, 300}}

// ECS's defaults of a container health check, echoed in the answer for fields the registration leaves out.
var healthDefaults = map[string]int{"interval": 30, "timeout": 5, "retries": 3}

var portNameRE = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,63}$`)

// checkContainer validates one container definition as ECS does and returns it as the answer echoes it: port
// mappings with their protocol and (awsvpc) host port filled in, health checks with ECS's defaults.
func checkContainer(cj json.RawMessage, networkMode string) (containerDef, map[string]any, *apiError) {
	var c containerDef
	var out map[string]any
	if err := decode(cj, &c); err != nil {
		return c, nil, err
	}
	if err := decode(cj, &out); err != nil {
		return c, nil, err
	}
	if c.Image == "" {
		return c, nil, clientErr("Container.image should not be null or empty.")
	}
	if !nameRE.MatchString(c.Name) {
		return c, nil, clientErr("Container.name contains invalid characters or is empty.")
	}
	for _, sec := range c.Secrets {
		if sec.Name == "" || sec.ValueFrom == "" {
			return c, nil, clientErr("Container.secrets of container %q: name and valueFrom are required.", c.Name)
		}
	}
	var pms []struct {
		ContainerPort *int    `json:"containerPort"`
		HostPort      *int    `json:"hostPort"`
		Protocol      *string `json:"protocol"`
		Name          *string `json:"name"`
		AppProtocol   *string `json:"appProtocol"`
	}
	if v, ok := out["portMappings"]; ok {
		b, _ := json.Marshal(v)
		if err := decode(b, &pms); err != nil {
			return c, nil, err
		}
	}
	seen, names := map[int]bool{}, map[string]bool{}
	echoPorts := make([]map[string]any, 0, len(pms))
	for _, pm := range pms {
		if pm.ContainerPort == nil || *pm.ContainerPort < 1 || *pm.ContainerPort > 65535 {
			return c, nil, clientErr("Invalid 'containerPort' setting for container '%s'.", c.Name)
		}
		port := *pm.ContainerPort
		proto := "tcp"
		if pm.Protocol != nil {
			proto = *pm.Protocol
			if err := enum("portMappings.protocol", proto, types.TransportProtocol("").Values()); err != nil {
				return c, nil, err
			}
		}
		if pm.AppProtocol != nil {
			if err := enum("portMappings.appProtocol", *pm.AppProtocol, types.ApplicationProtocol("").Values()); err != nil {
				return c, nil, err
			}
		}
		if seen[port] {
			return c, nil, invalidParam("Container port %d is used in more than one port mapping for container %s", port, c.Name)
		}
		seen[port] = true
		c.ports = append(c.ports, port)
		host := 0
		if pm.HostPort != nil {
			host = *pm.HostPort
		}
		if networkMode == "awsvpc" {
			if host != 0 && host != port {
				return c, nil, clientErr("When networkMode=awsvpc, the host ports and container ports in port mappings must match.")
			}
			host = port
		}
		e := map[string]any{"containerPort": port, "protocol": proto}
		if host != 0 {
			e["hostPort"] = host
		}
		if pm.Name != nil {
			if !portNameRE.MatchString(*pm.Name) || names[*pm.Name] {
				return c, nil, clientErr("Invalid 'name' setting for a port mapping of container '%s': up to 64 lowercase letters, numbers, underscores and hyphens, not starting with a hyphen, unique in the task definition.", c.Name)
			}
			names[*pm.Name] = true
			e["name"] = *pm.Name
		}
		if pm.AppProtocol != nil {
			e["appProtocol"] = *pm.AppProtocol
		}
		echoPorts = append(echoPorts, e)
	}
	if _, ok := out["portMappings"]; ok {
		out["portMappings"] = echoPorts
	}
	if len(c.HealthCheck) > 0 && string(c.HealthCheck) != "null" {
		var hc map[string]any
		if err := decode(c.HealthCheck, &hc); err != nil {
			return c, nil, err
		}
		var cmd []string
		if v, ok := hc["command"]; ok {
			b, _ := json.Marshal(v)
			json.Unmarshal(b, &cmd)
		}
		if len(cmd) == 0 || (cmd[0] != "CMD" && cmd[0] != "CMD-SHELL") {
			return c, nil, clientErr("Container health check's command of container %q is invalid: it must start with CMD or CMD-SHELL.", c.Name)
		}
		for _, bnd := range healthBounds {
			v, ok := hc[bnd.field]
			if !ok {
				if d, ok := healthDefaults[bnd.field]; ok {
					hc[bnd.field] = d
				}
				continue
			}
			f, isNum := v.(float64)
			if !isNum || f != float64(int(f)) || int(f) < bnd.lo || int(f) > bnd.hi {
				return c, nil, clientErr("Container health check's %s value of container %q is invalid: between %d and %d is allowed.", bnd.field, c.Name, bnd.lo, bnd.hi)
			}
		}
		out["healthCheck"] = hc
		c.HealthCheck, _ = json.Marshal(hc)
	}
	return c, out, nil
}

func (s *Server) register(family, cpu, memory string, raw map[string]json.RawMessage, cs []containerDef, tags []Tag) *taskDef {
	rev := len(s.taskDefs[family]) + 1
	td := &taskDef{
		arn: s.arn("task-definition", family+":"+strconv.Itoa(rev)), family: family, revision: rev, status: "ACTIVE",
		cpu: cpu, memory: memory, body: raw, containers: cs, tags: slices.Clone(tags),
	}
	s.taskDefs[family] = append(s.taskDefs[family], td)
	return td
}

func (s *Server) tdOut(td *taskDef) map[string]any {
	out := map[string]any{}
	for k, v := range td.body {
		out[k] = v
	}
	out["taskDefinitionArn"] = td.arn
	out["family"] = td.family
	out["revision"] = td.revision
	out["status"] = td.status
	out["compatibilities"] = []string{"EC2", "FARGATE"}
	out["registeredAt"] = s.now()
	return out
}

func tagsOut(tags []Tag) []Tag {
	if tags == nil {
		return []Tag{}
	}
	return tags
}

// taskDef resolves "family", "family:revision" or an ARN.
func (s *Server) taskDef(ref string) *taskDef {
	ref = lastSegment(ref, "task-definition/")
	family, revStr, hasRev := strings.Cut(ref, ":")
	revs := s.taskDefs[family]
	if !hasRev {
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].status == "ACTIVE" {
				return revs[i]
			}
		}
		return nil
	}
	rev, err := strconv.Atoi(revStr)
	if err != nil || rev < 1 || rev > len(revs) {
		return nil
	}
	return revs[rev-1]
}

func (s *Server) describeTaskDefinition(body []byte) (any, *apiError) {
	var in struct {
		TaskDefinition string   `json:"taskDefinition"`
		Include        []string `json:"include"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.TaskDefinition == "" {
		return nil, clientErr("taskDefinition is required.")
	}
	for _, f := range in.Include {
		if err := enum("include", f, types.TaskDefinitionField("").Values()); err != nil {
			return nil, err
		}
	}
	td := s.taskDef(in.TaskDefinition)
	if td == nil {
		return nil, clientErr("Unable to describe task definition.")
	}
	out := map[string]any{"taskDefinition": s.tdOut(td)}
	if slices.Contains(in.Include, "TAGS") {
		out["tags"] = tagsOut(td.tags)
	}
	return out, nil
}

func (s *Server) deregisterTaskDefinition(body []byte) (any, *apiError) {
	var in struct {
		TaskDefinition string `json:"taskDefinition"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !strings.Contains(lastSegment(in.TaskDefinition, ""), ":") {
		return nil, clientErr("Invalid revision number. Number: %s", in.TaskDefinition)
	}
	td := s.taskDef(in.TaskDefinition)
	if td == nil {
		return nil, clientErr("The specified task definition does not exist.")
	}
	td.status = "INACTIVE"
	return map[string]any{"taskDefinition": s.tdOut(td)}, nil
}

func (s *Server) listTaskDefinitions(body []byte) (any, *apiError) {
	var in struct {
		FamilyPrefix string `json:"familyPrefix"`
		Status       string `json:"status"`
		NextToken    string `json:"nextToken"`
		MaxResults   int    `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Status == "" {
		in.Status = "ACTIVE"
	}
	if err := enum("status", in.Status, types.TaskDefinitionStatus("").Values()); err != nil {
		return nil, err
	}
	var arns []string
	families := make([]string, 0, len(s.taskDefs))
	for f := range s.taskDefs {
		families = append(families, f)
	}
	sort.Strings(families)
	for _, f := range families {
		if in.FamilyPrefix != "" && f != in.FamilyPrefix { // despite its name, the full family (API reference)
			continue
		}
		for _, td := range s.taskDefs[f] {
			if td.status == in.Status {
				arns = append(arns, td.arn)
			}
		}
	}
	page, next, err := paginate(arns, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskDefinitionArns": page, "nextToken": next}, nil
}

func (s *Server) listTaskDefinitionFamilies(body []byte) (any, *apiError) {
	var in struct {
		FamilyPrefix string `json:"familyPrefix"`
		Status       string `json:"status"`
		NextToken    string `json:"nextToken"`
		MaxResults   int    `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Status == "" {
		in.Status = "ACTIVE"
	}
	if err := enum("status", in.Status, types.TaskDefinitionFamilyStatus("").Values()); err != nil {
		return nil, err
	}
	var families []string
	for f, revs := range s.taskDefs {
		if !strings.HasPrefix(f, in.FamilyPrefix) {
			continue
		}
		active := slices.ContainsFunc(revs, func(td *taskDef) bool { return td.status == "ACTIVE" })
		if in.Status == "ALL" || (in.Status == "ACTIVE") == active {
			families = append(families, f)
		}
	}
	sort.Strings(families)
	page, next, err := paginate(families, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	return map[string]any{"families": page, "nextToken": next}, nil
}

// paginate returns one page of items; tokens are offsets.
func paginate(items []string, tok string, max, def int) ([]string, *string, *apiError) {
	if max == 0 {
		max = def
	}
	if max < 1 || max > 100 {
		return nil, nil, invalidParam("maxResults must be between 1 and 100.")
	}
	start := 0
	if tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		if err != nil || n < 0 || n > len(items) {
			return nil, nil, invalidParam("Invalid nextToken.")
		}
		start = n
	}
	end := min(start+max, len(items))
	page := slices.Clone(items[start:end])
	if page == nil {
		page = []string{}
	}
	if end < len(items) {
		t := "page-" + strconv.Itoa(end)
		return page, &t, nil
	}
	return page, nil, nil
}

// ---- services

type createServiceIn struct {
	Cluster                 string          `json:"cluster"`
	ServiceName             string          `json:"serviceName"`
	TaskDefinition          string          `json:"taskDefinition"`
	DesiredCount            *int            `json:"desiredCount"`
	LaunchType              string          `json:"launchType"`
	ClientToken             string          `json:"clientToken"`
	NetworkConfiguration    json.RawMessage `json:"networkConfiguration"`
	DeploymentConfiguration depConf         `json:"deploymentConfiguration"`
	PropagateTags           string          `json:"propagateTags"`
	SchedulingStrategy      string          `json:"schedulingStrategy"`
	DeploymentController    *struct {
		Type string `json:"type"`
	} `json:"deploymentController"`
	Tags                          []Tag                 `json:"tags"`
	LoadBalancers                 []ServiceLoadBalancer `json:"loadBalancers"`
	HealthCheckGracePeriodSeconds *int                  `json:"healthCheckGracePeriodSeconds"`
}

// subnetOf is the first subnet of a service's awsvpc configuration ("" for none).
func subnetOf(raw json.RawMessage) string {
	var nc struct {
		AwsvpcConfiguration struct {
			Subnets []string `json:"subnets"`
		} `json:"awsvpcConfiguration"`
	}
	if json.Unmarshal(raw, &nc) != nil || len(nc.AwsvpcConfiguration.Subnets) == 0 {
		return ""
	}
	return nc.AwsvpcConfiguration.Subnets[0]
}

// assignsPublicIP tells whether a service's awsvpc configuration asks for public IPs.
func assignsPublicIP(raw json.RawMessage) bool {
	var nc struct {
		AwsvpcConfiguration struct {
			AssignPublicIp string `json:"assignPublicIp"`
		} `json:"awsvpcConfiguration"`
	}
	return json.Unmarshal(raw, &nc) == nil && nc.AwsvpcConfiguration.AssignPublicIp == "ENABLED"
}

// checkNetConf validates a service's network configuration: the assignPublicIp enum and the list sizes of the
// API reference (at most 16 subnets and 5 security groups).
func checkNetConf(raw json.RawMessage) *apiError {
	if len(raw) == 0 {
		return nil
	}
	var nc struct {
		AwsvpcConfiguration *struct {
			Subnets        []string `json:"subnets"`
			SecurityGroups []string `json:"securityGroups"`
			AssignPublicIp string   `json:"assignPublicIp"`
		} `json:"awsvpcConfiguration"`
	}
	if err := decode(raw, &nc); err != nil {
		return err
	}
	a := nc.AwsvpcConfiguration
	switch {
	case a == nil:
		return nil
	case len(a.Subnets) == 0:
		return invalidParam("subnets can not be empty.")
	case len(a.Subnets) > 16:
		return invalidParam("At most 16 subnets can be specified.")
	case len(a.SecurityGroups) > 5:
		return invalidParam("At most 5 security groups can be specified.")
	case a.AssignPublicIp != "":
		return enum("networkConfiguration.awsvpcConfiguration.assignPublicIp", a.AssignPublicIp, types.AssignPublicIp("").Values())
	}
	return nil
}

// checkLaunchType refuses a launch type the task definition is not compatible with.
func checkLaunchType(launchType string, td *taskDef) *apiError {
	if launchType == "" {
		return nil
	}
	var compat []string
	json.Unmarshal(td.body["requiresCompatibilities"], &compat)
	if launchType == "FARGATE" && !slices.Contains(compat, "FARGATE") {
		return invalidParam("Task definition does not support launch_type FARGATE.")
	}
	return nil
}

func (s *Server) createService(body []byte) (any, *apiError) {
	var in createServiceIn
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	if len(in.ClientToken) > 36 {
		return nil, invalidParam("clientToken must be at most 36 characters.")
	}
	// The request's identity for the token: the body without the token itself.
	var canon map[string]any
	json.Unmarshal(body, &canon)
	delete(canon, "clientToken")
	cb, _ := json.Marshal(canon)
	sum := sha256.Sum256(cb)
	reqHash := hex.EncodeToString(sum[:])
	if in.ClientToken != "" {
		if tok, ok := c.tokens[in.ClientToken]; ok {
			if svc := c.services[tok.service]; svc != nil && svc.status != "INACTIVE" {
				if tok.hash != reqHash {
					return nil, invalidParam("Creation of service was not idempotent.")
				}
				return map[string]any{"service": s.serviceOut(svc, true)}, nil
			}
		}
	}
	if !nameRE.MatchString(in.ServiceName) {
		return nil, invalidParam("Service name must be 1-255 letters, numbers, hyphens and underscores.")
	}
	if old := c.services[in.ServiceName]; old != nil {
		switch old.status {
		case "ACTIVE":
			return nil, invalidParam("Creation of service was not idempotent.")
		case "DRAINING":
			return nil, invalidParam("Unable to Start a service that is still Draining.")
		}
	}
	td := s.taskDef(in.TaskDefinition)
	switch {
	case td == nil:
		return nil, clientErr("TaskDefinition not found.")
	case td.status != "ACTIVE":
		return nil, clientErr("TaskDefinition is inactive")
	case in.DesiredCount != nil && *in.DesiredCount < 0:
		return nil, invalidParam("desiredCount must be at least 0.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	for _, e := range []struct {
		field, v string
		values   []string
	}{
		{"launchType", in.LaunchType, values(types.LaunchType("").Values())},
		{"propagateTags", in.PropagateTags, values(types.PropagateTags("").Values())},
		{"schedulingStrategy", in.SchedulingStrategy, values(types.SchedulingStrategy("").Values())},
	} {
		if e.v != "" {
			if err := enum(e.field, e.v, e.values); err != nil {
				return nil, err
			}
		}
	}
	if dc := in.DeploymentController; dc != nil {
		if err := enum("deploymentController.type", dc.Type, types.DeploymentControllerType("").Values()); err != nil {
			return nil, err
		}
	}
	if in.LaunchType != "" && in.LaunchType != "FARGATE" {
		return nil, invalidParam("launchType %s is not emulated", in.LaunchType)
	}
	if err := checkLaunchType(in.LaunchType, td); err != nil {
		return nil, err
	}
	if err := checkNetConf(in.NetworkConfiguration); err != nil {
		return nil, err
	}
	if string(td.body["networkMode"]) == `"awsvpc"` {
		var nc struct {
			AwsvpcConfiguration *struct {
				Subnets []string `json:"subnets"`
			} `json:"awsvpcConfiguration"`
		}
		json.Unmarshal(in.NetworkConfiguration, &nc)
		if nc.AwsvpcConfiguration == nil {
			return nil, invalidParam("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
		}
		if len(nc.AwsvpcConfiguration.Subnets) == 0 {
			return nil, invalidParam("subnets can not be empty.")
		}
	}
	if err := s.checkLoadBalancers(in.LoadBalancers, td); err != nil {
		return nil, err
	}
	if g := in.HealthCheckGracePeriodSeconds; g != nil && (*g < 0 || *g > 2147483647 || len(in.LoadBalancers) == 0) {
		return nil, invalidParam("Health check grace period is only valid for services configured to use load balancers.")
	}
	desired := 0
	if in.DesiredCount != nil {
		desired = *in.DesiredCount
	}
	svc := s.newService(c, in.ServiceName, td.arn, desired, in.DeploymentConfiguration, in.NetworkConfiguration, in.Tags, in.PropagateTags)
	svc.loadBalancers, svc.gracePeriod = in.LoadBalancers, in.HealthCheckGracePeriodSeconds
	if in.ClientToken != "" {
		c.tokens[in.ClientToken] = token{service: svc.name, hash: reqHash}
	}
	return map[string]any{"service": s.serviceOut(svc, true)}, nil
}

func (s *Server) newService(c *cluster, name, td string, desired int, dc depConf, nc json.RawMessage, tags []Tag, propagate string) *service {
	svc := &service{
		arn: s.arn("service", c.name+"/"+name), name: name, cluster: c.name, status: "ACTIVE", desired: desired,
		taskDef: td, netConf: nc, depConf: dc, tags: slices.Clone(tags), propagateTags: propagate,
		created: s.opts.Now(),
	}
	svc.deployments = []*deployment{s.newDeployment(td, desired)}
	if _, existed := c.services[name]; !existed {
		c.order = append(c.order, name)
	}
	c.services[name] = svc
	return svc
}

func (s *Server) newDeployment(td string, desired int) *deployment {
	s.seq++
	return &deployment{id: "ecs-svc/" + fmt.Sprintf("%019d", s.seq), taskDef: td, desired: desired,
		rollout: "IN_PROGRESS", reason: "ECS deployment ecs-svc in progress.", created: s.opts.Now(), updated: s.opts.Now()}
}

// findService resolves a service name or ARN in c.
func findService(c *cluster, ref string) *service {
	return c.services[lastSegment(ref, "service/")]
}

func (s *Server) updateService(body []byte) (any, *apiError) {
	var in struct {
		Cluster                 string          `json:"cluster"`
		Service                 string          `json:"service"`
		TaskDefinition          string          `json:"taskDefinition"`
		DesiredCount            *int            `json:"desiredCount"`
		ForceNewDeployment      bool            `json:"forceNewDeployment"`
		NetworkConfiguration    json.RawMessage `json:"networkConfiguration"`
		DeploymentConfiguration *depConf        `json:"deploymentConfiguration"`
		// ECS takes a new loadBalancers list on an update of a rolling deployment (an empty list removes them).
		LoadBalancers                 *[]ServiceLoadBalancer `json:"loadBalancers"`
		HealthCheckGracePeriodSeconds *int                   `json:"healthCheckGracePeriodSeconds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	svc := findService(c, in.Service)
	switch {
	case svc == nil:
		return nil, &apiError{400, "ServiceNotFoundException", "Service not found."}
	case svc.status != "ACTIVE":
		return nil, &apiError{400, "ServiceNotActiveException", "Service was not ACTIVE."}
	case in.DesiredCount != nil && *in.DesiredCount < 0:
		return nil, invalidParam("desiredCount must be at least 0.")
	}
	if err := checkNetConf(in.NetworkConfiguration); err != nil {
		return nil, err
	}
	var td *taskDef
	if in.TaskDefinition != "" {
		td = s.taskDef(in.TaskDefinition)
		switch {
		case td == nil:
			return nil, clientErr("TaskDefinition not found.")
		case td.status != "ACTIVE":
			return nil, clientErr("TaskDefinition is inactive")
		}
		if err := checkLaunchType("FARGATE", td); err != nil {
			return nil, err
		}
	}
	lbChanged := false
	if in.LoadBalancers != nil {
		check := td
		if check == nil {
			check = s.taskDef(svc.taskDef)
		}
		if err := s.checkLoadBalancers(*in.LoadBalancers, check); err != nil {
			return nil, err
		}
		lbChanged = !slices.Equal(*in.LoadBalancers, svc.loadBalancers)
	}
	lbs := svc.loadBalancers
	if in.LoadBalancers != nil {
		lbs = *in.LoadBalancers
	}
	if g := in.HealthCheckGracePeriodSeconds; g != nil && (*g < 0 || len(lbs) == 0) {
		return nil, invalidParam("Health check grace period is only valid for services configured to use load balancers.")
	}
	if in.LoadBalancers != nil {
		svc.loadBalancers = *in.LoadBalancers
	}
	if in.HealthCheckGracePeriodSeconds != nil {
		svc.gracePeriod = in.HealthCheckGracePeriodSeconds
	}
	if in.DesiredCount != nil {
		svc.desired = *in.DesiredCount
		svc.deployments[0].desired = svc.desired
	}
	if in.DeploymentConfiguration != nil {
		svc.depConf = *in.DeploymentConfiguration
	}
	if len(in.NetworkConfiguration) > 0 {
		svc.netConf = in.NetworkConfiguration
	}
	newTD := svc.taskDef
	if td != nil {
		newTD = td.arn
	}
	if newTD != svc.taskDef || in.ForceNewDeployment || lbChanged {
		svc.taskDef = newTD
		for _, d := range svc.deployments {
			d.desired = 0 // older deployments scale in as the new one comes up
		}
		svc.deployments = append([]*deployment{s.newDeployment(newTD, svc.desired)}, svc.deployments...)
	}
	return map[string]any{"service": s.serviceOut(svc, false)}, nil
}

func (s *Server) describeServices(body []byte) (any, *apiError) {
	var in struct {
		Cluster  string   `json:"cluster"`
		Services []string `json:"services"`
		Include  []string `json:"include"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	if len(in.Services) == 0 || len(in.Services) > 10 {
		return nil, invalidParam("services must name between 1 and 10 services.")
	}
	for _, f := range in.Include {
		if err := enum("include", f, types.ServiceField("").Values()); err != nil {
			return nil, err
		}
	}
	services, failures := []any{}, []any{}
	for _, ref := range in.Services {
		if svc := findService(c, ref); svc != nil {
			services = append(services, s.serviceOut(svc, slices.Contains(in.Include, "TAGS")))
		} else {
			failures = append(failures, map[string]string{"arn": s.arn("service", c.name+"/"+lastSegment(ref, "")), "reason": "MISSING"})
		}
	}
	return map[string]any{"services": services, "failures": failures}, nil
}

func (s *Server) listServices(body []byte) (any, *apiError) {
	var in struct {
		Cluster    string `json:"cluster"`
		NextToken  string `json:"nextToken"`
		MaxResults int    `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	var arns []string
	for _, name := range c.order {
		svc := c.services[name]
		if svc.status == "INACTIVE" {
			continue
		}
		if !svc.listed { // eventual consistency: not in the first list after its creation
			svc.listed = true
			continue
		}
		arns = append(arns, svc.arn)
	}
	page, next, err := paginate(arns, in.NextToken, in.MaxResults, 10)
	if err != nil {
		return nil, err
	}
	return map[string]any{"serviceArns": page, "nextToken": next}, nil
}

func (s *Server) deleteService(body []byte) (any, *apiError) {
	var in struct {
		Cluster string `json:"cluster"`
		Service string `json:"service"`
		Force   bool   `json:"force"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	svc := findService(c, in.Service)
	switch {
	case svc == nil:
		return nil, &apiError{400, "ServiceNotFoundException", "Service not found."}
	case svc.status != "ACTIVE":
		return nil, &apiError{400, "ServiceNotActiveException", "Service was not ACTIVE."}
	case svc.desired > 0 && !in.Force:
		return nil, invalidParam("The service cannot be stopped while it is scaled above 0.")
	}
	svc.status, svc.desired = "DRAINING", 0
	for _, d := range svc.deployments {
		d.desired = 0
	}
	return map[string]any{"service": s.serviceOut(svc, false)}, nil
}

func (s *Server) serviceOut(svc *service, withTags bool) map[string]any {
	running, pending := 0, 0
	counts := map[string][2]int{}
	if c := s.clusters[svc.cluster]; c != nil {
		for _, t := range c.tasks {
			if t.service != svc.name || t.desiredStatus != "RUNNING" {
				continue
			}
			n := counts[t.deployment]
			if t.lastStatus == "RUNNING" {
				running++
				n[0]++
			} else {
				pending++
				n[1]++
			}
			counts[t.deployment] = n
		}
	}
	deps := []any{}
	for i, d := range svc.deployments {
		status := "ACTIVE"
		if i == 0 {
			status = "PRIMARY"
		}
		deps = append(deps, map[string]any{
			"id": d.id, "status": status, "taskDefinition": d.taskDef, "desiredCount": d.desired,
			"runningCount": counts[d.id][0], "pendingCount": counts[d.id][1], "failedTasks": d.failed,
			"rolloutState": d.rollout, "rolloutStateReason": d.reason, "launchType": "FARGATE",
			"createdAt": float64(d.created.UnixMilli()) / 1000, "updatedAt": float64(d.updated.UnixMilli()) / 1000,
		})
	}
	out := map[string]any{
		"serviceArn": svc.arn, "serviceName": svc.name, "clusterArn": s.arn("cluster", svc.cluster),
		"status": svc.status, "desiredCount": svc.desired, "runningCount": running, "pendingCount": pending,
		"launchType": "FARGATE", "taskDefinition": svc.taskDef, "deployments": deps,
		"deploymentConfiguration": svc.depConf, "createdAt": float64(svc.created.UnixMilli()) / 1000,
		"schedulingStrategy": "REPLICA",
	}
	if svc.propagateTags != "" {
		out["propagateTags"] = svc.propagateTags
	}
	if len(svc.loadBalancers) > 0 {
		out["loadBalancers"] = svc.loadBalancers
	}
	if svc.gracePeriod != nil {
		out["healthCheckGracePeriodSeconds"] = *svc.gracePeriod
	}
	if len(svc.netConf) > 0 {
		out["networkConfiguration"] = svc.netConf
	}
	if withTags {
		out["tags"] = tagsOut(svc.tags)
	}
	return out
}

// ---- tasks

func (s *Server) listTasks(body []byte) (any, *apiError) {
	var in struct {
		Cluster       string `json:"cluster"`
		ServiceName   string `json:"serviceName"`
		Family        string `json:"family"`
		DesiredStatus string `json:"desiredStatus"`
		NextToken     string `json:"nextToken"`
		MaxResults    int    `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	if in.ServiceName != "" && findService(c, in.ServiceName) == nil {
		return nil, &apiError{400, "ServiceNotFoundException", "Service not found."}
	}
	if in.DesiredStatus == "" {
		in.DesiredStatus = "RUNNING"
	}
	if err := enum("desiredStatus", in.DesiredStatus, types.DesiredStatus("").Values()); err != nil {
		return nil, err
	}
	var arns []string
	for _, t := range c.tasks {
		if in.ServiceName != "" && t.service != lastSegment(in.ServiceName, "") {
			continue
		}
		if in.Family != "" && !strings.Contains(t.taskDef, "/"+in.Family+":") {
			continue
		}
		if t.desiredStatus == in.DesiredStatus {
			arns = append(arns, t.arn)
		}
	}
	sort.Strings(arns)
	page, next, err := paginate(arns, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskArns": page, "nextToken": next}, nil
}

func (s *Server) describeTasks(body []byte) (any, *apiError) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		return nil, invalidParam("tasks must name between 1 and 100 tasks.")
	}
	for _, f := range in.Include {
		if err := enum("include", f, types.TaskField("").Values()); err != nil {
			return nil, err
		}
	}
	tasks, failures := []any{}, []any{}
	for _, ref := range in.Tasks {
		if t := c.tasks[lastSegment(ref, "")]; t != nil {
			tasks = append(tasks, s.taskOut(t, slices.Contains(in.Include, "TAGS")))
		} else {
			failures = append(failures, map[string]string{"arn": ref, "reason": "MISSING"})
		}
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}

func (s *Server) taskOut(t *task, withTags bool) map[string]any {
	out := map[string]any{
		"taskArn": t.arn, "clusterArn": s.arn("cluster", t.cluster), "taskDefinitionArn": t.taskDef,
		"lastStatus": t.lastStatus, "desiredStatus": t.desiredStatus, "healthStatus": t.health,
		"launchType": "FARGATE", "group": "service:" + t.service, "startedBy": t.deployment,
		"createdAt": float64(t.created.UnixMilli()) / 1000,
	}
	if t.stoppedReason != "" {
		out["stoppedReason"] = t.stoppedReason
	}
	if t.eni != "" {
		// As ECS shows an awsvpc task's interface: PRECREATED with its subnet while the task is provisioned,
		// ATTACHED with its id, MAC and private address from PENDING on, DELETED once the task stopped.
		status := "ATTACHED"
		details := []map[string]string{{"name": "subnetId", "value": t.subnet}}
		switch {
		case t.lastStatus == "PROVISIONING":
			status = "PRECREATED"
		case t.lastStatus == "STOPPED":
			status = "DELETED"
		}
		if status != "PRECREATED" {
			mac := t.eni[len(t.eni)-12:]
			details = append(details,
				map[string]string{"name": "networkInterfaceId", "value": t.eni},
				map[string]string{"name": "macAddress", "value": mac[0:2] + ":" + mac[2:4] + ":" + mac[4:6] + ":" + mac[6:8] + ":" + mac[8:10] + ":" + mac[10:12]},
				map[string]string{"name": "privateDnsName", "value": t.privateDNS(s.opts.Region)},
				map[string]string{"name": "privateIPv4Address", "value": t.ip})
		}
		out["attachments"] = []any{map[string]any{"id": t.attachment, "type": "ElasticNetworkInterface", "status": status,
			"details": details}}
	}
	if withTags {
		out["tags"] = tagsOut(t.tags)
	}
	return out
}

// TaskAddress returns the private IPv4 address of a task's network interface (by task ARN or ID), "" for an
// unknown task: the address ECS reports once the interface is attached.
func (s *Server) TaskAddress(clusterName, taskRef string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clusters[clusterName]; c != nil {
		if t := c.tasks[lastSegment(taskRef, "")]; t != nil {
			return t.ip
		}
	}
	return ""
}

func (s *Server) stopTask(body []byte) (any, *apiError) {
	var in struct {
		Cluster string `json:"cluster"`
		Task    string `json:"task"`
		Reason  string `json:"reason"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, cerr := s.needCluster(in.Cluster)
	if cerr != nil {
		return nil, cerr
	}
	t := c.tasks[lastSegment(in.Task, "")]
	if t == nil {
		return nil, invalidParam("The referenced task was not found.")
	}
	if t.desiredStatus != "STOPPED" {
		t.desiredStatus, t.wait = "STOPPED", s.opts.StepsPerState
		t.stoppedReason = "Task stopped by user"
		if in.Reason != "" {
			t.stoppedReason = in.Reason
		}
	}
	return map[string]any{"task": s.taskOut(t, false)}, nil
}

// ---- tags

// tagged finds the tag list of a service or task definition ARN.
func (s *Server) tagged(arn string) *[]Tag {
	switch {
	case strings.Contains(arn, ":service/"):
		parts := strings.Split(arn[strings.Index(arn, ":service/")+len(":service/"):], "/")
		if len(parts) == 2 {
			if c := s.clusters[parts[0]]; c != nil && c.services[parts[1]] != nil {
				return &c.services[parts[1]].tags
			}
		}
	case strings.Contains(arn, ":task-definition/"):
		if td := s.taskDef(arn); td != nil {
			return &td.tags
		}
	}
	return nil
}

// tagKeyRE and tagValueRE are ECS's tag rules: a key of 1–128 and a value of 0–256 Unicode letters, digits,
// white space and _ . : / = + - @.
var (
	tagKeyRE   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValueRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)
)

// checkTags applies ECS's tag limits to the tags of one request: at most 50, each key and value within its
// length and characters, no key used twice, and no key with the reserved aws: prefix (in any case).
func checkTags(tags []Tag) *apiError {
	if len(tags) > 50 {
		return invalidParam("Too many tags: at most 50 are allowed.")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case !tagKeyRE.MatchString(t.Key):
			return invalidParam("Tag key %q is invalid: 1 to 128 letters, numbers, spaces and _ . : / = + - @ are allowed.", t.Key)
		case !tagValueRE.MatchString(t.Value):
			return invalidParam("Tag value of key %q is invalid: up to 256 letters, numbers, spaces and _ . : / = + - @ are allowed.", t.Key)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return invalidParam("Tag keys with the prefix aws: are reserved.")
		case seen[t.Key]:
			return invalidParam("Duplicate tag key %q.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

func (s *Server) tagResource(body []byte) (any, *apiError) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
		Tags        []Tag  `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	tags := s.tagged(in.ResourceArn)
	if tags == nil {
		return nil, &apiError{400, "InvalidParameterException", "The specified resource could not be found."}
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	merged := slices.Clone(*tags)
	for _, nt := range in.Tags {
		i := slices.IndexFunc(merged, func(t Tag) bool { return t.Key == nt.Key })
		if i >= 0 {
			merged[i].Value = nt.Value
		} else {
			merged = append(merged, nt)
		}
	}
	if len(merged) > 50 {
		return nil, invalidParam("Too many tags: at most 50 are allowed.")
	}
	*tags = merged
	return map[string]any{}, nil
}

func (s *Server) listTagsForResource(body []byte) (any, *apiError) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	tags := s.tagged(in.ResourceArn)
	if tags == nil {
		return nil, &apiError{400, "InvalidParameterException", "The specified resource could not be found."}
	}
	return map[string]any{"tags": tagsOut(*tags)}, nil
}

// ---- the scheduler

// advance moves every task and service one step.
func (s *Server) advance() {
	s.step++
	names := make([]string, 0, len(s.clusters))
	for n := range s.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := s.clusters[n]
		s.advanceTasks(c)
		for _, name := range c.order {
			s.schedule(c, c.services[name])
		}
	}
	s.syncTargets()
}

func (s *Server) advanceTasks(c *cluster) {
	for _, t := range c.tasks {
		if t.lastStatus == "STOPPED" {
			continue
		}
		if t.wait > 0 {
			t.wait--
			continue
		}
		if t.desiredStatus == "STOPPED" {
			t.lastStatus = "STOPPED"
			continue
		}
		td := s.taskDef(t.taskDef)
		switch t.lastStatus {
		case "PROVISIONING":
			t.lastStatus, t.wait = "PENDING", s.opts.StepsPerState-1
		case "PENDING":
			if image := td.containers[0].Image; s.missing[image] {
				t.lastStatus, t.desiredStatus = "STOPPED", "STOPPED"
				t.stoppedReason = "CannotPullContainerError: pull image manifest has been retried 5 time(s): " + image + ": not found"
				s.failTask(c, t)
				continue
			}
			env, err := s.environment(td.containers[0])
			if err != nil {
				t.lastStatus, t.desiredStatus = "STOPPED", "STOPPED"
				t.stoppedReason = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource " +
					"retrieval failed: unable to retrieve secret from asm: " + err.Error()
				s.failTask(c, t)
				continue
			}
			t.env = env
			t.lastStatus, t.wait = "RUNNING", s.opts.StepsPerState-1
		case "RUNNING":
			if t.health == "UNKNOWN" && len(td.containers[0].HealthCheck) > 0 {
				t.health = "HEALTHY"
			}
		}
	}
}

// environment is what a task of the container sees: its environment, and its secrets as ResolveSecret resolves
// them (none without it).
func (s *Server) environment(c containerDef) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range c.Environment {
		env[kv.Name] = kv.Value
	}
	if s.opts.ResolveSecret == nil {
		return env, nil
	}
	for _, sec := range c.Secrets {
		v, err := s.opts.ResolveSecret(sec.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sec.ValueFrom, err)
		}
		env[sec.Name] = v
	}
	return env, nil
}

// TaskEnvironment returns the environment each RUNNING task of the service (desired RUNNING too) sees, in the
// order of the tasks' ARNs: its container's environment and, with Options.ResolveSecret, its secrets as resolved
// when it started. It is the container's view, for a test's Probe; nothing of it is in any API answer.
func (s *Server) TaskEnvironment(clusterName, serviceName string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[clusterName]
	if c == nil {
		return nil
	}
	var ts []*task
	for _, t := range c.tasks {
		if t.service == serviceName && t.lastStatus == "RUNNING" && t.desiredStatus == "RUNNING" {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].arn < ts[j].arn })
	out := make([]map[string]string, len(ts))
	for i, t := range ts {
		out[i] = maps.Clone(t.env)
	}
	return out
}

func (s *Server) failTask(c *cluster, t *task) {
	svc := c.services[t.service]
	if svc == nil {
		return
	}
	for _, d := range svc.deployments {
		if d.id == t.deployment {
			d.failed++
		}
	}
}

// ready tells whether a task counts toward its deployment's steady state.
func (s *Server) ready(t *task) bool {
	if t.desiredStatus != "RUNNING" || t.lastStatus != "RUNNING" {
		return false
	}
	td := s.taskDef(t.taskDef)
	if len(td.containers[0].HealthCheck) > 0 && t.health != "HEALTHY" {
		return false
	}
	if svc := s.clusters[t.cluster].services[t.service]; svc != nil && len(svc.loadBalancers) > 0 {
		ok, _ := s.targetsHealthy(svc, t)
		return ok
	}
	return true
}

func (s *Server) schedule(c *cluster, svc *service) {
	if svc.status == "INACTIVE" {
		return
	}
	byDep := map[string][]*task{}
	for _, t := range c.tasks {
		if t.service == svc.name && t.desiredStatus == "RUNNING" {
			byDep[t.deployment] = append(byDep[t.deployment], t)
		}
	}
	for _, ts := range byDep {
		sort.Slice(ts, func(a, b int) bool { return ts[a].arn < ts[b].arn })
	}
	if svc.status == "DRAINING" {
		live := false
		for _, t := range c.tasks {
			if t.service != svc.name || t.lastStatus == "STOPPED" {
				continue
			}
			live = true
			if t.desiredStatus == "RUNNING" {
				t.desiredStatus, t.wait, t.stoppedReason = "STOPPED", s.opts.StepsPerState-1, "Service deleted"
			}
		}
		if !live {
			svc.status = "INACTIVE"
		}
		return
	}
	// A task a target group finds unhealthy is stopped and replaced, as ECS does, and counts as a failed task
	// of its deployment (the circuit breaker's count).
	for _, ts := range byDep {
		for _, t := range ts {
			if t.lastStatus != "RUNNING" || len(svc.loadBalancers) == 0 {
				continue
			}
			if _, bad := s.targetsHealthy(svc, t); bad != "" {
				t.desiredStatus, t.wait = "STOPPED", s.opts.StepsPerState-1
				t.stoppedReason = "Task failed ELB health checks in (target-group " + bad + ")"
				s.failTask(c, t)
			}
		}
	}
	for id, ts := range byDep {
		byDep[id] = slices.DeleteFunc(ts, func(t *task) bool { return t.desiredStatus != "RUNNING" })
	}
	primary := svc.deployments[0]
	threshold := max(3, min(200, (primary.desired+1)/2))
	if cb := svc.depConf.DeploymentCircuitBreaker; cb != nil && cb.Enable && primary.rollout == "IN_PROGRESS" && primary.failed >= threshold {
		primary.rollout, primary.updated = "FAILED", s.opts.Now()
		primary.reason = fmt.Sprintf("ECS deployment circuit breaker: tasks failed to start (%d failed tasks).", primary.failed)
		if cb.Rollback && len(svc.deployments) > 1 {
			// Roll back: the previous deployment is primary again and keeps its tasks.
			prev := svc.deployments[1]
			prev.desired, prev.updated = svc.desired, s.opts.Now()
			prev.reason = "ECS deployment circuit breaker: rolling back to deployment " + prev.id + "."
			primary.desired = 0
			svc.taskDef = prev.taskDef
			svc.deployments = append([]*deployment{prev, primary}, svc.deployments[2:]...)
			primary = prev
		}
	}
	if primary.rollout == "FAILED" {
		return // the breaker stopped launching
	}
	// Scale the primary deployment to its desired count.
	mine := byDep[primary.id]
	for len(mine) < primary.desired {
		mine = append(mine, s.startTask(c, svc, primary))
	}
	for len(mine) > primary.desired {
		t := mine[len(mine)-1]
		mine = mine[:len(mine)-1]
		t.desiredStatus, t.wait, t.stoppedReason = "STOPPED", s.opts.StepsPerState-1, "Scaling activity initiated by (deployment "+primary.id+")"
	}
	ready := 0
	for _, t := range mine {
		if s.ready(t) {
			ready++
		}
	}
	if ready < primary.desired {
		return // minimumHealthyPercent 100: the old deployments keep serving
	}
	for _, d := range svc.deployments[1:] {
		for _, t := range byDep[d.id] {
			t.desiredStatus, t.wait, t.stoppedReason = "STOPPED", s.opts.StepsPerState-1, "Scaling activity initiated by (deployment "+primary.id+")"
		}
	}
	svc.deployments = svc.deployments[:1]
	if primary.rollout == "IN_PROGRESS" {
		primary.rollout, primary.reason, primary.updated = "COMPLETED", "ECS deployment "+primary.id+" completed.", s.opts.Now()
	}
}

func (s *Server) startTask(c *cluster, svc *service, d *deployment) *task {
	id := s.nextID()
	t := &task{
		arn: s.arn("task", c.name+"/"+id), id: id, cluster: c.name, service: svc.name, deployment: d.id,
		taskDef: d.taskDef, lastStatus: "PROVISIONING", desiredStatus: "RUNNING", health: "UNKNOWN",
		wait: s.opts.StepsPerState - 1, created: s.opts.Now(),
	}
	if s.slow > 0 {
		s.slow--
		t.wait += s.opts.SlowSteps
	}
	// awsvpc: an interface of its own in the service's first subnet, with the next private address of
	// 10.0.0.0/16 (data only: nothing listens there).
	s.enis++
	sum := sha256.Sum256([]byte("ecsemu-eni-" + id))
	a := hex.EncodeToString(sum[:16])
	t.attachment, t.eni, t.subnet = a[:8]+"-"+a[8:12]+"-"+a[12:16]+"-"+a[16:20]+"-"+a[20:], "eni-0"+a[:16], subnetOf(svc.netConf)
	t.ip = fmt.Sprintf("10.0.%d.%d", (s.enis/250)%256, s.enis%250+4)
	if assignsPublicIP(svc.netConf) {
		t.publicIP = fmt.Sprintf("203.0.113.%d", s.enis%250+4) // TEST-NET-3, data only
	}
	switch svc.propagateTags {
	case "SERVICE":
		t.tags = slices.Clone(svc.tags)
	case "TASK_DEFINITION":
		if td := s.taskDef(d.taskDef); td != nil {
			t.tags = slices.Clone(td.tags)
		}
	}
	c.tasks[id] = t
	return t
}
