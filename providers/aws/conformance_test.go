package aws_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite with the real ECS SDK client against the emulator: drift through
// StopTask (over the API, as an operator would) and KillTask (a task dying), look-alikes as untagged services,
// faults as throttling and 5xx answers.
func TestConformance(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	const tgt = "aws-test"
	name := func(workload string) string {
		return fmt.Sprintf("berth-%s-%s-%s", owner.Instance, owner.Environment, workload)
	}
	faults := 0
	conformance.Run(t, conformance.Harness{
		New:     func(t *testing.T) providers.Provider { return newProvider(t, emu, tgt) },
		Target:  tgt,
		Owner:   owner,
		Image:   "registry.example/berth-app:1",
		ImageV2: "registry.example/berth-app:2",
		Workload: func(n string) schema.Workload {
			w := referenceWorkload(n)
			w.Image = "registry.example/berth-app:1"
			w.Replicas = 1
			return w
		},
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			live := emu.LiveTasks(testCluster, name(workload))
			if len(live) == 0 {
				t.Fatalf("drift: no live task of %s", workload)
			}
			switch kind {
			case conformance.DriftRemove:
				if _, err := emu.KillTask(testCluster, name(workload), i%len(live)); err != nil {
					t.Fatal(err)
				}
			case conformance.DriftStop:
				if err := stopTask(ctx, t, emu, live[i%len(live)]); err != nil {
					t.Fatalf("drift: StopTask: %v", err)
				}
			default:
				t.Fatalf("drift: unknown kind %q", kind)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			n := name(workload) + "-lookalike"
			emu.CreateLookAlike(testCluster, n, 1)
			return func() bool {
				active, _ := emu.ServiceRunning(testCluster, n)
				return active
			}
		},
		Faults: func(n int) {
			kind := ecsemu.Throttle
			if faults%2 == 1 {
				kind = ecsemu.ServerError
			}
			faults++
			emu.Fail(n, kind)
		},
		Timeout: 60 * time.Second,
	})
}
