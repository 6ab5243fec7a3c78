package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/schema"
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval of a condition wait, not a fixed delay
	}
}

func inFlight(p *fake.Provider) int {
	n := 0
	for _, c := range p.Calls(false) {
		if c.Op == "apply" {
			n++
		}
	}
	return n
}

func TestApplyConcurrencyBound(t *testing.T) {
	p := fake.New()
	ps := map[string]*fake.Provider{"local": p}
	var ws []schema.Workload
	var releases []func()
	for i := range 10 {
		name := fmt.Sprintf("w%02d", i)
		ws = append(ws, wl(name, "local", "app:1", 1))
		releases = append(releases, p.Hold(name))
	}
	e := newTestEngine(t, ps, func(o *Options) { o.Concurrency = 3 })
	cfg := config([]string{"local"}, ws...)
	plan, err := e.Plan(context.Background(), cfg, "prod", "r1")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Apply(context.Background(), cfg, plan)
		done <- err
	}()
	// Release the held applies one by one; at no time may more than 3 run.
	for _, r := range releases {
		waitFor(t, "an apply in flight", func() bool { return p.MaxInFlight() >= 1 })
		r()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := p.MaxInFlight(); got > 3 || got < 1 {
		t.Errorf("max in flight = %d, want 1..3", got)
	}
	if got := inFlight(p); got != 10 {
		t.Errorf("applies = %d, want 10", got)
	}
}

func TestApplyReachesConcurrency(t *testing.T) {
	p := fake.New()
	ps := map[string]*fake.Provider{"local": p}
	release := map[string]func(){}
	var ws []schema.Workload
	for i := range 4 {
		name := fmt.Sprintf("w%d", i)
		ws = append(ws, wl(name, "local", "app:1", 1))
		release[name] = p.Hold(name)
	}
	e := newTestEngine(t, ps, func(o *Options) { o.Concurrency = 2 })
	cfg := config([]string{"local"}, ws...)
	plan, _ := e.Plan(context.Background(), cfg, "prod", "r1")
	done := make(chan error, 1)
	go func() { _, err := e.Apply(context.Background(), cfg, plan); done <- err }()
	waitFor(t, "two applies in flight", func() bool { return p.MaxInFlight() == 2 })
	for _, r := range release {
		r()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.MaxInFlight() != 2 {
		t.Errorf("max in flight = %d, want 2", p.MaxInFlight())
	}
}

func TestOneInFlightPerKey(t *testing.T) {
	p := fake.New()
	ps := map[string]*fake.Provider{"local": p}
	release := p.Hold("web")
	e := newTestEngine(t, ps, nil)
	cfg := config([]string{"local"}, wl("web", "local", "app:1", 1))
	plan, _ := e.Plan(context.Background(), cfg, "prod", "r1")
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Apply(context.Background(), cfg, plan)
			errs <- err
		}()
	}
	waitFor(t, "one apply in flight", func() bool { return p.MaxInFlight() == 1 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p.Overlaps() != 0 || p.MaxInFlight() != 1 {
		t.Errorf("overlaps = %d, max in flight = %d", p.Overlaps(), p.MaxInFlight())
	}
	if got := inFlight(p); got != 2 {
		t.Errorf("applies = %d, want 2", got)
	}
}

func TestApplyStepTimeoutAndErrors(t *testing.T) {
	p := fake.New()
	ps := map[string]*fake.Provider{"local": p}
	defer p.Hold("slow")()
	p.FailNext("bad", 1, true)
	e := newTestEngine(t, ps, func(o *Options) { o.StepTimeout = 20 * time.Millisecond })
	cfg := config([]string{"local"}, wl("bad", "local", "a:1", 1), wl("good", "local", "a:1", 1), wl("slow", "local", "a:1", 1))
	plan, _ := e.Plan(context.Background(), cfg, "prod", "r1")
	res, err := e.Apply(context.Background(), cfg, plan)
	if err == nil || res == nil {
		t.Fatalf("Apply = %v, %v; want a result and an error", res, err)
	}
	if !errors.Is(err, providers.ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error lost identity: %v", err)
	}
	got := map[string]bool{}
	for _, s := range res.Steps {
		got[s.Step.Workload] = s.OK
	}
	if want := map[string]bool{"bad": false, "good": true, "slow": false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("step results = %v, want %v", got, want)
	}
	if res.Failed() != 2 {
		t.Errorf("Failed() = %d", res.Failed())
	}
}

func TestApplyRefusesStalePlan(t *testing.T) {
	ps := map[string]*fake.Provider{"local": fake.New()}
	e := newTestEngine(t, ps, nil)
	plan, _ := e.Plan(context.Background(), config([]string{"local"}, wl("web", "local", "app:1", 1)), "prod", "r1")
	_, err := e.Apply(context.Background(), config([]string{"local"}, wl("web", "local", "app:2", 1)), plan)
	if !errors.Is(err, ErrStalePlan) {
		t.Fatalf("err = %v, want ErrStalePlan", err)
	}
}

func TestDestroy(t *testing.T) {
	ps := map[string]*fake.Provider{"local": fake.New(), "remote": fake.New()}
	seed(ps["local"], wl("web", "local", "a:1", 2))
	seed(ps["remote"], wl("db", "remote", "a:1", 1))
	other := wl("web", "local", "a:1", 1)
	ps["local"].Seed(providers.Desired{Owner: providers.Owner{Instance: DefaultInstance, Environment: "staging"},
		Target: "local", Workload: other, SpecHash: providers.SpecHash(other)})
	e := newTestEngine(t, ps, nil)
	cfg := config([]string{"local", "remote"})
	if err := e.Destroy(context.Background(), cfg, "prod"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"local", "remote"} {
		os, _ := ps[name].List(context.Background(), providers.Owner{Instance: DefaultInstance, Environment: "prod"}, name)
		if len(os) != 0 {
			t.Errorf("%s still runs %v", name, os)
		}
	}
	os, _ := ps["local"].List(context.Background(), providers.Owner{Instance: DefaultInstance, Environment: "staging"}, "local")
	if len(os) != 1 {
		t.Errorf("destroy touched another environment: %v", os)
	}
}

func TestNewEngineValidates(t *testing.T) {
	for _, o := range []Options{{MaxDeleteShare: 2}, {Concurrency: -1}, {StepTimeout: -time.Second}} {
		if _, err := NewEngine(o); err == nil {
			t.Errorf("NewEngine(%+v) accepted", o)
		}
	}
}
