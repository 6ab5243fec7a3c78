package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Defaults of the suite.
const (
	// DefaultTimeout bounds each wait and each call when Harness.Timeout is zero.
	DefaultTimeout = 2 * time.Minute
	// FaultCount is how many faults the fault case injects.
	FaultCount = 3
	// FaultTries bounds the Apply attempts of the fault case (FaultCount failures, then some slack).
	FaultTries = FaultCount + 3
	// pollInterval is the pace of List polling while waiting on a condition.
	pollInterval = 50 * time.Millisecond
)

// Harness is what a provider's test gives the suite.
type Harness struct {
	// New builds a fresh provider instance for the target (called again to simulate a restart of berth). It should
	// close the provider at t's cleanup when it holds resources.
	New    func(t *testing.T) providers.Provider
	Target string
	Owner  providers.Owner // a unique instance per run
	// Image is an image the runtime can start; ImageV2 another one (or the same: the rollout also changes env).
	Image   string
	ImageV2 string
	// Workload returns a reference workload named name: an HTTP service on port 8080 with an HTTP health check
	// (the quickstart app: args ["serve"], env GREETING) — the provider's test decides what runs. The suite sets
	// Replicas, Image and Env["GREETING"] on a copy.
	Workload func(name string) schema.Workload
	// Probe, when set, fetches the workload's public endpoint and returns the body (to check what serves).
	Probe func(ctx context.Context, w schema.Workload) (string, error)
	// Drift removes or stops replica i by hand (out of band), as an operator would; nil skips the drift cases.
	Drift func(ctx context.Context, t *testing.T, workload string, i int, kind string /* "remove" | "stop" */)
	// LookAlike creates an unowned object resembling workload's (same name prefix, no ownership labels) and
	// returns a func telling whether it still exists; nil skips that case.
	LookAlike func(ctx context.Context, t *testing.T, workload string) (exists func() bool)
	// Faults, when set, injects transient faults into the next n runtime calls (throttling, 5xx, timeouts)
	// for the fault-convergence case; nil skips it (Docker cannot inject).
	Faults func(n int)
	// Tamper edits one field berth manages behind berth's back, through the runtime's own API (as kubectl, the
	// docker CLI, a cloud console or another tool would), keyed by the field: TamperImage, TamperCommand, ...,
	// and TamperObject+"<name>" for deleting a side object berth made (a Service, a target group). The fielddrift
	// case checks that the next plan shows each as drift at that field, that one apply of that plan repairs it,
	// and that the plan after it is empty. A key the runtime cannot tamper with is left out.
	Tamper map[string]func(ctx context.Context, t *testing.T, workload string)
	// Unmanaged changes something of workload's that berth does not manage (a label of someone else's, a field
	// berth never sets) and returns a check that it is still there: the plan must stay empty and Apply must leave
	// it. Nil skips that case.
	Unmanaged func(ctx context.Context, t *testing.T, workload string) (kept func(ctx context.Context) (bool, error))
	// Foreign, where the runtime lets another manager own a value inside a field berth manages (Kubernetes
	// server-side apply), sets such a value and returns its plan path ("env.EXTRA"). The plan must then either
	// say in words that the value is kept (Observed.Kept), and keep saying so after the apply, or show it as a
	// change that the apply makes: either way plan and result agree. Nil skips that case.
	Foreign func(ctx context.Context, t *testing.T, workload string) (path string)
	// Secrets, when set, runs the secret case: GREETING comes from a secret instead of a plain value, delivered
	// the way the provider delivers secrets of this kind (schema.Secret kinds; "" is "sops", a value berth
	// decrypted), then rotated. The case needs Probe to see the value served. Nil skips it.
	Secrets *SecretsCase
	// Unhealthy returns a copy of w whose health check the runtime will find failing (a path the app answers 404
	// on, a port nothing listens on, an emulator told so); nil skips the healthhold case.
	Unhealthy func(w schema.Workload) schema.Workload
	// HoldFor is how long the healthhold case lets the Apply of the failing version run before cancelling it
	// (default 15 s).
	HoldFor time.Duration
	// Timeout bounds each wait (default 2 min).
	Timeout time.Duration
}

// SecretsCase is what the secret case needs from a provider's test.
type SecretsCase struct {
	// Source returns the declaration of a secret holding value (a fresh version of it for a rotation), and the
	// value berth resolves for it: value itself for SOPS, nil for a reference the runtime resolves. Nil: a SOPS
	// secret with value.
	Source func(ctx context.Context, t *testing.T, name, value string) (schema.Secret, []byte)
	// Leaks, when set, searches what the runtime holds besides the container's environment and files (labels,
	// tags, annotations, task definition fields, metadata) for value and says where it found it ("" for nowhere).
	Leaks func(ctx context.Context, t *testing.T, workload, value string) string
}

// Tamper keys, and the plan path each must show up at.
const (
	TamperImage     = "image"
	TamperCommand   = "command"
	TamperArgs      = "args"
	TamperEnv       = "env"
	TamperPorts     = "ports"
	TamperHealth    = "health"
	TamperResources = "resources"
	TamperReplicas  = "replicas"
	// TamperObject prefixes a side object's name: "object:Service web-public".
	TamperObject = "object:"
)

// tamperPath is the prefix of the plan change a tamper key must produce.
func tamperPath(key string) string {
	switch {
	case strings.HasPrefix(key, TamperObject):
		return "object "
	case key == TamperEnv:
		return "env."
	case key == TamperPorts:
		return "ports["
	case key == TamperResources:
		return "resources."
	}
	return key
}

// Drift kinds given to Harness.Drift.
const (
	DriftRemove = "remove"
	DriftStop   = "stop"
)

// Run runs every case of the suite as a subtest of t, sequentially (injected faults are not scoped to a workload).
func Run(t *testing.T, h Harness) {
	t.Helper()
	switch {
	case h.New == nil || h.Workload == nil:
		t.Fatal("conformance: Harness.New and Harness.Workload are required")
	case h.Target == "" || h.Image == "":
		t.Fatal("conformance: Harness.Target and Harness.Image are required")
	case h.Owner.Instance == "" || h.Owner.Environment == "":
		t.Fatal("conformance: Harness.Owner needs an instance and an environment")
	}
	if h.ImageV2 == "" {
		h.ImageV2 = h.Image
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultTimeout
	}
	s := &suite{h: h}
	for _, c := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"create", s.create},
		{"reapply", s.reapply},
		{"rollout", s.rollout},
		{"scale", s.scale},
		{"endpoint", s.endpoint},
		{"healthhold", s.healthHold},
		{"mbb1", s.mbb1},
		{"drift", s.drift},
		{"fielddrift", s.fieldDrift},
		{"unmanaged", s.unmanaged},
		{"foreign", s.foreign},
		{"secret", s.secret},
		{"delete", s.delete},
		{"lookalike", s.lookAlike},
		{"faults", s.faults},
		{"crash", s.crash},
		{"ownership", s.ownership},
		{"preview", s.preview},
		{"status", s.status},
	} {
		t.Run(c.name, c.run)
	}
}

type suite struct {
	h Harness
}

// ctx is the context of one call or wait; it ends at the case's cleanup at the latest.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// provider builds a fresh provider and registers the deletion of the named workloads, which runs before the
// harness closes the provider.
func (s *suite) provider(t *testing.T, names ...string) providers.Provider {
	t.Helper()
	p := s.h.New(t)
	if p == nil {
		t.Fatal("conformance: Harness.New returned nil")
	}
	s.deleteAtCleanup(t, p, names...)
	return p
}

func (s *suite) deleteAtCleanup(t *testing.T, p providers.Provider, names ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		for _, n := range names {
			if err := p.Delete(ctx, s.h.Owner, s.h.Target, n); err != nil {
				t.Errorf("cleanup: Delete %s: %v", n, err)
			}
		}
	})
}

// workload is the harness's reference workload with the suite's replicas and greeting.
func (s *suite) workload(t *testing.T, name string, replicas int, greeting string) schema.Workload {
	t.Helper()
	w := s.h.Workload(name)
	if w.Name != name {
		t.Fatalf("conformance: Harness.Workload(%q) returned a workload named %q", name, w.Name)
	}
	w.Env = maps.Clone(w.Env)
	if w.Env == nil {
		w.Env = map[string]string{}
	}
	w.Env["GREETING"] = greeting
	w.Ports = slices.Clone(w.Ports)
	w.Replicas = replicas
	return w
}

func (s *suite) desired(w schema.Workload) providers.Desired {
	return providers.Desired{Owner: s.h.Owner, Target: s.h.Target, Workload: w, SpecHash: providers.SpecHash(w)}
}

// apply applies w and fails the test on error. Then, as after every apply of the suite, the next plan must be
// empty: what the runtime holds is what was asked, field by field.
func (s *suite) apply(t *testing.T, p providers.Provider, w schema.Workload) {
	t.Helper()
	if err := p.Apply(s.ctx(t), s.desired(w)); err != nil {
		t.Fatalf("Apply %s (replicas %d, hash %s): %v", w.Name, w.Replicas, providers.SpecHash(w), err)
	}
	s.planSettles(t, p, w)
}

// find lists owner's workloads and returns the named one.
func (s *suite) find(ctx context.Context, p providers.Provider, owner providers.Owner, name string) (providers.Observed, bool, error) {
	obs, err := p.List(ctx, owner, s.h.Target)
	if err != nil {
		return providers.Observed{}, false, err
	}
	for _, o := range obs {
		if o.Workload == name {
			return o, true, nil
		}
	}
	return providers.Observed{}, false, nil
}

// observe returns the current observation of name, failing the test when List fails.
func (s *suite) observe(t *testing.T, p providers.Provider, name string) (providers.Observed, bool) {
	t.Helper()
	o, ok, err := s.find(s.ctx(t), p, s.h.Owner, name)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return o, ok
}

// waitFor polls check until it returns "" (met) or the timeout passes; it reports the last unmet reason.
func (s *suite) waitFor(t *testing.T, what string, check func(ctx context.Context) string) {
	t.Helper()
	ctx := s.ctx(t)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		why := check(ctx)
		if why == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", s.h.Timeout, what, why)
		case <-tick.C:
		}
	}
}

// converged waits until List shows exactly w.Replicas ready replicas of w's hash, with distinct IDs and names, and
// returns that observation.
func (s *suite) converged(t *testing.T, p providers.Provider, w schema.Workload) providers.Observed {
	t.Helper()
	hash := providers.SpecHash(w)
	var got providers.Observed
	s.waitFor(t, fmt.Sprintf("%s: %d ready replicas of %s", w.Name, w.Replicas, hash), func(ctx context.Context) string {
		o, ok, err := s.find(ctx, p, s.h.Owner, w.Name)
		switch {
		case err != nil:
			return "List: " + err.Error()
		case !ok:
			return "workload not listed"
		}
		got = o
		return convergedWhy(o, hash, w.Replicas)
	})
	return got
}

// convergedWhy says why o is not exactly n ready replicas of hash ("" when it is).
func convergedWhy(o providers.Observed, hash string, n int) string {
	if o.SpecHash != hash {
		return fmt.Sprintf("observed spec hash %s, want %s (%s)", o.SpecHash, hash, describe(o))
	}
	if len(o.Replicas) != n {
		return fmt.Sprintf("%d replicas, want %d (%s)", len(o.Replicas), n, describe(o))
	}
	ids, names := map[string]bool{}, map[string]bool{}
	for _, r := range o.Replicas {
		switch {
		case r.SpecHash != hash || !r.Ready():
			return "replica not ready on the spec: " + describe(o)
		case r.ID == "" || ids[r.ID] || names[r.Name]:
			return "replica IDs or names empty or duplicated: " + describe(o)
		}
		ids[r.ID], names[r.Name] = true, true
	}
	return ""
}

func describe(o providers.Observed) string {
	parts := make([]string, len(o.Replicas))
	for i, r := range o.Replicas {
		parts[i] = fmt.Sprintf("%s id=%.12s hash=%s state=%s running=%t health=%q", r.Name, r.ID, r.SpecHash, r.State, r.Running, r.Health)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func ids(o providers.Observed) []string {
	out := make([]string, len(o.Replicas))
	for i, r := range o.Replicas {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func readyIDs(o providers.Observed) map[string]bool {
	out := map[string]bool{}
	for _, r := range o.Replicas {
		if r.Ready() {
			out[r.ID] = true
		}
	}
	return out
}

// serves waits until Probe answers with a body containing want (skipped without Probe), then checks that a few
// more answers never contain any of not.
func (s *suite) serves(t *testing.T, w schema.Workload, want string, not ...string) {
	t.Helper()
	if s.h.Probe == nil {
		return
	}
	s.waitFor(t, fmt.Sprintf("%s to answer %q", w.Name, want), func(ctx context.Context) string {
		body, err := s.h.Probe(ctx, w)
		switch {
		case err != nil:
			return "Probe: " + err.Error()
		case !strings.Contains(body, want):
			return fmt.Sprintf("Probe answered %q", body)
		}
		return ""
	})
	for range 3 {
		body, err := s.h.Probe(s.ctx(t), w)
		if err != nil {
			t.Logf("Probe after convergence: %v", err)
			continue
		}
		for _, n := range not {
			if strings.Contains(body, n) {
				t.Fatalf("Probe answered %q after the rollout to %q: the old spec still serves", body, want)
			}
		}
	}
}

func (s *suite) create(t *testing.T) {
	const name = "cf-create"
	p := s.provider(t, name)
	w := s.workload(t, name, 2, "conformance-create")
	s.apply(t, p, w)
	o := s.converged(t, p, w)
	if o.Target != s.h.Target {
		t.Errorf("Observed.Target = %q, want %q", o.Target, s.h.Target)
	}
	s.serves(t, w, "conformance-create")
}

func (s *suite) reapply(t *testing.T) {
	const name = "cf-reapply"
	p := s.provider(t, name)
	w := s.workload(t, name, 2, "conformance-reapply")
	s.apply(t, p, w)
	first := ids(s.converged(t, p, w))
	s.apply(t, p, w)
	o := s.converged(t, p, w)
	if again := ids(o); !slices.Equal(first, again) {
		t.Fatalf("re-applying an unchanged spec replaced replicas: IDs %v, then %v", first, again)
	}
}

func (s *suite) rollout(t *testing.T) {
	const name = "cf-rollout"
	p := s.provider(t, name)
	v1 := s.workload(t, name, 2, "conformance-rollout-one")
	s.apply(t, p, v1)
	old := s.converged(t, p, v1)
	s.serves(t, v1, "conformance-rollout-one")

	v2 := s.workload(t, name, 2, "conformance-rollout-two")
	v2.Image = s.h.ImageV2
	if providers.SpecHash(v2) == providers.SpecHash(v1) {
		t.Fatal("conformance: the changed spec hashes like the old one")
	}
	s.apply(t, p, v2)
	o := s.converged(t, p, v2)
	for _, id := range ids(old) {
		if slices.Contains(ids(o), id) {
			t.Fatalf("replica %.12s of the old spec survived the rollout: %s", id, describe(o))
		}
	}
	if o.Spec.Image != v2.Image || o.Spec.Env["GREETING"] != "conformance-rollout-two" {
		t.Errorf("spec read back after the rollout: image %q, GREETING %q", o.Spec.Image, o.Spec.Env["GREETING"])
	}
	s.serves(t, v2, "conformance-rollout-two", "conformance-rollout-one")
}

func (s *suite) scale(t *testing.T) {
	const name = "cf-scale"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-scale")
	s.apply(t, p, w)
	one := ids(s.converged(t, p, w))

	w.Replicas = 3
	s.apply(t, p, w)
	three := ids(s.converged(t, p, w))
	if !slices.Contains(three, one[0]) {
		t.Fatalf("scale-up replaced the existing replica %.12s: now %v", one[0], three)
	}

	w.Replicas = 1
	s.apply(t, p, w)
	down := ids(s.converged(t, p, w))
	if !slices.Contains(three, down[0]) {
		t.Fatalf("scale-down started a new replica %.12s instead of keeping one of %v", down[0], three)
	}
}

func (s *suite) drift(t *testing.T) {
	if s.h.Drift == nil {
		t.Skip("Harness.Drift is nil")
	}
	const name = "cf-drift"
	p := s.provider(t, name)
	w := s.workload(t, name, 2, "conformance-drift")
	s.apply(t, p, w)
	o := s.converged(t, p, w)
	for i, kind := range []string{DriftRemove, DriftStop} {
		before := readyIDs(o)
		s.h.Drift(s.ctx(t), t, name, i, kind)
		after, _ := s.observe(t, p, name)
		now := readyIDs(after)
		var untouched []string
		for id := range before {
			if now[id] {
				untouched = append(untouched, id)
			}
		}
		if len(untouched) == len(before) {
			t.Fatalf("drift %s of replica %d is not visible in List: %s", kind, i, describe(after))
		}
		if err := p.Apply(s.ctx(t), s.desired(w)); err != nil {
			t.Fatalf("Apply after drift %s of replica %d: %v", kind, i, err)
		}
		o = s.converged(t, p, w)
		for _, id := range untouched {
			if !slices.Contains(ids(o), id) {
				t.Fatalf("repairing drift %s replaced the untouched replica %.12s: %s", kind, id, describe(o))
			}
		}
	}
	s.serves(t, w, "conformance-drift")
}

func (s *suite) delete(t *testing.T) {
	const name = "cf-delete"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-delete")
	s.apply(t, p, w)
	s.converged(t, p, w)
	if err := p.Delete(s.ctx(t), s.h.Owner, s.h.Target, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if o, ok := s.observe(t, p, name); ok {
		t.Fatalf("List still shows the deleted workload: %s", describe(o))
	}
	if err := p.Delete(s.ctx(t), s.h.Owner, s.h.Target, name); err != nil {
		t.Fatalf("deleting what is gone: %v", err)
	}
}

func (s *suite) lookAlike(t *testing.T) {
	if s.h.LookAlike == nil {
		t.Skip("Harness.LookAlike is nil")
	}
	const name = "cf-lookalike"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-lookalike")
	s.apply(t, p, w)
	s.converged(t, p, w)
	exists := s.h.LookAlike(s.ctx(t), t, name)
	if !exists() {
		t.Fatal("conformance: the harness's look-alike does not exist right after LookAlike")
	}
	w.Replicas = 2
	s.apply(t, p, w) // must neither count, adopt nor remove the look-alike
	s.converged(t, p, w)
	if !exists() {
		t.Fatal("Apply removed an unowned look-alike")
	}
	if err := p.Delete(s.ctx(t), s.h.Owner, s.h.Target, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if !exists() {
		t.Fatal("Delete removed an unowned look-alike")
	}
	if o, ok := s.observe(t, p, name); ok {
		t.Fatalf("List shows a workload after Delete (the look-alike?): %s", describe(o))
	}
}

func (s *suite) faults(t *testing.T) {
	if s.h.Faults == nil {
		t.Skip("Harness.Faults is nil")
	}
	const name = "cf-faults"
	p := s.provider(t, name)
	w := s.workload(t, name, 2, "conformance-faults")
	ctx := s.ctx(t)
	s.h.Faults(FaultCount)
	backoff := 10 * time.Millisecond
	var errs []error
	for try := 1; ; try++ {
		err := p.Apply(ctx, s.desired(w))
		if err == nil {
			break
		}
		if errors.Is(err, providers.ErrPermanent) {
			t.Fatalf("Apply try %d: a transient fault surfaced as permanent: %v", try, err)
		}
		errs = append(errs, err)
		if try == FaultTries {
			t.Fatalf("Apply still failing after %d tries: %v", try, errors.Join(errs...))
		}
		timer := time.NewTimer(backoff) // retry backoff, as the reconciler does; not a wait for an outcome
		select {
		case <-ctx.Done():
			timer.Stop()
			t.Fatal("timed out retrying Apply")
		case <-timer.C:
		}
		backoff = min(2*backoff, time.Second)
	}
	t.Logf("converged after %d failed tries", len(errs))
	s.converged(t, p, w)
}

func (s *suite) crash(t *testing.T) {
	const name = "cf-crash"
	first := s.h.New(t)
	w := s.workload(t, name, 2, "conformance-crash")

	// Cancel the Apply as soon as List shows a replica: berth dies between two runtime calls.
	ctx, cancel := context.WithCancel(s.ctx(t))
	defer cancel()
	seen := make(chan providers.Observed, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(pollInterval / 5)
		defer tick.Stop()
		for {
			if o, ok, err := s.find(ctx, first, s.h.Owner, name); err == nil && ok && len(o.Replicas) > 0 {
				seen <- o
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	err := first.Apply(ctx, s.desired(w))
	if err == nil {
		cancel() // the Apply won the race: the restart must then be a no-op
	}
	<-done
	select {
	case o := <-seen:
		t.Logf("interrupted Apply returned %v; seen before the cancel: %s", err, describe(o))
	default:
		t.Logf("interrupted Apply returned %v before any replica was listed", err)
	}
	if c, ok := first.(providers.Closer); ok {
		if err := c.Close(); err != nil {
			t.Fatalf("closing the interrupted provider: %v", err)
		}
	}

	second := s.provider(t, name)
	s.apply(t, second, w)
	o := s.converged(t, second, w)
	if o.Spec.Replicas != 0 && o.Spec.Replicas != w.Replicas {
		t.Errorf("Observed.Spec.Replicas = %d, want %d", o.Spec.Replicas, w.Replicas)
	}
}

func (s *suite) ownership(t *testing.T) {
	const name = "cf-ownership"
	p := s.provider(t, name)
	w := s.workload(t, name, 1, "conformance-ownership")
	s.apply(t, p, w)
	mine := ids(s.converged(t, p, w))
	others := []providers.Owner{
		{Instance: s.h.Owner.Instance + "-other", Environment: s.h.Owner.Environment},
		{Instance: s.h.Owner.Instance, Environment: s.h.Owner.Environment + "-other"},
	}
	for _, other := range others {
		o, ok, err := s.find(s.ctx(t), p, other, name)
		if err != nil {
			t.Fatalf("List as %+v: %v", other, err)
		}
		if ok {
			t.Fatalf("List as %+v shows our workload: %s", other, describe(o))
		}
		if err := p.Delete(s.ctx(t), other, s.h.Target, name); err != nil {
			t.Fatalf("Delete as %+v of a workload it does not have: %v", other, err)
		}
		o = s.converged(t, p, w)
		if got := ids(o); !slices.Equal(got, mine) {
			t.Fatalf("Delete as %+v touched ours: IDs %v, then %v", other, mine, got)
		}
	}
}

func (s *suite) status(t *testing.T) {
	const name = "cf-status"
	p := s.provider(t, name)
	w := s.workload(t, name, 2, "conformance-status")
	s.apply(t, p, w)
	o := s.converged(t, p, w)
	if o.Workload != name || o.Target != s.h.Target {
		t.Errorf("Observed names workload %q on target %q, want %q on %q", o.Workload, o.Target, name, s.h.Target)
	}
	if o.Spec.Image != w.Image {
		t.Errorf("Spec.Image = %q, want %q", o.Spec.Image, w.Image)
	}
	if o.Spec.Replicas != w.Replicas {
		t.Errorf("Spec.Replicas = %d, want %d", o.Spec.Replicas, w.Replicas)
	}
	for k, v := range w.Env {
		if got, ok := o.Spec.Env[k]; !ok || got != v {
			t.Errorf("Spec.Env[%q] = %q (present %t), want %q", k, got, ok, v)
		}
	}
}
