package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/schema"
)

// Hostile repositories: each is evaluated under a time limit and a memory budget, and fails with a clear error
// within them; a signal ends the evaluation, and the command, at once.

const (
	hostileTimeout = 3 * time.Second
	hostileMemory  = 200 << 20
	// slack is what a limit may be overrun by: the child's start, the kill, and the parent's exit.
	hostileSlack = 2 * time.Second
)

// hostileRepos are repositories whose evaluation would take minutes or gigabytes.
var hostileRepos = map[string]func() string{
	// A billion-element comprehension.
	"comprehension bomb": func() string {
		return "import \"list\"\nenvironments: production: branch: \"main\"\n" +
			"x: [for a in list.Range(0, 1000, 1) for b in list.Range(0, 1000, 1) for c in list.Range(0, 1000, 1) {a + b + c}]\n"
	},
	// A value nested 100,000 deep through references (the parser refuses more than 10,000 literal levels).
	"deeply nested value": deepRepo,
	// A list of a hundred million numbers.
	"huge list": func() string {
		return "import \"list\"\nenvironments: production: branch: \"main\"\n" +
			"x: [for i in list.Range(0, 100000000, 1) {i}]\n"
	},
}

func deepRepo() string {
	var b strings.Builder
	b.WriteString("environments: production: branch: \"main\"\n")
	for i := range 100000 {
		fmt.Fprintf(&b, "x%d: v: x%d\n", i, i+1)
	}
	b.WriteString("x100000: 1\n")
	return b.String()
}

func writeHostile(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// childOf is the pid of a child process of parent, if it has one.
func childOf(parent int) (int, bool) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so read after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid, true
		}
	}
	return 0, false
}

// peakRSS is the peak resident memory of pid in bytes, 0 once it is gone.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib << 10
		}
	}
	return 0
}

// startValidate starts berth validate on dir and waits until its evaluation child runs; it returns the command
// and the child's pid.
func startValidate(t *testing.T, dir string, stderr *syncBuffer, args ...string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"validate", dir}, args...)...)
	cmd.Env = hermeticEnv(t)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var child int
	waitFor(t, 30*time.Second, "the evaluation child", func() (bool, string) {
		var ok bool
		child, ok = childOf(cmd.Process.Pid)
		return ok && isEvaluator(child), stderr.String()
	})
	return cmd, child
}

func TestHostileRepository(t *testing.T) {
	for name, src := range hostileRepos {
		t.Run(name, func(t *testing.T) {
			dir := writeHostile(t, src())
			var stderr syncBuffer
			binary(t) // built before the clock starts
			t0 := time.Now()
			cmd, child := startValidate(t, dir, &stderr, "--eval-timeout", hostileTimeout.String(), "--eval-memory", "200Mi")
			// Follow the child's peak memory until it is gone.
			var peak int64
			sample := time.NewTicker(10 * time.Millisecond)
			defer sample.Stop()
			for {
				rss := peakRSS(child)
				if rss == 0 {
					break
				}
				peak = max(peak, rss)
				if time.Since(t0) > hostileTimeout+time.Minute {
					t.Fatal("the evaluation child is still running a minute after the time limit")
				}
				<-sample.C
			}
			err := cmd.Wait()
			took := time.Since(t0)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("validate: %v, want exit status 1\n%s", err, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			timeMsg := fmt.Sprintf("berth: evaluation of %s exceeded the time limit of 3s", dir)
			memMsg := fmt.Sprintf("berth: evaluation of %s exceeded the memory budget of 200 MiB (used ", dir)
			if msg != timeMsg && !strings.HasPrefix(msg, memMsg) {
				t.Fatalf("stderr:\n%s\nwant %q or %q…", msg, timeMsg, memMsg)
			}
			if took > hostileTimeout+hostileSlack {
				t.Errorf("validate took %v, limit %v", took, hostileTimeout)
			}
			if peak > hostileMemory*5/4 {
				t.Errorf("the evaluation reached %d MiB, budget 200 MiB", peak>>20)
			}
			t.Logf("%s in %v, peak %d MiB", msg, took.Round(time.Millisecond), peak>>20)
		})
	}
}

// TestSignalStopsValidate: SIGTERM or SIGINT in the middle of an evaluation ends berth validate within a second,
// with 128+n, and leaves no evaluation behind.
func TestSignalStopsValidate(t *testing.T) {
	dir := writeHostile(t, deepRepo())
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGTERM, "SIGTERM", 143}, {syscall.SIGINT, "SIGINT", 130}} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			cmd, child := startValidate(t, dir, &stderr)
			t0 := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			took := time.Since(t0)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("validate: %v, want exit status %d\n%s", err, tc.code, stderr.String())
			}
			if took > time.Second {
				t.Errorf("validate took %v to stop after %s", took, tc.name)
			}
			if want := fmt.Sprintf("berth: evaluation of %s stopped: %s received\n", dir, tc.name); stderr.String() != want {
				t.Errorf("stderr = %q, want %q", stderr.String(), want)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
				t.Errorf("the evaluation child %d is still there", child)
			}
			t.Logf("stopped %v after %s", took.Round(time.Millisecond), tc.name)
		})
	}
}

// TestServeHostileRepository: a controller following a directory that turns hostile stays healthy, reports the
// limit in its status, keeps the last good revision running, and shuts down within its grace period while an
// evaluation runs.
func TestServeHostileRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine")
	}
	eng := newEngine(t)
	instance := fmt.Sprintf("hostile%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		t.Helper()
		// Write then rename, so that the watched directory never holds a half-written file.
		tmp := filepath.Join(filepath.Dir(dir), name+".tmp")
		if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	spec := repoSpec{hostPort: freePort(t), replicas: 1, greeting: "good", web: true}
	write("berth.cue", spec.cue())
	ctrl := startController(t, instance, dir, t.TempDir(), "--eval-timeout", hostileTimeout.String(), "--eval-memory", "200Mi")
	var good string
	waitFor(t, settle, "the good revision applied", func() (bool, string) {
		st, err := ctrl.status()
		if err != nil {
			return false, err.Error()
		}
		good = applied(st, "production")
		return good != "", fmt.Sprintf("%+v", st)
	})
	waitRunning(t, eng, instance, "web", 1)
	_, before := eng.running(instance, "web", "")

	write("bomb.cue", "package berth\n\nimport \"list\"\n\nx: [for i in list.Range(0, 100000000, 1) {i}]\n")
	want := "evaluation of source default exceeded the memory budget of 200 MiB (used "
	waitFor(t, settle, "the limit reported", func() (bool, string) {
		st, err := ctrl.status()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(st.LastError, want) && strings.Contains(envError(st, "production"), want) &&
			applied(st, "production") == "" && attempted(st, "production") != good, st.LastError
	})
	resp, err := http.Get(ctrl.api + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	st, _ := ctrl.status()
	if e := envOf(st, "production"); e.LastAppliedRevision != good {
		t.Errorf("last applied revision %s, want the good one %s", e.LastAppliedRevision, good)
	}
	if _, now := eng.running(instance, "web", ""); strings.Join(now, ",") != strings.Join(before, ",") {
		t.Fatalf("the running containers changed: %v, before %v", now, before)
	}
	if !strings.Contains(ctrl.logs.String(), want) {
		t.Errorf("the log does not report %q", want)
	}

	// A slow revision: SIGTERM while it is evaluated.
	write("deep.cue", strings.Replace(deepRepo(), "environments: production: branch: \"main\"\n", "package berth\n", 1))
	if err := os.Remove(filepath.Join(dir, "bomb.cue")); err != nil {
		t.Fatal(err)
	}
	var child int
	waitFor(t, settle, "the evaluation child", func() (bool, string) {
		var ok bool
		child, ok = childOf(ctrl.cmd.Process.Pid)
		return ok && isEvaluator(child), ""
	})
	t0 := time.Now()
	ctrl.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ctrl.exited:
	case <-time.After(serveShutdownGrace + time.Second):
		t.Fatalf("serve still running %v after SIGTERM", serveShutdownGrace+time.Second)
	}
	took := time.Since(t0)
	if code := ctrl.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("serve exited with %d after SIGTERM, want 0\n%s", code, ctrl.logs.String())
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
		t.Errorf("the evaluation child %d is still there", child)
	}
	t.Logf("serve stopped %v after SIGTERM during an evaluation", took.Round(time.Millisecond))
}

// isEvaluator tells whether pid is berth's evaluation child (and not, say, a git command).
func isEvaluator(pid int) bool {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return bytes.Contains(b, []byte("\x00"+schema.EvalCommand+"\x00"))
}
