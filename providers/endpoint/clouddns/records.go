package clouddns

import (
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// memberLabel is the label between a member's target and the stable name in a per-member name:
// "<target>._berth.<name>".
const memberLabel = "._berth."

// memberName is the per-member name of target under name (both as Fqdn).
func memberName(name, target string) string { return target + memberLabel + name }

// targetOf reads the target back from a per-member name of name; false when it is not one.
func targetOf(name, member string) (string, bool) {
	t, ok := strings.CutSuffix(endpoint.Fqdn(member), memberLabel+name)
	return t, ok && t != "" && !strings.Contains(t, ".")
}

// state is what berth may have written for one name: the sets at the name, the ownership set, and the sets at
// per-member names, as the API read them.
type state struct {
	at, owner []*dnsv1.ResourceRecordSet
	// members holds the per-member names' sets, by target.
	members map[string][]*dnsv1.ResourceRecordSet
}

// all lists every set of the state, in a stable order: the name's, the members' by target, the ownership last.
func (s *state) all() []*dnsv1.ResourceRecordSet {
	out := slices.Clone(s.at)
	targets := make([]string, 0, len(s.members))
	for t := range s.members {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		out = append(out, s.members[t]...)
	}
	return append(out, s.owner...)
}

// check checks the ownership set against owner: nil when it is owner's, or when there is neither ownership nor
// anything at the name (free); ErrNotOwned otherwise.
func (s *state) check(owner endpoint.Owner, name string) error {
	switch {
	case len(s.owner) == 0 && len(s.at) == 0:
		return nil
	case len(s.owner) == 0:
		return fmt.Errorf("%s has %s records and no ownership record %s: %w", name, s.at[0].Type,
			endpoint.OwnerRecordName(name), endpoint.ErrNotOwned)
	}
	o := s.owner[0]
	if len(o.Rrdatas) != 1 || o.RoutingPolicy != nil {
		return fmt.Errorf("%s: the ownership record %s is not one berth wrote: %w", name, o.Name, endpoint.ErrNotOwned)
	}
	got, ok := endpoint.ParseOwnerText(o.Rrdatas[0])
	switch {
	case !ok:
		return fmt.Errorf("%s: the ownership record %s is not one berth wrote: %w", name, o.Name, endpoint.ErrNotOwned)
	case got != owner:
		return fmt.Errorf("%s is owned by %s, not %s: %w", name, got, owner, endpoint.ErrNotOwned)
	}
	return nil
}

// record reads the state back as members (targets, addresses, weights). The state is owner's.
func (s *state) record(name string) (*endpoint.Record, error) {
	if len(s.owner) == 0 && len(s.at) == 0 {
		return nil, nil
	}
	rec := &endpoint.Record{Name: name, Members: []endpoint.Member{}}
	if len(s.owner) > 0 {
		rec.TTL = time.Duration(s.owner[0].Ttl) * time.Second
	}
	for _, set := range s.at {
		if set.Type != "CNAME" || set.RoutingPolicy == nil || set.RoutingPolicy.Wrr == nil {
			return nil, fmt.Errorf("%s: a %s record set that is not berth's weighted CNAME (it was changed by hand; "+
				"a Set replaces it)", name, set.Type)
		}
		rec.TTL = time.Duration(set.Ttl) * time.Second
		for i, it := range set.RoutingPolicy.Wrr.Items {
			if len(it.Rrdatas) != 1 {
				return nil, fmt.Errorf("%s: weighted item %d has %d records, want one per-member name", name, i, len(it.Rrdatas))
			}
			t, ok := targetOf(name, it.Rrdatas[0])
			if !ok {
				return nil, fmt.Errorf("%s: weighted item %d points at %s, not a per-member name <target>%s%s", name, i,
					it.Rrdatas[0], memberLabel, name)
			}
			m := endpoint.Member{Target: t, Weight: weightOf(it.Weight)}
			for _, ms := range s.members[t] {
				switch ms.Type {
				case "A", "AAAA":
					m.Addresses = append(m.Addresses, ms.Rrdatas...)
				case "CNAME":
					for _, d := range ms.Rrdatas {
						m.Addresses = append(m.Addresses, strings.TrimSuffix(d, "."))
					}
				}
			}
			sort.Strings(m.Addresses)
			rec.Members = append(rec.Members, m)
		}
	}
	return rec, nil
}

// weightOf is an item's weight as a member's: rounded, within 0..MaxWeight (a weight set by hand may be above).
func weightOf(w float64) int {
	switch {
	case !(w > 0): // NaN too
		return 0
	case w >= endpoint.MaxWeight:
		return endpoint.MaxWeight
	}
	return int(math.Round(w))
}

// desired is what name serves for owner and members: the weighted CNAME at name, each member's per-member name,
// the ownership TXT. Members are sorted by target, addresses as the API returns them.
func desired(owner endpoint.Owner, name string, ttl time.Duration, members []endpoint.Member) (*state, error) {
	secs := int64(ttl / time.Second)
	set := func(name, typ string, rrdatas ...string) *dnsv1.ResourceRecordSet {
		s := &dnsv1.ResourceRecordSet{Name: name, Type: typ, Ttl: secs, Rrdatas: rrdatas}
		if secs == 0 {
			s.ForceSendFields = []string{"Ttl"}
		}
		return s
	}
	ms := slices.Clone(members)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Target < ms[j].Target })
	st := &state{members: map[string][]*dnsv1.ResourceRecordSet{},
		owner: []*dnsv1.ResourceRecordSet{set(endpoint.OwnerRecordName(name), "TXT", `"`+endpoint.OwnerText(owner)+`"`)}}
	var items []*dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem
	for _, m := range ms {
		if !targetRE(m.Target) {
			return nil, providers.Permanent(fmt.Errorf("%w: member target %q is not a DNS label (its per-member name "+
				"is <target>%s%s)", endpoint.ErrBadMember, m.Target, memberLabel, name))
		}
		mn := memberName(name, m.Target)
		if len(mn) > 254 {
			return nil, providers.Permanent(fmt.Errorf("%w: the per-member name %s is longer than 253 characters",
				endpoint.ErrBadMember, mn))
		}
		if len(m.Addresses) == 0 {
			return nil, providers.Permanent(fmt.Errorf("%w: member %s has no address (Cloud DNS cannot follow a watch)",
				endpoint.ErrBadMember, m.Target))
		}
		if m.HostName() {
			st.members[m.Target] = []*dnsv1.ResourceRecordSet{set(mn, "CNAME", endpoint.Fqdn(m.Addresses[0]))}
		} else {
			var v4, v6 []string
			for _, a := range m.Addresses {
				ip := net.ParseIP(a)
				switch {
				case ip == nil:
					return nil, providers.Permanent(fmt.Errorf("%w: member %s: %q is neither an IP address nor the "+
						"member's one host name", endpoint.ErrBadMember, m.Target, a))
				case ip.To4() != nil:
					v4 = append(v4, ip.To4().String())
				default:
					v6 = append(v6, ip.String())
				}
			}
			sort.Strings(v4)
			sort.Strings(v6)
			if len(v4) > 0 {
				st.members[m.Target] = append(st.members[m.Target], set(mn, "A", slices.Compact(v4)...))
			}
			if len(v6) > 0 {
				st.members[m.Target] = append(st.members[m.Target], set(mn, "AAAA", slices.Compact(v6)...))
			}
		}
		it := &dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem{Weight: float64(m.Weight), Rrdatas: []string{mn}}
		if m.Weight == 0 {
			it.ForceSendFields = []string{"Weight"}
		}
		items = append(items, it)
	}
	if len(items) > 0 {
		s := set(name, "CNAME")
		s.Rrdatas = nil
		s.RoutingPolicy = &dnsv1.RRSetRoutingPolicy{Wrr: &dnsv1.RRSetRoutingPolicyWrrPolicy{Items: items}}
		st.at = []*dnsv1.ResourceRecordSet{s}
	}
	return st, nil
}

// targetRE tells whether a target is one DNS label (berth's target names are: lower-case letters, digits, '-').
func targetRE(t string) bool {
	if t == "" || len(t) > 63 || t[0] == '-' || t[len(t)-1] == '-' {
		return false
	}
	for _, c := range t {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// diff is the change from cur to want: a set is deleted (exactly as read) and added when it differs, kept when
// equal. Deletions come in cur's order (the ownership last), additions in want's (the ownership last).
func diff(cur, want *state) *dnsv1.Change {
	type key struct{ name, typ string }
	keyOf := func(s *dnsv1.ResourceRecordSet) key { return key{endpoint.Fqdn(s.Name), s.Type} }
	have := map[key]*dnsv1.ResourceRecordSet{}
	for _, s := range cur.all() {
		have[keyOf(s)] = s
	}
	wanted := map[key]*dnsv1.ResourceRecordSet{}
	for _, s := range want.all() {
		wanted[keyOf(s)] = s
	}
	c := &dnsv1.Change{}
	for _, s := range cur.all() {
		if w, ok := wanted[keyOf(s)]; !ok || !equal(s, w) {
			c.Deletions = append(c.Deletions, forDeletion(s))
		}
	}
	for _, s := range want.all() {
		if h, ok := have[keyOf(s)]; !ok || !equal(h, s) {
			c.Additions = append(c.Additions, s)
		}
	}
	return c
}

// forDeletion is a set as read, without the output-only fields, to be sent back as a deletion.
func forDeletion(s *dnsv1.ResourceRecordSet) *dnsv1.ResourceRecordSet {
	d := &dnsv1.ResourceRecordSet{Name: s.Name, Type: s.Type, Ttl: s.Ttl, Rrdatas: s.Rrdatas}
	if s.Ttl == 0 {
		d.ForceSendFields = []string{"Ttl"}
	}
	if p := s.RoutingPolicy; p != nil {
		d.RoutingPolicy = &dnsv1.RRSetRoutingPolicy{Geo: p.Geo, PrimaryBackup: p.PrimaryBackup, HealthCheck: p.HealthCheck}
		if p.Wrr != nil {
			d.RoutingPolicy.Wrr = &dnsv1.RRSetRoutingPolicyWrrPolicy{}
			for _, it := range p.Wrr.Items {
				d.RoutingPolicy.Wrr.Items = append(d.RoutingPolicy.Wrr.Items, &dnsv1.RRSetRoutingPolicyWrrPolicyWrrPolicyItem{
					Weight: it.Weight, Rrdatas: it.Rrdatas, HealthCheckedTargets: it.HealthCheckedTargets,
					ForceSendFields: []string{"Weight"}})
			}
		}
	}
	return d
}

// equal compares two sets of one name and type: ttl, records (in any order), the weighted items in order.
func equal(a, b *dnsv1.ResourceRecordSet) bool {
	norm := func(rr []string) []string {
		out := make([]string, len(rr))
		for i, r := range rr {
			out[i] = strings.ToLower(r)
		}
		sort.Strings(out)
		return out
	}
	if a.Ttl != b.Ttl || !slices.Equal(norm(a.Rrdatas), norm(b.Rrdatas)) || (a.RoutingPolicy == nil) != (b.RoutingPolicy == nil) {
		return false
	}
	if a.RoutingPolicy == nil {
		return true
	}
	pa, pb := a.RoutingPolicy, b.RoutingPolicy
	if pa.Geo != nil || pb.Geo != nil || pa.PrimaryBackup != nil || pb.PrimaryBackup != nil || pa.HealthCheck != pb.HealthCheck ||
		(pa.Wrr == nil) != (pb.Wrr == nil) {
		return false
	}
	if pa.Wrr == nil {
		return true
	}
	if len(pa.Wrr.Items) != len(pb.Wrr.Items) {
		return false
	}
	for i := range pa.Wrr.Items {
		x, y := pa.Wrr.Items[i], pb.Wrr.Items[i]
		if x.Weight != y.Weight || x.HealthCheckedTargets != nil || y.HealthCheckedTargets != nil ||
			!slices.Equal(norm(x.Rrdatas), norm(y.Rrdatas)) {
			return false
		}
	}
	return true
}
