package providers

import (
	"fmt"
	"slices"

	"github.com/berth-dev/berth/schema"
)

// Features: the keys of Capabilities.How, one per field of the portability matrix (docs/providers.md). A value
// says how the runtime honours the feature ("ELBv2 target group health check", "berth probes the task's
// address"); a feature the type cannot honour has no key.
const (
	FeaturePublicPort    = "ports.public"
	FeatureAddress       = "address" // what the public address reported in status is
	FeatureHealthHTTP    = "health.http"
	FeatureHealthTCP     = "health.tcp"
	FeatureHealthCommand = "health.command"
	FeatureCPU           = "resources.cpu"
	FeatureMemory        = "resources.memory"
	FeatureArgs          = "args" // command and args, args without command included
	FeatureRollout       = "rollout"
)

// Features lists the feature keys in the matrix's order.
var Features = []string{FeaturePublicPort, FeatureAddress, FeatureHealthHTTP, FeatureHealthTCP, FeatureHealthCommand,
	FeatureCPU, FeatureMemory, FeatureArgs, FeatureRollout}

// Offline describes what a target type honours from the target's settings alone, with no connection, no
// credentials, no environment variables and no state: `berth validate` checks every workload against it before
// anything is reached. The Validator may be nil. What a provider built by its Factory reports (Capabilities,
// Validate) must agree with it for the same target; where the runtime can only tell more once reached (a Swarm's
// routing mesh), Offline gives the settings' answer and plan time checks the rest.
type Offline func(t schema.Target) (Capabilities, Validator, error)

var offlines = Registry[Offline]{What: "providers: RegisterOffline"}

// RegisterOffline makes a target type's offline description available. Provider packages call it from init,
// beside Register.
func RegisterOffline(typ string, f Offline) { offlines.Register(typ, f) }

// OfflineFor returns what target t's type honours, from its settings alone. A type registered without an offline
// description is an error naming it (every built-in type has one).
func OfflineFor(t schema.Target) (Capabilities, Validator, error) {
	f, ok := offlines.Lookup(t.Type)
	if !ok {
		if _, known := factories.Lookup(t.Type); known {
			return Capabilities{}, nil, fmt.Errorf("target %q: type %q has no offline description", t.Name, t.Type)
		}
		return Capabilities{}, nil, fmt.Errorf("target %q: unknown type %q (known: %v)", t.Name, t.Type, Types())
	}
	return f(t)
}

// HowProblems checks c.How against c's capability flags: every key is a feature key with a phrase, and the public
// port, health checks, CPU and memory have a phrase exactly when c honours them. It returns what is wrong, none for
// a consistent description (each provider's test calls it on its offline description).
func HowProblems(c Capabilities) []string {
	var out []string
	for _, k := range sortedKeys(c.How) {
		if v := c.How[k]; !slices.Contains(Features, k) || v == "" {
			out = append(out, fmt.Sprintf("How[%q] = %q: not a feature key, or empty", k, v))
		}
	}
	for _, f := range []struct {
		key      string
		honoured bool
	}{{FeaturePublicPort, c.PublicPorts}, {FeatureHealthHTTP, c.HealthHTTP}, {FeatureHealthTCP, c.HealthTCP},
		{FeatureHealthCommand, c.HealthCommand}, {FeatureCPU, c.CPULimit}, {FeatureMemory, c.MemoryLimit}} {
		if (c.How[f.key] != "") != f.honoured {
			out = append(out, fmt.Sprintf("How[%q] = %q, but the capability says %v", f.key, c.How[f.key], f.honoured))
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
