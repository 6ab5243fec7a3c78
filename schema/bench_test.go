package schema

import (
	"testing"

	"github.com/berth-dev/berth/schema/gen"
)

func benchmarkLoad(b *testing.B, n int) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Workloads: n}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(cfg.Environments["production"].Workloads); got != n {
			b.Fatalf("rendered %d workloads, want %d", got, n)
		}
	}
}

func BenchmarkLoad1000(b *testing.B)  { benchmarkLoad(b, 1000) }
func BenchmarkLoad10000(b *testing.B) { benchmarkLoad(b, 10000) }

// TestGeneratedRepository checks that the generator's output is valid and renders as described.
func TestGeneratedRepository(t *testing.T) {
	dir := t.TempDir()
	if err := gen.Write(dir, gen.Options{Workloads: 25, PerFile: 10}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	prod, staging := cfg.Environments["production"], cfg.Environments["staging"]
	if len(prod.Workloads) != 25 || len(staging.Workloads) != 26 || len(cfg.Targets) != 2 {
		t.Fatalf("got %d production, %d staging workloads, %d targets", len(prod.Workloads), len(staging.Workloads), len(cfg.Targets))
	}
	if w, _ := prod.Workload("w00010"); w.Replicas != 2 {
		t.Errorf("production w00010 replicas = %d, want the default 2", w.Replicas)
	}
	if w, _ := staging.Workload("w00010"); w.Replicas != 1 {
		t.Errorf("staging w00010 replicas = %d, want the override 1", w.Replicas)
	}
}
