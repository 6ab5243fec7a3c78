package nomad

import (
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func init() { providers.RegisterOffline(Type, Offline) }

// Offline describes a nomad target from its settings alone, for `berth validate`: the settings checked as New
// checks them (the token's environment variable is not read), then the provider's own Capabilities and Validate.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	if _, err := parseSettings(t); err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(), validator{}, nil
}

// validator is the provider's Validate without a provider.
type validator struct{}

func (validator) Validate(w schema.Workload) []providers.Problem { return validate(w) }

var _ providers.Offline = Offline
var _ providers.Validator = validator{}
