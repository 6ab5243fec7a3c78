package nomad_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite with the real Nomad API client against the emulator: drift as an
// allocation dying (KillAlloc) and an operator's `nomad alloc stop` (StopAlloc), look-alikes as jobs without berth
// meta, faults as 500s, 429s and lost compare-and-sets.
func TestConformance(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	const tgt = "nomad-test"
	name := func(workload string) string {
		return fmt.Sprintf("berth-%s-%s-%s", owner.Instance, owner.Environment, workload)
	}
	conformance.Run(t, conformance.Harness{
		New:     func(t *testing.T) providers.Provider { return newProvider(t, emu, tgt) },
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
			live := emu.LiveAllocs(testNamespace, name(workload))
			if len(live) == 0 {
				t.Fatalf("drift: no live allocation of %s", workload)
			}
			id := live[i%len(live)]
			var err error
			switch kind {
			case conformance.DriftRemove:
				err = emu.KillAlloc(id)
			case conformance.DriftStop:
				err = emu.StopAlloc(id)
			default:
				t.Fatalf("drift: unknown kind %q", kind)
			}
			if err != nil {
				t.Fatal(err)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			n := name(workload) + "-lookalike"
			emu.CreateLookAlike(testNamespace, n, 1)
			return func() bool { return emu.JobExists(testNamespace, n) }
		},
		Faults: func(n int) { // one of each kind, the rest lost compare-and-sets
			emu.Fail(1, nomademu.ServerError)
			emu.Fail(1, nomademu.RateLimited)
			emu.Fail(max(n-2, 0), nomademu.Conflict)
		},
		Timeout: 60 * time.Second,
	})
}
