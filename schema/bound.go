package schema

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounded evaluation. CUE evaluation cannot be cancelled once started (cue-lang/cue#3752) and Go cannot cap the
// memory of one goroutine, so an Evaluator runs Load in a child process (berth itself, re-executed with the hidden
// command EvalCommand) and enforces the limits from outside: a wall-clock deadline, a memory budget read from
// /proc/<pid>/status, and the caller's context (a signal, a controller shutting down), each ending the child with
// SIGKILL at once. The child answers with the same *Config or Errors as Load, positions included.

// EvalCommand is the hidden command line argument that makes berth evaluate a directory and answer on stdout
// (see RunEvaluation).
const EvalCommand = "__evaluate"

// Limits of one evaluation, used where EvalLimits leaves a field zero.
const (
	// DefaultEvalTimeout bounds the wall time of one snapshot's evaluation. 10,000 workloads evaluate in about 5 s
	// on a busy 2-core machine (12 s at worst measured); 30 s leaves room for that and for a slower machine, and is
	// still short enough that a hostile snapshot holds a controller's source for half a minute at most.
	DefaultEvalTimeout = 30 * time.Second
	// DefaultEvalMemory is the memory budget (resident set) of one evaluation. 10,000 workloads peak at about
	// 1.0-1.2 GiB unconstrained (0.9 GiB with the memory limit the child sets); 2 GiB leaves room for that and
	// keeps a controller on a small machine alive.
	DefaultEvalMemory int64 = 2 << 30
	// DefaultEvalPoll is how often the child's memory is read.
	DefaultEvalPoll = 50 * time.Millisecond
	// evalMaxStack caps each goroutine's stack in the child: deep nesting fails with ErrTooDeep long before Go's
	// default of 1 GB, which would count against the memory budget.
	evalMaxStack = 64 << 20
	// evalEnvMemory passes the budget (bytes) to the child.
	evalEnvMemory = "BERTH_EVAL_MEMORY"
	// evalStderrMax is how much of the child's stderr is kept for errors (a crash prints its reason first).
	evalStderrMax = 8 << 10
)

// Limit errors, wrapped by *EvalError: test with errors.Is.
var (
	ErrTimeLimit    = errors.New("time limit exceeded")
	ErrMemoryBudget = errors.New("memory budget exceeded")
	ErrTooDeep      = errors.New("configuration nested too deeply")
)

// EvalLimits bound the evaluation of one snapshot. Zero fields take DefaultEvalTimeout and DefaultEvalMemory.
type EvalLimits struct {
	Timeout time.Duration
	// Memory is the budget in bytes of the evaluation's resident memory.
	Memory int64
}

// WithDefaults returns l with zero fields set to the defaults.
func (l EvalLimits) WithDefaults() EvalLimits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultEvalTimeout
	}
	if l.Memory <= 0 {
		l.Memory = DefaultEvalMemory
	}
	return l
}

// ParseSize reads a size such as "512Mi", "2Gi" or a number of bytes.
func ParseSize(s string) (int64, error) { return parseMemory(s) }

// FormatSize writes bytes in GiB when whole ("2 GiB"), else in MiB rounded up ("513 MiB" for 512 MiB and a
// byte: a size over a budget never reads as the budget).
func FormatSize(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return strconv.FormatInt(n>>30, 10) + " GiB"
	}
	return strconv.FormatInt((n+(1<<20)-1)>>20, 10) + " MiB"
}

// EvalError is an evaluation that did not finish for a reason other than the user's files being wrong: a limit
// was reached (Err is ErrTimeLimit, ErrMemoryBudget or ErrTooDeep), the caller's context ended (Err is its cause),
// or the evaluator failed.
type EvalError struct {
	// Name is the repository as the caller named it.
	Name   string
	Limits EvalLimits
	// Used is the peak resident memory seen, in bytes.
	Used int64
	Err  error
	// Detail is the evaluator's own words when it failed (first line of its stderr).
	Detail string
	// stopped: the caller's context ended it (Err is the context's cause).
	stopped bool
}

func (e *EvalError) Error() string {
	switch {
	case errors.Is(e.Err, ErrTimeLimit):
		return fmt.Sprintf("evaluation of %s exceeded the time limit of %s", e.Name, e.Limits.Timeout)
	case errors.Is(e.Err, ErrMemoryBudget) && e.Used <= e.Limits.Memory:
		// The child's own limits stopped it between two reads of its memory.
		return fmt.Sprintf("evaluation of %s exceeded the memory budget of %s (it ran out of memory at %s resident)",
			e.Name, FormatSize(e.Limits.Memory), FormatSize(e.Used))
	case errors.Is(e.Err, ErrMemoryBudget):
		return fmt.Sprintf("evaluation of %s exceeded the memory budget of %s (used %s)", e.Name,
			FormatSize(e.Limits.Memory), FormatSize(e.Used))
	case errors.Is(e.Err, ErrTooDeep):
		return fmt.Sprintf("evaluation of %s failed: the configuration is nested too deeply (evaluator stack above %s)",
			e.Name, FormatSize(evalMaxStack))
	case e.stopped:
		return fmt.Sprintf("evaluation of %s stopped: %v", e.Name, e.Err)
	case e.Detail != "":
		return fmt.Sprintf("evaluation of %s failed: %v: %s", e.Name, e.Err, e.Detail)
	default:
		return fmt.Sprintf("evaluation of %s failed: %v", e.Name, e.Err)
	}
}

func (e *EvalError) Unwrap() error { return e.Err }

// Evaluator loads repositories in a child process under EvalLimits. The zero value is not usable: set Path.
// An Evaluator is safe for concurrent use; each Load runs its own child.
type Evaluator struct {
	// Path is the program to run: a berth binary (os.Executable()) or any program that calls RunEvaluation when
	// its arguments are Args followed by the directory.
	Path string
	// Args are the child's arguments before the directory, argv[0] first: e.g. {os.Args[0], EvalCommand}.
	Args []string
	// Env is the child's environment; os.Environ() when nil.
	Env    []string
	Limits EvalLimits
	// Poll is how often the child's resident memory is read; DefaultEvalPoll when 0.
	Poll time.Duration
	// started, when set (tests), is called with the child's pid once it runs.
	started func(pid int)
}

// NewEvaluator returns an Evaluator re-executing the running berth binary with EvalCommand.
func NewEvaluator(limits EvalLimits) (*Evaluator, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bounded evaluation: find berth's own binary: %w", err)
	}
	return &Evaluator{Path: exe, Args: []string{os.Args[0], EvalCommand}, Limits: limits}, nil
}

// Load is Load(dir) under the limits, called name in errors. The result is the same Config, or the same Errors,
// as Load's; a limit or the end of ctx gives an *EvalError, and the child has been killed by the time Load
// returns.
func (e *Evaluator) Load(ctx context.Context, dir, name string) (*Config, error) {
	lim := e.Limits.WithDefaults()
	poll := e.Poll
	if poll <= 0 {
		poll = DefaultEvalPoll
	}
	fail := func(err error, used int64, detail string) (*Config, error) {
		return nil, &EvalError{Name: name, Limits: lim, Used: used, Err: err, Detail: detail,
			stopped: ctx.Err() != nil && err == context.Cause(ctx)}
	}
	if ctx.Err() != nil {
		return fail(context.Cause(ctx), 0, "")
	}
	if len(e.Args) == 0 {
		return nil, errors.New("bounded evaluation: Evaluator.Args is empty")
	}
	cmd := &exec.Cmd{Path: e.Path, Args: append(append([]string(nil), e.Args...), dir)}
	cmd.Env = e.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, evalEnvMemory+"="+strconv.FormatInt(lim.Memory, 10))
	cmd.SysProcAttr = evalProcAttr()
	var out bytes.Buffer
	stderr := &headWriter{max: evalStderrMax}
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("evaluation of %s: start the evaluator: %w", name, err)
	}
	if e.started != nil {
		e.started(cmd.Process.Pid)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	deadline := time.NewTimer(lim.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var (
		peak    int64
		reason  error // why berth killed the child
		waitErr error
	)
	kill := func(why error) {
		if reason == nil {
			reason = why
			_ = cmd.Process.Kill()
		}
	}
	stop, expire := ctx.Done(), deadline.C
	for done := false; !done; {
		select {
		case waitErr = <-waited:
			done = true
		case <-expire:
			kill(ErrTimeLimit)
			expire = nil
		case <-stop:
			kill(context.Cause(ctx))
			stop = nil
		case <-tick.C:
			if reason != nil {
				continue
			}
			if rss := residentPeak(cmd.Process.Pid); rss > peak {
				peak = rss
				if rss > lim.Memory {
					kill(ErrMemoryBudget)
				}
			}
		}
	}
	if reason != nil {
		return fail(reason, peak, "")
	}
	if waitErr != nil {
		msg := stderr.firstLine()
		all := stderr.String()
		switch {
		case strings.Contains(all, "stack overflow") || strings.Contains(all, "stack exceeds"):
			return fail(ErrTooDeep, peak, "")
		case strings.Contains(all, "out of memory") || strings.Contains(all, "cannot allocate memory"):
			return fail(ErrMemoryBudget, peak, "")
		}
		return fail(waitErr, peak, msg)
	}
	var ans evalAnswer
	if err := gob.NewDecoder(&out).Decode(&ans); err != nil {
		return fail(fmt.Errorf("unreadable answer from the evaluator: %w", err), peak, stderr.firstLine())
	}
	cfg, err := ans.result()
	if err != nil {
		return nil, err
	}
	return withSecretFiles(cfg, dir), nil
}

// residentPeak is the peak resident memory (VmHWM) of a process in bytes, 0 when it cannot be read. The peak,
// not the current size, so that a spike between two reads still counts.
func residentPeak(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}

// headWriter keeps the first max bytes written to it and discards the rest.
type headWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *headWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// firstLine is the first non-empty line, cut to 200 bytes and stripped of control characters.
func (w *headWriter) firstLine() string {
	for _, l := range strings.Split(w.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			l = strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, l)
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return ""
}

// evalAnswer is what the child writes on stdout, in gob: gob keeps every exported field (the positions that JSON
// leaves out, int and float settings as they are), so the parent gets the Config Load would have returned.
type evalAnswer struct {
	Config *Config
	Errors Errors
	// Err is another failure's message; Kind names the sentinel it wraps ("no-files", "not-exist"), if any.
	Err  string
	Kind string
}

func init() {
	// The dynamic types of Target.Settings values, as Value.Decode produces them.
	gob.Register(map[string]any{})
	gob.Register([]any{})
	gob.Register(&big.Int{})
	gob.Register(&big.Float{})
}

func (a *evalAnswer) result() (*Config, error) {
	switch {
	case len(a.Errors) > 0:
		return nil, a.Errors
	case a.Err != "":
		var is error
		switch a.Kind {
		case "no-files":
			is = ErrNoFiles
		case "not-exist":
			is = fs.ErrNotExist
		}
		return nil, &childError{msg: a.Err, is: is}
	case a.Config == nil:
		return nil, errors.New("evaluator answered with neither a configuration nor an error")
	}
	normalize(a.Config)
	return a.Config, nil
}

// normalize restores the empty (non-nil) collections Load returns, which gob sends as nothing.
func normalize(c *Config) {
	if c.Targets == nil {
		c.Targets = map[string]Target{}
	}
	if c.Environments == nil {
		c.Environments = map[string]Environment{}
	}
	for n, e := range c.Environments {
		if e.Workloads == nil {
			e.Workloads = []Workload{}
			c.Environments[n] = e
		}
	}
}

// childError is an error reported by the child: its message, and the identity of the sentinel it wrapped.
type childError struct {
	msg string
	is  error
}

func (e *childError) Error() string { return e.msg }
func (e *childError) Unwrap() error { return e.is }

// RunEvaluation is the child's side of Evaluator.Load: it loads dir with Load and writes the answer to w. It caps
// its own stack, and its memory as the parent's budget says (a Go memory limit at 90% of it, so the collector
// works harder before the budget is reached, and an address-space limit well above it as a backstop). It returns
// the process exit status: 0 when an answer (a Config or errors) was written.
func RunEvaluation(dir string, w io.Writer, stderr io.Writer) int {
	debug.SetMaxStack(evalMaxStack)
	if s := os.Getenv(evalEnvMemory); s != "" {
		if budget, err := strconv.ParseInt(s, 10, 64); err == nil && budget > 0 {
			debug.SetMemoryLimit(budget / 10 * 9)
			limitAddressSpace(uint64(budget)*2 + 4<<30)
		}
	}
	var ans evalAnswer
	cfg, err := Load(dir)
	var es Errors
	switch {
	case err == nil:
		cfg.Root = nil // the parent captures the SOPS files itself
		ans.Config = cfg
	case errors.As(err, &es):
		ans.Errors = es
	default:
		ans.Err = err.Error()
		switch {
		case errors.Is(err, ErrNoFiles):
			ans.Kind = "no-files"
		case errors.Is(err, fs.ErrNotExist):
			ans.Kind = "not-exist"
		}
	}
	if err := gob.NewEncoder(w).Encode(&ans); err != nil {
		fmt.Fprintln(stderr, "berth evaluate: write the answer:", err)
		return 1
	}
	return 0
}
