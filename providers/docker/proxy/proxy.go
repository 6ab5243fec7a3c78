// Package proxy is a small TCP load balancer: one listener that forwards each accepted connection to one of a
// changing set of backends, round-robin, trying the next backend when a dial fails.
//
// Non-goals: protocol awareness (HTTP routing, retries of requests), TLS, UDP, health checking. The owner decides
// which backends are ready and adds or removes them; removing a backend only stops new connections to it, existing
// ones run until either side closes them.
//
// Caller's duties: Add a backend only once it is ready; Remove it (and wait for Settled) before stopping it; Close
// the proxy when done.
//
// Main loop sketch:
//
//	for conn := accept() {
//		go func() {
//			for each backend from the round-robin cursor { if dial ok { pipe(conn, backend); return } }
//			close(conn) // no backend answered
//		}()
//	}
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// DialTimeout bounds each dial of a backend.
const DialTimeout = 2 * time.Second

// Backend is one destination: an opaque ID (e.g. a container ID) and a TCP address.
type Backend struct {
	ID   string
	Addr string
}

// Proxy forwards connections accepted on one listener to its backends.
type Proxy struct {
	ln  net.Listener
	log *slog.Logger

	mu       sync.Mutex
	backends []Backend
	next     int
	conns    map[net.Conn]struct{}
	lastDial map[string]time.Time // backend ID → time of the last connection handed to it
	closed   bool

	wg sync.WaitGroup
}

// Listen starts a proxy on addr ("host:port") with no backends: until one is added, connections are closed at once.
func Listen(addr string, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy listen on %s: %w", addr, err)
	}
	p := &Proxy{
		ln:       ln,
		log:      log,
		conns:    map[net.Conn]struct{}{},
		lastDial: map[string]time.Time{},
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the listening address.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Add makes b receive new connections; adding an ID again replaces its address.
func (p *Proxy) Add(b Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.backends {
		if p.backends[i].ID == b.ID {
			p.backends[i] = b
			return
		}
	}
	p.backends = append(p.backends, b)
}

// Remove stops new connections to the backend with that ID. It returns the time the last connection was handed to
// it (zero if none), so the caller can let fresh connections settle before stopping the backend.
func (p *Proxy) Remove(id string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.backends {
		if p.backends[i].ID == id {
			p.backends = append(p.backends[:i], p.backends[i+1:]...)
			break
		}
	}
	t := p.lastDial[id]
	delete(p.lastDial, id)
	return t
}

// Set replaces the whole backend set.
func (p *Proxy) Set(bs []Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = append([]Backend(nil), bs...)
}

// Has tells whether a backend with that ID receives new connections.
func (p *Proxy) Has(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.backends {
		if b.ID == id {
			return true
		}
	}
	return false
}

// Backends returns a copy of the current backend set.
func (p *Proxy) Backends() []Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Backend(nil), p.backends...)
}

// Close stops accepting, closes every open connection and waits for the goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.log.Warn("proxy accept", "addr", p.ln.Addr().String(), "err", err)
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// track registers an open connection; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// pick returns the backends in the order to try, starting at the round-robin cursor.
func (p *Proxy) pick() []Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.backends)
	if n == 0 {
		return nil
	}
	start := p.next % n
	p.next = (start + 1) % n
	order := make([]Backend, 0, n)
	for i := range n {
		order = append(order, p.backends[(start+i)%n])
	}
	return order
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	var backend net.Conn
	for _, b := range p.pick() {
		ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", b.Addr)
		cancel()
		if err != nil {
			p.log.Debug("proxy dial failed, trying next backend", "backend", b.ID, "err", err)
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.lastDial[b.ID] = time.Now()
		p.mu.Unlock()
		backend = c
		break
	}
	if backend == nil {
		p.log.Warn("proxy: no backend answered", "addr", p.ln.Addr().String())
		return
	}
	defer p.untrack(backend)
	Splice(client, backend)
}

// Splice copies both ways between a and b until both directions ended: when one direction ends, the other side
// gets its half-close and the copy waits for the other direction too. Berth's edge forwards the same way.
func Splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { pipe(b, a); done <- struct{}{} }()
	go func() { pipe(a, b); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst, then half-closes dst's write side (or closes it when it cannot half-close).
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		cw.CloseWrite()
		return
	}
	dst.Close()
	src.Close()
}
