package route53_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/route53"
	"github.com/berth-dev/berth/providers/endpoint/route53/route53emu"
	"github.com/berth-dev/berth/providers/endpoint/routertest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const lbHost = "lb-0123456789.elb.us-east-1.amazonaws.com"

// TestConformance runs the router suite through the real SDK against the emulator; clients are the emulator's
// DNS answers.
func TestConformance(t *testing.T) {
	var cur *env
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) endpoint.Router {
			cur = newEnv(t, route53emu.Options{PendingPolls: 2, Seed: 7})
			return cur.router(t)
		},
		Name:      func(t *testing.T, i int) string { return name(i) },
		Addresses: func(t *testing.T, i int) []string { return ip(i) },
		HostName:  lbHost,
		Lookup:    func(t *testing.T, n string, k int) []string { return cur.lookup(t, n, k) },
		Foreign: func(t *testing.T, _ endpoint.Router, n string) {
			if err := cur.emu.Plant(route53emu.RecordSet{Name: n, Type: "A", TTL: 300, Values: []string{"198.51.100.1"}}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestLayout checks the record sets a Set writes (the package doc's layout) and that Get reads them back.
func TestLayout(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	n := endpoint.Fqdn(name(0))
	ms := []endpoint.Member{
		{Target: "gcp", Addresses: []string{"203.0.113.7", "2001:db8::7"}, Weight: 10},
		{Target: "aws", Addresses: []string{lbHost}, Weight: 90},
	}
	if err := r.Set(ctx(t), owner, name(0), time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rs := range e.emu.RecordSets() {
		w := ""
		if rs.Weight != nil {
			w = " w=" + itoa(*rs.Weight)
		}
		got = append(got, rs.Name+" "+rs.Type+" "+rs.SetIdentifier+w+" ttl="+itoa(rs.TTL)+" "+strings.Join(rs.Values, ","))
	}
	want := []string{
		"example.com. NS  ttl=172800 ns-1.awsdns-01.org.,ns-2.awsdns-02.co.uk.,ns-3.awsdns-03.com.,ns-4.awsdns-04.net.",
		"example.com. SOA  ttl=900 ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",
		n + " CNAME aws w=90 ttl=60 " + lbHost + ".",
		n + " CNAME gcp w=10 ttl=60 gcp._berth." + n,
		// Route 53's order: "_berth-owner" before "_berth.gcp" ('-' sorts before '.').
		"_berth-owner." + n + " TXT  ttl=60 \"heritage=berth,berth.dev/instance=berth,berth.dev/environment=prod,berth.dev/workload=web\"",
		"gcp._berth." + n + " A  ttl=60 203.0.113.7",
		"gcp._berth." + n + " AAAA  ttl=60 2001:db8::7",
	}
	if !slices.Equal(got, want) {
		t.Errorf("record sets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rec, err := r.Get(ctx(t), owner, name(0))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Name != n || rec.TTL != time.Minute || len(rec.Members) != 2 {
		t.Fatalf("Get = %+v", rec)
	}
	if m := rec.Members[0]; m.Target != "aws" || !slices.Equal(m.Addresses, []string{lbHost}) || m.Weight != 90 {
		t.Errorf("aws reads back %+v", m)
	}
	if m := rec.Members[1]; m.Target != "gcp" || !slices.Equal(m.Addresses, []string{"203.0.113.7", "2001:db8::7"}) || m.Weight != 10 {
		t.Errorf("gcp reads back %+v", m)
	}

	// A member that moves from IPs to a host name drops its own name, in one batch.
	before := len(e.emu.Changes())
	ms[0] = endpoint.Member{Target: "gcp", Addresses: []string{"ghs.googlehosted.com"}, Weight: 10}
	if err := r.Set(ctx(t), owner, name(0), time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	ch := e.emu.Changes()[before:]
	var actions []string
	for _, c := range ch {
		actions = append(actions, c.Action+" "+c.Name+" "+c.Type+" "+c.SetIdentifier)
	}
	wantActions := []string{"DELETE gcp._berth." + n + " A ", "DELETE gcp._berth." + n + " AAAA ", "UPSERT " + n + " CNAME gcp"}
	if !slices.Equal(actions, wantActions) || ch[0].ChangeID != ch[2].ChangeID {
		t.Errorf("changes %q (ids %s..%s), want %q in one batch", actions, ch[0].ChangeID, ch[len(ch)-1].ChangeID, wantActions)
	}
	rec, err = r.Get(ctx(t), owner, name(0))
	if m, _ := rec.Member("gcp"); err != nil || !slices.Equal(m.Addresses, []string{"ghs.googlehosted.com"}) {
		t.Errorf("gcp reads back %+v, %v", m, err)
	}

	// Setting what is served sends nothing.
	calls := e.emu.Calls(route53emu.OpChange)
	if err := r.Set(ctx(t), owner, name(0), time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	if c := e.emu.Calls(route53emu.OpChange); c != calls {
		t.Errorf("setting what is served sent %d change batches", c-calls)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// TestGolden checks the request bodies the SDK sends for a Set of a new name and for its Delete.
func TestGolden(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	ms := []endpoint.Member{
		{Target: "aws", Addresses: []string{lbHost}, Weight: 0},
		{Target: "gcp", Addresses: []string{"203.0.113.7"}, Weight: 100},
	}
	if err := r.Set(ctx(t), owner, name(0), time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx(t), owner, name(0)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(e.posts(), "\n") + "\n"
	path := filepath.Join("testdata", "set-delete.golden.xml")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("request bodies differ from %s (go test -update to rewrite):\n%s", path, got)
	}
}

// TestInsync: Set returns once the change is INSYNC, so that clients see the new records at once; the wait is
// bounded by ctx.
func TestInsync(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	e.emu.SetPending(5)
	if err := r.Set(ctx(t), owner, name(0), time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	if got := e.lookup(t, name(0), 3); len(got) != 3 || got[0] != ip(0)[0] {
		t.Fatalf("right after Set, clients got %v; want %v", got, ip(0))
	}
	if n := e.emu.Calls(route53emu.OpGetChange); n < 5 {
		t.Errorf("Set polled GetChange %d times; the change was PENDING for 5", n)
	}

	e.emu.SetPending(1 << 30)
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Set(c, owner, name(0), time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(1), Weight: 100}})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), endpoint.Fqdn(name(0))) {
		t.Fatalf("Set of a change that stays PENDING past ctx: %v; want the deadline, naming the name", err)
	}
	if got := e.lookup(t, name(0), 3); len(got) != 3 || got[0] != ip(0)[0] {
		t.Errorf("while the change is PENDING, clients got %v; want the old %v", got, ip(0))
	}
}

// TestFaults: throttling, PriorRequestNotComplete and 5xx are retried and pass; a fault that lasts past the
// attempts comes back naming the name, never a credential.
func TestFaults(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	e.emu.Fail(route53emu.OpGetZone, route53emu.Throttling())
	e.emu.Fail(route53emu.OpList, route53emu.ServerError(), route53emu.PriorRequestNotComplete())
	e.emu.Fail(route53emu.OpChange, route53emu.Throttling(), route53emu.Unavailable(), route53emu.PriorRequestNotComplete())
	e.emu.Fail(route53emu.OpGetChange, route53emu.Throttling(), route53emu.ServerError())
	m := endpoint.Member{Target: "aws", Addresses: ip(0), Weight: 100}
	if err := r.Set(ctx(t), owner, name(0), time.Minute, []endpoint.Member{m}); err != nil {
		t.Fatalf("Set through transient faults: %v", err)
	}
	if n := len(e.emu.Changes()); n != 3 { // A, CNAME, TXT: once
		t.Errorf("%d changes applied, want 3 (one batch)", n)
	}
	if got := e.lookup(t, name(0), 2); len(got) != 2 {
		t.Errorf("after Set, clients got %v", got)
	}

	for i := 0; i < route53.DefaultRetryAttempts; i++ {
		e.emu.Fail(route53emu.OpList, route53emu.Throttling())
	}
	err := r.Set(ctx(t), owner, name(0), time.Minute, []endpoint.Member{m})
	switch {
	case err == nil:
		t.Fatal("Set with throttling past the attempts passed")
	case errors.Is(err, providers.ErrPermanent):
		t.Errorf("throttling past the attempts is permanent: %v", err)
	case !strings.Contains(err.Error(), endpoint.Fqdn(name(0))) || !strings.Contains(err.Error(), "Rate exceeded"):
		t.Errorf("error %q does not name the name and the cause", err)
	case strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testKeyID):
		t.Errorf("error %q shows a credential", err)
	}

	// A change applied whose answer was lost: the retried CREATE finds its own records, and Set passes.
	e.emu.Fail(route53emu.OpChange, route53emu.Fault{Status: 500, Code: "InternalFailure", Message: "lost", Applied: true})
	if err := r.Set(ctx(t), owner, name(1), time.Minute, []endpoint.Member{m}); err != nil {
		t.Errorf("Set whose first batch was applied but answered 500: %v", err)
	}
	if rec, err := r.Get(ctx(t), owner, name(1)); err != nil || rec == nil || len(rec.Members) != 1 {
		t.Errorf("after the lost answer, Get = %+v, %v", rec, err)
	}

	// An invalid request is permanent, at once.
	e.emu.Fail(route53emu.OpChange, route53emu.Fault{Status: 400, Code: "InvalidInput", Message: "Invalid request"})
	calls := e.emu.Calls(route53emu.OpChange)
	err = r.Set(ctx(t), owner, name(0), time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(1), Weight: 100}})
	if !errors.Is(err, providers.ErrPermanent) || e.emu.Calls(route53emu.OpChange) != calls+1 {
		t.Errorf("InvalidInput: %v after %d calls; want permanent after one", err, e.emu.Calls(route53emu.OpChange)-calls)
	}
}

// TestOwnership: the ownership TXT is exactly OwnerText; another owner's, or a TXT berth did not write, makes the
// name not berth's; a record at a member's name without the ownership record is foreign too.
func TestOwnership(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	if err := r.Set(ctx(t), owner, name(0), time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	var txt []string
	for _, rs := range e.emu.RecordSets() {
		if rs.Type == "TXT" {
			txt = append(txt, rs.Name+" "+strings.Join(rs.Values, " "))
		}
	}
	want := endpoint.OwnerRecordName(name(0)) + ` "` + endpoint.OwnerText(owner) + `"`
	if len(txt) != 1 || txt[0] != want {
		t.Fatalf("TXT record sets %q, want [%q]", txt, want)
	}

	for i, planted := range [][]route53emu.RecordSet{
		{{Name: endpoint.OwnerRecordName(name(1)), Type: "TXT", TTL: 60, Values: []string{`"` + endpoint.OwnerText(other) + `"`}}},
		{{Name: endpoint.OwnerRecordName(name(2)), Type: "TXT", TTL: 60, Values: []string{`"v=spf1 -all"`}}},
		{{Name: "aws._berth." + name(3), Type: "A", TTL: 60, Values: []string{"198.51.100.1"}}},
		{{Name: name(4), Type: "TXT", TTL: 60, Values: []string{`"hello"`}},
			{Name: endpoint.OwnerRecordName(name(4)), Type: "TXT", TTL: 60, Values: []string{`"` + endpoint.OwnerText(owner) + `"`}}},
	} {
		if err := e.emu.Plant(planted...); err != nil {
			t.Fatal(err)
		}
		n := name(i + 1)
		calls := e.emu.Calls(route53emu.OpChange)
		if _, err := r.Get(ctx(t), owner, n); !errors.Is(err, endpoint.ErrNotOwned) || !strings.Contains(err.Error(), endpoint.Fqdn(n)) {
			t.Errorf("Get of %s: %v; want ErrNotOwned naming it", n, err)
		}
		if err := r.Set(ctx(t), owner, n, time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 1}}); !errors.Is(err, endpoint.ErrNotOwned) {
			t.Errorf("Set of %s: %v; want ErrNotOwned", n, err)
		}
		if err := r.Delete(ctx(t), owner, n); !errors.Is(err, endpoint.ErrNotOwned) {
			t.Errorf("Delete of %s: %v; want ErrNotOwned", n, err)
		}
		if e.emu.Calls(route53emu.OpChange) != calls {
			t.Errorf("a change was sent for %s, which is not berth's", n)
		}
	}
}

// TestRace: a record that appears between berth's read and its change makes the batch fail (CREATE), and the
// name is then reported as not berth's.
func TestRace(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	n := name(0)
	// The foreign set appears after berth's read, just before its change arrives.
	e.beforePost(func() {
		if err := e.emu.Plant(route53emu.RecordSet{Name: n, Type: "A", TTL: 60, Values: []string{"198.51.100.1"}}); err != nil {
			t.Error(err)
		}
	})
	err := r.Set(ctx(t), owner, n, time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 100}})
	if !errors.Is(err, endpoint.ErrNotOwned) {
		t.Fatalf("Set racing a foreign record: %v; want ErrNotOwned", err)
	}
	if len(e.emu.Changes()) != 0 {
		t.Errorf("changes applied: %+v", e.emu.Changes())
	}
}

// TestNames lists the names of one instance.
func TestNames(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	r := e.router(t)
	m := []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 100}}
	elsewhere := endpoint.Owner{Instance: "berth-eu", Environment: "prod", Workload: "web"}
	for i, o := range []endpoint.Owner{owner, other, elsewhere} {
		if err := r.Set(ctx(t), o, name(i), time.Minute, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.emu.Plant(route53emu.RecordSet{Name: "_berth-owner.junk." + zone, Type: "TXT", TTL: 60, Values: []string{`"heritage=other"`}}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Names(ctx(t), "berth")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[endpoint.Fqdn(name(0))] != owner || got[endpoint.Fqdn(name(1))] != other {
		t.Errorf("Names = %v", got)
	}
}

// TestSettings: the keys, their errors, and AWS_ENDPOINT_URL_ROUTE_53 when endpoint is unset.
func TestSettings(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"zoneId": "Z1", "zone": "example.com"}, "settings.zone: unknown setting"},
		{map[string]any{"region": "us-east-1"}, "settings.zoneId: required"},
		{map[string]any{"zoneId": "z-lower"}, "not a hosted zone ID"},
		{map[string]any{"zoneId": 12}, "settings.zoneId: want a string"},
		{map[string]any{"zoneId": "Z1", "endpoint": "127.0.0.1:1"}, "settings.endpoint: want an http"},
	} {
		_, err := endpoint.New(dnsTarget(c.settings), endpoint.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `dns "route53-main"`) {
			t.Errorf("settings %v: %v; want an error with %q", c.settings, err, c.want)
		}
	}

	t.Setenv("AWS_ENDPOINT_URL_ROUTE_53", e.api.URL)
	rt, err := endpoint.New(dnsTarget(map[string]any{"zoneId": "/hostedzone/" + e.emu.ZoneID(), "region": "eu-west-1"}), endpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := fast(rt.(*route53.Router))
	if err := r.Set(ctx(t), owner, name(0), time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 100}}); err != nil {
		t.Fatalf("Set through AWS_ENDPOINT_URL_ROUTE_53: %v", err)
	}

	// Names outside the zone and the apex are refused before any change.
	for _, n := range []string{zone, "web.example.org", "web.notexample.com"} {
		err := r.Set(ctx(t), owner, n, time.Minute, []endpoint.Member{{Target: "aws", Addresses: ip(0), Weight: 100}})
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), endpoint.Fqdn(n)) {
			t.Errorf("Set of %s: %v; want a permanent error naming it", n, err)
		}
	}
	for _, m := range []endpoint.Member{
		{Target: "Not_A_Label", Addresses: ip(0), Weight: 1},
		{Target: "aws", Addresses: []string{"192.0.2.1", "lb.example.net"}, Weight: 1},
		{Target: "aws", Watch: &providers.Watch{Kind: "docker"}, Weight: 1},
		{Target: "aws", Addresses: []string{"-bad-.example.net"}, Weight: 1},
	} {
		err := r.Set(ctx(t), owner, name(1), time.Minute, []endpoint.Member{m})
		if !errors.Is(err, endpoint.ErrBadMember) || !errors.Is(err, providers.ErrPermanent) {
			t.Errorf("Set %+v: %v; want a permanent ErrBadMember", m, err)
		}
	}
}

// TestNoCredentials: with no credentials anywhere, a call fails permanently at once and says so.
func TestNoCredentials(t *testing.T) {
	e := newEnv(t, route53emu.Options{})
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	r := e.router(t)
	_, err := r.Get(ctx(t), owner, name(0))
	if !errors.Is(err, providers.ErrPermanent) || !regexp.MustCompile(`(?i)credential`).MatchString(err.Error()) {
		t.Fatalf("Get without credentials: %v; want a permanent error about credentials", err)
	}
	if n := e.emu.Calls(route53emu.OpGetZone); n != 0 {
		t.Errorf("%d requests reached Route 53 without credentials", n)
	}
}
