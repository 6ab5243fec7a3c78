// Package dnstest serves DNS from an emulator's zone on a loopback port, and resolves names against such a
// server the way a stub resolver does, so tests see what clients would: the DNS emulators of Route 53, Cloud
// DNS and Azure DNS answer with it, and the migration tests look names up with Lookup.
//
// Non-goals: recursion, caching, DNSSEC, zone transfers. The server answers what its Answer function gives,
// authoritatively; names outside the zone get REFUSED from the emulators.
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Answer answers one question: the records, and the response code (dns.RcodeSuccess, dns.RcodeNameError for a
// name the zone does not have, dns.RcodeRefused outside it, dns.RcodeServerFailure for an injected fault).
type Answer func(q dns.Question) ([]dns.RR, int)

// Server is a DNS server on one loopback port, UDP and TCP.
type Server struct {
	udp, tcp *dns.Server
	addr     string
	wg       sync.WaitGroup
}

// Serve starts a server on addr ("127.0.0.1:0" picks a port; UDP and TCP share it) answering with answer.
func Serve(addr string, answer Answer) (*Server, error) {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	// A port picked for UDP may be taken for TCP: pick again, a few times.
	for try := 0; try < 10; try++ {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("dnstest: listen udp %s: %w", addr, err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dnstest: listen tcp beside udp on %s: %w", addr, err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if len(req.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
		} else {
			rrs, rcode := answer(req.Question[0])
			m.Answer = rrs
			m.Rcode = rcode
		}
		_ = w.WriteMsg(m)
	})
	s := &Server{udp: &dns.Server{PacketConn: pc, Handler: h}, tcp: &dns.Server{Listener: ln, Handler: h},
		addr: pc.LocalAddr().String()}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = srv.ActivateAndServe() }()
		<-started
	}
	return s, nil
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
	s.wg.Wait()
	return err
}

// ErrNXDomain is returned by Lookup for a name the server says does not exist.
var ErrNXDomain = errors.New("no such name")

// Lookup resolves name against server as a stub resolver would for an A query: it follows CNAMEs (in the answer,
// else by asking again, at most 8 hops) and returns the IP addresses, or, when the chain ends at a name the server
// does not answer with addresses (a load balancer's name outside the zone), that name without its dot. An empty
// answer is no addresses and no error; NXDOMAIN is ErrNXDomain; another response code is an error naming it.
func Lookup(ctx context.Context, server, name string) ([]string, error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	qname := dns.Fqdn(strings.ToLower(name))
	for hop := 0; hop < 8; hop++ {
		m := new(dns.Msg)
		m.SetQuestion(qname, dns.TypeA)
		r, _, err := c.ExchangeContext(ctx, m, server)
		if err == nil && r.Truncated {
			r, _, err = (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).ExchangeContext(ctx, m, server)
		}
		if err != nil {
			return nil, fmt.Errorf("dnstest: look up %s at %s: %w", qname, server, err)
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			if hop > 0 {
				return []string{strings.TrimSuffix(qname, ".")}, nil
			}
			return nil, fmt.Errorf("dnstest: look up %s: %w", qname, ErrNXDomain)
		case dns.RcodeRefused:
			if hop > 0 {
				return []string{strings.TrimSuffix(qname, ".")}, nil
			}
			return nil, fmt.Errorf("dnstest: look up %s: %s", qname, dns.RcodeToString[r.Rcode])
		default:
			return nil, fmt.Errorf("dnstest: look up %s: %s", qname, dns.RcodeToString[r.Rcode])
		}
		var ips []string
		next := ""
		cur := qname
		// The answer may hold the chain itself: follow it in order.
		for changed := true; changed && len(ips) == 0; {
			changed = false
			for _, rr := range r.Answer {
				if !strings.EqualFold(rr.Header().Name, cur) {
					continue
				}
				switch v := rr.(type) {
				case *dns.A:
					ips = append(ips, v.A.String())
				case *dns.AAAA:
					ips = append(ips, v.AAAA.String())
				case *dns.CNAME:
					if len(ips) == 0 && !strings.EqualFold(v.Target, cur) {
						cur = strings.ToLower(v.Target)
						next = cur
						changed = true
					}
				}
			}
		}
		if len(ips) > 0 {
			return ips, nil
		}
		if next == "" {
			return nil, nil
		}
		qname = next
	}
	return nil, fmt.Errorf("dnstest: look up %s: more than 8 CNAME hops", name)
}

// Pick chooses an index by weight, as Route 53 and Cloud DNS choose among weighted records for each query: with
// probability weight/sum; when every weight is 0, uniformly. It returns -1 for no weights.
func Pick(rng *rand.Rand, weights []float64) int {
	if len(weights) == 0 {
		return -1
	}
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	if sum <= 0 {
		return rng.IntN(len(weights))
	}
	x := rng.Float64() * sum
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	for i := len(weights) - 1; i >= 0; i-- {
		if weights[i] > 0 {
			return i
		}
	}
	return len(weights) - 1
}
