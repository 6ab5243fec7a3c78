package azurednsemu

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns"
)

// APIVersion is the api-version armdns v1.2.0 sends.
const APIVersion = "2018-05-01"

// Azure DNS limits the emulator enforces.
const (
	MaxRecordsPerRecordSet = 20
	MaxRecordSets          = 10000
	MaxMetadata            = 50
	MaxMetadataKey         = 512
	MaxMetadataValue       = 256
	MaxTTL                 = math.MaxInt32
	// MaxTXT bounds one TXT record's strings, together.
	MaxTXT = 4096
	// DefaultTop and MaxTop are the list page sizes ($top).
	DefaultTop = 100
	MaxTop     = 1000
	// maxBody bounds a request body.
	maxBody = 1 << 20
)

// Operations, for Fail.
const (
	OpGet    = "get"
	OpPut    = "put"
	OpPatch  = "patch"
	OpDelete = "delete"
	OpList   = "list"
)

// Fault is an injectable failure of one request.
type Fault string

const (
	// Throttle answers 429 TooManyRequests with Retry-After (Options.RetryAfter), as Resource Manager throttles.
	Throttle Fault = "throttle"
	// ServerError answers 500 InternalServerError.
	ServerError Fault = "server"
	// Unavailable answers 503 ServiceUnavailable.
	Unavailable Fault = "unavailable"
	// Concurrent makes another writer change the addressed record set (its etag) just before the request is
	// served: a PUT, PATCH or DELETE with the If-Match the client read fails with 412. On a record set that does
	// not exist it answers 412 as if another writer had created it.
	Concurrent Fault = "concurrent"
)

// Options tune the emulator.
type Options struct {
	// RetryAfter is what throttling advertises: Retry-After in whole seconds, rounded up, and retry-after-ms (which
	// the SDK prefers). Zero sends "Retry-After: 0", so clients use their own delay.
	RetryAfter time.Duration
	// Now is the clock of the change log (default time.Now).
	Now func() time.Time
}

// RecordSet is an inspector's (and Plant's) view of one record set.
type RecordSet struct {
	// Name is relative to the zone ("web", "@" for the apex).
	Name string
	// Type is "A", "AAAA", "CNAME" or "TXT".
	Type     string
	TTL      int64
	A, AAAA  []string
	CNAME    string
	TXT      [][]string
	Metadata map[string]string
	Etag     string
}

// Records are the record set's records as text (IPs, the CNAME target, TXT strings joined).
func (rs RecordSet) Records() []string {
	switch rs.Type {
	case "A":
		return slices.Clone(rs.A)
	case "AAAA":
		return slices.Clone(rs.AAAA)
	case "CNAME":
		if rs.CNAME == "" {
			return nil
		}
		return []string{rs.CNAME}
	}
	var out []string
	for _, t := range rs.TXT {
		out = append(out, strings.Join(t, ""))
	}
	return out
}

func (rs RecordSet) clone() RecordSet {
	c := rs
	c.A, c.AAAA = slices.Clone(rs.A), slices.Clone(rs.AAAA)
	c.TXT = nil
	for _, t := range rs.TXT {
		c.TXT = append(c.TXT, slices.Clone(t))
	}
	if rs.Metadata != nil {
		c.Metadata = make(map[string]string, len(rs.Metadata))
		for k, v := range rs.Metadata {
			c.Metadata[k] = v
		}
	}
	return c
}

// Change is one change of the zone.
type Change struct {
	At time.Time
	// Op is "create", "update" or "delete".
	Op   string
	Name string
	Type string
	// Set is the record set after the change (before it, for a delete).
	Set RecordSet
	// By is "api", "plant" or "concurrent" (a Concurrent fault).
	By string
}

// Request is one request received.
type Request struct {
	Op          string
	Method      string
	Path        string
	Query       string
	IfMatch     string
	IfNoneMatch string
	Body        json.RawMessage
}

type key struct{ name, typ string }

// Emulator is the record set API of one zone. It is an http.Handler; serve it with httptest.NewTLSServer.
type Emulator struct {
	sub, rg, zone string
	opts          Options

	mu       sync.Mutex
	sets     map[key]*RecordSet
	faults   map[string][]Fault
	changes  []Change
	requests []Request
	etags    uint64
	rotation map[key]int
}

// New makes the emulator of zone (its DNS name, "example.com") in resourceGroup of subscription, empty.
func New(subscription, resourceGroup, zone string, opts Options) *Emulator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Emulator{sub: subscription, rg: resourceGroup, zone: strings.ToLower(strings.TrimSuffix(zone, ".")),
		opts: opts, sets: map[key]*RecordSet{}, faults: map[string][]Fault{}, rotation: map[key]int{}}
}

// Zone is the zone's DNS name without its dot.
func (e *Emulator) Zone() string { return e.zone }

// Fail queues faults for the next requests of op (OpGet, OpPut, OpPatch, OpDelete, OpList), one each, in order.
func (e *Emulator) Fail(op string, faults ...Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults[op] = append(e.faults[op], faults...)
}

// Pending is how many queued faults of op are left.
func (e *Emulator) Pending(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.faults[op])
}

// Plant writes a record set by hand, as someone other than berth would (it replaces one of the same name and
// type). It enforces the API's rules and returns what the API would refuse.
func (e *Emulator) Plant(rs RecordSet) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs.Name = strings.ToLower(rs.Name)
	rs.Type = strings.ToUpper(rs.Type)
	if _, _, msg := e.check(rs); msg != "" {
		return fmt.Errorf("azurednsemu: plant %s %s: %s", rs.Type, rs.Name, msg)
	}
	e.write(rs, "plant")
	return nil
}

// RecordSets is every record set, sorted by name and type.
func (e *Emulator) RecordSets() []RecordSet {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sorted("")
}

// Get returns the record set name (relative) of typ.
func (e *Emulator) Get(name, typ string) (RecordSet, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs, ok := e.sets[key{strings.ToLower(name), strings.ToUpper(typ)}]
	if !ok {
		return RecordSet{}, false
	}
	return rs.clone(), true
}

// Changes is the change log, oldest first.
func (e *Emulator) Changes() []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Change, len(e.changes))
	for i, c := range e.changes {
		c.Set = c.Set.clone()
		out[i] = c
	}
	return out
}

// Requests are the requests received, oldest first.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// ResetRequests forgets the requests received.
func (e *Emulator) ResetRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = nil
}

func (e *Emulator) sorted(typ string) []RecordSet {
	var out []RecordSet
	for _, rs := range e.sets {
		if typ == "" || rs.Type == typ {
			out = append(out, rs.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Type < out[j].Type
	})
	return out
}

func (e *Emulator) newEtag() string {
	e.etags++
	n := e.etags
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(n*2654435761), uint16(n), n%0x1000, (n*7)%0x1000, n)
}

// write stores rs with a new etag and logs the change. e.mu is held.
func (e *Emulator) write(rs RecordSet, by string) RecordSet {
	k := key{rs.Name, rs.Type}
	op := "create"
	if _, ok := e.sets[k]; ok {
		op = "update"
	}
	rs.Etag = e.newEtag()
	stored := rs.clone()
	e.sets[k] = &stored
	e.changes = append(e.changes, Change{At: e.opts.Now(), Op: op, Name: rs.Name, Type: rs.Type, Set: rs.clone(), By: by})
	return rs
}

var (
	labelRE   = regexp.MustCompile(`^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$`)
	hostLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
	metaKeyRE = regexp.MustCompile(`^[A-Za-z_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)
)

// validName checks a relative record set name. "" is fine for "@".
func (e *Emulator) validName(name string) string {
	if name == "@" {
		return ""
	}
	if len(name)+1+len(e.zone) > 253 {
		return fmt.Sprintf("The record set name '%s' is too long: the fully qualified name can have at most 253 characters.", name)
	}
	for _, l := range strings.Split(name, ".") {
		if !labelRE.MatchString(l) {
			return fmt.Sprintf("The record set name '%s' is invalid: each label must be 1 to 63 letters, digits, '-' or '_'.", name)
		}
	}
	return ""
}

func validHost(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// check validates rs against the API's rules and the zone: the HTTP status and code to refuse it with, or "".
// e.mu is held.
func (e *Emulator) check(rs RecordSet) (int, string, string) {
	bad := func(format string, args ...any) (int, string, string) {
		return http.StatusBadRequest, "BadRequest", fmt.Sprintf(format, args...)
	}
	if msg := e.validName(rs.Name); msg != "" {
		return bad("%s", msg)
	}
	if rs.TTL < 0 || rs.TTL > MaxTTL {
		return bad("The TTL %d is out of range: it must be between 0 and %d.", rs.TTL, MaxTTL)
	}
	n := 0
	switch rs.Type {
	case "A":
		for _, ip := range rs.A {
			if p := net.ParseIP(ip); p == nil || p.To4() == nil || strings.Contains(ip, ":") {
				return bad("The IPv4 address '%s' is invalid.", ip)
			}
		}
		n = len(rs.A)
	case "AAAA":
		for _, ip := range rs.AAAA {
			if p := net.ParseIP(ip); p == nil || !strings.Contains(ip, ":") {
				return bad("The IPv6 address '%s' is invalid.", ip)
			}
		}
		n = len(rs.AAAA)
	case "CNAME":
		if rs.CNAME != "" && !validHost(rs.CNAME) {
			return bad("The domain name '%s' is invalid.", rs.CNAME)
		}
	case "TXT":
		for _, t := range rs.TXT {
			l := 0
			for _, s := range t {
				l += len(s)
			}
			if l > MaxTXT {
				return bad("A TXT record can have at most %d characters.", MaxTXT)
			}
		}
		n = len(rs.TXT)
	default:
		return bad("The record type '%s' is not supported by this emulator.", rs.Type)
	}
	if n > MaxRecordsPerRecordSet {
		return bad("The record set has %d records; the maximum number of records in a record set is %d.", n, MaxRecordsPerRecordSet)
	}
	if len(rs.Metadata) > MaxMetadata {
		return bad("The record set has %d metadata entries; at most %d are allowed.", len(rs.Metadata), MaxMetadata)
	}
	seen := map[string]bool{}
	for k, v := range rs.Metadata {
		switch {
		case len(k) > MaxMetadataKey || !metaKeyRE.MatchString(k):
			return bad("The metadata key '%s' is invalid: it must be at most %d letters, digits, '_', '-' or '.', start with a letter or '_' and end with a letter, digit or '_'.", k, MaxMetadataKey)
		case len(v) > MaxMetadataValue:
			return bad("The metadata value of '%s' is too long: at most %d characters are allowed.", k, MaxMetadataValue)
		case seen[strings.ToLower(k)]:
			return bad("The metadata key '%s' appears twice (keys are case-insensitive).", k)
		}
		seen[strings.ToLower(k)] = true
	}
	// A CNAME is alone at its name.
	for k := range e.sets {
		if k.name != rs.Name || k.typ == rs.Type {
			continue
		}
		if rs.Type == "CNAME" {
			return http.StatusConflict, "Conflict", "The CNAME record could not be created because another record with the same name already exists in this zone."
		}
		if k.typ == "CNAME" {
			return http.StatusConflict, "Conflict", "The record could not be created because a CNAME record with the same name already exists in this zone."
		}
	}
	if _, ok := e.sets[key{rs.Name, rs.Type}]; !ok && len(e.sets) >= MaxRecordSets {
		return http.StatusConflict, "MaxRecordSetsReached", fmt.Sprintf("The zone already has the maximum number of record sets (%d).", MaxRecordSets)
	}
	return 0, "", ""
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-error-code", code)
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

// route is a parsed request.
type route struct {
	op         string
	sub, rg    string
	zone       string
	list       string // "recordsets", "all", or a type for a list by type
	typ, name  string
	methodOK   bool
	recordPath bool
}

var types = map[string]string{"A": "A", "AAAA": "AAAA", "CNAME": "CNAME", "TXT": "TXT"}

func parse(method, rawPath string) (route, bool) {
	p := strings.Split(strings.Trim(rawPath, "/"), "/")
	for i := range p {
		if s, err := url.PathUnescape(p[i]); err == nil {
			p[i] = s
		}
	}
	eq := strings.EqualFold
	if len(p) < 9 || !eq(p[0], "subscriptions") || !eq(p[2], "resourceGroups") || !eq(p[4], "providers") ||
		!eq(p[5], "Microsoft.Network") || !eq(p[6], "dnsZones") {
		return route{}, false
	}
	r := route{sub: p[1], rg: p[3], zone: strings.ToLower(strings.TrimSuffix(p[7], "."))}
	switch len(p) {
	case 9:
		r.op, r.methodOK = OpList, method == http.MethodGet
		switch {
		case eq(p[8], "recordsets"):
			r.list = "recordsets"
		case eq(p[8], "all"):
			r.list = "all"
		default:
			r.list = strings.ToUpper(p[8])
		}
		return r, true
	case 10:
		r.typ, r.name, r.recordPath = strings.ToUpper(p[8]), strings.ToLower(p[9]), true
		switch method {
		case http.MethodGet:
			r.op = OpGet
		case http.MethodPut:
			r.op = OpPut
		case http.MethodPatch:
			r.op = OpPatch
		case http.MethodDelete:
			r.op = OpDelete
		}
		r.methodOK = r.op != ""
		return r, true
	}
	return route{}, false
}

// ServeHTTP serves the record set API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		armError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content could not be read or is too large.")
		return
	}
	rt, ok := parse(r.Method, r.URL.EscapedPath())
	e.mu.Lock()
	defer e.mu.Unlock()
	req := Request{Op: rt.op, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match")}
	if len(body) > 0 {
		req.Body = compact(body)
	}
	e.requests = append(e.requests, req)

	if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !found || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common"`)
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	if !ok {
		armError(w, http.StatusNotFound, "InvalidResourceType", fmt.Sprintf("The resource type could not be found for the path '%s'.", r.URL.Path))
		return
	}
	if !rt.methodOK {
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("The method '%s' is not allowed on '%s'.", r.Method, r.URL.Path))
		return
	}
	switch v := r.URL.Query().Get("api-version"); {
	case v == "":
		armError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	case v != APIVersion:
		armError(w, http.StatusBadRequest, "InvalidApiVersionParameter", fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", v, APIVersion))
		return
	}
	if !strings.EqualFold(rt.sub, e.sub) {
		armError(w, http.StatusNotFound, "SubscriptionNotFound", fmt.Sprintf("The subscription '%s' could not be found.", rt.sub))
		return
	}
	if !strings.EqualFold(rt.rg, e.rg) {
		armError(w, http.StatusNotFound, "ResourceGroupNotFound", fmt.Sprintf("Resource group '%s' could not be found.", rt.rg))
		return
	}
	if rt.zone != e.zone {
		armError(w, http.StatusNotFound, "ParentResourceNotFound", fmt.Sprintf("Can not perform requested operation on nested resource. Parent resource '%s' not found.", rt.zone))
		return
	}
	if q := e.faults[rt.op]; len(q) > 0 {
		f := q[0]
		e.faults[rt.op] = q[1:]
		if e.fault(w, rt, f) {
			return
		}
	}
	switch rt.op {
	case OpList:
		e.list(w, r, rt)
	case OpGet:
		e.get(w, rt)
	case OpPut, OpPatch:
		e.put(w, r, rt, body)
	case OpDelete:
		e.del(w, r, rt)
	}
}

// fault applies f; true when it answered the request.
func (e *Emulator) fault(w http.ResponseWriter, rt route, f Fault) bool {
	switch f {
	case Throttle:
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.opts.RetryAfter.Seconds()))))
		if e.opts.RetryAfter > 0 {
			w.Header().Set("retry-after-ms", strconv.FormatInt(e.opts.RetryAfter.Milliseconds(), 10))
		}
		armError(w, http.StatusTooManyRequests, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - "+
			strings.ToUpper(rt.op[:1])+rt.op[1:]+". Please try again after the time given in the Retry-After header.")
		return true
	case ServerError:
		armError(w, http.StatusInternalServerError, "InternalServerError", "Encountered internal server error. Diagnostic information: timestamp '"+e.opts.Now().UTC().Format(time.RFC3339)+"'.")
		return true
	case Unavailable:
		armError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable. Please try again later.")
		return true
	case Concurrent:
		if !rt.recordPath {
			return false
		}
		if rs, ok := e.sets[key{rt.name, rt.typ}]; ok {
			e.write(rs.clone(), "concurrent")
			return false
		}
		armError(w, http.StatusPreconditionFailed, "PreconditionFailed", "The record set has been modified (etag mismatch).")
		return true
	}
	return false
}

func (e *Emulator) id(name, typ string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/dnszones/%s/%s/%s", e.sub, e.rg, e.zone, typ, name)
}

func (e *Emulator) fqdn(name string) string {
	if name == "@" {
		return e.zone + "."
	}
	return name + "." + e.zone + "."
}

// wire is rs as the API shows it.
func (e *Emulator) wire(rs *RecordSet) armdns.RecordSet {
	p := &armdns.RecordSetProperties{TTL: to.Ptr(rs.TTL), Fqdn: to.Ptr(e.fqdn(rs.Name)), ProvisioningState: to.Ptr("Succeeded"),
		Metadata: map[string]*string{}}
	for k, v := range rs.Metadata {
		p.Metadata[k] = to.Ptr(v)
	}
	switch rs.Type {
	case "A":
		p.ARecords = []*armdns.ARecord{}
		for _, ip := range rs.A {
			p.ARecords = append(p.ARecords, &armdns.ARecord{IPv4Address: to.Ptr(ip)})
		}
	case "AAAA":
		p.AaaaRecords = []*armdns.AaaaRecord{}
		for _, ip := range rs.AAAA {
			p.AaaaRecords = append(p.AaaaRecords, &armdns.AaaaRecord{IPv6Address: to.Ptr(ip)})
		}
	case "CNAME":
		if rs.CNAME != "" {
			p.CnameRecord = &armdns.CnameRecord{Cname: to.Ptr(rs.CNAME)}
		}
	case "TXT":
		p.TxtRecords = []*armdns.TxtRecord{}
		for _, t := range rs.TXT {
			p.TxtRecords = append(p.TxtRecords, &armdns.TxtRecord{Value: to.SliceOfPtrs(t...)})
		}
	}
	return armdns.RecordSet{ID: to.Ptr(e.id(rs.Name, rs.Type)), Name: to.Ptr(rs.Name), Etag: to.Ptr(rs.Etag),
		Type: to.Ptr("Microsoft.Network/dnszones/" + rs.Type), Properties: p}
}

func (e *Emulator) notFound(w http.ResponseWriter, rt route) {
	armError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The resource record '%s' does not exist in resource group '%s' of subscription '%s'.", rt.name, e.rg, e.sub))
}

func (e *Emulator) get(w http.ResponseWriter, rt route) {
	if _, ok := types[rt.typ]; !ok {
		armError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The record type '%s' is not supported by this emulator.", rt.typ))
		return
	}
	rs, ok := e.sets[key{rt.name, rt.typ}]
	if !ok {
		e.notFound(w, rt)
		return
	}
	w.Header().Set("ETag", rs.Etag)
	writeJSON(w, http.StatusOK, e.wire(rs))
}

// fromWire reads a request's record set into rs (PATCH: only the fields given).
func fromWire(in armdns.RecordSet, rs *RecordSet, patch bool) string {
	p := in.Properties
	if p == nil {
		if patch {
			return ""
		}
		return "The record set properties are required."
	}
	if p.TTL != nil {
		rs.TTL = *p.TTL
	} else if !patch {
		return "The TTL of the record set is required."
	}
	if p.Metadata != nil || !patch {
		rs.Metadata = map[string]string{}
		for k, v := range p.Metadata {
			if v != nil {
				rs.Metadata[k] = *v
			} else {
				rs.Metadata[k] = ""
			}
		}
	}
	other := func(typ string, present bool) string {
		if present && rs.Type != typ {
			return fmt.Sprintf("The record set of type '%s' cannot contain %s records.", rs.Type, typ)
		}
		return ""
	}
	for _, o := range []struct {
		typ     string
		present bool
	}{{"A", p.ARecords != nil}, {"AAAA", p.AaaaRecords != nil}, {"CNAME", p.CnameRecord != nil}, {"TXT", p.TxtRecords != nil},
		{"MX", p.MxRecords != nil}, {"NS", p.NsRecords != nil}, {"PTR", p.PtrRecords != nil}, {"SRV", p.SrvRecords != nil},
		{"CAA", p.CaaRecords != nil}, {"SOA", p.SoaRecord != nil}} {
		if msg := other(o.typ, o.present); msg != "" {
			return msg
		}
	}
	if p.TargetResource != nil && p.TargetResource.ID != nil {
		return "Alias record sets (targetResource) are not supported by this emulator."
	}
	switch rs.Type {
	case "A":
		if p.ARecords != nil || !patch {
			rs.A = nil
			for _, a := range p.ARecords {
				if a == nil || a.IPv4Address == nil {
					return "An A record must have an IPv4 address."
				}
				rs.A = append(rs.A, *a.IPv4Address)
			}
		}
	case "AAAA":
		if p.AaaaRecords != nil || !patch {
			rs.AAAA = nil
			for _, a := range p.AaaaRecords {
				if a == nil || a.IPv6Address == nil {
					return "An AAAA record must have an IPv6 address."
				}
				rs.AAAA = append(rs.AAAA, *a.IPv6Address)
			}
		}
	case "CNAME":
		if p.CnameRecord != nil || !patch {
			rs.CNAME = ""
			if p.CnameRecord != nil && p.CnameRecord.Cname != nil {
				rs.CNAME = *p.CnameRecord.Cname
			}
		}
	case "TXT":
		if p.TxtRecords != nil || !patch {
			rs.TXT = nil
			for _, t := range p.TxtRecords {
				if t == nil {
					return "A TXT record must have a value."
				}
				var ss []string
				for _, s := range t.Value {
					if s != nil {
						ss = append(ss, *s)
					}
				}
				rs.TXT = append(rs.TXT, ss)
			}
		}
	}
	return ""
}

func (e *Emulator) put(w http.ResponseWriter, r *http.Request, rt route, body []byte) {
	if _, ok := types[rt.typ]; !ok {
		armError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The record type '%s' is not supported by this emulator.", rt.typ))
		return
	}
	var in armdns.RecordSet
	if err := json.Unmarshal(body, &in); err != nil {
		armError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "+err.Error())
		return
	}
	k := key{rt.name, rt.typ}
	cur, exists := e.sets[k]
	ifMatch, ifNone := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	switch {
	case ifMatch != "" && !exists:
		armError(w, http.StatusPreconditionFailed, "PreconditionFailed", fmt.Sprintf("The record set '%s' of type '%s' does not exist, so the If-Match precondition failed.", rt.name, rt.typ))
		return
	case ifMatch != "" && ifMatch != "*" && ifMatch != cur.Etag:
		armError(w, http.StatusPreconditionFailed, "PreconditionFailed", fmt.Sprintf("The etag '%s' in the If-Match header does not match the record set's current etag.", ifMatch))
		return
	case ifNone == "*" && exists && rt.op == OpPut:
		armError(w, http.StatusPreconditionFailed, "PreconditionFailed", fmt.Sprintf("The record set '%s' of type '%s' already exists (If-None-Match: *).", rt.name, rt.typ))
		return
	}
	rs := RecordSet{Name: rt.name, Type: rt.typ}
	if rt.op == OpPatch {
		if !exists {
			e.notFound(w, rt)
			return
		}
		rs = cur.clone()
	}
	if msg := fromWire(in, &rs, rt.op == OpPatch); msg != "" {
		armError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	if status, code, msg := e.check(rs); status != 0 {
		armError(w, status, code, msg)
		return
	}
	stored := e.write(rs, "api")
	w.Header().Set("ETag", stored.Etag)
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	writeJSON(w, status, e.wire(&stored))
}

func (e *Emulator) del(w http.ResponseWriter, r *http.Request, rt route) {
	if _, ok := types[rt.typ]; !ok {
		armError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The record type '%s' is not supported by this emulator.", rt.typ))
		return
	}
	k := key{rt.name, rt.typ}
	cur, exists := e.sets[k]
	ifMatch := r.Header.Get("If-Match")
	if !exists {
		if ifMatch != "" && ifMatch != "*" {
			armError(w, http.StatusPreconditionFailed, "PreconditionFailed", fmt.Sprintf("The record set '%s' of type '%s' does not exist, so the If-Match precondition failed.", rt.name, rt.typ))
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != cur.Etag {
		armError(w, http.StatusPreconditionFailed, "PreconditionFailed", fmt.Sprintf("The etag '%s' in the If-Match header does not match the record set's current etag.", ifMatch))
		return
	}
	delete(e.sets, k)
	e.changes = append(e.changes, Change{At: e.opts.Now(), Op: "delete", Name: cur.Name, Type: cur.Type, Set: cur.clone(), By: "api"})
	w.WriteHeader(http.StatusOK)
}

func (e *Emulator) list(w http.ResponseWriter, r *http.Request, rt route) {
	q := r.URL.Query()
	typ := ""
	if rt.list != "recordsets" && rt.list != "all" {
		if _, ok := types[rt.list]; !ok {
			armError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The record type '%s' is not supported by this emulator.", rt.list))
			return
		}
		typ = rt.list
	}
	top := DefaultTop
	if s := q.Get("$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxTop {
			armError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The $top value '%s' is invalid: it must be between 1 and %d.", s, MaxTop))
			return
		}
		top = n
	}
	skip := 0
	if s := q.Get("$skipToken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			armError(w, http.StatusBadRequest, "BadRequest", "The $skipToken is invalid.")
			return
		}
		skip = n
	}
	suffix := strings.ToLower(strings.TrimSuffix(q.Get("$recordsetnamesuffix"), "."))
	var all []RecordSet
	for _, rs := range e.sorted(typ) {
		if suffix == "" || strings.HasSuffix(rs.Name, "."+suffix) || rs.Name == suffix {
			all = append(all, rs)
		}
	}
	out := armdns.RecordSetListResult{Value: []*armdns.RecordSet{}}
	for i := skip; i < len(all) && i < skip+top; i++ {
		v := e.wire(&all[i])
		out.Value = append(out.Value, &v)
	}
	if skip+top < len(all) {
		next := *r.URL
		next.Scheme, next.Host = "http", r.Host
		if r.TLS != nil {
			next.Scheme = "https"
		}
		nq := next.Query()
		nq.Set("$skipToken", strconv.Itoa(skip+top))
		next.RawQuery = nq.Encode()
		out.NextLink = to.Ptr(next.String())
	}
	writeJSON(w, http.StatusOK, out)
}

func compact(b []byte) json.RawMessage {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return json.RawMessage(strconv.Quote(string(b)))
	}
	out, _ := json.Marshal(v)
	return out
}
