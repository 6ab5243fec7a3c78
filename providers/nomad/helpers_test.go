package nomad_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/nomad"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/schema"
)

const (
	testNamespace = "berth"
	testTokenEnv  = "BERTH_TEST_NOMAD_TOKEN"
	testToken     = "4f1c8a5e-secret-token-value"
)

// hermetic keeps the developer's Nomad environment and files out of the tests.
func hermetic(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, v := range []string{"NOMAD_ADDR", "NOMAD_REGION", "NOMAD_NAMESPACE", "NOMAD_TOKEN", "NOMAD_HTTP_AUTH",
		"NOMAD_CACERT", "NOMAD_CAPATH", "NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY", "NOMAD_SKIP_VERIFY"} {
		t.Setenv(v, "")
	}
	t.Setenv(testTokenEnv, testToken)
}

func emulator(t testing.TB) *nomademu.Server {
	s := nomademu.New(nomademu.Options{Token: testToken})
	t.Cleanup(s.Close)
	return s
}

func target(name, address string) schema.Target {
	return schema.Target{Name: name, Type: "nomad", Settings: map[string]any{
		"type": "nomad", "address": address, "region": "global", "namespace": testNamespace,
		"datacenters": []any{"dc1"}, "tokenEnv": testTokenEnv,
	}}
}

// newProvider builds the provider through the registered factory, as the controller does, with test pacing.
func newProvider(t testing.TB, s *nomademu.Server, targetName string) *nomad.Provider {
	t.Helper()
	pr, err := providers.New(target(targetName, s.URL()), providers.Options{Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*nomad.Provider)
	p.PollInterval = 5 * time.Millisecond
	p.RetryBase = time.Millisecond
	p.RetryMax = 5 * time.Millisecond
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
