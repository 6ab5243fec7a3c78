package azuredns

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/endpoint"
)

// FuzzMetadata: whatever the members (targets of any characters, many addresses), the metadata keeps Azure's
// bounds and reads back to the same members.
func FuzzMetadata(f *testing.F) {
	f.Add("aws", 50, "192.0.2.1,192.0.2.2", "gcp;w=1,a=b&c", 0, "lb.example.net")
	f.Add("a%2Cb", 100, strings.Repeat("2001:db8::1,", 30), "", 7, "")
	owner := endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	f.Fuzz(func(t *testing.T, t0 string, w0 int, a0 string, t1 string, w1 int, a1 string) {
		ms := []endpoint.Member{{Target: t0, Weight: w0, Addresses: split(a0)}, {Target: t1, Weight: w1, Addresses: split(a1)}}
		if endpoint.CheckMembers(ms, true) != nil {
			return
		}
		for _, m := range ms {
			for _, a := range m.Addresses {
				if strings.ContainsAny(a, ",;") || a == "" {
					return // not an address
				}
			}
		}
		meta, err := metadata(owner, ms)
		if err != nil {
			return // too many entries: refused, fine
		}
		for k, v := range meta {
			if len(v) > MaxMetadataValue || strings.ToLower(k) != k || strings.ContainsAny(k, " -.") {
				t.Fatalf("metadata %q=%q breaks Azure's bounds", k, v)
			}
		}
		got, err := members(meta)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, ms, func(a, b endpoint.Member) bool {
			return a.Target == b.Target && a.Weight == b.Weight && slices.Equal(a.Addresses, b.Addresses)
		}) {
			t.Fatalf("members %+v read back as %+v", ms, got)
		}
	})
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, ","), ",")
}

// TestLayout: what a name serves for a mix of members (table): always a CNAME at the name, written last, to a
// host name or to the per-member name's A/AAAA record sets.
func TestLayout(t *testing.T) {
	owner := endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	m := func(target string, w int, addrs ...string) endpoint.Member {
		return endpoint.Member{Target: target, Weight: w, Addresses: addrs}
	}
	for _, c := range []struct {
		name string
		ms   []endpoint.Member
		want []string
	}{
		{"ips", []endpoint.Member{m("a", 50, "192.0.2.1"), m("b", 50, "192.0.2.2", "192.0.2.1")},
			[]string{"_berth.web A [192.0.2.1 192.0.2.2]", "web CNAME _berth.web.example.com"}},
		{"weight 0 left out", []endpoint.Member{m("a", 0, "192.0.2.1"), m("b", 1, "192.0.2.2")},
			[]string{"_berth.web A [192.0.2.2]", "web CNAME _berth.web.example.com"}},
		{"all 0 alike", []endpoint.Member{m("a", 0, "192.0.2.1"), m("b", 0, "192.0.2.2")},
			[]string{"_berth.web A [192.0.2.1 192.0.2.2]", "web CNAME _berth.web.example.com"}},
		{"v4 and v6", []endpoint.Member{m("a", 1, "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.3")},
			[]string{"_berth.web A [192.0.2.1 192.0.2.3]", "_berth.web AAAA [2001:db8::1]", "web CNAME _berth.web.example.com"}},
		{"v6 only", []endpoint.Member{m("a", 1, "2001:db8::1")}, []string{"_berth.web AAAA [2001:db8::1]", "web CNAME _berth.web.example.com"}},
		{"host wins", []endpoint.Member{m("a", 60, "lb.example.net."), m("b", 40, "192.0.2.2")}, []string{"web CNAME lb.example.net"}},
		{"tie to the later", []endpoint.Member{m("a", 50, "LB.example.net"), m("b", 50, "192.0.2.2")},
			[]string{"_berth.web A [192.0.2.2]", "web CNAME _berth.web.example.com"}},
		{"tie to the later host", []endpoint.Member{m("b", 50, "192.0.2.2"), m("a", 50, "LB.example.net")}, []string{"web CNAME lb.example.net"}},
		{"host of weight 0", []endpoint.Member{m("a", 0, "lb.example.net"), m("b", 1, "192.0.2.2")},
			[]string{"_berth.web A [192.0.2.2]", "web CNAME _berth.web.example.com"}},
		{"two hosts", []endpoint.Member{m("a", 70, "a.example.net"), m("b", 30, "b.example.net")}, []string{"web CNAME a.example.net"}},
	} {
		ws, err := layout("web", "example.com", owner, c.ms)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for i, w := range ws {
			// The CNAME at the name, last, carries the members; the per-member record sets the owner only.
			wantMeta := map[string]string{MetaOwner: endpoint.OwnerText(owner)}
			if i == len(ws)-1 {
				if w.slot != (slot{"web", "CNAME"}) {
					t.Errorf("%s: the last record set written is %v, want the CNAME at the name", c.name, w.slot)
				}
				wantMeta, _ = metadata(owner, c.ms)
			}
			if !maps.Equal(w.metadata, wantMeta) {
				t.Errorf("%s: %s %s metadata %v, want %v", c.name, w.typ, w.rel, w.metadata, wantMeta)
			}
			if w.typ == "CNAME" {
				got = append(got, w.rel+" CNAME "+w.cname)
			} else {
				got = append(got, w.rel+" "+string(w.typ)+" ["+strings.Join(w.ips, " ")+"]")
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
