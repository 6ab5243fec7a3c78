package azure_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/aciemu"
)

// BenchmarkList runs one List pass over three workloads of two replicas each against the emulator and reports the
// ARM requests a pass costs (requests/op) beside ns/op.
func BenchmarkList(b *testing.B) {
	emu := aciemu.New(aciemu.Options{})
	b.Cleanup(emu.Close)
	p := newProvider(b, emu)
	owner := providers.Owner{Instance: "bench", Environment: "dev"}
	ctx := context.Background()
	for i := range 3 {
		w := referenceWorkload(fmt.Sprintf("web%d", i))
		if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
			b.Fatal(err)
		}
	}
	if obs, err := p.List(ctx, owner, testTarget); err != nil || len(obs) != 3 {
		b.Fatalf("List: %d workloads, %v", len(obs), err)
	}
	emu.ResetRequests()
	b.ResetTimer()
	for range b.N {
		if _, err := p.List(ctx, owner, testTarget); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(emu.Requests()))/float64(b.N), "requests/op")
}
