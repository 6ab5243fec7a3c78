package providers

import (
	"slices"
	"sync"
)

// Registry is a set of factories (or descriptions) by type name, filled from the init functions of the packages
// that implement them: target types here, router types in providers/endpoint. It is safe for concurrent use.
type Registry[F any] struct {
	// What names the kind in the panic of a duplicate ("providers: Register").
	What string

	mu sync.RWMutex
	m  map[string]F
}

// Register adds f for typ; registering a type twice is a programming error and panics.
func (r *Registry[F]) Register(typ string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[typ]; dup {
		panic(r.What + " called twice for " + typ)
	}
	if r.m == nil {
		r.m = map[string]F{}
	}
	r.m[typ] = f
}

// Lookup returns what typ registered, and whether it did.
func (r *Registry[F]) Lookup(typ string) (F, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[typ]
	return f, ok
}

// Types lists the registered types, sorted.
func (r *Registry[F]) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]string, 0, len(r.m))
	for t := range r.m {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}
