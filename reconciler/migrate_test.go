package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"math/rand/v2"

	"golang.org/x/tools/txtar"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	efake "github.com/berth-dev/berth/providers/endpoint/fake"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/reconciler/store"
	"github.com/berth-dev/berth/schema"
)

// moveHarness runs Engine.Plan and Engine.Apply of one environment against fake providers (by target name), one
// fake router for every dns entry, a store and a fake clock, driven by a script:
//
//	config NAME              use the archive's CUE file NAME (targets' types are replaced by the fake's)
//	plan                     print the plan
//	apply                    plan and apply in the background; prints nothing until it stops or waits
//	tick DURATION            move the clock and deliver every due timer, waiting for the apply each time
//	unhealthy TARGET         stop every replica of the workload on TARGET (its health fails)
//	crash                    cancel the apply in flight (a controller killed), and start a fresh engine on the
//	                         same store, runtimes and router
//	done                     wait for the apply to end
//	plant NAME ADDRESS       put a record berth did not write at NAME
//	lookups NAME N           what N clients of NAME get, counted by target
//
// After each command the transcript shows, in this order, the runtimes' calls, the router's changes, the
// migration transitions recorded, and the apply's result once it ended, each with the clock's offset.
type moveHarness struct {
	t      *testing.T
	files  map[string][]byte
	clock  *fakeclock.Clock
	provs  map[string]*fake.Provider
	router *efake.Router
	st     *store.Store
	eng    *Engine
	cfg    *schema.Config
	out    bytes.Buffer
	seen   int // transitions already printed

	cancel context.CancelFunc
	result chan error
}

func newMoveHarness(t *testing.T, files map[string][]byte) *moveHarness {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &moveHarness{t: t, files: files, clock: fakeclock.New(t0), router: efake.New(), st: st,
		provs: map[string]*fake.Provider{"aws": fake.New(), "gcp": fake.New(), "azure": fake.New()}}
	h.engine()
	return h
}

func (h *moveHarness) engine() {
	h.eng = newTestEngine(h.t, h.provs, func(o *Options) {
		o.Clock = clockAdapter{h.clock}
		o.Store = h.st
		o.Routers = func(schema.Target, endpoint.Options) (endpoint.Router, error) { return h.router, nil }
	})
}

func (h *moveHarness) load(name string) error {
	data, ok := h.files[name]
	if !ok {
		return fmt.Errorf("no file %q in the archive", name)
	}
	dir := h.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), data, 0o644); err != nil {
		return err
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		return err
	}
	for n, t := range cfg.Targets {
		t.Type = fake.Type
		cfg.Targets[n] = t
	}
	h.cfg = cfg
	return nil
}

func (h *moveHarness) printf(format string, args ...any) { fmt.Fprintf(&h.out, format, args...) }

// report prints what happened since the last report.
func (h *moveHarness) report() {
	for _, n := range sortedKeys((h.provs)) {
		for _, c := range h.provs[n].Calls(true) {
			h.printf("call %s %s on %s\n", c.Op, c.Workload, n)
		}
	}
	for _, c := range h.router.Calls(true) {
		h.printf("dns %s\n", c)
	}
	ms, err := h.st.Migrations("prod", 0)
	if err != nil {
		h.t.Fatal(err)
	}
	slices.Reverse(ms)
	for _, m := range ms[h.seen:] {
		h.printf("move %s +%s %s to %s weight %d", m.Workload, m.Time.Sub(t0), m.Phase, m.To, m.Weight)
		if m.Detail != "" {
			h.printf(" (%s)", m.Detail)
		}
		h.printf("\n")
	}
	h.seen = len(ms)
}

// waitApply waits until the apply in flight waits on the clock, or ends (then it prints the result).
func (h *moveHarness) waitApply() {
	h.t.Helper()
	if h.result == nil {
		return
	}
	select {
	case <-h.clock.Added():
	case err := <-h.result:
		h.ended(err)
	case <-time.After(waitLimit):
		h.t.Fatalf("apply neither waits nor ends after %v", waitLimit)
	}
}

func (h *moveHarness) ended(err error) {
	h.result, h.cancel = nil, nil
	h.report()
	if err != nil {
		h.printf("apply failed: %v\n", err)
	} else {
		h.printf("apply done\n")
	}
}

func (h *moveHarness) run(cmd string, args []string) error {
	switch cmd {
	case "config":
		return h.load(args[0])
	case "plan":
		p, err := h.eng.Plan(context.Background(), h.cfg, "prod", "r")
		if err != nil {
			return err
		}
		h.out.WriteString(p.String())
	case "apply":
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.result = cancel, make(chan error, 1)
		eng, cfg, res := h.eng, h.cfg, h.result
		go func() {
			p, err := eng.Plan(ctx, cfg, "prod", "r")
			if err == nil {
				_, err = eng.Apply(ctx, cfg, p)
			}
			res <- err
		}()
		h.waitApply()
	case "tick":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		h.clock.Set(h.clock.Now().Add(d))
		for h.result != nil && h.clock.FireDue() {
			h.waitApply()
		}
		h.printf("at +%s\n", h.clock.Now().Sub(t0))
	case "unhealthy":
		p := h.provs[args[0]]
		for i := 0; ; i++ {
			if err := p.StopReplica("web", i); err != nil {
				break
			}
		}
	case "crash":
		if h.cancel == nil {
			return errors.New("no apply in flight")
		}
		h.cancel()
		<-h.result
		h.result, h.cancel = nil, nil
		h.report()
		h.printf("crashed\n")
		h.eng.Close()
		h.engine()
	case "done":
		if h.result == nil {
			return errors.New("no apply in flight")
		}
		select {
		case err := <-h.result:
			h.ended(err)
		case <-time.After(waitLimit):
			return fmt.Errorf("apply not done after %v", waitLimit)
		}
	case "plant":
		h.router.Plant(args[0], args[1])
	case "lookups":
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		count := map[string]int{}
		for range n {
			count[h.router.Lookup(args[0])]++
		}
		var parts []string
		for _, t := range sortedKeys((count)) {
			parts = append(parts, fmt.Sprintf("%s=%d", t, count[t]))
		}
		h.printf("lookups %s: %s\n", args[0], strings.Join(parts, " "))
	case "copies":
		var on []string
		for _, n := range sortedKeys((h.provs)) {
			if h.provs[n].Has("web") {
				on = append(on, n)
			}
		}
		h.printf("copies of web: %s\n", strings.Join(on, " "))
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	if h.result == nil || cmd != "crash" {
		h.report()
	}
	return nil
}

// TestMigrationTranscripts runs testdata/migrate/*.txtar: a "script" file of commands and a "want" transcript.
func TestMigrationTranscripts(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "migrate", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fs := map[string][]byte{}
			for _, f := range ar.Files {
				fs[f.Name] = f.Data
			}
			h := newMoveHarness(t, fs)
			for _, line := range strings.Split(string(fs["script"]), "\n") {
				f := strings.Fields(line)
				if len(f) == 0 || strings.HasPrefix(f[0], "#") {
					continue
				}
				h.printf("> %s\n", line)
				if err := h.run(f[0], f[1:]); err != nil {
					h.printf("error: %v\n", err)
				}
			}
			if h.cancel != nil {
				h.cancel()
				<-h.result
			}
			got := h.out.String()
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "want" {
						ar.Files[i].Data = []byte(got)
					}
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(fs["want"]); got != want {
				t.Errorf("transcript differs (go test ./reconciler -run %s -update to accept):\n%s", t.Name(), lineDiff(want, got))
			}
		})
	}
}

// lineDiff shows the first differing line and the rest of both sides.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	return fmt.Sprintf("first difference at line %d:\n--- want ---\n%s\n--- got ---\n%s", i+1,
		strings.Join(w[i:min(len(w), i+15)], "\n"), strings.Join(g[i:min(len(g), i+15)], "\n"))
}

// TestMigrationCrashCampaign moves a workload AWS → GCP while a random script ticks the clock, kills the engine
// at random points (a fresh engine resumes on the same store, runtimes and router) and sometimes makes the new
// copy unhealthy. At every point, every client lookup of the name lands on a copy that runs ready; at the end
// exactly one copy runs, and the name serves it alone. BERTH_MIGRATE_TRIALS sets the number of trials
// (hack/migrate-campaign.sh runs many more).
func TestMigrationCrashCampaign(t *testing.T) {
	trials := 200
	if s := os.Getenv("BERTH_MIGRATE_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		trials = n
	}
	ar, err := txtar.ParseFile(filepath.Join("testdata", "migrate", "move.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	fs := map[string][]byte{}
	for _, f := range ar.Files {
		fs[f.Name] = f.Data
	}
	crashes, aborts := 0, 0
	for trial := range trials {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		h := newMoveHarness(t, fs)
		must := func(cmd string, args ...string) {
			t.Helper()
			if err := h.run(cmd, args); err != nil {
				t.Fatalf("trial %d: %s %v: %v\n%s", trial, cmd, args, err, h.out.String())
			}
		}
		must("config", "v1")
		must("apply")
		must("config", "v2")
		must("apply")
		sick := false
		for step := 0; step < 400 && h.result != nil; step++ {
			switch x := rng.IntN(20); {
			case x == 0:
				must("crash")
				must("apply")
				crashes++
			case x == 1 && !sick && rng.IntN(4) == 0 && len(h.router.Members("web.example.com")) > 1:
				// Only while the old copy is still a member: later the move is over, and the new copy is the
				// workload.
				must("unhealthy", "gcp")
				sick = true
			default:
				must("tick", (time.Duration(1+rng.IntN(20)) * time.Second).String())
			}
			for range 5 {
				target := h.router.Lookup("web.example.com")
				if sick && target == "gcp" {
					continue // sent there between the failure and berth's second look at it
				}
				if ok, why := readyOn(h.provs[target], target); !ok {
					t.Fatalf("trial %d: a client was sent to %q: %s\n%s", trial, target, why, h.out.String())
				}
			}
		}
		if h.result != nil {
			t.Fatalf("trial %d: the move did not end\n%s", trial, h.out.String())
		}
		on := []string{}
		for _, n := range sortedKeys(h.provs) {
			if h.provs[n].Has("web") {
				on = append(on, n)
			}
		}
		// The move ends on GCP, or, when the new copy failed (and no resumed apply repaired it first), back on
		// AWS after an abort.
		ms := h.router.Members("web.example.com")
		if len(on) != 1 || len(ms) != 1 || ms[0].Target != on[0] {
			t.Fatalf("trial %d: at the end copies on %v and the name serves %+v; want one copy, served alone\n%s", trial, on, ms, h.out.String())
		}
		last, _ := h.st.Migrations("prod", 1)
		switch {
		case on[0] == "aws" && (len(last) == 0 || last[0].Phase != MoveAborted):
			t.Fatalf("trial %d: back on aws without an abort: %+v\n%s", trial, last, h.out.String())
		case len(last) == 0 || (last[0].Phase != MoveDone && last[0].Phase != MoveAborted):
			t.Fatalf("trial %d: the move ended, but its last transition is %+v\n%s", trial, last, h.out.String())
		case on[0] == "aws":
			aborts++
		case on[0] == "gcp":
			if ok, why := readyOn(h.provs["gcp"], "gcp"); !ok {
				t.Fatalf("trial %d: the move ended on gcp, which is not ready: %s\n%s", trial, why, h.out.String())
			}
		}
		h.eng.Close()
	}
	t.Logf("%d trials, %d crashes, %d moves shifted back", trials, crashes, aborts)
}

// readyOn tells whether the fake runtime p runs web with a ready replica.
func readyOn(p *fake.Provider, target string) (bool, string) {
	if p == nil {
		return false, "no such target"
	}
	os, err := p.List(context.Background(), providers.Owner{Instance: DefaultInstance, Environment: "prod"}, target)
	if err != nil {
		return false, err.Error()
	}
	for _, o := range os {
		if o.Workload != "web" {
			continue
		}
		for _, r := range o.Replicas {
			if r.Ready() {
				return true, ""
			}
		}
		return false, "no replica of web is ready there"
	}
	return false, "web does not run there"
}
