package azure

import (
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func init() { providers.RegisterOffline("azure", Offline) }

// Offline describes an azure target from its settings alone, for `berth validate`: ParseSettings, then the
// provider's own Capabilities and Validate, with no credential and no client.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(s.DNSLabelPrefix), validator{}, nil
}

// validator is the provider's Validate without a provider.
type validator struct{}

func (validator) Validate(w schema.Workload) []providers.Problem { return validate(w) }

var _ providers.Offline = Offline
var _ providers.Validator = validator{}
