package clouddns_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/clouddns"
	"github.com/berth-dev/berth/providers/endpoint/clouddns/clouddnsemu"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/providers/endpoint/routertest"
	"github.com/berth-dev/berth/schema"
)

const (
	project = "proj"
	zone    = "main"
	zoneDNS = "example.com."
	lbHost  = "lb-1.elb.example.net"
)

var owner = endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}

// env is one emulator, its API and DNS servers, and a router on them through the real SDK and a service-account
// key whose token endpoint is the emulator.
type env struct {
	emu *clouddnsemu.Emulator
	api *httptest.Server
	dns *dnstest.Server
	r   *clouddns.Router
	key string // the key file
}

func newEnv(t *testing.T, opts clouddnsemu.Options, wrap ...func(http.Handler) http.Handler) *env {
	t.Helper()
	emu := clouddnsemu.New(project, zone, zoneDNS, opts)
	var h http.Handler = emu
	for _, w := range wrap {
		h = w(h)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	key, err := emu.ServiceAccountKey(api.URL, "berth@proj.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := emu.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	r, err := clouddns.NewRouter(schema.Target{Name: "gcp-main", Type: clouddns.Type, Settings: map[string]any{
		"project": project, "zone": zone, "credentialsFile": path, "endpoint": api.URL}}, endpoint.Options{Instance: "berth"})
	if err != nil {
		t.Fatal(err)
	}
	r.PollInterval, r.PollMax = 2*time.Millisecond, 10*time.Millisecond
	r.RetryBase, r.RetryMax = time.Millisecond, 5*time.Millisecond
	return &env{emu: emu, api: api, dns: d, r: r, key: string(key)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// lookup is what n clients get for name: the first address of each answer.
func (e *env) lookup(t *testing.T, name string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ips, err := dnstest.Lookup(ctx(t), e.dns.Addr(), name)
		if errors.Is(err, dnstest.ErrNXDomain) {
			continue
		}
		if err != nil {
			t.Fatalf("look up %s: %v", name, err)
		}
		if len(ips) > 0 {
			out = append(out, ips[0])
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var mu sync.Mutex
	envs := map[*testing.T]*env{}
	get := func(t *testing.T) *env {
		mu.Lock()
		defer mu.Unlock()
		return envs[t]
	}
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) endpoint.Router {
			e := newEnv(t, clouddnsemu.Options{Pending: 2})
			mu.Lock()
			envs[t] = e
			mu.Unlock()
			return e.r
		},
		Name:      func(t *testing.T, i int) string { return fmt.Sprintf("web%d.example.com", i) },
		Addresses: func(t *testing.T, i int) []string { return []string{fmt.Sprintf("192.0.2.%d", 10+i)} },
		HostName:  lbHost,
		Lookup:    func(t *testing.T, name string, n int) []string { return get(t).lookup(t, name, n) },
		Foreign: func(t *testing.T, r endpoint.Router, name string) {
			if err := get(t).emu.Plant(&dnsv1.ResourceRecordSet{Name: endpoint.Fqdn(name), Type: "A", Ttl: 300,
				Rrdatas: []string{"198.51.100.7"}}); err != nil {
				t.Fatal(err)
			}
		},
	})
}
