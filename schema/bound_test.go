package schema

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/berth-dev/berth/schema/gen"
)

// childEnv makes this test binary, re-executed by an Evaluator, act as the evaluation child.
const childEnv = "BERTH_SCHEMA_TEST_EVAL_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "1":
		os.Exit(RunEvaluation(os.Args[len(os.Args)-1], os.Stdout, os.Stderr))
	case "stack": // as the Go runtime ends a goroutine past its stack limit
		os.Stderr.WriteString("runtime: goroutine stack exceeds 67108864-byte limit\nfatal error: stack overflow\n\ngoroutine 1 [running]:\n")
		os.Exit(2)
	case "crash":
		os.Stderr.WriteString("panic: \x1b[31mboom\x1b[0m\n\ngoroutine 1 [running]:\n")
		os.Exit(2)
	case "garbage":
		os.Stdout.WriteString("not an answer")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testEvaluator(t *testing.T, lim EvalLimits) *Evaluator {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &Evaluator{Path: exe, Args: []string{os.Args[0]}, Env: append(os.Environ(), childEnv+"=1"), Limits: lim}
}

// TestEvaluatorSameAsLoad checks that the child process answers exactly what Load returns in-process: the same
// Config with every position, or the same positioned Errors.
func TestEvaluatorSameAsLoad(t *testing.T) {
	ev := testEvaluator(t, EvalLimits{})
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	dirs := map[string]string{"quickstart": filepath.Join("testdata", "valid", "quickstart")}
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dirs[strings.TrimSuffix(f, ".txtar")] = writeRepo(t, a)
	}
	empty := t.TempDir()
	dirs["no-files"], dirs["missing"] = empty, filepath.Join(empty, "missing")
	for name, dir := range dirs {
		t.Run(strings.TrimPrefix(name, "testdata/"), func(t *testing.T) {
			want, wantErr := Load(dir)
			got, gotErr := ev.Load(context.Background(), dir, name)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config differs\n got %#v\nwant %#v", got, want)
			}
			var wantEs Errors
			switch {
			case errors.As(wantErr, &wantEs):
				if !reflect.DeepEqual(gotErr, wantErr) {
					t.Errorf("errors differ\n got %v\nwant %v", gotErr, wantErr)
				}
			case wantErr != nil:
				if gotErr == nil || gotErr.Error() != wantErr.Error() {
					t.Errorf("error = %v, want %v", gotErr, wantErr)
				}
				for _, is := range []error{ErrNoFiles, fs.ErrNotExist} {
					if errors.Is(wantErr, is) != errors.Is(gotErr, is) {
						t.Errorf("errors.Is(%v, %v) = %v, want %v", gotErr, is, !errors.Is(wantErr, is), errors.Is(wantErr, is))
					}
				}
			case gotErr != nil:
				t.Errorf("error = %v, want none", gotErr)
			}
		})
	}
}

// TestEvaluatorMemoryBudget: a list of a hundred million numbers is killed at the budget, well before the time
// limit, with the error naming both.
func TestEvaluatorMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	src := "import \"list\"\nenvironments: p: branch: \"main\"\nx: [for i in list.Range(0, 100000000, 1) {i}]\n"
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	lim := EvalLimits{Timeout: time.Minute, Memory: 150 << 20}
	t0 := time.Now()
	_, err := testEvaluator(t, lim).Load(context.Background(), dir, "repo")
	took := time.Since(t0)
	var ee *EvalError
	if !errors.As(err, &ee) || !errors.Is(err, ErrMemoryBudget) {
		t.Fatalf("Load = %v, want the memory budget error", err)
	}
	if !strings.HasPrefix(err.Error(), "evaluation of repo exceeded the memory budget of 150 MiB (used ") {
		t.Errorf("message = %q", err)
	}
	if ee.Used > lim.Memory*5/4 {
		t.Errorf("the child reached %s, far above the budget of %s", FormatSize(ee.Used), FormatSize(lim.Memory))
	}
	if took > 30*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestEvaluatorTimeLimitAndCancel: a slow evaluation ends at the time limit, and at once when the context ends.
func TestEvaluatorTimeLimitAndCancel(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("environments: p: branch: \"main\"\n")
	for i := range 100000 {
		b.WriteString("x" + strconv.Itoa(i) + ": v: x" + strconv.Itoa(i+1) + "\n")
	}
	b.WriteString("x100000: 1\n")
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("time", func(t *testing.T) {
		lim := EvalLimits{Timeout: 2 * time.Second, Memory: 1 << 30}
		t0 := time.Now()
		_, err := testEvaluator(t, lim).Load(context.Background(), dir, "repo")
		if took := time.Since(t0); took > lim.Timeout+time.Second {
			t.Errorf("took %v for a limit of %v", took, lim.Timeout)
		}
		if !errors.Is(err, ErrTimeLimit) || err.Error() != "evaluation of repo exceeded the time limit of 2s" {
			t.Fatalf("Load = %v, want the time limit error", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ev := testEvaluator(t, EvalLimits{Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		var at time.Time
		ev.started = func(int) { at = time.Now(); cancel() }
		_, err := ev.Load(ctx, dir, "repo")
		if took := time.Since(at); took > time.Second {
			t.Errorf("stopped %v after the cancel", took)
		}
		if !errors.Is(err, context.Canceled) || err.Error() != "evaluation of repo stopped: context canceled" {
			t.Fatalf("Load = %v, want the cancellation", err)
		}
	})
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{2 << 30: "2 GiB", 512 << 20: "512 MiB", 530<<20 + 1000: "531 MiB", 1536 << 20: "1536 MiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestServeConfigEvaluation(t *testing.T) {
	p := writeConfig(t, "evaluation: {timeout: \"20s\", memory: \"512Mi\"}\nsources: app: url: \"/srv/app\"\n")
	cfg, err := LoadServeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := (EvalLimits{Timeout: 20 * time.Second, Memory: 512 << 20}); cfg.Evaluation != want {
		t.Errorf("Evaluation = %+v, want %+v", cfg.Evaluation, want)
	}
	cfg, err = LoadServeConfig(writeConfig(t, "evaluation: memory: 1073741824\nsources: app: url: \"/srv/app\"\n"))
	if err != nil || cfg.Evaluation != (EvalLimits{Memory: 1 << 30}) {
		t.Errorf("bytes: %+v, %v", cfg.Evaluation, err)
	}
	_, err = LoadServeConfig(writeConfig(t, "sources: app: url: \"/srv/app\"\nevaluation: {\n\ttimeout: \"soon\"\n\tmemory: \"lots\"\n}\n"))
	want := "berth-serve.cue:3:2: evaluation.timeout: timeout \"soon\": want a positive duration such as \"30s\"\n" +
		"berth-serve.cue:4:2: evaluation.memory: memory: want a positive size such as \"2Gi\" or a number of bytes"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}

// benchmarkEvaluator measures Evaluator.Load (a child process: its start, its Load, the answer's encoding, the
// pipe and the decoding) on a generated repository; compare with BenchmarkLoad<n>.
func benchmarkEvaluator(b *testing.B, n int) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Workloads: n}); err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ev := &Evaluator{Path: exe, Args: []string{os.Args[0]}, Env: append(os.Environ(), childEnv+"=1")}
	for b.Loop() {
		cfg, err := ev.Load(context.Background(), dir, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if got := len(cfg.Environments["production"].Workloads); got != n {
			b.Fatalf("rendered %d workloads, want %d", got, n)
		}
	}
}

func BenchmarkEvaluator1000(b *testing.B)  { benchmarkEvaluator(b, 1000) }
func BenchmarkEvaluator10000(b *testing.B) { benchmarkEvaluator(b, 10000) }

// benchmarkAnswer measures the answer's round trip alone: gob encoding and decoding of a loaded Config.
func benchmarkAnswer(b *testing.B, n int) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Workloads: n}); err != nil {
		b.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := gob.NewEncoder(&buf).Encode(&evalAnswer{Config: cfg}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(buf.Len())/(1<<20), "MiB/answer")
		var ans evalAnswer
		if err := gob.NewDecoder(&buf).Decode(&ans); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnswer1000(b *testing.B)  { benchmarkAnswer(b, 1000) }
func BenchmarkAnswer10000(b *testing.B) { benchmarkAnswer(b, 10000) }

// TestEvaluatorChildFailures: how a child that dies is reported.
func TestEvaluatorChildFailures(t *testing.T) {
	for mode, want := range map[string]string{
		"stack":   "evaluation of repo failed: the configuration is nested too deeply (evaluator stack above 64 MiB)",
		"crash":   "evaluation of repo failed: exit status 2: panic: [31mboom[0m",
		"garbage": "evaluation of repo failed: unreadable answer from the evaluator: unexpected EOF",
	} {
		t.Run(mode, func(t *testing.T) {
			ev := testEvaluator(t, EvalLimits{})
			ev.Env = append(os.Environ(), childEnv+"="+mode)
			_, err := ev.Load(context.Background(), t.TempDir(), "repo")
			var ee *EvalError
			if !errors.As(err, &ee) || err.Error() != want {
				t.Fatalf("Load = %v, want %q", err, want)
			}
			if mode == "stack" && !errors.Is(err, ErrTooDeep) {
				t.Errorf("errors.Is(%v, ErrTooDeep) = false", err)
			}
		})
	}
}
