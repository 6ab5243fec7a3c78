package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// echoServer answers every connection with its name, then echoes what it reads.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, name+"\n")
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// deadAddr is an address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "ERR " + err.Error()
	}
	return strings.TrimSpace(line)
}

func newProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestRoundRobinAndRemove(t *testing.T) {
	p := newProxy(t)
	p.Add(Backend{ID: "a", Addr: echoServer(t, "a")})
	p.Add(Backend{ID: "b", Addr: echoServer(t, "b")})
	got := map[string]int{}
	for range 4 {
		got[ask(t, p.Addr().String())]++
	}
	if got["a"] != 2 || got["b"] != 2 {
		t.Fatalf("round robin: got %v, want 2 each", got)
	}
	if last := p.Remove("a"); last.IsZero() {
		t.Error("Remove: want the time of the last connection handed to a")
	}
	for range 3 {
		if s := ask(t, p.Addr().String()); s != "b" {
			t.Fatalf("after Remove(a): answer %q, want b", s)
		}
	}
	if p.Has("a") || !p.Has("b") {
		t.Errorf("Has: a=%v b=%v", p.Has("a"), p.Has("b"))
	}
}

func TestDialFailureTriesNext(t *testing.T) {
	p := newProxy(t)
	p.Set([]Backend{{ID: "dead", Addr: deadAddr(t)}, {ID: "live", Addr: echoServer(t, "live")}})
	for range 4 {
		if s := ask(t, p.Addr().String()); s != "live" {
			t.Fatalf("answer %q, want live", s)
		}
	}
}

func TestNoBackendClosesConnection(t *testing.T) {
	p := newProxy(t)
	if s := ask(t, p.Addr().String()); !strings.HasPrefix(s, "ERR") {
		t.Fatalf("answer %q, want the connection closed", s)
	}
}

func TestEchoAndClose(t *testing.T) {
	p := newProxy(t)
	p.Add(Backend{ID: "a", Addr: echoServer(t, "a")})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if line, _ := r.ReadString('\n'); line != "a\n" {
		t.Fatalf("greeting %q", line)
	}
	io.WriteString(c, "ping\n")
	if line, _ := r.ReadString('\n'); line != "ping\n" {
		t.Fatalf("echo %q", line)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Close cut the open connection: the read ends.
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after Close")
	}
	if _, err := net.Dial("tcp", p.Addr().String()); err == nil {
		t.Fatal("listener still open after Close")
	}
}

func TestListenTaken(t *testing.T) {
	p := newProxy(t)
	if _, err := Listen(p.Addr().String(), nil); err == nil || !strings.Contains(err.Error(), p.Addr().String()) {
		t.Fatalf("Listen on a taken port: err %v, want one naming the address", err)
	}
}
