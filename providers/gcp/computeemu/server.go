package computeemu

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers/gcp/gcpauth"
)

// Fault kinds for Fail.
const (
	FaultThrottle = "throttle" // 429 rateLimitExceeded
	FaultQuota    = "quota"    // 403 rateLimitExceeded (Compute's per-minute API quota)
	FaultServer   = "server"   // 503 backendError
	FaultConflict = "conflict" // 409 conflict: another operation is in progress
	FaultSlow     = "slow"     // the next operation stays RUNNING for SlowSteps more steps
	// FaultDenied answers 403 forbidden, "Required 'compute.<resource>.<method>' permission for '<resource>'", as
	// Compute does when the caller's IAM roles lack the permission.
	FaultDenied = "denied"
	// FaultDisabled answers 403 accessNotConfigured, as Compute does when its API is not enabled in the project.
	FaultDisabled = "disabled"
)

// Zones is how many zones the region has by default (Options.Zones): "<region>-b", "-c" and "-d", as
// europe-west1's are.
const Zones = 3

// SlowSteps is how much longer a slow operation stays RUNNING.
const SlowSteps = 8

// Options configure a Server; zero values take the defaults.
type Options struct {
	Project string // default "berth-test"
	Region  string // default "europe-west1"
	// Zones are the region's zones, as regions.get lists them (default "<region>-b", "-c", "-d").
	Zones []string
	// OpSteps is how many steps an operation stays RUNNING (default 2).
	OpSteps int
	// BootSteps is how many steps a new instance takes to be RUNNING (default 2).
	BootSteps int
	// DeleteSteps is how many steps an instance stays DELETING (default 1).
	DeleteSteps int
	// OnStep, when set, is called after every step of every group with its RUNNING instances (no action under
	// way) and target size; it runs under the server's lock and must not call the Server.
	OnStep func(group string, running, target int)
	// AllowAnonymous serves requests without an access token (default: a token from /token is required).
	AllowAnonymous bool
	// HealSteps is how many steps an instance of a group with an autohealing policy stays UNHEALTHY before the
	// group recreates it (default 3).
	HealSteps int
}

// Request is one API call as received, for goldens.
type Request struct {
	Method    string
	Path      string // URL path
	Query     string // query without requestId
	RequestID string
	Body      []byte
}

// Server is the emulator. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	hs   *httptest.Server

	mu        sync.Mutex
	templates map[string]*template
	groups    map[string]*group
	ops       map[string]*operation
	reqIDs    map[string]reqRecord
	faults    []string
	slow      int
	requests  []Request
	nextID    uint64
	auth      gcpauth.Issuer // service-account keys and the access tokens issued
	ips       int            // addresses handed out
	// lb holds the load-balancing resources by collection ("healthChecks", "backendServices", ...) and name.
	lb     map[string]map[string]proto.Message
	health func(HealthProbe) bool
	quota  map[string]int
}

type template struct {
	pb     *computepb.InstanceTemplate
	hidden bool // missing from the next List
}

type instance struct {
	name      string
	id        uint64
	template  string // template name
	status    string // PROVISIONING, RUNNING, TERMINATED
	action    string // NONE, CREATING, RECREATING, DELETING
	countdown int
	// zone, addresses, network, labels and machine type, fixed when it is made (placeInstance)
	zone, networkIP, natIP, network, machineType string
	labels                                       map[string]string
	// health is the autohealing health state ("" without a policy, UNKNOWN, HEALTHY, UNHEALTHY); up counts the
	// steps it has run, sick those it has been unhealthy, healed how often autohealing recreated it.
	health           string
	up, sick, healed int
}

type group struct {
	pb        *computepb.InstanceGroupManager
	instances []*instance
	hidden    bool
	seq       int
	ports     int // changes of the named ports, for the instance group's fingerprint
}

// portsFingerprint is the fingerprint of the instance group's named ports.
func (g *group) portsFingerprint() string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%d/%d", g.pb.GetId(), g.ports)))
}

type operation struct {
	pb     *computepb.Operation
	steps  int
	effect func() *apiError
	global bool
}

type reqRecord struct {
	hash string
	op   string
}

// New starts a server.
func New(opts Options) *Server {
	if opts.Project == "" {
		opts.Project = "berth-test"
	}
	if opts.Region == "" {
		opts.Region = "europe-west1"
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{opts.Region + "-b", opts.Region + "-c", opts.Region + "-d"}
	}
	if opts.OpSteps <= 0 {
		opts.OpSteps = 2
	}
	if opts.BootSteps <= 0 {
		opts.BootSteps = 2
	}
	if opts.DeleteSteps <= 0 {
		opts.DeleteSteps = 1
	}
	if opts.HealSteps <= 0 {
		opts.HealSteps = 3
	}
	s := &Server{
		opts:      opts,
		templates: map[string]*template{},
		groups:    map[string]*group{},
		ops:       map[string]*operation{},
		reqIDs:    map[string]reqRecord{},
		nextID:    4200000000000000000,
		lb:        map[string]map[string]proto.Message{},
		quota:     map[string]int{},
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to give the SDK (option.WithEndpoint).
func (s *Server) URL() string { return s.hs.URL }

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

// Project and Region served.
func (s *Server) Project() string { return s.opts.Project }
func (s *Server) Region() string  { return s.opts.Region }

// Fail makes the next n API calls fail with kind (see the Fault constants); FaultSlow slows the next n operations.
func (s *Server) Fail(n int, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == FaultSlow {
		s.slow += n
		return
	}
	for range n {
		s.faults = append(s.faults, kind)
	}
}

// Requests returns the log of API calls received (token requests excluded).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests clears the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Step advances the world n steps without a request.
func (s *Server) Step(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.step()
	}
}

// ServiceAccountKey registers a new service account and returns its JSON key file, whose token_uri is this server.
func (s *Server) ServiceAccountKey(email string) ([]byte, error) {
	return s.auth.ServiceAccountKey(s.hs.URL, s.opts.Project, email)
}

// Groups lists the names of the existing instance group managers, sorted.
func (s *Server) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.groups {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RunningInstances counts the instances of group that run with no action pending: the server's own truth, not
// an eventually consistent list read.
func (s *Server) RunningInstances(group string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if g == nil {
		return 0
	}
	n := 0
	for _, in := range g.instances {
		if in.status == "RUNNING" && in.action == "NONE" {
			n++
		}
	}
	return n
}

// Templates lists the names of the existing instance templates, sorted.
func (s *Server) Templates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.templates {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// GroupExists tells whether the named group exists.
func (s *Server) GroupExists(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[name] != nil
}

// DeleteInstance deletes instance i (by name order) of the group out of band; the group recreates it over steps.
func (s *Server) DeleteInstance(groupName string, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, in, err := s.pick(groupName, i)
	if err != nil {
		return err
	}
	for k, x := range g.instances {
		if x == in {
			g.instances = append(g.instances[:k], g.instances[k+1:]...)
			break
		}
	}
	return nil
}

// StopInstance stops instance i (by name order) of the group out of band (TERMINATED); the group repairs it by
// recreating it over steps.
func (s *Server) StopInstance(groupName string, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, in, err := s.pick(groupName, i)
	if err != nil {
		return err
	}
	in.status, in.action, in.countdown = "TERMINATED", "NONE", 0
	return nil
}

func (s *Server) pick(groupName string, i int) (*group, *instance, error) {
	g := s.groups[groupName]
	if g == nil {
		return nil, nil, fmt.Errorf("computeemu: no group %q", groupName)
	}
	ins := append([]*instance(nil), g.instances...)
	sort.Slice(ins, func(a, b int) bool { return ins[a].name < ins[b].name })
	if i < 0 || i >= len(ins) {
		return nil, nil, fmt.Errorf("computeemu: group %q has %d instances, no %d", groupName, len(ins), i)
	}
	return g, ins[i], nil
}

// CreateUnowned creates, out of band, a group named name with size instances of a new template name+"-tmpl"
// carrying no labels and no description: a look-alike of something berth made.
func (s *Server) CreateUnowned(name string, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tn := name + "-tmpl"
	tp := &computepb.InstanceTemplate{Name: proto.String(tn), Properties: &computepb.InstanceProperties{
		MachineType: proto.String("e2-small")}}
	s.finishTemplate(tp)
	s.templates[tn] = &template{pb: tp}
	g := &computepb.InstanceGroupManager{Name: proto.String(name), BaseInstanceName: proto.String(name),
		TargetSize: proto.Int32(int32(size)), InstanceTemplate: proto.String(s.templateLink(tn))}
	s.addGroup(g)
	for range size {
		s.groups[name].instances = append(s.groups[name].instances, s.newInstance(s.groups[name], tn, "RUNNING", "NONE", 0))
	}
}

// --- HTTP ---

type apiError struct {
	code    int
	reason  string
	message string
}

func errorf(code int, reason, format string, args ...any) *apiError {
	return &apiError{code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code":    e.code,
		"message": e.message,
		"errors":  []map[string]string{{"message": e.message, "domain": "global", "reason": e.reason}},
	}})
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.Marshal(m)
	if err != nil {
		writeError(w, errorf(500, "backendError", "encoding: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.auth.Token(w, r, s.hs.URL+"/token")
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	reqID := q.Get("requestId")
	q.Del("requestId")
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: q.Encode(), RequestID: reqID, Body: body})
	if !s.opts.AllowAnonymous {
		if !s.auth.Valid(r.Header.Get("Authorization")) {
			writeError(w, errorf(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 access token."))
			return
		}
	}
	if len(s.faults) > 0 {
		kind := s.faults[0]
		s.faults = s.faults[1:]
		switch kind {
		case FaultThrottle:
			writeError(w, errorf(429, "rateLimitExceeded", "Rate Limit Exceeded"))
		case FaultQuota:
			writeError(w, errorf(403, "rateLimitExceeded", "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com'"))
		case FaultConflict:
			writeError(w, errorf(409, "conflict", "The resource is being modified by another operation in progress"))
		case FaultDenied:
			writeError(w, errorf(403, "forbidden", "Required '%s' permission for '%s'", permissionOf(r.Method, r.URL.Path), strings.TrimPrefix(r.URL.Path, "/compute/v1/")))
		case FaultDisabled:
			writeError(w, errorf(403, "accessNotConfigured", "Compute Engine API has not been used in project %s before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/compute.googleapis.com/overview?project=%s then retry.", s.opts.Project, s.opts.Project))
		default:
			writeError(w, errorf(503, "backendError", "Backend Error"))
		}
		return
	}
	s.step()
	m, e := s.route(r.Method, r.URL.Path, reqID, r.URL.Query(), body)
	if e != nil {
		writeError(w, e)
		return
	}
	writeProto(w, m)
}

// permissionOf is the IAM permission Compute names for a call: compute.<collection>.<list|get|create|delete|
// update|verb>.
func permissionOf(method, path string) string {
	if m := regionRE.FindStringSubmatch(path); m != nil {
		return "compute.regions.get"
	}
	if aggRE.MatchString(path) {
		return "compute.instances.list"
	}
	if m := zoneRE.FindStringSubmatch(path); m != nil {
		if m[3] == "" {
			return "compute.instances.list"
		}
		return "compute.instances.get"
	}
	m := pathRE.FindStringSubmatch(path)
	if m == nil {
		return "compute.projects.get"
	}
	coll, name, verb := m[3], m[4], m[5]
	switch coll {
	case "backendServices":
		coll = "regionBackendServices"
		if verb == "getHealth" {
			return "compute.regionBackendServices.get"
		}
	case "healthChecks":
		if method == http.MethodPatch || method == http.MethodPut {
			return "compute.healthChecks.update"
		}
	}
	switch {
	case verb != "":
		return "compute." + coll + "." + verb
	case method == http.MethodGet && name == "":
		return "compute." + coll + ".list"
	case method == http.MethodGet:
		return "compute." + coll + ".get"
	case method == http.MethodPost:
		return "compute." + coll + ".create"
	case method == http.MethodDelete:
		return "compute." + coll + ".delete"
	}
	return "compute." + coll + ".update"
}

var regionRE = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/regions/([^/]+)$`)

var pathRE = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/(?:global|regions/([^/]+))/([A-Za-z]+)(?:/([^/]+))?(?:/([A-Za-z]+))?$`)

func (s *Server) route(method, path, reqID string, q map[string][]string, body []byte) (proto.Message, *apiError) {
	if m := regionRE.FindStringSubmatch(path); m != nil && method == http.MethodGet {
		if m[1] != s.opts.Project || m[2] != s.opts.Region {
			return nil, errorf(404, "notFound", "The resource 'projects/%s/regions/%s' was not found", m[1], m[2])
		}
		return s.regionView(), nil
	}
	if m, e, ok := s.instanceRoute(method, path, q); ok {
		return m, e
	}
	m := pathRE.FindStringSubmatch(path)
	if m == nil {
		return nil, errorf(404, "notFound", "The requested URL %s was not found on this server.", path)
	}
	project, region, coll, name, verb := m[1], m[2], m[3], m[4], m[5]
	if project != s.opts.Project {
		return nil, errorf(404, "notFound", "The resource 'projects/%s' was not found", project)
	}
	if region != "" && region != s.opts.Region {
		return nil, errorf(404, "notFound", "The resource 'projects/%s/regions/%s' was not found", project, region)
	}
	global := region == ""
	mutate := func(kind, target string, prepare func() (func() *apiError, *apiError)) (proto.Message, *apiError) {
		return s.mutate(reqID, method+" "+path+"?"+queryString(q)+"\n"+string(body), kind, target, global, prepare)
	}
	switch {
	case global && coll == "instanceTemplates" && name == "" && method == http.MethodGet:
		f, e := parseFilter(first(q["filter"]))
		if e != nil {
			return nil, e
		}
		return s.listTemplates(f), nil
	case global && coll == "instanceTemplates" && name == "" && method == http.MethodPost:
		tp := &computepb.InstanceTemplate{}
		if e := decode(body, tp); e != nil {
			return nil, e
		}
		return mutate("insert", s.templateLink(tp.GetName()), func() (func() *apiError, *apiError) { return s.insertTemplate(tp) })
	case global && coll == "instanceTemplates" && name != "" && verb == "" && method == http.MethodGet:
		t := s.templates[name]
		if t == nil {
			return nil, notFound(s.templateLink(name))
		}
		return t.pb, nil
	case global && coll == "instanceTemplates" && name != "" && verb == "" && method == http.MethodDelete:
		return mutate("delete", s.templateLink(name), func() (func() *apiError, *apiError) { return s.deleteTemplate(name) })
	case coll == "operations" && name != "" && method == http.MethodGet:
		op := s.ops[name]
		if op == nil || op.global != global {
			return nil, errorf(404, "notFound", "The resource 'projects/%s/%s/operations/%s' was not found", project, scope(region), name)
		}
		return op.pb, nil
	case !global && coll == "instanceGroupManagers" && name == "" && method == http.MethodGet:
		f, e := parseFilter(first(q["filter"]))
		if e != nil {
			return nil, e
		}
		return s.listGroups(f), nil
	case !global && coll == "instanceGroupManagers" && name == "" && method == http.MethodPost:
		g := &computepb.InstanceGroupManager{}
		if e := decode(body, g); e != nil {
			return nil, e
		}
		return mutate("insert", s.groupLink(g.GetName()), func() (func() *apiError, *apiError) { return s.insertGroup(g) })
	case !global && coll == "instanceGroupManagers" && name != "" && verb == "" && method == http.MethodGet:
		g := s.groups[name]
		if g == nil {
			return nil, notFound(s.groupLink(name))
		}
		return s.groupView(g), nil
	case !global && coll == "instanceGroupManagers" && name != "" && verb == "" && method == http.MethodPatch:
		patch := &computepb.InstanceGroupManager{}
		if e := decode(body, patch); e != nil {
			return nil, e
		}
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) == nil && raw["autoHealingPolicies"] != nil && patch.AutoHealingPolicies == nil {
			patch.AutoHealingPolicies = []*computepb.InstanceGroupManagerAutoHealingPolicy{} // [] given: clear them
		}
		return mutate("patch", s.groupLink(name), func() (func() *apiError, *apiError) { return s.patchGroup(name, patch) })
	case !global && coll == "instanceGroupManagers" && name != "" && verb == "" && method == http.MethodDelete:
		return mutate("delete", s.groupLink(name), func() (func() *apiError, *apiError) { return s.deleteGroup(name) })
	case !global && coll == "instanceGroupManagers" && name != "" && verb == "resize" && method == http.MethodPost:
		size, err := strconv.Atoi(first(q["size"]))
		if err != nil || size < 0 {
			return nil, errorf(400, "invalid", "Invalid value for field 'size': '%s'. Must be greater than or equal to 0.", first(q["size"]))
		}
		return mutate("compute.regionInstanceGroupManagers.resize", s.groupLink(name), func() (func() *apiError, *apiError) {
			if s.groups[name] == nil {
				return nil, notFound(s.groupLink(name))
			}
			return func() *apiError {
				if g := s.groups[name]; g != nil {
					g.pb.TargetSize = proto.Int32(int32(size))
					s.touch(g)
				}
				return nil
			}, nil
		})
	case !global && coll == "instanceGroups" && name != "" && verb == "" && method == http.MethodGet:
		g := s.groups[name]
		if g == nil {
			return nil, notFound(fmt.Sprintf("%s/instanceGroups/%s", s.regionLink(), name))
		}
		return s.instanceGroupView(g), nil
	case !global && coll == "instanceGroups" && name != "" && verb == "setNamedPorts" && method == http.MethodPost:
		req := &computepb.RegionInstanceGroupsSetNamedPortsRequest{}
		if e := decode(body, req); e != nil {
			return nil, e
		}
		link := fmt.Sprintf("%s/instanceGroups/%s", s.regionLink(), name)
		return mutate("compute.regionInstanceGroups.setNamedPorts", link, func() (func() *apiError, *apiError) {
			g := s.groups[name]
			if g == nil {
				return nil, notFound(link)
			}
			if req.Fingerprint != nil && req.GetFingerprint() != g.portsFingerprint() {
				return nil, errorf(412, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
			}
			if e := checkNamedPorts(req.GetNamedPorts()); e != nil {
				return nil, e
			}
			return func() *apiError {
				if g := s.groups[name]; g != nil {
					g.pb.NamedPorts = req.GetNamedPorts()
					g.ports++
				}
				return nil
			}, nil
		})
	case !global && coll == "instanceGroupManagers" && name != "" && verb == "listManagedInstances" && method == http.MethodPost:
		g := s.groups[name]
		if g == nil {
			return nil, notFound(s.groupLink(name))
		}
		return s.managedInstances(g), nil
	}
	if m, e, ok := s.lbRoute(method, coll, name, verb, global, q, body, mutate); ok {
		return m, e
	}
	return nil, errorf(404, "notFound", "The requested URL %s was not found on this server.", path)
}

func scope(region string) string {
	if region == "" {
		return "global"
	}
	return "regions/" + region
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func queryString(q map[string][]string) string {
	var keys []string
	for k := range q {
		if k != "requestId" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s&", k, strings.Join(q[k], ","))
	}
	return b.String()
}

func decode(body []byte, m proto.Message) *apiError {
	if err := protojson.Unmarshal(body, m); err != nil {
		return errorf(400, "parseError", "Invalid JSON payload received. %v", err)
	}
	return nil
}

func notFound(link string) *apiError {
	_, rest, _ := strings.Cut(link, "/compute/v1/")
	return errorf(404, "notFound", "The resource '%s' was not found", rest)
}

// mutate runs a mutation under requestId deduplication: prepare validates synchronously and returns the effect,
// applied when the operation completes.
func (s *Server) mutate(reqID, fingerprint, kind, target string, global bool, prepare func() (func() *apiError, *apiError)) (proto.Message, *apiError) {
	sum := sha256.Sum256([]byte(fingerprint))
	hash := hex.EncodeToString(sum[:])
	if reqID != "" {
		if rec, ok := s.reqIDs[reqID]; ok {
			if rec.hash != hash {
				return nil, errorf(400, "invalid", "Invalid value for field 'requestId': '%s'. The request ID was already used by a different request.", reqID)
			}
			return s.ops[rec.op].pb, nil
		}
	}
	effect, e := prepare()
	if e != nil {
		return nil, e
	}
	s.nextID++
	name := fmt.Sprintf("operation-%d-%s", s.nextID, hash[:8])
	op := &operation{global: global, effect: effect, steps: s.opts.OpSteps}
	if s.slow > 0 {
		s.slow--
		op.steps += SlowSteps
	}
	op.pb = &computepb.Operation{
		Kind:          proto.String("compute#operation"),
		Id:            proto.Uint64(s.nextID),
		Name:          proto.String(name),
		OperationType: proto.String(kind),
		TargetLink:    proto.String(target),
		Status:        computepb.Operation_RUNNING.Enum(),
		Progress:      proto.Int32(0),
		InsertTime:    proto.String(time.Now().UTC().Format(time.RFC3339)),
	}
	if global {
		op.pb.SelfLink = proto.String(fmt.Sprintf("%s/compute/v1/projects/%s/global/operations/%s", s.hs.URL, s.opts.Project, name))
	} else {
		op.pb.Region = proto.String(s.regionLink())
		op.pb.SelfLink = proto.String(fmt.Sprintf("%s/operations/%s", s.regionLink(), name))
	}
	if reqID != "" {
		op.pb.ClientOperationId = proto.String(reqID)
		s.reqIDs[reqID] = reqRecord{hash: hash, op: name}
	}
	s.ops[name] = op
	return op.pb, nil
}

func (s *Server) regionLink() string {
	return fmt.Sprintf("%s/compute/v1/projects/%s/regions/%s", s.hs.URL, s.opts.Project, s.opts.Region)
}

func (s *Server) templateLink(name string) string {
	return fmt.Sprintf("%s/compute/v1/projects/%s/global/instanceTemplates/%s", s.hs.URL, s.opts.Project, name)
}

func (s *Server) zoneLink(name string) string {
	return fmt.Sprintf("%s/compute/v1/projects/%s/zones/%s", s.hs.URL, s.opts.Project, name)
}

// regionView is the region as regions.get answers it: its zones as URLs.
func (s *Server) regionView() *computepb.Region {
	r := &computepb.Region{Kind: proto.String("compute#region"), Name: proto.String(s.opts.Region), Status: proto.String("UP"),
		SelfLink: proto.String(s.regionLink())}
	for _, z := range s.opts.Zones {
		r.Zones = append(r.Zones, s.zoneLink(z))
	}
	return r
}

// instanceGroupView is the instance group of a managed group, as regionInstanceGroups.get answers it.
func (s *Server) instanceGroupView(g *group) *computepb.InstanceGroup {
	return &computepb.InstanceGroup{Kind: proto.String("compute#instanceGroup"), Name: g.pb.Name, Id: g.pb.Id,
		Region: proto.String(s.regionLink()), SelfLink: proto.String(fmt.Sprintf("%s/instanceGroups/%s", s.regionLink(), g.pb.GetName())),
		NamedPorts: g.pb.GetNamedPorts(), Fingerprint: proto.String(g.portsFingerprint()), Size: proto.Int32(int32(len(g.instances)))}
}

func (s *Server) groupLink(name string) string {
	return fmt.Sprintf("%s/instanceGroupManagers/%s", s.regionLink(), name)
}

// templateName accepts a template's name, relative path or URL.
func templateName(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

var (
	nameRE  = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	labelK  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelV  = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	metaKey = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	machine = regexp.MustCompile(`^(e2-(micro|small|medium|standard-(2|4|8|16|32)|highmem-(2|4|8|16)|highcpu-(2|4|8|16|32))|n1-standard-(1|2|4|8|16)|n2-standard-(2|4|8|16)|n2d-standard-(2|4|8|16)|t2d-standard-(1|2|4|8))$`)
)

func (s *Server) insertTemplate(tp *computepb.InstanceTemplate) (func() *apiError, *apiError) {
	switch {
	case !nameRE.MatchString(tp.GetName()):
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", tp.GetName())
	case s.templates[tp.GetName()] != nil:
		return nil, errorf(409, "alreadyExists", "The resource 'projects/%s/global/instanceTemplates/%s' already exists", s.opts.Project, tp.GetName())
	case tp.GetProperties() == nil:
		return nil, errorf(400, "required", "Required field 'resource.properties' not specified")
	case checkMachineType(tp.GetProperties().GetMachineType()) != "":
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.properties.machineType': '%s'. %s", tp.GetProperties().GetMachineType(), checkMachineType(tp.GetProperties().GetMachineType()))
	}
	if e := checkTemplateProperties(tp.GetProperties()); e != nil {
		return nil, e
	}
	for k, v := range tp.GetProperties().GetLabels() {
		if !labelK.MatchString(k) || !labelV.MatchString(v) {
			return nil, errorf(400, "invalid", "Invalid value for field 'resource.properties.labels': '%s'. Label keys and values can only contain lowercase letters, numeric characters, underscores and dashes.", k)
		}
	}
	return func() *apiError {
		if s.templates[tp.GetName()] != nil {
			return errorf(409, "alreadyExists", "The resource 'projects/%s/global/instanceTemplates/%s' already exists", s.opts.Project, tp.GetName())
		}
		s.finishTemplate(tp)
		s.templates[tp.GetName()] = &template{pb: tp, hidden: true}
		return nil
	}, nil
}

func (s *Server) finishTemplate(tp *computepb.InstanceTemplate) {
	s.nextID++
	tp.Id = proto.Uint64(s.nextID)
	tp.Kind = proto.String("compute#instanceTemplate")
	tp.SelfLink = proto.String(s.templateLink(tp.GetName()))
	tp.CreationTimestamp = proto.String(time.Now().UTC().Format(time.RFC3339))
}

func (s *Server) deleteTemplate(name string) (func() *apiError, *apiError) {
	if s.templates[name] == nil {
		return nil, notFound(s.templateLink(name))
	}
	for _, g := range s.groups {
		if s.uses(g, name) {
			return nil, errorf(400, "resourceInUseByAnotherResource", "The instance_template resource 'projects/%s/global/instanceTemplates/%s' is already being used by 'projects/%s/regions/%s/instanceGroupManagers/%s'", s.opts.Project, name, s.opts.Project, s.opts.Region, g.pb.GetName())
		}
	}
	return func() *apiError { delete(s.templates, name); return nil }, nil
}

func (s *Server) uses(g *group, tmpl string) bool {
	if templateName(g.pb.GetInstanceTemplate()) == tmpl {
		return true
	}
	for _, v := range g.pb.GetVersions() {
		if templateName(v.GetInstanceTemplate()) == tmpl {
			return true
		}
	}
	return false
}

func (s *Server) listTemplates(f filter) *computepb.InstanceTemplateList {
	out := &computepb.InstanceTemplateList{Kind: proto.String("compute#instanceTemplateList"), Id: proto.String("projects/" + s.opts.Project + "/global/instanceTemplates")}
	var names []string
	for n := range s.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := s.templates[n]
		if !f.match(t.pb) {
			continue
		}
		if t.hidden {
			t.hidden = false
			continue
		}
		out.Items = append(out.Items, t.pb)
	}
	return out
}

// currentTemplate is the template new instances of g get.
func currentTemplate(g *computepb.InstanceGroupManager) string {
	if vs := g.GetVersions(); len(vs) > 0 {
		return templateName(vs[0].GetInstanceTemplate())
	}
	return templateName(g.GetInstanceTemplate())
}

func (s *Server) checkGroupSpec(g *computepb.InstanceGroupManager) *apiError {
	if len(g.GetVersions()) > 1 {
		return errorf(400, "invalid", "Invalid value for field 'resource.versions': canary versions are not supported by this emulator")
	}
	t := currentTemplate(g)
	if t == "" {
		return errorf(400, "required", "Required field 'resource.instanceTemplate' not specified")
	}
	if s.templates[t] == nil {
		return errorf(404, "notFound", "The resource 'projects/%s/global/instanceTemplates/%s' was not found", s.opts.Project, t)
	}
	if e := checkEnum("resource.listManagedInstancesResults", g.ListManagedInstancesResults, enumListResults); e != nil {
		return e
	}
	if e := s.checkPolicies(g); e != nil {
		return e
	}
	return s.checkAutoHealing(g)
}

func (s *Server) insertGroup(g *computepb.InstanceGroupManager) (func() *apiError, *apiError) {
	switch {
	case !nameRE.MatchString(g.GetName()):
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", g.GetName())
	case s.groups[g.GetName()] != nil:
		return nil, errorf(409, "alreadyExists", "The resource 'projects/%s/regions/%s/instanceGroupManagers/%s' already exists", s.opts.Project, s.opts.Region, g.GetName())
	case g.GetBaseInstanceName() == "" || len(g.GetBaseInstanceName()) > 58 || !nameRE.MatchString(g.GetBaseInstanceName()):
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.baseInstanceName': '%s'. Must be a match of regex '[a-z][-a-z0-9]{0,57}'", g.GetBaseInstanceName())
	case g.TargetSize == nil || g.GetTargetSize() < 0:
		return nil, errorf(400, "required", "Required field 'resource.targetSize' not specified")
	}
	if e := s.checkGroupSpec(g); e != nil {
		return nil, e
	}
	g.NamedPorts = nil // output only: set through regionInstanceGroups.setNamedPorts
	if g.DistributionPolicy == nil {
		g.DistributionPolicy = &computepb.DistributionPolicy{}
	}
	if len(g.DistributionPolicy.Zones) == 0 {
		for _, z := range s.opts.Zones {
			g.DistributionPolicy.Zones = append(g.DistributionPolicy.Zones, &computepb.DistributionPolicyZoneConfiguration{Zone: proto.String(z)})
		}
	}
	for _, z := range g.DistributionPolicy.Zones {
		z.Zone = proto.String(s.zoneLink(templateName(z.GetZone())))
	}
	if g.DistributionPolicy.TargetShape == nil {
		g.DistributionPolicy.TargetShape = proto.String("EVEN")
	}
	return func() *apiError {
		if s.groups[g.GetName()] != nil {
			return errorf(409, "alreadyExists", "The resource 'projects/%s/regions/%s/instanceGroupManagers/%s' already exists", s.opts.Project, s.opts.Region, g.GetName())
		}
		s.addGroup(g)
		s.groups[g.GetName()].hidden = true
		return nil
	}, nil
}

func (s *Server) addGroup(g *computepb.InstanceGroupManager) {
	s.nextID++
	g.Id = proto.Uint64(s.nextID)
	g.Kind = proto.String("compute#instanceGroupManager")
	g.Region = proto.String(s.regionLink())
	g.SelfLink = proto.String(s.groupLink(g.GetName()))
	g.InstanceGroup = proto.String(fmt.Sprintf("%s/instanceGroups/%s", s.regionLink(), g.GetName()))
	g.CreationTimestamp = proto.String(time.Now().UTC().Format(time.RFC3339))
	gr := &group{pb: g}
	s.touch(gr)
	s.groups[g.GetName()] = gr
}

// touch changes g's fingerprint, as every modification does.
func (s *Server) touch(g *group) {
	s.nextID++
	g.pb.Fingerprint = proto.String(base64.StdEncoding.EncodeToString([]byte(strconv.FormatUint(s.nextID, 36))))
}

func (s *Server) patchGroup(name string, patch *computepb.InstanceGroupManager) (func() *apiError, *apiError) {
	g := s.groups[name]
	if g == nil {
		return nil, notFound(s.groupLink(name))
	}
	if patch.Fingerprint != nil && patch.GetFingerprint() != g.pb.GetFingerprint() {
		return nil, errorf(412, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
	}
	merged := proto.Clone(g.pb).(*computepb.InstanceGroupManager)
	if patch.Versions != nil {
		merged.Versions, merged.InstanceTemplate = patch.Versions, nil
		if len(patch.Versions) == 1 {
			merged.InstanceTemplate = proto.String(patch.Versions[0].GetInstanceTemplate())
		}
	}
	if patch.UpdatePolicy != nil {
		merged.UpdatePolicy = patch.UpdatePolicy
	}
	if patch.Description != nil {
		merged.Description = patch.Description
	}
	if patch.TargetSize != nil {
		merged.TargetSize = patch.TargetSize
	}
	if patch.AutoHealingPolicies != nil {
		merged.AutoHealingPolicies = patch.AutoHealingPolicies
	}
	if patch.ListManagedInstancesResults != nil {
		merged.ListManagedInstancesResults = patch.ListManagedInstancesResults
	}
	if dp := patch.GetDistributionPolicy(); dp != nil {
		if len(dp.GetZones()) > 0 {
			var have, want []string
			for _, z := range g.pb.GetDistributionPolicy().GetZones() {
				have = append(have, templateName(z.GetZone()))
			}
			for _, z := range dp.GetZones() {
				want = append(want, templateName(z.GetZone()))
			}
			if strings.Join(have, ",") != strings.Join(want, ",") {
				return nil, errorf(400, "invalid", "Invalid value for field 'resource.distributionPolicy.zones': ''. Zones of a regional managed instance group cannot be changed.")
			}
		}
		if dp.TargetShape != nil {
			merged.DistributionPolicy = proto.Clone(g.pb.GetDistributionPolicy()).(*computepb.DistributionPolicy)
			merged.DistributionPolicy.TargetShape = dp.TargetShape
		}
	}
	if e := s.checkGroupSpec(merged); e != nil {
		return nil, e
	}
	return func() *apiError {
		g := s.groups[name]
		if g == nil {
			return notFound(s.groupLink(name))
		}
		merged.Fingerprint = g.pb.Fingerprint
		g.pb = merged
		s.touch(g)
		return nil
	}, nil
}

func (s *Server) deleteGroup(name string) (func() *apiError, *apiError) {
	if s.groups[name] == nil {
		return nil, notFound(s.groupLink(name))
	}
	for _, n := range sortedNames(s.lb["backendServices"]) {
		for _, b := range s.lb["backendServices"][n].(*computepb.BackendService).GetBackends() {
			if _, gn := refName(b.GetGroup()); gn == name {
				return nil, errorf(400, "resourceInUseByAnotherResource", "The instance_group resource 'projects/%s/regions/%s/instanceGroups/%s' is already being used by 'projects/%s/regions/%s/backendServices/%s'",
					s.opts.Project, s.opts.Region, name, s.opts.Project, s.opts.Region, n)
			}
		}
	}
	return func() *apiError { delete(s.groups, name); return nil }, nil
}

func (s *Server) listGroups(f filter) *computepb.RegionInstanceGroupManagerList {
	out := &computepb.RegionInstanceGroupManagerList{Kind: proto.String("compute#regionInstanceGroupManagerList"),
		Id: proto.String("projects/" + s.opts.Project + "/regions/" + s.opts.Region + "/instanceGroupManagers")}
	var names []string
	for n := range s.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := s.groups[n]
		v := s.groupView(g)
		if !f.match(v) {
			continue
		}
		if g.hidden {
			g.hidden = false
			continue
		}
		out.Items = append(out.Items, v)
	}
	return out
}

func (s *Server) groupView(g *group) *computepb.InstanceGroupManager {
	v := proto.Clone(g.pb).(*computepb.InstanceGroupManager)
	cur := currentTemplate(g.pb)
	stable, reached := len(g.instances) == int(g.pb.GetTargetSize()), true
	actions := &computepb.InstanceGroupManagerActionsSummary{}
	var none, creating, recreating, deleting int32
	for _, in := range g.instances {
		if in.template != cur {
			reached, stable = false, false
		}
		switch in.action {
		case "NONE":
			none++
			if in.status != "RUNNING" {
				stable = false
			}
		case "CREATING":
			creating++
			stable = false
		case "RECREATING":
			recreating++
			stable = false
		case "DELETING":
			deleting++
			stable = false
		}
	}
	actions.None, actions.Creating, actions.Recreating, actions.Deleting = &none, &creating, &recreating, &deleting
	v.CurrentActions = actions
	v.Status = &computepb.InstanceGroupManagerStatus{IsStable: proto.Bool(stable),
		VersionTarget: &computepb.InstanceGroupManagerStatusVersionTarget{IsReached: proto.Bool(reached)}}
	return v
}

func (s *Server) managedInstances(g *group) *computepb.RegionInstanceGroupManagersListInstancesResponse {
	out := &computepb.RegionInstanceGroupManagersListInstancesResponse{}
	ins := append([]*instance(nil), g.instances...)
	sort.Slice(ins, func(a, b int) bool { return ins[a].name < ins[b].name })
	hc := s.autohealCheck(g)
	for _, in := range ins {
		mi := &computepb.ManagedInstance{
			Id:             proto.Uint64(in.id),
			Name:           proto.String(in.name),
			Instance:       proto.String(s.zoneLink(in.zone) + "/instances/" + in.name),
			InstanceStatus: proto.String(in.status),
			CurrentAction:  proto.String(in.action),
			Version:        &computepb.ManagedInstanceVersion{InstanceTemplate: proto.String(s.templateLink(in.template))},
		}
		if hc != nil && in.health != "" {
			mi.InstanceHealth = []*computepb.ManagedInstanceInstanceHealth{{HealthCheck: hc.SelfLink, DetailedHealthState: proto.String(in.health)}}
		}
		out.ManagedInstances = append(out.ManagedInstances, mi)
	}
	return out
}

// --- the world ---

func (s *Server) newInstance(g *group, tmpl, status, action string, countdown int) *instance {
	s.nextID++
	g.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", g.pb.GetName(), g.seq)))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffix := make([]byte, 4)
	for i := range suffix {
		suffix[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	in := &instance{name: g.pb.GetBaseInstanceName() + "-" + string(suffix), id: s.nextID, template: tmpl,
		status: status, action: action, countdown: countdown}
	s.placeInstance(g, in)
	return in
}

// step advances operations and every group by one step.
func (s *Server) step() {
	var names []string
	for n := range s.ops {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		op := s.ops[n]
		if op.pb.GetStatus() == computepb.Operation_DONE {
			continue
		}
		op.steps--
		op.pb.Progress = proto.Int32(50)
		if op.steps > 0 {
			continue
		}
		op.pb.Status = computepb.Operation_DONE.Enum()
		op.pb.Progress = proto.Int32(100)
		op.pb.EndTime = proto.String(time.Now().UTC().Format(time.RFC3339))
		if e := op.effect(); e != nil {
			op.pb.HttpErrorStatusCode = proto.Int32(int32(e.code))
			op.pb.HttpErrorMessage = proto.String(http.StatusText(e.code))
			op.pb.Error = &computepb.Error{Errors: []*computepb.Errors{{Code: proto.String(strings.ToUpper(e.reason)), Message: proto.String(e.message)}}}
		}
	}
	names = names[:0]
	for n := range s.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := s.groups[n]
		s.stepHealth(g)
		s.stepGroup(g)
		if s.opts.OnStep != nil {
			running := 0
			for _, in := range g.instances {
				if in.status == "RUNNING" && in.action == "NONE" {
					running++
				}
			}
			s.opts.OnStep(n, running, int(g.pb.GetTargetSize()))
		}
	}
}

func (s *Server) stepGroup(g *group) {
	// Progress actions under way.
	kept := g.instances[:0]
	for _, in := range g.instances {
		if in.countdown > 0 {
			in.countdown--
			if in.countdown == 0 {
				if in.action == "DELETING" {
					continue
				}
				in.status, in.action = "RUNNING", "NONE"
			}
		}
		kept = append(kept, in)
	}
	g.instances = kept
	// Repair stopped instances: recreate them under the same name.
	for _, in := range g.instances {
		if in.status == "TERMINATED" && in.action == "NONE" {
			s.nextID++
			in.id, in.status, in.action, in.countdown = s.nextID, "PROVISIONING", "RECREATING", s.opts.BootSteps
		}
	}
	cur := currentTemplate(g.pb)
	target := int(g.pb.GetTargetSize())
	surge := int(g.pb.GetUpdatePolicy().GetMaxSurge().GetFixed())
	unavailable := int(g.pb.GetUpdatePolicy().GetMaxUnavailable().GetFixed())
	proactive := g.pb.GetUpdatePolicy().GetType() != "OPPORTUNISTIC"
	var live, old []*instance
	ready := 0
	for _, in := range g.instances {
		if in.action == "DELETING" {
			continue
		}
		live = append(live, in)
		if in.template != cur {
			old = append(old, in)
		}
		if s.ready(g, in) {
			ready++
		}
	}
	allowed := target
	if len(old) > 0 && proactive {
		allowed = target + surge
	}
	switch {
	case len(live) < target:
		for range target - len(live) {
			g.instances = append(g.instances, s.newInstance(g, cur, "PROVISIONING", "CREATING", s.opts.BootSteps))
		}
	case len(live) > allowed:
		// Scale down: old, then not ready, then the newest instances go first.
		sort.SliceStable(live, func(a, b int) bool {
			ra, rb := rank(live[a], cur), rank(live[b], cur)
			if ra != rb {
				return ra < rb
			}
			return live[a].id > live[b].id
		})
		for _, in := range live[:len(live)-allowed] {
			in.action, in.countdown = "DELETING", s.opts.DeleteSteps
		}
	case len(old) > 0 && proactive:
		if len(live) < target+surge {
			g.instances = append(g.instances, s.newInstance(g, cur, "PROVISIONING", "CREATING", s.opts.BootSteps))
		}
		// Remove one old instance when what stays ready still covers target - maxUnavailable.
		sort.SliceStable(old, func(a, b int) bool { return rank(old[a], cur) < rank(old[b], cur) })
		victim := old[0]
		after := ready
		if s.ready(g, victim) {
			after--
		}
		if after >= target-unavailable {
			victim.action, victim.countdown = "DELETING", s.opts.DeleteSteps
		}
	}
}

// rank orders instances for removal: old and broken first.
func rank(in *instance, cur string) int {
	r := 0
	if in.template == cur {
		r += 2
	}
	if in.status == "RUNNING" && in.action == "NONE" {
		r++
	}
	return r
}

// --- OAuth2 ---
