package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/providers/registry/registrytest"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
	"github.com/berth-dev/berth/schema/secrets"
	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

// pulling is a fake provider whose runtime pulls images itself (Capabilities.PullsImages), recording the
// credentials each Apply was given.
type pulling struct {
	*fake.Provider
	mu     sync.Mutex
	auths  []*providers.RegistryAuth
	images []string
}

func (p *pulling) Capabilities() providers.Capabilities {
	c := p.Provider.Capabilities()
	c.PullsImages = true
	return c
}

func (p *pulling) Apply(ctx context.Context, d providers.Desired) error {
	p.mu.Lock()
	p.auths = append(p.auths, d.ImageAuth)
	p.images = append(p.images, d.Workload.Image)
	p.mu.Unlock()
	return p.Provider.Apply(ctx, d)
}

func (p *pulling) applied() ([]*providers.RegistryAuth, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*providers.RegistryAuth(nil), p.auths...), append([]string(nil), p.images...)
}

// pinWorld is an engine planning one workload, web, whose image is in a registry the configuration declares with
// a SOPS password.
type pinWorld struct {
	t     *testing.T
	reg   *registrytest.Server
	prov  *pulling
	eng   *Engine
	clock *fakeclock.Clock
	tree  fstest.MapFS
	logs  *bytes.Buffer
	enc   func(password string) *fstest.MapFile
}

const regPassword = "reg-pa55word-never-shown"

func newPinWorld(t *testing.T, mod func(*Options)) *pinWorld {
	t.Helper()
	reg := registrytest.New(registrytest.Options{User: "berth", Password: regPassword})
	t.Cleanup(reg.Close)
	id := sopstest.NewIdentity(t)
	dec, err := secrets.NewDecrypter(secrets.Options{}, id)
	if err != nil {
		t.Fatal(err)
	}
	w := &pinWorld{t: t, reg: reg, prov: &pulling{Provider: fake.New()}, clock: fakeclock.New(t0), logs: &bytes.Buffer{}}
	w.enc = func(password string) *fstest.MapFile {
		return &fstest.MapFile{Data: sopstest.MustEncrypt(t, []byte("password: "+password+"\n"), sopstest.Options{}, id.Recipient())}
	}
	w.tree = fstest.MapFS{"secrets/reg.enc.yaml": w.enc(regPassword)}
	w.eng = newTestEngine(t, nil, func(o *Options) {
		o.Providers = func(schema.Target, providers.Options) (providers.Provider, error) { return w.prov, nil }
		o.Secrets = &Secrets{Decrypter: dec, Key: dec.FingerprintKey()}
		o.Clock = clockAdapter{w.clock}
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: w.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if mod != nil {
			mod(o)
		}
	})
	return w
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// config is web (and worker, from an undeclared registry) in prod, the registry declared with its password.
func (w *pinWorld) config(image string) *schema.Config {
	web := wl("web", "local", image, 2)
	web.Pos = map[string]schema.Pos{"": {File: "berth.cue", Line: 7, Column: 2}, "image": {File: "berth.cue", Line: 8, Column: 12}}
	cfg := config([]string{"local"}, web, wl("worker", "local", "app:1", 1))
	ev := cfg.Environments["prod"]
	ev.Secrets = map[string]schema.Secret{"reg": {Name: "reg", Pos: schema.Pos{File: "berth.cue", Line: 3, Column: 13},
		SOPS: &schema.SOPSSecret{File: "secrets/reg.enc.yaml", Key: "password"}}}
	cfg.Environments["prod"] = ev
	cfg.Root = w.tree
	cfg.Registries = map[string]schema.Registry{w.reg.Host(): {Host: w.reg.Host(), Username: "berth", Password: "reg",
		Pos: map[string]schema.Pos{"": {File: "berth.cue", Line: 12, Column: 13}, "password.secret": {File: "berth.cue", Line: 14, Column: 12}}}}
	return cfg
}

// plan runs Plan while firing the clock's timers (the registry retries' backoff), so that nothing sleeps.
func (w *pinWorld) plan(cfg *schema.Config) (*Plan, error) {
	type result struct {
		p   *Plan
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := w.eng.Plan(context.Background(), cfg, "prod", "r1")
		done <- result{p, err}
	}()
	for {
		select {
		case r := <-done:
			return r.p, r.err
		default:
		}
		if next, ok := w.clock.Next(); ok {
			w.clock.Set(next)
			w.clock.FireDue()
			continue
		}
		select {
		case r := <-done:
			return r.p, r.err
		case <-w.clock.Added():
		}
	}
}

// shown is everything a plan, a log and an error show, for searching.
func (w *pinWorld) shown(p *Plan, errs ...error) string {
	var b strings.Builder
	if p != nil {
		j, _ := json.Marshal(p)
		b.WriteString(p.String())
		b.Write(j)
	}
	for _, err := range errs {
		if err != nil {
			b.WriteString(err.Error())
		}
	}
	b.WriteString(w.logs.String())
	return b.String()
}

func (w *pinWorld) noPassword(p *Plan, errs ...error) {
	w.t.Helper()
	if s := w.shown(p, errs...); strings.Contains(s, regPassword) || strings.Contains(s, "cmVnLXBhNTV3b3Jk") {
		w.t.Errorf("the registry password is shown:\n%s", s)
	}
}

// TestPinnedImage: a tag of a declared registry is pinned to the digest of the index it names, with the
// credentials of the SOPS secret; the pinned reference is what is hashed, shown, applied and read back; the
// runtime that pulls gets the credentials; the undeclared registry's image is left as written.
func TestPinnedImage(t *testing.T) {
	w := newPinWorld(t, nil)
	ref, digest := w.reg.Push("app", "v1", registrytest.Image{Cmd: []string{"serve"}, Index: true})
	cfg := w.config(ref)
	p, err := w.plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pinned := ref + "@" + digest
	if len(p.Images) != 1 || p.Images[0] != (PinnedImage{Workload: "web", Target: "local", Image: ref, Pinned: pinned, Digest: digest}) {
		t.Fatalf("Images = %+v, want web pinned to %s", p.Images, pinned)
	}
	line := fmt.Sprintf("web: image %s → %s… (pinned)", ref, digest[:len("sha256:")+12])
	if !strings.Contains(p.String(), line) {
		t.Errorf("the plan has no line %q:\n%s", line, p)
	}
	var web Step
	for _, s := range p.Steps {
		if s.Workload == "web" {
			web = s
		}
		if s.Workload == "worker" && s.Image != "" {
			t.Errorf("worker's image of an undeclared registry is pinned: %+v", s)
		}
	}
	want := wl("web", "local", pinned, 2)
	want.Pos = cfg.Environments["prod"].Workloads[0].Pos
	if web.Image != pinned || web.SpecHash != providers.DesiredHash(want, nil) {
		t.Errorf("web's step = %+v, want image %s and the hash of the pinned workload", web, pinned)
	}
	if j, _ := json.Marshal(p); !strings.Contains(string(j), `"image":"`+pinned+`"`) {
		t.Errorf("the plan's JSON has no pinned image:\n%s", j)
	}
	if _, err := w.eng.Apply(context.Background(), cfg, p); err != nil {
		t.Fatal(err)
	}
	auths, images := w.prov.applied()
	for i, im := range images {
		switch {
		case im == pinned:
			if a := auths[i]; a == nil || a.Server != w.reg.Host() || a.Username != "berth" || string(a.Password) != regPassword {
				t.Errorf("web applied with credentials %v, want the registry's", a)
			}
		case im == "app:1":
			if auths[i] != nil {
				t.Errorf("worker (an undeclared registry) applied with credentials %v", auths[i])
			}
		default:
			t.Errorf("applied image %s, want %s or app:1", im, pinned)
		}
	}
	if len(images) != 2 {
		t.Errorf("applied %v, want web and worker", images)
	}
	if w.reg.Requests("GET /token") == 0 {
		t.Error("the registry's token endpoint was never asked")
	}
	again, err := w.plan(cfg)
	if err != nil || !again.Empty() {
		t.Fatalf("plan after the apply (%v):\n%s", err, again)
	}
	if st, _ := w.eng.Capabilities(cfg, "local"); !st.PullsImages {
		t.Fatal("the test provider does not pull")
	}
	w.noPassword(p)
	w.noPassword(again)
	if redact.String("pw "+regPassword) != "pw "+redact.Mask {
		t.Error("the registry password is not registered for redaction")
	}
}

// TestNewRegistryClient: each declared host gets its own credentials; plain HTTP goes to loopback and insecure
// hosts only.
func TestNewRegistryClient(t *testing.T) {
	c := NewRegistryClient(map[string]RegistryAccess{
		"reg.example:5000": {Host: "reg.example:5000", Insecure: true},
		"ghcr.io":          {Host: "ghcr.io", Username: "me", Password: []byte("pw-of-ghcr")},
	})
	for host, want := range map[string]bool{"reg.example:5000": true, "ghcr.io": false, "127.0.0.1:5000": true, "other.example": false} {
		if got := c.PlainHTTP(host); got != want {
			t.Errorf("PlainHTTP(%s) = %v, want %v", host, got, want)
		}
	}
	if u, p := c.Credentials("ghcr.io"); u != "me" || p != "pw-of-ghcr" {
		t.Errorf("Credentials(ghcr.io) = %s, %s", u, p)
	}
	if u, p := c.Credentials("reg.example:5000"); u != "" || p != "" {
		t.Errorf("Credentials(reg.example:5000) = %s, %s; want anonymous", u, p)
	}
}

// TestPinnedTagMoved: a tag moved between plan and apply makes the apply refuse the plan as stale, touching
// nothing; the next plan updates to the new digest.
func TestPinnedTagMoved(t *testing.T) {
	w := newPinWorld(t, nil)
	ref, first := w.reg.Push("app", "v1", registrytest.Image{Cmd: []string{"one"}})
	cfg := w.config(ref)
	p, err := w.plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Apply(context.Background(), cfg, p); err != nil {
		t.Fatal(err)
	}
	_, second := w.reg.Push("app", "v1", registrytest.Image{Cmd: []string{"two"}})
	if second == first {
		t.Fatal("the push did not move the tag")
	}
	// A plan made before the move, of a change elsewhere, is applied after it.
	cfg2 := w.config(ref)
	ev := cfg2.Environments["prod"]
	ev.Workloads[0].Replicas = 3
	cfg2.Environments["prod"] = ev
	w.reg.Push("app", "v1", registrytest.Image{Cmd: []string{"one"}})
	stale, err := w.plan(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	w.reg.Push("app", "v1", registrytest.Image{Cmd: []string{"two"}})
	_, before := w.prov.applied()
	res, err := w.eng.Apply(context.Background(), cfg2, stale)
	if !errors.Is(err, ErrStalePlan) || res != nil {
		t.Fatalf("Apply after the tag moved = %v, %v; want ErrStalePlan", res, err)
	}
	if !strings.Contains(err.Error(), ref+"@"+first) || !strings.Contains(err.Error(), ref+"@"+second) {
		t.Errorf("the error does not name both digests: %v", err)
	}
	if _, after := w.prov.applied(); len(after) != len(before) {
		t.Errorf("a stale plan applied %v", after[len(before):])
	}
	next, err := w.plan(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Steps) != 1 || next.Steps[0].Reason != "spec changed" || next.Steps[0].Image != ref+"@"+second {
		t.Fatalf("replan:\n%s", next)
	}
	if c, ok := changeNamed(next.Steps[0], "image"); !ok || c.New != `"`+ref+"@"+second+`"` {
		t.Errorf("image change = %+v", c)
	}
	w.noPassword(next, err)
}

// TestPinProblems: a missing tag, a missing repository, a missing digest and refused credentials are problems at
// the workload's image that block the plan and delete nothing.
func TestPinProblems(t *testing.T) {
	for _, c := range []struct {
		name, image string
		password    string
		want        string
	}{
		{"tag", "app:v9", regPassword, "is not in its registry"},
		{"repository", "nope:v1", regPassword, "is not in its registry"},
		{"digest", "app@sha256:" + strings.Repeat("0", 64), regPassword, "is not in its registry"},
		{"credentials", "app:v1", "wrong-password", "refuses berth's credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newPinWorld(t, nil)
			ref, _ := w.reg.Push("app", "v1", registrytest.Image{})
			cfg := w.config(ref)
			p, err := w.plan(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.eng.Apply(context.Background(), cfg, p); err != nil {
				t.Fatal(err)
			}
			w.tree["secrets/reg.enc.yaml"] = w.enc(c.password)
			cfg = w.config(w.reg.Host() + "/" + c.image)
			p, err = w.plan(cfg)
			if err != nil {
				t.Fatalf("a %s problem is an error of the pass: %v", c.name, err)
			}
			if len(p.Problems) != 1 || p.Problems[0].Field != "image" || p.Problems[0].Workload != "web" ||
				p.Problems[0].Pos.Line != 8 || !strings.Contains(p.Problems[0].Message, c.want) {
				t.Fatalf("problems = %+v, want one at web's image (line 8) saying %q", p.Problems, c.want)
			}
			if !p.Blocked() {
				t.Fatal("the plan is not blocked")
			}
			for _, s := range p.Steps {
				if s.Action == ActionDelete {
					t.Errorf("the plan deletes: %s", s)
				}
				if s.Workload == "web" && (s.Error == "" || s.SpecHash != "") {
					t.Errorf("web's step touches it: %+v", s)
				}
			}
			_, err = w.eng.Apply(context.Background(), cfg, p)
			if !errors.Is(err, ErrBlocked) {
				t.Errorf("Apply = %v, want ErrBlocked", err)
			}
			w.noPassword(p, err)
			if strings.Contains(w.shown(p), "wrong-password") {
				t.Error("the wrong password is shown")
			}
		})
	}
}

// TestPinTransient: a registry's 5xx is tried again with backoff (no problem, no change); one that outlasts the
// attempts is the error of the pass.
func TestPinTransient(t *testing.T) {
	w := newPinWorld(t, nil)
	ref, digest := w.reg.Push("app", "v1", registrytest.Image{})
	cfg := w.config(ref)
	w.reg.FailNext(DefaultRegistryAttempts - 1)
	p, err := w.plan(cfg)
	if err != nil || len(p.Problems) > 0 || len(p.Images) != 1 || p.Images[0].Digest != digest {
		t.Fatalf("plan through %d failures: %v\n%s", DefaultRegistryAttempts-1, err, p)
	}
	heads := w.reg.Requests("HEAD /v2/app/manifests/v1")
	w.reg.FailNext(DefaultRegistryAttempts)
	p, err = w.plan(cfg)
	if err == nil || p != nil || registry.Permanent(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("plan through %d failures = %v, %v; want a transient error", DefaultRegistryAttempts, p, err)
	}
	if n := w.reg.Requests("HEAD /v2/app/manifests/v1") - heads; n != DefaultRegistryAttempts {
		t.Errorf("%d attempts, want %d", n, DefaultRegistryAttempts)
	}
	w.noPassword(nil, err)
}

// resolverFunc is an ImageResolver of a test.
type resolverFunc func(ctx context.Context, ref string) (string, error)

func (f resolverFunc) Digest(ctx context.Context, ref string) (string, error) { return f(ctx, ref) }

// TestPinResolverOption: the injected resolver is built with the declared registries' access (the password
// resolved), once while it does not change; it is never asked about an undeclared registry; rotating the
// registry password rolls no workload.
func TestPinResolverOption(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	var mu sync.Mutex
	var built []map[string]RegistryAccess
	var asked []string
	w := newPinWorld(t, func(o *Options) {
		o.Registry = func(access map[string]RegistryAccess) ImageResolver {
			mu.Lock()
			built = append(built, access)
			mu.Unlock()
			return resolverFunc(func(_ context.Context, ref string) (string, error) {
				mu.Lock()
				asked = append(asked, ref)
				mu.Unlock()
				return digest, nil
			})
		}
	})
	cfg := w.config(w.reg.Host() + "/app:v1")
	p, err := w.plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Apply(context.Background(), cfg, p); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(built) != 1 || string(built[0][w.reg.Host()].Password) != regPassword || built[0][w.reg.Host()].Username != "berth" {
		t.Errorf("resolvers built with %v, want one with the registry's credentials", built)
	}
	for _, a := range asked {
		if a != w.reg.Host()+"/app:v1" {
			t.Errorf("the resolver was asked about %s", a)
		}
	}
	if s := fmt.Sprintf("%v %+v", built[0], built[0][w.reg.Host()]); strings.Contains(s, regPassword) {
		t.Errorf("RegistryAccess formats its password: %s", s)
	}
	mu.Unlock()
	w.tree["secrets/reg.enc.yaml"] = w.enc("a-rotated-password")
	again, err := w.plan(cfg)
	if err != nil || !again.Empty() {
		t.Fatalf("a rotated registry password changes the plan (%v):\n%s", err, again)
	}
	mu.Lock()
	if len(built) != 2 || string(built[1][w.reg.Host()].Password) != "a-rotated-password" {
		t.Errorf("after the rotation, resolvers built with %v", built)
	}
	mu.Unlock()
}

// TestPinNoRegistries: without a registries section nothing is looked up and images are as written.
func TestPinNoRegistries(t *testing.T) {
	called := false
	w := newPinWorld(t, func(o *Options) {
		o.Registry = func(map[string]RegistryAccess) ImageResolver {
			return resolverFunc(func(context.Context, string) (string, error) { called = true; return "", errors.New("no") })
		}
	})
	cfg := w.config(w.reg.Host() + "/app:v1")
	cfg.Registries = nil
	p, err := w.plan(cfg)
	if err != nil || len(p.Images) != 0 || called {
		t.Fatalf("plan = %v, images %v, resolver called %v", err, p.Images, called)
	}
	for _, s := range p.Steps {
		if s.Image != "" {
			t.Errorf("step pinned: %+v", s)
		}
	}
}

// TestPinAgainstDistribution resolves a pushed image's digest on the real distribution server, through its token
// challenge, with the credentials of a SOPS secret.
func TestPinAgainstDistribution(t *testing.T) {
	d := registrytest.StartDistribution(t)
	w := newPinWorld(t, nil)
	_, digest := d.Push(t, "berth/web", "v1", registrytest.Image{Cmd: []string{"serve"}})
	w.tree["secrets/reg.enc.yaml"] = w.enc(registrytest.DistPassword)
	ref := d.Host() + "/berth/web:v1"
	cfg := w.config(ref)
	cfg.Registries = map[string]schema.Registry{d.Host(): {Host: d.Host(), Username: registrytest.DistUser, Password: "reg"}}
	p, err := w.plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 1 || p.Images[0].Pinned != ref+"@"+digest {
		t.Fatalf("Images = %+v, want %s@%s\n%s", p.Images, ref, digest, p)
	}
	if _, err := w.eng.Apply(context.Background(), cfg, p); err != nil {
		t.Fatal(err)
	}
	if auths, _ := w.prov.applied(); len(auths) == 0 {
		t.Fatal("nothing applied")
	}
}

// TestPinByDigest: a reference by digest is checked to exist and kept as written; tag and digest together keep
// both.
func TestPinByDigest(t *testing.T) {
	w := newPinWorld(t, nil)
	ref, digest := w.reg.Push("app", "v1", registrytest.Image{OCI: true})
	byDigest := w.reg.Host() + "/app@" + digest
	for _, image := range []string{byDigest, ref + "@" + digest} {
		p, err := w.plan(w.config(image))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Problems) > 0 || len(p.Images) != 1 || p.Images[0].Pinned != image || p.Images[0].Digest != digest {
			t.Errorf("%s: images %+v, problems %v", image, p.Images, p.Problems)
		}
	}
	if n := w.reg.Requests("HEAD /v2/app/manifests/" + digest); n < 2 {
		t.Errorf("the digest was checked %d times, want each plan to check it", n)
	}
}
