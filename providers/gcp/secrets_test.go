package gcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/option"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/providers/gcp/secretmanageremu"
	"github.com/berth-dev/berth/schema"
)

// withSecretManager starts a Secret Manager emulator for emu's project and points target at it.
func withSecretManager(t *testing.T, emu *computeemu.Server, target schema.Target) (*secretmanageremu.Server, schema.Target) {
	t.Helper()
	sm := secretmanageremu.New(secretmanageremu.Options{Projects: map[string]int64{emu.Project(): 424242}})
	t.Cleanup(sm.Close)
	settings := map[string]any{}
	for k, v := range target.Settings {
		settings[k] = v
	}
	settings["secretManagerEndpoint"] = sm.URL()
	target.Settings = settings
	return sm, target
}

// secretDesired is the reference workload with GREETING from Secret Manager (version given, or latest) and
// DB_PASSWORD from a SOPS value.
func secretDesired(t *testing.T, emu *computeemu.Server, version, sopsValue string) providers.Desired {
	t.Helper()
	w := referenceWorkload("web")
	w.Replicas = 2
	delete(w.Env, "GREETING")
	w.SecretEnv = map[string]string{"GREETING": "greeting", "DB_PASSWORD": "db"}
	ref := schema.Secret{Name: "greeting", GCP: &schema.GCPSecret{Name: "projects/" + emu.Project() + "/secrets/greeting", Version: version}}
	secrets := map[string]providers.Secret{
		"greeting": {Name: "greeting", Source: ref, Fingerprint: "fp-ref-" + version},
		"db": {Name: "db", Source: schema.Secret{Name: "db", SOPS: &schema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "password"}},
			Value: []byte(sopsValue), Fingerprint: "fp-sops-" + sopsValue[len(sopsValue)-1:]},
	}
	return providers.Desired{Owner: owner, Target: "gce", Workload: w, SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
}

// currentTemplate reads the group's current template through the SDK.
func currentTemplate(ctx context.Context, t *testing.T, h *hand, workload string) *computepb.InstanceTemplate {
	t.Helper()
	tp, err := h.current(ctx, workload)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func (h *hand) current(ctx context.Context, workload string) (*computepb.InstanceTemplate, error) {
	g, err := h.groups.Get(ctx, &computepb.GetRegionInstanceGroupManagerRequest{Project: h.project, Region: h.region,
		InstanceGroupManager: gcp.GroupName(h.owner, workload)})
	if err != nil {
		return nil, err
	}
	ref := g.GetInstanceTemplate()
	if vs := g.GetVersions(); len(vs) > 0 {
		ref = vs[0].GetInstanceTemplate()
	}
	return h.templates.Get(ctx, &computepb.GetInstanceTemplateRequest{Project: h.project, InstanceTemplate: ref[strings.LastIndex(ref, "/")+1:]})
}

func declaration(tp *computepb.InstanceTemplate) string {
	for _, it := range tp.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() == "gce-container-declaration" {
			return it.GetValue()
		}
	}
	return ""
}

// outsideDeclaration is everything of a template but the container declaration's value: where the value must
// never be.
func outsideDeclaration(tp *computepb.InstanceTemplate) string {
	c := *tp.GetProperties()
	var items []*computepb.Items
	for _, it := range c.GetMetadata().GetItems() {
		if it.GetKey() != "gce-container-declaration" {
			items = append(items, it)
		}
	}
	b, _ := json.Marshal(map[string]any{"name": tp.GetName(), "description": tp.GetDescription(), "labels": c.GetLabels(),
		"tags": c.GetTags(), "items": items})
	return string(b)
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestSecretsDelivered: a Secret Manager secret and a SOPS secret reach the container declaration (the only path
// Container-Optimized OS has); labels, description and the other metadata hold no value; the read-back names them
// with fingerprints and holds no value; an untouched workload reads back equal; a new latest version is a new
// template and a rolling update at the next apply.
func TestSecretsDelivered(t *testing.T) {
	emu, target := emulated(t)
	sm, target := withSecretManager(t, emu, target)
	const smValue, sopsValue = "sm-secret-value-1", "sops-secret-value-1"
	if _, err := sm.AddVersion("projects/"+emu.Project()+"/secrets/greeting", []byte(smValue)); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, target)
	h := byHand(t, emu, owner, option.WithAuthCredentialsFile(option.ServiceAccount, target.Settings["credentialsFile"].(string)))
	d := secretDesired(t, emu, "1", sopsValue)
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	tp := currentTemplate(ctx(t), t, h, "web")
	if decl := declaration(tp); !strings.Contains(decl, `"GREETING"`+"\n      value: "+`"`+smValue+`"`) || !strings.Contains(decl, sopsValue) {
		t.Fatalf("the values are not in the container declaration:\n%s", decl)
	}
	out := outsideDeclaration(tp)
	for _, v := range []string{smValue, sopsValue} {
		if strings.Contains(out, v) {
			t.Fatalf("a value is outside the container declaration: %s", out)
		}
	}
	if !strings.Contains(out, "projects/424242/secrets/greeting/versions/1") || !strings.Contains(out, d.Secrets["greeting"].Fingerprint) {
		t.Fatalf("the secrets metadata lacks the version or fingerprint: %s", out)
	}
	o := observed(t, p, func(providers.Observed) bool { return true })
	if b := js(o); strings.Contains(b, smValue) || strings.Contains(b, sopsValue) {
		t.Fatalf("List reads a value back: %s", b)
	}
	want := map[string]string{"greeting": d.Secrets["greeting"].Fingerprint, "db": d.Secrets["db"].Fingerprint}
	if js(o.SecretFingerprints) != js(want) {
		t.Fatalf("fingerprints %v, want %v", o.SecretFingerprints, want)
	}
	norm := p.Normalize(providers.Normalize(d.Workload))
	norm.Provider = ""
	if js(o.Spec) != js(norm) || o.SpecHash != d.SpecHash || len(o.Missing) != 0 {
		t.Fatalf("read-back differs:\n got %s %s %v\nwant %s %s", js(o.Spec), o.SpecHash, o.Missing, js(norm), d.SpecHash)
	}

	// latest: read at apply; a new version is a new template (same spec hash) and the group rolls to it.
	d = secretDesired(t, emu, "latest", sopsValue)
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	first := currentTemplate(ctx(t), t, h, "web").GetName()
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	if again := currentTemplate(ctx(t), t, h, "web").GetName(); again != first {
		t.Fatalf("an apply without a new version changed the template: %s → %s", first, again)
	}
	if _, err := sm.AddVersion("projects/"+emu.Project()+"/secrets/greeting", []byte("sm-secret-value-2")); err != nil {
		t.Fatal(err)
	}
	// List tells (GetSecretVersion, no value read): the fingerprint differs from the desired one, so the plan
	// shows the secret changed and applies.
	o = observed(t, p, func(providers.Observed) bool { return true })
	if o.SecretFingerprints["greeting"] == d.Secrets["greeting"].Fingerprint {
		t.Fatalf("a new latest version is not seen by List: %v", o.SecretFingerprints)
	}
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	tp = currentTemplate(ctx(t), t, h, "web")
	if tp.GetName() == first || !strings.Contains(declaration(tp), "sm-secret-value-2") {
		t.Fatalf("the new version did not roll: %s\n%s", tp.GetName(), declaration(tp))
	}
	if ts := emu.Templates(); len(ts) != 1 {
		t.Fatalf("old templates not pruned: %v", ts)
	}
	o = observed(t, p, func(providers.Observed) bool { return true })
	if len(o.Missing) != 0 || o.SpecHash != d.SpecHash || o.SecretFingerprints["greeting"] != d.Secrets["greeting"].Fingerprint {
		t.Fatalf("List after the rotation: %+v", o)
	}
}

// TestSecretManagerDenied: PERMISSION_DENIED fails the step at once (one call, no retry storm), permanent, with
// Secret Manager's words and the fix, and nothing running changes.
func TestSecretManagerDenied(t *testing.T) {
	emu, target := emulated(t)
	sm, target := withSecretManager(t, emu, target)
	name := "projects/" + emu.Project() + "/secrets/greeting"
	if _, err := sm.AddVersion(name, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, target)
	if err := p.Apply(ctx(t), secretDesired(t, emu, "1", "s1")); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.AddVersion(name, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	sm.Deny("AccessSecretVersion", name)
	sm.ResetRequests()
	emu.ResetRequests()
	before := emu.Templates()
	err := p.Apply(ctx(t), secretDesired(t, emu, "2", "s1"))
	switch {
	case err == nil:
		t.Fatal("Apply succeeded with Secret Manager denying access")
	case !errors.Is(err, providers.ErrPermanent):
		t.Fatalf("not permanent: %v", err)
	case !strings.Contains(err.Error(), "PERMISSION_DENIED") || !strings.Contains(err.Error(), "secretmanager.versions.access") ||
		!strings.Contains(err.Error(), "roles/secretmanager.secretAccessor") || !strings.Contains(err.Error(), "secret greeting"):
		t.Fatalf("error lacks Secret Manager's words, the secret or the fix: %v", err)
	}
	t.Logf("error: %v", err)
	if n := sm.Count("AccessSecretVersion"); n != 1 {
		t.Fatalf("%d AccessSecretVersion calls, want 1", n)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" {
			t.Fatalf("the failed step changed the runtime: %s %s", r.Method, r.Path)
		}
	}
	if after := emu.Templates(); js(after) != js(before) {
		t.Fatalf("templates changed: %v → %v", before, after)
	}
}

// TestGoldenSecrets pins the secret mapping: values in the container declaration (replaced by a placeholder
// here), names, fingerprints and versions in the berth-secrets metadata.
func TestGoldenSecrets(t *testing.T) {
	emu, target := emulated(t)
	sm, target := withSecretManager(t, emu, target)
	if _, err := sm.AddVersion("projects/"+emu.Project()+"/secrets/greeting", []byte(goldenSMValue)); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, target)
	if err := p.Apply(ctx(t), secretDesired(t, emu, "1", goldenSOPSValue)); err != nil {
		t.Fatal(err)
	}
	got := normalise(emu.Requests())
	for _, v := range []string{goldenSMValue, goldenSOPSValue} {
		got = strings.ReplaceAll(got, v, "<secret value>")
	}
	golden(t, "secrets", got)
}

const goldenSMValue, goldenSOPSValue = "golden-secret-manager-value", "golden-sops-value"

// TestGoldenHasNoSecret: no golden file of this package holds a value the tests deliver.
func TestGoldenHasNoSecret(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.golden")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{goldenSMValue, goldenSOPSValue, "sm-secret-value", "sops-secret-value", "conformance-secret-value"} {
			if strings.Contains(string(b), v) {
				t.Fatalf("%s holds a secret value", f)
			}
		}
	}
}

// TestSecretManagerTransientRetried: RESOURCE_EXHAUSTED, INTERNAL and UNAVAILABLE are retried to success.
func TestSecretManagerTransientRetried(t *testing.T) {
	for _, kind := range []secretmanageremu.Fault{secretmanageremu.Throttle, secretmanageremu.ServerError, secretmanageremu.Unavailable} {
		t.Run(string(kind), func(t *testing.T) {
			emu, target := emulated(t)
			sm, target := withSecretManager(t, emu, target)
			if _, err := sm.AddVersion("projects/"+emu.Project()+"/secrets/greeting", []byte("v1")); err != nil {
				t.Fatal(err)
			}
			p := newProvider(t, target)
			sm.Fail(3, kind)
			if err := p.Apply(ctx(t), secretDesired(t, emu, "1", "s1")); err != nil {
				t.Fatalf("Apply with %s faults: %v", kind, err)
			}
			if n := sm.Count("AccessSecretVersion"); n != 4 {
				t.Fatalf("%d AccessSecretVersion calls, want 4", n)
			}
		})
	}
}

// TestSecretCapabilities: SOPS and Secret Manager secrets, as env values only.
func TestSecretCapabilities(t *testing.T) {
	emu, target := emulated(t)
	c := newProvider(t, target).Capabilities()
	_ = emu
	if c.SecretFiles || js(c.SecretKinds) != `["sops","gcp"]` {
		t.Fatalf("capabilities: %+v", c)
	}
}
