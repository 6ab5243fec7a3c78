package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/reconciler"
)

// The end-to-end tests drive the real berth binary against the real Docker engine and real Git repositories.

const exampleImage = "berth-e2e/app:v1"

var (
	berthBin  string // built once by TestMain
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	// testscript runs "berth" in scripts as this test binary re-executed; it exits when done.
	testscript.Main(cleanupRun{m, dir}, map[string]func(){
		"berth": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// cleanupRun removes the built binary's directory after the tests ran.
type cleanupRun struct {
	m   *testing.M
	dir string
}

func (c cleanupRun) Run() int {
	defer os.RemoveAll(c.dir)
	defer kubetest.Stop() // the kube-apiserver and etcd, if a test started them
	return c.m.Run()
}

// binary builds the berth binary the first time a test needs it.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", berthBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return berthBin
}

// hermeticEnv is the environment for git and berth child processes: no developer configuration leaks in.
func hermeticEnv(t testing.TB) []string {
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=berth test", "GIT_AUTHOR_EMAIL=test@berth.invalid",
		"GIT_COMMITTER_NAME=berth test", "GIT_COMMITTER_EMAIL=test@berth.invalid",
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
	}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// Variables a test sets for the controller (credentials it references by name).
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BERTH_E2E_") {
			env = append(env, kv)
		}
	}
	return env
}

// gitRepo is a repository made by a test, committed to with the git command line.
type gitRepo struct {
	t   testing.TB
	dir string
	env []string
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir(), env: hermeticEnv(t)}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) url() string { return "file://" + r.dir }

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// write replaces the repository's berth.cue (and removes other .cue files) without committing.
func (r *gitRepo) write(files map[string]string) {
	r.t.Helper()
	old, _ := filepath.Glob(filepath.Join(r.dir, "*.cue"))
	for _, f := range old {
		os.Remove(f)
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(r.dir, name)), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

// commit commits the working tree and returns the new commit's SHA.
func (r *gitRepo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// controller is a running `berth serve`.
type controller struct {
	t        testing.TB
	cmd      *exec.Cmd
	api      string
	dataDir  string
	logs     *syncBuffer
	exited   chan struct{}
	instance string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startController runs berth serve on repo with a short interval (or, with repo "", on the --config in extra), and
// stops it at the end of the test.
func startController(t testing.TB, instance, repo, dataDir string, extra ...string) *controller {
	t.Helper()
	return startOwnedController(t, t, instance, repo, dataDir, extra...)
}

// startOwnedController is startController for a controller that outlives the (sub)test t starting it: owner
// stops it.
func startOwnedController(t, owner testing.TB, instance, repo, dataDir string, extra ...string) *controller {
	t.Helper()
	return startControllerEnv(t, owner, instance, repo, dataDir, nil, extra...)
}

// startControllerEnv is startOwnedController with env added to the controller's hermetic environment (an emulated
// cloud's test credentials and endpoints).
func startControllerEnv(t, owner testing.TB, instance, repo, dataDir string, env []string, extra ...string) *controller {
	t.Helper()
	port := freePort(t)
	c := &controller{t: t, api: "http://127.0.0.1:" + port, dataDir: dataDir, logs: &syncBuffer{},
		exited: make(chan struct{}), instance: instance}
	args := []string{"serve", "--listen", "127.0.0.1:" + port, "--data-dir", dataDir, "--instance", instance, "--log-level", "debug"}
	if repo != "" { // else extra names a --config
		args = append(args, "--repo", repo, "--branch", "main", "--interval", "2s")
	}
	args = append(args, extra...)
	c.cmd = exec.Command(binary(t), args...)
	c.cmd.Env = append(hermeticEnv(t), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	owner.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("controller %s log:\n%s", instance, c.logs.String())
		}
	})
	waitFor(t, 60*time.Second, "controller answers /healthz", func() (bool, string) {
		select {
		case <-c.exited:
			t.Fatalf("controller exited early:\n%s", c.logs.String())
		default:
		}
		resp, err := http.Get(c.api + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return c
}

func (c *controller) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// kill ends the controller with SIGKILL, as a crash would.
func (c *controller) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

func (c *controller) status() (*reconciler.Status, error) {
	resp, err := http.Get(c.api + statusPath)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var st ServerStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status: %v: %s", err, b)
	}
	if len(st.Sources) != 1 {
		return nil, fmt.Errorf("status: want one source, got %d", len(st.Sources))
	}
	return &st.Sources[0], nil
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// waitFor polls cond until it holds or the deadline passes; what is the last state, for the failure message.
func waitFor(t testing.TB, timeout time.Duration, desc string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, what := cond()
		if ok {
			return
		}
		last = what
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, desc, last)
		}
		<-tick.C
	}
}

// engine gives the test its own view of the Docker engine, and builds the example image once.
type engine struct {
	t   testing.TB
	cli *client.Client
}

var imageOnce sync.Once

func newEngine(t testing.TB) *engine {
	t.Helper()
	cli := dockertest.Client(t)
	imageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := dockertest.BuildImage(ctx, cli, "github.com/berth-dev/berth/examples/quickstart/app", exampleImage); err != nil {
			t.Fatalf("build example image: %v", err)
		}
	})
	return &engine{t: t, cli: cli}
}

// containers lists every container (running or not) labelled for instance and, when not empty, workload.
func (e *engine) containers(instance, workload string) []container.Summary {
	e.t.Helper()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+instance))
	if workload != "" {
		f.Add("label", providers.LabelWorkload+"="+workload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// running counts running containers of the workload with the given spec hash ("" for any).
func (e *engine) running(instance, workload, hash string) (n int, ids []string) {
	for _, c := range e.containers(instance, workload) {
		if c.State == "running" && (hash == "" || c.Labels[providers.LabelSpecHash] == hash) {
			n++
			ids = append(ids, c.ID)
		}
	}
	return n, ids
}

// cleanup removes every container and network carrying the instance label.
func (e *engine) cleanup(instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range e.containers(instance, "") {
		e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	nets, err := e.cli.NetworkList(ctx, networkListOptions(instance))
	if err == nil {
		for _, n := range nets {
			e.cli.NetworkRemove(ctx, n.ID)
		}
	}
}

// get fetches url once with a fresh connection and returns the body.
func get(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}

func networkListOptions(instance string) network.ListOptions {
	return network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+instance))}
}

// repoSpec is what the test repository declares; cue renders it.
type repoSpec struct {
	hostPort string
	replicas int
	greeting string
	web      bool
	worker   bool
	// workerImage is the worker's image; exampleImage when empty.
	workerImage string
	extra       string // appended verbatim (for broken commits)
}

func (s repoSpec) cue() string {
	var b strings.Builder
	fmt.Fprintf(&b, `package berth

targets: local: {type: "docker", publicAddress: "127.0.0.1"}
environments: production: {branch: "main"}
`)
	if s.web {
		fmt.Fprintf(&b, `
workloads: web: {
	image:    %q
	args: ["serve"]
	provider: "local"
	replicas: %d
	env: GREETING: %q
	ports: [{name: "http", port: 8080, public: true, hostPort: %s}]
	health: {http: {path: "/healthz", port: 8080}, interval: "1s", timeout: "1s", retries: 3}
}
`, exampleImage, s.replicas, s.greeting, s.hostPort)
	}
	if s.worker {
		image := s.workerImage
		if image == "" {
			image = exampleImage
		}
		fmt.Fprintf(&b, `
workloads: worker: {
	image:    %q
	args: ["work"]
	provider: "local"
	env: WORK_INTERVAL: "1s"
}
`, image)
	}
	b.WriteString(s.extra)
	return b.String()
}

func envOf(st *reconciler.Status, env string) *reconciler.EnvironmentStatus {
	for i := range st.Environments {
		if st.Environments[i].Name == env {
			return &st.Environments[i]
		}
	}
	return nil
}

func applied(st *reconciler.Status, env string) string {
	if e := envOf(st, env); e != nil && e.Phase == reconciler.PhaseReady {
		return e.LastAppliedRevision
	}
	return ""
}

func attempted(st *reconciler.Status, env string) string {
	if e := envOf(st, env); e != nil {
		return e.LastAttemptedRevision
	}
	return ""
}

// envError is every error the status reports for the environment, one per line as berth status prints them.
func envError(st *reconciler.Status, env string) string {
	var lines []string
	if e := envOf(st, env); e != nil {
		for _, x := range e.Errors {
			lines = append(lines, errorLine(x))
		}
	}
	return strings.Join(lines, "\n")
}

// lastApplySteps are the steps the controller last carried out for the environment.
func lastApplySteps(st *reconciler.Status, env string) []reconciler.Step {
	e := envOf(st, env)
	if e == nil || e.LastApply == nil {
		return nil
	}
	var steps []reconciler.Step
	for _, r := range e.LastApply.Steps {
		steps = append(steps, r.Step)
	}
	return steps
}

// requestLoop loops GET url until its stop func is called, which fails t when any request failed or too few were
// made to exercise what happened meanwhile (what names it in the messages), and logs the count.
func requestLoop(t testing.TB, url, what string) (stop func()) {
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := get(url); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				ok.Add(1)
			}
		}
	}()
	return func() {
		t.Helper()
		close(done)
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of %d requests failed during %s; first: %v", failed.Load(), failed.Load()+ok.Load(), what, firstErr.Load())
		}
		if ok.Load() < 10 {
			t.Fatalf("only %d requests made during %s: the client did not exercise it", ok.Load(), what)
		}
		t.Logf("%d requests during %s, none failed", ok.Load(), what)
	}
}
