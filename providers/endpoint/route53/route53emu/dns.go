package route53emu

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/berth-dev/berth/providers/endpoint/dnstest"
)

// answer answers one question from the DNS view of the zone. A CNAME is answered alone, its target not
// followed: the client asks for the target next, as it does through a recursive resolver (dnstest.Lookup counts
// the addresses of an in-answer chain twice when it follows it, so answers that include the chain would skew
// the shares tests count).
func (e *Emulator) answer(q dns.Question) ([]dns.RR, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.takeFault(OpDNS); ok {
		return nil, dns.RcodeServerFailure
	}
	e.sync()
	name := strings.ToLower(dns.Fqdn(q.Name))
	if !e.inZone(name) {
		return nil, dns.RcodeRefused
	}
	sets := e.setsAt(name)
	if len(sets) == 0 {
		if !e.hasBelow(name) {
			return nil, dns.RcodeNameError
		}
		return nil, dns.RcodeSuccess
	}
	if cnames := ofType(sets, "CNAME"); len(cnames) > 0 && q.Qtype != dns.TypeCNAME {
		return toRRs(e.pick(cnames)), dns.RcodeSuccess
	}
	var out []dns.RR
	if q.Qtype == dns.TypeANY {
		for _, rs := range sets {
			out = append(out, toRRs(rs)...)
		}
	} else if match := ofType(sets, dns.TypeToString[q.Qtype]); len(match) > 0 {
		out = toRRs(e.pick(match))
	}
	return out, dns.RcodeSuccess
}

// setsAt is the DNS view's record sets at name, in Route 53's order; the caller holds mu.
func (e *Emulator) setsAt(name string) []RecordSet {
	var out []RecordSet
	for k, rs := range e.live {
		if k.name == name {
			out = append(out, rs)
		}
	}
	slices.SortFunc(out, func(a, b RecordSet) int { return less(a.key(), b.key()) })
	return out
}

// hasBelow tells whether a name below name has record sets (name is then an empty non-terminal: NOERROR).
func (e *Emulator) hasBelow(name string) bool {
	for k := range e.live {
		if strings.HasSuffix(k.name, "."+name) {
			return true
		}
	}
	return false
}

func ofType(sets []RecordSet, typ string) []RecordSet {
	var out []RecordSet
	for _, rs := range sets {
		if rs.Type == typ {
			out = append(out, rs)
		}
	}
	return out
}

// pick chooses the set a query is answered with among sets of one name and type: the plain set, or one weighted
// set by weight; the caller holds mu.
func (e *Emulator) pick(sets []RecordSet) RecordSet {
	if len(sets) == 1 && sets[0].Weight == nil {
		return sets[0]
	}
	weights := make([]float64, len(sets))
	for i, rs := range sets {
		if rs.Weight != nil {
			weights[i] = float64(*rs.Weight)
		}
	}
	return sets[dnstest.Pick(e.rng, weights)]
}

func toRRs(rs RecordSet) []dns.RR {
	var out []dns.RR
	for _, v := range rs.Values {
		if rs.Type == "CNAME" {
			v = dns.Fqdn(v)
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", rs.Name, rs.TTL, rs.Type, v))
		if err == nil && rr != nil {
			out = append(out, rr)
		}
	}
	return out
}
