package azuredns

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// Limits of Azure DNS that the layout keeps to.
const (
	// MaxRecords is the most records a record set holds.
	MaxRecords = 20
	// MaxMetadata is the most metadata entries a record set carries; MaxMetadataValue the longest value.
	MaxMetadata      = 50
	MaxMetadataValue = 256
)

// Metadata keys. Azure DNS metadata keys are case-insensitive, must start with a letter and may not hold spaces
// or most punctuation, so berth's keys are lower-case letters, digits and '_' only.
const (
	// MetaOwner holds endpoint.OwnerText(owner) on every record set berth writes (the CNAME at the name and the
	// per-member ones).
	MetaOwner = "berth_owner"
	// metaMember starts the keys of the members, on the CNAME at the name: berth_member<i> holds member i's
	// first 256 characters, berth_member<i>_<j> (j = 1, 2, …) the rest.
	metaMember = "berth_member"
)

// memberLabel starts the per-member name "_berth.<name>" that holds the A/AAAA records of the IP members the
// CNAME at the name points at.
const memberLabel = "_berth"

// slot is one record set: its name relative to the zone and its type.
type slot struct {
	rel string
	typ armdns.RecordType
}

// want is a record set berth wants.
type want struct {
	slot
	ips      []string
	cname    string
	metadata map[string]string
}

// layout is what a name should hold for members: the record sets, in the order they are written, the CNAME at
// the name last.
//
// The name itself is always a CNAME: to the winning host name, or to the per-member name _berth.<name> whose
// A/AAAA record sets hold the addresses of every IP member served. A change of what the name serves is then an
// update of record sets in place: a switch between an A record set and a CNAME at the name would delete one and
// create the other (Azure refuses a CNAME beside other records), leaving the name unanswered for an API call, and
// resolvers may cache that NXDOMAIN for the zone's negative TTL.
//
// The CNAME carries the ownership and the members (Get reads them there); the per-member record sets carry the
// ownership only, so that a change of weights alone is one write, and what is left of an interrupted Delete is
// still known to be the owner's.
func layout(rel, zone string, owner endpoint.Owner, members []endpoint.Member) ([]want, error) {
	meta, err := metadata(owner, members)
	if err != nil {
		return nil, err
	}
	served := make([]endpoint.Member, 0, len(members))
	for _, m := range members {
		if m.Weight > 0 {
			served = append(served, m)
		}
	}
	if len(served) == 0 { // every weight 0: every member alike, as weighted DNS answers then
		served = members
	}
	name := slot{rel, armdns.RecordTypeCNAME}
	if slices.ContainsFunc(served, endpoint.Member.HostName) {
		// A CNAME holds one record: the member of the greatest weight, the later one on a tie.
		win := served[0]
		for _, m := range served[1:] {
			if m.Weight >= win.Weight {
				win = m
			}
		}
		if win.HostName() {
			return []want{{slot: name, cname: hostOf(win.Addresses[0]), metadata: meta}}, nil
		}
		served = []endpoint.Member{win}
	}
	mrel := memberLabel + "." + rel
	sets, err := ipSets(mrel, served, map[string]string{MetaOwner: meta[MetaOwner]})
	if err != nil {
		return nil, err
	}
	return append(sets, want{slot: name, cname: mrel + "." + zone, metadata: meta}), nil
}

// ipSets are the A record set (with IPv4 addresses) and the AAAA one (with IPv6 addresses) at rel serving every
// address of members, each once. Members are IP addresses, at least one each, so there is at least one set.
func ipSets(rel string, members []endpoint.Member, meta map[string]string) ([]want, error) {
	var v4, v6 []string
	for _, m := range members {
		for _, a := range m.Addresses {
			ip := net.ParseIP(a)
			s := ip.String()
			switch {
			case ip.To4() != nil: // IPv4, or IPv4-mapped IPv6: an A record either way
				if !slices.Contains(v4, s) {
					v4 = append(v4, s)
				}
			default:
				if !slices.Contains(v6, s) {
					v6 = append(v6, s)
				}
			}
		}
	}
	if len(v4) > MaxRecords || len(v6) > MaxRecords {
		return nil, providers.Permanent(fmt.Errorf("%w: %d IPv4 and %d IPv6 addresses to serve; an Azure DNS record set holds at most %d",
			endpoint.ErrBadMember, len(v4), len(v6), MaxRecords))
	}
	var sets []want
	if len(v4) > 0 {
		sets = append(sets, want{slot: slot{rel, armdns.RecordTypeA}, ips: v4, metadata: meta})
	}
	if len(v6) > 0 {
		sets = append(sets, want{slot: slot{rel, armdns.RecordTypeAAAA}, ips: v6, metadata: meta})
	}
	return sets, nil
}

func hostOf(a string) string { return strings.ToLower(strings.TrimSuffix(a, ".")) }

var hostLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$`)

func validHost(h string) bool {
	h = hostOf(h)
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// checkAddresses refuses members a DNS name cannot serve beyond endpoint.CheckMembers: no addresses (a watch
// alone), IPs mixed with host names, host names that are not DNS names.
func checkAddresses(members []endpoint.Member) error {
	for _, m := range members {
		if len(m.Addresses) == 0 {
			return providers.Permanent(fmt.Errorf("%w: member %s has no address (a DNS name cannot follow a watch)", endpoint.ErrBadMember, m.Target))
		}
		if m.HostName() {
			if !validHost(m.Addresses[0]) {
				return providers.Permanent(fmt.Errorf("%w: member %s: %q is neither an IP address nor a DNS name", endpoint.ErrBadMember, m.Target, m.Addresses[0]))
			}
			continue
		}
		for _, a := range m.Addresses {
			if net.ParseIP(a) == nil {
				return providers.Permanent(fmt.Errorf("%w: member %s: %q is not an IP address (a member is IP addresses or exactly one host name)", endpoint.ErrBadMember, m.Target, a))
			}
		}
	}
	return nil
}

// encodeMember is member m as one text: "w=<weight>;t=<target, query-escaped>;a=<addr>,<addr>".
func encodeMember(m endpoint.Member) string {
	return "w=" + strconv.Itoa(m.Weight) + ";t=" + url.QueryEscape(m.Target) + ";a=" + strings.Join(m.Addresses, ",")
}

func decodeMember(s string) (endpoint.Member, error) {
	var m endpoint.Member
	seen := 0
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("member %q: %q is not key=value", s, part)
		}
		switch k {
		case "w":
			w, err := strconv.Atoi(v)
			if err != nil || w < 0 || w > endpoint.MaxWeight {
				return m, fmt.Errorf("member %q: weight %q", s, v)
			}
			m.Weight = w
		case "t":
			t, err := url.QueryUnescape(v)
			if err != nil || t == "" {
				return m, fmt.Errorf("member %q: target %q", s, v)
			}
			m.Target = t
		case "a":
			if v != "" {
				m.Addresses = strings.Split(v, ",")
			}
		default:
			return m, fmt.Errorf("member %q: unknown key %q", s, k)
		}
		seen++
	}
	if seen != 3 {
		return m, fmt.Errorf("member %q: want w, t and a", s)
	}
	return m, nil
}

// metadata is the metadata of the CNAME at a name: the owner and each member, cut into 256-character values.
func metadata(owner endpoint.Owner, members []endpoint.Member) (map[string]string, error) {
	ot := endpoint.OwnerText(owner)
	if len(ot) > MaxMetadataValue {
		return nil, providers.Permanent(fmt.Errorf("the ownership text of %s has %d characters; Azure DNS metadata values hold at most %d",
			owner, len(ot), MaxMetadataValue))
	}
	meta := map[string]string{MetaOwner: ot}
	for i, m := range members {
		v := encodeMember(m)
		for j := 0; v != ""; j++ {
			n := min(len(v), MaxMetadataValue)
			k := metaMember + strconv.Itoa(i)
			if j > 0 {
				k += "_" + strconv.Itoa(j)
			}
			meta[k] = v[:n]
			v = v[n:]
		}
	}
	if len(meta) > MaxMetadata {
		return nil, providers.Permanent(fmt.Errorf("%w: the members need %d metadata entries; an Azure DNS record set carries at most %d",
			endpoint.ErrBadMember, len(meta), MaxMetadata))
	}
	return meta, nil
}

// lowerMeta is a record set's metadata with lower-case keys (Azure DNS keys are case-insensitive).
func lowerMeta(rs *armdns.RecordSet) map[string]string {
	out := map[string]string{}
	if rs == nil || rs.Properties == nil {
		return out
	}
	for k, v := range rs.Properties.Metadata {
		if v != nil {
			out[strings.ToLower(k)] = *v
		} else {
			out[strings.ToLower(k)] = ""
		}
	}
	return out
}

// members reads the members back from metadata, in the order they were set.
func members(meta map[string]string) ([]endpoint.Member, error) {
	var out []endpoint.Member
	for i := 0; ; i++ {
		k := metaMember + strconv.Itoa(i)
		v, ok := meta[k]
		if !ok {
			return out, nil
		}
		for j := 1; ; j++ {
			more, ok := meta[k+"_"+strconv.Itoa(j)]
			if !ok {
				break
			}
			v += more
		}
		m, err := decodeMember(v)
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %w", k, err)
		}
		out = append(out, m)
	}
}

// wire is w as the record set berth PUTs.
func (w want) wire(ttl int64) armdns.RecordSet {
	p := &armdns.RecordSetProperties{TTL: to.Ptr(ttl), Metadata: map[string]*string{}}
	for k, v := range w.metadata {
		p.Metadata[k] = to.Ptr(v)
	}
	switch w.typ {
	case armdns.RecordTypeA:
		p.ARecords = []*armdns.ARecord{}
		for _, ip := range w.ips {
			p.ARecords = append(p.ARecords, &armdns.ARecord{IPv4Address: to.Ptr(ip)})
		}
	case armdns.RecordTypeAAAA:
		p.AaaaRecords = []*armdns.AaaaRecord{}
		for _, ip := range w.ips {
			p.AaaaRecords = append(p.AaaaRecords, &armdns.AaaaRecord{IPv6Address: to.Ptr(ip)})
		}
	case armdns.RecordTypeCNAME:
		p.CnameRecord = &armdns.CnameRecord{Cname: to.Ptr(w.cname)}
	}
	return armdns.RecordSet{Properties: p}
}

// same tells whether the record set rs already is w with ttl (records in any order, metadata keys in any case).
func (w want) same(rs *armdns.RecordSet, ttl int64) bool {
	if rs == nil || rs.Properties == nil || rs.Properties.TTL == nil || *rs.Properties.TTL != ttl {
		return false
	}
	p := rs.Properties
	meta := lowerMeta(rs)
	if len(meta) != len(w.metadata) {
		return false
	}
	for k, v := range w.metadata {
		if meta[k] != v {
			return false
		}
	}
	var got []string
	switch w.typ {
	case armdns.RecordTypeA:
		for _, r := range p.ARecords {
			if r != nil && r.IPv4Address != nil {
				got = append(got, *r.IPv4Address)
			}
		}
	case armdns.RecordTypeAAAA:
		for _, r := range p.AaaaRecords {
			if r != nil && r.IPv6Address != nil {
				got = append(got, net.ParseIP(*r.IPv6Address).String())
			}
		}
	case armdns.RecordTypeCNAME:
		return p.CnameRecord != nil && p.CnameRecord.Cname != nil && hostOf(*p.CnameRecord.Cname) == hostOf(w.cname)
	}
	a, b := slices.Clone(got), slices.Clone(w.ips)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
