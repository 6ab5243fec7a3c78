package clouddnsemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers/gcp/gcpauth"
)

// Operations, for Fail.
const (
	OpGetZone      = "managedZones.get"
	OpListRRSets   = "resourceRecordSets.list"
	OpCreateChange = "changes.create"
	OpGetChange    = "changes.get"
	OpListChanges  = "changes.list"
	// OpDNS is a DNS query: a fault answers SERVFAIL.
	OpDNS = "dns"
)

// Limits, the defaults of Options.
const (
	// DefaultRecordsPerSet is Cloud DNS's default quota resourceRecordsPerRrset.
	DefaultRecordsPerSet = 100
	// DefaultItemsPerPolicy is the items a routing policy may have (quota itemsPerRoutingPolicy).
	DefaultItemsPerPolicy = 100
	// DefaultChangeSize bounds additions, and deletions, of one change (rrsetAdditionsPerChange).
	DefaultChangeSize = 1000
	// DefaultPageSize is the page of resourceRecordSets.list without maxResults.
	DefaultPageSize = 100
	// MaxWeight is the largest weight of a weighted round robin item the emulator accepts.
	MaxWeight = 1000
	// MaxTTL is the largest ttl (a signed 32-bit number of seconds, RFC 2181).
	MaxTTL = math.MaxInt32
)

// Options tune an emulator; zero values take the defaults.
type Options struct {
	// Pending is how many changes.get polls a new change answers "pending" before "done" (0: done at once).
	Pending int
	// Seed seeds the random source of weighted answers (0: 1).
	Seed uint64
	// RecordsPerSet, ItemsPerPolicy, ChangeSize, PageSize: see the Default constants.
	RecordsPerSet, ItemsPerPolicy, ChangeSize, PageSize int
	// AllowAnonymous serves API requests without an access token from /token.
	AllowAnonymous bool
	// Now is the clock of change times (default time.Now).
	Now func() time.Time
}

// Fault is an injected error answer.
type Fault struct {
	Status  int
	Reason  string
	Message string
	// After, for changes.create: the change takes effect, then the error is answered (a lost response).
	After bool
}

// The faults Cloud DNS answers when it throttles or fails.
var (
	RateLimited = Fault{Status: 429, Reason: "rateLimitExceeded", Message: "Rate Limit Exceeded"}
	Unavailable = Fault{Status: 503, Reason: "backendError", Message: "Backend Error"}
	Internal    = Fault{Status: 500, Reason: "internalError", Message: "Internal Error"}
)

// Change is one change in the log.
type Change struct {
	ID        string
	Time      time.Time
	Additions []*dnsv1.ResourceRecordSet
	Deletions []*dnsv1.ResourceRecordSet
	// Planted is a change made by Plant, not through the API.
	Planted bool
}

// Request is one API request received (token requests excluded).
type Request struct {
	Method, Path, Query string
	Body                []byte
}

type key struct{ name, typ string }

type change struct {
	Change
	pending int
	done    bool
	// result is the zone after the change: what DNS serves once it is done.
	result map[key]*dnsv1.ResourceRecordSet
}

// Emulator is one managed zone of one project. It is an http.Handler (the API and /token) and serves DNS with
// ServeDNS. Safe for concurrent use.
type Emulator struct {
	project, zone, dnsName string
	opts                   Options

	mu       sync.Mutex
	sets     map[key]*dnsv1.ResourceRecordSet // the zone as the API reads it
	served   map[key]*dnsv1.ResourceRecordSet // the zone as DNS answers it
	changes  []*change
	faults   map[string][]Fault
	pending  int
	rng      *rand.Rand
	requests []Request
	created  time.Time
	auth     gcpauth.Issuer
}

// New makes the managed zone named zone, of DNS name dnsName ("example.com."), in project, with its apex SOA and
// NS record sets.
func New(project, zone, dnsName string, opts Options) *Emulator {
	if opts.RecordsPerSet <= 0 {
		opts.RecordsPerSet = DefaultRecordsPerSet
	}
	if opts.ItemsPerPolicy <= 0 {
		opts.ItemsPerPolicy = DefaultItemsPerPolicy
	}
	if opts.ChangeSize <= 0 {
		opts.ChangeSize = DefaultChangeSize
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Emulator{project: project, zone: zone, dnsName: fqdn(dnsName), opts: opts,
		sets: map[key]*dnsv1.ResourceRecordSet{}, faults: map[string][]Fault{}, pending: opts.Pending,
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), created: opts.Now()}
	ns := []string{"ns-cloud-a1.googledomains.com.", "ns-cloud-a2.googledomains.com.",
		"ns-cloud-a3.googledomains.com.", "ns-cloud-a4.googledomains.com."}
	e.sets[key{e.dnsName, "NS"}] = &dnsv1.ResourceRecordSet{Kind: "dns#resourceRecordSet", Name: e.dnsName,
		Type: "NS", Ttl: 21600, Rrdatas: ns}
	e.sets[key{e.dnsName, "SOA"}] = &dnsv1.ResourceRecordSet{Kind: "dns#resourceRecordSet", Name: e.dnsName,
		Type: "SOA", Ttl: 21600, Rrdatas: []string{ns[0] + " cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300"}}
	e.served = clone(e.sets)
	return e
}

// DNSName is the zone's DNS name, with its dot.
func (e *Emulator) DNSName() string { return e.dnsName }

// Fail queues faults for the next calls of op (OpGetZone, OpListRRSets, OpCreateChange, OpGetChange, OpDNS).
func (e *Emulator) Fail(op string, faults ...Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults[op] = append(e.faults[op], faults...)
}

// SetPending sets how many changes.get polls the next changes answer "pending".
func (e *Emulator) SetPending(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = n
}

// Changes returns the change log, oldest first.
func (e *Emulator) Changes() []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Change, len(e.changes))
	for i, c := range e.changes {
		out[i] = c.Change
	}
	return out
}

// Requests returns the API requests received, oldest first.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// RecordSets returns the zone's record sets as the API reads them, sorted by name and type.
func (e *Emulator) RecordSets() []*dnsv1.ResourceRecordSet {
	e.mu.Lock()
	defer e.mu.Unlock()
	return cloneList(sortedSets(e.sets))
}

// Plant adds record sets to the zone out of band, as someone else would (served at once, logged as a planted
// change). It checks them as changes.create checks additions.
func (e *Emulator) Plant(sets ...*dnsv1.ResourceRecordSet) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	next, aerr := e.apply(&dnsv1.Change{Additions: sets})
	if aerr != nil {
		return fmt.Errorf("clouddnsemu: plant: %s", aerr.message)
	}
	c := &change{Change: Change{ID: strconv.Itoa(len(e.changes)), Time: e.opts.Now(), Additions: cloneList(sets),
		Planted: true}, done: true, result: next}
	e.changes = append(e.changes, c)
	e.sets = next
	// What is pending would otherwise lose the planted sets once it is done.
	for _, p := range e.changes {
		if !p.done {
			for _, s := range sets {
				p.result[keyOf(s)] = cloneSet(s)
			}
		}
	}
	for _, s := range sets {
		e.served[keyOf(s)] = cloneSet(s)
	}
	return nil
}

// --- HTTP ---

type apiError struct {
	code            int
	reason, message string
}

func errorf(code int, reason, format string, args ...any) *apiError {
	return &apiError{code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": e.code, "message": e.message,
		"errors": []map[string]string{{"domain": "global", "reason": e.reason, "message": e.message}},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, errorf(500, "internalError", "encoding: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// ServeHTTP serves the API and /token.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		e.auth.Token(w, r, "http://"+r.Host+"/token")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, errorf(400, "badRequest", "reading the body: %v", err))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body})
	if !e.opts.AllowAnonymous && !e.auth.Valid(r.Header.Get("Authorization")) {
		writeError(w, errorf(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 "+
			"access token, login cookie or other valid authentication credential."))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/dns/v1/projects/")
	if !ok {
		writeError(w, errorf(404, "notFound", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 3 || parts[1] != "managedZones" {
		writeError(w, errorf(404, "notFound", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	if parts[0] != e.project {
		writeError(w, errorf(404, "notFound", "The 'parameters.project' resource named '%s' does not exist.", parts[0]))
		return
	}
	if parts[2] != e.zone {
		writeError(w, errorf(404, "notFound", "The 'parameters.managedZone' resource named '%s' does not exist.", parts[2]))
		return
	}
	var op string
	switch {
	case len(parts) == 3 && r.Method == http.MethodGet:
		op = OpGetZone
	case len(parts) == 4 && parts[3] == "rrsets" && r.Method == http.MethodGet:
		op = OpListRRSets
	case len(parts) == 4 && parts[3] == "changes" && r.Method == http.MethodPost:
		op = OpCreateChange
	case len(parts) == 4 && parts[3] == "changes" && r.Method == http.MethodGet:
		op = OpListChanges
	case len(parts) == 5 && parts[3] == "changes" && r.Method == http.MethodGet:
		op = OpGetChange
	default:
		writeError(w, errorf(404, "notFound", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	var after *Fault
	if f, ok := e.fault(op); ok {
		if !f.After || op != OpCreateChange {
			writeError(w, errorf(f.Status, f.Reason, "%s", f.Message))
			return
		}
		after = &f
	}
	var out any
	var aerr *apiError
	switch op {
	case OpGetZone:
		out = e.managedZone()
	case OpListRRSets:
		out, aerr = e.list(r)
	case OpCreateChange:
		out, aerr = e.create(body)
	case OpGetChange:
		out, aerr = e.getChange(parts[4])
	case OpListChanges:
		out, aerr = e.listChanges(r)
	}
	switch {
	case aerr != nil:
		writeError(w, aerr)
	case after != nil:
		writeError(w, errorf(after.Status, after.Reason, "%s", after.Message))
	default:
		writeJSON(w, out)
	}
}

func (e *Emulator) fault(op string) (Fault, bool) {
	q := e.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	e.faults[op] = q[1:]
	return q[0], true
}

func (e *Emulator) managedZone() *dnsv1.ManagedZone {
	return &dnsv1.ManagedZone{Kind: "dns#managedZone", Name: e.zone, DnsName: e.dnsName, Id: 4711,
		Visibility: "public", CreationTime: e.created.UTC().Format(time.RFC3339Nano),
		NameServers: slices.Clone(e.sets[key{e.dnsName, "NS"}].Rrdatas)}
}

func (e *Emulator) list(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	name, typ := q.Get("name"), q.Get("type")
	if typ != "" && name == "" {
		return nil, errorf(400, "invalid", "Invalid value for 'parameters.type': the 'name' parameter must also be specified.")
	}
	size := e.opts.PageSize
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, errorf(400, "invalid", "Invalid value for 'parameters.maxResults': '%s'", v)
		}
		size = min(n, e.opts.PageSize)
	}
	var all []*dnsv1.ResourceRecordSet
	for _, s := range sortedSets(e.sets) {
		if (name == "" || s.Name == fqdn(name)) && (typ == "" || s.Type == strings.ToUpper(typ)) {
			all = append(all, s)
		}
	}
	start := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 || n > len(all) {
			return nil, errorf(400, "invalid", "Invalid value for 'parameters.pageToken': '%s'", tok)
		}
		start = n
	}
	end := min(start+size, len(all))
	resp := &dnsv1.ResourceRecordSetsListResponse{Kind: "dns#resourceRecordSetsListResponse", Rrsets: all[start:end]}
	if end < len(all) {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return resp, nil
}

// rawChange is what decides "required" for ttl: the SDK omits a zero ttl unless forced.
type rawChange struct {
	Additions []struct {
		TTL *json.RawMessage `json:"ttl"`
	} `json:"additions"`
	Deletions []struct {
		TTL *json.RawMessage `json:"ttl"`
	} `json:"deletions"`
}

func (e *Emulator) create(body []byte) (any, *apiError) {
	var c dnsv1.Change
	var raw rawChange
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, errorf(400, "parseError", "Parse Error: %v", err)
	}
	_ = json.Unmarshal(body, &raw) // it parsed as a Change
	if len(c.Additions) == 0 && len(c.Deletions) == 0 {
		return nil, errorf(400, "required", "The 'entity.change' parameter is required but was missing.")
	}
	for i := range c.Additions {
		if i < len(raw.Additions) && raw.Additions[i].TTL == nil {
			return nil, errorf(400, "required", "The 'entity.change.additions[%d].ttl' parameter is required but was missing.", i)
		}
	}
	if len(c.Additions) > e.opts.ChangeSize {
		return nil, errorf(403, "quotaExceeded", "Quota exceeded for quota rrsetAdditionsPerChange: %d additions, limit %d.", len(c.Additions), e.opts.ChangeSize)
	}
	if len(c.Deletions) > e.opts.ChangeSize {
		return nil, errorf(403, "quotaExceeded", "Quota exceeded for quota rrsetDeletionsPerChange: %d deletions, limit %d.", len(c.Deletions), e.opts.ChangeSize)
	}
	next, aerr := e.apply(&c)
	if aerr != nil {
		return nil, aerr
	}
	ch := &change{Change: Change{ID: strconv.Itoa(len(e.changes)), Time: e.opts.Now(), Additions: cloneList(c.Additions),
		Deletions: cloneList(c.Deletions)}, pending: e.pending, result: next}
	e.changes = append(e.changes, ch)
	e.sets = next
	if ch.pending <= 0 {
		e.finish(len(e.changes) - 1)
	}
	return e.changeJSON(ch), nil
}

func (e *Emulator) getChange(id string) (any, *apiError) {
	for i, c := range e.changes {
		if c.ID != id || c.Planted {
			continue
		}
		if !c.done {
			if c.pending > 0 {
				c.pending--
				return e.changeJSON(c), nil
			}
			e.finish(i)
		}
		return e.changeJSON(c), nil
	}
	return nil, errorf(404, "notFound", "The 'parameters.changeId' resource named '%s' does not exist.", id)
}

// listChanges lists the API's changes by changeSequence (the only sortBy), ascending unless sortOrder is
// "descending", maxResults at most PageSize. Listing does not count as a poll.
func (e *Emulator) listChanges(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	if sb := q.Get("sortBy"); sb != "" && sb != "changeSequence" {
		return nil, errorf(400, "invalid", "Invalid value for 'parameters.sortBy': '%s'", sb)
	}
	var all []*change
	for _, c := range e.changes {
		if !c.Planted {
			all = append(all, c)
		}
	}
	switch q.Get("sortOrder") {
	case "", "ascending":
	case "descending":
		slices.Reverse(all)
	default:
		return nil, errorf(400, "invalid", "Invalid value for 'parameters.sortOrder': '%s'", q.Get("sortOrder"))
	}
	size := e.opts.PageSize
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, errorf(400, "invalid", "Invalid value for 'parameters.maxResults': '%s'", v)
		}
		size = min(n, size)
	}
	start := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 || n > len(all) {
			return nil, errorf(400, "invalid", "Invalid value for 'parameters.pageToken': '%s'", tok)
		}
		start = n
	}
	end := min(start+size, len(all))
	resp := &dnsv1.ChangesListResponse{Kind: "dns#changesListResponse"}
	for _, c := range all[start:end] {
		resp.Changes = append(resp.Changes, e.changeJSON(c))
	}
	if end < len(all) {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return resp, nil
}

// finish marks change i done, and every one before it: DNS serves the zone as change i left it.
func (e *Emulator) finish(i int) {
	for _, c := range e.changes[:i+1] {
		c.done = true
		c.pending = 0
	}
	e.served = clone(e.changes[i].result)
}

func (e *Emulator) changeJSON(c *change) *dnsv1.Change {
	status := "pending"
	if c.done {
		status = "done"
	}
	return &dnsv1.Change{Kind: "dns#change", Id: c.ID, StartTime: c.Time.UTC().Format(time.RFC3339Nano), Status: status,
		Additions: withKinds(cloneList(c.Additions)), Deletions: withKinds(cloneList(c.Deletions)), IsServing: true}
}

// apply checks a change against the zone and returns the zone after it, or the error Cloud DNS answers.
func (e *Emulator) apply(c *dnsv1.Change) (map[key]*dnsv1.ResourceRecordSet, *apiError) {
	next := clone(e.sets)
	for i, d := range c.Deletions {
		field := fmt.Sprintf("entity.change.deletions[%d]", i)
		if aerr := e.check(field, d); aerr != nil {
			return nil, aerr
		}
		k := keyOf(d)
		cur, ok := next[k]
		if !ok {
			return nil, errorf(404, "notFound", "The '%s' resource named '%s (%s)' does not exist.", field, k.name, k.typ)
		}
		if !same(cur, d) {
			return nil, errorf(412, "conditionNotMet", "Precondition not met for '%s'", field)
		}
		delete(next, k)
	}
	for i, a := range c.Additions {
		field := fmt.Sprintf("entity.change.additions[%d]", i)
		if aerr := e.check(field, a); aerr != nil {
			return nil, aerr
		}
		k := keyOf(a)
		if _, ok := next[k]; ok {
			return nil, errorf(409, "alreadyExists", "The resource '%s' named '%s (%s)' already exists", field, k.name, k.typ)
		}
		s := cloneSet(a)
		s.Name, s.Type = k.name, k.typ
		next[k] = withKind(s)
	}
	for _, k := range []string{"SOA", "NS"} {
		if _, ok := next[key{e.dnsName, k}]; !ok {
			return nil, errorf(400, "invalid", "The zone apex %s record set of '%s' cannot be deleted; replace it in the same change.", k, e.dnsName)
		}
	}
	// A CNAME cannot coexist with another type at its name.
	types := map[string][]string{}
	for k := range next {
		types[k.name] = append(types[k.name], k.typ)
	}
	for i, a := range c.Additions {
		k := keyOf(a)
		if len(types[k.name]) > 1 && slices.Contains(types[k.name], "CNAME") {
			return nil, errorf(400, "cnameResourceRecordSetConflict", "The resource 'entity.change.additions[%d]' named "+
				"'%s (%s)' cannot be created because a CNAME resource record set cannot coexist with other record "+
				"types at the same name.", i, k.name, k.typ)
		}
	}
	return next, nil
}

var supported = map[string]bool{"A": true, "AAAA": true, "CAA": true, "CNAME": true, "DS": true, "HTTPS": true,
	"MX": true, "NAPTR": true, "NS": true, "PTR": true, "SOA": true, "SPF": true, "SRV": true, "SSHFP": true,
	"SVCB": true, "TLSA": true, "TXT": true}

// check validates one record set of a change as Cloud DNS does.
func (e *Emulator) check(field string, s *dnsv1.ResourceRecordSet) *apiError {
	if s == nil {
		return errorf(400, "required", "The '%s' parameter is required but was missing.", field)
	}
	if s.Name == "" {
		return errorf(400, "required", "The '%s.name' parameter is required but was missing.", field)
	}
	name := strings.ToLower(s.Name)
	if _, ok := dns.IsDomainName(name); !ok || !strings.HasSuffix(name, ".") || strings.ContainsAny(name, " \\\"") ||
		!dns.IsSubDomain(e.dnsName, name) {
		return errorf(400, "invalid", "Invalid value for '%s.name': '%s'", field, s.Name)
	}
	typ := strings.ToUpper(s.Type)
	if !supported[typ] {
		return errorf(400, "invalid", "Invalid value for '%s.type': '%s'", field, s.Type)
	}
	if s.Ttl < 0 || s.Ttl > MaxTTL {
		return errorf(400, "invalid", "Invalid value for '%s.ttl': '%d'", field, s.Ttl)
	}
	if (len(s.Rrdatas) > 0) == (s.RoutingPolicy != nil) {
		return errorf(400, "invalid", "Invalid value for '%s': a resource record set has exactly one of rrdatas and routingPolicy.", field)
	}
	rrdatas := func(f string, rr []string) *apiError {
		if len(rr) == 0 {
			return errorf(400, "required", "The '%s.rrdatas' parameter is required but was missing.", f)
		}
		if typ == "CNAME" && len(rr) > 1 {
			return errorf(400, "invalid", "Invalid value for '%s.rrdatas': a CNAME resource record set holds exactly one record.", f)
		}
		for j, d := range rr {
			if typ == "CNAME" && !strings.HasSuffix(d, ".") {
				return errorf(400, "invalid", "Invalid value for '%s.rrdata[%d]': '%s' (a CNAME's target is a fully qualified name)", f, j, d)
			}
			if _, err := dns.NewRR(fmt.Sprintf("%s 0 IN %s %s", name, typ, d)); err != nil {
				return errorf(400, "invalid", "Invalid value for '%s.rrdata[%d]': '%s'", f, j, d)
			}
		}
		return nil
	}
	if s.RoutingPolicy == nil {
		if len(s.Rrdatas) > e.opts.RecordsPerSet {
			return errorf(403, "quotaExceeded", "Quota exceeded for quota resourceRecordsPerRrset: %d records, limit %d.", len(s.Rrdatas), e.opts.RecordsPerSet)
		}
		return rrdatas(field, s.Rrdatas)
	}
	p := s.RoutingPolicy
	if p.Geo != nil || p.PrimaryBackup != nil || p.Wrr == nil || p.HealthCheck != "" {
		return errorf(400, "invalid", "Invalid value for '%s.routingPolicy': the emulator serves wrr policies only.", field)
	}
	if len(p.Wrr.Items) == 0 {
		return errorf(400, "required", "The '%s.routingPolicy.wrr.items' parameter is required but was missing.", field)
	}
	if len(p.Wrr.Items) > e.opts.ItemsPerPolicy {
		return errorf(403, "quotaExceeded", "Quota exceeded for quota itemsPerRoutingPolicy: %d items, limit %d.", len(p.Wrr.Items), e.opts.ItemsPerPolicy)
	}
	total := 0
	for j, it := range p.Wrr.Items {
		f := fmt.Sprintf("%s.routingPolicy.wrr.items[%d]", field, j)
		if it == nil {
			return errorf(400, "required", "The '%s' parameter is required but was missing.", f)
		}
		if math.IsNaN(it.Weight) || it.Weight < 0 || it.Weight > MaxWeight {
			return errorf(400, "invalid", "Invalid value for '%s.weight': '%v' (want 0 to %d)", f, it.Weight, MaxWeight)
		}
		if it.HealthCheckedTargets != nil {
			return errorf(400, "invalid", "Invalid value for '%s.healthCheckedTargets': the emulator has no health checks.", f)
		}
		if aerr := rrdatas(f, it.Rrdatas); aerr != nil {
			return aerr
		}
		total += len(it.Rrdatas)
	}
	if total > e.opts.RecordsPerSet {
		return errorf(403, "quotaExceeded", "Quota exceeded for quota resourceRecordsPerRrset: %d records, limit %d.", total, e.opts.RecordsPerSet)
	}
	return nil
}

// same tells whether a deletion matches the existing set exactly.
func same(cur, d *dnsv1.ResourceRecordSet) bool {
	norm := func(rr []string) []string {
		out := make([]string, len(rr))
		for i, r := range rr {
			out[i] = strings.ToLower(strings.TrimSpace(r))
		}
		sort.Strings(out)
		return out
	}
	if cur.Ttl != d.Ttl || !slices.Equal(norm(cur.Rrdatas), norm(d.Rrdatas)) || (cur.RoutingPolicy == nil) != (d.RoutingPolicy == nil) {
		return false
	}
	if cur.RoutingPolicy == nil {
		return true
	}
	a, b := cur.RoutingPolicy.Wrr, d.RoutingPolicy.Wrr
	if a == nil || b == nil || len(a.Items) != len(b.Items) {
		return false
	}
	for i := range a.Items {
		if a.Items[i].Weight != b.Items[i].Weight || !slices.Equal(norm(a.Items[i].Rrdatas), norm(b.Items[i].Rrdatas)) {
			return false
		}
	}
	return true
}

// --- helpers ---

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func keyOf(s *dnsv1.ResourceRecordSet) key { return key{fqdn(s.Name), strings.ToUpper(s.Type)} }

func cloneSet(s *dnsv1.ResourceRecordSet) *dnsv1.ResourceRecordSet {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a record set always encodes
	}
	var out dnsv1.ResourceRecordSet
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

func cloneList(l []*dnsv1.ResourceRecordSet) []*dnsv1.ResourceRecordSet {
	out := make([]*dnsv1.ResourceRecordSet, 0, len(l))
	for _, s := range l {
		if s != nil {
			out = append(out, cloneSet(s))
		}
	}
	return out
}

func clone(m map[key]*dnsv1.ResourceRecordSet) map[key]*dnsv1.ResourceRecordSet {
	out := make(map[key]*dnsv1.ResourceRecordSet, len(m))
	for k, s := range m {
		out[k] = s // stored sets are never changed in place
	}
	return out
}

func withKind(s *dnsv1.ResourceRecordSet) *dnsv1.ResourceRecordSet {
	s.Kind = "dns#resourceRecordSet"
	if p := s.RoutingPolicy; p != nil {
		p.Kind = "dns#rRSetRoutingPolicy"
		if p.Wrr != nil {
			p.Wrr.Kind = "dns#rRSetRoutingPolicyWrrPolicy"
			for _, it := range p.Wrr.Items {
				it.Kind = "dns#rRSetRoutingPolicyWrrPolicyWrrPolicyItem"
			}
		}
	}
	return s
}

func withKinds(l []*dnsv1.ResourceRecordSet) []*dnsv1.ResourceRecordSet {
	for _, s := range l {
		withKind(s)
	}
	return l
}

func sortedSets(m map[key]*dnsv1.ResourceRecordSet) []*dnsv1.ResourceRecordSet {
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].typ < keys[j].typ
	})
	out := make([]*dnsv1.ResourceRecordSet, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}
