package aws_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers"
)

// benchWorkloads is how many workloads one List pass of the benchmark reads.
const benchWorkloads = 4

// BenchmarkList measures one List pass over benchWorkloads workloads of 2 replicas each, against the emulator:
// ns/op and the ECS requests a pass sends (requests/op). "warm" reuses the provider (its task definition cache
// holds every revision, as in a running controller); "cold" is a fresh provider each pass (a restarted berth).
func BenchmarkList(b *testing.B) {
	hermetic(b)
	emu := emulator(b)
	p := newProvider(b, emu, "aws-test")
	ctx := context.Background()
	owner := providers.Owner{Instance: "berth", Environment: "dev"}
	for i := range benchWorkloads {
		d := desired(fmt.Sprintf("web%d", i))
		if err := p.Apply(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := p.List(ctx, owner, "aws-test"); err != nil { // ECS lists a new service only from the second list on
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		fresh bool
	}{{"warm", false}, {"cold", true}} {
		b.Run(c.name, func(b *testing.B) {
			emu.ResetRequests()
			requests := 0
			b.ResetTimer()
			for range b.N {
				q := p
				if c.fresh {
					b.StopTimer()
					q = newProvider(b, emu, "aws-test")
					b.StartTimer()
				}
				obs, err := q.List(ctx, owner, "aws-test")
				if err != nil {
					b.Fatal(err)
				}
				if len(obs) != benchWorkloads {
					b.Fatalf("List found %d workloads, want %d", len(obs), benchWorkloads)
				}
				requests += len(emu.Requests())
				emu.ResetRequests()
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		})
	}
}
