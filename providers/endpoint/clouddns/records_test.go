package clouddns

import (
	"slices"
	"strings"
	"testing"
	"time"

	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers/endpoint"
)

var testOwner = endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}

// TestLayoutRoundTrip: what desired writes, record reads back as the same members; diff of a state with itself
// is empty, and from nothing it adds every set.
func TestLayoutRoundTrip(t *testing.T) {
	const name = "web.example.com."
	for _, ms := range [][]endpoint.Member{
		nil,
		{{Target: "aws", Addresses: []string{"192.0.2.2", "192.0.2.1"}, Weight: 100}},
		{{Target: "gcp", Addresses: []string{"lb.example.net"}, Weight: 0}, {Target: "aws", Addresses: []string{"2001:db8::2", "192.0.2.1"}, Weight: 7}},
	} {
		st, err := desired(testOwner, name, 90*time.Second, ms)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.check(testOwner, name); err != nil {
			t.Fatalf("%v: the state berth writes is not its own: %v", ms, err)
		}
		rec, err := st.record(name)
		if err != nil || rec == nil || rec.TTL != 90*time.Second || len(rec.Members) != len(ms) {
			t.Fatalf("%v: record = %+v, %v", ms, rec, err)
		}
		for _, m := range ms {
			got, ok := rec.Member(m.Target)
			want := slices.Sorted(slices.Values(m.Addresses))
			if !ok || got.Weight != m.Weight || !slices.Equal(got.Addresses, want) {
				t.Errorf("%v: %s reads back %+v", ms, m.Target, got)
			}
		}
		if c := diff(st, st); len(c.Additions)+len(c.Deletions) != 0 {
			t.Errorf("%v: diff with itself %+v", ms, c)
		}
		if c := diff(&state{}, st); len(c.Additions) != len(st.all()) || len(c.Deletions) != 0 ||
			c.Additions[len(c.Additions)-1].Type != "TXT" {
			t.Errorf("%v: diff from nothing %+v", ms, c)
		}
	}
}

// FuzzRecord: whatever a zone holds at a name berth owns, reading it back does not panic, and what it reads as
// members are targets of per-member names.
func FuzzRecord(f *testing.F) {
	f.Add("CNAME", "aws._berth.web.example.com.", 50.0, "A", "192.0.2.1")
	f.Add("A", "192.0.2.1", -1.0, "CNAME", "x.")
	f.Add("CNAME", "._berth.web.example.com.", 1e300, "TXT", `"a"`)
	f.Fuzz(func(t *testing.T, typ, rrdata string, weight float64, mtyp, mdata string) {
		const name = "web.example.com."
		st := &state{
			at: []*dnsv1.ResourceRecordSet{{Name: name, Type: typ, Ttl: 60, RoutingPolicy: &dnsv1.RRSetRoutingPolicy{
				Wrr: &dnsv1.RRSetRoutingPolicyWrrPolicy{Items: []*dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem{
					{Weight: weight, Rrdatas: []string{rrdata}}}}}}},
			owner:   []*dnsv1.ResourceRecordSet{{Name: endpoint.OwnerRecordName(name), Type: "TXT", Rrdatas: []string{endpoint.OwnerText(testOwner)}}},
			members: map[string][]*dnsv1.ResourceRecordSet{"aws": {{Name: "aws._berth." + name, Type: mtyp, Rrdatas: []string{mdata}}}},
		}
		rec, err := st.record(name)
		if err != nil {
			return
		}
		for _, m := range rec.Members {
			if m.Target == "" || strings.Contains(m.Target, ".") || m.Weight < 0 || m.Weight > endpoint.MaxWeight {
				t.Fatalf("member %+v read from %q, weight %v", m, rrdata, weight)
			}
		}
		_ = diff(st, &state{})
	})
}
