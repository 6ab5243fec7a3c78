package route53_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/providers/endpoint/route53"
	"github.com/berth-dev/berth/providers/endpoint/route53/route53emu"
	"github.com/berth-dev/berth/schema"
)

const (
	zone       = "example.com"
	testKeyID  = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// hermetic points the AWS SDK at static test credentials and away from the developer's files and instance
// metadata.
func hermetic(t testing.TB) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_ACCESS_KEY_ID", testKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", home+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", home+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	// A router a test builds reaches Route 53 at its emulator (settings.endpoint) or at this closed port.
	t.Setenv("AWS_ENDPOINT_URL_ROUTE_53", "http://127.0.0.1:1")
}

// env is one emulator, its API server (which records the request bodies) and its DNS server.
type env struct {
	emu *route53emu.Emulator
	api *httptest.Server
	dns *dnstest.Server

	mu     sync.Mutex
	bodies []string // POST bodies, in order
	hook   func()   // run once before the next POST is served
}

func (e *env) beforePost(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hook = f
}

func newEnv(t testing.TB, opts route53emu.Options) *env {
	t.Helper()
	hermetic(t)
	e := &env{emu: route53emu.New(zone, opts)}
	e.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			e.mu.Lock()
			e.bodies = append(e.bodies, string(b))
			hook := e.hook
			e.hook = nil
			e.mu.Unlock()
			if hook != nil {
				hook()
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		e.emu.ServeHTTP(w, r)
	}))
	t.Cleanup(e.api.Close)
	d, err := e.emu.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e.dns = d
	return e
}

func (e *env) posts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.bodies...)
}

func dnsTarget(settings map[string]any) schema.Target {
	return schema.Target{Name: "route53-main", Type: "route53", Settings: settings}
}

// router builds the router through the registered factory, as the controller does, with test pacing.
func (e *env) router(t testing.TB) *route53.Router {
	t.Helper()
	r, err := endpoint.New(dnsTarget(map[string]any{"type": "route53", "zoneId": e.emu.ZoneID(), "endpoint": e.api.URL}),
		endpoint.Options{Instance: "berth"})
	if err != nil {
		t.Fatal(err)
	}
	return fast(r.(*route53.Router))
}

func fast(r *route53.Router) *route53.Router {
	r.RetryBase, r.RetryMax = time.Millisecond, 5*time.Millisecond
	r.PollInterval, r.PollMax = time.Millisecond, 5*time.Millisecond
	return r
}

// lookup is what n clients get for name from the emulator's DNS server.
func (e *env) lookup(t testing.TB, name string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := dnstest.Lookup(ctx, e.dns.Addr(), name)
		cancel()
		if err != nil {
			continue // NXDOMAIN: nothing served
		}
		out = append(out, got...)
	}
	return out
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func name(i int) string { return fmt.Sprintf("web%d.%s", i, zone) }

func ip(i int) []string { return []string{fmt.Sprintf("192.0.2.%d", 10+i)} }

var (
	owner = endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	other = endpoint.Owner{Instance: "berth", Environment: "staging", Workload: "web"}
)
