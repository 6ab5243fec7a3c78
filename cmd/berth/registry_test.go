package main

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/providers/registry/registrytest"
	"github.com/berth-dev/berth/reconciler"
)

// TestRegistryResolver: the resolver serve, plan and apply give the engine resolves a tag pushed to the real
// distribution server with the declared credentials, and is refused without them.
func TestRegistryResolver(t *testing.T) {
	d := registrytest.StartDistribution(t)
	_, digest := d.Push(t, "berth/cli", "v1", registrytest.Image{Cmd: []string{"serve"}})
	ctx := context.Background()
	with := registryResolver(map[string]reconciler.RegistryAccess{d.Host(): {Host: d.Host(),
		Username: registrytest.DistUser, Password: []byte(registrytest.DistPassword)}})
	if got, err := with.Digest(ctx, d.Host()+"/berth/cli:v1"); err != nil || got != digest {
		t.Fatalf("Digest = %s, %v; want %s", got, err, digest)
	}
	without := registryResolver(map[string]reconciler.RegistryAccess{d.Host(): {Host: d.Host()}})
	if _, err := without.Digest(ctx, d.Host()+"/berth/cli:v1"); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("anonymous Digest: %v, want ErrUnauthorized", err)
	}
}
