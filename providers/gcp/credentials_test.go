package gcp_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

// noCredentials leaves the SDK no application default credentials: no GOOGLE_APPLICATION_CREDENTIALS, a HOME
// without gcloud's file, and a metadata server check that answers "not on Google Cloud" without probing. It
// returns how many times that check ran.
func noCredentials(t *testing.T) (home string, probes *atomic.Int32) {
	home = t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "CLOUDSDK_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	probes = &atomic.Int32{}
	gcp.SetOnGCE(t, func() bool { probes.Add(1); return false })
	return home, probes
}

func adcTarget(emu *computeemu.Server) schema.Target {
	return schema.Target{Name: "gce", Type: "gcp", Settings: map[string]any{
		"project": emu.Project(), "region": emu.Region(), "endpoint": emu.URL()}}
}

// With no credentials anywhere, the provider is refused at once, nothing reaches Compute, and the error names the
// sources tried and the fix.
func TestNoCredentialsFailFast(t *testing.T) {
	home, probes := noCredentials(t)
	emu := computeemu.New(computeemu.Options{})
	t.Cleanup(emu.Close)
	start := time.Now()
	_, err := providers.New(adcTarget(emu), providers.Options{})
	elapsed := time.Since(start)
	if !errors.Is(err, gcp.ErrNoCredentials) || !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("New = %v, want a permanent ErrNoCredentials", err)
	}
	if n := len(emu.Requests()); n != 0 || probes.Load() != 1 {
		t.Errorf("%d requests, %d metadata checks; want 0 and 1", n, probes.Load())
	}
	if elapsed > 500*time.Millisecond {
		t.Errorf("New took %v", elapsed)
	}
	for _, want := range []string{`gcp target "gce"`, "could not find default credentials",
		"settings.credentialsFile (not set)", "GOOGLE_APPLICATION_CREDENTIALS (not set)",
		filepath.Join(home, ".config", "gcloud", "application_default_credentials.json") + " (missing)",
		"GCE metadata server (not on Google Cloud", "To fix:", "gcloud auth application-default login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	t.Log(err)
}

// Application default credentials from GOOGLE_APPLICATION_CREDENTIALS are used (the SDK authenticates against
// the emulator's token endpoint); a file that is not there is refused at once with the fix.
func TestApplicationDefaultCredentials(t *testing.T) {
	_, probes := noCredentials(t)
	emu, tgt := emulated(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", tgt.Settings["credentialsFile"].(string))
	pr, err := providers.New(adcTarget(emu), providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.(*gcp.Provider).Close() })
	if _, err := pr.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, "gce"); err != nil {
		t.Fatalf("List: %v", err)
	}
	if probes.Load() != 0 {
		t.Errorf("metadata checked %d times with GOOGLE_APPLICATION_CREDENTIALS set", probes.Load())
	}

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "gone.json"))
	_, err = providers.New(adcTarget(emu), providers.Options{})
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS=") ||
		!strings.Contains(err.Error(), "gone.json") || !strings.Contains(err.Error(), "To fix:") {
		t.Fatalf("New with a missing file = %v", err)
	}
}

// defaultPaced builds the provider on target with the default retry tunables (1 s doubling, 8 tries: many seconds
// if a permanent error were retried).
func defaultPaced(t *testing.T, tgt schema.Target) *gcp.Provider {
	t.Helper()
	pr, err := providers.New(tgt, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*gcp.Provider)
	t.Cleanup(func() { p.Close() })
	return p
}

// Compute refusing the permission, or its API being disabled, fails the List once, permanent, with Compute's
// words, the identity and the fix.
func TestDeniedPermanent(t *testing.T) {
	for _, c := range []struct {
		kind string
		want []string
	}{
		{computeemu.FaultDenied, []string{"permission denied to service account berth@berth-test.iam.gserviceaccount.com",
			"Required 'compute.instanceGroupManagers.list' permission for 'projects/berth-test/regions/europe-west1/instanceGroupManagers'",
			"roles/compute.instanceAdmin.v1", "roles/iam.serviceAccountUser"}},
		{computeemu.FaultDisabled, []string{"Compute Engine API is not enabled", "has not been used in project berth-test",
			"gcloud services enable compute.googleapis.com --project berth-test"}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			emu, tgt := emulated(t)
			p := defaultPaced(t, tgt)
			emu.Fail(1, c.kind)
			start := time.Now()
			_, err := p.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, "gce")
			if !errors.Is(err, providers.ErrPermanent) {
				t.Fatalf("List = %v, want permanent", err)
			}
			if n := len(emu.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("List took %v", d)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

// A key the token endpoint does not know (here one issued by another emulator) is refused once, permanent, with
// the endpoint's words; nothing reaches Compute.
func TestRefusedKeyPermanent(t *testing.T) {
	emu, _ := emulated(t)
	_, other := emulated(t)
	tgt := adcTarget(emu)
	// the other emulator's key names the other token endpoint; point it at this one
	b, err := os.ReadFile(other.Settings["credentialsFile"].(string))
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.ReplaceAll(string(b), strings.TrimPrefix(other.Settings["endpoint"].(string), "http://"), strings.TrimPrefix(emu.URL(), "http://")))
	path := filepath.Join(t.TempDir(), "stranger.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tgt.Settings["credentialsFile"] = path
	p := defaultPaced(t, tgt)
	start := time.Now()
	_, err = p.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, "gce")
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("List = %v, want permanent", err)
	}
	if n := len(emu.Requests()); n != 0 {
		t.Errorf("%d requests reached Compute, want 0", n)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("List took %v", d)
	}
	for _, w := range []string{"the token endpoint refused service account berth@berth-test.iam.gserviceaccount.com",
		"Invalid JWT Signature", "To fix:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%s", w, err)
		}
	}
}

// Throttling and 5xx answers to a List are still retried, to success.
func TestListTransientRetried(t *testing.T) {
	for _, kind := range []string{computeemu.FaultThrottle, computeemu.FaultQuota, computeemu.FaultServer} {
		t.Run(kind, func(t *testing.T) {
			emu, tgt := emulated(t)
			p := newProvider(t, tgt)
			emu.Fail(3, kind)
			if _, err := p.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, "gce"); err != nil {
				t.Fatalf("List: %v", err)
			}
			if n := len(emu.Requests()); n != 4 {
				t.Errorf("%d requests, want 4 (3 faults, then success)", n)
			}
		})
	}
}
