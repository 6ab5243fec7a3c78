package marathon_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

// hermetic gives the test a temporary HOME.
func hermetic(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
}

func emulator(t testing.TB, opts marathonemu.Options) *marathonemu.Server {
	s := marathonemu.New(opts)
	t.Cleanup(s.Close)
	return s
}

func target(name, address string, extra map[string]any) schema.Target {
	set := map[string]any{"type": "marathon", "address": address}
	for k, v := range extra {
		set[k] = v
	}
	return schema.Target{Name: name, Type: "marathon", Settings: set}
}

// newProvider builds the provider through the registered factory, as the controller does, with test pacing.
func newProvider(t testing.TB, s *marathonemu.Server, targetName string, extra map[string]any) *marathon.Provider {
	t.Helper()
	pr, err := providers.New(target(targetName, s.URL(), extra), providers.Options{Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*marathon.Provider)
	p.PollInterval = 2 * time.Millisecond
	p.RetryBase = time.Millisecond
	p.RetryMax = 5 * time.Millisecond
	p.ApplyTimeout = 60 * time.Second
	t.Cleanup(func() { p.Close() })
	return p
}

// referenceWorkload is the HTTP service of the goldens and the conformance suite.
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
