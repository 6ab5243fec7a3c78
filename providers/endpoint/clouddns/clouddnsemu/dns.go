package clouddnsemu

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers/endpoint/dnstest"
)

// ServeDNS answers DNS queries for the zone on addr ("127.0.0.1:0" picks a port), from the changes that are done.
// The caller closes the server. With port 0 it tries a few ports: the UDP port picked may be taken for TCP.
func (e *Emulator) ServeDNS(addr string) (*dnstest.Server, error) {
	tries := 1
	if strings.HasSuffix(addr, ":0") {
		tries = 5
	}
	var err error
	for range tries {
		var s *dnstest.Server
		if s, err = dnstest.Serve(addr, e.Answer); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// Answer answers one question as the zone's authoritative servers would (see the package doc).
func (e *Emulator) Answer(q dns.Question) ([]dns.RR, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.fault(OpDNS); ok {
		return nil, dns.RcodeServerFailure
	}
	name := fqdn(q.Name)
	if !dns.IsSubDomain(e.dnsName, name) {
		return nil, dns.RcodeRefused
	}
	var answer []dns.RR
	for hop := 0; hop < 8; hop++ {
		if s, ok := e.served[key{name, "CNAME"}]; ok && q.Qtype != dns.TypeCNAME {
			rrs := e.records(s)
			answer = append(answer, rrs...)
			if len(rrs) == 0 {
				return answer, dns.RcodeSuccess
			}
			next := fqdn(rrs[0].(*dns.CNAME).Target)
			if !dns.IsSubDomain(e.dnsName, next) {
				return answer, dns.RcodeSuccess // the resolver asks the target's own servers
			}
			name = next
			continue
		}
		if s, ok := e.served[key{name, dns.TypeToString[q.Qtype]}]; ok {
			return append(answer, e.records(s)...), dns.RcodeSuccess
		}
		if len(answer) > 0 || e.exists(name) {
			return answer, dns.RcodeSuccess
		}
		return nil, dns.RcodeNameError
	}
	return answer, dns.RcodeSuccess
}

// exists tells whether name has a record set, or is an empty non-terminal (a name below it has one).
func (e *Emulator) exists(name string) bool {
	for k := range e.served {
		if k.name == name || strings.HasSuffix(k.name, "."+name) {
			return true
		}
	}
	return false
}

// records are a set's records for one query: its rrdatas, or one weighted item's, chosen by weight.
func (e *Emulator) records(s *dnsv1.ResourceRecordSet) []dns.RR {
	rrdatas := s.Rrdatas
	if p := s.RoutingPolicy; p != nil && p.Wrr != nil && len(p.Wrr.Items) > 0 {
		weights := make([]float64, len(p.Wrr.Items))
		for i, it := range p.Wrr.Items {
			weights[i] = it.Weight
		}
		rrdatas = p.Wrr.Items[dnstest.Pick(e.rng, weights)].Rrdatas
	}
	var out []dns.RR
	for _, d := range rrdatas {
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", s.Name, s.Ttl, s.Type, d))
		if err == nil && rr != nil {
			out = append(out, rr)
		}
	}
	return out
}
