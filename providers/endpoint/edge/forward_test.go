package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
)

// namedServer is an HTTP server answering its name.
func namedServer(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
	t.Cleanup(srv.Close)
	return srv
}

func hostport(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// loadLoop sends requests through name, each on a new connection, until stop; it counts the answers by body
// and the failures.
type loadLoop struct {
	mu       sync.Mutex
	answers  map[string]int
	failures []error
	total    int
	stop     chan struct{}
	done     chan struct{}
}

func startLoad(t *testing.T, name string) *loadLoop {
	l := &loadLoop{answers: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			resp, err := hc.Get("http://" + name + "/")
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			l.mu.Lock()
			l.total++
			if err != nil {
				l.failures = append(l.failures, err)
			} else {
				l.answers[string(body)]++
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.end)
	return l
}

func (l *loadLoop) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

func (l *loadLoop) count(who string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers[who]
}

// waitMore waits until who answered n more requests than now.
func (l *loadLoop) waitMore(t *testing.T, who string, n int) {
	t.Helper()
	base := l.count(who)
	eventually(t, fmt.Sprintf("%d more answers from %s", n, who), func() bool { return l.count(who) >= base+n })
}

// TestZeroFailedShift: a client keeps sending requests through the edge while the weights move from the old copy
// to the new one and the old one is removed and stopped: every request is answered.
func TestZeroFailedShift(t *testing.T) {
	s := startEdge(t, "", nil)
	r := routerOf(t, s)
	oldSrv, newSrv := namedServer(t, "old"), namedServer(t, "new")
	name := freeName(t)
	set := func(ms ...endpoint.Member) {
		t.Helper()
		if err := r.Set(tctx(t), testOwner, name, time.Minute, ms); err != nil {
			t.Fatal(err)
		}
	}
	old := func(w int) endpoint.Member {
		return endpoint.Member{Target: "docker", Addresses: []string{hostport(oldSrv)}, Weight: w}
	}
	nu := func(w int) endpoint.Member {
		return endpoint.Member{Target: "swarm", Addresses: []string{hostport(newSrv)}, Weight: w}
	}
	set(old(100))
	l := startLoad(t, name)
	l.waitMore(t, "old", 20)
	set(old(100), nu(0))
	l.waitMore(t, "old", 20)
	set(old(50), nu(50))
	l.waitMore(t, "new", 20)
	l.waitMore(t, "old", 20)
	set(old(0), nu(100))
	eventually(t, "the old member drained", func() bool {
		c, err := r.Connections(tctx(t), testOwner, name)
		return err == nil && c["docker"] == 0
	})
	oldBefore := l.count("old")
	l.waitMore(t, "new", 20)
	set(nu(100))
	oldSrv.Close()
	l.waitMore(t, "new", 50)
	l.end()
	t.Logf("%d requests through the edge while shifting 100/0 → 50/50 → 0/100 → removed: %d failed, answers %v",
		l.total, len(l.failures), l.answers)
	if len(l.failures) > 0 {
		t.Fatalf("%d requests failed, the first: %v", len(l.failures), l.failures[0])
	}
	// A request may still have reached the old copy after the 0/100 Set if it was already being forwarded, never
	// after it drained.
	if l.count("old") > oldBefore+1 {
		t.Errorf("the old copy answered %d requests after it was drained", l.count("old")-oldBefore)
	}
}

// TestRestart: an edge stopped and started again on its state file serves the same routes at once, before any
// controller call.
func TestRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "edge.json")
	s1 := startEdge(t, state, nil)
	r := routerOf(t, s1)
	name, b := freeName(t), echoBackend(t)
	ms := []endpoint.Member{{Target: "docker", Addresses: []string{b}, Weight: 100}}
	if err := r.Set(tctx(t), testOwner, name, time.Minute, ms); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, name, 3); len(got) != 3 || got[0] != b {
		t.Fatalf("before the restart: %v", got)
	}
	s1.Close()
	if _, err := ask(name); err == nil {
		t.Fatal("the name still answered with the edge stopped")
	}
	s2 := startEdge(t, state, nil)
	if got := lookup(t, name, 3); len(got) != 3 || got[0] != b {
		t.Fatalf("after the restart: %v", got)
	}
	rec, err := routerOf(t, s2).Get(tctx(t), testOwner, name)
	if err != nil || rec == nil || rec.TTL != time.Minute || len(rec.Members) != 1 || rec.Members[0].Addresses[0] != b {
		t.Fatalf("after the restart, Get = %+v, %v", rec, err)
	}
}

// The SIGKILL test runs an edge in a child process (this test binary, with childEnv set) and kills it while the
// controller keeps changing the table.
const childEnv = "BERTH_EDGE_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		state, admin, _ := strings.Cut(spec, "|")
		err := Serve(context.Background(), Options{State: state, Admin: admin, ProbeInterval: 50 * time.Millisecond})
		fmt.Fprintln(os.Stderr, "edge child:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestKilled: an edge killed with SIGKILL in the middle of table changes leaves a state file that a new edge
// reads whole, and serves.
func TestKilled(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "edge.json")
	sock, err := os.MkdirTemp("", "edge")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sock)
	admin := "unix://" + filepath.Join(sock, "admin.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+state+"|"+admin)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	r, err := NewRouter(admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The client retries while the child starts (no socket yet, then connection refused).
	backends := []string{echoBackend(t), echoBackend(t)}
	names := []string{freeName(t), freeName(t), freeName(t)}
	var sets atomic.Int64
	stop := make(chan struct{})
	killed, kill := context.WithCancel(context.Background())
	defer kill()
	setterDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				setterDone <- nil
				return
			default:
			}
			w := i % 101
			ms := []endpoint.Member{{Target: "docker", Addresses: backends[:1], Weight: w},
				{Target: "swarm", Addresses: backends[1:], Weight: 100 - w}}
			ctx, cancel := context.WithTimeout(killed, 10*time.Second)
			err := r.Set(ctx, testOwner, names[i%len(names)], time.Minute, ms)
			cancel()
			if err != nil {
				setterDone <- err
				return
			}
			sets.Add(1)
		}
	}()
	eventually(t, "50 table changes", func() bool { return sets.Load() >= 50 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	kill()
	close(stop)
	err = <-setterDone
	t.Logf("killed the edge after %d acknowledged changes; the change in flight ended with %v", sets.Load(), err)
	table, err := readState(state)
	if err != nil {
		t.Fatalf("state after SIGKILL: %v", err)
	}
	if len(table) != len(names) {
		t.Fatalf("state after SIGKILL has %d routes, want %d", len(table), len(names))
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(leftovers) > 1 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	startEdge(t, state, nil)
	for _, n := range names {
		got := lookup(t, n, 4)
		if len(got) != 4 || !slices.Contains(backends, got[0]) {
			t.Fatalf("after the restart, %s answered %v", n, got)
		}
	}
}

// TestReadyOnly: an address whose backend stopped is failed over at once on its dial errors (before any probe
// saw it), and skipped once its probes failed; no request fails on the way.
func TestReadyOnly(t *testing.T) {
	dying, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := dying.Addr().String()
	go func() {
		for {
			c, err := dying.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(dead))
			c.Close()
		}
	}()
	live := echoBackend(t)
	ms := []endpoint.Member{{Target: "docker", Addresses: []string{dead, live}, Weight: 100}}

	// Probes that never come again after the first pass: only the dial errors tell.
	unprobed := startEdge(t, "", func(o *Options) { o.ProbeInterval = time.Hour })
	name := freeName(t)
	if err := routerOf(t, unprobed).Set(tctx(t), testOwner, name, 0, ms); err != nil {
		t.Fatal(err)
	}
	got := lookup(t, name, 20)
	if len(got) != 20 || !slices.Contains(got, dead) || !slices.Contains(got, live) {
		t.Fatalf("both addresses ready: answers %v", got)
	}
	dying.Close()
	for i, g := range lookup(t, name, 20) {
		if g != live {
			t.Fatalf("request %d after the backend stopped answered %q", i, g)
		}
	}

	// With probes: the stopped address is skipped once its probes failed, tried only as a last resort.
	s := startEdge(t, "", nil)
	r := routerOf(t, s)
	name = freeName(t)
	if err := r.Set(tctx(t), testOwner, name, 0, ms); err != nil {
		t.Fatal(err)
	}
	ready := func(addr string) bool {
		st, err := r.Status(tctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range st.Members[0].Resolved {
			if a.Address == addr {
				return a.Ready
			}
		}
		t.Fatalf("address %s not in %+v", addr, st)
		return false
	}
	eventually(t, "the probes to give up on "+dead, func() bool { return !ready(dead) })
	if !ready(live) {
		t.Fatal("the live address is not ready")
	}
	s.mu.Lock()
	rt := s.routes[name]
	s.mu.Unlock()
	for range 10 {
		order := s.candidates(rt)
		if len(order) != 2 || order[0].addr != live || order[1].addr != dead {
			t.Fatalf("candidates once the probes failed: %+v; want %s first, %s as a last resort", order, live, dead)
		}
	}
	if got := lookup(t, name, 20); len(got) != 20 {
		t.Fatalf("%d of 20 requests answered once the probe saw it", len(got))
	}
}
