package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint/edge"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/reconciler/store"
)

// The on-prem migration as a user runs it: a `berth edge` process serves the workload's stable name (a host:port),
// a `berth serve` controller moves the workload Docker → Swarm → Docker by commits, and a client that opens a new
// connection for every request through the stable name sees no failed request. Then the crash campaign: in each
// trial the controller is killed (SIGKILL) at a random point of a move and started again on its data directory;
// the move converges, the client still sees no failure, and one copy of the workload is left.
//
// BERTH_MIGRATE_KILLS is the number of trials (2 when unset), BERTH_MIGRATE_SEED the seed of the kill delays (the
// time when unset); both are logged. The figures (requests per move, phase durations from the store) are logged as
// lines starting with "migrate-onprem:", which hack/migrate-onprem.sh prints.
func TestOnPremMigrationZeroFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine in swarm mode")
	}
	kills := envInt(t, "BERTH_MIGRATE_KILLS", 2)
	// BERTH_MIGRATE_KILL_AT ("add", "shift" or "drain") kills each trial's controller once the edge's route shows
	// the move there (see atPhase), instead of after a random delay: to aim at one window.
	killPhase := os.Getenv("BERTH_MIGRATE_KILL_AT")
	switch killPhase {
	case "", "add", "shift", "drain":
	default:
		t.Fatalf("BERTH_MIGRATE_KILL_AT=%q: want add, shift or drain", killPhase)
	}
	seed := int64(envInt(t, "BERTH_MIGRATE_SEED", int(time.Now().UnixNano()%1_000_000_000)))
	eng := newEngine(t)
	ctx := context.Background()
	if info, err := eng.cli.Info(ctx); err != nil || info.Swarm.LocalNodeState != dockerswarm.LocalNodeStateActive {
		if os.Getenv("BERTH_REQUIRE_SWARM") != "" {
			t.Fatal("swarm required (BERTH_REQUIRE_SWARM) but the engine is not in swarm mode")
		}
		t.Skip("the engine is not in swarm mode (. hack/lib.sh; ensure_swarm)")
	}
	t.Logf("migrate-onprem: seed %d, %d kill trials (BERTH_MIGRATE_SEED, BERTH_MIGRATE_KILLS)", seed, kills)
	if killPhase != "" {
		t.Logf("migrate-onprem: each trial kills the controller at %s (BERTH_MIGRATE_KILL_AT)", killPhase)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d6f7665))

	instance := fmt.Sprintf("mg%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { removeSwarmServices(eng, instance); eng.cleanup(instance) })

	ed := startEdge(t, t.TempDir())
	stable := "127.0.0.1:" + freePort(t)
	hostPort := freePort(t)
	repo := newGitRepo(t)
	write := func(provider string) {
		repo.write(map[string]string{"berth.cue": fmt.Sprintf(`package berth

targets: {
	local: {type: "docker", publicAddress: "127.0.0.1"}
	swarm: {type: "swarm", publish: "host", publicAddress: "127.0.0.2"}
}
dns: edge: {type: "edge", admin: %q}
environments: production: {branch: "main"}
workloads: app: {
	image:    %q
	args: ["serve"]
	provider: %q
	replicas: 2
	ports: [{name: "http", port: 8080, public: true, hostPort: %s,
		endpoint: {name: %q, dns: "edge", ttl: "0s", drain: "1s"}}]
	health: {http: {path: "/healthz", port: 8080}, interval: "1s", timeout: "1s", retries: 3}
	migration: {steps: [50, 100], interval: "1s"}
}
`, ed.admin, exampleImage, provider, hostPort, stable)})
	}
	write("local")
	rev := repo.commit("on docker")

	dataDir := t.TempDir()
	ctrl := startController(t, instance, repo.url(), dataDir)
	look := &copies{t: t, eng: eng, instance: instance, edge: ed, stable: stable}
	waitFor(t, settle, "app on docker behind the edge", func() (bool, string) {
		st, err := ctrl.status()
		if err != nil {
			return false, err.Error()
		}
		ok, what := look.only("local", 2, st, rev)
		if !ok {
			return false, what
		}
		_, err = get("http://" + stable + "/")
		return err == nil, fmt.Sprintf("%s; GET through the edge: %v", what, err)
	})

	cl := startClient(t, "http://"+stable+"/")
	timeline := watchEdge(t, ed, stable)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edge log:\n%s", ed.logs.String())
		}
	})

	// move commits provider, or after a kill delay (when kill) SIGKILLs the controller and starts another, and
	// waits until only the copy on provider is left; the controller is then stopped to read the move's transitions
	// from its store, and started again for the next move.
	type result struct {
		kind, to           string
		sent, failed       int64
		took, delay, total time.Duration
		killedAt, phases   string
	}
	var results []result
	clean := map[string]time.Duration{} // the clean move's commit → converged, by target
	move := func(provider string, kill bool) {
		t.Helper()
		r := result{kind: "clean", to: provider}
		sent0, failed0 := cl.counts()
		write(provider)
		start := time.Now()
		rev := repo.commit("move to " + provider)
		if kill {
			r.kind = "sigkill"
			if killPhase == "" {
				r.delay = time.Duration(rng.Int64N(int64(clean[provider])))
				time.Sleep(r.delay) // the scenario's parameter: where in the move the crash falls
			} else {
				// add and drain last a few milliseconds (the edge tells when the old copy is idle): look back to
				// back, not every 100 ms as waitFor does.
				deadline := time.Now().Add(settle)
				for {
					route, err := ed.route(stable)
					if err == nil && atPhase(route, provider, killPhase) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("timed out after %s waiting for the move to %s at %s on the edge; last: %s", settle, provider, killPhase, describeRoute(route, err))
					}
				}
				r.delay = time.Since(start)
			}
			ctrl.kill()
			r.killedAt = lastPhase(t, dataDir, instance, provider)
			ctrl = startController(t, instance, repo.url(), dataDir)
		}
		waitFor(t, settle, "app on "+provider+" only", func() (bool, string) {
			st, err := ctrl.status()
			if err != nil {
				return false, err.Error()
			}
			return look.only(provider, 2, st, rev)
		})
		r.took = time.Since(start)
		ctrl.stop()
		sent1, failed1 := cl.counts()
		r.sent, r.failed = sent1-sent0, failed1-failed0
		r.phases, r.total = movePhasesOf(t, dataDir, instance, provider)
		results = append(results, r)
		if !kill {
			clean[provider] = r.took
		}
		n := len(results)
		if kill {
			t.Logf("migrate-onprem: move %d %s → %s: killed %s after the commit (%s), converged %s after the commit; %d requests, %d failed; phases: %s (start → done %s)",
				n, r.kind, provider, r.delay.Round(time.Millisecond), r.killedAt, r.took.Round(time.Millisecond), r.sent, r.failed, r.phases, r.total.Round(time.Millisecond))
		} else {
			t.Logf("migrate-onprem: move %d %s → %s: converged %s after the commit; %d requests, %d failed; phases: %s (start → done %s)",
				n, r.kind, provider, r.took.Round(time.Millisecond), r.sent, r.failed, r.phases, r.total.Round(time.Millisecond))
		}
		if r.failed != 0 {
			t.Errorf("move %d (%s → %s): %d of %d requests through %s failed: %s", n, r.kind, provider, r.failed, r.sent, stable,
				strings.Join(cl.since(sent0), "; "))
			from, to := cl.window(sent0)
			t.Logf("edge route %s around the failures, on each change:\n%s", stable, timeline.between(from.Add(-3*time.Second), to.Add(time.Second)))
		}
		if r.sent < 10 {
			t.Errorf("move %d (%s → %s): only %d requests made: the client did not exercise it", n, r.kind, provider, r.sent)
		}
		ctrl = startController(t, instance, repo.url(), dataDir)
	}
	other := map[string]string{"local": "swarm", "swarm": "local"}
	at := "local"
	for range 2 {
		at = other[at]
		move(at, false)
	}
	for range kills { // a trial with failed requests fails the test, and the campaign goes on to count them all
		at = other[at]
		move(at, true)
	}
	cl.stop()

	// The summary: totals per kind of move.
	for _, kind := range []string{"clean", "sigkill"} {
		var n int
		var sent, failed int64
		var took time.Duration
		for _, r := range results {
			if r.kind == kind {
				n++
				sent += r.sent
				failed += r.failed
				took += r.took
			}
		}
		if n > 0 {
			t.Logf("migrate-onprem: summary %s: %d moves, %d requests, %d failed, mean commit → converged %s",
				kind, n, sent, failed, (took / time.Duration(n)).Round(time.Millisecond))
		}
	}
	sent, failed := cl.counts()
	t.Logf("migrate-onprem: total: %d requests through the edge, %d failed", sent, failed)
}

// copies looks at what runs of the workload "app", on the engine and behind the edge.
type copies struct {
	t        *testing.T
	eng      *engine
	instance string
	edge     *edgeProc
	stable   string
}

// only tells whether the move to target is over: the controller applied rev and reports the workload on target
// with no move in flight, the engine runs replicas ready copies there and nothing of the workload elsewhere (no
// container left on Docker, no service left on Swarm), and the edge's route has one member, target's.
func (c *copies) only(target string, replicas int, st *reconciler.Status, rev string) (bool, string) {
	wl := workloadOf(st, "app")
	docker, dockerRunning := 0, 0
	for _, ct := range c.eng.containers(c.instance, "app") {
		if ct.Labels[providers.LabelTarget] == "local" {
			docker++
			if ct.State == "running" {
				dockerRunning++
			}
		}
	}
	services, tasks := c.swarm()
	route, rerr := c.edge.route(c.stable)
	what := fmt.Sprintf("docker containers %d (%d running), swarm services %d (%d tasks running); edge %s; applied %q (want %q); errors %q",
		docker, dockerRunning, services, tasks, describeRoute(route, rerr), applied(st, "production"), rev, envError(st, "production"))
	if wl.Name == "" {
		return false, "no status of app yet; " + what
	}
	what = fmt.Sprintf("status: app on %s, %d/%d ready, migration %s; %s", wl.Target, wl.ReadyReplicas, wl.DesiredReplicas, describeMove(wl.Migration), what)
	if applied(st, "production") != rev || wl.Target != target || wl.ReadyReplicas < replicas {
		return false, what
	}
	switch target {
	case "local":
		if docker != replicas || dockerRunning != replicas || services != 0 {
			return false, what
		}
	case "swarm":
		if docker != 0 || services != 1 || tasks != replicas {
			return false, what
		}
	}
	if rerr != nil || len(route.Members) != 1 || route.Members[0].Target != target || route.Members[0].Weight != 100 {
		return false, what
	}
	if m := wl.Migration; m != nil && m.Phase != reconciler.MoveDone {
		// A controller killed after it deleted the old copy and before it recorded done records it at its next
		// plan ("finished before a restart"): until then the move is not over.
		return false, what
	}
	return true, what
}

// atPhase tells whether route r shows a move to target at phase: "add", target a member at weight 0 beside another;
// "shift", target at a weight between 0 and 100; "drain", target at 100 with another member left at 0.
func atPhase(r *edge.Route, target, phase string) bool {
	w, others := -1, 0
	for _, m := range r.Members {
		if m.Target == target {
			w = m.Weight
		} else {
			others++
		}
	}
	switch phase {
	case "add":
		return w == 0 && others > 0
	case "shift":
		return w > 0 && w < 100
	case "drain":
		return w == 100 && others > 0
	}
	return false
}

// workloadOf is the status of workload in the production environment; zero when there is none yet.
func workloadOf(st *reconciler.Status, workload string) reconciler.WorkloadStatus {
	if e := envOf(st, "production"); e != nil {
		for _, w := range e.Workloads {
			if w.Name == workload {
				return w
			}
		}
	}
	return reconciler.WorkloadStatus{}
}

// swarm counts the instance's services of app, and their running tasks.
func (c *copies) swarm() (services, running int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svcs, err := c.eng.cli.ServiceList(ctx, dockerswarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+c.instance), filters.Arg("label", providers.LabelWorkload+"=app"))})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range svcs {
		services++
		tasks, err := c.eng.cli.TaskList(ctx, swarmTaskFilter(s.ID))
		if err != nil {
			c.t.Fatal(err)
		}
		for _, task := range tasks {
			if task.DesiredState == dockerswarm.TaskStateRunning && task.Status.State == dockerswarm.TaskStateRunning {
				running++
			}
		}
	}
	return services, running
}

func describeMove(m *store.Migration) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprintf("%s → %s %s weight %d %s", strings.Join(m.From, ","), m.To, m.Phase, m.Weight, m.Detail)
}

func describeRoute(r *edge.Route, err error) string {
	if err != nil {
		return err.Error()
	}
	var ms []string
	for _, m := range r.Members {
		var res []string
		for _, a := range m.Resolved {
			res = append(res, fmt.Sprintf("%s ready=%t fails=%d", a.Address, a.Ready, a.Fails))
		}
		watch := ""
		if m.Watch != nil {
			watch = " watch " + m.Watch.Kind
		}
		ms = append(ms, fmt.Sprintf("%s=%d%s conns %d [%s]%s", m.Target, m.Weight, watch, m.Connections, strings.Join(res, "; "), m.WatchError))
	}
	return fmt.Sprintf("listening=%t %s members {%s}", r.Listening, r.ListenError, strings.Join(ms, " | "))
}

// removeSwarmServices removes the instance's services (the test's controller is gone by then) and waits until
// their tasks' containers are gone, so that the network can be removed after.
func removeSwarmServices(eng *engine, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svcs, err := eng.cli.ServiceList(ctx, dockerswarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+instance))})
	if err != nil {
		return
	}
	for _, s := range svcs {
		eng.cli.ServiceRemove(ctx, s.ID)
	}
	for ctx.Err() == nil && len(eng.containers(instance, "")) > 0 {
		// Docker containers of the instance are removed by engine.cleanup; wait only for the task containers.
		tasks := 0
		for _, c := range eng.containers(instance, "") {
			if c.Labels[providers.LabelTarget] == "swarm" {
				tasks++
			}
		}
		if tasks == 0 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// edgeProc is a running `berth edge`.
type edgeProc struct {
	cmd    *exec.Cmd
	admin  string
	logs   *syncBuffer
	exited chan struct{}
	hc     *http.Client
}

// startEdge runs `berth edge` with its state in dir on a free loopback admin port, and stops it at the end of the
// test.
func startEdge(t *testing.T, dir string) *edgeProc {
	t.Helper()
	e := &edgeProc{admin: "127.0.0.1:" + freePort(t), logs: &syncBuffer{}, exited: make(chan struct{}),
		hc: &http.Client{Timeout: 5 * time.Second}}
	e.cmd = exec.Command(binary(t), "edge", "--admin", e.admin, "--state", filepath.Join(dir, "edge.json"), "--log-level", "debug")
	e.cmd.Env = hermeticEnv(t)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		e.cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.exited:
		case <-time.After(30 * time.Second):
			e.cmd.Process.Kill()
			<-e.exited
		}
	})
	waitFor(t, 60*time.Second, "edge answers "+edge.HealthPath, func() (bool, string) {
		select {
		case <-e.exited:
			t.Fatalf("edge exited early:\n%s", e.logs.String())
		default:
		}
		resp, err := e.hc.Get("http://" + e.admin + edge.HealthPath)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return e
}

// route reads the edge's route name from its admin API.
func (e *edgeProc) route(name string) (*edge.Route, error) {
	resp, err := e.hc.Get("http://" + e.admin + edge.RoutesPath + "/" + url.PathEscape(name))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET route %s: %s: %s", name, resp.Status, strings.TrimSpace(string(b)))
	}
	var r edge.Route
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("GET route %s: %w", name, err)
	}
	return &r, nil
}

// timeline is what the edge's route looked like, one line per change, for a failure's message.
type timeline struct {
	mu      sync.Mutex
	entries []timelineEntry
}

type timelineEntry struct {
	at   time.Time
	line string
}

// between is the lines from from to to, the one in force at from first.
func (l *timeline) between(from, to time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	for i, e := range l.entries {
		if e.at.After(to) {
			break
		}
		if e.at.Before(from) && i+1 < len(l.entries) && !l.entries[i+1].at.After(from) {
			continue
		}
		lines = append(lines, e.at.UTC().Format("15:04:05.000")+" "+e.line)
	}
	return strings.Join(lines, "\n")
}

// watchEdge records the edge's route name on every change (looking every 100 ms) until the test ends.
func watchEdge(t *testing.T, e *edgeProc, name string) *timeline {
	l := &timeline{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		last := ""
		for {
			r, err := e.route(name)
			now := describeRoute(r, err)
			if now != last {
				l.mu.Lock()
				l.entries = append(l.entries, timelineEntry{at: time.Now(), line: now})
				l.mu.Unlock()
				last = now
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return l
}

// loadClient GETs url in a loop, a new connection for each request, counting what was sent and what failed (an error
// or a non-2xx answer).
type loadClient struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	failures     []failure
	done         chan struct{}
	stopped      chan struct{}
	once         sync.Once
}

type failure struct {
	seq int64 // the request's number
	at  time.Time
	err string
}

func startClient(t *testing.T, url string) *loadClient {
	c := &loadClient{done: make(chan struct{}), stopped: make(chan struct{})}
	hc := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(c.stopped)
		for {
			select {
			case <-c.done:
				return
			default:
			}
			seq := c.sent.Add(1)
			resp, err := hc.Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
					err = fmt.Errorf("answer %s", resp.Status)
				}
			}
			if err != nil {
				c.failed.Add(1)
				c.mu.Lock()
				if len(c.failures) < 100 {
					c.failures = append(c.failures, failure{seq: seq, at: time.Now(), err: err.Error()})
				}
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *loadClient) stop() {
	c.once.Do(func() { close(c.done) })
	<-c.stopped
}

// counts are the requests sent and failed so far (a request in flight counts as sent).
func (c *loadClient) counts() (sent, failed int64) { return c.sent.Load(), c.failed.Load() }

// since describes the failures of the requests after the seq-th (the first 100 failures of the run are kept).
func (c *loadClient) since(seq int64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.failures {
		if f.seq > seq {
			out = append(out, fmt.Sprintf("request %d at %s: %s", f.seq, f.at.UTC().Format("15:04:05.000"), f.err))
		}
	}
	return out
}

// window is when the first and the last kept failure after the seq-th request happened.
func (c *loadClient) window(seq int64) (from, to time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.failures {
		if f.seq > seq {
			if from.IsZero() {
				from = f.at
			}
			to = f.at
		}
	}
	return from, to
}

// openStore opens the controller's store in dataDir; the controller must be stopped (the store is locked).
func openStore(t *testing.T, dataDir, instance string) *store.Store {
	t.Helper()
	s, err := store.OpenWith(filepath.Join(dataDir, instance+".db"), store.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// moveOf is the transitions of the newest move of app, oldest first: back to its start, or to the one after the
// previous move's done (or aborted).
func moveOf(t *testing.T, dataDir, instance string) []store.Migration {
	t.Helper()
	s := openStore(t, dataDir, instance)
	defer s.Close()
	ms, err := s.Migrations("production", 0)
	if err != nil {
		t.Fatal(err)
	}
	var move []store.Migration
	for i, m := range ms { // newest first
		if m.Workload != "app" {
			continue
		}
		if i > 0 && (m.Phase == reconciler.MoveDone || m.Phase == reconciler.MoveAborted) && len(move) > 0 {
			break
		}
		move = append(move, m)
		if m.Phase == reconciler.MoveStart {
			break
		}
	}
	for i, j := 0, len(move)-1; i < j; i, j = i+1, j-1 {
		move[i], move[j] = move[j], move[i]
	}
	return move
}

// lastPhase says where the move to target stood when the controller was killed, from its store.
func lastPhase(t *testing.T, dataDir, instance, target string) string {
	t.Helper()
	ms := moveOf(t, dataDir, instance)
	if len(ms) == 0 {
		return "before the move began"
	}
	last := ms[len(ms)-1]
	if last.To != target { // the previous move's
		return "before the move began"
	}
	return fmt.Sprintf("in phase %s%s", last.Phase, weightNote(last))
}

func weightNote(m store.Migration) string {
	if m.Phase == reconciler.MoveShift {
		return " " + strconv.Itoa(m.Weight)
	}
	return ""
}

// movePhasesOf is the newest move's transitions to target, each with the time since the previous one
// ("ready +4.1s"), and the time from its first transition to done. It fails t when the move did not end done.
func movePhasesOf(t *testing.T, dataDir, instance, target string) (string, time.Duration) {
	t.Helper()
	ms := moveOf(t, dataDir, instance)
	if len(ms) == 0 {
		t.Errorf("the store records no transition of the move to %s", target)
		return "none recorded", 0
	}
	last := ms[len(ms)-1]
	if last.To != target || last.Phase != reconciler.MoveDone {
		t.Errorf("the move to %s ended %s (to %s): %s", target, last.Phase, last.To, last.Detail)
	}
	var parts []string
	for i, m := range ms {
		if i == 0 {
			parts = append(parts, m.Phase+weightNote(m))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s%s +%s", m.Phase, weightNote(m), m.Time.Sub(ms[i-1].Time).Round(10*time.Millisecond)))
	}
	if last.Phase != reconciler.MoveDone {
		parts = append(parts, "no done recorded")
	}
	return strings.Join(parts, ", "), last.Time.Sub(ms[0].Time)
}

// envInt is the integer environment variable name, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}
