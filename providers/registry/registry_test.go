package registry_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/providers/registry/registrytest"
)

func TestParseReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		in   string
		want registry.Reference
	}{
		{"nginx", registry.Reference{Host: "docker.io", Repository: "library/nginx", Tag: "latest"}},
		{"nginx:1.27", registry.Reference{Host: "docker.io", Repository: "library/nginx", Tag: "1.27"}},
		{"berth/web:2", registry.Reference{Host: "docker.io", Repository: "berth/web", Tag: "2"}},
		{"docker.io/nginx", registry.Reference{Host: "docker.io", Repository: "library/nginx", Tag: "latest"}},
		{"ghcr.io/berth-dev/quickstart:1", registry.Reference{Host: "ghcr.io", Repository: "berth-dev/quickstart", Tag: "1"}},
		{"localhost:5000/a/b", registry.Reference{Host: "localhost:5000", Repository: "a/b", Tag: "latest"}},
		{"localhost/a", registry.Reference{Host: "localhost", Repository: "a", Tag: "latest"}},
		{"127.0.0.1:5000/web@" + d, registry.Reference{Host: "127.0.0.1:5000", Repository: "web", Digest: d}},
		{"127.0.0.1:5000/web:1@" + d, registry.Reference{Host: "127.0.0.1:5000", Repository: "web", Tag: "1", Digest: d}},
	} {
		got, err := registry.ParseReference(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseReference(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "web:bad tag", "web@sha256:short", "ghcr.io/", "a//b", "ex ample.com/a"} {
		if _, err := registry.ParseReference(bad); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("ParseReference(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestConfigBearerChallenge(t *testing.T) {
	reg := registrytest.New(registrytest.Options{})
	t.Cleanup(reg.Close)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		img  registrytest.Image
	}{
		{"docker", registrytest.Image{Entrypoint: []string{"/web"}, Cmd: []string{"serve"}}},
		{"oci", registrytest.Image{Entrypoint: []string{"/bin/app", "--root"}, OCI: true}},
		{"docker-list", registrytest.Image{Entrypoint: []string{"/web"}, Index: true}},
		{"oci-index", registrytest.Image{Entrypoint: []string{"/web"}, Index: true, OCI: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, digest := reg.Push("berth/"+c.name, "1", c.img)
			cl := &registry.Client{}
			img, err := cl.Config(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(img.Config.Entrypoint, c.img.Entrypoint) || !slices.Equal(img.Config.Cmd, c.img.Cmd) {
				t.Errorf("config %+v, want entrypoint %q cmd %q", img.Config, c.img.Entrypoint, c.img.Cmd)
			}
			if c.img.Index && img.Index != digest || !c.img.Index && img.Digest != digest {
				t.Errorf("digest %s index %s, want %s", img.Digest, img.Index, digest)
			}
			if got, err := cl.Digest(ctx, ref); err != nil || got != digest {
				t.Errorf("Digest = %s, %v; want %s", got, err, digest)
			}
			// By digest, the same; the token of the first call is reused.
			tokens := reg.Requests("GET /token")
			again, err := cl.Config(ctx, strings.TrimSuffix(ref, ":1")+"@"+digest)
			if err != nil || !slices.Equal(again.Config.Entrypoint, c.img.Entrypoint) {
				t.Fatalf("by digest: %+v, %v", again, err)
			}
			if n := reg.Requests("GET /token"); n != tokens {
				t.Errorf("%d token requests for a second call, want none (the token is kept)", n-tokens)
			}
		})
	}
}

func TestConfigCredentialsTLS(t *testing.T) {
	reg := registrytest.New(registrytest.Options{User: "berth", Password: "s3cret", TLS: true})
	t.Cleanup(reg.Close)
	ref, _ := reg.Push("private/web", "1", registrytest.Image{Entrypoint: []string{"/web"}})
	ctx := context.Background()
	// A TLS registry on loopback: tell the client it speaks HTTPS.
	https := func(string) bool { return false }
	anon := &registry.Client{HTTP: reg.Client(), PlainHTTP: https}
	_, err := anon.Config(ctx, ref)
	if !errors.Is(err, registry.ErrUnauthorized) || !registry.Permanent(err) {
		t.Fatalf("anonymous: %v, want ErrUnauthorized", err)
	}
	wrong := &registry.Client{HTTP: reg.Client(), PlainHTTP: https,
		Credentials: func(string) (string, string) { return "berth", "wrong" }}
	if _, err := wrong.Config(ctx, ref); !errors.Is(err, registry.ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v, want ErrUnauthorized without the password", err)
	}
	var asked string
	cl := &registry.Client{HTTP: reg.Client(), PlainHTTP: https,
		Credentials: func(host string) (string, string) { asked = host; return "berth", "s3cret" }}
	img, err := cl.Config(ctx, ref)
	if err != nil || !slices.Equal(img.Config.Entrypoint, []string{"/web"}) {
		t.Fatalf("with credentials: %+v, %v", img, err)
	}
	if asked != reg.Host() {
		t.Errorf("credentials asked for %q, want %q", asked, reg.Host())
	}
}

func TestConfigErrors(t *testing.T) {
	reg := registrytest.New(registrytest.Options{})
	t.Cleanup(reg.Close)
	ref, _ := reg.Push("berth/web", "1", registrytest.Image{Entrypoint: []string{"/web"}})
	ctx := context.Background()
	cl := &registry.Client{}
	for _, c := range []struct {
		ref, code string
		kind      error
	}{
		{reg.Host() + "/berth/web:2", "MANIFEST_UNKNOWN", registry.ErrNotFound},
		{reg.Host() + "/berth/nothing:1", "NAME_UNKNOWN", registry.ErrNotFound},
		{reg.Host() + "/berth/web@sha256:" + strings.Repeat("0", 64), "MANIFEST_UNKNOWN", registry.ErrNotFound},
		{"Not A Reference", "", registry.ErrInvalid},
	} {
		_, err := cl.Config(ctx, c.ref)
		var re *registry.Error
		if !errors.Is(err, c.kind) || !errors.As(err, &re) || re.Code != c.code {
			t.Errorf("Config(%q): %v, want %v with code %q", c.ref, err, c.kind, c.code)
		}
	}
	if _, err := cl.Digest(ctx, reg.Host()+"/berth/web:2"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Digest of a missing tag: %v, want ErrNotFound", err)
	}
	// A 503 is transient; the next try works.
	reg.FailNext(1)
	if _, err := cl.Config(ctx, ref); err == nil || registry.Permanent(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503: %v, want a transient error", err)
	}
	if _, err := cl.Config(ctx, ref); err != nil {
		t.Fatal(err)
	}
	// A blob whose content does not match its digest is refused.
	reg.CorruptBlob(reg.ConfigDigest("berth/web", "1"))
	if _, err := cl.Config(ctx, ref); !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("corrupt blob: %v, want ErrInvalid naming the digest", err)
	}
	// The wrong platform only: not found, naming what there is.
	ix, _ := reg.Push("berth/multi", "1", registrytest.Image{Entrypoint: []string{"/web"}, Index: true})
	arm := &registry.Client{Architecture: "s390x"}
	if _, err := arm.Config(ctx, ix); !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "linux/amd64") {
		t.Fatalf("no such platform: %v", err)
	}
	// A cancelled context stops the call.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cl.Config(cctx, ref); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestDigestTagMoved: a tag pushed again names a new digest; the old digest still reads the old configuration.
func TestDigestTagMoved(t *testing.T) {
	reg := registrytest.New(registrytest.Options{})
	t.Cleanup(reg.Close)
	ctx := context.Background()
	cl := &registry.Client{}
	ref, first := reg.Push("berth/web", "1", registrytest.Image{Entrypoint: []string{"/v1"}})
	if got, err := cl.Digest(ctx, ref); err != nil || got != first {
		t.Fatalf("Digest = %s, %v; want %s", got, err, first)
	}
	_, second := reg.Push("berth/web", "1", registrytest.Image{Entrypoint: []string{"/v2"}})
	if got, err := cl.Digest(ctx, ref); err != nil || got != second || got == first {
		t.Fatalf("after the tag moved: Digest = %s, %v; want %s", got, err, second)
	}
	img, err := cl.Config(ctx, reg.Host()+"/berth/web@"+first)
	if err != nil || !slices.Equal(img.Config.Entrypoint, []string{"/v1"}) {
		t.Fatalf("the old digest: %+v, %v", img, err)
	}
}
