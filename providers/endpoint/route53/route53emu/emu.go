package route53emu

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/berth-dev/berth/providers/endpoint/dnstest"
)

// Operation names, as Fail takes them.
const (
	OpChange    = "ChangeResourceRecordSets"
	OpList      = "ListResourceRecordSets"
	OpGetChange = "GetChange"
	OpGetZone   = "GetHostedZone"
	// OpDNS faults make the DNS server answer SERVFAIL (the Fault's HTTP fields are ignored).
	OpDNS = "DNS"
)

// Limits of Route 53 the emulator keeps.
const (
	MaxWeight          = 255
	MaxTTL             = 2147483647
	MaxValuesPerBatch  = 1000
	MaxCharsPerBatch   = 32000
	MaxListItems       = 300
	DefaultListItems   = 100
	MaxTXTString       = 255
	DefaultPendingPoll = 1
)

// Options shape an emulator. The zero value is usable.
type Options struct {
	// ZoneID is the hosted zone's ID ("Z0123..."); default: one derived from the zone name.
	ZoneID string
	// PendingPolls is how many GetChange calls answer PENDING for each change before INSYNC; default
	// DefaultPendingPoll; negative: none (INSYNC at once).
	PendingPolls int
	// PendingFor is how long each change stays PENDING at least (with Now).
	PendingFor time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Seed seeds the choice among weighted records in DNS answers.
	Seed uint64
}

// RecordSet is one resource record set, as Route 53 holds it.
type RecordSet struct {
	Name          string // fully qualified, lower case, with its dot
	Type          string
	SetIdentifier string
	Weight        *int64 // set for weighted record sets only
	TTL           int64
	Values        []string
}

// Change is one change of a batch the emulator applied.
type Change struct {
	Time          time.Time
	ChangeID      string // "C..." (without /change/)
	Action        string // CREATE, DELETE, UPSERT
	Name          string
	Type          string
	SetIdentifier string
	Weight        *int64
	TTL           int64
	Values        []string
}

// Fault is an error the emulator answers one request with instead of serving it.
type Fault struct {
	Status  int
	Code    string
	Message string
	// Applied serves the request first, then answers with the fault: an answer lost after Route 53 acted on the
	// request (a change applied, yet the client sees a 5xx and tries again).
	Applied bool
}

// Throttling is Route 53's answer to too many requests: 400 Throttling "Rate exceeded".
func Throttling() Fault { return Fault{Status: 400, Code: "Throttling", Message: "Rate exceeded"} }

// PriorRequestNotComplete is Route 53's answer while it still processes an earlier request of the zone.
func PriorRequestNotComplete() Fault {
	return Fault{Status: 400, Code: "PriorRequestNotComplete",
		Message: "The request was rejected because Route 53 was still processing a prior request."}
}

// ServerError is a 500 InternalFailure.
func ServerError() Fault {
	return Fault{Status: 500, Code: "InternalFailure", Message: "An internal error occurred."}
}

// Unavailable is a 503 ServiceUnavailable.
func Unavailable() Fault {
	return Fault{Status: 503, Code: "ServiceUnavailable", Message: "Service is unavailable. Please try again later."}
}

type key struct{ name, typ, id string }

func (r RecordSet) key() key { return key{r.Name, r.Type, r.SetIdentifier} }

type pendingChange struct {
	id        string
	submitted time.Time
	polls     int
	need      int
	needFor   time.Duration
	batch     []Change
	insync    bool
}

// Emulator is one hosted zone. It is an http.Handler; all methods are safe for concurrent use.
type Emulator struct {
	zone, zoneID string
	now          func() time.Time

	mu         sync.Mutex
	current    map[key]RecordSet // what the API sees
	live       map[key]RecordSet // what DNS answers: the zone as of the newest INSYNC change
	changes    map[string]*pendingChange
	order      []*pendingChange
	log        []Change
	faults     map[string][]Fault
	pending    int
	pendingFor time.Duration
	rng        *rand.Rand
	seq        int
	calls      map[string]int
}

// New builds the emulator of the hosted zone zoneName ("example.com"), holding its apex SOA and NS record sets
// as Route 53 makes them.
func New(zoneName string, opts Options) *Emulator {
	zone := dns.Fqdn(strings.ToLower(zoneName))
	id := opts.ZoneID
	if id == "" {
		sum := sha256.Sum256([]byte(zone))
		id = "Z" + base32.StdEncoding.EncodeToString(sum[:])[:20]
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	pending := opts.PendingPolls
	if pending == 0 {
		pending = DefaultPendingPoll
	}
	if pending < 0 {
		pending = 0
	}
	e := &Emulator{zone: zone, zoneID: id, now: now, current: map[key]RecordSet{}, live: map[key]RecordSet{},
		changes: map[string]*pendingChange{}, faults: map[string][]Fault{}, pending: pending,
		pendingFor: opts.PendingFor, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		calls: map[string]int{}}
	ns := []string{"ns-1.awsdns-01.org.", "ns-2.awsdns-02.co.uk.", "ns-3.awsdns-03.com.", "ns-4.awsdns-04.net."}
	for _, rs := range []RecordSet{
		{Name: zone, Type: "NS", TTL: 172800, Values: ns},
		{Name: zone, Type: "SOA", TTL: 900, Values: []string{ns[0] + " awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}},
	} {
		e.current[rs.key()] = rs
		e.live[rs.key()] = rs
	}
	return e
}

// ZoneID is the hosted zone's ID, without "/hostedzone/".
func (e *Emulator) ZoneID() string { return e.zoneID }

// ZoneName is the zone's name, with its dot.
func (e *Emulator) ZoneName() string { return e.zone }

// Fail queues faults for op (OpChange, OpList, OpGetChange, OpGetZone, OpDNS): each answers one request of op,
// in order, before the emulator serves op again.
func (e *Emulator) Fail(op string, faults ...Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults[op] = append(e.faults[op], faults...)
}

// SetPending makes changes submitted from now on PENDING for n GetChange polls (0: INSYNC at once).
func (e *Emulator) SetPending(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = max(n, 0)
}

// Calls is how many requests of op the emulator received (faults included).
func (e *Emulator) Calls(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op]
}

// Plant puts record sets into the zone as someone else than berth would (the console, another tool): replacing
// sets of the same name, type and identifier, visible to the API and DNS at once, never in Changes. It checks
// what a change batch checks.
func (e *Emulator) Plant(sets ...RecordSet) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	batch := make([]Change, len(sets))
	for i, rs := range sets {
		rs = normalize(rs)
		if msg := e.checkInput(rs, i+1, "UPSERT"); msg != "" {
			return fmt.Errorf("route53emu: plant: %s", msg)
		}
		batch[i] = Change{Action: "UPSERT", Name: rs.Name, Type: rs.Type, SetIdentifier: rs.SetIdentifier,
			Weight: rs.Weight, TTL: rs.TTL, Values: rs.Values}
	}
	work, msgs := e.apply(e.current, batch)
	if len(msgs) > 0 {
		return fmt.Errorf("route53emu: plant: %s", strings.Join(msgs, "; "))
	}
	e.current = work
	live, msgs := e.apply(e.live, batch)
	if len(msgs) > 0 {
		return fmt.Errorf("route53emu: plant (DNS view): %s", strings.Join(msgs, "; "))
	}
	e.live = live
	return nil
}

// Changes is every change applied through the API, oldest first.
func (e *Emulator) Changes() []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Change, len(e.log))
	for i, c := range e.log {
		c.Values = slices.Clone(c.Values)
		out[i] = c
	}
	return out
}

// RecordSets is the zone as the API sees it, in Route 53's order.
func (e *Emulator) RecordSets() []RecordSet {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sortedSets(e.current)
}

// ServeDNS answers DNS queries from the zone (as of the newest INSYNC change) on addr ("127.0.0.1:0"). The caller
// closes the server.
func (e *Emulator) ServeDNS(addr string) (*dnstest.Server, error) {
	return dnstest.Serve(addr, e.answer)
}

func normalize(rs RecordSet) RecordSet {
	rs.Name = dns.Fqdn(strings.ToLower(rs.Name))
	rs.Type = strings.ToUpper(rs.Type)
	rs.Values = slices.Clone(rs.Values)
	return rs
}

// revName is a name with its labels reversed, as Route 53 sorts: "com.example.www.".
func revName(name string) string {
	labels := dns.SplitDomainName(name)
	slices.Reverse(labels)
	return strings.Join(labels, ".") + "."
}

func less(a, b key) int {
	if c := strings.Compare(revName(a.name), revName(b.name)); c != 0 {
		return c
	}
	if c := strings.Compare(a.typ, b.typ); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

func sortedSets(m map[key]RecordSet) []RecordSet {
	out := make([]RecordSet, 0, len(m))
	for _, rs := range m {
		rs.Values = slices.Clone(rs.Values)
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RecordSet) int { return less(a.key(), b.key()) })
	return out
}

func (e *Emulator) inZone(name string) bool {
	return name == e.zone || strings.HasSuffix(name, "."+e.zone)
}

// takeFault pops op's next fault; the caller holds mu.
func (e *Emulator) takeFault(op string) (Fault, bool) {
	e.calls[op]++
	q := e.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	e.faults[op] = q[1:]
	return q[0], true
}

// ready tells whether c may be INSYNC now; the caller holds mu.
func (e *Emulator) ready(c *pendingChange) bool {
	return c.insync || (c.polls >= c.need && e.now().Sub(c.submitted) >= c.needFor)
}

// sync makes every change up to the newest ready one INSYNC and applies them to the DNS view, in order; the caller
// holds mu.
func (e *Emulator) sync() {
	last := -1
	for i, c := range e.order {
		if !c.insync && e.ready(c) {
			last = i
		}
	}
	for _, c := range e.order[:last+1] {
		if c.insync {
			continue
		}
		c.insync = true
		if live, msgs := e.apply(e.live, c.batch); len(msgs) == 0 {
			e.live = live
		} else {
			// A planted set may conflict with a pending change; Route 53 has no such window, so copy the API's view.
			e.live = cloneSets(e.current)
		}
	}
	if last >= 0 {
		e.order = slices.Clone(e.order[last+1:])
	}
}

func cloneSets(m map[key]RecordSet) map[key]RecordSet {
	out := make(map[key]RecordSet, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (e *Emulator) nextID(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s%012dEMU", prefix, e.seq)
}

// ServeHTTP serves the Route 53 API subset.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := e.requestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	path := strings.TrimSuffix(r.URL.Path, "/")
	op, id := "", ""
	switch rest, ok := strings.CutPrefix(path, "/2013-04-01/hostedzone/"); {
	case ok && strings.HasSuffix(rest, "/rrset"):
		id = strings.TrimSuffix(rest, "/rrset")
		switch r.Method {
		case http.MethodPost:
			op = OpChange
		case http.MethodGet:
			op = OpList
		}
	case ok && !strings.Contains(rest, "/") && r.Method == http.MethodGet:
		op, id = OpGetZone, rest
	default:
		if rest, ok := strings.CutPrefix(path, "/2013-04-01/change/"); ok && r.Method == http.MethodGet {
			op, id = OpGetChange, rest
		}
	}
	if op == "" {
		writeError(w, reqID, Fault{Status: 404, Code: "UnknownOperationException",
			Message: fmt.Sprintf("No operation at %s %s", r.Method, r.URL.Path)})
		return
	}
	if f, ok := checkAuth(r); !ok {
		writeError(w, reqID, f)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	f, faulted := e.takeFault(op)
	if faulted && !f.Applied {
		writeError(w, reqID, f)
		return
	}
	if faulted {
		defer writeError(w, reqID, f)
		w = &discard{header: http.Header{}}
	}
	if op != OpGetChange && id != e.zoneID {
		writeError(w, reqID, Fault{Status: 404, Code: "NoSuchHostedZone", Message: "No hosted zone found with ID: " + id})
		return
	}
	switch op {
	case OpChange:
		e.changeRRSets(w, r, reqID)
	case OpList:
		e.listRRSets(w, r, reqID)
	case OpGetChange:
		e.getChange(w, id, reqID)
	case OpGetZone:
		e.getZone(w)
	}
}

func (e *Emulator) requestID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", e.seq)
}

// checkAuth wants a SigV4 Authorization header for the route53 service; it does not verify the signature.
func checkAuth(r *http.Request) (Fault, bool) {
	a := r.Header.Get("Authorization")
	if a == "" {
		return Fault{Status: 403, Code: "MissingAuthenticationToken", Message: "Missing Authentication Token"}, false
	}
	if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, "/route53/aws4_request") {
		return Fault{Status: 403, Code: "IncompleteSignature",
			Message: "Authorization header requires a SigV4 signature for the route53 service"}, false
	}
	return Fault{}, true
}

// discard is a ResponseWriter that drops the answer (Fault.Applied).
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
