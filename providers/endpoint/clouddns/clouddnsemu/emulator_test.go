package clouddnsemu_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dnsv1 "google.golang.org/api/dns/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/berth-dev/berth/providers/endpoint/clouddns/clouddnsemu"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
)

const (
	project = "proj"
	zone    = "main"
)

func setup(t *testing.T, opts clouddnsemu.Options) (*clouddnsemu.Emulator, *dnsv1.Service) {
	t.Helper()
	opts.AllowAnonymous = true
	emu := clouddnsemu.New(project, zone, "Example.com", opts)
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	svc, err := dnsv1.NewService(context.Background(), option.WithEndpoint(hs.URL+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return emu, svc
}

func a(name string, ttl int64, ips ...string) *dnsv1.ResourceRecordSet {
	return &dnsv1.ResourceRecordSet{Name: name, Type: "A", Ttl: ttl, Rrdatas: ips}
}

func wrr(name, typ string, ttl int64, items ...*dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem) *dnsv1.ResourceRecordSet {
	return &dnsv1.ResourceRecordSet{Name: name, Type: typ, Ttl: ttl,
		RoutingPolicy: &dnsv1.RRSetRoutingPolicy{Wrr: &dnsv1.RRSetRoutingPolicyWrrPolicy{Items: items}}}
}

func item(w float64, rrdatas ...string) *dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem {
	return &dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem{Weight: w, Rrdatas: rrdatas, ForceSendFields: []string{"Weight"}}
}

func create(svc *dnsv1.Service, add, del []*dnsv1.ResourceRecordSet) (*dnsv1.Change, error) {
	return svc.Changes.Create(project, zone, &dnsv1.Change{Additions: add, Deletions: del}).Do()
}

func wantErr(t *testing.T, err error, code int, reason string) {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != code || len(ge.Errors) != 1 || ge.Errors[0].Reason != reason {
		t.Fatalf("error %v; want %d %s", err, code, reason)
	}
}

func TestZoneAndList(t *testing.T) {
	emu, svc := setup(t, clouddnsemu.Options{PageSize: 2})
	z, err := svc.ManagedZones.Get(project, zone).Do()
	if err != nil || z.DnsName != "example.com." || z.Name != zone || len(z.NameServers) != 4 {
		t.Fatalf("managedZones.get = %+v, %v", z, err)
	}
	_, err = svc.ManagedZones.Get(project, "other").Do()
	wantErr(t, err, 404, "notFound")
	if _, err := create(svc, []*dnsv1.ResourceRecordSet{a("a.example.com.", 60, "192.0.2.1"), a("b.example.com.", 60, "192.0.2.2"),
		{Name: "b.example.com.", Type: "TXT", Ttl: 60, Rrdatas: []string{`"x"`}}}, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	err = svc.ResourceRecordSets.List(project, zone).MaxResults(1).Pages(context.Background(), func(p *dnsv1.ResourceRecordSetsListResponse) error {
		if len(p.Rrsets) != 1 {
			t.Errorf("a page of maxResults 1 holds %d", len(p.Rrsets))
		}
		for _, s := range p.Rrsets {
			names = append(names, s.Name+" "+s.Type)
		}
		return nil
	})
	want := []string{"a.example.com. A", "b.example.com. A", "b.example.com. TXT", "example.com. NS", "example.com. SOA"}
	if err != nil || !slices.Equal(names, want) {
		t.Fatalf("paged list = %v, %v; want %v", names, err, want)
	}
	l, err := svc.ResourceRecordSets.List(project, zone).Name("b.example.com.").Type("TXT").Do()
	if err != nil || len(l.Rrsets) != 1 || l.Rrsets[0].Rrdatas[0] != `"x"` {
		t.Fatalf("list by name and type = %+v, %v", l, err)
	}
	_, err = svc.ResourceRecordSets.List(project, zone).Type("A").Do()
	wantErr(t, err, 400, "invalid")
	if n := len(emu.RecordSets()); n != 5 {
		t.Errorf("RecordSets holds %d", n)
	}
}

func TestChangeErrors(t *testing.T) {
	_, svc := setup(t, clouddnsemu.Options{})
	web := a("web.example.com.", 60, "192.0.2.1", "192.0.2.2")
	if _, err := create(svc, []*dnsv1.ResourceRecordSet{web}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what     string
		add, del []*dnsv1.ResourceRecordSet
		code     int
		reason   string
	}{
		{"an addition of an existing set", []*dnsv1.ResourceRecordSet{a("web.example.com.", 60, "192.0.2.9")}, nil, 409, "alreadyExists"},
		{"a deletion of a missing set", nil, []*dnsv1.ResourceRecordSet{a("x.example.com.", 60, "192.0.2.1")}, 404, "notFound"},
		{"a deletion with another ttl", nil, []*dnsv1.ResourceRecordSet{a("web.example.com.", 61, "192.0.2.1", "192.0.2.2")}, 412, "conditionNotMet"},
		{"a deletion with other rrdatas", nil, []*dnsv1.ResourceRecordSet{a("web.example.com.", 60, "192.0.2.1")}, 412, "conditionNotMet"},
		{"a name outside the zone", []*dnsv1.ResourceRecordSet{a("web.example.org.", 60, "192.0.2.1")}, nil, 400, "invalid"},
		{"a name without its dot", []*dnsv1.ResourceRecordSet{a("new.example.com", 60, "192.0.2.1")}, nil, 400, "invalid"},
		{"a negative ttl", []*dnsv1.ResourceRecordSet{a("new.example.com.", -1, "192.0.2.1")}, nil, 400, "invalid"},
		{"a missing ttl", []*dnsv1.ResourceRecordSet{a("new.example.com.", 0, "192.0.2.1")}, nil, 400, "required"},
		{"a bad address", []*dnsv1.ResourceRecordSet{a("new.example.com.", 60, "192.0.2.300")}, nil, 400, "invalid"},
		{"a weight above the range", []*dnsv1.ResourceRecordSet{wrr("new.example.com.", "A", 60, item(1001, "192.0.2.1"))}, nil, 400, "invalid"},
		{"a negative weight", []*dnsv1.ResourceRecordSet{wrr("new.example.com.", "A", 60, item(-1, "192.0.2.1"))}, nil, 400, "invalid"},
		{"rrdatas and a policy", []*dnsv1.ResourceRecordSet{{Name: "new.example.com.", Type: "A", Ttl: 60, Rrdatas: []string{"192.0.2.1"},
			RoutingPolicy: wrr("", "", 0, item(1, "192.0.2.1")).RoutingPolicy}}, nil, 400, "invalid"},
		{"a CNAME of two records", []*dnsv1.ResourceRecordSet{{Name: "c.example.com.", Type: "CNAME", Ttl: 60, Rrdatas: []string{"a.example.net.", "b.example.net."}}}, nil, 400, "invalid"},
		{"a relative CNAME target", []*dnsv1.ResourceRecordSet{{Name: "c.example.com.", Type: "CNAME", Ttl: 60, Rrdatas: []string{"a.example.net"}}}, nil, 400, "invalid"},
		{"a CNAME beside an A", []*dnsv1.ResourceRecordSet{{Name: "web.example.com.", Type: "CNAME", Ttl: 60, Rrdatas: []string{"a.example.net."}}}, nil, 400, "cnameResourceRecordSetConflict"},
		{"the apex NS deleted", nil, []*dnsv1.ResourceRecordSet{{Name: "example.com.", Type: "NS", Ttl: 21600, Rrdatas: []string{
			"ns-cloud-a1.googledomains.com.", "ns-cloud-a2.googledomains.com.", "ns-cloud-a3.googledomains.com.", "ns-cloud-a4.googledomains.com."}}}, 400, "invalid"},
		{"an unknown type", []*dnsv1.ResourceRecordSet{{Name: "new.example.com.", Type: "WKS", Ttl: 60, Rrdatas: []string{"x"}}}, nil, 400, "invalid"},
	} {
		_, err := create(svc, c.add, c.del)
		var ge *googleapi.Error
		if !errors.As(err, &ge) || ge.Code != c.code || len(ge.Errors) != 1 || ge.Errors[0].Reason != c.reason {
			t.Errorf("%s: %v; want %d %s", c.what, err, c.code, c.reason)
		}
	}
	// A replace is a deletion and an addition in one change, atomic: a failing addition leaves the deletion undone.
	_, err := create(svc, []*dnsv1.ResourceRecordSet{a("web.example.com.", 60, "192.0.2.3"), a("bad.example.org.", 60, "192.0.2.1")},
		[]*dnsv1.ResourceRecordSet{web})
	wantErr(t, err, 400, "invalid")
	if _, err := create(svc, []*dnsv1.ResourceRecordSet{a("web.example.com.", 60, "192.0.2.3")}, []*dnsv1.ResourceRecordSet{
		a("web.example.com.", 60, "192.0.2.2", "192.0.2.1")}); err != nil {
		t.Fatalf("a replace whose deletion lists the records in another order: %v", err)
	}
}

func TestQuotas(t *testing.T) {
	_, svc := setup(t, clouddnsemu.Options{RecordsPerSet: 2, ItemsPerPolicy: 2, ChangeSize: 1})
	_, err := create(svc, []*dnsv1.ResourceRecordSet{a("a.example.com.", 60, "192.0.2.1", "192.0.2.2", "192.0.2.3")}, nil)
	wantErr(t, err, 403, "quotaExceeded")
	_, err = create(svc, []*dnsv1.ResourceRecordSet{wrr("a.example.com.", "A", 60, item(1, "192.0.2.1"), item(1, "192.0.2.2"), item(1, "192.0.2.3"))}, nil)
	wantErr(t, err, 403, "quotaExceeded")
	_, err = create(svc, []*dnsv1.ResourceRecordSet{a("a.example.com.", 60, "192.0.2.1"), a("b.example.com.", 60, "192.0.2.1")}, nil)
	wantErr(t, err, 403, "quotaExceeded")
}

func TestFaultsAndPending(t *testing.T) {
	emu, svc := setup(t, clouddnsemu.Options{Pending: 2, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.RateLimited, clouddnsemu.Unavailable)
	for _, want := range []int{429, 503} {
		_, err := create(svc, []*dnsv1.ResourceRecordSet{a("a.example.com.", 60, "192.0.2.1")}, nil)
		wantErr(t, err, want, map[int]string{429: "rateLimitExceeded", 503: "backendError"}[want])
	}
	c, err := create(svc, []*dnsv1.ResourceRecordSet{a("a.example.com.", 60, "192.0.2.1")}, nil)
	if err != nil || c.Status != "pending" || c.StartTime != "2026-01-02T03:04:05Z" {
		t.Fatalf("changes.create = %+v, %v; want pending", c, err)
	}
	d, err := dnstest.Serve("127.0.0.1:0", emu.Answer)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	lookup := func() []string {
		ips, err := dnstest.Lookup(context.Background(), d.Addr(), "a.example.com")
		if err != nil && !errors.Is(err, dnstest.ErrNXDomain) {
			t.Fatal(err)
		}
		return ips
	}
	var statuses []string
	for range 4 {
		if got := lookup(); len(got) != 0 && c.Status == "pending" {
			t.Fatalf("DNS serves %v while the change is pending", got)
		}
		c, err = svc.Changes.Get(project, zone, c.Id).Do()
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, c.Status)
	}
	if !slices.Equal(statuses, []string{"pending", "pending", "done", "done"}) {
		t.Fatalf("polls saw %v", statuses)
	}
	if got := lookup(); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("DNS serves %v once done", got)
	}
	l, err := svc.Changes.List(project, zone).SortBy("changeSequence").SortOrder("descending").MaxResults(1).Do()
	if err != nil || len(l.Changes) != 1 || l.Changes[0].Id != c.Id {
		t.Fatalf("changes.list = %+v, %v", l, err)
	}
	_, err = svc.Changes.Get(project, zone, "99").Do()
	wantErr(t, err, 404, "notFound")
	// A fault after the change: it took effect, the answer is the error.
	emu.SetPending(0)
	emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.Fault{Status: 503, Reason: "backendError", Message: "Backend Error", After: true})
	_, err = create(svc, []*dnsv1.ResourceRecordSet{a("b.example.com.", 60, "192.0.2.2")}, nil)
	wantErr(t, err, 503, "backendError")
	if ch := emu.Changes(); len(ch) != 2 || ch[1].Additions[0].Name != "b.example.com." {
		t.Fatalf("change log %+v", ch)
	}
}

func TestDNS(t *testing.T) {
	emu, svc := setup(t, clouddnsemu.Options{Seed: 7})
	if _, err := create(svc, []*dnsv1.ResourceRecordSet{
		wrr("web.example.com.", "CNAME", 60, item(75, "a._berth.web.example.com."), item(25, "b._berth.web.example.com.")),
		a("a._berth.web.example.com.", 60, "192.0.2.1"),
		{Name: "b._berth.web.example.com.", Type: "CNAME", Ttl: 60, Rrdatas: []string{"lb.example.net."}},
		wrr("w.example.com.", "A", 60, item(0, "192.0.2.7"), item(0, "192.0.2.8")),
		{Name: "t.example.com.", Type: "TXT", Ttl: 60, Rrdatas: []string{`"hello world"`}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	d, err := emu.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	counts := map[string]int{}
	for range 400 {
		ips, err := dnstest.Lookup(context.Background(), d.Addr(), "web.example.com")
		if err != nil || len(ips) == 0 || slices.ContainsFunc(ips, func(ip string) bool { return ip != ips[0] }) {
			t.Fatalf("lookup = %v, %v; want one item's address", ips, err)
		}
		counts[ips[0]]++
	}
	if counts["192.0.2.1"] < 250 || counts["lb.example.net"] < 60 || len(counts) != 2 {
		t.Errorf("75/25 over 400 lookups: %v", counts)
	}
	all := map[string]bool{}
	for range 50 {
		ips, _ := dnstest.Lookup(context.Background(), d.Addr(), "w.example.com")
		all[strings.Join(ips, ",")] = true
	}
	if len(all) != 2 {
		t.Errorf("all weights 0: answers %v; want both, one at a time", all)
	}
	ask := func(n string, qt uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(n, qt)
		r, err := dns.Exchange(m, d.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ask("t.example.com.", dns.TypeTXT); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 ||
		!slices.Equal(r.Answer[0].(*dns.TXT).Txt, []string{"hello world"}) || !r.Authoritative {
		t.Errorf("TXT answer %v", r)
	}
	if r := ask("t.example.com.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("a name without the type: %v; want an empty answer", r)
	}
	if r := ask("_berth.web.example.com.", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("an empty non-terminal: %v; want NOERROR", r)
	}
	if r := ask("nope.example.com.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("a missing name: %v; want NXDOMAIN", r)
	}
	if r := ask("example.org.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("outside the zone: %v; want REFUSED", r)
	}
	emu.Fail(clouddnsemu.OpDNS, clouddnsemu.Unavailable)
	if r := ask("t.example.com.", dns.TypeTXT); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("a fault: %v; want SERVFAIL", r)
	}
	if err := emu.Plant(a("p.example.com.", 60, "192.0.2.99")); err != nil {
		t.Fatal(err)
	}
	if ips, err := dnstest.Lookup(context.Background(), d.Addr(), "p.example.com"); err != nil || !slices.Equal(ips, []string{"192.0.2.99"}) {
		t.Errorf("a planted record answers %v, %v", ips, err)
	}
	if err := emu.Plant(a("p.example.org.", 60, "192.0.2.99")); err == nil {
		t.Error("planting outside the zone passed")
	}
}

// TestAuth: without AllowAnonymous, a request needs a token of /token, got with a key of ServiceAccountKey.
func TestAuth(t *testing.T) {
	emu := clouddnsemu.New(project, zone, "example.com.", clouddnsemu.Options{})
	hs := httptest.NewServer(emu)
	defer hs.Close()
	anon, err := dnsv1.NewService(context.Background(), option.WithEndpoint(hs.URL+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.ManagedZones.Get(project, zone).Do()
	wantErr(t, err, 401, "authError")
	key, err := emu.ServiceAccountKey(hs.URL, "sa@proj.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := dnsv1.NewService(context.Background(), option.WithEndpoint(hs.URL+"/"),
		option.WithAuthCredentialsFile(option.ServiceAccount, path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ManagedZones.Get(project, zone).Do(); err != nil {
		t.Fatalf("with a service-account key: %v", err)
	}
	resp, err := http.PostForm(hs.URL+"/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion": {"e30.e30.AAAA"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a forged assertion: %d; want 400", resp.StatusCode)
	}
}
