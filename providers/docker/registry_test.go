package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	dregistry "github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/providers/registry/registrytest"
	"github.com/berth-dev/berth/schema"
)

// syncBuffer is a log sink safe for the provider's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pushed is an image of the example app with a layer of its own, pushed to reg with the test user's credential
// and then removed from the engine's store, so that running it needs a pull. It gives the tagged reference and the
// digest the registry stored. The pulled copies are removed at cleanup.
func pushed(t *testing.T, e *env, reg *registrytest.Distribution, name, tag string) (ref, digest string) {
	t.Helper()
	ctx := context.Background()
	ref = reg.Host() + "/" + name + ":" + tag
	id, err := dockertest.ImportImage(ctx, e.cli, appPkg, ref, map[string][]byte{"unique": []byte(e.owner.Instance + "/" + ref)})
	if err != nil {
		t.Fatal(err)
	}
	digest, err = dockertest.PushImage(ctx, e.cli, ref, dregistry.AuthConfig{Username: registrytest.DistUser,
		Password: registrytest.DistPassword, ServerAddress: reg.Host()})
	if err != nil {
		t.Fatal(err)
	}
	if err := dockertest.RemoveImage(ctx, e.cli, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ImageInspect(ctx, ref+"@"+digest); err == nil {
		t.Fatalf("%s@%s is still in the engine's store after its removal", ref, digest)
	}
	// Registered after newEnv's sweep, so it runs before it: containers still use the image then, hence Force.
	t.Cleanup(func() {
		_ = dockertest.RemoveImage(context.Background(), e.cli, ref+"@"+digest)
		_ = dockertest.RemoveImage(context.Background(), e.cli, ref)
	})
	return ref, digest
}

// secretForms are the ways a password could show in a log or an error: as is, in base64 (standard and URL), and
// inside the X-Registry-Auth value of the credential.
func secretForms(t *testing.T, a providers.RegistryAuth, ref string) []string {
	t.Helper()
	enc, err := encodeAuth(ref, &a)
	if err != nil {
		t.Fatal(err)
	}
	pw := string(a.Password)
	return []string{pw, base64.StdEncoding.EncodeToString(a.Password), base64.URLEncoding.EncodeToString(a.Password),
		enc, `"password":"` + pw + `"`}
}

func TestPullFromRegistry(t *testing.T) {
	reg := registrytest.StartDistribution(t)
	e := newEnv(t)
	var logs syncBuffer
	p, err := NewWithClient(e.cli, schema.Target{Name: e.target, Type: "docker",
		Settings: map[string]any{"publicAddress": "127.0.0.1"}},
		providers.Options{Instance: e.owner.Instance, Background: true,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e.p = p
	name := "berth-test/app-" + e.owner.Instance
	ref1, digest1 := pushed(t, e, reg, name, "v1")
	ref2, digest2 := pushed(t, e, reg, name, "v2")
	good := providers.RegistryAuth{Server: reg.Host(), Username: registrytest.DistUser, Password: []byte(registrytest.DistPassword)}
	bad := providers.RegistryAuth{Server: reg.Host(), Username: registrytest.DistUser, Password: []byte("wrong-pass-" + e.owner.Instance)}
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()

	// v1, pinned by digest, pulled with the credential.
	w1 := web(1, port, "v1")
	w1.Image = ref1 + "@" + digest1
	d1 := e.desired(w1)
	d1.ImageAuth = &good
	if err := p.Apply(ctx, d1); err != nil {
		t.Fatalf("Apply of %s with the credential: %v", w1.Image, err)
	}
	if got, err := get(freshClient, port); err != nil || !strings.HasPrefix(got, "v1 ") {
		t.Fatalf("GET after Apply of v1: %q, %v", got, err)
	}
	o := onlyWorkload(t, e.list())
	checkReady(t, o, d1.SpecHash, 1)
	if o.Spec.Image != w1.Image {
		t.Fatalf("Spec.Image reads %q, want %q as given", o.Spec.Image, w1.Image)
	}
	if got, want := liveHash(o.Spec), liveHash(p.Normalize(w1)); got != want {
		t.Fatalf("v1 reads back as %+v, unlike the normalized desired %+v", o.Spec, p.Normalize(w1))
	}
	first := o.Replicas[0].ID
	// A repeat is a no-op: the digest is in the store, nothing is pulled or replaced.
	if err := p.Apply(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if o := onlyWorkload(t, e.list()); o.Replicas[0].ID != first {
		t.Fatalf("a repeated Apply replaced the replica: %+v", o.Replicas)
	}

	// v2 with a wrong password, and anonymously: a permanent error naming the image; v1 keeps serving.
	for _, c := range []struct {
		name string
		auth *providers.RegistryAuth
	}{{"wrong password", &bad}, {"anonymous", nil}} {
		w2 := web(1, port, "v2")
		w2.Image = ref2 + "@" + digest2
		d2 := e.desired(w2)
		d2.ImageAuth = c.auth
		err := p.Apply(ctx, d2)
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), w2.Image) ||
			!strings.Contains(err.Error(), "unauthorized") {
			t.Fatalf("%s: Apply of %s: %v, want a permanent error naming the image and saying unauthorized", c.name, w2.Image, err)
		}
		t.Logf("%s: %v", c.name, err)
		for _, s := range secretForms(t, bad, ref2) {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("%s: the error shows the password (as %q): %v", c.name, s, err)
			}
		}
		o := onlyWorkload(t, e.list())
		if o.SpecHash != d1.SpecHash || len(o.Replicas) != 1 || o.Replicas[0].ID != first || !o.Replicas[0].Ready() {
			t.Fatalf("%s: after the failed pull: %+v, want v1's replica %s still ready", c.name, o, first)
		}
		if got, err := get(freshClient, port); err != nil || !strings.HasPrefix(got, "v1 ") {
			t.Fatalf("%s: GET after the failed pull: %q, %v", c.name, got, err)
		}
	}

	// v2 by tag alone, with the credential: a rollout.
	w2 := web(1, port, "v2")
	w2.Image = ref2
	d2 := e.desired(w2)
	d2.ImageAuth = &good
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatalf("Apply of %s: %v", ref2, err)
	}
	if got, err := get(freshClient, port); err != nil || !strings.HasPrefix(got, "v2 ") {
		t.Fatalf("GET after Apply of v2: %q, %v", got, err)
	}
	o = onlyWorkload(t, e.list())
	checkReady(t, o, d2.SpecHash, 1)
	if o.Spec.Image != ref2 {
		t.Fatalf("Spec.Image reads %q, want %q", o.Spec.Image, ref2)
	}

	out := logs.String()
	if !strings.Contains(out, "image pulled") {
		t.Fatalf("no pull was logged:\n%s", out)
	}
	for _, a := range []providers.RegistryAuth{good, bad} {
		for _, s := range secretForms(t, a, ref2)[1:] { // good's plain "pw" is too short to search for
			if strings.Contains(out, s) {
				t.Fatalf("the provider's log shows a password (as %q):\n%s", s, out)
			}
		}
	}
	if strings.Contains(out, string(bad.Password)) {
		t.Fatalf("the provider's log shows the wrong password:\n%s", out)
	}
}

func TestPullErrors(t *testing.T) {
	reg := registrytest.StartDistribution(t)
	e := newEnv(t)
	good := providers.RegistryAuth{Server: reg.Host(), Username: registrytest.DistUser, Password: []byte(registrytest.DistPassword)}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for _, c := range []struct {
		name, image string
		auth        *providers.RegistryAuth
		want        string
	}{
		{"unknown repository", reg.Host() + "/berth-test/none-" + e.owner.Instance + ":v1", &good, "not found"},
		{"unknown digest", reg.Host() + "/berth-test/none:v1@sha256:" + strings.Repeat("0", 64), &good, "not found"},
		{"credential of another registry", reg.Host() + "/berth-test/x:v1", &providers.RegistryAuth{Server: "ghcr.io",
			Username: "u", Password: []byte("other-registry-pass")}, "credential given is for ghcr.io"},
	} {
		w := web(1, freePort(t), "x")
		w.Image = c.image
		d := e.desired(w)
		d.ImageAuth = c.auth
		err := e.p.Apply(ctx, d)
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), c.image) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Apply: %v, want a permanent error naming %s and saying %q", c.name, err, c.image, c.want)
		}
		if err != nil && strings.Contains(err.Error(), string(c.auth.Password)) {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
	if cs := e.containers(); len(cs) != 0 {
		t.Fatalf("failed pulls left containers: %+v", cs)
	}
}
