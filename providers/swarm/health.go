package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// LabelHealth is the service label holding an HTTP or TCP health check as JSON, as the workload gives it: swarm has
// no field for a check that berth runs itself, so the prober and the read-back use this one source.
const LabelHealth = "berth.dev/health"

// healthPortName names the PortConfig by which berth reaches the checked port of every task: published in host
// mode at a port the engine chooses on the task's node (no routing mesh, hence no IPVS, is involved).
const healthPortName = "berth-health"

// Defaults of an HTTP or TCP check, used where the workload leaves a field at zero (as the Docker provider does).
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthRetries  = 3
	// tcpSettle is how long a TCP probe waits for a connection that nothing behind the published port accepted to
	// be dropped (the engine's port forwarder accepts first and closes when the container refuses).
	tcpSettle = 300 * time.Millisecond
)

// probed tells whether berth runs the workload's health check itself (HTTP and TCP checks).
func probed(h *schema.HealthCheck) bool {
	k := h.Kind()
	return k == "http" || k == "tcp"
}

// checkPort is the container port an HTTP or TCP check probes.
func checkPort(h *schema.HealthCheck) int {
	switch {
	case h == nil:
		return 0
	case h.HTTP != nil:
		return h.HTTP.Port
	case h.TCP != nil:
		return h.TCP.Port
	}
	return 0
}

// healthLabel encodes an HTTP or TCP check for LabelHealth.
func healthLabel(h *schema.HealthCheck) (string, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode health check: %w", err)
	}
	return string(b), nil
}

// labelHealth decodes LabelHealth; nil when absent, unreadable or not an HTTP or TCP check.
func labelHealth(labels map[string]string) *schema.HealthCheck {
	s := labels[LabelHealth]
	if s == "" {
		return nil
	}
	var h schema.HealthCheck
	if err := json.Unmarshal([]byte(s), &h); err != nil || !probed(&h) {
		return nil
	}
	return &h
}

// prober runs one HTTP or TCP check, with defaults filled in.
type prober struct {
	spec                           *schema.HealthCheck
	interval, timeout, startPeriod time.Duration
	retries                        int
}

func proberOf(h *schema.HealthCheck) prober {
	p := prober{spec: h, interval: DefaultHealthInterval, timeout: DefaultHealthTimeout, retries: DefaultHealthRetries}
	if h.Interval > 0 {
		p.interval = h.Interval.D()
	}
	if h.Timeout > 0 {
		p.timeout = h.Timeout.D()
	}
	if h.Retries > 0 {
		p.retries = h.Retries
	}
	p.startPeriod = h.StartPeriod.D()
	return p
}

// probe checks the task listening at addr ("host:port", the health port's host-mode publication): nil when it passes.
func (p prober) probe(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if p.spec.HTTP != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p.spec.HTTP.Path, nil)
		if err != nil {
			return err
		}
		req.Close = true
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", p.spec.HTTP.Path, resp.Status)
		}
		return nil
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(min(tcpSettle, p.timeout)))
	var b [1]byte
	_, err = c.Read(b[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return nil // the server spoke first, or kept the connection open: something listens
	}
	return fmt.Errorf("connection dropped: %w", err)
}

// probeClient never follows redirects (a 3xx passes) and keeps no connections.
var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// taskHealth is what the probes of one task said so far.
type taskHealth struct {
	last    time.Time // of the last probe
	healthy bool
	fails   int // consecutive failures
	err     error
	addr    string // where the last probe went
}

// checker probes the running tasks of one service, each at most once per interval, and remembers the outcomes.
type checker struct {
	p        prober
	port     int
	nodeAddr func(string) string
	now      func() time.Time
	tasks    map[string]*taskHealth
}

func newChecker(h *schema.HealthCheck, nodeAddr func(string) string, now func() time.Time) *checker {
	return &checker{p: proberOf(h), port: checkPort(h), nodeAddr: nodeAddr, now: now, tasks: map[string]*taskHealth{}}
}

// probeResult is the health of one running task: State "healthy", "unhealthy" (Retries failures in a row) or
// "starting" (no probe passed yet, and too few failed past the start period); Err the last probe's failure; Addr
// where the task was probed ("" before its health port is published).
type probeResult struct {
	State, Err, Addr string
}

// check returns the health of a running task, probing it when its interval has passed since the last probe.
func (c *checker) check(ctx context.Context, t swarm.Task) probeResult {
	th := c.tasks[t.ID]
	if th == nil {
		th = &taskHealth{}
		c.tasks[t.ID] = th
	}
	now := c.now()
	if th.last.IsZero() || now.Sub(th.last) >= c.p.interval {
		th.last = now
		addr := taskAddr(t, c.port, c.nodeAddr)
		th.addr = addr
		err := errors.New("health port not published yet")
		if addr != "" {
			err = c.p.probe(ctx, addr)
		}
		switch {
		case err == nil:
			th.healthy, th.fails, th.err = true, 0, nil
		case now.Sub(t.Status.Timestamp) < c.p.startPeriod && !th.healthy:
			th.err = err // failures in the start period do not count
		default:
			th.fails++
			th.err = err
			if th.fails >= c.p.retries {
				th.healthy = false // as the engine does: unhealthy after Retries consecutive failures
			}
		}
	}
	r := probeResult{Addr: th.addr}
	if th.err != nil {
		r.Err = th.err.Error()
	}
	switch {
	case th.healthy:
		r.State = "healthy"
	case th.fails >= c.p.retries:
		r.State = "unhealthy"
	default:
		r.State = "starting"
	}
	return r
}

// describeCheck says what an HTTP or TCP check probes: "GET /healthz on port 8080", "a connection to port 5432".
func describeCheck(h *schema.HealthCheck) string {
	switch {
	case h == nil:
		return "no check"
	case h.HTTP != nil:
		return fmt.Sprintf("GET %s on port %d", h.HTTP.Path, h.HTTP.Port)
	case h.TCP != nil:
		return fmt.Sprintf("a connection to port %d", h.TCP.Port)
	}
	return "command " + fmt.Sprint(h.Command)
}

// checkLabelOf is the LabelHealth of the spec task t runs: the service's previous spec's when t runs that (a
// rollout or a rollback under way: old tasks keep their own check), else the service's own.
func checkLabelOf(svc swarm.Service, t swarm.Task) string {
	h := taskHash(t)
	if prev := svc.PreviousSpec; prev != nil && h != "" && h != svc.Spec.Labels[providers.LabelSpecHash] &&
		prev.Labels[providers.LabelSpecHash] == h {
		return prev.Labels[LabelHealth]
	}
	return svc.Spec.Labels[LabelHealth]
}

// probeEach probes each running task of svc once with the HTTP or TCP check of the spec it runs (checkLabelOf), a
// single failure reading unhealthy (a look, not a wait), and returns their health by task ID; tasks whose spec
// has no such check are absent.
func probeEach(ctx context.Context, svc swarm.Service, ts []swarm.Task, nodeAddr func(string) string) map[string]probeResult {
	chks := map[string]*checker{} // by LabelHealth
	health := map[string]probeResult{}
	for _, t := range ts {
		if !liveDesired(t) || t.Status.State != swarm.TaskStateRunning {
			continue
		}
		l := checkLabelOf(svc, t)
		chk, seen := chks[l]
		if !seen {
			if h := labelHealth(map[string]string{LabelHealth: l}); h != nil {
				chk = newChecker(h, nodeAddr, time.Now)
				chk.p.retries = 1
			}
			chks[l] = chk
		}
		if chk != nil {
			health[t.ID] = chk.check(ctx, t)
		}
	}
	return health
}
