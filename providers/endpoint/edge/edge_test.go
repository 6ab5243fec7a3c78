package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/routertest"
)

var testOwner = endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}

// echoBackend is a TCP server on loopback that writes its own address on each connection and closes it.
func echoBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(addr))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return addr
}

// freeName is a loopback host:port nothing listens on now.
func freeName(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startEdge starts a server on state (a fresh file when ""), admin on a unix socket of a temporary directory.
func startEdge(t testing.TB, state string, tweak func(*Options)) *Server {
	t.Helper()
	if state == "" {
		state = filepath.Join(t.TempDir(), "edge.json")
	}
	dir, err := os.MkdirTemp("", "edge")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	opts := Options{
		State:         state,
		Admin:         "unix://" + filepath.Join(dir, "admin.sock"),
		ProbeInterval: 20 * time.Millisecond,
		WatchInterval: 50 * time.Millisecond,
		ProbeTimeout:  time.Second,
		DrainGrace:    time.Second,
		ShutdownGrace: time.Second,
		Rand:          rand.New(rand.NewPCG(1, 2)),
		Docker:        func(string) (Docker, error) { return nil, errors.New("no docker engine in this test") },
	}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func routerOf(t testing.TB, s *Server) *Router {
	t.Helper()
	r, err := NewRouter(s.AdminAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// lookup opens n connections to name and returns what each answered; a connection that failed answers nothing.
func lookup(t testing.TB, name string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		if s, err := ask(name); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func ask(name string) (string, error) {
	c, err := net.DialTimeout("tcp", name, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errors.New("closed without an answer")
	}
	return string(b), nil
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits for cond, polling; it fails the test after a minute.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRouterConformance(t *testing.T) {
	type key struct {
		t *testing.T
		i int
	}
	var mu sync.Mutex
	names, addrs := map[key]string{}, map[key][]string{}
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) endpoint.Router { return routerOf(t, startEdge(t, "", nil)) },
		Name: func(t *testing.T, i int) string {
			mu.Lock()
			defer mu.Unlock()
			k := key{t, i}
			if names[k] == "" {
				names[k] = freeName(t)
			}
			return names[k]
		},
		Addresses: func(t *testing.T, i int) []string {
			mu.Lock()
			defer mu.Unlock()
			k := key{t, i}
			if addrs[k] == nil {
				addrs[k] = []string{echoBackend(t), echoBackend(t)}
			}
			return addrs[k]
		},
		Lookup: func(t *testing.T, name string, n int) []string { return lookup(t, name, n) },
		Foreign: func(t *testing.T, r endpoint.Router, name string) {
			foreign := endpoint.Owner{Instance: "other-berth", Environment: "prod", Workload: "web"}
			if err := r.Set(tctx(t), foreign, name, time.Minute, []endpoint.Member{{Target: "docker", Addresses: []string{echoBackend(t)}, Weight: 100}}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestRegistered(t *testing.T) {
	s := startEdge(t, "", nil)
	r, err := endpoint.New(schemaTarget(map[string]any{"admin": s.AdminAddr()}), endpoint.Options{Instance: "berth"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type() != Type || !r.Capabilities().Weighted || r.Capabilities().HostNames || !r.Capabilities().Connections {
		t.Fatalf("router %s capabilities %+v", r.Type(), r.Capabilities())
	}
	for _, settings := range []map[string]any{nil, {"admin": "10.0.0.1:7071"}, {"admin": s.AdminAddr(), "zone": "x"}} {
		if _, err := endpoint.New(schemaTarget(settings), endpoint.Options{}); err == nil {
			t.Errorf("settings %v accepted", settings)
		}
	}
}

func TestParseAdmin(t *testing.T) {
	for s, want := range map[string]string{
		"unix:///run/berth/edge.sock": "unix /run/berth/edge.sock",
		"127.0.0.1:7071":              "tcp 127.0.0.1:7071",
		"tcp://[::1]:7071":            "tcp [::1]:7071",
		"localhost:7071":              "tcp localhost:7071",
		"0.0.0.0:7071":                "error",
		"192.168.1.2:7071":            "error",
		":7071":                       "error",
		"unix://relative.sock":        "error",
		"":                            "error",
	} {
		n, a, err := ParseAdmin(s)
		got := n + " " + a
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseAdmin(%q) = %q (%v), want %q", s, got, err, want)
		}
	}
}

func TestAdminRefusesNonLoopback(t *testing.T) {
	_, err := Start(Options{State: filepath.Join(t.TempDir(), "s.json"), Admin: "0.0.0.0:0"})
	if err == nil {
		t.Fatal("an admin API on 0.0.0.0 was started")
	}
}

// TestListenConflict: a name whose address another process holds is refused with a clear error, and the table
// is unchanged.
func TestListenConflict(t *testing.T) {
	s := startEdge(t, "", nil)
	r := routerOf(t, s)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	name := held.Addr().String()
	err = r.Set(tctx(t), testOwner, name, 0, []endpoint.Member{{Target: "docker", Addresses: []string{echoBackend(t)}, Weight: 100}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeAddressInUse {
		t.Fatalf("Set on a held address: %v; want %s", err, CodeAddressInUse)
	}
	t.Logf("Set on a held address: %v", err)
	if rec, err := r.Get(tctx(t), testOwner, name); rec != nil || err != nil {
		t.Fatalf("after the refused Set, Get = %+v, %v", rec, err)
	}
	st, err := readState(s.opts.State)
	if err != nil || len(st) != 0 {
		t.Fatalf("state after the refused Set: %+v, %v", st, err)
	}
}

// TestDrainer: Connections counts an open connection on the member it went to, and 0 once it closed.
func TestDrainer(t *testing.T) {
	s := startEdge(t, "", nil)
	r := routerOf(t, s)
	hold, release := holdingBackend(t)
	name := freeName(t)
	if err := r.Set(tctx(t), testOwner, name, 0, []endpoint.Member{
		{Target: "docker", Addresses: []string{hold}, Weight: 100},
		{Target: "swarm", Addresses: []string{echoBackend(t)}, Weight: 0},
	}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conns := func() map[string]int {
		m, err := r.Connections(tctx(t), testOwner, name)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	eventually(t, "one connection on docker", func() bool { m := conns(); return m["docker"] == 1 && m["swarm"] == 0 })
	if _, err := r.Connections(tctx(t), endpoint.Owner{Instance: "berth", Environment: "dev", Workload: "web"}, name); !errors.Is(err, endpoint.ErrNotOwned) {
		t.Errorf("Connections by another owner: %v", err)
	}
	release()
	if b, _ := io.ReadAll(c); string(b) != "bye" {
		t.Fatalf("the client read %q, want bye", b)
	}
	c.Close()
	eventually(t, "no connection left", func() bool { return conns()["docker"] == 0 })
	names, err := r.Names(tctx(t), "berth")
	if err != nil || len(names) != 1 || names[name] != testOwner {
		t.Fatalf("Names = %v, %v", names, err)
	}
	if names, err := r.Names(tctx(t), "other"); err != nil || len(names) != 0 {
		t.Fatalf("Names of another instance = %v, %v", names, err)
	}
}

// holdingBackend is a TCP server that keeps each connection open until release, then writes "bye" and closes.
func holdingBackend(t testing.TB) (addr string, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-done
				fmt.Fprint(c, "bye")
				c.Close()
			}()
		}
	}()
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(func() { release(); ln.Close(); wg.Wait() })
	return ln.Addr().String(), release
}
