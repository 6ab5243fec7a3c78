package swarm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/dockertest"
	"github.com/berth-dev/berth/providers/docker/registryauth"
	"github.com/berth-dev/berth/providers/registry/registrytest"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
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

// pushImage imports the example app with a layer of its own as reg's name:tag, pushes it with the test user's
// credential and removes it from the engine's store, so that a task needs a pull. It gives the tagged reference and
// the manifest's digest; the pulled copies go at cleanup (registered now, so after the sweep registered later).
func pushImage(t *testing.T, cli *client.Client, reg *registrytest.Distribution, name, tag, unique string) (ref, digest string) {
	t.Helper()
	ctx := context.Background()
	ref = reg.Host() + "/" + name + ":" + tag
	id, err := dockertest.ImportImage(ctx, cli, testAppPkg, ref, map[string][]byte{"unique": []byte(unique + "/" + ref)})
	if err != nil {
		t.Fatal(err)
	}
	digest, err = dockertest.PushImage(ctx, cli, ref, registry.AuthConfig{Username: registrytest.DistUser,
		Password: registrytest.DistPassword, ServerAddress: reg.Host()})
	if err != nil {
		t.Fatal(err)
	}
	if err := dockertest.RemoveImage(ctx, cli, id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dockertest.RemoveImage(context.Background(), cli, ref+"@"+digest)
		_ = dockertest.RemoveImage(context.Background(), cli, ref)
	})
	return ref, digest
}

// secretForms are the ways a password could show: as is (when long enough to search for), in base64, and inside
// the X-Registry-Auth value of the credential.
func secretForms(t *testing.T, a providers.RegistryAuth, ref string) []string {
	t.Helper()
	enc, err := registryauth.Encode(ref, &a)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{base64.StdEncoding.EncodeToString(a.Password), base64.URLEncoding.EncodeToString(a.Password),
		enc, `"password":"` + string(a.Password) + `"`}
	if len(a.Password) >= 8 {
		out = append(out, string(a.Password))
	}
	return out
}

// TestPullFromRegistry: the nodes pull a digest-pinned image and a tagged one from a registry with token
// authentication, with the credential given at create and update; the image reads back as berth wrote it (the
// manager's pin of a tag is no drift); a wrong password or none fails before the service changes, naming the
// image and never the password, and the old version keeps running.
func TestPullFromRegistry(t *testing.T) {
	reg := registrytest.StartDistribution(t)
	cli := swarmClient(t)
	testImages(t, cli)
	owner := testOwner(t)
	name := "berth-test/swarm-" + owner.Instance
	ref1, digest1 := pushImage(t, cli, reg, name, "v1", owner.Instance)
	ref2, digest2 := pushImage(t, cli, reg, name, "v2", owner.Instance)
	t.Cleanup(func() { sweep(t, cli, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()

	var logs syncBuffer
	p, err := berthswarm.NewWithClient(cli, schema.Target{Name: "swarm-it", Type: "swarm"}, providers.Options{
		Instance: owner.Instance, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval = 100 * time.Millisecond
	p.RetryBase, p.RetryMax = 10*time.Millisecond, 200*time.Millisecond
	p.UpdateMonitor = 500 * time.Millisecond
	t.Cleanup(func() { p.Close() })

	good := providers.RegistryAuth{Server: reg.Host(), Username: registrytest.DistUser, Password: []byte(registrytest.DistPassword)}
	bad := providers.RegistryAuth{Server: reg.Host(), Username: registrytest.DistUser, Password: []byte("wrong-pass-" + owner.Instance)}
	desired := func(image, greeting string, auth *providers.RegistryAuth) providers.Desired {
		w := workerWorkload("web")
		w.Image = image
		w.Env = map[string]string{"GREETING": greeting, "PORT": "8080"}
		return providers.Desired{Owner: owner, Target: "swarm-it", Workload: w, SpecHash: providers.SpecHash(w), ImageAuth: auth}
	}
	observe := func() providers.Observed {
		t.Helper()
		obs, err := p.List(ctx, owner, "swarm-it")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List: %+v, %v", obs, err)
		}
		return obs[0]
	}
	service := func() swarm.Service {
		t.Helper()
		svc, _, err := cli.ServiceInspectWithRaw(ctx, berthswarm.ServiceName(owner, "web"), swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}

	// v1 pinned by digest.
	v1 := desired(ref1+"@"+digest1, "v1", &good)
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatalf("Apply of %s with the credential: %v", v1.Workload.Image, err)
	}
	o := observe()
	if o.Spec.Image != v1.Workload.Image || o.SpecHash != v1.SpecHash || len(o.Replicas) != 1 || !o.Replicas[0].Ready() {
		t.Fatalf("after Apply of v1: image %q, %+v", o.Spec.Image, o)
	}
	if got, want := providers.SpecHash(o.Spec), providers.SpecHash(p.Normalize(v1.Workload)); got != want {
		t.Fatalf("v1 reads back as %+v, unlike the normalized desired %+v", o.Spec, p.Normalize(v1.Workload))
	}
	before := service().Version.Index
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if after := service().Version.Index; after != before {
		t.Fatalf("a repeated Apply updated the service (version %d to %d): the pinned image read back as drift", before, after)
	}

	// v2 with a wrong password, and without a credential: refused before the service changes.
	for _, c := range []struct {
		name string
		auth *providers.RegistryAuth
	}{{"wrong password", &bad}, {"anonymous", nil}} {
		v2 := desired(ref2+"@"+digest2, "v2", c.auth)
		actx, acancel := context.WithTimeout(ctx, testWait)
		err := p.Apply(actx, v2)
		acancel()
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), v2.Workload.Image) {
			t.Fatalf("%s: Apply of %s: %v, want an error naming the image", c.name, v2.Workload.Image, err)
		}
		if c.auth != nil && (!errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "unauthorized")) {
			t.Fatalf("%s: Apply: %v, want a permanent error saying unauthorized", c.name, err)
		}
		for _, s := range secretForms(t, bad, ref2) {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("%s: the error shows the password (as %q): %v", c.name, s, err)
			}
		}
		waitCond(t, ctx, "v1 to run alone again", func() (bool, error) {
			o := observe()
			return o.SpecHash == v1.SpecHash && len(o.Replicas) == 1 && o.Replicas[0].Ready() &&
				o.Replicas[0].SpecHash == v1.SpecHash && o.Spec.Image == v1.Workload.Image, nil
		})
	}

	// v2 by tag alone: the manager pins the tag's digest; it reads back as the tag, no drift.
	v2 := desired(ref2, "v2", &good)
	if err := p.Apply(ctx, v2); err != nil {
		t.Fatalf("Apply of %s: %v", ref2, err)
	}
	svc := service()
	if got := svc.Spec.TaskTemplate.ContainerSpec.Image; got != ref2+"@"+digest2 {
		t.Logf("the manager did not pin the tag: the service has %q", got)
	}
	o = observe()
	if o.Spec.Image != ref2 || o.SpecHash != v2.SpecHash || len(o.Replicas) != 1 || !o.Replicas[0].Ready() {
		t.Fatalf("after Apply of v2: image %q, %+v", o.Spec.Image, o)
	}
	before = svc.Version.Index
	if err := p.Apply(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if after := service().Version.Index; after != before {
		t.Fatalf("a repeated Apply updated the service (version %d to %d): the manager's pin read back as drift", before, after)
	}

	out := logs.String()
	for _, a := range []providers.RegistryAuth{good, bad} {
		for _, s := range secretForms(t, a, ref2) {
			if strings.Contains(out, s) {
				t.Fatalf("the provider's log shows a password (as %q):\n%s", s, out)
			}
		}
	}
}
