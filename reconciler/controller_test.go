package reconciler

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/reconciler/store"
	"github.com/berth-dev/berth/repos"
)

// TestControllerStoreMetrics runs the controller over two revisions and checks what it records: the store's
// revisions, plans, applies and events, and the metrics (the last-applied label set is replaced, not added).
func TestControllerStoreMetrics(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	clock := fakeclock.New(t0)
	ps := map[string]*fake.Provider{"local": fake.New()}
	eng := newTestEngine(t, ps, func(o *Options) { o.Store, o.Metrics, o.Clock = st, m, clockAdapter{clock} })
	src := &fakeSource{changes: make(chan struct{})}
	write := func(rev, body string) {
		d := filepath.Join(dir, rev)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.txt"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		src.mu.Lock()
		src.snap = &repos.Snapshot{Revision: rev, Branch: "main", Dir: d}
		src.mu.Unlock()
	}
	write("r1", "target local fake\nenv prod main\nworkload prod web local image=app:1 env.API_TOKEN=s3cret\n")
	idle := make(chan struct{}, 10)
	c, err := NewController(ControllerOptions{Source: src, Engine: eng, Clock: clockAdapter{clock}, Load: loadText,
		Store: st, Metrics: m, Rand: rand.New(rand.NewPCG(3, 4)).Float64})
	if err != nil {
		t.Fatal(err)
	}
	c.idle = func() { idle <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	wait := func() {
		select {
		case <-idle:
		case <-time.After(waitLimit):
			t.Fatal("controller not idle")
		}
	}
	wait()
	if !c.Ready() || !c.Status().Ready {
		t.Error("not ready after the first pass")
	}
	write("r2", "target local fake\nenv prod main\nworkload prod web local image=app:2\n")
	src.changes <- struct{}{}
	wait()
	write("r3", "target local fake\nbogus\n")
	c.Trigger()
	wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}

	if rs, _ := st.Revisions(0); len(rs) != 3 || rs[0].Revision != "r3" {
		t.Errorf("revisions = %+v", rs)
	}
	// r1's create, r2's update, and r2 kept running (no changes) while r3 fails to load.
	if ps, _ := st.Plans("prod", 0); len(ps) != 3 || ps[0].Revision != "r2" || ps[0].Summary != "Plan: 0 to create, 0 to update, 0 to delete, 0 to migrate." {
		t.Errorf("plans = %+v, want 3, the newest an empty plan of r2", ps)
	}
	if as, _ := st.Applies("prod", 0); len(as) != 2 || !as[0].Steps[0].OK {
		t.Errorf("applies = %+v", as)
	}
	if es, _ := st.Events("", 0); len(es) != 1 || !strings.Contains(es[0].Message, "config.txt:2:1") {
		t.Errorf("events = %+v", es)
	}
	s := c.Status()
	if s.Revision != "r3" || len(s.Errors) != 1 || s.Errors[0].Line != 2 || s.Environments[0].LastAppliedRevision != "r2" {
		t.Errorf("status = %+v", s)
	}
	if got := gauges(t, reg, "berth_last_applied_revision_info"); got != "environment=prod,revision=r2 1;" {
		t.Errorf("last applied = %q", got)
	}
	if got := gauges(t, reg, "berth_steps_total"); got != "action=create,result=ok 1;action=update,result=ok 1;" {
		t.Errorf("steps = %q", got)
	}
	if got := gauges(t, reg, "berth_reconcile_total"); got != "environment=prod,result=failed 1;environment=prod,result=ready 2;" {
		t.Errorf("reconciles = %q", got)
	}
	// Nothing recorded shows the secret.
	b, _ := os.ReadFile(filepath.Join(dir, "state.db"))
	if strings.Contains(string(b), "s3cret") {
		t.Error("the store holds a secret value")
	}
}

func TestNewControllerValidates(t *testing.T) {
	eng := newTestEngine(t, map[string]*fake.Provider{}, nil)
	src := &fakeSource{}
	for _, o := range []ControllerOptions{{Engine: eng}, {Source: src}, {Source: src, Engine: eng, Interval: -1},
		{Source: src, Engine: eng, BackoffBase: time.Minute, BackoffMax: time.Second}} {
		if _, err := NewController(o); err == nil {
			t.Errorf("NewController(%+v) accepted", o)
		}
	}
}

// gauges renders the samples of one metric family as "label=value,... value;" in the registry's order.
func gauges(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			b.WriteString(strings.Join(ls, ",") + " " + strconv.FormatFloat(value(m), 'g', -1, 64) + ";")
		}
	}
	return b.String()
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return -1
}
