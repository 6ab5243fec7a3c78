package registry_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/providers/registry/registrytest"
)

// TestDistribution reads image configurations from the real distribution server through its token challenge:
// Docker and OCI manifests, by tag and by digest; a missing tag is ErrNotFound, no credentials ErrUnauthorized.
func TestDistribution(t *testing.T) {
	d := registrytest.StartDistribution(t)
	ctx := context.Background()
	cl := &registry.Client{Credentials: d.Credentials}
	for _, mt := range []string{registry.MediaDockerManifest, registry.MediaOCIManifest} {
		name := "berth/web-docker"
		if mt == registry.MediaOCIManifest {
			name = "berth/web-oci"
		}
		cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/web","--json"],"Cmd":["serve"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
		digest := d.PushConfig(t, name, "1", mt, cfg)
		img, err := cl.Config(ctx, d.Host()+"/"+name+":1")
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		if !slices.Equal(img.Config.Entrypoint, []string{"/web", "--json"}) || !slices.Equal(img.Config.Cmd, []string{"serve"}) || img.Digest != digest {
			t.Errorf("%s: %+v, want entrypoint [/web --json], cmd [serve], digest %s", mt, img, digest)
		}
		if got, err := cl.Digest(ctx, d.Host()+"/"+name+":1"); err != nil || got != digest {
			t.Errorf("%s: Digest = %s, %v; want %s", mt, got, err, digest)
		}
		if _, err := cl.Config(ctx, d.Host()+"/"+name+"@"+digest); err != nil {
			t.Errorf("%s by digest: %v", mt, err)
		}
	}
	if _, err := cl.Config(ctx, d.Host()+"/berth/web-docker:2"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("missing tag: %v, want ErrNotFound", err)
	}
	if _, err := cl.Digest(ctx, d.Host()+"/berth/web-docker:2"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Digest of a missing tag: %v, want ErrNotFound", err)
	}
	anon := &registry.Client{}
	if _, err := anon.Config(ctx, d.Host()+"/berth/web-docker:1"); !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("anonymous: %v, want ErrUnauthorized", err)
	}
}
