package reconciler

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/schema"
)

func benchmarkPlan(b *testing.B, n int) {
	p := fake.New()
	ws := make([]schema.Workload, n)
	for i := range ws {
		ws[i] = wl(fmt.Sprintf("w%05d", i), "local", "app:1", 2)
		ws[i].Env = map[string]string{"GREETING": "hello", "INDEX": fmt.Sprint(i)}
		seed(p, ws[i])
	}
	e := newTestEngine(b, map[string]*fake.Provider{"local": p}, nil)
	cfg := config([]string{"local"}, ws...)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		plan, err := e.Plan(context.Background(), cfg, "prod", "r1")
		if err != nil || !plan.Empty() {
			b.Fatalf("plan: %v, %d steps", err, len(plan.Steps))
		}
	}
}

func BenchmarkPlan1000(b *testing.B)  { benchmarkPlan(b, 1000) }
func BenchmarkPlan10000(b *testing.B) { benchmarkPlan(b, 10000) }
