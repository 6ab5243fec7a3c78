package gcp_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

// emulated starts an emulator and returns it with a target whose credentialsFile is a service-account key the
// emulator issues tokens for: the SDK authenticates for real, over HTTP, against the emulator.
func emulated(t *testing.T) (*computeemu.Server, schema.Target) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	emu := computeemu.New(computeemu.Options{})
	t.Cleanup(emu.Close)
	key, err := emu.ServiceAccountKey("berth@berth-test.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return emu, schema.Target{Name: "gce", Type: "gcp", Settings: map[string]any{
		"project": emu.Project(), "region": emu.Region(), "endpoint": emu.URL(), "credentialsFile": path,
	}}
}

// newProvider builds a provider on the emulator with millisecond pacing.
func newProvider(t *testing.T, target schema.Target) *gcp.Provider {
	t.Helper()
	p, err := gcp.NewWithClientOptions(target, providers.Options{Instance: "conformance"})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval, p.RetryBase, p.RetryMax = 2*time.Millisecond, time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { p.Close() })
	return p
}

func referenceWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:      name,
		Provider:  "gce",
		Image:     "europe-docker.pkg.dev/berth/app:1",
		Args:      []string{"serve"},
		Env:       map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:     []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}},
		Replicas:  2,
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20},
		Health: &schema.HealthCheck{
			HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
			Interval: schema.Duration(time.Second), Timeout: schema.Duration(time.Second), Retries: 3,
		},
	}
}

func TestConformance(t *testing.T) {
	emu, target := emulated(t)
	owner := providers.Owner{Instance: "cf1", Environment: "dev"}
	conformance.Run(t, conformance.Harness{
		New:      func(t *testing.T) providers.Provider { return newProvider(t, target) },
		Target:   target.Name,
		Owner:    owner,
		Image:    "europe-docker.pkg.dev/berth/app:1",
		ImageV2:  "europe-docker.pkg.dev/berth/app:2",
		Workload: referenceWorkload,
		Drift: func(_ context.Context, t *testing.T, workload string, i int, kind string) {
			var err error
			switch kind {
			case conformance.DriftRemove:
				err = emu.DeleteInstance(gcp.GroupName(owner, workload), i)
			case conformance.DriftStop:
				err = emu.StopInstance(gcp.GroupName(owner, workload), i)
			default:
				t.Fatalf("unknown drift kind %q", kind)
			}
			if err != nil {
				t.Fatal(err)
			}
		},
		LookAlike: func(_ context.Context, t *testing.T, workload string) func() bool {
			name := gcp.GroupName(owner, workload) + "-copy"
			emu.CreateUnowned(name, 1)
			return func() bool { return emu.GroupExists(name) }
		},
		Faults:  func(n int) { emu.Fail(n, computeemu.FaultThrottle) },
		Timeout: 60 * time.Second,
	})
}
