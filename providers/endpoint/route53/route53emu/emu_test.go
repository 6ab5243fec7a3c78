package route53emu_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/providers/endpoint/route53/route53emu"
)

// client is the real SDK client on the emulator, with static test credentials and no retries.
func client(t *testing.T, e *route53emu.Emulator) *r53.Client {
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return r53.New(r53.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, nil
		}),
		Retryer: aws.NopRetryer{},
	})
}

func rrset(name string, typ types.RRType, ttl int64, values ...string) *types.ResourceRecordSet {
	rs := &types.ResourceRecordSet{Name: aws.String(name), Type: typ, TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

func weighted(rs *types.ResourceRecordSet, id string, w int64) *types.ResourceRecordSet {
	rs.SetIdentifier, rs.Weight = aws.String(id), aws.Int64(w)
	return rs
}

func change(action types.ChangeAction, rs *types.ResourceRecordSet) types.Change {
	return types.Change{Action: action, ResourceRecordSet: rs}
}

func send(c *r53.Client, e *route53emu.Emulator, changes ...types.Change) (*r53.ChangeResourceRecordSetsOutput, error) {
	return c.ChangeResourceRecordSets(context.Background(), &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(e.ZoneID()), ChangeBatch: &types.ChangeBatch{Changes: changes}})
}

func TestChangeBatchErrors(t *testing.T) {
	e := route53emu.New("example.com", route53emu.Options{PendingPolls: -1})
	c := client(t, e)
	if _, err := send(c, e, change(types.ChangeActionCreate, rrset("a.example.com", types.RRTypeA, 60, "192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		changes []types.Change
		want    string
	}{
		{"create existing", []types.Change{change(types.ChangeActionCreate, rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.2"))},
			"Tried to create resource record set [name='a.example.com.', type='A'] but it already exists"},
		{"delete other values", []types.Change{change(types.ChangeActionDelete, rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.2"))},
			"Tried to delete resource record set [name='a.example.com.', type='A'] but the values provided do not match the current values"},
		{"delete other TTL", []types.Change{change(types.ChangeActionDelete, rrset("a.example.com.", types.RRTypeA, 300, "192.0.2.1"))},
			"do not match the current values"},
		{"delete missing", []types.Change{change(types.ChangeActionDelete, weighted(rrset("b.example.com.", types.RRTypeA, 60, "192.0.2.1"), "x", 1))},
			"Tried to delete resource record set [name='b.example.com.', type='A', set-identifier='x'] but it was not found"},
		{"cname beside A", []types.Change{change(types.ChangeActionCreate, rrset("a.example.com.", types.RRTypeCname, 60, "x.example.net"))},
			"RRSet of type CNAME with DNS name a.example.com. is not permitted as it conflicts with other records with the same DNS name in zone example.com."},
		{"cname at apex", []types.Change{change(types.ChangeActionCreate, rrset("example.com.", types.RRTypeCname, 60, "x.example.net"))},
			"is not permitted at apex in zone example.com."},
		{"two cname values", []types.Change{change(types.ChangeActionCreate, rrset("c.example.com.", types.RRTypeCname, 60, "x.example.net", "y.example.net"))},
			"contains more than one value"},
		{"weighted beside plain", []types.Change{change(types.ChangeActionCreate, weighted(rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.3"), "w", 1))},
			"cannot be created as a non-weighted set exists with the same name and type"},
		{"outside the zone", []types.Change{change(types.ChangeActionCreate, rrset("a.example.org.", types.RRTypeA, 60, "192.0.2.1"))},
			"RRSet with DNS name a.example.org. is not permitted in zone example.com."},
		{"bad IPv4", []types.Change{change(types.ChangeActionCreate, rrset("d.example.com.", types.RRTypeA, 60, "192.0.2"))},
			"ARRDATAIllegalIPv4Address"},
		{"long TXT string", []types.Change{change(types.ChangeActionCreate, rrset("d.example.com.", types.RRTypeTxt, 60, `"`+strings.Repeat("x", 256)+`"`))},
			"CharacterStringTooLong"},
		{"apex NS", []types.Change{change(types.ChangeActionDelete, rrset("example.com.", types.RRTypeNs, 172800,
			"ns-1.awsdns-01.org.", "ns-2.awsdns-02.co.uk.", "ns-3.awsdns-03.com.", "ns-4.awsdns-04.net."))},
			"must contain at least one NS record"},
		{"all or nothing", []types.Change{
			change(types.ChangeActionCreate, rrset("e.example.com.", types.RRTypeA, 60, "192.0.2.1")),
			change(types.ChangeActionCreate, rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.1"))},
			"but it already exists"},
	} {
		_, err := send(c, e, tc.changes...)
		var icb *types.InvalidChangeBatch
		if !errors.As(err, &icb) || !strings.Contains(strings.Join(icb.Messages, "|"), tc.want) {
			t.Errorf("%s: %v (messages %v); want InvalidChangeBatch with %q", tc.name, err, icbMessages(icb), tc.want)
		}
	}
	if sets := e.RecordSets(); len(sets) != 3 { // NS, SOA, a
		t.Errorf("refused batches changed the zone: %+v", sets)
	}
	if n := len(e.Changes()); n != 1 {
		t.Errorf("%d changes logged, want the one CREATE", n)
	}

	// A DELETE then a CREATE of another type at the name passes in one batch.
	if _, err := send(c, e, change(types.ChangeActionDelete, rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.1")),
		change(types.ChangeActionCreate, rrset("a.example.com.", types.RRTypeCname, 60, "x.example.net"))); err != nil {
		t.Fatalf("DELETE A then CREATE CNAME: %v", err)
	}
}

func icbMessages(icb *types.InvalidChangeBatch) []string {
	if icb == nil {
		return nil
	}
	return icb.Messages
}

func TestInvalidInput(t *testing.T) {
	e := route53emu.New("example.com", route53emu.Options{})
	c := client(t, e)
	for _, tc := range []struct {
		name string
		rs   *types.ResourceRecordSet
		want string
	}{
		{"weight", weighted(rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.1"), "x", 256), "less than or equal to 255"},
		{"ttl", rrset("a.example.com.", types.RRTypeA, -1, "192.0.2.1"), "greater than or equal to 0"},
		{"no records", &types.ResourceRecordSet{Name: aws.String("a.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60)},
			"Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]"},
		{"identifier without weight", &types.ResourceRecordSet{Name: aws.String("a.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60),
			SetIdentifier: aws.String("x"), ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.1")}}}, "Expected exactly one of [Weight"},
	} {
		_, err := send(c, e, change(types.ChangeActionUpsert, tc.rs))
		var ii *types.InvalidInput
		if !errors.As(err, &ii) || !strings.Contains(aws.ToString(ii.Message), tc.want) {
			t.Errorf("%s: %v; want InvalidInput with %q", tc.name, err, tc.want)
		}
	}
}

func TestListPaging(t *testing.T) {
	e := route53emu.New("example.com", route53emu.Options{})
	c := client(t, e)
	var plant []route53emu.RecordSet
	for _, n := range []string{"www.example.com", "a.www.example.com", "www-2.example.com", "b.example.com", "_x.www.example.com"} {
		plant = append(plant, route53emu.RecordSet{Name: n, Type: "A", TTL: 60, Values: []string{"192.0.2.1"}})
	}
	w := int64(5)
	for _, id := range []string{"b", "a", "c"} {
		plant = append(plant, route53emu.RecordSet{Name: "w.example.com", Type: "CNAME", SetIdentifier: id, Weight: &w, TTL: 60, Values: []string{id + ".example.net"}})
	}
	if err := e.Plant(plant...); err != nil {
		t.Fatal(err)
	}
	var got []string
	p := r53.NewListResourceRecordSetsPaginator(c, &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(e.ZoneID()), MaxItems: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, rs := range out.ResourceRecordSets {
			got = append(got, aws.ToString(rs.Name)+" "+string(rs.Type)+" "+aws.ToString(rs.SetIdentifier))
		}
	}
	want := []string{"example.com. NS ", "example.com. SOA ", "b.example.com. A ", "w.example.com. CNAME a",
		"w.example.com. CNAME b", "w.example.com. CNAME c", "www-2.example.com. A ", "www.example.com. A ",
		"_x.www.example.com. A ", "a.www.example.com. A "}
	if !slices.Equal(got, want) || pages != 5 {
		t.Errorf("listed in %d pages:\n%s\nwant:\n%s", pages, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	out, err := c.ListResourceRecordSets(context.Background(), &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(e.ZoneID()),
		StartRecordName: aws.String("w.example.com"), StartRecordType: types.RRTypeCname, StartRecordIdentifier: aws.String("b"), MaxItems: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ResourceRecordSets) != 1 || aws.ToString(out.ResourceRecordSets[0].SetIdentifier) != "b" || !out.IsTruncated ||
		aws.ToString(out.NextRecordIdentifier) != "c" || aws.ToString(out.NextRecordName) != "w.example.com." {
		t.Errorf("start at w/CNAME/b: %+v", out)
	}
}

func TestChangeStatusAndZone(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := route53emu.New("Example.COM.", route53emu.Options{PendingPolls: 2, PendingFor: time.Minute, Now: clock, ZoneID: "Z0TEST"})
	c := client(t, e)
	out, err := send(c, e, change(types.ChangeActionCreate, rrset("a.example.com.", types.RRTypeA, 60, "192.0.2.1")))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ChangeInfo.Id)
	if out.ChangeInfo.Status != types.ChangeStatusPending || !strings.HasPrefix(id, "/change/C") || !out.ChangeInfo.SubmittedAt.Equal(now) {
		t.Fatalf("ChangeInfo %+v", out.ChangeInfo)
	}
	status := func() types.ChangeStatus {
		t.Helper()
		g, err := c.GetChange(context.Background(), &r53.GetChangeInput{Id: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return g.ChangeInfo.Status
	}
	for i := 0; i < 3; i++ {
		if s := status(); s != types.ChangeStatusPending {
			t.Fatalf("poll %d before PendingFor: %s", i+1, s)
		}
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if s := status(); s != types.ChangeStatusInsync {
		t.Fatalf("after 4 polls and PendingFor: %s", s)
	}
	if _, err := c.GetChange(context.Background(), &r53.GetChangeInput{Id: aws.String("C0NONE")}); !isCode(err, "NoSuchChange") {
		t.Errorf("unknown change: %v", err)
	}

	z, err := c.GetHostedZone(context.Background(), &r53.GetHostedZoneInput{Id: aws.String("/hostedzone/Z0TEST")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(z.HostedZone.Name) != "example.com." || aws.ToString(z.HostedZone.Id) != "/hostedzone/Z0TEST" ||
		len(z.DelegationSet.NameServers) != 4 || aws.ToInt64(z.HostedZone.ResourceRecordSetCount) != 3 {
		t.Errorf("GetHostedZone = %+v %+v", z.HostedZone, z.DelegationSet)
	}
	var nsz *types.NoSuchHostedZone
	if _, err := c.GetHostedZone(context.Background(), &r53.GetHostedZoneInput{Id: aws.String("Z0OTHER")}); !errors.As(err, &nsz) {
		t.Errorf("another zone: %v; want NoSuchHostedZone", err)
	}
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

func TestFaults(t *testing.T) {
	e := route53emu.New("example.com", route53emu.Options{})
	c := client(t, e)
	e.Fail(route53emu.OpList, route53emu.Throttling(), route53emu.PriorRequestNotComplete(), route53emu.ServerError(), route53emu.Unavailable())
	in := &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(e.ZoneID())}
	for _, want := range []struct {
		code   string
		status int
	}{{"Throttling", 400}, {"PriorRequestNotComplete", 400}, {"InternalFailure", 500}, {"ServiceUnavailable", 503}} {
		_, err := c.ListResourceRecordSets(context.Background(), in)
		var re *awshttp.ResponseError
		if !isCode(err, want.code) || !errors.As(err, &re) || re.HTTPStatusCode() != want.status {
			t.Errorf("fault: %v; want %s (%d)", err, want.code, want.status)
		}
		if want.code == "Throttling" && !strings.Contains(err.Error(), "Rate exceeded") {
			t.Errorf("throttling says %v", err)
		}
	}
	if _, err := c.ListResourceRecordSets(context.Background(), in); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	if n := e.Calls(route53emu.OpList); n != 5 {
		t.Errorf("Calls = %d, want 5", n)
	}

	resp, err := http.Get(httptest.NewServer(e).URL + "/2013-04-01/hostedzone/" + e.ZoneID())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an unsigned request got %d, want 403", resp.StatusCode)
	}
}

func TestDNS(t *testing.T) {
	e := route53emu.New("example.com", route53emu.Options{Seed: 1})
	c := client(t, e)
	srv, err := e.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	w := func(n int64) *int64 { return &n }
	if err := e.Plant(
		route53emu.RecordSet{Name: "a.x.example.com", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}},
		route53emu.RecordSet{Name: "t.example.com", Type: "TXT", TTL: 60, Values: []string{`"hello world"`}},
		route53emu.RecordSet{Name: "w.example.com", Type: "A", SetIdentifier: "one", Weight: w(3), TTL: 60, Values: []string{"192.0.2.10"}},
		route53emu.RecordSet{Name: "w.example.com", Type: "A", SetIdentifier: "two", Weight: w(1), TTL: 60, Values: []string{"192.0.2.20"}},
		route53emu.RecordSet{Name: "z.example.com", Type: "A", SetIdentifier: "one", Weight: w(0), TTL: 60, Values: []string{"192.0.2.10"}},
		route53emu.RecordSet{Name: "z.example.com", Type: "A", SetIdentifier: "two", Weight: w(0), TTL: 60, Values: []string{"192.0.2.20"}},
		route53emu.RecordSet{Name: "c.example.com", Type: "CNAME", TTL: 60, Values: []string{"a.x.example.com"}},
	); err != nil {
		t.Fatal(err)
	}
	q := func(name string, qt uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		r, err := dns.Exchange(m, srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := q("www.example.org.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("outside the zone: %s", dns.RcodeToString[r.Rcode])
	}
	if r := q("nope.example.com.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("missing name: %s", dns.RcodeToString[r.Rcode])
	}
	if r := q("x.example.com.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("empty non-terminal: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if r := q("t.example.com.", dns.TypeTXT); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "hello world" {
		t.Errorf("TXT: %v", r.Answer)
	}
	if got, err := dnstest.Lookup(context.Background(), srv.Addr(), "c.example.com"); err != nil || !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("CNAME in the zone: %v, %v", got, err)
	}
	count := func(name string) map[string]int {
		n := map[string]int{}
		for i := 0; i < 400; i++ {
			got, err := dnstest.Lookup(context.Background(), srv.Addr(), name)
			if err != nil || len(got) != 1 {
				t.Fatalf("lookup %s: %v, %v", name, got, err)
			}
			n[got[0]]++
		}
		return n
	}
	if n := count("w.example.com"); n["192.0.2.10"] < 250 || n["192.0.2.20"] < 60 {
		t.Errorf("weights 3:1 answered %v", n)
	}
	if n := count("z.example.com"); n["192.0.2.10"] < 140 || n["192.0.2.20"] < 140 {
		t.Errorf("weights 0:0 answered %v", n)
	}

	// A PENDING change is not answered yet; INSYNC, it is.
	e.SetPending(1)
	out, err := send(c, e, change(types.ChangeActionUpsert, rrset("t.example.com.", types.RRTypeTxt, 60, `"changed"`)))
	if err != nil {
		t.Fatal(err)
	}
	if r := q("t.example.com.", dns.TypeTXT); r.Answer[0].(*dns.TXT).Txt[0] != "hello world" {
		t.Errorf("PENDING change answered: %v", r.Answer)
	}
	if _, err := c.GetChange(context.Background(), &r53.GetChangeInput{Id: out.ChangeInfo.Id}); err != nil {
		t.Fatal(err)
	}
	if r := q("t.example.com.", dns.TypeTXT); r.Answer[0].(*dns.TXT).Txt[0] != "changed" {
		t.Errorf("INSYNC change not answered: %v", r.Answer)
	}
	e.Fail(route53emu.OpDNS, route53emu.Fault{})
	if r := q("t.example.com.", dns.TypeTXT); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("DNS fault: %s", dns.RcodeToString[r.Rcode])
	}
}
