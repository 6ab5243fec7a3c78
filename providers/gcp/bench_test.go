package gcp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers/gcp/computeemu"
)

// BenchmarkList runs one List pass over four converged workloads against the emulator and reports the Compute API
// requests of a pass (requests/op) beside ns/op: the cost of reading the runtime's truth on every plan.
func BenchmarkList(b *testing.B) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	b.Cleanup(emu.Close)
	p := anonymous(b, emu)
	ctx := context.Background()
	for i := range 4 {
		if err := p.Apply(ctx, desired(referenceWorkload(fmt.Sprintf("web%d", i)))); err != nil {
			b.Fatal(err)
		}
	}
	for range 2 { // past the eventual consistency of the group list
		if _, err := p.List(ctx, owner, "gce"); err != nil {
			b.Fatal(err)
		}
	}
	emu.ResetRequests()
	b.ResetTimer()
	for range b.N {
		obs, err := p.List(ctx, owner, "gce")
		if err != nil || len(obs) != 4 {
			b.Fatalf("List = %d workloads, %v", len(obs), err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(emu.Requests()))/float64(b.N), "requests/op")
}
