package marathon_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
)

// BenchmarkList runs one List pass over four converged workloads against the emulator and reports the Marathon
// requests per pass beside ns/op.
func BenchmarkList(b *testing.B) {
	b.Setenv("HOME", b.TempDir())
	emu := emulator(b, marathonemu.Options{})
	p := newProvider(b, emu, "marathon", nil)
	owner := providers.Owner{Instance: "bench", Environment: "prod"}
	ctx := context.Background()
	const workloads = 4
	for i := range workloads {
		w := referenceWorkload(fmt.Sprintf("web%d", i))
		d := providers.Desired{Owner: owner, Target: "marathon", Workload: w, SpecHash: providers.SpecHash(w)}
		if err := p.Apply(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	emu.ResetRequests()
	b.ResetTimer()
	for b.Loop() {
		obs, err := p.List(ctx, owner, "marathon")
		if err != nil || len(obs) != workloads {
			b.Fatalf("List: %d workloads, %v", len(obs), err)
		}
	}
	b.ReportMetric(float64(len(emu.Requests()))/float64(b.N), "requests/op")
}
