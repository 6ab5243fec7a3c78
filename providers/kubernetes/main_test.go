package kubernetes_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/schema"
)

// TestMain stops the package's shared etcd and kube-apiserver after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if ctrlStop != nil {
		ctrlStop()
	}
	kubetest.Stop()
	os.Exit(code)
}

var (
	ctrlOnce sync.Once
	ctrlStop context.CancelFunc
)

// cluster starts (once) the shared cluster and the simulated deployment controller, and makes the test hermetic.
func cluster(t testing.TB) *kubetest.Cluster {
	t.Helper()
	c := kubetest.Start(t) // before HOME moves: it may find the binaries in ~/.cache/berth/kube
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	ctrlOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		stopped := kubetest.RunDeploymentController(ctx, c.Client)
		ctrlStop = func() { cancel(); <-stopped }
	})
	return c
}

func randomID(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// referenceWorkload is the quickstart app as the suite describes it.
func referenceWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:      name,
		Image:     "registry.example/berth-app:1",
		Args:      []string{"serve"},
		Env:       map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:     []schema.Port{{Name: "http", Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}},
		Replicas:  2,
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20},
		Health: &schema.HealthCheck{
			HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
			Interval: schema.Duration(5 * time.Second),
			Timeout:  schema.Duration(2 * time.Second),
			Retries:  3,
		},
	}
}

// faultInjector fails the next n requests through it with a 503 or a 429 (alternating), as an overloaded
// apiserver or its priority-and-fairness limits would.
type faultInjector struct {
	mu    sync.Mutex
	left  int
	count int
	next  http.RoundTripper
}

func (f *faultInjector) Fail(n int) {
	f.mu.Lock()
	f.left += n
	f.mu.Unlock()
}

func (f *faultInjector) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fail := f.left > 0
	if fail {
		f.left--
		f.count++
	}
	odd := f.count%2 == 1
	f.mu.Unlock()
	if !fail {
		return f.next.RoundTrip(req)
	}
	code, reason := http.StatusServiceUnavailable, "ServiceUnavailable"
	if !odd {
		code, reason = http.StatusTooManyRequests, "TooManyRequests"
	}
	body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected fault","reason":"` + reason + `","code":` + strconv.Itoa(code) + `}`
	return &http.Response{
		StatusCode: code, Status: http.StatusText(code), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": []string{"application/json"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: req,
	}, nil
}

// withFaults returns a copy of cfg whose requests go through f.
func withFaults(cfg *rest.Config, f *faultInjector) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.next = rt
		return f
	})
	return c
}
