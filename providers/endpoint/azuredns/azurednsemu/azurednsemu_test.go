package azurednsemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/providers/endpoint/azuredns/azurednsemu"
)

const (
	sub  = "00000000-0000-0000-0000-000000000002"
	rg   = "dns-rg"
	zone = "example.com"
)

type token struct{}

func (token) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func setup(t *testing.T) (*azurednsemu.Emulator, *httptest.Server, *armdns.RecordSetsClient) {
	t.Helper()
	emu := azurednsemu.New(sub, rg, zone, azurednsemu.Options{RetryAfter: 1500 * time.Millisecond})
	srv := httptest.NewUnstartedServer(emu)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := cloud.AzurePublic
	c.Services = map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {
		Audience: c.Services[cloud.ResourceManager].Audience, Endpoint: srv.URL}}
	cl, err := armdns.NewRecordSetsClient(sub, token{}, &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: c, Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return emu, srv, cl
}

func aSet(ttl int64, meta map[string]string, ips ...string) armdns.RecordSet {
	p := &armdns.RecordSetProperties{TTL: to.Ptr(ttl), Metadata: map[string]*string{}}
	for k, v := range meta {
		p.Metadata[k] = to.Ptr(v)
	}
	for _, ip := range ips {
		p.ARecords = append(p.ARecords, &armdns.ARecord{IPv4Address: to.Ptr(ip)})
	}
	return armdns.RecordSet{Properties: p}
}

func code(t *testing.T, err error) (int, string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a response error", err)
	}
	return re.StatusCode, re.ErrorCode
}

func TestEtags(t *testing.T) {
	emu, _, cl := setup(t)
	ctx := context.Background()
	star := &armdns.RecordSetsClientCreateOrUpdateOptions{IfNoneMatch: to.Ptr("*")}
	created, err := cl.CreateOrUpdate(ctx, rg, zone, "web", armdns.RecordTypeA, aSet(60, nil, "192.0.2.1"), star)
	if err != nil || created.Etag == nil || *created.Properties.Fqdn != "web.example.com." {
		t.Fatalf("create = %+v, %v", created, err)
	}
	if _, err := cl.CreateOrUpdate(ctx, rg, zone, "web", armdns.RecordTypeA, aSet(60, nil, "192.0.2.2"), star); err == nil {
		t.Fatal("If-None-Match * over an existing record set passed")
	} else if s, c := code(t, err); s != 412 || c != "PreconditionFailed" {
		t.Fatalf("If-None-Match * over an existing record set: %d %s", s, c)
	}
	stale := &armdns.RecordSetsClientCreateOrUpdateOptions{IfMatch: to.Ptr("not-the-etag")}
	if _, err := cl.CreateOrUpdate(ctx, rg, zone, "web", armdns.RecordTypeA, aSet(60, nil, "192.0.2.2"), stale); err == nil {
		t.Fatal("a stale If-Match passed")
	}
	upd, err := cl.CreateOrUpdate(ctx, rg, zone, "web", armdns.RecordTypeA, aSet(60, nil, "192.0.2.2"),
		&armdns.RecordSetsClientCreateOrUpdateOptions{IfMatch: created.Etag})
	if err != nil || *upd.Etag == *created.Etag {
		t.Fatalf("update with the right etag = %+v, %v", upd, err)
	}
	if _, err := cl.Delete(ctx, rg, zone, "web", armdns.RecordTypeA, &armdns.RecordSetsClientDeleteOptions{IfMatch: created.Etag}); err == nil {
		t.Fatal("a delete with a stale etag passed")
	}
	got, err := cl.Get(ctx, rg, zone, "web", armdns.RecordTypeA, nil)
	if err != nil || *got.Etag != *upd.Etag || *got.Properties.ARecords[0].IPv4Address != "192.0.2.2" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := cl.Delete(ctx, rg, zone, "web", armdns.RecordTypeA, &armdns.RecordSetsClientDeleteOptions{IfMatch: upd.Etag}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Delete(ctx, rg, zone, "web", armdns.RecordTypeA, nil); err != nil {
		t.Fatalf("deleting what is gone: %v", err)
	}
	if _, err := cl.Get(ctx, rg, zone, "web", armdns.RecordTypeA, nil); err == nil {
		t.Fatal("get after delete passed")
	} else if s, c := code(t, err); s != 404 || c != "NotFound" {
		t.Fatalf("get after delete: %d %s", s, c)
	}
	var ops []string
	for _, c := range emu.Changes() {
		ops = append(ops, c.Op+" "+c.Type+" "+c.Name)
	}
	if want := []string{"create A web", "update A web", "delete A web"}; !slices.Equal(ops, want) {
		t.Fatalf("changes %v, want %v", ops, want)
	}
}

func TestRules(t *testing.T) {
	emu, _, cl := setup(t)
	ctx := context.Background()
	if _, err := cl.CreateOrUpdate(ctx, rg, zone, "web", armdns.RecordTypeA, aSet(60, nil, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	cname := armdns.RecordSet{Properties: &armdns.RecordSetProperties{TTL: to.Ptr[int64](60), CnameRecord: &armdns.CnameRecord{Cname: to.Ptr("lb.example.net")}}}
	if _, err := cl.CreateOrUpdate(ctx, rg, zone, "web", armdns.RecordTypeCNAME, cname, nil); err == nil {
		t.Fatal("a CNAME beside an A passed")
	} else if s, c := code(t, err); s != 409 || c != "Conflict" {
		t.Fatalf("CNAME beside A: %d %s", s, c)
	}
	if err := emu.Plant(azurednsemu.RecordSet{Name: "www", Type: "CNAME", TTL: 60, CNAME: "web.example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateOrUpdate(ctx, rg, zone, "www", armdns.RecordTypeA, aSet(60, nil, "192.0.2.1"), nil); err == nil {
		t.Fatal("an A beside a CNAME passed")
	}
	var many []string
	for i := 0; i <= azurednsemu.MaxRecordsPerRecordSet; i++ {
		many = append(many, fmt.Sprintf("192.0.2.%d", i))
	}
	for name, rs := range map[string]armdns.RecordSet{
		"21 records":     aSet(60, nil, many...),
		"IPv6 in an A":   aSet(60, nil, "2001:db8::1"),
		"negative TTL":   aSet(-1, nil, "192.0.2.1"),
		"key with space": aSet(60, map[string]string{"a key": "v"}, "192.0.2.1"),
		"key digit":      aSet(60, map[string]string{"1key": "v"}, "192.0.2.1"),
		"long value":     aSet(60, map[string]string{"key": strings.Repeat("v", azurednsemu.MaxMetadataValue+1)}, "192.0.2.1"),
		"keys by case":   aSet(60, map[string]string{"key": "a", "KEY": "b"}, "192.0.2.1"),
		"no TTL":         {Properties: &armdns.RecordSetProperties{ARecords: []*armdns.ARecord{{IPv4Address: to.Ptr("192.0.2.1")}}}},
		"AAAA in an A":   {Properties: &armdns.RecordSetProperties{TTL: to.Ptr[int64](1), AaaaRecords: []*armdns.AaaaRecord{{IPv6Address: to.Ptr("2001:db8::1")}}}},
	} {
		if _, err := cl.CreateOrUpdate(ctx, rg, zone, "bad", armdns.RecordTypeA, rs, nil); err == nil {
			t.Errorf("%s: passed", name)
		} else if s, c := code(t, err); s != 400 || c != "BadRequest" {
			t.Errorf("%s: %d %s", name, s, c)
		}
	}
	if _, err := cl.CreateOrUpdate(ctx, rg, zone, "bad..name", armdns.RecordTypeA, aSet(60, nil, "192.0.2.1"), nil); err == nil {
		t.Error("a bad name passed")
	}
	// PATCH changes only what it gives.
	upd, err := cl.Update(ctx, rg, zone, "web", armdns.RecordTypeA,
		armdns.RecordSet{Properties: &armdns.RecordSetProperties{Metadata: map[string]*string{"k": to.Ptr("v")}}}, nil)
	if err != nil || len(upd.Properties.ARecords) != 1 || *upd.Properties.Metadata["k"] != "v" || *upd.Properties.TTL != 60 {
		t.Fatalf("patch = %+v, %v", upd.Properties, err)
	}
	// Another zone, resource group: 404 with their codes.
	if _, err := cl.Get(ctx, rg, "other.example", "web", armdns.RecordTypeA, nil); err == nil {
		t.Fatal("get in another zone passed")
	} else if s, c := code(t, err); s != 404 || c != "ParentResourceNotFound" {
		t.Fatalf("other zone: %d %s", s, c)
	}
	if _, err := cl.Get(ctx, "other-rg", zone, "web", armdns.RecordTypeA, nil); err == nil {
		t.Fatal("get in another resource group passed")
	} else if s, c := code(t, err); s != 404 || c != "ResourceGroupNotFound" {
		t.Fatalf("other resource group: %d %s", s, c)
	}
}

// TestWire: the error body shape, the bearer token, the api-version and throttling's headers, over plain HTTP.
func TestWire(t *testing.T) {
	emu, srv, _ := setup(t)
	path := srv.URL + "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.Network/dnsZones/" + zone + "/A/web"
	do := func(url string, auth bool) (*http.Response, map[string]map[string]string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer x")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	if resp, body := do(path+"?api-version="+azurednsemu.APIVersion, false); resp.StatusCode != 401 || body["error"]["code"] != "AuthenticationFailed" {
		t.Fatalf("no token: %d %v", resp.StatusCode, body)
	}
	if resp, body := do(path+"?api-version=2016-04-01", true); resp.StatusCode != 400 || body["error"]["code"] != "InvalidApiVersionParameter" {
		t.Fatalf("old api-version: %d %v", resp.StatusCode, body)
	}
	emu.Fail(azurednsemu.OpGet, azurednsemu.Throttle)
	resp, body := do(path+"?api-version="+azurednsemu.APIVersion, true)
	if resp.StatusCode != 429 || body["error"]["code"] != "TooManyRequests" || body["error"]["message"] == "" ||
		resp.Header.Get("Retry-After") != "2" || resp.Header.Get("retry-after-ms") != "1500" {
		t.Fatalf("throttled: %d %v %v", resp.StatusCode, resp.Header, body)
	}
	if resp, body := do(path+"?api-version="+azurednsemu.APIVersion, true); resp.StatusCode != 404 || body["error"]["code"] != "NotFound" {
		t.Fatalf("after the fault: %d %v", resp.StatusCode, body)
	}
}

// TestList: pages through nextLink, by type, and with a name suffix.
func TestList(t *testing.T) {
	emu, _, cl := setup(t)
	ctx := context.Background()
	for i := 0; i < 250; i++ {
		if err := emu.Plant(azurednsemu.RecordSet{Name: fmt.Sprintf("n%03d", i), Type: "A", TTL: 60, A: []string{"192.0.2.1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := emu.Plant(azurednsemu.RecordSet{Name: "x.web", Type: "TXT", TTL: 60, TXT: [][]string{{"hello"}}}); err != nil {
		t.Fatal(err)
	}
	count := func(p interface {
		More() bool
	}, next func() (int, error)) int {
		n := 0
		for p.More() {
			k, err := next()
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
		return n
	}
	p1 := cl.NewListByDNSZonePager(rg, zone, nil)
	if n := count(p1, func() (int, error) { pg, err := p1.NextPage(ctx); return len(pg.Value), err }); n != 251 {
		t.Fatalf("list: %d record sets, want 251", n)
	}
	p2 := cl.NewListAllByDNSZonePager(rg, zone, &armdns.RecordSetsClientListAllByDNSZoneOptions{Top: to.Ptr[int32](7)})
	if n := count(p2, func() (int, error) { pg, err := p2.NextPage(ctx); return len(pg.Value), err }); n != 251 {
		t.Fatalf("list all by 7: %d record sets, want 251", n)
	}
	p3 := cl.NewListByTypePager(rg, zone, armdns.RecordTypeTXT, nil)
	if n := count(p3, func() (int, error) { pg, err := p3.NextPage(ctx); return len(pg.Value), err }); n != 1 {
		t.Fatalf("list TXT: %d, want 1", n)
	}
	p4 := cl.NewListByDNSZonePager(rg, zone, &armdns.RecordSetsClientListByDNSZoneOptions{Recordsetnamesuffix: to.Ptr("web")})
	if n := count(p4, func() (int, error) { pg, err := p4.NextPage(ctx); return len(pg.Value), err }); n != 1 {
		t.Fatalf("list with suffix web: %d, want 1", n)
	}
}

func query(t *testing.T, addr, name string, qt uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDNS(t *testing.T) {
	emu, _, _ := setup(t)
	d, err := emu.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, rs := range []azurednsemu.RecordSet{
		{Name: "web", Type: "A", TTL: 60, A: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
		{Name: "www", Type: "CNAME", TTL: 30, CNAME: "web.example.com"},
		{Name: "out", Type: "CNAME", TTL: 30, CNAME: "lb.example.net"},
		{Name: "txt.deep", Type: "TXT", TTL: 30, TXT: [][]string{{"a", "b"}}},
	} {
		if err := emu.Plant(rs); err != nil {
			t.Fatal(err)
		}
	}
	first := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := query(t, d.Addr(), "web.example.com", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 3 || !r.Authoritative {
			t.Fatalf("A web: %v", r)
		}
		first[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(first) != 3 {
		t.Fatalf("three queries started with %v: want the order to rotate", first)
	}
	if r := query(t, d.Addr(), "www.example.com", dns.TypeA); len(r.Answer) != 4 || r.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Fatalf("A www (CNAME in the zone): %v", r.Answer)
	}
	if r := query(t, d.Addr(), "out.example.com", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.CNAME).Target != "lb.example.net." {
		t.Fatalf("A out (CNAME outside): %v", r.Answer)
	}
	if r := query(t, d.Addr(), "web.example.com", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("AAAA web (no data): %v", r)
	}
	if r := query(t, d.Addr(), "deep.example.com", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("an empty non-terminal: %v", dns.RcodeToString[r.Rcode])
	}
	if r := query(t, d.Addr(), "txt.deep.example.com", dns.TypeTXT); len(r.Answer) != 1 || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != "ab" {
		t.Fatalf("TXT: %v", r.Answer)
	}
	if r := query(t, d.Addr(), "nope.example.com", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("missing name: %v", dns.RcodeToString[r.Rcode])
	}
	if r := query(t, d.Addr(), "web.example.org", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Fatalf("outside the zone: %v", dns.RcodeToString[r.Rcode])
	}
}
