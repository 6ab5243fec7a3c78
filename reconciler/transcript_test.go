package reconciler

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite the expected transcripts in testdata")

// fakeSource serves snapshots the test commits. Its Changes channel is unbuffered: the test's send returns when the
// controller has taken it.
type fakeSource struct {
	mu      sync.Mutex
	snap    *repos.Snapshot
	err     error // when set, every Fetch fails with it (an unreachable server, an untrusted revision)
	changes chan struct{}
}

func (s *fakeSource) Fetch(ctx context.Context) (*repos.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.snap == nil {
		return nil, fmt.Errorf("nothing committed: %w", repos.ErrBranchNotFound)
	}
	c := *s.snap
	return &c, nil
}
func (s *fakeSource) Changes() <-chan struct{} { return s.changes }
func (s *fakeSource) Notify()                  {}
func (s *fakeSource) String() string           { return "fake" }
func (s *fakeSource) Close() error             { return nil }

// harness runs a controller against a fake source, fake providers and a fake clock, one script command at a time.
// After each command it waits until the controller is idle again, so the transcript is deterministic.
type harness struct {
	t       *testing.T
	dir     string
	files   map[string][]byte
	clock   *fakeclock.Clock
	src     *fakeSource
	provs   map[string]*fake.Provider
	ctrl    *Controller
	idle    chan struct{}
	cancel  context.CancelFunc
	done    chan error
	started bool
	out     bytes.Buffer
}

func newHarness(t *testing.T, files map[string][]byte) *harness {
	h := &harness{t: t, dir: t.TempDir(), files: files, clock: fakeclock.New(t0),
		src:   &fakeSource{changes: make(chan struct{})},
		provs: map[string]*fake.Provider{"local": fake.New(), "remote": fake.New()},
		idle:  make(chan struct{}, 1000)}
	eng := newTestEngine(t, h.provs, func(o *Options) { o.Clock = clockAdapter{h.clock} })
	c, err := NewController(ControllerOptions{Source: h.src, Engine: eng, Clock: clockAdapter{h.clock},
		Load: loadText, Rand: rand.New(rand.NewPCG(1, 2)).Float64, Interval: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.idle = func() { h.idle <- struct{}{} }
	h.ctrl = c
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.started {
		h.cancel()
		if err := <-h.done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.started = false
	}
}

const waitLimit = 60 * time.Second

func (h *harness) waitIdle() {
	h.t.Helper()
	select {
	case <-h.idle:
	case <-time.After(waitLimit):
		h.t.Fatalf("controller not idle after %v", waitLimit)
	}
}

// settle delivers every due timer, one wake-up at a time.
func (h *harness) settle() {
	for h.clock.FireDue() {
		h.waitIdle()
	}
}

func (h *harness) commit(name string) error {
	data, ok := h.files[name]
	if !ok {
		return fmt.Errorf("no file %q in the archive", name)
	}
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.txt"), data, 0o644); err != nil {
		return err
	}
	h.src.mu.Lock()
	h.src.snap = &repos.Snapshot{Revision: name, Branch: "main", Dir: dir, Time: h.clock.Now()}
	h.src.mu.Unlock()
	if !h.started {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done, h.started = cancel, make(chan error, 1), true
		go func() { h.done <- h.ctrl.Run(ctx) }()
	} else {
		select {
		case h.src.changes <- struct{}{}:
		case <-time.After(waitLimit):
			return fmt.Errorf("controller did not take the change")
		}
	}
	h.waitIdle()
	h.settle()
	return nil
}

func (h *harness) tick(d time.Duration) {
	target := h.clock.Now().Add(d)
	for {
		next, ok := h.clock.Next()
		if !ok || next.After(target) {
			h.clock.Set(target)
			return
		}
		h.clock.Set(next)
		if h.clock.FireDue() {
			h.waitIdle()
		}
	}
}

// provider returns the fake provider running workload (local when none does yet).
func (h *harness) provider(workload string) *fake.Provider {
	for _, name := range []string{"local", "remote"} {
		if h.provs[name].Has(workload) {
			return h.provs[name]
		}
	}
	return h.provs["local"]
}

func (h *harness) run(cmd string) error {
	args := strings.Fields(cmd)
	switch {
	case args[0] == "commit" && len(args) == 2:
		return h.commit(args[1])
	case args[0] == "tick" && len(args) == 2:
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return err
		}
		if !h.started {
			return fmt.Errorf("tick before the first commit")
		}
		h.tick(d)
	case args[0] == "settle":
		h.settle()
	case args[0] == "trigger":
		h.ctrl.Trigger()
		h.waitIdle()
		h.settle()
	case args[0] == "fail-provider" && len(args) == 3:
		p := h.provider(args[1])
		switch args[2] {
		case "permanent":
			p.FailNext(args[1], -1, true)
		case "off":
			p.FailNext(args[1], 0, false)
		default:
			n, err := strconv.Atoi(args[2])
			if err != nil {
				return err
			}
			p.FailNext(args[1], n, false)
		}
	case args[0] == "drift" && len(args) == 4:
		i, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		p := h.provider(args[1])
		switch args[2] {
		case "remove":
			return p.RemoveReplica(args[1], i)
		case "stop":
			return p.StopReplica(args[1], i)
		default:
			return fmt.Errorf("drift: unknown kind %q", args[2])
		}
	case args[0] == "edit" && len(args) == 3: // edit WORKLOAD image=I | env.K=V | replicas=N: a hand edit on the runtime
		k, v, ok := strings.Cut(args[2], "=")
		if !ok {
			return fmt.Errorf("edit: want FIELD=VALUE, got %q", args[2])
		}
		return h.provider(args[1]).Edit(args[1], func(w *schema.Workload) {
			switch {
			case k == "image":
				w.Image = v
			case k == "replicas":
				w.Replicas, _ = strconv.Atoi(v)
			case strings.HasPrefix(k, "env."):
				if w.Env == nil {
					w.Env = map[string]string{}
				}
				w.Env[strings.TrimPrefix(k, "env.")] = v
			}
		})
	case args[0] == "source-fail" && len(args) >= 2:
		h.src.mu.Lock()
		h.src.err = errors.New(strings.Join(args[1:], " "))
		h.src.mu.Unlock()
	case args[0] == "source-ok":
		h.src.mu.Lock()
		h.src.err = nil
		h.src.mu.Unlock()
	case args[0] == "status":
		h.writeStatus(true)
		return nil
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

// writeCalls prints the apply and delete calls since the last command, sorted (steps run concurrently).
func (h *harness) writeCalls() {
	var lines []string
	for name, p := range h.provs {
		for _, c := range p.Calls(true) {
			if c.Op == "list" {
				continue
			}
			l := fmt.Sprintf("call %s %s/%s on %s", c.Op, c.Environment, c.Workload, name)
			if c.Err != "" {
				l += " error: " + c.Err
			}
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(&h.out, l)
	}
}

func (h *harness) rel(t time.Time) string {
	return "+" + t.Sub(t0).Round(time.Millisecond).String()
}

func (h *harness) writeStatus(workloads bool) {
	s := h.ctrl.Status()
	if s.LastError != "" {
		fmt.Fprintf(&h.out, "source: revision=%s error: %s\n", s.Revision, strings.ReplaceAll(s.LastError, "\n", "; "))
	}
	for _, e := range s.Environments {
		fmt.Fprintf(&h.out, "%s: %s applied=%s attempted=%s | %s\n", e.Name, e.Phase, e.LastAppliedRevision,
			e.LastAttemptedRevision, e.Plan)
		for _, st := range e.Steps {
			fmt.Fprintf(&h.out, "  step %s\n", st)
		}
		for _, er := range e.Errors {
			pos := "-"
			if er.File != "" {
				pos = fmt.Sprintf("%s:%d:%d", er.File, er.Line, er.Column)
			}
			fmt.Fprintf(&h.out, "  error %s %s: %s\n", pos, er.Path, er.Message)
		}
		if !workloads {
			continue
		}
		for _, w := range e.Workloads {
			fmt.Fprintf(&h.out, "  workload %s on %s: %d/%d ready", w.Name, w.Target, w.ReadyReplicas, w.DesiredReplicas)
			if !w.BackoffUntil.IsZero() {
				fmt.Fprintf(&h.out, ", backoff until %s", h.rel(w.BackoffUntil))
			}
			if len(w.Drift) > 0 {
				fmt.Fprintf(&h.out, ", drift %s", strings.Join(w.Drift, " "))
			}
			fmt.Fprintln(&h.out)
		}
	}
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fs := map[string][]byte{}
			var script []byte
			wantIdx := -1
			for i, f := range ar.Files {
				switch f.Name {
				case "script":
					script = f.Data
				case "want":
					wantIdx = i
				default:
					fs[f.Name] = f.Data
				}
			}
			h := newHarness(t, fs)
			for _, line := range strings.Split(string(script), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				fmt.Fprintf(&h.out, "> %s\n", line)
				if err := h.run(line); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				h.writeCalls()
				if !strings.HasPrefix(line, "status") {
					fmt.Fprintf(&h.out, "at %s\n", h.rel(h.clock.Now()))
					h.writeStatus(false)
				}
			}
			h.stop()
			got := h.out.Bytes()
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = got
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("no want section (run with -update)")
			}
			if want := ar.Files[wantIdx].Data; !bytes.Equal(got, want) {
				t.Errorf("transcript differs (run with -update to accept)\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}
