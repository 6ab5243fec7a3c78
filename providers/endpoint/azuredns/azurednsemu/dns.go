package azurednsemu

import (
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/berth-dev/berth/providers/endpoint/dnstest"
)

// maxChase bounds the CNAME chain the server follows inside the zone.
const maxChase = 8

// ServeDNS answers DNS queries from the zone on addr ("127.0.0.1:0" picks a port), as Azure's name servers do: all
// the records of a record set, in an order that rotates from one query to the next; a CNAME, followed inside the
// zone; no data for a name that has record sets (or names below it) but none of the type asked; NXDOMAIN for a
// name of the zone that has nothing; REFUSED outside the zone. Close the server when done.
//
// With port 0, a port whose TCP side is taken (dnstest.Serve picks the UDP port first) is given up for another,
// a few times.
func (e *Emulator) ServeDNS(addr string) (*dnstest.Server, error) {
	s, err := dnstest.Serve(addr, e.answer)
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		for try := 0; err != nil && try < 8; try++ {
			s, err = dnstest.Serve(addr, e.answer)
		}
	}
	return s, err
}

func (e *Emulator) answer(q dns.Question) ([]dns.RR, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	qname := strings.ToLower(dns.Fqdn(q.Name))
	var out []dns.RR
	for hop := 0; hop < maxChase; hop++ {
		rel, in := e.relative(qname)
		if !in {
			if hop == 0 {
				return nil, dns.RcodeRefused
			}
			return out, dns.RcodeSuccess
		}
		if !e.exists(rel) {
			return out, dns.RcodeNameError
		}
		if c, ok := e.sets[key{rel, "CNAME"}]; ok && q.Qtype != dns.TypeCNAME {
			if c.CNAME == "" {
				return out, dns.RcodeSuccess
			}
			target := strings.ToLower(dns.Fqdn(c.CNAME))
			out = append(out, &dns.CNAME{Hdr: e.hdr(qname, dns.TypeCNAME, c.TTL), Target: target})
			qname = target
			continue
		}
		typ := dns.TypeToString[q.Qtype]
		rs, ok := e.sets[key{rel, typ}]
		if !ok {
			return out, dns.RcodeSuccess
		}
		k := key{rel, typ}
		recs := e.rrs(qname, rs)
		if n := len(recs); n > 1 {
			start := e.rotation[k] % n
			e.rotation[k]++
			recs = append(recs[start:], recs[:start]...)
		}
		return append(out, recs...), dns.RcodeSuccess
	}
	return out, dns.RcodeServerFailure
}

// relative is qname relative to the zone ("@" for the apex), and whether it is in the zone.
func (e *Emulator) relative(qname string) (string, bool) {
	zone := e.zone + "."
	switch {
	case qname == zone:
		return "@", true
	case strings.HasSuffix(qname, "."+zone):
		return strings.TrimSuffix(qname, "."+zone), true
	}
	return "", false
}

// exists tells whether the name has record sets, or names below it (an empty non-terminal). The apex always exists.
func (e *Emulator) exists(rel string) bool {
	if rel == "@" {
		return true
	}
	for k := range e.sets {
		if k.name == rel || strings.HasSuffix(k.name, "."+rel) {
			return true
		}
	}
	return false
}

func (e *Emulator) hdr(name string, t uint16, ttl int64) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: uint32(ttl)}
}

func (e *Emulator) rrs(qname string, rs *RecordSet) []dns.RR {
	var out []dns.RR
	switch rs.Type {
	case "A":
		for _, ip := range rs.A {
			out = append(out, &dns.A{Hdr: e.hdr(qname, dns.TypeA, rs.TTL), A: net.ParseIP(ip).To4()})
		}
	case "AAAA":
		for _, ip := range rs.AAAA {
			out = append(out, &dns.AAAA{Hdr: e.hdr(qname, dns.TypeAAAA, rs.TTL), AAAA: net.ParseIP(ip)})
		}
	case "CNAME":
		if rs.CNAME != "" {
			out = append(out, &dns.CNAME{Hdr: e.hdr(qname, dns.TypeCNAME, rs.TTL), Target: strings.ToLower(dns.Fqdn(rs.CNAME))})
		}
	case "TXT":
		for _, t := range rs.TXT {
			out = append(out, &dns.TXT{Hdr: e.hdr(qname, dns.TypeTXT, rs.TTL), Txt: split255(t)})
		}
	}
	return out
}

// split255 cuts TXT strings to DNS's 255-byte character strings.
func split255(ss []string) []string {
	var out []string
	for _, s := range ss {
		for len(s) > 255 {
			out = append(out, s[:255])
			s = s[255:]
		}
		out = append(out, s)
	}
	return out
}
