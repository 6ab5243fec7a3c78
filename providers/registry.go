package providers

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"

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

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a target type available. Provider packages call it from init.
func Register(typ string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[typ]; dup {
		panic("providers: Register called twice for " + typ)
	}
	factories[typ] = f
}

// New builds the provider for target t.
func New(t schema.Target, opts Options) (Provider, error) {
	mu.RLock()
	f, ok := factories[t.Type]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("target %q: unknown type %q (known: %v)", t.Name, t.Type, Types())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return f(t, opts)
}

// Types lists the registered target types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	var ts []string
	for t := range factories {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}
