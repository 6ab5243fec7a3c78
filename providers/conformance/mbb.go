package conformance

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// The cases here watch a workload while it changes: a public port's endpoint, a rollout to a version whose health
// check fails (healthhold), a rollout of a single replica (mbb1). What a user sees of a rollout is what List and
// the workload's endpoint say while it runs, not only where it ends.

// DefaultHoldFor is how long the healthhold case lets the Apply of the failing version run when Harness.HoldFor is
// zero.
const DefaultHoldFor = 15 * time.Second

// maxLookProblems bounds the problems a watch reports one by one (the rest are counted).
const maxLookProblems = 5

// endpoint checks Observed.Endpoints: one well-formed, stable address per public port, none for another port.
func (s *suite) endpoint(t *testing.T) {
	const name = "cf-endpoint"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-endpoint")
	public := map[int]bool{}
	for _, port := range w.Ports {
		if port.Public {
			public[port.Port] = true
		}
	}
	if len(public) == 0 {
		t.Fatalf("conformance: Harness.Workload(%q) has no public port", name)
	}
	s.apply(t, p, w)
	o := s.converged(t, p, w)
	first, why := endpointsWhy(o, public)
	if why != "" {
		t.Fatalf("after Apply: %s", why)
	}
	t.Logf("endpoints: %v", o.Endpoints)
	s.serves(t, w, "conformance-endpoint")

	// The address is stable: listed again, and after an Apply that changes nothing, it is the same.
	s.apply(t, p, w)
	o = s.converged(t, p, w)
	again, why := endpointsWhy(o, public)
	if why != "" {
		t.Fatalf("after a second Apply: %s", why)
	}
	for port, ep := range first {
		if !reflect.DeepEqual(again[port], ep) { // by value: a Watch is a pointer
			t.Errorf("port %d: endpoint %+v after the first Apply, %+v after the second (the address must be stable)",
				port, ep, again[port])
		}
	}
}

// endpointsWhy returns o's endpoints by port and says what is wrong with them ("" for nothing): a public port
// without exactly one endpoint, an endpoint of another port, an address that is not host:port, a malformed URL.
func endpointsWhy(o providers.Observed, public map[int]bool) (map[int]providers.Endpoint, string) {
	by := map[int]providers.Endpoint{}
	var problems []string
	for _, ep := range o.Endpoints {
		if !public[ep.Port] {
			problems = append(problems, fmt.Sprintf("an endpoint %+v for port %d, which is not public", ep, ep.Port))
			continue
		}
		if _, dup := by[ep.Port]; dup {
			problems = append(problems, fmt.Sprintf("port %d has more than one endpoint", ep.Port))
		}
		by[ep.Port] = ep
		if why := addressWhy(ep.Address); why != "" {
			problems = append(problems, fmt.Sprintf("port %d: address %q: %s", ep.Port, ep.Address, why))
		}
		if ep.URL != "" {
			if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				problems = append(problems, fmt.Sprintf("port %d: URL %q is not an absolute http(s) URL", ep.Port, ep.URL))
			}
		}
	}
	for port := range public {
		if _, ok := by[port]; !ok {
			problems = append(problems, fmt.Sprintf("public port %d has no endpoint", port))
		}
	}
	if len(problems) > 0 {
		return by, fmt.Sprintf("Observed.Endpoints %+v: %s", o.Endpoints, strings.Join(problems, "; "))
	}
	return by, ""
}

// addressWhy says why a is not "host:port" with a host and a port number ("" when it is).
func addressWhy(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err.Error()
	}
	if host == "" {
		return "no host"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "the port is not a number in 1..65535"
	}
	return ""
}

// healthHold rolls a ready workload to a version whose health check fails: the rollout must never make it ready,
// the old version keeps serving with all its replicas throughout, and applying the old version again converges.
func (s *suite) healthHold(t *testing.T) {
	if s.h.Unhealthy == nil {
		t.Skip("Harness.Unhealthy is nil")
	}
	const name = "cf-healthhold"
	p := s.provider(t, name)
	v1 := s.workload(t, name, 2, "conformance-healthhold-one")
	s.apply(t, p, v1)
	s.converged(t, p, v1)
	s.serves(t, v1, "conformance-healthhold-one")

	v2 := s.h.Unhealthy(s.workload(t, name, 2, "conformance-healthhold-two"))
	h1, h2 := providers.SpecHash(v1), providers.SpecHash(v2)
	switch {
	case v2.Name != name:
		t.Fatalf("conformance: Harness.Unhealthy renamed the workload to %q", v2.Name)
	case h2 == h1:
		t.Fatal("conformance: the unhealthy version hashes like the healthy one")
	}
	check := func(o providers.Observed) string {
		ready := 0
		for _, r := range o.Replicas {
			switch {
			case r.SpecHash == h1 && r.Ready():
				ready++
			case r.SpecHash == h2 && r.Ready():
				return fmt.Sprintf("a replica of the failing version %s is ready: %s", h2, describe(o))
			}
		}
		if ready < v1.Replicas {
			return fmt.Sprintf("%d ready replicas of the old version %s, want %d: %s", ready, h1, v1.Replicas, describe(o))
		}
		return ""
	}
	hold := s.h.HoldFor
	if hold <= 0 {
		hold = DefaultHoldFor
	}
	ctx, cancel := context.WithTimeout(s.ctx(t), hold)
	defer cancel()
	w := s.watch(t, p, v1, check, "conformance-healthhold-one")
	start := time.Now()
	err := w.during(func() error { return p.Apply(ctx, s.desired(v2)) })
	took := time.Since(start)
	for range 3 { // and after it
		w.lookAfter(pollInterval)
	}
	t.Logf("Apply of the failing version returned after %s: %v; %d looks", took.Round(time.Millisecond), err, w.count())
	if err == nil {
		t.Errorf("Apply of a version whose health check fails reported success")
	}
	w.report()

	s.apply(t, p, v1)
	o := s.converged(t, p, v1)
	if why := check(o); why != "" {
		t.Fatalf("after applying the old version again: %s", why)
	}
	s.serves(t, v1, "conformance-healthhold-one", "conformance-healthhold-two")
}

// mbb1 rolls a single replica to a new version while watching it: make before break, at every look a replica is
// ready and Probe answers.
func (s *suite) mbb1(t *testing.T) {
	const name = "cf-mbb1"
	p := s.provider(t, name)
	v1 := s.workload(t, name, 1, "conformance-mbb1-one")
	s.apply(t, p, v1)
	s.converged(t, p, v1)
	s.serves(t, v1, "conformance-mbb1-one")

	v2 := s.workload(t, name, 1, "conformance-mbb1-two")
	v2.Image = s.h.ImageV2
	h1, h2 := providers.SpecHash(v1), providers.SpecHash(v2)
	check := func(o providers.Observed) string {
		for _, r := range o.Replicas {
			if (r.SpecHash == h1 || r.SpecHash == h2) && r.Ready() {
				return ""
			}
		}
		return "no ready replica: " + describe(o)
	}
	w := s.watch(t, p, v1, check, "conformance-mbb1-one", "conformance-mbb1-two")
	w.lookAfter(0) // before
	start := time.Now()
	err := w.during(func() error { return p.Apply(s.ctx(t), s.desired(v2)) })
	took := time.Since(start)
	during := w.count() - 1
	w.lookAfter(0) // after
	t.Logf("Apply took %s; %d looks, %d of them during it", took.Round(time.Millisecond), w.count(), during)
	if err != nil {
		t.Fatalf("Apply %s (hash %s): %v", name, h2, err)
	}
	w.report()
	if took > 5*pollInterval && during < 1 {
		t.Fatalf("no look during an Apply of %s", took)
	}
	s.planSettles(t, p, v2)
	s.converged(t, p, v2)
	s.serves(t, v2, "conformance-mbb1-two", "conformance-mbb1-one")
}

// watcher looks at a workload again and again (List, then Probe) and keeps what was wrong at each look.
type watcher struct {
	s         *suite
	t         *testing.T
	p         providers.Provider
	w         schema.Workload // what Probe is given
	check     func(providers.Observed) string
	greetings []string
	start     time.Time

	mu       sync.Mutex
	looks    int
	problems []string
}

// watch returns a watcher of w's workload whose looks must pass check and whose Probe answers must contain one
// of greetings.
func (s *suite) watch(t *testing.T, p providers.Provider, w schema.Workload, check func(providers.Observed) string, greetings ...string) *watcher {
	return &watcher{s: s, t: t, p: p, w: w, check: check, greetings: greetings, start: time.Now()}
}

// look lists and probes once and records what is wrong.
func (w *watcher) look() {
	ctx, cancel := context.WithTimeout(context.Background(), w.s.h.Timeout)
	defer cancel()
	why := ""
	o, ok, err := w.s.find(ctx, w.p, w.s.h.Owner, w.w.Name)
	switch {
	case err != nil:
		why = "List: " + err.Error()
	case !ok:
		why = "the workload is not listed"
	default:
		why = w.check(o)
	}
	if why == "" && w.s.h.Probe != nil {
		body, err := w.s.h.Probe(ctx, w.w)
		if err != nil {
			why = "Probe: " + err.Error()
		} else if !containsAny(body, w.greetings) {
			why = fmt.Sprintf("Probe answered %q, want one of %q", body, w.greetings)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.looks++
	if why != "" {
		w.problems = append(w.problems, fmt.Sprintf("look %d at +%s: %s", w.looks, time.Since(w.start).Round(time.Millisecond), why))
	}
}

// lookAfter waits d (a pace between looks, not a wait for an outcome), then looks.
func (w *watcher) lookAfter(d time.Duration) {
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		<-timer.C
	}
	w.look()
}

// during runs f in a goroutine and looks every pollInterval until f returns, and returns f's error.
func (w *watcher) during(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		w.look()
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.looks
}

// report fails the test with the problems seen, if any.
func (w *watcher) report() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) == 0 {
		return
	}
	shown := w.problems
	if n := len(shown); n > maxLookProblems { // the first ones and the last
		shown = append(slices.Clip(shown[:maxLookProblems-2]), fmt.Sprintf("(%d more)", n-maxLookProblems))
		shown = append(shown, w.problems[n-2:]...)
	}
	w.t.Errorf("%d of %d looks at %s went wrong:\n%s", len(w.problems), w.looks, w.w.Name, strings.Join(shown, "\n"))
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
