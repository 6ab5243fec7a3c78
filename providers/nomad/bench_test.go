package nomad_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers"
)

// BenchmarkList runs one List pass over four converged workloads against the emulator and reports the Nomad
// requests per pass beside ns/op.
func BenchmarkList(b *testing.B) {
	b.Setenv("HOME", b.TempDir())
	b.Setenv(testTokenEnv, testToken)
	emu := emulator(b)
	p := newProvider(b, emu, "nomad")
	owner := providers.Owner{Instance: "bench", Environment: "prod"}
	ctx := context.Background()
	const workloads = 4
	for i := range workloads {
		w := referenceWorkload(fmt.Sprintf("web%d", i))
		if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
			b.Fatal(err)
		}
	}
	emu.ResetRequests()
	b.ResetTimer()
	for b.Loop() {
		obs, err := p.List(ctx, owner, "nomad")
		if err != nil || len(obs) != workloads {
			b.Fatalf("List: %d workloads, %v", len(obs), err)
		}
	}
	b.ReportMetric(float64(len(emu.Requests()))/float64(b.N), "requests/op")
}
