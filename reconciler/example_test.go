package reconciler_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

func ExampleEngine_Plan() {
	local := fake.New()
	eng, _ := reconciler.NewEngine(reconciler.Options{
		Providers: func(schema.Target, providers.Options) (providers.Provider, error) { return local, nil },
		Evaluate:  func(*schema.Config, string, policies.Options) []policies.Finding { return nil },
	})
	defer eng.Close()
	cfg := &schema.Config{
		Targets: map[string]schema.Target{"local": {Name: "local", Type: "fake"}},
		Environments: map[string]schema.Environment{"prod": {Name: "prod", Branch: "main", Workloads: []schema.Workload{
			{Name: "web", Provider: "local", Image: "app:1", Replicas: 2},
		}}},
	}
	plan, _ := eng.Plan(context.Background(), cfg, "prod", "abc123")
	fmt.Print(plan)
	eng.Apply(context.Background(), cfg, plan)
	plan, _ = eng.Plan(context.Background(), cfg, "prod", "abc123")
	fmt.Print(plan)
	// Output:
	// Environment prod at revision abc123:
	//   + create web on local (not running)
	// Plan: 1 to create, 0 to update, 0 to delete, 0 to migrate.
	// Environment prod at revision abc123:
	// No changes.
	// Plan: 0 to create, 0 to update, 0 to delete, 0 to migrate.
}
