package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// Defaults of Options.
const (
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = time.Second
	DefaultWatchInterval = time.Second
	DefaultDialTimeout   = 2 * time.Second
	// DefaultDrainGrace is how long the open connections of a deleted route may run before they are closed.
	DefaultDrainGrace = 30 * time.Second
	// DefaultShutdownGrace is how long Close lets open connections finish before it closes them.
	DefaultShutdownGrace = 10 * time.Second
	// probeParallel bounds the probes running at once.
	probeParallel = 16
	// unreadyAfter is the number of failed probes in a row after which an address is skipped.
	unreadyAfter = 2
)

// Options configure a Server.
type Options struct {
	// State is the file the routing table is kept in (JSON, replaced atomically on every change, read at start).
	// Required.
	State string
	// Admin is the admin API's address (see ParseAdmin): "unix:///run/berth/edge.sock" or "127.0.0.1:7071".
	// Ignored when AdminListener is set.
	Admin string
	// AdminListener, when set, is where the admin API is served (the caller made it; Close closes it).
	AdminListener net.Listener
	Logger        *slog.Logger
	// ProbeInterval is how often every address is probed (±10% jitter); DefaultProbeInterval when 0.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe; DefaultProbeTimeout when 0.
	ProbeTimeout time.Duration
	// WatchInterval is how often watches look at their runtime (±10% jitter); DefaultWatchInterval when 0.
	WatchInterval time.Duration
	// DialTimeout bounds each dial of a member address; DefaultDialTimeout when 0.
	DialTimeout time.Duration
	// DrainGrace: DefaultDrainGrace when 0.
	DrainGrace time.Duration
	// ShutdownGrace: DefaultShutdownGrace when 0 (negative: close at once).
	ShutdownGrace time.Duration
	// Rand chooses members by weight and jitters the loops; seeded from the clock when nil.
	Rand *rand.Rand
	// Docker makes the client of a watch's engine ("" for the environment's); DockerClient when nil.
	Docker func(engine string) (Docker, error)
}

// Server is a running edge: one listener per route, probes, watches and the admin API.
type Server struct {
	opts       Options
	log        *slog.Logger
	admin      net.Listener
	adminAddr  string
	socketPath string // removed by Close
	http       *http.Server
	probeHC    *http.Client
	stop       context.CancelFunc
	loops      sync.WaitGroup
	adminDone  chan struct{}

	// change serialises the changes of the table (Put, Delete) and the writes of the state file.
	change sync.Mutex

	mu      sync.Mutex
	routes  map[string]*route
	rnd     *rand.Rand
	closed  bool
	drains  sync.WaitGroup
	closing chan struct{} // closed by Close: drains end at once

	dockerMu sync.Mutex
	dockers  map[string]Docker
}

// Serve runs an edge until ctx ends, then closes it gracefully (see Server.Close).
func Serve(ctx context.Context, opts Options) error {
	s, err := Start(opts)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "edge serving", "admin", s.AdminAddr(), "state", opts.State, "routes", s.count())
	<-ctx.Done()
	s.log.Info("edge stopping", "grace", s.opts.ShutdownGrace)
	err = s.Close()
	s.log.Info("edge stopped")
	return err
}

// Start starts an edge: it reads the state file and opens every route's listener again, then serves the admin API.
// A route whose listen address cannot be opened stays in the table and is retried every ProbeInterval.
func Start(opts Options) (*Server, error) {
	if opts.State == "" {
		return nil, errors.New("edge: a state file is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.ProbeInterval, DefaultProbeInterval)
	def(&opts.ProbeTimeout, DefaultProbeTimeout)
	def(&opts.WatchInterval, DefaultWatchInterval)
	def(&opts.DialTimeout, DefaultDialTimeout)
	def(&opts.DrainGrace, DefaultDrainGrace)
	def(&opts.ShutdownGrace, DefaultShutdownGrace)
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	}
	if opts.Docker == nil {
		opts.Docker = DockerClient
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		routes:  map[string]*route{},
		rnd:     opts.Rand,
		closing: make(chan struct{}),
		dockers: map[string]Docker{},
		probeHC: &http.Client{
			Timeout:       opts.ProbeTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
		adminDone: make(chan struct{}),
	}
	table, err := readState(opts.State)
	if err != nil {
		return nil, err
	}
	if err := s.openAdmin(); err != nil {
		return nil, err
	}
	for _, sr := range table {
		r := newRoute(sr.Name, sr.Owner, sr.TTL)
		s.setMembers(r, sr.Members)
		if ln, err := net.Listen("tcp", sr.Name); err != nil {
			r.listenErr = err
			s.log.Error("route's listen address not available; retrying", "name", sr.Name, "owner", sr.Owner.String(), "err", err)
		} else {
			s.startListening(r, ln)
		}
		s.routes[r.name] = r
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.loops.Add(2)
	go s.every(ctx, opts.ProbeInterval, s.probeAll)
	go s.every(ctx, opts.WatchInterval, s.watchAll)
	s.http = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.adminDone)
		if err := s.http.Serve(s.admin); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("edge admin API stopped", "err", err)
		}
	}()
	return s, nil
}

// openAdmin listens for the admin API.
func (s *Server) openAdmin() error {
	if s.opts.AdminListener != nil {
		s.admin = s.opts.AdminListener
		s.adminAddr = adminString(s.admin.Addr())
		return nil
	}
	network, address, err := ParseAdmin(s.opts.Admin)
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if network == "unix" {
		if err := os.MkdirAll(filepath.Dir(address), 0o700); err != nil {
			return fmt.Errorf("edge: admin socket directory: %w", err)
		}
		// A socket left by an edge that was killed: remove it unless something answers on it.
		if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("edge: admin socket %s: another edge answers on it", address)
		} else if _, statErr := os.Lstat(address); statErr == nil {
			if err := os.Remove(address); err != nil {
				return fmt.Errorf("edge: remove the stale admin socket: %w", err)
			}
		}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return fmt.Errorf("edge: admin API: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			ln.Close()
			return fmt.Errorf("edge: admin socket: %w", err)
		}
		s.socketPath = address
	}
	s.admin = ln
	s.adminAddr = adminString(ln.Addr())
	return nil
}

func adminString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix://" + a.String()
	}
	return a.String()
}

// AdminAddr is the admin API's address, as the Router client's `admin` setting takes it.
func (s *Server) AdminAddr() string { return s.adminAddr }

func (s *Server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.routes)
}

// Close stops the admin API, the probes and the watches, closes every listener, lets open connections finish
// for ShutdownGrace and then closes them. The table stays in the state file: the next start serves it again.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	routes := make([]*route, 0, len(s.routes))
	for _, r := range s.routes {
		routes = append(routes, r)
		r.stopListening()
	}
	s.mu.Unlock()

	s.stop()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = s.http.Shutdown(sctx)
	cancel()
	<-s.adminDone
	s.loops.Wait()
	s.drains.Wait()

	done := make(chan struct{})
	go func() {
		for _, r := range routes {
			r.wg.Wait()
		}
		close(done)
	}()
	if s.opts.ShutdownGrace > 0 {
		t := time.NewTimer(s.opts.ShutdownGrace)
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("connections still open at the end of the grace period; closing them", "grace", s.opts.ShutdownGrace)
		}
		t.Stop()
	}
	s.mu.Lock()
	for _, r := range routes {
		r.closeConns()
	}
	s.mu.Unlock()
	<-done

	s.dockerMu.Lock()
	for _, c := range s.dockers {
		c.Close()
	}
	s.dockers = map[string]Docker{}
	s.dockerMu.Unlock()
	if s.socketPath != "" {
		os.Remove(s.socketPath)
	}
	return nil
}

// every runs f at once and then every d (±10% jitter) until ctx ends.
func (s *Server) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	defer s.loops.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f(ctx)
		s.mu.Lock()
		jitter := time.Duration((s.rnd.Float64()*0.2 - 0.1) * float64(d))
		s.mu.Unlock()
		t.Reset(d + jitter)
	}
}

// errListen is a listen address that cannot be opened.
type errListen struct {
	name string
	err  error
}

func (e *errListen) Error() string { return fmt.Sprintf("listen on %s: %v", e.name, e.err) }
func (e *errListen) Unwrap() error { return e.err }

// put makes name serve members for owner: it opens the listener of a new name, persists the table, then applies
// it. Nothing changes when any step fails.
func (s *Server) put(name string, owner endpoint.Owner, ttl time.Duration, members []endpoint.Member) (Route, error) {
	s.change.Lock()
	defer s.change.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Route{}, errClosing
	}
	cur := s.routes[name]
	if cur != nil && cur.owner != owner {
		s.mu.Unlock()
		return Route{}, fmt.Errorf("%w: %s is served for %s", endpoint.ErrNotOwned, name, cur.owner)
	}
	if cur != nil && cur.ln != nil && cur.ttl == ttl && cur.sameMembers(members) {
		v := s.viewLocked(cur)
		s.mu.Unlock()
		return v, nil
	}
	table := s.tableLocked()
	s.mu.Unlock()

	var ln net.Listener
	if cur == nil || cur.ln == nil {
		var err error
		if ln, err = net.Listen("tcp", name); err != nil {
			return Route{}, &errListen{name: name, err: err}
		}
	}
	next := storedRoute{Name: name, Owner: owner, TTL: ttl, Members: members}
	replaced := false
	for i := range table {
		if table[i].Name == name {
			table[i], replaced = next, true
		}
	}
	if !replaced {
		table = append(table, next)
	}
	if err := writeState(s.opts.State, table); err != nil {
		if ln != nil {
			ln.Close()
		}
		return Route{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	r := cur
	if r == nil {
		r = newRoute(name, owner, ttl)
		s.routes[name] = r
	}
	r.ttl = ttl
	s.setMembers(r, members)
	if ln != nil {
		r.listenErr = nil
		s.startListening(r, ln)
	}
	s.log.Info("route set", "name", name, "owner", owner.String(), "members", memberSummary(members))
	return s.viewLocked(r), nil
}

// remove deletes owner's route name: persisted first, then its listener is closed; its open connections run for
// DrainGrace, then they are closed.
func (s *Server) remove(name string, owner endpoint.Owner) error {
	s.change.Lock()
	defer s.change.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosing
	}
	r := s.routes[name]
	if r == nil {
		s.mu.Unlock()
		return nil
	}
	if r.owner != owner {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s is served for %s", endpoint.ErrNotOwned, name, r.owner)
	}
	table := s.tableLocked()
	s.mu.Unlock()
	kept := table[:0]
	for _, sr := range table {
		if sr.Name != name {
			kept = append(kept, sr)
		}
	}
	if err := writeState(s.opts.State, kept); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.routes, name)
	r.stopListening()
	s.drains.Add(1)
	s.mu.Unlock()
	s.log.Info("route deleted", "name", name, "owner", owner.String())
	go s.drain(r)
	return nil
}

// drain waits for r's connections to end, DrainGrace at most (or until Close), then closes what is left.
func (s *Server) drain(r *route) {
	defer s.drains.Done()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	t := time.NewTimer(s.opts.DrainGrace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
		s.log.Info("deleted route's connections still open after the drain grace; closing them", "name", r.name)
	case <-s.closing:
	}
	s.mu.Lock()
	r.closeConns()
	s.mu.Unlock()
	<-done
}

var errClosing = errors.New("the edge is stopping")

// tableLocked is the table as persisted, sorted by name. s.mu is held.
func (s *Server) tableLocked() []storedRoute {
	out := make([]storedRoute, 0, len(s.routes))
	for _, r := range sortedRoutes(s.routes) {
		out = append(out, storedRoute{Name: r.name, Owner: r.owner, TTL: r.ttl, Members: r.specs()})
	}
	return out
}

func memberSummary(ms []endpoint.Member) string {
	var b []byte
	for i, m := range ms {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, m.Target...)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(m.Weight), 10)
	}
	return string(b)
}

// checkEdgeMembers is what the edge needs beyond endpoint.CheckMembers: host:port addresses, watches it knows.
func checkEdgeMembers(ms []endpoint.Member) error {
	if err := endpoint.CheckMembers(ms, false); err != nil {
		return err
	}
	for _, m := range ms {
		for _, a := range m.Addresses {
			if err := checkHostPort("address", a); err != nil {
				return providers.Permanent(fmt.Errorf("%w: member %s: %v", endpoint.ErrBadMember, m.Target, err))
			}
		}
		if w := m.Watch; w != nil {
			switch {
			case w.Kind != providers.WatchContainers && w.Kind != providers.WatchTasks:
				return providers.Permanent(fmt.Errorf("%w: member %s: watch kind %q (want %s or %s)", endpoint.ErrBadMember, m.Target, w.Kind, providers.WatchContainers, providers.WatchTasks))
			case w.Port < 1 || w.Port > 65535:
				return providers.Permanent(fmt.Errorf("%w: member %s: watch port %d", endpoint.ErrBadMember, m.Target, w.Port))
			case len(w.Labels) == 0:
				return providers.Permanent(fmt.Errorf("%w: member %s: a watch needs labels", endpoint.ErrBadMember, m.Target))
			}
		}
	}
	return nil
}
