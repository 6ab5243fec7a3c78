package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// probeJob is one address to probe.
type probeJob struct {
	route, target string
	a             *address
	path          string // HTTP health path; "" for a TCP connect
}

// probeAll probes every address of every route once, and tries again to open the listeners that could not be.
func (s *Server) probeAll(ctx context.Context) {
	s.reopen()
	var jobs []probeJob
	s.mu.Lock()
	for _, r := range s.routes {
		for _, m := range r.members {
			path := ""
			if m.spec.Watch != nil {
				path = m.spec.Watch.HealthPath
			}
			for _, a := range m.addrs {
				jobs = append(jobs, probeJob{route: r.name, target: m.spec.Target, a: a, path: path})
			}
		}
	}
	s.mu.Unlock()
	s.probe(ctx, jobs)
}

// probe runs jobs, probeParallel at once, and records what they found.
func (s *Server) probe(ctx context.Context, jobs []probeJob) {
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := s.check(ctx, j.a.hostport, j.path)
			if ctx.Err() != nil {
				return // stopping: not a verdict on the address
			}
			s.mu.Lock()
			wasReady := j.a.ready()
			if err == nil {
				j.a.fails, j.a.passed = 0, true
			} else {
				j.a.fails++
			}
			nowReady := j.a.ready()
			s.mu.Unlock()
			switch {
			case wasReady && !nowReady:
				s.log.Info("edge: address not ready, skipped", "name", j.route, "target", j.target, "address", j.a.hostport, "err", err)
			case !wasReady && nowReady:
				s.log.Info("edge: address ready", "name", j.route, "target", j.target, "address", j.a.hostport)
			}
		}()
	}
	wg.Wait()
}

// check probes one address: a TCP connection that opens, or GET path answering 2xx or 3xx.
func (s *Server) check(ctx context.Context, hostport, path string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ProbeTimeout)
	defer cancel()
	if path == "" {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostport)
		if err != nil {
			return err
		}
		defer c.Close()
		// The engine's port forwarder accepts a connection for a container that does not listen yet, and drops
		// it at once: a connection still open after tcpSettle (or one that says something) is a listener.
		_ = c.SetReadDeadline(time.Now().Add(tcpSettle))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return fmt.Errorf("connection dropped: %w", err)
		}
		return nil
	}
	if path[0] != '/' {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostport+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.probeHC.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return &statusError{code: resp.StatusCode}
	}
	return nil
}

// tcpSettle is how long a TCP probe's connection must stay open to count (as the Docker provider's own probe).
const tcpSettle = 300 * time.Millisecond

type statusError struct{ code int }

func (e *statusError) Error() string { return "health check answered " + http.StatusText(e.code) }

// reopen tries again to listen for the routes whose address could not be opened at start.
func (s *Server) reopen() {
	if !s.change.TryLock() {
		return // a change is being made; next time
	}
	defer s.change.Unlock()
	s.mu.Lock()
	var pending []*route
	for _, r := range s.routes {
		if r.ln == nil {
			pending = append(pending, r)
		}
	}
	s.mu.Unlock()
	for _, r := range pending {
		ln, err := net.Listen("tcp", r.name)
		s.mu.Lock()
		switch {
		case s.closed || s.routes[r.name] != r:
			if ln != nil {
				ln.Close()
			}
		case err != nil:
			r.listenErr = err
		default:
			r.listenErr = nil
			s.startListening(r, ln)
			s.log.Info("route's listen address open again", "name", r.name)
		}
		s.mu.Unlock()
	}
}
