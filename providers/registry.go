package providers

import (
	"fmt"
	"log/slog"

	"github.com/berth-dev/berth/schema"
)

// Factory builds a provider for one target.
type Factory func(t schema.Target, opts Options) (Provider, error)

// Options are what every provider factory is given by the controller.
type Options struct {
	Logger *slog.Logger
	// Instance is the managing berth instance. A provider that acts on its own (a background sync) must only touch
	// objects carrying this instance's label; the Owner of each call says the same for the calls.
	Instance string
	// Background allows work beyond the calls, for as long as the provider lives: the Docker provider's public-port
	// proxies kept up from what runs. The controller sets it; one-shot commands (plan, apply) do not.
	Background bool
}

var factories = Registry[Factory]{What: "providers: Register"}

// Register makes a target type available. Provider packages call it from init.
func Register(typ string, f Factory) { factories.Register(typ, f) }

// New builds the provider for target t.
func New(t schema.Target, opts Options) (Provider, error) {
	f, ok := factories.Lookup(t.Type)
	if !ok {
		return nil, fmt.Errorf("target %q: unknown type %q (known: %v)", t.Name, t.Type, Types())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return f(t, opts)
}

// Types lists the registered target types, sorted.
func Types() []string { return factories.Types() }
