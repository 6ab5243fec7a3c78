package azuredns_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/azuredns"
	"github.com/berth-dev/berth/providers/endpoint/azuredns/azurednsemu"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/providers/endpoint/routertest"
	"github.com/berth-dev/berth/schema"
)

const (
	testSub   = "00000000-0000-0000-0000-000000000001"
	testRG    = "berth-dns"
	testZone  = "example.com"
	testToken = "emulator-token-do-not-print"
	lbHost    = "lb-1234.elb.example.net"
)

var owner = endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}

// staticToken is a fake credential: the emulator only checks that a bearer token is present.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: testToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// env is one emulator, its DNS server and a router on them.
type env struct {
	emu       *azurednsemu.Emulator
	dns       *dnstest.Server
	router    *azuredns.Router
	newRouter func(zone string) *azuredns.Router
}

func newEnv(t testing.TB) *env {
	t.Helper()
	emu := azurednsemu.New(testSub, testRG, testZone, azurednsemu.Options{RetryAfter: 2 * time.Millisecond})
	srv := httptest.NewUnstartedServer(emu)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut by Close at the end of a test
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d, err := emu.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	build := func(zone string) *azuredns.Router {
		target := schema.Target{Name: "public", Type: azuredns.Type, Settings: map[string]any{
			"subscriptionId": testSub, "resourceGroup": testRG, "zone": zone, "endpoint": srv.URL}}
		r, err := azuredns.NewWithCredential(target, endpoint.Options{Instance: "berth"}, staticToken{}, &arm.ClientOptions{
			ClientOptions: policy.ClientOptions{Transport: srv.Client(),
				Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}}})
		if err != nil {
			t.Fatal(err)
		}
		r.RetryBase, r.RetryMax, r.CallTimeout = time.Millisecond, 10*time.Millisecond, 10*time.Second
		return r
	}
	return &env{emu: emu, dns: d, router: build(testZone), newRouter: build}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// lookup is what n clients get for name: every address of each answer.
func (e *env) lookup(t testing.TB, name string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		ips, err := dnstest.Lookup(ctx(t), e.dns.Addr(), name)
		if errors.Is(err, dnstest.ErrNXDomain) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// One answer's addresses, each once: dnstest.Lookup lists an address twice when the answer holds the
		// CNAME chain before it.
		var one []string
		for _, ip := range ips {
			if !slices.Contains(one, ip) {
				one = append(one, ip)
			}
		}
		out = append(out, one...)
	}
	return out
}

func TestConformance(t *testing.T) {
	var envs sync.Map // *testing.T → *env
	of := func(t *testing.T) *env {
		e, ok := envs.Load(t)
		if !ok {
			t.Fatal("no router built for this case")
		}
		return e.(*env)
	}
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) endpoint.Router {
			e := newEnv(t)
			envs.Store(t, e)
			return e.router
		},
		Name: func(t *testing.T, i int) string { return fmt.Sprintf("web%d.%s", i, testZone) },
		Addresses: func(t *testing.T, i int) []string {
			return []string{fmt.Sprintf("192.0.2.%d", 10+i), fmt.Sprintf("192.0.2.%d", 110+i)}
		},
		HostName: lbHost,
		Lookup:   func(t *testing.T, name string, n int) []string { return of(t).lookup(t, name, n) },
		Foreign: func(t *testing.T, _ endpoint.Router, name string) {
			rel := strings.TrimSuffix(name, "."+testZone)
			if err := of(t).emu.Plant(azurednsemu.RecordSet{Name: rel, Type: "A", TTL: 300, A: []string{"198.51.100.7"}}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func member(target string, w int, addrs ...string) endpoint.Member {
	return endpoint.Member{Target: target, Addresses: addrs, Weight: w}
}

// TestRetriedFaults: throttling (with Retry-After) and 5xx on reads and writes are retried, and Set passes.
func TestRetriedFaults(t *testing.T) {
	e := newEnv(t)
	e.emu.Fail(azurednsemu.OpGet, azurednsemu.Throttle, azurednsemu.ServerError)
	e.emu.Fail(azurednsemu.OpPut, azurednsemu.Throttle, azurednsemu.Unavailable, azurednsemu.ServerError, azurednsemu.Throttle)
	if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, []endpoint.Member{member("aws", 100, "192.0.2.1")}); err != nil {
		t.Fatalf("Set through throttling and 5xx: %v", err)
	}
	if n := e.emu.Pending(azurednsemu.OpPut) + e.emu.Pending(azurednsemu.OpGet); n != 0 {
		t.Fatalf("%d faults were never met", n)
	}
	if got := e.lookup(t, "web.example.com", 1); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("after Set, a client got %v", got)
	}
}

// TestLastingFault: a fault that outlasts the attempts is an error that names the name and the call, never the
// token, and is not permanent.
func TestLastingFault(t *testing.T) {
	e := newEnv(t)
	faults := make([]azurednsemu.Fault, 100)
	for i := range faults {
		faults[i] = azurednsemu.ServerError
	}
	e.emu.Fail(azurednsemu.OpPut, faults...)
	err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, []endpoint.Member{member("aws", 100, "192.0.2.1")})
	if err == nil {
		t.Fatal("Set passed through 100 server errors")
	}
	msg := err.Error()
	for _, want := range []string{"web.example.com", "HTTP 500", "InternalServerError"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, testToken) || strings.Contains(msg, "Bearer") {
		t.Errorf("error %q quotes the credential", msg)
	}
	if errors.Is(err, providers.ErrPermanent) {
		t.Errorf("a lasting 5xx is permanent: %v", err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 500 {
		t.Errorf("error %v does not keep the SDK's response error", err)
	}
}

// TestConcurrentWriter: a record set changed between berth's read and its write (412) is read again and the Set
// passes with the new etag.
func TestConcurrentWriter(t *testing.T) {
	e := newEnv(t)
	set := func(ms ...endpoint.Member) {
		t.Helper()
		if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, ms); err != nil {
			t.Fatal(err)
		}
	}
	set(member("aws", 100, "192.0.2.1"))
	e.emu.Fail(azurednsemu.OpPut, azurednsemu.Concurrent)
	set(member("aws", 50, "192.0.2.1"), member("gcp", 50, "192.0.2.2"))
	var puts []azurednsemu.Request // of the per-member A record set, the first written
	for _, r := range e.emu.Requests() {
		if r.Op == azurednsemu.OpPut && strings.HasSuffix(r.Path, "/A/_berth.web") {
			puts = append(puts, r)
		}
	}
	if len(puts) != 3 || puts[0].IfNoneMatch != "*" || puts[1].IfMatch == "" || puts[2].IfMatch == puts[1].IfMatch {
		t.Fatalf("PUTs %+v: want a create with If-None-Match *, then an If-Match that failed, then one with the new etag", puts)
	}
	got := e.lookup(t, "web.example.com", 1)
	slices.Sort(got)
	if !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Fatalf("after the retried Set, a client got %v", got)
	}
}

// TestLiveOnReturn: Azure DNS record set writes are synchronous; the first lookup after Set sees the change.
func TestLiveOnReturn(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 5; i++ {
		ip := fmt.Sprintf("192.0.2.%d", i)
		if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, []endpoint.Member{member("aws", 100, ip)}); err != nil {
			t.Fatal(err)
		}
		if got := e.lookup(t, "web.example.com", 1); !slices.Equal(got, []string{ip}) {
			t.Fatalf("right after Set to %s, a client got %v", ip, got)
		}
	}
}

// TestOwnershipMetadata: the ownership text and the members (weight-0 ones included) are in the metadata of the
// CNAME at the name, the ownership text alone in the per-member record sets'; another owner's record set, or a
// foreign A at the name, is not berth's; Names lists the name once.
func TestOwnershipMetadata(t *testing.T) {
	e := newEnv(t)
	ms := []endpoint.Member{member("aws", 100, "192.0.2.1"), member("gcp", 0, "192.0.2.2", "2001:db8::2")}
	if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	cname, ok := e.emu.Get("web", "CNAME")
	if !ok || cname.CNAME != "_berth.web.example.com" {
		t.Fatalf("CNAME record set at web %+v: want one to _berth.web.example.com", cname)
	}
	want := map[string]string{
		azuredns.MetaOwner: endpoint.OwnerText(owner),
		"berth_member0":    "w=100;t=aws;a=192.0.2.1",
		"berth_member1":    "w=0;t=gcp;a=192.0.2.2,2001:db8::2",
	}
	if !maps.Equal(cname.Metadata, want) {
		t.Fatalf("CNAME metadata %v, want %v", cname.Metadata, want)
	}
	a, ok := e.emu.Get("_berth.web", "A")
	if !ok || !slices.Equal(a.A, []string{"192.0.2.1"}) {
		t.Fatalf("A record set at _berth.web %+v: want only the member of weight > 0", a)
	}
	if want := map[string]string{azuredns.MetaOwner: endpoint.OwnerText(owner)}; !maps.Equal(a.Metadata, want) {
		t.Fatalf("per-member metadata %v, want %v", a.Metadata, want)
	}
	for _, sl := range [][2]string{{"_berth.web", "AAAA"}, {"web", "A"}, {"web", "AAAA"}} {
		if rs, ok := e.emu.Get(sl[0], sl[1]); ok {
			t.Fatalf("a %s record set at %s: %+v", sl[1], sl[0], rs)
		}
	}
	rec, err := e.router.Get(ctx(t), owner, "web.example.com")
	if err != nil || rec == nil || rec.TTL != time.Minute || !slices.EqualFunc(rec.Members, ms, func(a, b endpoint.Member) bool {
		return a.Target == b.Target && a.Weight == b.Weight && slices.Equal(a.Addresses, b.Addresses)
	}) {
		t.Fatalf("Get = %+v, %v; want %+v", rec, err, ms)
	}
	// A name of another owner, planted: not berth's for owner.
	other := endpoint.Owner{Instance: "berth", Environment: "staging", Workload: "web"}
	if err := e.emu.Plant(azurednsemu.RecordSet{Name: "api", Type: "A", TTL: 60, A: []string{"192.0.2.9"},
		Metadata: map[string]string{azuredns.MetaOwner: endpoint.OwnerText(other)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.router.Get(ctx(t), owner, "api.example.com"); !errors.Is(err, endpoint.ErrNotOwned) ||
		!strings.Contains(err.Error(), "berth/staging/web") {
		t.Fatalf("Get of another owner's name: %v", err)
	}
	// A foreign A record set alone at a name (no CNAME, no metadata): not berth's, and left alone.
	if err := e.emu.Plant(azurednsemu.RecordSet{Name: "www", Type: "A", TTL: 60, A: []string{"192.0.2.8"}}); err != nil {
		t.Fatal(err)
	}
	before := len(e.emu.Changes())
	if _, err := e.router.Get(ctx(t), owner, "www.example.com"); !errors.Is(err, endpoint.ErrNotOwned) ||
		!strings.Contains(err.Error(), "A record set www has no berth ownership metadata") {
		t.Fatalf("Get of a name with a foreign A: %v", err)
	}
	if err := e.router.Set(ctx(t), owner, "www.example.com", time.Minute, ms); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Fatalf("Set over a foreign A: %v", err)
	}
	if n := len(e.emu.Changes()) - before; n != 0 {
		t.Fatalf("%d changes made to a name with a foreign A", n)
	}
	names, err := e.router.Names(ctx(t), "berth")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names["web.example.com."] != owner || names["api.example.com."] != other {
		t.Fatalf("Names = %v", names)
	}
	if names, err := e.router.Names(ctx(t), "elsewhere"); err != nil || len(names) != 0 {
		t.Fatalf("Names of another instance = %v, %v", names, err)
	}
}

// TestInterruptedDelete: a Delete cut off after the CNAME at the name went leaves per-member record sets that
// still carry the ownership: Get reads a record with no members, Names lists the name, and Delete removes them.
func TestInterruptedDelete(t *testing.T) {
	e := newEnv(t)
	if err := e.emu.Plant(azurednsemu.RecordSet{Name: "_berth.web", Type: "A", TTL: 60, A: []string{"192.0.2.1"},
		Metadata: map[string]string{azuredns.MetaOwner: endpoint.OwnerText(owner)}}); err != nil {
		t.Fatal(err)
	}
	rec, err := e.router.Get(ctx(t), owner, "web.example.com")
	if err != nil || rec == nil || len(rec.Members) != 0 {
		t.Fatalf("Get of what an interrupted Delete left = %+v, %v; want a record with no members", rec, err)
	}
	if got := e.lookup(t, "web.example.com", 1); len(got) != 0 {
		t.Fatalf("without its CNAME, the name answered %v", got)
	}
	if names, err := e.router.Names(ctx(t), "berth"); err != nil || len(names) != 1 || names["web.example.com."] != owner {
		t.Fatalf("Names = %v, %v", names, err)
	}
	other := endpoint.Owner{Instance: "berth", Environment: "staging", Workload: "web"}
	if _, err := e.router.Get(ctx(t), other, "web.example.com"); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Fatalf("Get by another owner: %v", err)
	}
	if err := e.router.Delete(ctx(t), owner, "web.example.com"); err != nil {
		t.Fatal(err)
	}
	if left := e.emu.RecordSets(); len(left) != 0 {
		t.Fatalf("after Delete, the zone has %+v", left)
	}
}

// TestLongMember: a member with 20 IPv6 addresses needs more than one 256-character metadata value; it reads
// back whole, and its addresses are one AAAA record set at the per-member name.
func TestLongMember(t *testing.T) {
	e := newEnv(t)
	var addrs []string
	for i := 0; i < azuredns.MaxRecords; i++ {
		addrs = append(addrs, fmt.Sprintf("2001:db8:1234:5678:9abc:def0:1234:%x", 0x1000+i))
	}
	ms := []endpoint.Member{member("aws", 100, addrs...)}
	if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	aaaa, ok := e.emu.Get("_berth.web", "AAAA")
	if !ok || len(aaaa.AAAA) != azuredns.MaxRecords {
		t.Fatalf("AAAA record set %+v", aaaa)
	}
	if _, ok := e.emu.Get("_berth.web", "A"); ok {
		t.Fatal("an A record set for a member of IPv6 addresses only")
	}
	cname, _ := e.emu.Get("web", "CNAME")
	if _, ok := cname.Metadata["berth_member0_1"]; !ok {
		t.Fatalf("metadata %v: want the member cut in pieces", cname.Metadata)
	}
	rec, err := e.router.Get(ctx(t), owner, "web.example.com")
	if err != nil || len(rec.Members) != 1 || !slices.Equal(rec.Members[0].Addresses, addrs) {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	ms[0].Addresses = append(ms[0].Addresses, "2001:db8::ffff")
	if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, ms); !errors.Is(err, endpoint.ErrBadMember) ||
		!errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Set of 21 addresses: %v; want a permanent ErrBadMember", err)
	}
}

// TestSwitch: moving between IP and host-name members (a migration from a load balancer's host name to IP
// addresses and back) only ever updates the CNAME at the name, never deletes or creates it: the per-member record
// sets are created before the CNAME points at them and deleted after it no longer does, so the name answers
// after every single API call. A tie between a host name and an IP member goes to the later one.
func TestSwitch(t *testing.T) {
	e := newEnv(t)
	const name = "web.example.com"
	set := func(ms ...endpoint.Member) []azurednsemu.Change {
		t.Helper()
		mark := len(e.emu.Changes())
		if err := e.router.Set(ctx(t), owner, name, time.Minute, ms); err != nil {
			t.Fatal(err)
		}
		return e.emu.Changes()[mark:]
	}
	expect := func(step string, ch []azurednsemu.Change, want ...string) {
		t.Helper()
		if got, w := changes(ch), "["+strings.Join(want, "; ")+"]"; got != w {
			t.Fatalf("%s: changes %s, want %s", step, got, w)
		}
	}
	answers := func(step string, want ...string) {
		t.Helper()
		got := e.lookup(t, name, 1)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: a client got %v, want %v", step, got, want)
		}
	}
	lb := member("aws", 100, lbHost)
	ip := member("gcp", 0, "192.0.2.2")
	ch := set(with(ip, 100))
	expect("first Set", ch, "create A _berth.web", "create CNAME web")
	answers("first Set", "192.0.2.2")
	mark := len(e.emu.Changes())

	ch = set(lb, ip)
	expect("IPs → host name", ch, "update CNAME web", "delete A _berth.web")
	answers("IPs → host name", lbHost)

	ch = set(with(lb, 50), with(ip, 50)) // a tie: the later member (an IP member) wins, through _berth.web
	expect("host name → IPs (a tie)", ch, "create A _berth.web", "update CNAME web")
	if c, _ := e.emu.Get("web", "CNAME"); c.CNAME != "_berth.web.example.com" {
		t.Fatalf("at a tie, the CNAME is to %q", c.CNAME)
	}
	answers("host name → IPs (a tie)", "192.0.2.2")

	ch = set(with(ip, 100)) // the host name leaves: the addresses are the same, the members in the metadata not
	expect("IPs only", ch, "update CNAME web")
	answers("IPs only", "192.0.2.2")

	ch = set(with(lb, 100), member("gcp", 0, "192.0.2.2", "2001:db8::2"))
	expect("IPs → host name again", ch, "update CNAME web", "delete A _berth.web")

	ch = set(with(lb, 0), member("gcp", 100, "192.0.2.2", "2001:db8::2"))
	expect("host name → IPv4 and IPv6", ch, "create A _berth.web", "create AAAA _berth.web", "update CNAME web")
	answers("host name → IPv4 and IPv6", "192.0.2.2")

	all := e.emu.Changes()
	for _, c := range all[mark:] {
		if c.Name == "web" && (c.Op != "update" || c.Type != "CNAME") {
			t.Errorf("switching between IP and host-name members made %s %s %s; want only updates of the CNAME", c.Op, c.Type, c.Name)
		}
	}
	if gaps := unanswered(all, mark, "web"); len(gaps) != 0 {
		t.Errorf("the name was unanswered after %v", gaps)
	}
	if err := e.router.Delete(ctx(t), owner, name); err != nil {
		t.Fatal(err)
	}
	if left := e.emu.RecordSets(); len(left) != 0 {
		t.Fatalf("after Delete, the zone has %+v", left)
	}
}

// unanswered replays the zone's changes from the start and returns the changes, from mark on, after which rel had
// no answer to a client: neither a CNAME chain to a host outside the zone, nor one that ends at A or AAAA records.
func unanswered(all []azurednsemu.Change, mark int, rel string) []string {
	type key struct{ name, typ string }
	zone := map[key]azurednsemu.RecordSet{}
	answered := func() bool {
		n := rel
		for hop := 0; hop < 8; hop++ {
			if c, ok := zone[key{n, "CNAME"}]; ok {
				target := strings.ToLower(strings.TrimSuffix(c.CNAME, "."))
				if !strings.HasSuffix(target, "."+testZone) {
					return target != ""
				}
				n = strings.TrimSuffix(target, "."+testZone)
				continue
			}
			return len(zone[key{n, "A"}].A)+len(zone[key{n, "AAAA"}].AAAA) > 0
		}
		return false
	}
	var gaps []string
	for i, c := range all {
		if c.Op == "delete" {
			delete(zone, key{c.Name, c.Type})
		} else {
			zone[key{c.Name, c.Type}] = c.Set
		}
		if i >= mark && !answered() {
			gaps = append(gaps, c.Op+" "+c.Type+" "+c.Name)
		}
	}
	return gaps
}

// TestFormerLayout: a name berth wrote as an A record set at the name itself (before the name was always a CNAME)
// is read, and the next Set moves it to the CNAME: the per-member record set first, then the A at the name goes
// and the CNAME comes right after (Azure refuses a CNAME beside other records).
func TestFormerLayout(t *testing.T) {
	e := newEnv(t)
	meta := map[string]string{azuredns.MetaOwner: endpoint.OwnerText(owner), "berth_member0": "w=100;t=aws;a=192.0.2.1"}
	if err := e.emu.Plant(azurednsemu.RecordSet{Name: "web", Type: "A", TTL: 60, A: []string{"192.0.2.1"}, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	rec, err := e.router.Get(ctx(t), owner, "web.example.com")
	if err != nil || rec == nil || len(rec.Members) != 1 || rec.Members[0].Target != "aws" || rec.TTL != time.Minute {
		t.Fatalf("Get of the former layout = %+v, %v", rec, err)
	}
	mark := len(e.emu.Changes())
	if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, []endpoint.Member{member("aws", 50, "192.0.2.1"),
		member("gcp", 50, "192.0.2.2")}); err != nil {
		t.Fatal(err)
	}
	if got := changes(e.emu.Changes()[mark:]); got != "[create A _berth.web; delete A web; create CNAME web]" {
		t.Fatalf("upgrade changes %s", got)
	}
	got := e.lookup(t, "web.example.com", 1)
	slices.Sort(got)
	if !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Fatalf("after the upgrade, a client got %v", got)
	}
	// Delete of the former layout: the AAAA, then the A.
	e = newEnv(t)
	for _, rs := range []azurednsemu.RecordSet{{Name: "web", Type: "A", TTL: 60, A: []string{"192.0.2.1"}, Metadata: meta},
		{Name: "web", Type: "AAAA", TTL: 60, AAAA: []string{"2001:db8::1"}, Metadata: meta}} {
		if err := e.emu.Plant(rs); err != nil {
			t.Fatal(err)
		}
	}
	mark = len(e.emu.Changes())
	if err := e.router.Delete(ctx(t), owner, "web.example.com"); err != nil {
		t.Fatal(err)
	}
	if got := changes(e.emu.Changes()[mark:]); got != "[delete AAAA web; delete A web]" {
		t.Fatalf("Delete of the former layout: %s", got)
	}
}

func with(m endpoint.Member, w int) endpoint.Member { m.Weight = w; return m }

func changes(ch []azurednsemu.Change) string {
	var s []string
	for _, c := range ch {
		s = append(s, c.Op+" "+c.Type+" "+c.Name)
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// TestRequestBodies: the exact requests of a first Set and of updates (golden, by hand).
func TestRequestBodies(t *testing.T) {
	e := newEnv(t)
	ms := []endpoint.Member{member("aws", 30, "192.0.2.1"), member("gcp", 70, "192.0.2.2")}
	if err := e.router.Set(ctx(t), owner, "web.example.com", 90*time.Second, ms); err != nil {
		t.Fatal(err)
	}
	puts := func() []azurednsemu.Request {
		var out []azurednsemu.Request
		for _, r := range e.emu.Requests() {
			if r.Op == azurednsemu.OpPut {
				out = append(out, r)
			}
		}
		return out
	}
	const ownerText = `"berth_owner":"heritage=berth,berth.dev/instance=berth,berth.dev/environment=prod,berth.dev/workload=web"`
	zonePath := "/subscriptions/" + testSub + "/resourceGroups/" + testRG + "/providers/Microsoft.Network/dnsZones/example.com/"
	golden := []struct{ path, body string }{
		{zonePath + "A/_berth.web", `{"properties":{"ARecords":[{"ipv4Address":"192.0.2.1"},{"ipv4Address":"192.0.2.2"}],"TTL":90,` +
			`"metadata":{` + ownerText + `}}}`},
		{zonePath + "CNAME/web", `{"properties":{"CNAMERecord":{"cname":"_berth.web.example.com"},"TTL":90,` +
			`"metadata":{"berth_member0":"w=30;t=aws;a=192.0.2.1","berth_member1":"w=70;t=gcp;a=192.0.2.2",` + ownerText + `}}}`},
	}
	got := puts()
	if len(got) != len(golden) {
		t.Fatalf("%d PUTs for a first Set, want the per-member A, then the CNAME: %+v", len(got), got)
	}
	for i, g := range golden {
		put := got[i]
		if put.Path != g.path || put.Query != "api-version=2018-05-01" || put.IfNoneMatch != "*" || put.IfMatch != "" {
			t.Fatalf("PUT %d: %s?%s If-Match %q If-None-Match %q; want %s, a create", i, put.Path, put.Query, put.IfMatch, put.IfNoneMatch, g.path)
		}
		if string(put.Body) != canonical(t, g.body) {
			t.Fatalf("PUT %s body\n%s\nwant\n%s", put.Path, put.Body, canonical(t, g.body))
		}
	}
	// Gets of the six slots, then the PUTs: nothing else.
	if n := len(e.emu.Requests()); n != 8 {
		t.Fatalf("%d requests for a first Set, want 6 GETs and 2 PUTs", n)
	}
	// The same again: reads only.
	e.emu.ResetRequests()
	if err := e.router.Set(ctx(t), owner, "web.example.com", 90*time.Second, ms); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.emu.Requests() {
		if r.Method != "GET" {
			t.Fatalf("setting what is served sent %s %s", r.Method, r.Path)
		}
	}
	// New weights that answer the same addresses: the CNAME's metadata only, If-Match on its etag.
	e.emu.ResetRequests()
	cname, _ := e.emu.Get("web", "CNAME")
	ms[0].Weight, ms[1].Weight = 60, 40
	if err := e.router.Set(ctx(t), owner, "web.example.com", 90*time.Second, ms); err != nil {
		t.Fatal(err)
	}
	if got := puts(); len(got) != 1 || got[0].Path != golden[1].path || got[0].IfMatch != cname.Etag || got[0].IfNoneMatch != "" ||
		!strings.Contains(string(got[0].Body), `"berth_member0":"w=60;t=aws;a=192.0.2.1"`) {
		t.Fatalf("a change of weights alone: PUTs %+v; want one of the CNAME, If-Match %q", got, cname.Etag)
	}
	// An update of the addresses: the per-member A, then the CNAME, each If-Match on the etag read.
	e.emu.ResetRequests()
	a, _ := e.emu.Get("_berth.web", "A")
	cname, _ = e.emu.Get("web", "CNAME")
	ms[0].Weight, ms[1].Weight = 0, 100
	if err := e.router.Set(ctx(t), owner, "web.example.com", 90*time.Second, ms); err != nil {
		t.Fatal(err)
	}
	got = puts()
	if len(got) != 2 || got[0].Path != golden[0].path || got[0].IfMatch != a.Etag ||
		!strings.Contains(string(got[0].Body), `"ARecords":[{"ipv4Address":"192.0.2.2"}]`) ||
		got[1].Path != golden[1].path || got[1].IfMatch != cname.Etag {
		t.Fatalf("update PUTs %+v; want the per-member A If-Match %q, then the CNAME If-Match %q", got, a.Etag, cname.Etag)
	}
}

func canonical(t *testing.T, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSettings: required and unknown keys, bad values; New builds without reaching anything.
func TestSettings(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"subscriptionId": testSub, "resourceGroup": testRG, "zone": "Example.COM."}
	}
	s, err := azuredns.ParseSettings(schema.Target{Name: "public", Settings: base()})
	if err != nil || s.Zone != "example.com" || s.Credential != "default" {
		t.Fatalf("ParseSettings = %+v, %v", s, err)
	}
	for _, c := range []struct {
		change func(map[string]any)
		want   string
	}{
		{func(m map[string]any) { m["zones"] = "x" }, "settings.zones: unknown setting"},
		{func(m map[string]any) { delete(m, "zone") }, "settings.zone is required"},
		{func(m map[string]any) { delete(m, "subscriptionId") }, "settings.subscriptionId is required"},
		{func(m map[string]any) { m["credential"] = "password" }, "settings.credential"},
		{func(m map[string]any) { m["endpoint"] = "ftp://x" }, "settings.endpoint"},
		{func(m map[string]any) { m["zone"] = "not a zone" }, "settings.zone"},
		{func(m map[string]any) { m["resourceGroup"] = 3 }, "settings.resourceGroup: want a non-empty string"},
	} {
		m := base()
		c.change(m)
		if _, err := azuredns.ParseSettings(schema.Target{Name: "public", Settings: m}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("settings %v: %v; want %q", m, err, c.want)
		}
	}
	r, err := endpoint.New(schema.Target{Name: "public", Type: "azuredns", Settings: base()}, endpoint.Options{})
	if err != nil || r.Type() != "azuredns" || r.Capabilities().Weighted || !r.Capabilities().HostNames {
		t.Fatalf("endpoint.New = %v, %v", r, err)
	}
}

// TestNames: outside the zone, the apex and berth's own per-member label are refused before anything is sent.
func TestNames(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"example.com", "web.example.org", "_berth.web.example.com", "bad name.example.com"} {
		err := e.router.Set(ctx(t), owner, name, time.Minute, []endpoint.Member{member("aws", 1, "192.0.2.1")})
		if err == nil || !errors.Is(err, providers.ErrPermanent) {
			t.Errorf("Set %s: %v; want a permanent error", name, err)
		}
	}
	if n := len(e.emu.Requests()); n != 0 {
		t.Fatalf("%d requests sent for refused names", n)
	}
	// A host name that is not a DNS name, and a member mixing IPs with a host name.
	for _, ms := range [][]endpoint.Member{{member("aws", 1, "lb_-.")}, {member("aws", 1, "192.0.2.1", "lb.example.net")}} {
		if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, ms); !errors.Is(err, endpoint.ErrBadMember) {
			t.Errorf("Set %+v: %v; want ErrBadMember", ms, err)
		}
	}
}

// TestMissingZone: a zone that is not there is a permanent error that says how to fix it, never "the name is
// free".
func TestMissingZone(t *testing.T) {
	e := newEnv(t)
	r := e.newRouter("other.example")
	rec, err := r.Get(ctx(t), owner, "web.other.example")
	if err == nil || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "ParentResourceNotFound") ||
		!strings.Contains(err.Error(), "settings.subscriptionId, resourceGroup and zone") {
		t.Fatalf("Get in a missing zone = %+v, %v", rec, err)
	}
}

// TestForeignBeside: a TXT at the name that berth did not write makes the name not owned; nothing is written.
func TestForeignBeside(t *testing.T) {
	e := newEnv(t)
	if err := e.emu.Plant(azurednsemu.RecordSet{Name: "web", Type: "TXT", TTL: 60, TXT: [][]string{{"v=spf1 -all"}}}); err != nil {
		t.Fatal(err)
	}
	before := len(e.emu.Changes())
	err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, []endpoint.Member{member("aws", 100, "192.0.2.1")})
	if !errors.Is(err, endpoint.ErrNotOwned) || !strings.Contains(err.Error(), "TXT record set web") {
		t.Fatalf("Set beside a foreign TXT: %v", err)
	}
	if err := e.router.Delete(ctx(t), owner, "web.example.com"); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Fatalf("Delete beside a foreign TXT: %v", err)
	}
	if n := len(e.emu.Changes()); n != before {
		t.Fatalf("%d changes made to a name berth does not own", n-before)
	}
}

// TestDeleteOrder: the CNAME at the name first (never a CNAME to a record set already gone), then the per-member
// record sets, the A last.
func TestDeleteOrder(t *testing.T) {
	for _, c := range []struct {
		ms   []endpoint.Member
		want []string
	}{
		{[]endpoint.Member{member("aws", 50, "192.0.2.1", "2001:db8::1")},
			[]string{"delete CNAME web", "delete AAAA _berth.web", "delete A _berth.web"}},
		{[]endpoint.Member{member("aws", 50, lbHost), member("gcp", 50, "192.0.2.2", "2001:db8::2")},
			[]string{"delete CNAME web", "delete AAAA _berth.web", "delete A _berth.web"}},
		{[]endpoint.Member{member("aws", 50, lbHost)}, []string{"delete CNAME web"}},
	} {
		e := newEnv(t)
		if err := e.router.Set(ctx(t), owner, "web.example.com", time.Minute, c.ms); err != nil {
			t.Fatal(err)
		}
		mark := len(e.emu.Changes())
		if err := e.router.Delete(ctx(t), owner, "web.example.com"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range e.emu.Changes()[mark:] {
			got = append(got, ch.Op+" "+ch.Type+" "+ch.Name)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Delete of %+v: %v, want %v", c.ms, got, c.want)
		}
	}
}

type noToken struct{}

func (noToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("no credential source is configured")
}

// TestNoCredential: a credential that gets no token is a permanent error saying what to do, tried once.
func TestNoCredential(t *testing.T) {
	target := schema.Target{Name: "public", Type: azuredns.Type, Settings: map[string]any{
		"subscriptionId": testSub, "resourceGroup": testRG, "zone": testZone, "endpoint": "https://127.0.0.1:1"}}
	r, err := azuredns.NewWithCredential(target, endpoint.Options{}, noToken{}, &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	r.RetryBase, r.RetryMax = time.Millisecond, time.Millisecond
	_, err = r.Get(ctx(t), owner, "web.example.com")
	if err == nil || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "no usable Azure credentials") ||
		!strings.Contains(err.Error(), "web.example.com") {
		t.Fatalf("Get without a token: %v", err)
	}
}

// TestConflictsOutlast: a name that another writer keeps changing is given up after ConflictRetries re-reads,
// with an error that says so.
func TestConflictsOutlast(t *testing.T) {
	e := newEnv(t)
	set := func() error {
		return e.router.Set(ctx(t), owner, "web.example.com", time.Minute, []endpoint.Member{member("aws", 100, "192.0.2.1")})
	}
	if err := set(); err != nil {
		t.Fatal(err)
	}
	e.router.ConflictRetries = 2
	e.emu.Fail(azurednsemu.OpPut, azurednsemu.Concurrent, azurednsemu.Concurrent, azurednsemu.Concurrent, azurednsemu.Concurrent)
	if err := e.router.Set(ctx(t), owner, "web.example.com", 2*time.Minute, []endpoint.Member{member("aws", 100, "192.0.2.1")}); err == nil ||
		!strings.Contains(err.Error(), "changed since it was read") || !strings.Contains(err.Error(), "PreconditionFailed") {
		t.Fatalf("Set against a writer that never stops: %v", err)
	}
	if n := e.emu.Pending(azurednsemu.OpPut); n != 1 {
		t.Fatalf("%d concurrent faults left, want 1 (three tries)", n)
	}
}
