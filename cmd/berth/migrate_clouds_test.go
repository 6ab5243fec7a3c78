package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/azuredns"
	"github.com/berth-dev/berth/providers/endpoint/azuredns/azurednsemu"
	"github.com/berth-dev/berth/providers/endpoint/clouddns"
	"github.com/berth-dev/berth/providers/endpoint/clouddns/clouddnsemu"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/providers/endpoint/route53"
	"github.com/berth-dev/berth/providers/endpoint/route53/route53emu"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/reconciler/store"
	"github.com/berth-dev/berth/schema"
)

// The stable name the moves keep, its zone, and the timings of the moves (small, on the real clock).
const (
	moveZone   = "example.com"
	moveName   = "web.example.com"
	moveTTL    = time.Second
	moveDrain  = time.Second
	movePort   = 8080
	moveEnv    = "production"
	moveWL     = "web"
	moveBudget = 60 * time.Second // one subtest's whole run
)

// plantedAddress is the record someone else put at the name before berth came.
const plantedAddress = "192.0.2.10"

// zoneState is what a zone's change log says the name served after one change: each member's weight, by target.
type zoneState struct {
	at      time.Time
	weights map[string]int
}

// answered tells whether target is answered in s: a member of weight > 0, or any member when every weight is 0.
func (s zoneState) answered(target string) bool {
	w, ok := s.weights[target]
	if !ok {
		return false
	}
	if w > 0 {
		return true
	}
	for _, x := range s.weights {
		if x > 0 {
			return false
		}
	}
	return true
}

// dnsZone is one DNS emulator (its API over HTTP and its DNS port) and what the test needs of it, whatever the
// provider.
type dnsZone struct {
	kind    string
	entry   string // the CUE of the `dns:` entry
	url     string // the API's base URL, the entry's endpoint
	dnsAddr string
	// plant puts a record berth did not write at the name.
	plant func() error
	// records is the zone as its API sees it, as text.
	records func() string
	// log is the change log decoded into the name's states, oldest first; apiChanges counts the changes made
	// through the API (not planted).
	log        func() []zoneState
	apiChanges func() int
	// fail queues throttling and 5xx answers on the API; left says how many are still queued (-1: the emulator
	// cannot tell).
	fail func()
	left func() int
	// router builds the router of the entry with the SDK on this emulator and short retries.
	router func(schema.Target, endpoint.Options) (endpoint.Router, error)
}

func newDNSZone(t *testing.T, kind string) *dnsZone {
	t.Helper()
	z := &dnsZone{kind: kind}
	switch kind {
	case "route53":
		emu := route53emu.New(moveZone, route53emu.Options{})
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		z.url = srv.URL
		z.entry = fmt.Sprintf(`{type: "route53", zoneId: %q, endpoint: %q}`, emu.ZoneID(), srv.URL)
		z.plant = func() error {
			return emu.Plant(route53emu.RecordSet{Name: moveName, Type: "A", TTL: 300, Values: []string{plantedAddress}})
		}
		z.records = func() string { return fmt.Sprint(emu.RecordSets()) }
		z.apiChanges = func() int { return len(emu.Changes()) }
		z.log = func() []zoneState { return route53States(emu.Changes()) }
		var queued int
		z.fail = func() {
			emu.Fail(route53emu.OpChange, route53emu.Throttling(), route53emu.ServerError(), route53emu.Unavailable())
			emu.Fail(route53emu.OpList, route53emu.Throttling(), route53emu.Unavailable())
			emu.Fail(route53emu.OpGetChange, route53emu.ServerError())
			queued = emu.Calls(route53emu.OpChange) + 3
		}
		z.left = func() int { return max(queued-emu.Calls(route53emu.OpChange), 0) }
		z.router = func(tg schema.Target, o endpoint.Options) (endpoint.Router, error) {
			r, err := endpoint.New(tg, o)
			if err != nil {
				return nil, err
			}
			rr := r.(*route53.Router)
			rr.RetryBase, rr.RetryMax, rr.PollInterval, rr.PollMax = 5*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond
			return rr, nil
		}
		d, err := emu.ServeDNS("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		z.dnsAddr = d.Addr()
	case "clouddns":
		emu := clouddnsemu.New("berth-dns", "example-com", moveZone+".", clouddnsemu.Options{Pending: 1})
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		key, err := emu.ServiceAccountKey(srv.URL, "berth@berth-dns.iam.gserviceaccount.com")
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "dns-key.json")
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
		z.url = srv.URL
		z.entry = fmt.Sprintf(`{type: "clouddns", project: "berth-dns", zone: "example-com", credentialsFile: %q, endpoint: %q}`,
			keyFile, srv.URL)
		z.plant = func() error {
			return emu.Plant(&dnsv1.ResourceRecordSet{Name: moveName + ".", Type: "A", Ttl: 300, Rrdatas: []string{plantedAddress}})
		}
		z.records = func() string {
			var b strings.Builder
			for _, s := range emu.RecordSets() {
				j, _ := s.MarshalJSON()
				b.Write(j)
				b.WriteByte('\n')
			}
			return b.String()
		}
		z.apiChanges = func() int {
			n := 0
			for _, c := range emu.Changes() {
				if !c.Planted {
					n++
				}
			}
			return n
		}
		z.log = func() []zoneState { return cloudDNSStates(emu.Changes()) }
		// A changes.create that met a fault logs no change: the faults were met once the creates outnumber the
		// changes by as many.
		creates := func() int {
			n := 0
			for _, r := range emu.Requests() {
				if r.Method == "POST" && strings.HasSuffix(r.Path, "/changes") {
					n++
				}
			}
			return n
		}
		var creates0, changes0 int
		z.fail = func() {
			creates0, changes0 = creates(), z.apiChanges()
			emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.RateLimited, clouddnsemu.Unavailable, clouddnsemu.Internal)
			emu.Fail(clouddnsemu.OpListRRSets, clouddnsemu.RateLimited, clouddnsemu.Unavailable)
			emu.Fail(clouddnsemu.OpGetChange, clouddnsemu.Internal)
		}
		z.left = func() int { return max(3-((creates()-creates0)-(z.apiChanges()-changes0)), 0) }
		z.router = func(tg schema.Target, o endpoint.Options) (endpoint.Router, error) {
			r, err := clouddns.NewRouter(tg, o)
			if err != nil {
				return nil, err
			}
			r.PollInterval, r.PollMax, r.RetryBase, r.RetryMax = 10*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond, 50*time.Millisecond
			return r, nil
		}
		d, err := emu.ServeDNS("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		z.dnsAddr = d.Addr()
	case "azuredns":
		const sub, rg = "00000000-0000-0000-0000-0000000000d5", "berth-dns"
		emu := azurednsemu.New(sub, rg, moveZone, azurednsemu.Options{})
		srv := httptest.NewTLSServer(emu) // the SDK sends bearer tokens over TLS only
		t.Cleanup(srv.Close)
		z.url = srv.URL
		z.entry = fmt.Sprintf(`{type: "azuredns", subscriptionId: %q, resourceGroup: %q, zone: %q, endpoint: %q}`,
			sub, rg, moveZone, srv.URL)
		z.plant = func() error {
			return emu.Plant(azurednsemu.RecordSet{Name: "web", Type: "A", TTL: 300, A: []string{plantedAddress}})
		}
		z.records = func() string {
			var b strings.Builder
			for _, s := range emu.RecordSets() {
				fmt.Fprintf(&b, "%s %s %d %v %v\n", s.Name, s.Type, s.TTL, s.Records(), s.Metadata)
			}
			return b.String()
		}
		z.apiChanges = func() int {
			n := 0
			for _, c := range emu.Changes() {
				if c.By == "api" {
					n++
				}
			}
			return n
		}
		z.log = func() []zoneState { return azureDNSStates(emu.Changes()) }
		z.fail = func() {
			emu.Fail(azurednsemu.OpPut, azurednsemu.Throttle, azurednsemu.ServerError, azurednsemu.Unavailable)
			emu.Fail(azurednsemu.OpGet, azurednsemu.Throttle, azurednsemu.Unavailable)
		}
		z.left = func() int { return emu.Pending(azurednsemu.OpPut) + emu.Pending(azurednsemu.OpGet) }
		z.router = func(tg schema.Target, o endpoint.Options) (endpoint.Router, error) {
			r, err := azuredns.NewWithCredential(tg, o, staticToken{}, &arm.ClientOptions{ClientOptions: policy.ClientOptions{
				Transport: srv.Client(),
				Retry:     policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
			}})
			if err != nil {
				return nil, err
			}
			r.RetryBase, r.RetryMax = 5*time.Millisecond, 50*time.Millisecond
			return r, nil
		}
		d, err := emu.ServeDNS("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		z.dnsAddr = d.Addr()
	default:
		t.Fatalf("no DNS emulator of kind %s", kind)
	}
	return z
}

// route53States replays Route 53's change log: the weighted CNAMEs at the name, one per member (SetIdentifier is
// the target), one state per change batch.
func route53States(log []route53emu.Change) []zoneState {
	var out []zoneState
	cur := map[string]int{}
	for i, c := range log {
		if c.Name == endpoint.Fqdn(moveName) && c.Type == "CNAME" {
			switch c.Action {
			case "DELETE":
				delete(cur, c.SetIdentifier)
			default:
				w := 0
				if c.Weight != nil {
					w = int(*c.Weight)
				}
				cur[c.SetIdentifier] = w
			}
		}
		if i == len(log)-1 || log[i+1].ChangeID != c.ChangeID {
			out = append(out, zoneState{at: c.Time, weights: cloneWeights(cur)})
		}
	}
	return out
}

// cloudDNSStates replays Cloud DNS's change log: the weighted round robin CNAME at the name, an item per member
// pointing at <target>._berth.<name>.
func cloudDNSStates(log []clouddnsemu.Change) []zoneState {
	var out []zoneState
	cur := map[string]int{}
	at := func(s *dnsv1.ResourceRecordSet) bool {
		return endpoint.Fqdn(s.Name) == endpoint.Fqdn(moveName) && s.Type == "CNAME"
	}
	for _, c := range log {
		for _, s := range c.Deletions {
			if at(s) {
				cur = map[string]int{}
			}
		}
		for _, s := range c.Additions {
			if !at(s) {
				continue
			}
			cur = map[string]int{}
			if s.RoutingPolicy == nil || s.RoutingPolicy.Wrr == nil {
				for _, d := range s.Rrdatas {
					cur[strings.SplitN(d, ".", 2)[0]] = endpoint.MaxWeight
				}
				continue
			}
			for _, it := range s.RoutingPolicy.Wrr.Items {
				for _, d := range it.Rrdatas {
					cur[strings.SplitN(d, ".", 2)[0]] = int(it.Weight)
				}
			}
		}
		out = append(out, zoneState{at: c.Time, weights: cloneWeights(cur)})
	}
	return out
}

// azureDNSStates replays Azure DNS's change log: the members are in the metadata of the record set that answers
// the name (A, AAAA or CNAME), berth_member<i> = "w=<weight>;t=<target>;a=...".
func azureDNSStates(log []azurednsemu.Change) []zoneState {
	var out []zoneState
	byType := map[string]map[string]int{}
	for _, c := range log {
		if !strings.EqualFold(c.Name, "web") {
			continue
		}
		switch {
		case c.Op == "delete":
			delete(byType, c.Type)
		case c.Type == "A" || c.Type == "AAAA" || c.Type == "CNAME":
			ms := map[string]int{}
			for k, v := range c.Set.Metadata {
				k = strings.ToLower(k)
				rest, ok := strings.CutPrefix(k, "berth_member")
				if !ok || strings.Contains(rest, "_") {
					continue
				}
				var target string
				w := -1
				for _, part := range strings.Split(v, ";") {
					key, val, _ := strings.Cut(part, "=")
					switch key {
					case "w":
						w, _ = strconv.Atoi(val)
					case "t":
						target, _ = url.QueryUnescape(val)
					}
				}
				if target != "" && w >= 0 {
					ms[target] = w
				}
			}
			byType[c.Type] = ms
		default:
			continue
		}
		cur := map[string]int{}
		for _, ms := range byType {
			for t, w := range ms {
				cur[t] = max(cur[t], w)
			}
		}
		out = append(out, zoneState{at: c.At, weights: cur})
	}
	return out
}

func cloneWeights(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stoppedAt is when target stopped being answered for the last time within [from, to], from the zone's states;
// false when it was answered at the end (or never).
func stoppedAt(states []zoneState, target string, from, to time.Time) (time.Time, bool) {
	answered := false
	var stop time.Time
	stopped := false
	for _, s := range states {
		now := s.answered(target)
		if s.at.Before(from) || s.at.After(to) {
			answered = now
			continue
		}
		if answered && !now {
			stop, stopped = s.at, true
		}
		if now {
			stopped = false
		}
		answered = now
	}
	return stop, stopped && !answered
}

// moveWorld is one subtest's clouds, DNS zone, engine and store.
type moveWorld struct {
	t        *testing.T
	c        *clouds
	zone     *dnsZone
	instance string
	dir      string
	st       *store.Store
	eng      *reconciler.Engine
	cfg      *schema.Config
	logs     *syncBuffer
	rev      int
	// gcpSick makes every Compute Engine health probe fail (the new copy fails its health check mid-shift).
	gcpSick atomic.Bool

	mu    sync.Mutex
	provs map[string]providers.Provider
	hosts map[string]string // target → the host its copy's public port reports, while the copy lives
}

func newMoveWorld(t *testing.T, kind string) *moveWorld {
	w := &moveWorld{t: t, c: startClouds(t), instance: fmt.Sprintf("mv%d", time.Now().UnixNano()%1_000_000_000),
		dir: t.TempDir(), logs: &syncBuffer{}, provs: map[string]providers.Provider{}, hosts: map[string]string{}}
	w.c.gce.SetHealth(func(computeemu.HealthProbe) bool { return !w.gcpSick.Load() })
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	w.zone = newDNSZone(t, kind)
	eng, err := reconciler.NewEngine(reconciler.Options{Instance: w.instance, Providers: w.c.factory, Background: true,
		Store: st, Routers: w.routers, Logger: slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	w.eng = eng
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", w.logs.String())
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, p := range w.provs {
			if cl, ok := p.(providers.Closer); ok {
				cl.Close()
			}
		}
	})
	return w
}

// zones are the DNS zones by endpoint URL, so that a planted zone and the clean one are told apart.
var zonesByURL sync.Map

func (w *moveWorld) routers(tg schema.Target, o endpoint.Options) (endpoint.Router, error) {
	ep, _ := tg.Settings["endpoint"].(string)
	z, ok := zonesByURL.Load(ep)
	if !ok {
		return nil, fmt.Errorf("no DNS emulator at %q", ep)
	}
	return z.(*dnsZone).router(tg, o)
}

// config writes the repository for provider with the zone z and loads it; line is the line of the endpoint's name.
func (w *moveWorld) config(z *dnsZone, provider string) (line int) {
	w.t.Helper()
	zonesByURL.Store(z.url, z)
	c := w.c
	src := fmt.Sprintf(`targets: {
	aws: {type: "aws", region: "eu-west-1", cluster: "berth-e2e", subnets: ["subnet-0e2e"], endpoint: %q,
		elbv2Endpoint: %q, ec2Endpoint: %q}
	azure: {type: "azure", subscriptionId: "00000000-0000-0000-0000-0000000000e2", resourceGroup: "berth-e2e",
		location: "westeurope", endpoint: %q}
	gcp: {type: "gcp", project: %q, region: %q, endpoint: %q, credentialsFile: %q}
}
dns: zone: %s
environments: %s: {branch: "main"}
workloads: %s: {
	image: %q
	command: ["/app"]
	args: ["serve"]
	provider: %q
	replicas: 1
	health: http: {path: "/healthz", port: %d}
	ports: [{
		port:   %d
		public: true
		endpoint: {
			name:  %q
			dns:   "zone"
			ttl:   %q
			drain: %q
		}
	}]
	migration: {steps: [50, 100], interval: "1s"}
}
`, c.ecs.URL(), c.ecs.URL(), c.ecs.URL(), c.aci.URL(), c.gce.Project(), c.gce.Region(), c.gce.URL(), c.gceKey,
		z.entry, moveEnv, moveWL, exampleImage, provider, movePort, movePort, moveName, moveTTL.String(), moveDrain.String())
	if err := os.WriteFile(filepath.Join(w.dir, "berth.cue"), []byte(src), 0o644); err != nil {
		w.t.Fatal(err)
	}
	cfg, err := schema.Load(w.dir)
	if err != nil {
		w.t.Fatalf("load: %v\n%s", err, src)
	}
	w.cfg = cfg
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "name:") && strings.Contains(l, moveName) {
			return i + 1
		}
	}
	w.t.Fatal("no endpoint name in the configuration")
	return 0
}

func (w *moveWorld) plan(ctx context.Context) *reconciler.Plan {
	w.t.Helper()
	w.rev++
	p, err := w.eng.Plan(ctx, w.cfg, moveEnv, fmt.Sprintf("r%d", w.rev))
	if err != nil {
		w.t.Fatalf("plan: %v", err)
	}
	return p
}

func (w *moveWorld) apply(ctx context.Context) error {
	p := w.plan(ctx)
	_, err := w.eng.Apply(ctx, w.cfg, p)
	return err
}

// owner is the owner of the environment's copies.
func (w *moveWorld) owner() providers.Owner {
	return providers.Owner{Instance: w.instance, Environment: moveEnv}
}

// ready tells whether the copy on target runs and is healthy now, from the cloud emulator's own state (not an
// eventually consistent list), and why not.
func (w *moveWorld) ready(target string) (bool, string) {
	c := w.c
	switch target {
	case "aws":
		active, running := c.ecs.ServiceRunning("berth-e2e", "berth-"+w.instance+"-"+moveEnv+"-"+moveWL)
		if !active || running < 1 {
			return false, fmt.Sprintf("ECS service active %v, %d running", active, running)
		}
		for _, n := range c.ecs.TargetGroupNames() {
			if !strings.HasPrefix(n, "b-"+moveWL+"-") {
				continue
			}
			for _, s := range c.ecs.TargetStates(n) {
				if s == "healthy" {
					return true, ""
				}
			}
			return false, fmt.Sprintf("target group %s: %v", n, c.ecs.TargetStates(n))
		}
		return false, "no target group"
	case "gcp":
		n := c.gce.RunningInstances(gcp.GroupName(w.owner(), moveWL))
		switch {
		case n < 1:
			return false, "no running instance"
		case w.gcpSick.Load():
			return false, "its health check fails"
		}
		return true, ""
	case "azure":
		prefix := "berth-" + w.instance + "-" + moveEnv + "-" + moveWL + "-"
		for _, g := range c.aci.Groups() {
			if strings.HasPrefix(g.Name, prefix) && g.Ready {
				return true, ""
			}
		}
		return false, "no ready container group"
	}
	return false, "unknown target " + target
}

// exists tells whether the copy on target still exists, from the cloud emulator's own state: an ECS service that
// is active, a Compute Engine forwarding rule and group (the forwarding rule goes first), a container group.
func (w *moveWorld) exists(target string) bool {
	c := w.c
	switch target {
	case "aws":
		active, _ := c.ecs.ServiceRunning("berth-e2e", "berth-"+w.instance+"-"+moveEnv+"-"+moveWL)
		return active
	case "gcp":
		g := gcp.GroupName(w.owner(), moveWL)
		return c.gce.GroupExists(g) && slices.Contains(c.gce.Resources("forwardingRules"), g+"-tcp")
	case "azure":
		prefix := "berth-" + w.instance + "-" + moveEnv + "-" + moveWL + "-"
		for _, g := range c.aci.Groups() {
			if strings.HasPrefix(g.Name, prefix) {
				return true
			}
		}
	}
	return false
}

// host is the host the copy on target reports for its public port (Observed.Endpoints), read through a provider of
// the test's own and kept while the copy lives.
func (w *moveWorld) host(ctx context.Context, target string) string {
	w.mu.Lock()
	h, ok := w.hosts[target]
	p := w.provs[target]
	w.mu.Unlock()
	if ok {
		return h
	}
	if p == nil {
		var err error
		p, err = w.c.factory(w.cfg.Targets[target], providers.Options{Instance: w.instance})
		if err != nil {
			w.t.Errorf("provider %s: %v", target, err)
			return ""
		}
		w.mu.Lock()
		w.provs[target] = p
		w.mu.Unlock()
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	obs, err := p.List(lctx, w.owner(), target)
	if err != nil {
		return ""
	}
	for _, o := range obs {
		if o.Workload != moveWL {
			continue
		}
		for _, ep := range o.Endpoints {
			if ep.Port != movePort || ep.Address == "" {
				continue
			}
			h := ep.Address
			if i := strings.LastIndex(h, ":"); i > 0 {
				h = h[:i]
			}
			w.mu.Lock()
			w.hosts[target] = h
			w.mu.Unlock()
			return h
		}
	}
	return ""
}

// mustHost is host, waiting for the providers' lists to show the copy (they are eventually consistent).
func (w *moveWorld) mustHost(ctx context.Context, target string) string {
	w.t.Helper()
	var h string
	waitFor(w.t, 20*time.Second, "the address of the copy on "+target, func() (bool, string) {
		h = w.host(ctx, target)
		return h != "", "no address listed"
	})
	return h
}

func (w *moveWorld) forget(target string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.hosts, target)
}

// look is one resolution of the name.
type look struct {
	start, end time.Time
	answer     []string
	err        error
	// bad says, for each address that was not of a copy ready at the end of the look, why.
	bad []string
	// sick lists the targets whose copy was answered while its health check failed on purpose.
	sick []string
}

// looker resolves the name against the zone's DNS port again and again, checking each answer against the clouds.
type looker struct {
	w       *moveWorld
	targets []string
	stop    chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	looks []look
	// readyOnce is whether a target's copy was seen ready during this move, goneAt when it was first seen not
	// ready after that (its deletion, for the leaving copy); existed and deletedAt likewise for its existence.
	readyOnce map[string]bool
	goneAt    map[string]time.Time
	existed   map[string]bool
	deletedAt map[string]time.Time
	lastSeen  map[string]time.Time // the last look that answered the target's copy
}

func (w *moveWorld) startLooker(ctx context.Context, targets ...string) *looker {
	l := &looker{w: w, targets: targets, stop: make(chan struct{}), done: make(chan struct{}),
		readyOnce: map[string]bool{}, goneAt: map[string]time.Time{}, lastSeen: map[string]time.Time{},
		existed: map[string]bool{}, deletedAt: map[string]time.Time{}}
	go l.run(ctx)
	return l
}

func (l *looker) run(ctx context.Context) {
	defer close(l.done)
	pace := time.NewTicker(2 * time.Millisecond) // plenty of looks without starving the two cores
	defer pace.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		l.once(ctx)
	}
}

func (l *looker) once(ctx context.Context) {
	w := l.w
	lk := look{start: time.Now()}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	lk.answer, lk.err = dnstest.Lookup(lctx, w.zone.dnsAddr, moveName)
	cancel()
	lk.end = time.Now()
	sort.Strings(lk.answer)
	readyNow := map[string]bool{}
	existsNow := map[string]bool{}
	why := map[string]string{}
	for _, t := range l.targets {
		ok, reason := w.ready(t)
		readyNow[t], why[t] = ok, reason
		existsNow[t] = w.exists(t)
	}
	l.mu.Lock()
	for _, t := range l.targets {
		if existsNow[t] {
			l.existed[t] = true
			delete(l.deletedAt, t)
		} else if _, gone := l.deletedAt[t]; l.existed[t] && !gone {
			l.deletedAt[t] = lk.end
		}
		if readyNow[t] {
			l.readyOnce[t] = true
			delete(l.goneAt, t)
		} else if _, gone := l.goneAt[t]; l.readyOnce[t] && !gone {
			l.goneAt[t] = lk.end
		}
	}
	l.mu.Unlock()
	for _, t := range l.targets {
		if !readyNow[t] {
			w.forget(t)
		}
	}
	for _, a := range lk.answer {
		owner := ""
		for try := 0; try < 3 && owner == ""; try++ {
			for _, t := range l.targets {
				if w.host(ctx, t) == a {
					owner = t
				}
			}
		}
		switch {
		case owner == "":
			lk.bad = append(lk.bad, fmt.Sprintf("%s is no copy's reported address (ready: %v)", a, readyNow))
		case !readyNow[owner] && owner == "gcp" && w.gcpSick.Load():
			lk.sick = append(lk.sick, owner)
		case !readyNow[owner]:
			lk.bad = append(lk.bad, fmt.Sprintf("%s is the copy on %s, which is not ready: %s", a, owner, why[owner]))
		}
		if owner != "" {
			l.mu.Lock()
			l.lastSeen[owner] = lk.end
			l.mu.Unlock()
		}
	}
	l.mu.Lock()
	l.looks = append(l.looks, lk)
	l.mu.Unlock()
}

// finish stops the looker and returns its looks.
func (l *looker) finish() []look {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.looks)
}

// moveReport is what one move showed.
type moveReport struct {
	looks, distinct, empty, failed, sick int
	answers                              map[string]int
}

func summarize(looks []look) moveReport {
	r := moveReport{looks: len(looks), answers: map[string]int{}}
	for _, lk := range looks {
		switch {
		case lk.err != nil:
			r.failed++
			r.answers["error: "+lk.err.Error()]++
		case len(lk.answer) == 0:
			r.empty++
			r.answers["(empty)"]++
		default:
			r.answers[strings.Join(lk.answer, " ")]++
		}
		if len(lk.sick) > 0 {
			r.sick++
		}
	}
	r.distinct = len(r.answers)
	return r
}

// phases are the recorded transitions of the move of the workload to target, oldest first, from its last start.
func (w *moveWorld) phases(target string) []store.Migration {
	ms, err := w.st.Migrations(moveEnv, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	slices.Reverse(ms)
	var out []store.Migration
	for _, m := range ms {
		if m.Workload != moveWL || m.To != target {
			continue
		}
		if m.Phase == reconciler.MoveStart {
			out = nil
		}
		out = append(out, m)
	}
	return out
}

func phaseFigures(ms []store.Migration) string {
	var parts []string
	for i := 1; i < len(ms); i++ {
		parts = append(parts, fmt.Sprintf("%s→%s %s", label(ms[i-1]), label(ms[i]), ms[i].Time.Sub(ms[i-1].Time).Round(time.Millisecond)))
	}
	if len(ms) > 1 {
		parts = append(parts, fmt.Sprintf("total %s", ms[len(ms)-1].Time.Sub(ms[0].Time).Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

func label(m store.Migration) string {
	if m.Phase == reconciler.MoveShift {
		return fmt.Sprintf("shift%d", m.Weight)
	}
	return m.Phase
}

// checkLooks fails the test for every look that answered an address of a copy that was not ready.
func checkLooks(t *testing.T, what string, looks []look, strictNames bool) moveReport {
	t.Helper()
	r := summarize(looks)
	if r.looks < 10 {
		t.Errorf("%s: only %d looks", what, r.looks)
	}
	bad := 0
	for _, lk := range looks {
		for _, b := range lk.bad {
			if bad < 5 {
				t.Errorf("%s: look at %s answered %v: %s", what, lk.start.Format("15:04:05.000"), lk.answer, b)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d bad answers in all", what, bad)
	}
	if strictNames && (r.empty > 0 || r.failed > 0) {
		t.Errorf("%s: %d looks got no address and %d failed: %v", what, r.empty, r.failed, r.answers)
	}
	return r
}

// The same workload, behind one stable name, moves from AWS to GCP to Azure and back toward GCP, through each DNS
// router against its emulator: clients resolving the name only ever get the address of a copy that runs and is
// healthy at that moment, and a copy is deleted at least TTL + drain after its last answer.
func TestCloudMigrationBehindDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("moves against the cloud and DNS emulators, on the real clock")
	}
	for _, kind := range []string{"route53", "clouddns", "azuredns"} {
		t.Run(kind, func(t *testing.T) { testMoveBehindDNS(t, kind) })
	}
}

func testMoveBehindDNS(t *testing.T, kind string) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), moveBudget+30*time.Second)
	defer cancel()
	w := newMoveWorld(t, kind)
	// No router may leave the name unanswered at any look (Azure DNS's name is a CNAME updated in place).
	strict := true

	// A record planted by hand at the name: the plan has a problem at the endpoint's name, nothing is created and
	// the record is untouched.
	planted := newDNSZone(t, kind)
	if err := planted.plant(); err != nil {
		t.Fatal(err)
	}
	before := planted.records()
	line := w.config(planted, "aws")
	p := w.plan(ctx)
	var problem *reconciler.Problem
	for i := range p.Problems {
		if p.Problems[i].Field == "ports[0].endpoint.name" {
			problem = &p.Problems[i]
		}
	}
	if problem == nil {
		t.Fatalf("the plan has no problem at the endpoint's name: %v", p.Problems)
	}
	if filepath.Base(problem.Pos.File) != "berth.cue" || problem.Pos.Line != line {
		t.Errorf("the problem is at %s, want berth.cue:%d: %s", problem.Pos, line, problem)
	}
	if _, err := w.eng.Apply(ctx, w.cfg, p); !errors.Is(err, reconciler.ErrBlocked) {
		t.Errorf("applying the plan with the planted record: %v, want %v", err, reconciler.ErrBlocked)
	}
	if active, _ := w.c.ecs.ServiceRunning("berth-e2e", "berth-"+w.instance+"-"+moveEnv+"-"+moveWL); active ||
		len(w.c.ecs.LoadBalancerNames()) > 0 {
		t.Errorf("something was created on AWS: service %v, load balancers %v", active, w.c.ecs.LoadBalancerNames())
	}
	if after := planted.records(); after != before || planted.apiChanges() != 0 {
		t.Errorf("the planted zone changed (%d changes through the API):\n%s\nwant\n%s", planted.apiChanges(), after, before)
	}
	if got, err := dnstest.Lookup(ctx, planted.dnsAddr, moveName); err != nil || !slices.Equal(got, []string{plantedAddress}) {
		t.Errorf("the planted name answers %v, %v; want %s", got, err, plantedAddress)
	}
	t.Logf("planted: %s", problem)

	// The first apply, on AWS.
	w.config(w.zone, "aws")
	if err := w.apply(ctx); err != nil {
		t.Fatalf("apply on aws: %v", err)
	}
	lb := w.mustHost(ctx, "aws")
	if got, err := dnstest.Lookup(ctx, w.zone.dnsAddr, moveName); err != nil || !slices.Equal(got, []string{lb}) {
		t.Fatalf("after the first apply the name answers %v, %v; want the load balancer %s", got, err, lb)
	}

	// AWS → GCP, the DNS API throttling and failing on the way; GCP → Azure.
	for _, mv := range []struct {
		from, to string
		faults   bool
	}{{"aws", "gcp", true}, {"gcp", "azure", false}} {
		what := mv.from + "→" + mv.to
		w.config(w.zone, mv.to)
		if mv.faults {
			w.zone.fail()
		}
		start := time.Now()
		l := w.startLooker(ctx, mv.from, mv.to)
		err := w.apply(ctx)
		looks := l.finish()
		end := time.Now()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		r := checkLooks(t, what, looks, strict)
		if mv.faults {
			if left := w.zone.left(); left > 0 {
				t.Errorf("%s: %d injected DNS API faults were never met", what, left)
			}
		}
		if ok, why := w.ready(mv.from); ok {
			t.Errorf("%s: the copy on %s still runs after the move", what, mv.from)
		} else {
			t.Logf("%s: the copy on %s: %s", what, mv.from, why)
		}
		if ok, why := w.ready(mv.to); !ok {
			t.Errorf("%s: the copy on %s is not ready after the move: %s", what, mv.to, why)
		}
		stop, ok := stoppedAt(w.zone.log(), mv.from, start, end)
		l.mu.Lock()
		gone, deleted := l.goneAt[mv.from]
		if d, ok := l.deletedAt[mv.from]; ok && (!deleted || d.Before(gone)) {
			gone, deleted = d, true
		}
		last := l.lastSeen[mv.from]
		l.mu.Unlock()
		switch {
		case !ok:
			t.Errorf("%s: the change log never stops answering %s: %v", what, mv.from, w.zone.log())
		case !deleted:
			t.Errorf("%s: the copy on %s was never seen deleted", what, mv.from)
		case gone.Sub(stop) < moveTTL+moveDrain:
			t.Errorf("%s: the copy on %s was deleted %s after its member stopped being answered, want at least ttl %s + drain %s",
				what, mv.from, gone.Sub(stop), moveTTL, moveDrain)
		}
		got, err := dnstest.Lookup(ctx, w.zone.dnsAddr, moveName)
		if want := w.mustHost(ctx, mv.to); err != nil || !slices.Equal(got, []string{want}) {
			t.Errorf("%s: after the move the name answers %v, %v; want %s", what, got, err, want)
		}
		t.Logf("%s: %d looks, %d distinct answers %v, %d empty, %d failed; phases: %s; %s stopped being answered "+
			"(change log) %s before its copy was seen deleted, last answered %s before", what, r.looks, r.distinct,
			r.answers, r.empty, r.failed, phaseFigures(w.phases(mv.to)), mv.from, gone.Sub(stop).Round(time.Millisecond),
			gone.Sub(last).Round(time.Millisecond))
	}

	// Azure → GCP, whose health check fails once it has half the traffic: the move shifts back, the copy on Azure
	// serves throughout, the new copy is removed, and the apply and the plan say why.
	what := "azure→gcp (unhealthy)"
	w.config(w.zone, "gcp")
	l := w.startLooker(ctx, "azure", "gcp")
	applied := make(chan error, 1)
	go func() { applied <- w.apply(ctx) }()
	var sickAt time.Time
	began3 := time.Now()
	waitFor(t, 30*time.Second, "gcp at 50%", func() (bool, string) {
		ms := w.phases("gcp")
		for _, m := range ms {
			if m.Phase == reconciler.MoveShift && m.Weight == 50 && m.Time.After(began3) {
				w.gcpSick.Store(true)
				sickAt = time.Now()
				return true, ""
			}
		}
		select {
		case err := <-applied:
			applied <- err
			return true, fmt.Sprintf("apply ended: %v", err)
		default:
		}
		return false, phaseFigures(ms)
	})
	err := <-applied
	looks := l.finish()
	if !errors.Is(err, reconciler.ErrMoveAborted) || !strings.Contains(err.Error(), "health") {
		t.Fatalf("%s: the apply ended with %v, want %v naming the health", what, err, reconciler.ErrMoveAborted)
	}
	ms := w.phases("gcp")
	var abortAt time.Time
	for _, m := range ms {
		if m.Phase == reconciler.MoveAbort {
			abortAt = m.Time
		}
	}
	if abortAt.IsZero() || ms[len(ms)-1].Phase != reconciler.MoveAborted {
		t.Fatalf("%s: the transitions are %s", what, phaseFigures(ms))
	}
	// The copy on GCP is answered while unhealthy only until berth shifts back (the abort is recorded once the
	// names no longer send clients to it).
	late := 0
	for _, lk := range looks {
		if len(lk.sick) > 0 && lk.start.After(abortAt) {
			late++
		}
	}
	if late > 0 {
		t.Errorf("%s: %d looks after the shift back still answered the unhealthy copy on gcp", what, late)
	}
	r := checkLooks(t, what, looks, strict)
	l.mu.Lock()
	gcpDeleted, deleted := l.deletedAt["gcp"]
	l.mu.Unlock()
	gcpStop, stopped := stoppedAt(w.zone.log(), "gcp", began3, time.Now())
	switch {
	case !stopped:
		t.Errorf("%s: the change log never stops answering gcp: %v", what, w.zone.log())
	case !deleted:
		t.Errorf("%s: the new copy on gcp was not seen deleted during the apply", what)
	case gcpDeleted.Sub(gcpStop) < moveTTL+moveDrain:
		t.Errorf("%s: the new copy on gcp was deleted %s after it stopped being answered, want at least ttl %s + drain %s",
			what, gcpDeleted.Sub(gcpStop), moveTTL, moveDrain)
	}
	if ok, why := w.ready("azure"); !ok {
		t.Errorf("%s: the copy on azure does not serve after the shift back: %s", what, why)
	}
	waitFor(t, 20*time.Second, "the new copy on gcp removed", func() (bool, string) {
		g := gcp.GroupName(w.owner(), moveWL)
		return !w.c.gce.GroupExists(g), fmt.Sprintf("group %s exists", g)
	})
	states := w.zone.log()
	if len(states) == 0 {
		t.Fatalf("%s: no change log", what)
	}
	if final := states[len(states)-1].weights; len(final) != 1 || final["azure"] == 0 {
		t.Errorf("%s: after the shift back the name serves %v, want azure alone", what, final)
	}
	got, lerr := dnstest.Lookup(ctx, w.zone.dnsAddr, moveName)
	if want := w.mustHost(ctx, "azure"); lerr != nil || !slices.Equal(got, []string{want}) {
		t.Errorf("%s: after the shift back the name answers %v, %v; want %s", what, got, lerr, want)
	}
	held := ""
	for _, s := range w.plan(ctx).Steps {
		if s.Workload == moveWL {
			held = s.Error
		}
	}
	if !strings.Contains(held, "aborted") || !strings.Contains(held, "health") {
		t.Errorf("%s: the plan after the shift back does not say why the move is held: %q", what, held)
	}
	t.Logf("%s: %d looks, %d distinct answers %v, %d answered the unhealthy copy (berth shifted back %s after its "+
		"health check began failing, deleted it %s after it stopped being answered); phases: %s; apply: %v; plan: %s",
		what, r.looks, r.distinct, r.answers, r.sick, abortAt.Sub(sickAt).Round(time.Millisecond),
		gcpDeleted.Sub(gcpStop).Round(time.Millisecond), phaseFigures(ms), err, held)
	if d := time.Since(began); d > moveBudget {
		t.Errorf("the subtest took %s, more than %s", d.Round(time.Second), moveBudget)
	} else {
		t.Logf("the subtest took %s", d.Round(time.Millisecond))
	}
}
