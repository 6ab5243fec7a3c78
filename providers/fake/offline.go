package fake

import (
	"slices"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func init() { providers.RegisterOffline(Type, Offline) }

// Offline describes a target of type "fake" as the provider Register serves for its name (Lookup) reports it: the
// capabilities and the validator a test set on it, so `berth validate` and reconciler.CheckOffline see what the
// plan sees. Until Register is called the type is unknown, as it is to providers.New.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	if !slices.Contains(providers.Types(), Type) {
		_, err := providers.New(t, providers.Options{}) // the registry's own "unknown type" error
		return providers.Capabilities{}, nil, err
	}
	p := Lookup(t.Name)
	return p.Capabilities(), p, nil
}

var _ providers.Offline = Offline
