package marathon_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite against the emulator: drift as a killed task (Marathon
// relaunches it) and a task killed with scale (instances drop), look-alikes as unlabelled apps beside ours,
// faults as 500/503 answers and dropped connections. The token setting is on, so every call is authenticated.
func TestConformance(t *testing.T) {
	hermetic(t)
	t.Setenv("BERTH_TEST_DCOS_TOKEN", "s3cr3t-token")
	emu := emulator(t, marathonemu.Options{Token: "s3cr3t-token"})
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	const tgt = "marathon-test"
	id := func(workload string) string {
		return "/berth/" + owner.Instance + "/" + owner.Environment + "/" + workload
	}
	faults := 0
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			return newProvider(t, emu, tgt, map[string]any{"tokenEnv": "BERTH_TEST_DCOS_TOKEN"})
		},
		Target:  tgt,
		Owner:   owner,
		Image:   "registry.example/berth-app:1",
		ImageV2: "registry.example/berth-app:2",
		Workload: func(n string) schema.Workload {
			w := referenceWorkload(n)
			w.Replicas = 1
			return w
		},
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			if _, err := emu.KillTask(id(workload), i, kind == conformance.DriftStop); err != nil {
				t.Fatalf("drift: %v", err)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			n := id(workload) + "-lookalike"
			emu.CreateLookAlike(n, 1)
			return func() bool { return emu.AppExists(n) }
		},
		Faults: func(n int) {
			kinds := []string{marathonemu.ServerError, marathonemu.Unavailable, marathonemu.Reset}
			emu.Fail(n, kinds[faults%len(kinds)])
			faults++
		},
		Timeout: 60 * time.Second,
	})
}
