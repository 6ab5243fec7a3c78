package nomademu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Fault kinds for Fail.
const (
	ServerError = "server"   // 500 with an RPC error
	RateLimited = "rate"     // 429 Too Many Requests
	Conflict    = "conflict" // 500 with an enforce-index conflict message
	// VariableConflict: another writer writes the variable just before each of the next n check-and-set writes
	// of a variable, which then lose (409 with the variable as that writer left it).
	VariableConflict = "var-conflict"
)

// Defaults of Options.
const (
	DefaultStartSteps   = 2
	DefaultHealthySteps = 1
	// DefaultDeadlineSteps is how many steps a running allocation of a deployment may stay not healthy (an image
	// marked with FailChecks) before its healthy deadline passes and it is marked unhealthy.
	DefaultDeadlineSteps = 12
	// MaxWait caps a blocking query's wait, as Nomad caps it at 10 minutes.
	MaxWait = 10 * time.Minute
	// DefaultWait is a blocking query's wait when ?wait is absent (Nomad's default).
	DefaultWait = 5 * time.Minute
	// DefaultNodeAddress is the node's address when Options.NodeAddress is empty.
	DefaultNodeAddress = "127.0.0.1"
	// MinDynamicPort and MaxDynamicPort bound the dynamic ports the node hands out (Nomad's defaults).
	MinDynamicPort = 20000
	MaxDynamicPort = 32000
)

// Clock gives the timers of blocking queries; tests inject one they control.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure a Server.
type Options struct {
	// Manual stops requests from advancing the scheduler: only Step does.
	Manual bool
	// StartSteps is how many steps a placed allocation stays pending (default DefaultStartSteps).
	StartSteps int
	// HealthySteps is how many steps a running allocation of a deployment takes to turn healthy.
	HealthySteps int
	// DeadlineSteps stands for the update block's healthy_deadline: how many steps a running allocation of a
	// deployment whose checks never pass (FailChecks) stays undecided before it is marked unhealthy (default
	// DefaultDeadlineSteps).
	DeadlineSteps int
	// Token, when set, is the only ACL token accepted.
	Token string
	// Clock times blocking queries (default: the real clock).
	Clock Clock
	// NodeAddress is the address of the one node, where allocations' ports are bound (default DefaultNodeAddress;
	// "0.0.0.0" stands for a node whose host network binds every interface).
	NodeAddress string
}

// Request is one recorded request.
type Request struct {
	Method string
	// Path is the URL path with its query, minus the blocking parameters (index, wait).
	Path string
	Body []byte
}

// Server is the emulator. Build it with New; Close it when done.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu          sync.Mutex
	cond        *sync.Cond
	index       uint64
	ids         int
	dynPorts    int             // dynamic ports handed out so far
	jobs        map[string]*job // namespace + "/" + id
	allocs      []*alloc
	deps        []*deployment
	faults      []string
	conflict    int // registers still to answer with a lost compare-and-set
	varConflict int // variable check-and-set writes still to lose to another writer
	failImgs    map[string]bool
	sickImgs    map[string]bool // FailChecks: running, never healthy
	sickPaths   map[string]bool // FailCheckPath: the app answers 404 there
	requests    []Request
	vars        *varStore                    // variables.go
	vault       map[string]map[string]string // render.go: Vault KV data by path
}

type job struct {
	spec     *api.Job   // the current version as registered, server fields set
	versions []*api.Job // every version, index = version number
	stable   uint64
	hasStbl  bool
	purged   bool
}

type alloc struct {
	stub *api.AllocationListStub
	age  int         // steps since placed or since running
	dep  *deployment // the deployment that placed it, if any
	// canary: placed as one of dep's canaries (its DeploymentStatus says so from the start, as Nomad's does).
	canary bool
	img    string
	// sick: its checks never pass (FailChecks of its image, or an http check of a FailCheckPath path judged by a
	// health_check = "checks" deployment), fixed when placed.
	sick bool
	out  rendered                // what its templates gave the task when it was placed
	res  *api.AllocatedResources // the ports it was given, answered with ?resources=true
}

type deployment struct {
	d *api.Deployment
}

// New starts an emulator on a local port.
func New(opts Options) *Server {
	if opts.StartSteps <= 0 {
		opts.StartSteps = DefaultStartSteps
	}
	if opts.HealthySteps <= 0 {
		opts.HealthySteps = DefaultHealthySteps
	}
	if opts.DeadlineSteps <= 0 {
		opts.DeadlineSteps = DefaultDeadlineSteps
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.NodeAddress == "" {
		opts.NodeAddress = DefaultNodeAddress
	}
	s := &Server{opts: opts, index: 1, jobs: map[string]*job{}, failImgs: map[string]bool{}, sickImgs: map[string]bool{}, sickPaths: map[string]bool{}}
	s.cond = sync.NewCond(&s.mu)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the address to give the client.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server and releases every blocked query.
func (s *Server) Close() {
	s.mu.Lock()
	s.index++
	s.cond.Broadcast()
	s.mu.Unlock()
	s.srv.Close()
}

// Fail makes the next n requests fail with kind; Conflict applies to the next n registers only, VariableConflict
// to the next n check-and-set writes of a variable.
func (s *Server) Fail(n int, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case Conflict:
		s.conflict += n
		return
	case VariableConflict:
		s.varConflict += n
		return
	}
	for range n {
		s.faults = append(s.faults, kind)
	}
}

// FailImage makes every allocation running image fail after it starts.
func (s *Server) FailImage(image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failImgs[image] = true
}

// FailChecks makes every allocation running image fail its health checks for ever: it runs, a deployment never
// counts it healthy, and once its healthy deadline (Options.DeadlineSteps) passes the deployment marks it
// unhealthy, as Nomad's client does for an allocation whose checks are not passing by healthy_deadline.
func (s *Server) FailChecks(image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sickImgs[image] = true
}

// FailCheckPath makes the app of every allocation placed from now on answer its http checks of path with 404, as
// the quickstart app does for any path but its health path: an allocation of a group with such a check runs, and
// when its update block judges health by checks (health_check = "checks", Nomad's default) its deployment never
// counts it healthy and marks it unhealthy at the healthy deadline, as for FailChecks. With health_check =
// "task_states" the checks do not count, as in Nomad.
func (s *Server) FailCheckPath(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sickPaths[path] = true
}

// failsChecks tells whether an allocation of sp's first group has an http check on a FailCheckPath path that its
// deployments judge (s.mu held).
func (s *Server) failsChecks(sp *api.Job) bool {
	g := sp.TaskGroups[0]
	if u := g.Update; u != nil && u.HealthCheck != nil && *u.HealthCheck != "checks" {
		return false
	}
	services := slices.Clone(g.Services)
	for _, t := range g.Tasks {
		services = append(services, t.Services...)
	}
	for _, svc := range services {
		for _, c := range svc.Checks {
			if c.Type == "http" && s.sickPaths[c.Path] {
				return true
			}
		}
	}
	return false
}

// Step advances the scheduler n steps.
func (s *Server) Step(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.advance()
	}
}

// Index is the current state index.
func (s *Server) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// Requests returns the recorded requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// LiveAllocs returns the IDs of the job's allocations that should run and are pending or running, by name.
func (s *Server) LiveAllocs(namespace, jobID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*alloc
	for _, a := range s.allocs {
		if a.stub.Namespace == ns(namespace) && a.stub.JobID == jobID && live(a) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].stub.Name < out[j].stub.Name })
	ids := make([]string, len(out))
	for i, a := range out {
		ids[i] = a.stub.ID
	}
	return ids
}

// KillAlloc makes a live allocation die (its task fails); the scheduler reschedules it.
func (s *Server) KillAlloc(id string) error {
	return s.endAlloc(id, api.AllocDesiredStatusRun, api.AllocClientStatusFailed, "task failed")
}

// StopAlloc stops a live allocation as `nomad alloc stop` does; the scheduler places a replacement.
func (s *Server) StopAlloc(id string) error {
	return s.endAlloc(id, api.AllocDesiredStatusStop, api.AllocClientStatusComplete, "alloc was stopped by an operator")
}

func (s *Server) endAlloc(id, desired, client, why string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.allocs {
		if a.stub.ID == id {
			if !live(a) {
				return fmt.Errorf("nomademu: allocation %s is not live", id)
			}
			s.bump()
			a.stub.DesiredStatus, a.stub.ClientStatus, a.stub.ClientDescription = desired, client, why
			a.stub.ModifyIndex = s.index
			return nil
		}
	}
	return fmt.Errorf("nomademu: no allocation %s", id)
}

// CreateLookAlike registers a job with no berth meta (someone else's), running count allocations.
func (s *Server) CreateLookAlike(namespace, id string, count int) {
	j := &api.Job{ID: new(id), Name: new(id), Type: new("service"),
		TaskGroups: []*api.TaskGroup{{Name: new("web"), Count: new(count),
			Tasks: []*api.Task{{Name: "web", Driver: "docker", Config: map[string]any{"image": "nginx:1"}}}}}}
	if namespace != "" {
		j.Namespace = new(namespace)
	}
	j.Canonicalize()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.register(j)
}

// JobExists tells whether a job is registered and not stopped.
func (s *Server) JobExists(namespace, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[ns(namespace)+"/"+id]
	return j != nil && !*j.spec.Stop
}

func ns(n string) string {
	if n == "" {
		return "default"
	}
	return n
}

func live(a *alloc) bool {
	return a.stub.DesiredStatus == api.AllocDesiredStatusRun &&
		(a.stub.ClientStatus == api.AllocClientStatusPending || a.stub.ClientStatus == api.AllocClientStatusRunning)
}

func (s *Server) bump() {
	s.index++
	s.cond.Broadcast()
}

func (s *Server) nextID() string {
	s.ids++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", s.ids, s.ids)
}

// httpError is an answer other than 200.
type httpError struct {
	code int
	msg  string
}

func errf(code int, format string, a ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, a...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	s.mu.Lock()
	rec := url.Values{}
	for k, v := range q {
		if k != "index" && k != "wait" {
			rec[k] = v
		}
	}
	path := r.URL.Path
	if len(rec) > 0 {
		path += "?" + rec.Encode()
	}
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Body: body})
	if s.opts.Token != "" && r.Header.Get("X-Nomad-Token") != s.opts.Token {
		s.mu.Unlock()
		s.write(w, nil, errf(http.StatusForbidden, "Permission denied"))
		return
	}
	if len(s.faults) > 0 {
		kind := s.faults[0]
		s.faults = s.faults[1:]
		s.mu.Unlock()
		switch kind {
		case RateLimited:
			s.write(w, nil, errf(http.StatusTooManyRequests, "Too many requests"))
		case Timeout:
			hold(r)
		default:
			s.write(w, nil, errf(http.StatusInternalServerError, "rpc error: No cluster leader"))
		}
		return
	}
	if !s.opts.Manual {
		s.advance()
	}
	if r.Method == http.MethodGet && q.Get("index") != "" {
		if err := s.block(r, q); err != nil {
			s.mu.Unlock()
			s.write(w, nil, err)
			return
		}
	}
	out, herr := s.dispatch(r.Method, r.URL.Path, q, body)
	s.mu.Unlock()
	s.write(w, out, herr)
}

// block holds a query (s.mu held) until the index passes ?index or ?wait ends.
func (s *Server) block(r *http.Request, q url.Values) *httpError {
	after, err := strconv.ParseUint(q.Get("index"), 10, 64)
	if err != nil {
		return errf(http.StatusBadRequest, "Invalid index: %v", err)
	}
	wait := DefaultWait
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil {
			return errf(http.StatusBadRequest, "Invalid wait time: %v", err)
		}
	}
	wait = min2(wait, MaxWait)
	expired := false
	done := make(chan struct{})
	defer close(done)
	timer := s.opts.Clock.After(wait)
	go func() {
		select {
		case <-timer:
		case <-r.Context().Done():
		case <-done:
			return
		}
		s.mu.Lock()
		expired = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	for s.index <= after && !expired {
		s.cond.Wait()
	}
	return nil
}

func min2(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func (s *Server) write(w http.ResponseWriter, out any, herr *httpError) {
	if herr == nil && s.writeReply(w, out) {
		return
	}
	s.mu.Lock()
	idx := s.index
	s.mu.Unlock()
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("X-Nomad-LastContact", "0")
	if herr != nil {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(herr.code)
		io.WriteString(w, herr.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(out); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Write(b.Bytes())
}

func (s *Server) dispatch(method, path string, q url.Values, body []byte) (any, *httpError) {
	namespace := ns(q.Get("namespace"))
	switch {
	case path == "/v1/jobs" && method == http.MethodGet:
		return s.listJobs(namespace, q)
	case path == "/v1/allocations" && method == http.MethodGet:
		return s.listAllocs(namespace, q)
	case path == "/v1/jobs" && (method == http.MethodPut || method == http.MethodPost):
		return s.registerReq(namespace, body)
	case strings.HasPrefix(path, "/v1/deployment/promote/") && (method == http.MethodPut || method == http.MethodPost):
		return s.promote(strings.TrimPrefix(path, "/v1/deployment/promote/"), body)
	case path == "/v1/vars" || strings.HasPrefix(path, "/v1/var/"):
		return s.variables(method, path, namespace, q, body)
	case strings.HasPrefix(path, "/v1/job/"):
		rest := strings.TrimPrefix(path, "/v1/job/")
		id, sub, _ := strings.Cut(rest, "/")
		if id == "" {
			return nil, errf(http.StatusBadRequest, "Missing job ID")
		}
		j := s.jobs[namespace+"/"+id]
		switch {
		case sub == "" && method == http.MethodGet:
			if j == nil {
				return nil, errf(http.StatusNotFound, "job not found")
			}
			return specCopy(j.spec), nil // answered after s.mu is released: a copy
		case sub == "" && method == http.MethodDelete:
			if j == nil {
				return nil, errf(http.StatusNotFound, "job not found")
			}
			return s.deregister(j, q.Get("purge") == "true"), nil
		case sub == "allocations" && method == http.MethodGet:
			return s.jobAllocs(namespace, id, j), nil
		case sub == "deployment" && method == http.MethodGet:
			return s.latestDeployment(namespace, id, j), nil
		case sub == "deployments" && method == http.MethodGet:
			out := []*api.Deployment{}
			for i := len(s.deps) - 1; j != nil && i >= 0; i-- {
				if d := s.deps[i].d; d.Namespace == namespace && d.JobID == id && d.JobCreateIndex == *j.spec.CreateIndex {
					out = append(out, depCopy(d))
				}
			}
			return out, nil
		case sub == "versions" && method == http.MethodGet:
			if j == nil {
				return nil, errf(http.StatusNotFound, "job versions not found")
			}
			vs := make([]*api.Job, 0, len(j.versions))
			for i := len(j.versions) - 1; i >= 0; i-- {
				vs = append(vs, j.versions[i])
			}
			return api.JobVersionsResponse{Versions: vs}, nil
		case sub == "plan" && (method == http.MethodPut || method == http.MethodPost):
			return s.plan(namespace, id, j, body)
		case sub == "scale" && (method == http.MethodPut || method == http.MethodPost):
			return s.scale(j, body)
		}
	}
	return nil, errf(http.StatusNotFound, "Invalid URL path: %s %s", method, path)
}

// queryFilter parses ?filter=, nil when absent; a bad expression is Nomad's 400.
func queryFilter(q url.Values) (filter, *httpError) {
	expr := q.Get("filter")
	if expr == "" {
		return nil, nil
	}
	f, err := parseFilter(expr)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "failed to create result paginator: %v", err)
	}
	return f, nil
}

// listJobs is GET /v1/jobs: ?prefix= on the ID, ?filter= evaluated on the whole job (as Nomad's paginator
// evaluates it on the stored job, not on the stub), ?meta=true adding each job's meta to its stub.
func (s *Server) listJobs(namespace string, q url.Values) ([]*api.JobListStub, *httpError) {
	prefix, withMeta := q.Get("prefix"), q.Get("meta") == "true"
	f, herr := queryFilter(q)
	if herr != nil {
		return nil, herr
	}
	out := []*api.JobListStub{}
	for key, j := range s.jobs {
		jn, id, _ := strings.Cut(key, "/")
		if (namespace != "*" && jn != namespace) || !strings.HasPrefix(id, prefix) {
			continue
		}
		if f != nil && !f.eval(datum(j.spec)) {
			continue
		}
		st := &api.JobListStub{ID: id, Name: *j.spec.Name, Namespace: jn, Type: *j.spec.Type, Datacenters: j.spec.Datacenters,
			Stop: *j.spec.Stop, Status: *j.spec.Status, CreateIndex: *j.spec.CreateIndex, ModifyIndex: *j.spec.ModifyIndex,
			JobModifyIndex: *j.spec.JobModifyIndex, SubmitTime: *j.spec.SubmitTime}
		if withMeta {
			st.Meta = j.spec.Meta
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out, nil
}

// listAllocs is GET /v1/allocations: every allocation of the namespace (all job versions and instances, terminal
// ones included), ?prefix= on the allocation ID, ?filter= evaluated on the allocation, ?resources=true adding the
// allocated resources (the ports) to each stub.
func (s *Server) listAllocs(namespace string, q url.Values) ([]*api.AllocationListStub, *httpError) {
	f, herr := queryFilter(q)
	if herr != nil {
		return nil, herr
	}
	prefix, withRes := q.Get("prefix"), q.Get("resources") == "true"
	out := []*api.AllocationListStub{}
	for _, a := range s.allocs {
		if namespace != "*" && a.stub.Namespace != namespace || !strings.HasPrefix(a.stub.ID, prefix) {
			continue
		}
		c := s.stubCopy(a)
		c.AllocatedResources = a.res
		if f != nil && !f.eval(datum(c)) {
			continue
		}
		if !withRes {
			c.AllocatedResources = nil
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Server) stubCopy(a *alloc) *api.AllocationListStub {
	c := *a.stub
	if a.stub.DeploymentStatus != nil {
		ds := *a.stub.DeploymentStatus
		c.DeploymentStatus = &ds
	}
	return &c
}

func (s *Server) registerReq(namespace string, body []byte) (any, *httpError) {
	var req api.JobRegisterRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errf(http.StatusBadRequest, "Failed to decode request body: %v", err)
	}
	if req.Job == nil {
		return nil, errf(http.StatusBadRequest, "Job must be specified")
	}
	if req.Job.Namespace == nil || *req.Job.Namespace == "" {
		req.Job.Namespace = new(namespace)
	}
	req.Job.Canonicalize() // as the agent does before the register RPC
	if herr := validate(req.Job); herr != nil {
		return nil, herr
	}
	key := ns(*req.Job.Namespace) + "/" + *req.Job.ID
	if s.conflict > 0 {
		s.conflict--
		return nil, errf(http.StatusInternalServerError, "Enforcing job modify index %d: job exists with conflicting job modify index: %d",
			req.JobModifyIndex, req.JobModifyIndex+1)
	}
	if req.EnforceIndex {
		const prefix = "Enforcing job modify index"
		cur := s.jobs[key]
		switch {
		case cur != nil && req.JobModifyIndex == 0:
			return nil, errf(http.StatusInternalServerError, "%s 0: job already exists", prefix)
		case cur != nil && req.JobModifyIndex != *cur.spec.JobModifyIndex:
			return nil, errf(http.StatusInternalServerError, "%s %d: job exists with conflicting job modify index: %d",
				prefix, req.JobModifyIndex, *cur.spec.JobModifyIndex)
		case cur == nil && req.JobModifyIndex != 0:
			return nil, errf(http.StatusInternalServerError, "%s %d: job does not exist", prefix, req.JobModifyIndex)
		}
	}
	j := s.register(req.Job)
	return api.JobRegisterResponse{EvalID: s.nextID(), EvalCreateIndex: s.index, JobModifyIndex: *j.spec.JobModifyIndex}, nil
}

// fingerprint is the job's spec without counts, update blocks and server fields: equal fingerprints mean an
// in-place update (Nomad's tasksUpdated looks at neither the count nor the update strategy).
func fingerprint(j *api.Job) string {
	c := specOf(j)
	c.Update = nil
	for _, g := range c.TaskGroups {
		g.Count, g.Update = nil, nil
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// specOf deep-copies the fields a submitter sets.
func specOf(j *api.Job) *api.Job {
	b, _ := json.Marshal(j)
	var c api.Job
	json.Unmarshal(b, &c)
	c.Stop, c.Status, c.StatusDescription, c.Stable, c.Version, c.SubmitTime = nil, nil, nil, nil, nil, nil
	c.CreateIndex, c.ModifyIndex, c.JobModifyIndex, c.ParentID = nil, nil, nil, nil
	return &c
}

func count(j *api.Job) int {
	if len(j.TaskGroups) == 0 || j.TaskGroups[0].Count == nil {
		return 1
	}
	return *j.TaskGroups[0].Count
}

// register stores a new version of the job (s.mu held) unless nothing changed, and starts its deployment.
func (s *Server) register(in *api.Job) *job {
	in = specOf(in)
	if in.Type == nil {
		in.Type = new("service")
	}
	if in.Name == nil {
		in.Name = in.ID
	}
	if in.Namespace == nil {
		in.Namespace = new("default")
	}
	if len(in.Datacenters) == 0 {
		in.Datacenters = []string{"*"}
	}
	for _, g := range in.TaskGroups {
		if g.Count == nil {
			g.Count = new(1)
		}
	}
	key := *in.Namespace + "/" + *in.ID
	j := s.jobs[key]
	if j != nil && !*j.spec.Stop && reflect.DeepEqual(specOf(j.spec), in) {
		return j // Nomad keeps the version when the spec did not change
	}
	s.bump()
	// Each live allocation whose own version differs from the new one only in counts or the update block moves to
	// the new version in place (as Nomad compares each allocation's job with the new one); the others are
	// destructive updates, done by the scheduler through canaries or one at a time.
	var inPlace []*alloc
	destructive := 0
	if j != nil && !*j.spec.Stop {
		fp := fingerprint(in)
		for _, a := range s.jobLive(*in.Namespace, *in.ID) {
			if v := a.stub.JobVersion; v < uint64(len(j.versions)) && fingerprint(j.versions[v]) == fp {
				inPlace = append(inPlace, a)
			} else {
				destructive++
			}
		}
	}
	if j == nil {
		j = &job{}
		s.jobs[key] = j
		in.CreateIndex = new(s.index)
		in.Version = new(uint64(0))
	} else {
		in.CreateIndex = j.spec.CreateIndex
		in.Version = new(*j.spec.Version + 1)
	}
	in.ModifyIndex, in.JobModifyIndex = new(s.index), new(s.index)
	in.Stop, in.Status, in.Stable, in.SubmitTime = new(false), new("pending"), new(false), new(int64(s.index))
	j.spec = in
	j.versions = append(j.versions, specCopy(in))
	for _, d := range s.deps {
		if d.d.Namespace == *in.Namespace && d.d.JobID == *in.ID && d.d.Status == api.DeploymentStatusRunning {
			d.d.Status, d.d.StatusDescription, d.d.ModifyIndex = api.DeploymentStatusCancelled, "Cancelled due to newer version of job", s.index
		}
	}
	for _, a := range inPlace {
		a.stub.JobVersion, a.stub.ModifyIndex = *in.Version, s.index
	}
	if *in.Type == "service" && in.Update != nil {
		tg := *in.TaskGroups[0].Name
		u := groupUpdate(in)
		st := &api.DeploymentState{AutoRevert: deref(u.AutoRevert), DesiredTotal: count(in),
			ProgressDeadline: deref(u.ProgressDeadline)}
		desc := descRunning
		// Canaries only when something is to be replaced (a new job or an in-place change places none).
		if n := deref(u.Canary); n > 0 && destructive > 0 {
			st.DesiredCanaries = n
			desc = descNeedsPromotion
			if deref(u.AutoPromote) {
				desc = descAutoPromotion
			}
		}
		s.deps = append(s.deps, &deployment{d: &api.Deployment{ID: s.nextID(), Namespace: *in.Namespace, JobID: *in.ID,
			JobVersion: *in.Version, JobModifyIndex: s.index, JobSpecModifyIndex: s.index, JobCreateIndex: *in.CreateIndex,
			Status: api.DeploymentStatusRunning, StatusDescription: desc,
			TaskGroups: map[string]*api.DeploymentState{tg: st}, CreateIndex: s.index, ModifyIndex: s.index}})
	}
	return j
}

// Deployment status descriptions, Nomad's words (structs.DeploymentStatusDescription*).
const (
	descRunning         = "Deployment is running"
	descNeedsPromotion  = "Deployment is running but requires manual promotion"
	descAutoPromotion   = "Deployment is running pending automatic promotion"
	descSuccessful      = "Deployment completed successfully"
	descUnhealthyAllocs = "Failed due to unhealthy allocations"
)

// groupUpdate is the first group's update block (the job's merged into it by Canonicalize), never nil.
func groupUpdate(j *api.Job) *api.UpdateStrategy {
	if len(j.TaskGroups) > 0 && j.TaskGroups[0].Update != nil {
		return j.TaskGroups[0].Update
	}
	if j.Update != nil {
		return j.Update
	}
	return &api.UpdateStrategy{}
}

func specCopy(j *api.Job) *api.Job {
	b, _ := json.Marshal(j)
	var c api.Job
	json.Unmarshal(b, &c)
	return &c
}

func (s *Server) jobLive(namespace, id string) []*alloc {
	var out []*alloc
	for _, a := range s.allocs {
		if a.stub.Namespace == namespace && a.stub.JobID == id && live(a) {
			out = append(out, a)
		}
	}
	return out
}

func (s *Server) deregister(j *job, purge bool) api.JobDeregisterResponse {
	s.bump()
	for _, a := range s.jobLive(*j.spec.Namespace, *j.spec.ID) {
		a.stub.DesiredStatus, a.stub.ClientStatus, a.stub.ModifyIndex = api.AllocDesiredStatusStop, api.AllocClientStatusComplete, s.index
	}
	for _, d := range s.deps {
		if d.d.Namespace == *j.spec.Namespace && d.d.JobID == *j.spec.ID && d.d.Status == api.DeploymentStatusRunning {
			d.d.Status, d.d.StatusDescription, d.d.ModifyIndex = api.DeploymentStatusCancelled, "Cancelled because job is stopped", s.index
		}
	}
	if purge {
		delete(s.jobs, *j.spec.Namespace+"/"+*j.spec.ID)
		j.purged = true
	} else {
		j.spec.Stop, j.spec.Status, j.spec.ModifyIndex = new(true), new("dead"), new(s.index)
	}
	return api.JobDeregisterResponse{EvalID: s.nextID(), EvalCreateIndex: s.index, JobModifyIndex: s.index}
}

func (s *Server) jobAllocs(namespace, id string, j *job) []*api.AllocationListStub {
	out := []*api.AllocationListStub{}
	if j == nil {
		return out
	}
	for _, a := range s.allocs {
		if a.stub.Namespace == namespace && a.stub.JobID == id && a.stub.CreateIndex >= *j.spec.CreateIndex {
			out = append(out, s.stubCopy(a))
		}
	}
	return out
}

func (s *Server) latestDeployment(namespace, id string, j *job) *api.Deployment {
	if j == nil {
		return nil
	}
	var latest *api.Deployment
	for _, d := range s.deps {
		if d.d.Namespace == namespace && d.d.JobID == id && d.d.JobCreateIndex == *j.spec.CreateIndex {
			latest = d.d
		}
	}
	if latest == nil {
		return nil
	}
	return depCopy(latest)
}

// depCopy is a deep copy of a deployment, to answer after s.mu is released.
func depCopy(d *api.Deployment) *api.Deployment {
	c := *d
	c.TaskGroups = map[string]*api.DeploymentState{}
	for k, v := range d.TaskGroups {
		st := *v
		st.PlacedCanaries = slices.Clone(v.PlacedCanaries)
		c.TaskGroups[k] = &st
	}
	return &c
}

// promote is `nomad deployment promote`: the canaries of the named groups (or all, with All) are promoted when
// each group has as many healthy canaries as it wants, else Nomad's refusal, a plain RPC error (500):
// "Task group %q has %d/%d healthy allocations". A deployment that is not running cannot be promoted
// ("can't promote terminal deployment"), nor one without canaries ("no canaries to promote").
func (s *Server) promote(id string, body []byte) (any, *httpError) {
	var req api.DeploymentPromoteRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errf(http.StatusBadRequest, "Failed to decode request body: %v", err)
	}
	if req.DeploymentID != id {
		return nil, errf(http.StatusBadRequest, "Deployment ID does not match")
	}
	var dep *deployment
	for _, d := range s.deps {
		if d.d.ID == id {
			dep = d
		}
	}
	if dep == nil {
		return nil, errf(http.StatusNotFound, "deployment not found")
	}
	if dep.d.Status != api.DeploymentStatusRunning {
		return nil, errf(http.StatusInternalServerError, "can't promote terminal deployment")
	}
	groups := map[string]*api.DeploymentState{}
	for name, st := range dep.d.TaskGroups {
		if (req.All || slices.Contains(req.Groups, name)) && st.DesiredCanaries > 0 {
			groups[name] = st
		}
	}
	if len(groups) == 0 {
		return nil, errf(http.StatusInternalServerError, "no canaries to promote")
	}
	var refusals []string
	for name, st := range groups {
		healthy := 0
		for _, a := range s.allocs {
			if a.dep == dep && a.canary && live(a) && !undecided(a) && *a.stub.DeploymentStatus.Healthy {
				healthy++
			}
		}
		if healthy < st.DesiredCanaries {
			refusals = append(refusals, fmt.Sprintf("Task group %q has %d/%d healthy allocations", name, healthy, st.DesiredCanaries))
		}
	}
	if len(refusals) > 0 {
		sort.Strings(refusals)
		return nil, errf(http.StatusInternalServerError, "%s", multiError(refusals))
	}
	s.bump()
	for _, st := range groups {
		st.Promoted = true
	}
	dep.d.StatusDescription, dep.d.ModifyIndex = descRunning, s.index
	return api.DeploymentUpdateResponse{EvalID: s.nextID(), EvalCreateIndex: s.index, DeploymentModifyIndex: s.index}, nil
}

// scale is `nomad job scale`: a new job version with the group's count changed (an in-place update), refused
// while a deployment of the job is running, as Nomad refuses it.
func (s *Server) scale(j *job, body []byte) (any, *httpError) {
	var req api.ScalingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errf(http.StatusBadRequest, "Failed to decode request body: %v", err)
	}
	if j == nil || *j.spec.Stop {
		return nil, errf(http.StatusNotFound, "job not found")
	}
	group := req.Target["Group"]
	if group == "" {
		return nil, errf(http.StatusBadRequest, "missing task group name for scaling action")
	}
	if req.Count == nil { // a scaling event without a change of count
		return api.JobRegisterResponse{JobModifyIndex: *j.spec.JobModifyIndex}, nil
	}
	if *req.Count < 0 {
		return nil, errf(http.StatusBadRequest, "scaling action count can't be negative")
	}
	next := specCopy(j.spec)
	i := slices.IndexFunc(next.TaskGroups, func(g *api.TaskGroup) bool { return *g.Name == group })
	if i < 0 {
		return nil, errf(http.StatusBadRequest, "task group %q specified for scaling does not exist in job", group)
	}
	if s.activeDeployment(j) != nil {
		return nil, errf(http.StatusBadRequest, "job scaling blocked due to active deployment")
	}
	next.TaskGroups[i].Count = new(int(*req.Count))
	j = s.register(next)
	return api.JobRegisterResponse{EvalID: s.nextID(), EvalCreateIndex: s.index, JobModifyIndex: *j.spec.JobModifyIndex}, nil
}

func (s *Server) plan(namespace, id string, j *job, body []byte) (any, *httpError) {
	var req api.JobPlanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errf(http.StatusBadRequest, "Failed to decode request body: %v", err)
	}
	if req.Job == nil || req.Job.ID == nil || *req.Job.ID != id {
		return nil, errf(http.StatusBadRequest, "Job ID does not match")
	}
	if req.Job.Namespace == nil || *req.Job.Namespace == "" {
		req.Job.Namespace = new(namespace)
	}
	req.Job.Canonicalize()
	if herr := validate(req.Job); herr != nil {
		return nil, herr
	}
	resp := api.JobPlanResponse{JobModifyIndex: 0}
	if !req.Diff {
		return resp, nil
	}
	newFlat := map[string]string{}
	flatten("", jsonValue(specOf(req.Job)), newFlat)
	oldFlat := map[string]string{}
	diff := &api.JobDiff{Type: "Added", ID: id}
	if j != nil && !*j.spec.Stop {
		resp.JobModifyIndex = *j.spec.JobModifyIndex
		flatten("", jsonValue(specOf(j.spec)), oldFlat)
		diff.Type = "None"
	}
	keys := map[string]bool{}
	for k := range newFlat {
		keys[k] = true
	}
	for k := range oldFlat {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		o, inOld := oldFlat[k]
		n, inNew := newFlat[k]
		typ := ""
		switch {
		case inOld && inNew && o != n:
			typ = "Edited"
		case !inOld && inNew:
			typ = "Added"
		case inOld && !inNew:
			typ = "Deleted"
		default:
			continue
		}
		if diff.Type == "None" {
			diff.Type = "Edited"
		}
		diff.Fields = append(diff.Fields, &api.FieldDiff{Type: typ, Name: k, Old: o, New: n})
	}
	resp.Diff = diff
	return resp, nil
}

func jsonValue(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		for i, e := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	case nil:
	default:
		b, _ := json.Marshal(t)
		out[prefix] = strings.Trim(string(b), `"`)
	}
}

// advance runs one scheduler step over every job (s.mu held).
func (s *Server) advance() {
	changed := false
	for _, a := range s.allocs {
		if !live(a) {
			continue
		}
		a.age++
		switch {
		case a.stub.ClientStatus == api.AllocClientStatusPending && a.out.err != "":
			a.stub.ClientStatus, a.stub.ClientDescription = api.AllocClientStatusFailed, a.out.err
			s.judge(a, false)
			a.stub.ModifyIndex, changed = s.index+1, true
		case a.stub.ClientStatus == api.AllocClientStatusPending && a.age >= s.opts.StartSteps:
			a.stub.ClientStatus, a.stub.ClientDescription, a.age = api.AllocClientStatusRunning, "Tasks are running", 0
			a.stub.ModifyIndex, changed = s.index+1, true
		case a.stub.ClientStatus == api.AllocClientStatusRunning && s.failImgs[a.image()]:
			a.stub.ClientStatus, a.stub.ClientDescription = api.AllocClientStatusFailed, "Failed tasks"
			s.judge(a, false)
			a.stub.ModifyIndex, changed = s.index+1, true
		case a.stub.ClientStatus == api.AllocClientStatusRunning && a.dep != nil && undecided(a) && (a.sick || s.sickImgs[a.image()]):
			// Its checks never pass: unhealthy once the healthy deadline has passed; it keeps running.
			if a.age >= s.opts.DeadlineSteps {
				s.judge(a, false)
				a.stub.ModifyIndex, changed = s.index+1, true
			}
		case a.stub.ClientStatus == api.AllocClientStatusRunning && a.dep != nil && undecided(a) &&
			a.age >= s.opts.HealthySteps:
			s.judge(a, true)
			a.stub.ModifyIndex, changed = s.index+1, true
		}
	}
	keys := make([]string, 0, len(s.jobs))
	for k := range s.jobs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s.schedule(s.jobs[k]) {
			changed = true
		}
	}
	if changed {
		s.bump()
	}
}

// undecided: the allocation's deployment has not judged its health yet.
func undecided(a *alloc) bool {
	return a.stub.DeploymentStatus == nil || a.stub.DeploymentStatus.Healthy == nil
}

// judge records a deployment's verdict on an allocation it placed (s.mu held); outside a deployment it does
// nothing. The canary flag stays.
func (s *Server) judge(a *alloc, healthy bool) {
	if a.dep == nil {
		return
	}
	a.stub.DeploymentStatus = &api.AllocDeploymentStatus{Healthy: new(healthy), Canary: a.canary, ModifyIndex: s.index + 1}
	st := a.dep.d.TaskGroups[a.stub.TaskGroup]
	if healthy {
		st.HealthyAllocs++
	} else {
		st.UnhealthyAllocs++
	}
}

// image is the docker image the allocation's job version runs.
func (a *alloc) image() string { return a.img }

func (s *Server) activeDeployment(j *job) *deployment {
	for _, d := range s.deps {
		if d.d.Namespace == *j.spec.Namespace && d.d.JobID == *j.spec.ID && d.d.JobVersion == *j.spec.Version &&
			d.d.Status == api.DeploymentStatusRunning {
			return d
		}
	}
	return nil
}

// deploymentFailed: the latest deployment of the job's current version failed. Nomad's reconciler then makes no
// destructive update and places no canary (it only replaces allocations that are missing), so whatever the
// failed deployment did not replace keeps running.
func (s *Server) deploymentFailed(j *job) bool {
	var latest *deployment
	for _, d := range s.deps {
		if d.d.Namespace == *j.spec.Namespace && d.d.JobID == *j.spec.ID && d.d.JobCreateIndex == *j.spec.CreateIndex {
			latest = d
		}
	}
	return latest != nil && latest.d.JobVersion == *j.spec.Version && latest.d.Status == api.DeploymentStatusFailed
}

// schedule reconciles one job's allocations with its current version (s.mu held); it reports a change.
//
// With canaries (the deployment's DesiredCanaries > 0, from update.canary when allocations are to be replaced),
// the old allocations are left alone while the canaries are placed and judged; when every canary is healthy and
// the update block says auto_promote, the deployment is promoted (Nomad's deployment watcher does it), and from
// the next step on the canaries count as the group's allocations: the old ones beyond the count are stopped and
// any left are replaced one at a time. A deployment with an unhealthy allocation fails: its canaries that were
// not promoted are stopped, and with auto_revert the job is registered again at its last stable version.
func (s *Server) schedule(j *job) bool {
	sp := j.spec
	if *sp.Stop {
		return false
	}
	nsp, id, version, want := *sp.Namespace, *sp.ID, *sp.Version, count(sp)
	tg := *sp.TaskGroups[0].Name
	dep := s.activeDeployment(j)
	next := s.index + 1
	changed := false
	stop := func(a *alloc, why string) {
		a.stub.DesiredStatus, a.stub.DesiredDescription, a.stub.ClientStatus = api.AllocDesiredStatusStop, why, api.AllocClientStatusComplete
		a.stub.ModifyIndex, changed = next, true
	}
	var st *api.DeploymentState
	if dep != nil {
		st = dep.d.TaskGroups[tg]
	}
	// A failed deployment: fail it, stop its canaries, and revert to the last stable version when asked.
	if dep != nil && st.UnhealthyAllocs > 0 {
		dep.d.Status, dep.d.StatusDescription, dep.d.ModifyIndex = api.DeploymentStatusFailed, descUnhealthyAllocs, next
		for _, a := range s.jobLive(nsp, id) {
			if a.dep == dep && a.canary && !st.Promoted {
				stop(a, "alloc not needed due to job update")
			}
		}
		if st.AutoRevert && j.hasStbl {
			dep.d.StatusDescription += " - rolling back to job version " + strconv.FormatUint(j.stable, 10)
			s.register(specCopy(j.versions[j.stable]))
		}
		return true
	}
	canaryPhase := dep != nil && st.DesiredCanaries > 0 && !st.Promoted
	var cur, old, canaries []*alloc
	inFlight := 0
	for _, a := range s.jobLive(nsp, id) {
		switch {
		case a.stub.JobVersion != version:
			old = append(old, a)
		case canaryPhase && a.canary && a.dep == dep:
			canaries = append(canaries, a)
		default:
			cur = append(cur, a)
			if a.dep != nil && a.dep == dep && undecided(a) {
				inFlight++
			}
		}
	}
	used := map[int]bool{}
	for _, a := range append(append([]*alloc(nil), cur...), old...) {
		used[allocIndex(a)] = true
	}
	if canaryPhase {
		healthy := 0
		for _, a := range canaries {
			if !undecided(a) && *a.stub.DeploymentStatus.Healthy {
				healthy++
			}
		}
		if healthy >= st.DesiredCanaries && deref(groupUpdate(sp).AutoPromote) {
			st.Promoted, dep.d.StatusDescription, dep.d.ModifyIndex = true, descRunning, next
			return true
		}
		// Canaries take the names of the allocations they are to replace, old ones first.
		names := make([]int, 0, want)
		for _, a := range old {
			names = append(names, allocIndex(a))
		}
		sort.Ints(names)
		for i := 0; len(names) < st.DesiredCanaries; i++ {
			if !used[i] {
				names = append(names, i)
			}
		}
		taken := map[int]bool{}
		for _, a := range canaries {
			taken[allocIndex(a)] = true
		}
		for _, i := range names {
			if len(canaries) >= st.DesiredCanaries {
				break
			}
			if taken[i] {
				continue
			}
			taken[i] = true
			canaries = append(canaries, s.place(j, i, dep, true))
			changed = true
		}
		// The old allocations stay as they are until the canaries are promoted; missing ones are replaced.
		for i := 0; len(cur)+len(old) < want; i++ {
			if !used[i] {
				used[i] = true
				cur = append(cur, s.place(j, i, dep, false))
				changed = true
			}
		}
		return changed
	}
	// Scale down: stop the surplus, old versions first, then the highest indexes.
	for len(cur)+len(old) > want {
		if len(old) > 0 {
			stop(old[len(old)-1], "alloc not needed due to job update")
			old = old[:len(old)-1]
			continue
		}
		sort.Slice(cur, func(a, b int) bool { return allocIndex(cur[a]) < allocIndex(cur[b]) })
		stop(cur[len(cur)-1], "alloc not needed due to job update")
		cur = cur[:len(cur)-1]
	}
	// Destructive update: one at a time, the next once the previous is healthy; none after a failed deployment.
	if len(old) > 0 && inFlight == 0 && !s.deploymentFailed(j) {
		a := old[0]
		stop(a, "alloc is being updated due to job update")
		s.place(j, allocIndex(a), dep, false)
		return true
	}
	// Missing allocations (new job, scale-up, reschedule of failed or stopped ones): all at once.
	for i := 0; len(cur)+len(old) < want; i++ {
		if used[i] {
			continue
		}
		used[i] = true
		s.place(j, i, dep, false)
		cur = append(cur, nil)
		changed = true
	}
	if dep != nil && inFlight == 0 && len(old) == 0 {
		running := 0
		for _, a := range cur {
			if a != nil && a.stub.ClientStatus == api.AllocClientStatusRunning {
				running++
			}
		}
		if running == want && len(cur) == want && allHealthyOrOutside(cur, dep) {
			dep.d.Status, dep.d.StatusDescription, dep.d.ModifyIndex = api.DeploymentStatusSuccessful, descSuccessful, next
			j.stable, j.hasStbl = version, true
			sp.Stable = new(true)
			changed = true
		}
	}
	if changed && *sp.Status != "running" {
		sp.Status, sp.ModifyIndex = new("running"), new(next)
	}
	return changed
}

// allHealthyOrOutside: every allocation placed by dep is healthy.
func allHealthyOrOutside(cur []*alloc, dep *deployment) bool {
	for _, a := range cur {
		if a == nil {
			return false
		}
		if a.dep == dep && (undecided(a) || !*a.stub.DeploymentStatus.Healthy) {
			return false
		}
	}
	return true
}

func allocIndex(a *alloc) int {
	name := a.stub.Name
	open, end := strings.LastIndexByte(name, '['), strings.LastIndexByte(name, ']')
	if open < 0 || end < open {
		return 0
	}
	i, _ := strconv.Atoi(name[open+1 : end])
	return i
}

// place starts a pending allocation of the job's current version (s.mu held), one of dep's canaries when canary.
func (s *Server) place(j *job, i int, dep *deployment, canary bool) *alloc {
	sp := j.spec
	tg := *sp.TaskGroups[0].Name
	a := &alloc{dep: dep, stub: &api.AllocationListStub{
		ID: s.nextID(), EvalID: s.nextID(), Name: fmt.Sprintf("%s.%s[%d]", *sp.ID, tg, i), Namespace: *sp.Namespace,
		NodeID: "node-0000-0001", NodeName: "emu-node-1", JobID: *sp.ID, JobType: *sp.Type, JobVersion: *sp.Version,
		TaskGroup: tg, DesiredStatus: api.AllocDesiredStatusRun, ClientStatus: api.AllocClientStatusPending,
		CreateIndex: s.index + 1, ModifyIndex: s.index + 1, CreateTime: int64(s.index + 1), ModifyTime: int64(s.index + 1),
	}}
	if len(sp.TaskGroups[0].Tasks) > 0 {
		a.img, _ = sp.TaskGroups[0].Tasks[0].Config["image"].(string)
	}
	a.sick = s.sickImgs[a.img] || s.failsChecks(sp)
	a.out = s.render(sp)
	a.res = s.allocate(sp.TaskGroups[0])
	if dep != nil {
		st := dep.d.TaskGroups[tg]
		st.PlacedAllocs++
		if canary {
			a.canary = true
			a.stub.DeploymentStatus = &api.AllocDeploymentStatus{Canary: true, ModifyIndex: a.stub.ModifyIndex}
			st.PlacedCanaries = append(st.PlacedCanaries, a.stub.ID)
		}
	}
	s.allocs = append(s.allocs, a)
	return a
}

// allocate gives a placed allocation its group's ports on the node (s.mu held): static ones as asked, dynamic
// ones from the node's range, all bound on the node's address. Port conflicts between allocations are not
// modelled (one node with every port free).
func (s *Server) allocate(g *api.TaskGroup) *api.AllocatedResources {
	res := &api.AllocatedResources{Shared: api.AllocatedSharedResources{}}
	for _, n := range g.Networks {
		nw := &api.NetworkResource{Mode: n.Mode, IP: s.opts.NodeAddress}
		if nw.Mode == "" {
			nw.Mode = "host"
		}
		for _, p := range n.ReservedPorts {
			nw.ReservedPorts = append(nw.ReservedPorts, p)
			res.Shared.Ports = append(res.Shared.Ports, api.PortMapping{Label: p.Label, Value: p.Value, To: p.To,
				HostIP: s.opts.NodeAddress})
		}
		for _, p := range n.DynamicPorts {
			p.Value = MinDynamicPort + s.dynPorts%(MaxDynamicPort-MinDynamicPort)
			s.dynPorts++
			nw.DynamicPorts = append(nw.DynamicPorts, p)
			res.Shared.Ports = append(res.Shared.Ports, api.PortMapping{Label: p.Label, Value: p.Value, To: p.To,
				HostIP: s.opts.NodeAddress})
		}
		res.Shared.Networks = append(res.Shared.Networks, nw)
	}
	return res
}
