package aciemu

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
)

// APIVersion is the api-version the SDK sends.
const APIVersion = "2023-05-01"

var apiVersions = []string{"2022-10-01-preview", "2023-02-01-preview", APIVersion, "2024-05-01-preview"}

// Kind is an injectable fault.
type Kind string

// Fault kinds. Request faults hit the next requests; operation faults the next operations started.
const (
	Throttle    Kind = "throttle"    // 429 TooManyRequests
	ServerError Kind = "server"      // 500 InternalServerError
	Unavailable Kind = "unavailable" // 503 ServiceUnavailable
	Timeout     Kind = "timeout"     // 504 GatewayTimeout
	Conflict    Kind = "conflict"    // 409 Conflict
	Slow        Kind = "slow"        // the operation stays InProgress SlowTicks longer
	Failed      Kind = "failed"      // the operation ends Failed (InternalServerError)
	Canceled    Kind = "canceled"    // the operation ends Canceled
	// Denied answers 403 AuthorizationFailed, as Resource Manager does when no role assignment of the caller allows
	// the action on the scope.
	Denied Kind = "denied"
	// Unauthenticated answers 401 InvalidAuthenticationToken, as Resource Manager does for a token it cannot use.
	Unauthenticated Kind = "unauthenticated"
)

// Defaults of Options.
const (
	DefaultOperationTicks = 2
	DefaultStartTicks     = 2
	DefaultSlowTicks      = 20
	DefaultListLag        = 1
)

// Options tune the emulator. Zero values take the defaults; a negative tick count or lag means zero.
type Options struct {
	// OperationTicks is how many server steps (requests) an async operation stays InProgress.
	OperationTicks int
	// StartTicks is how many steps a provisioned group stays Pending (containers Waiting) before Running.
	StartTicks int
	// SlowTicks is what a Slow fault adds to an operation.
	SlowTicks int
	// ListLag is how many list reads miss a newly created group.
	ListLag int
	// RetryAfter is advertised on operations and throttling (Retry-After in whole seconds, rounded up, plus
	// retry-after-ms). Zero sends "Retry-After: 0", so clients use their own poll interval.
	RetryAfter time.Duration
	// Images, when non-nil, are the only images that exist; others fail with InaccessibleImage.
	Images []string
}

// Request is one request the server received.
type Request struct {
	Op     string          `json:"op"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// GroupInfo is an inspector's view of one container group.
type GroupInfo struct {
	Subscription, ResourceGroup, Name string
	Tags                              map[string]string
	ProvisioningState                 string
	State                             string // instanceView.state
	// Ready: Running, and no container fails its readiness or liveness probe (FailProbePath): what a client of
	// the group's address would reach.
	Ready bool
}

// Server is the emulator. Build it with New; Close it when done.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu      sync.Mutex
	tick    int64
	seq     int
	groups  map[string]*group // by lower-cased sub/rg/name
	ops     map[string]*operation
	reqF    []Kind
	opF     []Kind
	reqs    []Request
	ipCount int
	sick    map[string]bool // FailProbePath
}

type group struct {
	sub, rg, name string
	spec          armcontainerinstance.ContainerGroup // as requested
	canon         []byte                              // the request, re-encoded, for idempotency
	state         string                              // provisioningState
	op            string                              // operation in flight
	runningAt     int64                               // step from which containers run; -1 not yet
	stopped       bool
	hidden        int // list reads still missing it
	ip            string
	started       time.Time
}

type operation struct {
	id, key, kind string // kind "put" | "delete"
	doneAt        int64
	result        string // Succeeded | Failed | Canceled
	status        string // InProgress until done
	code, msg     string
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// New starts an emulator.
func New(opts Options) *Server {
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&opts.OperationTicks, DefaultOperationTicks)
	def(&opts.StartTicks, DefaultStartTicks)
	def(&opts.SlowTicks, DefaultSlowTicks)
	def(&opts.ListLag, DefaultListLag)
	s := &Server{opts: opts, groups: map[string]*group{}, ops: map[string]*operation{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's base URL (https).
func (s *Server) URL() string { return s.srv.URL }

// Client is an HTTP client trusting the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Fail makes the next n requests (request kinds) or operations (Slow, Failed, Canceled) fail with kind.
func (s *Server) Fail(n int, kind Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		switch kind {
		case Slow, Failed, Canceled:
			s.opF = append(s.opF, kind)
		default:
			s.reqF = append(s.reqF, kind)
		}
	}
}

// Requests returns the log of requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// ResetRequests clears the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// Groups lists every container group, sorted by name.
func (s *Server) Groups() []GroupInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []GroupInfo
	for _, g := range s.groups {
		tags := map[string]string{}
		for k, v := range g.spec.Tags {
			if v != nil {
				tags[k] = *v
			}
		}
		out = append(out, GroupInfo{Subscription: g.sub, ResourceGroup: g.rg, Name: g.name, Tags: tags,
			ProvisioningState: g.state, State: s.instanceState(g), Ready: s.instanceState(g) == "Running" && s.probesPass(g)})
	}
	slices.SortFunc(out, func(a, b GroupInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Stored returns a group as it was requested, secure values and secret volume contents included: what its
// containers receive (a GET never shows them). ok is false when it does not exist.
func (s *Server) Stored(sub, rg, name string) (cg armcontainerinstance.ContainerGroup, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[key(sub, rg, name)]
	if g == nil {
		return cg, false
	}
	b, _ := json.Marshal(g.spec)
	_ = json.Unmarshal(b, &cg)
	return cg, true
}

// Exists tells whether the group exists.
func (s *Server) Exists(sub, rg, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[key(sub, rg, name)] != nil
}

// DeleteGroup removes a group out of band (drift); it reports whether it existed.
func (s *Server) DeleteGroup(sub, rg, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(sub, rg, name)
	_, ok := s.groups[k]
	delete(s.groups, k)
	return ok
}

// StopGroup sets a group's instance state to Stopped and its containers to Terminated (drift).
func (s *Server) StopGroup(sub, rg, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[key(sub, rg, name)]
	if g != nil {
		g.stopped = true
	}
	return g != nil
}

// SetState sets a group's provisioning state out of band, as the platform does when it marks a group Unhealthy,
// NotAccessible or Repairing. state must be one of ProvisioningStates; it reports whether the group exists.
func (s *Server) SetState(sub, rg, name, state string) bool {
	if !slices.Contains(ProvisioningStates, state) {
		panic(fmt.Sprintf("aciemu: %q is not a container group provisioning state (%v)", state, ProvisioningStates))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[key(sub, rg, name)]
	if g != nil {
		g.state = state
	}
	return g != nil
}

// PutGroup inserts a provisioned, running group directly (an object berth does not own, for look-alike tests).
func (s *Server) PutGroup(sub, rg, name string, cg armcontainerinstance.ContainerGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	canon, _ := json.Marshal(cg)
	s.groups[key(sub, rg, name)] = &group{sub: sub, rg: rg, name: name, spec: cg, canon: canon, state: "Succeeded",
		runningAt: s.tick, ip: s.nextIP(), started: epoch.Add(time.Duration(s.tick) * time.Second)}
}

func key(sub, rg, name string) string { return strings.ToLower(sub + "/" + rg + "/" + name) }

func (s *Server) nextIP() string {
	s.ipCount++
	return fmt.Sprintf("20.0.%d.%d", s.ipCount/250, s.ipCount%250+1)
}

// advance moves time one step and finishes the operations due.
func (s *Server) advance() {
	s.tick++
	for _, op := range s.ops {
		if op.status != "InProgress" || s.tick < op.doneAt {
			continue
		}
		op.status = op.result
		g := s.groups[op.key]
		if g == nil || g.op != op.id {
			continue
		}
		g.op = ""
		switch {
		case op.kind == "delete" && op.result == "Succeeded":
			delete(s.groups, op.key)
		case op.result == "Succeeded":
			g.state = "Succeeded"
			g.runningAt = s.tick + int64(s.opts.StartTicks)
			g.started = epoch.Add(time.Duration(g.runningAt) * time.Second)
		default:
			g.state = "Failed"
		}
	}
}

func (s *Server) startOp(k, kind string) *operation {
	s.seq++
	op := &operation{id: fmt.Sprintf("op-%06d", s.seq), key: k, kind: kind, status: "InProgress", result: "Succeeded",
		doneAt: s.tick + int64(s.opts.OperationTicks)}
	if len(s.opF) > 0 {
		f := s.opF[0]
		s.opF = s.opF[1:]
		switch f {
		case Slow:
			op.doneAt += int64(s.opts.SlowTicks)
		case Failed:
			op.result, op.code, op.msg = "Failed", "InternalServerError", "The operation failed because of an internal error."
		case Canceled:
			op.result, op.code, op.msg = "Canceled", "OperationCanceled", "The operation was canceled."
		}
	}
	s.ops[op.id] = op
	return op
}

// FailProbePath makes the app of every container answer path with 404, as the quickstart app does on any path but
// its health path. A running container whose readiness probe is an httpGet of path is never ready (its events
// say "Readiness probe failed: HTTP probe failed with statuscode: 404"); one whose liveness probe is such a probe
// is killed and restarted by it, again and again: currentState Waiting ("CrashLoopBackOff: Back-off restarting
// failed container"), previousState Terminated (exit code 137), restartCount counting the steps since it would
// have run, and the liveness failures in its events. The group's instanceView.state stays Running, as the
// service reports a group whose containers restart.
func (s *Server) FailProbePath(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sick == nil {
		s.sick = map[string]bool{}
	}
	s.sick[path] = true
}

// failing says which probes of c fail (FailProbePath).
func (s *Server) failing(c *armcontainerinstance.Container) (readiness, liveness bool) {
	if c == nil || c.Properties == nil {
		return false, false
	}
	fails := func(p *armcontainerinstance.ContainerProbe) bool {
		return p != nil && p.HTTPGet != nil && s.sick[deref(p.HTTPGet.Path)]
	}
	return fails(c.Properties.ReadinessProbe), fails(c.Properties.LivenessProbe)
}

// probesPass tells whether no container of g fails a probe.
func (s *Server) probesPass(g *group) bool {
	if g.spec.Properties == nil {
		return true
	}
	for _, c := range g.spec.Properties.Containers {
		if r, l := s.failing(c); r || l {
			return false
		}
	}
	return true
}

func (s *Server) instanceState(g *group) string {
	switch {
	case g.stopped:
		return "Stopped"
	case g.runningAt >= 0 && s.tick >= g.runningAt && g.state == "Succeeded":
		return "Running"
	default:
		return "Pending"
	}
}

// armError writes an ARM error body.
// DeniedObjectID is the object id a Denied fault names as the client.
const DeniedObjectID = "7f1c2d3e-0000-4000-8000-00000000b347"

// action is the authorization action Resource Manager names for a request.
func action(method string, rt route) string {
	a := "Microsoft.ContainerInstance/containerGroups/"
	switch method {
	case http.MethodPut:
		return a + "write"
	case http.MethodDelete:
		return a + "delete"
	}
	return a + "read"
}

// scope is the scope Resource Manager names for a request: the group, or the resource group of a list.
func scope(rt route) string {
	sc := "/subscriptions/" + rt.sub + "/resourceGroups/" + rt.rg
	if rt.name != "" {
		sc += "/providers/Microsoft.ContainerInstance/containerGroups/" + rt.name
	}
	return sc
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-failure-cause", "gateway")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		armError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) retryAfter(h http.Header) {
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(s.opts.RetryAfter.Seconds()))))
	if s.opts.RetryAfter > 0 {
		h.Set("retry-after-ms", strconv.FormatInt(s.opts.RetryAfter.Milliseconds(), 10))
	}
}

// route is a parsed request path.
type route struct {
	op            string
	sub, rg, name string
	loc, opID     string
}

func parse(method, path string) (route, bool) {
	p := strings.Split(strings.Trim(path, "/"), "/")
	eq := strings.EqualFold
	switch {
	case len(p) == 8 && eq(p[0], "subscriptions") && eq(p[2], "providers") && eq(p[3], "Microsoft.ContainerInstance") &&
		eq(p[4], "locations") && eq(p[6], "operations") && method == http.MethodGet:
		return route{op: "AsyncOperation_Get", sub: p[1], loc: p[5], opID: p[7]}, true
	case len(p) == 8 && eq(p[0], "subscriptions") && eq(p[2], "providers") && eq(p[3], "Microsoft.ContainerInstance") &&
		eq(p[4], "locations") && eq(p[6], "operationResults") && method == http.MethodGet:
		return route{op: "OperationResult_Get", sub: p[1], loc: p[5], opID: p[7]}, true
	case (len(p) == 7 || len(p) == 8) && eq(p[0], "subscriptions") && eq(p[2], "resourceGroups") && eq(p[4], "providers") &&
		eq(p[5], "Microsoft.ContainerInstance") && eq(p[6], "containerGroups"):
		r := route{sub: p[1], rg: p[3]}
		if len(p) == 7 {
			r.op = "ContainerGroups_ListByResourceGroup"
			return r, method == http.MethodGet
		}
		r.name = p[7]
		switch method {
		case http.MethodPut:
			r.op = "ContainerGroups_CreateOrUpdate"
		case http.MethodGet:
			r.op = "ContainerGroups_Get"
		case http.MethodDelete:
			r.op = "ContainerGroups_Delete"
		default:
			return r, false
		}
		return r, true
	}
	return route{}, false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = readAll(r)
	}
	rt, ok := parse(r.Method, r.URL.Path)
	s.mu.Lock()
	defer s.mu.Unlock()
	opName := rt.op
	if !ok {
		opName = "Unknown"
	}
	s.reqs = append(s.reqs, Request{Op: opName, Method: r.Method, Path: r.URL.Path, Body: compact(body)})
	s.advance()

	if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !found || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common"`)
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	v := r.URL.Query().Get("api-version")
	if v == "" {
		armError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	if !slices.Contains(apiVersions, v) {
		armError(w, http.StatusBadRequest, "InvalidApiVersionParameter", fmt.Sprintf(
			"The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(apiVersions, ",")))
		return
	}
	if !ok {
		armError(w, http.StatusNotFound, "InvalidResourceType", "The resource type could not be found in the namespace 'Microsoft.ContainerInstance' for api version '"+v+"'.")
		return
	}
	if len(s.reqF) > 0 {
		f := s.reqF[0]
		s.reqF = s.reqF[1:]
		switch f {
		case Throttle:
			s.retryAfter(w.Header())
			armError(w, http.StatusTooManyRequests, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - "+opName+".")
		case Unavailable:
			armError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable.")
		case Timeout:
			armError(w, http.StatusGatewayTimeout, "GatewayTimeout", "The gateway did not receive a response within the specified time period.")
		case Conflict:
			armError(w, http.StatusConflict, "Conflict", "Another operation is in progress on the resource; retry later.")
		case Denied:
			armError(w, http.StatusForbidden, "AuthorizationFailed", fmt.Sprintf("The client '%[1]s' with object id "+
				"'%[1]s' does not have authorization to perform action '%[2]s' over scope '%[3]s' or the scope is "+
				"invalid. If access was recently granted, please refresh your credentials.", DeniedObjectID, action(r.Method, rt), scope(rt)))
		case Unauthenticated:
			w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."`)
			armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		default:
			armError(w, http.StatusInternalServerError, "InternalServerError", "Encountered internal server error. Please try again.")
		}
		return
	}
	base := "https://" + r.Host
	switch rt.op {
	case "AsyncOperation_Get":
		s.getOp(w, rt)
	case "OperationResult_Get":
		s.getOpResult(w, rt, base)
	case "ContainerGroups_ListByResourceGroup":
		s.list(w, rt)
	case "ContainerGroups_Get":
		g := s.groups[key(rt.sub, rt.rg, rt.name)]
		if g == nil {
			armError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf(
				"The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under resource group '%s' was not found.", rt.name, rt.rg))
			return
		}
		writeJSON(w, http.StatusOK, s.render(g))
	case "ContainerGroups_CreateOrUpdate":
		s.put(w, rt, body, base)
	case "ContainerGroups_Delete":
		s.del(w, rt, base)
	}
}

func (s *Server) opHeaders(h http.Header, base string, g *group, op *operation) {
	loc := strings.ToLower(strings.ReplaceAll(deref(g.spec.Location), " ", ""))
	prefix := fmt.Sprintf("%s/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/%s", base, g.sub, loc)
	h.Set("Azure-AsyncOperation", prefix+"/operations/"+op.id+"?api-version="+APIVersion)
	h.Set("Location", prefix+"/operationResults/"+op.id+"?api-version="+APIVersion)
	s.retryAfter(h)
}

func (s *Server) getOp(w http.ResponseWriter, rt route) {
	op := s.ops[rt.opID]
	if op == nil {
		armError(w, http.StatusNotFound, "OperationNotFound", "The operation '"+rt.opID+"' was not found.")
		return
	}
	out := map[string]any{"id": "/subscriptions/" + rt.sub + "/providers/Microsoft.ContainerInstance/locations/" + rt.loc +
		"/operations/" + op.id, "name": op.id, "status": op.status}
	if op.status == "InProgress" {
		s.retryAfter(w.Header())
	}
	if op.status == "Failed" || op.status == "Canceled" {
		out["error"] = map[string]string{"code": op.code, "message": op.msg}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getOpResult(w http.ResponseWriter, rt route, base string) {
	op := s.ops[rt.opID]
	switch {
	case op == nil:
		armError(w, http.StatusNotFound, "OperationNotFound", "The operation '"+rt.opID+"' was not found.")
	case op.status == "InProgress":
		w.Header().Set("Location", base+"/subscriptions/"+rt.sub+"/providers/Microsoft.ContainerInstance/locations/"+rt.loc+
			"/operationResults/"+op.id+"?api-version="+APIVersion)
		s.retryAfter(w.Header())
		w.WriteHeader(http.StatusAccepted)
	case op.status == "Succeeded":
		w.WriteHeader(http.StatusNoContent)
	default:
		armError(w, http.StatusInternalServerError, op.code, op.msg)
	}
}

func (s *Server) list(w http.ResponseWriter, rt route) {
	var keys []string
	for k, g := range s.groups {
		if strings.EqualFold(g.sub, rt.sub) && strings.EqualFold(g.rg, rt.rg) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	value := []armcontainerinstance.ContainerGroup{}
	for _, k := range keys {
		g := s.groups[k]
		if g.hidden > 0 {
			g.hidden--
			continue
		}
		value = append(value, s.renderList(g))
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": value})
}

func (s *Server) del(w http.ResponseWriter, rt route, base string) {
	k := key(rt.sub, rt.rg, rt.name)
	g := s.groups[k]
	if g == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if g.op != "" {
		if op := s.ops[g.op]; op.kind == "delete" {
			s.opHeaders(w.Header(), base, g, op)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		armError(w, http.StatusConflict, "Conflict", "The container group '"+rt.name+"' is being provisioned; retry after the operation completes.")
		return
	}
	op := s.startOp(k, "delete")
	g.op = op.id
	g.state = "Deleting"
	s.opHeaders(w.Header(), base, g, op)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) put(w http.ResponseWriter, rt route, body []byte, base string) {
	var cg armcontainerinstance.ContainerGroup
	if err := json.Unmarshal(body, &cg); err != nil {
		armError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "+err.Error())
		return
	}
	if e := s.validate(rt.name, &cg); e != nil {
		armError(w, http.StatusBadRequest, e.code, e.msg)
		return
	}
	cg.ID, cg.Name, cg.Type = nil, nil, nil
	canon, _ := json.Marshal(cg)
	k := key(rt.sub, rt.rg, rt.name)
	g := s.groups[k]
	switch {
	case g != nil && string(g.canon) == string(canon) && !brokenState(g.state) && g.state != "Deleting":
		// Idempotent repeat: same answer, no new operation.
		if g.op != "" {
			s.opHeaders(w.Header(), base, g, s.ops[g.op])
		}
		writeJSON(w, http.StatusOK, s.render(g))
		return
	case g != nil && g.op != "":
		armError(w, http.StatusConflict, "Conflict", "The container group '"+rt.name+"' is in a transitioning state; retry after the operation completes.")
		return
	case g != nil:
		if e := validateUpdate(rt.name, &g.spec, &cg); e != nil {
			armError(w, http.StatusBadRequest, e.code, e.msg)
			return
		}
	}
	if other := s.labelHolder(k, &cg); other != "" {
		armError(w, http.StatusBadRequest, "DnsNameLabelNotAvailable", fmt.Sprintf(
			"The DNS name label '%s' in container group '%s' not available. Try using a different label.", deref(cg.Properties.IPAddress.DNSNameLabel), rt.name))
		return
	}
	status := http.StatusOK
	if g == nil {
		status = http.StatusCreated
		g = &group{sub: rt.sub, rg: rt.rg, name: rt.name, hidden: s.opts.ListLag, ip: s.nextIP()}
		s.groups[k] = g
		g.state = "Creating"
	} else {
		g.state = "Updating"
	}
	g.spec, g.canon, g.runningAt, g.stopped = cg, canon, -1, false
	op := s.startOp(k, "put")
	g.op = op.id
	s.opHeaders(w.Header(), base, g, op)
	writeJSON(w, status, s.render(g))
}

// labelHolder is the name of another group that holds cg's DNS name label in its location ("" when none does): a
// label is unique in a region, across subscriptions and resource groups, as long as its group exists.
func (s *Server) labelHolder(k string, cg *armcontainerinstance.ContainerGroup) string {
	label := dnsLabelOf(cg)
	if label == "" {
		return ""
	}
	loc := normLocation(deref(cg.Location))
	for ok, g := range s.groups {
		if ok != k && strings.EqualFold(dnsLabelOf(&g.spec), label) && normLocation(deref(g.spec.Location)) == loc {
			return g.name
		}
	}
	return ""
}

func dnsLabelOf(cg *armcontainerinstance.ContainerGroup) string {
	if cg.Properties == nil || cg.Properties.IPAddress == nil {
		return ""
	}
	return deref(cg.Properties.IPAddress.DNSNameLabel)
}

func normLocation(l string) string { return strings.ToLower(strings.ReplaceAll(l, " ", "")) }

// renderList is a group as ListByResourceGroup answers it: the GET view without the group's instanceView and
// without the containers' instanceView (current and previous state, restart count, events). The specification's
// list model (ListResultContainerGroupProperties) has no instanceView; the real service leaves the containers'
// one out of list results as well.
func (s *Server) renderList(g *group) armcontainerinstance.ContainerGroup {
	out := s.render(g)
	out.Properties.InstanceView = nil
	for _, c := range out.Properties.Containers {
		if c != nil && c.Properties != nil {
			c.Properties.InstanceView = nil
		}
	}
	return out
}

// brokenState tells whether a provisioning state is terminal without the group running: a PUT starts over.
func brokenState(state string) bool {
	switch state {
	case "Failed", "Canceled", "Unhealthy", "NotAccessible":
		return true
	}
	return false
}

// render is the GET view of a group: server fields filled, secure values and secret volume contents removed.
func (s *Server) render(g *group) armcontainerinstance.ContainerGroup {
	var out armcontainerinstance.ContainerGroup
	b, _ := json.Marshal(g.spec)
	_ = json.Unmarshal(b, &out)
	id := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups/%s", g.sub, g.rg, g.name)
	typ := "Microsoft.ContainerInstance/containerGroups"
	out.ID, out.Name, out.Type = &id, &g.name, &typ
	if out.Properties == nil {
		out.Properties = &armcontainerinstance.ContainerGroupPropertiesProperties{}
	}
	for _, v := range out.Properties.Volumes { // a secret volume's contents are never returned
		if v != nil {
			for k := range v.Secret {
				v.Secret[k] = nil
			}
		}
	}
	st := g.state
	out.Properties.ProvisioningState = &st
	state := s.instanceState(g)
	out.Properties.InstanceView = &armcontainerinstance.ContainerGroupPropertiesInstanceView{State: &state}
	cstate := map[string]string{"Running": "Running", "Stopped": "Terminated", "Pending": "Waiting"}[state]
	for _, c := range out.Properties.Containers {
		if c == nil || c.Properties == nil {
			continue
		}
		for _, e := range c.Properties.EnvironmentVariables {
			if e != nil {
				e.SecureValue = nil
			}
		}
		cs := &armcontainerinstance.ContainerState{State: &cstate}
		if state != "Pending" {
			t := g.started
			cs.StartTime = &t
		}
		zero := int32(0)
		view := &armcontainerinstance.ContainerPropertiesInstanceView{CurrentState: cs, RestartCount: &zero}
		if readiness, liveness := s.failing(c); state == "Running" && (readiness || liveness) {
			view.Events = s.probeEvents(g, readiness, liveness)
			if liveness {
				restarts := int32(s.tick - g.runningAt + 1)
				waiting, detail, exit := "Waiting", "CrashLoopBackOff: Back-off restarting failed container", int32(137)
				terminated, killed := "Terminated", "Killed"
				view.RestartCount = &restarts
				view.CurrentState = &armcontainerinstance.ContainerState{State: &waiting, DetailStatus: &detail}
				view.PreviousState = &armcontainerinstance.ContainerState{State: &terminated, DetailStatus: &killed,
					ExitCode: &exit, StartTime: cs.StartTime}
			}
		}
		c.Properties.InstanceView = view
	}
	if ip := out.Properties.IPAddress; ip != nil {
		addr := g.ip
		ip.IP = &addr
		if ip.DNSNameLabel != nil {
			fqdn := *ip.DNSNameLabel + "." + strings.ToLower(deref(out.Location)) + ".azurecontainer.io"
			ip.Fqdn = &fqdn
		}
	}
	return out
}

// probeEvents are the events of a running container whose probes fail, counted once per step since it runs.
func (s *Server) probeEvents(g *group, readiness, liveness bool) []*armcontainerinstance.Event {
	n := int32(s.tick - g.runningAt + 1)
	first, last := g.started, epoch.Add(time.Duration(s.tick)*time.Second)
	var out []*armcontainerinstance.Event
	add := func(kind string) {
		name, typ := "Unhealthy", "Warning"
		msg := kind + " probe failed: HTTP probe failed with statuscode: 404"
		out = append(out, &armcontainerinstance.Event{Count: &n, FirstTimestamp: &first, LastTimestamp: &last,
			Message: &msg, Name: &name, Type: &typ})
	}
	if readiness {
		add("Readiness")
	}
	if liveness {
		add("Liveness")
	}
	return out
}

func compact(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	out, _ := json.Marshal(v) // sorted keys
	return out
}

func readAll(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 4<<20))
}
