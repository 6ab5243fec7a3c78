package reconciler

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
)

// TestControllerLoadContext: the load gets the controller's context; a load cut short by the end of Run is not
// reported as the revision's failure, and the next Run loads the revision again.
func TestControllerLoadContext(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.txt"), []byte("target local fake\nenv prod main\nworkload prod web local image=app:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{changes: make(chan struct{}), snap: &repos.Snapshot{Revision: "r1", Branch: "main", Dir: dir}}
	clock := fakeclock.New(t0)
	eng := newTestEngine(t, map[string]*fake.Provider{"local": fake.New()}, func(o *Options) { o.Clock = clockAdapter{clock} })
	loading := make(chan struct{}, 1)
	block := true
	c, err := NewController(ControllerOptions{Source: src, Engine: eng, Clock: clockAdapter{clock},
		Rand: rand.New(rand.NewPCG(1, 2)).Float64,
		LoadContext: func(ctx context.Context, dir string) (*schema.Config, error) {
			if block {
				loading <- struct{}{}
				<-ctx.Done() // a long evaluation, ended by the caller
				return nil, context.Cause(ctx)
			}
			return loadText(dir)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-loading
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return when its context ended during the load")
	}
	if s := c.Status(); s.LastError != "" || len(s.Errors) != 0 {
		t.Errorf("a stopped load is reported: %+v", s)
	}

	block = false
	idle := make(chan struct{}, 1)
	c.idle = func() { idle <- struct{}{} }
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- c.Run(ctx) }()
	select {
	case <-idle:
	case <-time.After(waitLimit):
		t.Fatal("controller not idle")
	}
	if s := c.Status(); s.LastError != "" || len(s.Environments) != 1 || s.Environments[0].LastAppliedRevision != "r1" {
		t.Errorf("r1 not loaded and applied on the next run: %+v", s)
	}
	cancel()
	<-done
}
