package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// TestDeleteDrains: a deleted route stops accepting at once; a connection open on it runs on, and is closed once
// the drain grace is over.
func TestDeleteDrains(t *testing.T) {
	for _, tc := range []struct {
		name    string
		grace   time.Duration
		release bool
	}{{"finishes", time.Minute, true}, {"grace-over", 100 * time.Millisecond, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startEdge(t, "", func(o *Options) { o.DrainGrace = tc.grace })
			r := routerOf(t, s)
			hold, release := holdingBackend(t)
			name := freeName(t)
			if err := r.Set(tctx(t), testOwner, name, 0, []endpoint.Member{{Target: "docker", Addresses: []string{hold}, Weight: 100}}); err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", name)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			eventually(t, "the connection forwarded", func() bool {
				m, err := r.Connections(tctx(t), testOwner, name)
				return err == nil && m["docker"] == 1
			})
			if err := r.Delete(tctx(t), testOwner, name); err != nil {
				t.Fatal(err)
			}
			if _, err := net.Dial("tcp", name); err == nil {
				t.Fatal("a deleted route still accepts")
			}
			if tc.release {
				release()
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading the open connection: %v", err)
			}
			if want := map[bool]string{true: "bye", false: ""}[tc.release]; string(b) != want {
				t.Fatalf("the open connection read %q, want %q", b, want)
			}
		})
	}
}

// TestBadState: a state file that does not parse stops the start, and is left as it was.
func TestBadState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "edge.json")
	for _, content := range []string{`{"version": 1, "routes": [`, `{"version": 9, "routes": []}`,
		`{"version": 1, "routes": [{"name": "nope"}]}`} {
		if err := os.WriteFile(state, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Start(Options{State: state, Admin: "127.0.0.1:0"})
		if err == nil {
			s.Close()
			t.Fatalf("started on the state %s", content)
		}
		if b, _ := os.ReadFile(state); string(b) != content {
			t.Fatalf("the state file was changed to %s", b)
		}
	}
}

// TestAdminRequests: the answers of the admin API to requests the Router client never makes.
func TestAdminRequests(t *testing.T) {
	s := startEdge(t, "", func(o *Options) { o.Admin = "127.0.0.1:0" })
	base := "http://" + s.AdminAddr()
	do := func(method, path, body string) (int, ErrorBody) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb ErrorBody
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &eb) // empty for 2xx
		return resp.StatusCode, eb
	}
	owner := `"owner": {"instance": "berth", "environment": "prod", "workload": "web"}`
	name := freeName(t)
	big := `{` + owner + `, "members": [{"target": "` + strings.Repeat("x", MaxBodyBytes) + `", "addresses": ["127.0.0.1:1"], "weight": 1}]}`
	for _, tc := range []struct {
		method, path, body string
		code               int
		errCode            string
	}{
		{"GET", HealthPath, "", 200, ""},
		{"GET", RoutesPath + "/" + name, "", 404, CodeNotFound},
		{"PUT", RoutesPath + "/nope", `{` + owner + `}`, 400, CodeBadRequest},
		{"PUT", RoutesPath + "/" + name + "0", `{` + owner + `}`, 400, CodeBadRequest}, // port out of range
		{"PUT", RoutesPath + "/" + name, `{"members": []}`, 400, CodeBadRequest},
		{"PUT", RoutesPath + "/" + name, `{` + owner + `, "ttl": "soon"}`, 400, CodeBadRequest},
		{"PUT", RoutesPath + "/" + name, big, 400, CodeBadRequest},
		{"PUT", RoutesPath + "/" + name, `{` + owner + `, "members": [{"target": "a", "addresses": ["127.0.0.1"], "weight": 1}]}`, 400, CodeBadMember},
		{"DELETE", RoutesPath + "/" + name, "", 400, CodeBadRequest}, // no owner
		{"DELETE", RoutesPath + "/" + name + "?instance=berth&environment=prod&workload=web", "", 204, ""},
	} {
		code, eb := do(tc.method, tc.path, tc.body)
		if code != tc.code || eb.Code != tc.errCode {
			t.Errorf("%s %.60s: %d %q (%s); want %d %q", tc.method, tc.path, code, eb.Code, eb.Error, tc.code, tc.errCode)
		}
	}
}

// TestClientRetries: the client waits for an edge that is not up yet (no socket, then one), within ctx.
func TestClientRetries(t *testing.T) {
	dir, err := os.MkdirTemp("", "edge")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	admin := "unix://" + filepath.Join(dir, "admin.sock")
	r, err := NewRouter(admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = r.Get(ctx, testOwner, "127.0.0.1:1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Get with no edge: %v; want the deadline, not permanent", err)
	}
	name, b := freeName(t), echoBackend(t)
	done := make(chan error, 1)
	go func() {
		done <- r.Set(tctx(t), testOwner, name, 0, []endpoint.Member{{Target: "docker", Addresses: []string{b}, Weight: 100}})
	}()
	startEdge(t, "", func(o *Options) { o.Admin = admin })
	if err := <-done; err != nil {
		t.Fatalf("Set while the edge started: %v", err)
	}
	if got := lookup(t, name, 1); len(got) != 1 || got[0] != b {
		t.Fatalf("after the Set: %v", got)
	}
}

// TestReopenAtStart: a route whose address is taken when the edge starts stays in the table, says why, and is
// served once the address is free.
func TestReopenAtStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "edge.json")
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	name, b := held.Addr().String(), echoBackend(t)
	if err := writeState(state, []storedRoute{{Name: name, Owner: testOwner,
		Members: []endpoint.Member{{Target: "docker", Addresses: []string{b}, Weight: 100}}}}); err != nil {
		t.Fatal(err)
	}
	s := startEdge(t, state, nil)
	r := routerOf(t, s)
	st, err := r.Status(tctx(t), name)
	if err != nil || st == nil || st.Listening || st.ListenError == "" {
		t.Fatalf("a route on a held address: %+v, %v; want it kept, not listening, with the error", st, err)
	}
	held.Close()
	eventually(t, "the route listening again", func() bool {
		st, err := r.Status(tctx(t), name)
		return err == nil && st.Listening
	})
	if got := lookup(t, name, 2); len(got) != 2 || got[0] != b {
		t.Fatalf("once reopened: %v", got)
	}
}
