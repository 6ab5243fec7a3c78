package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/azure/keyvaultemu"
	"github.com/berth-dev/berth/schema"
)

const testVault = "berthtest"

// newProviderKV is newProvider with its Key Vault clients on kv (challenge authentication verified as in
// production: kv's Client dials the emulator for <vault>.vault.azure.net).
func newProviderKV(t testing.TB, emu *aciemu.Server, kv *keyvaultemu.Server) *azure.Provider {
	t.Helper()
	p := newProvider(t, emu)
	p.KeyVault = &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: kv.Client(),
		Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}}}
	return p
}

// secretDesired is the reference workload with GREETING from a Key Vault secret and /run/secrets/db from a SOPS one.
func secretDesired(kvVersion string, sopsValue string) providers.Desired {
	w := referenceWorkload("web")
	w.Replicas = 1
	delete(w.Env, "GREETING")
	w.SecretEnv = map[string]string{"GREETING": "greeting"}
	w.Files = map[string]schema.File{"/run/secrets/db": {Secret: "db"}}
	kvRef := schema.Secret{Name: "greeting", Azure: &schema.AzureSecret{Vault: testVault, Name: "greeting", Version: kvVersion}}
	secrets := map[string]providers.Secret{
		"greeting": {Name: "greeting", Source: kvRef, Fingerprint: "fp-ref-" + kvVersion[:min(4, len(kvVersion))]},
		"db": {Name: "db", Source: schema.Secret{Name: "db", SOPS: &schema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "password"}},
			Value: []byte(sopsValue), Fingerprint: "fp-sops-" + sopsValue[len(sopsValue)-1:]},
	}
	return providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: testTarget, Workload: w,
		SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
}

// TestSecretsDelivered: a Key Vault secret and a SOPS secret reach the container (a secureValue, a secret volume
// mounted at the file's directory); the read-back names them with their fingerprints and holds no value; an
// untouched workload reads back equal; no tag holds a value.
func TestSecretsDelivered(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	kv := keyvaultemu.New(keyvaultemu.Options{})
	t.Cleanup(kv.Close)
	const kvValue, sopsValue = "kv-secret-value-1", "sops-secret-value-1"
	ver := kv.SetSecret(testVault, "greeting", kvValue)
	p := newProviderKV(t, emu, kv)
	ctx := context.Background()
	d := secretDesired(ver, sopsValue)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	gs := emu.Groups()
	if len(gs) != 1 {
		t.Fatalf("%d groups, want 1", len(gs))
	}
	stored, _ := emu.Stored(testSub, testRG, gs[0].Name)
	c := stored.Properties.Containers[0].Properties
	var got string
	for _, e := range c.EnvironmentVariables {
		if *e.Name == "GREETING" {
			if e.Value != nil || e.SecureValue == nil {
				t.Fatalf("GREETING is not a secureValue: %+v", e)
			}
			got = *e.SecureValue
		}
	}
	if got != kvValue {
		t.Fatalf("GREETING = %q, want the Key Vault value", got)
	}
	if len(c.VolumeMounts) != 1 || *c.VolumeMounts[0].MountPath != "/run/secrets" || !*c.VolumeMounts[0].ReadOnly {
		t.Fatalf("mounts: %s", js(c.VolumeMounts))
	}
	vol := stored.Properties.Volumes[0]
	if v := vol.Secret["db"]; v == nil || *v != "c29wcy1zZWNyZXQtdmFsdWUtMQ==" {
		t.Fatalf("secret volume: %s", js(vol))
	}
	tags := js(gs[0].Tags)
	for _, v := range []string{kvValue, sopsValue, "c29wcy1zZWNyZXQtdmFsdWUtMQ"} {
		if strings.Contains(tags, v) {
			t.Fatalf("a tag holds a value: %s", tags)
		}
	}
	if !strings.Contains(tags, d.Secrets["greeting"].Fingerprint+"@"+ver) {
		t.Fatalf("the Key Vault version is not beside the fingerprint: %s", tags)
	}
	obs, err := p.List(ctx, d.Owner, testTarget)
	if err != nil || len(obs) != 1 {
		t.Fatalf("List: %v %v", obs, err)
	}
	o := obs[0]
	if b := js(o); strings.Contains(b, kvValue) || strings.Contains(b, sopsValue) {
		t.Fatalf("List reads a value back: %s", b)
	}
	want := map[string]string{"greeting": d.Secrets["greeting"].Fingerprint, "db": d.Secrets["db"].Fingerprint}
	if js(o.SecretFingerprints) != js(want) {
		t.Fatalf("fingerprints %v, want %v", o.SecretFingerprints, want)
	}
	norm := p.Normalize(providers.Normalize(d.Workload))
	norm.Replicas, norm.Provider = 1, testTarget
	if js(o.Spec) != js(norm) {
		t.Fatalf("read-back differs:\n got %s\nwant %s", js(o.Spec), js(norm))
	}
	if o.SpecHash != d.SpecHash {
		t.Fatalf("spec hash %s, want %s", o.SpecHash, d.SpecHash)
	}

	// Unpinned: the latest version is read at apply; a new version in the vault is picked up by the next apply,
	// which updates the group in place (same spec hash), and the tag names the new version.
	d2 := secretDesired("", sopsValue)
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatal(err)
	}
	v2 := kv.SetSecret(testVault, "greeting", "kv-secret-value-2")
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatal(err)
	}
	gs = emu.Groups()
	if len(gs) != 1 || !strings.Contains(js(gs[0].Tags), "@"+v2) {
		t.Fatalf("after a new version: %s", js(gs))
	}
	stored, _ = emu.Stored(testSub, testRG, gs[0].Name)
	if js(stored.Properties.Containers[0].Properties.EnvironmentVariables) == "" || !strings.Contains(js(stored), "kv-secret-value-2") {
		t.Fatal("the new version was not delivered")
	}
}

// TestKeyVaultDenied: a 403 from Key Vault fails the step at once (no retry storm), permanent, with Key Vault's
// words and the fix, and nothing running changes.
func TestKeyVaultDenied(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	kv := keyvaultemu.New(keyvaultemu.Options{})
	t.Cleanup(kv.Close)
	ver := kv.SetSecret(testVault, "greeting", "v1")
	p := newProviderKV(t, emu, kv)
	ctx := context.Background()
	if err := p.Apply(ctx, secretDesired(ver, "s1")); err != nil {
		t.Fatal(err)
	}
	before := js(emu.Groups())
	emu.ResetRequests()
	ver2 := kv.SetSecret(testVault, "greeting", "v2")
	kv.Deny(testVault, "GetSecret", "greeting")
	kv.ResetRequests()
	err := p.Apply(ctx, secretDesired(ver2, "s1"))
	switch {
	case err == nil:
		t.Fatal("Apply succeeded with Key Vault denying access")
	case !errors.Is(err, providers.ErrPermanent):
		t.Fatalf("not permanent: %v", err)
	case !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "Key Vault Secrets User") || !strings.Contains(err.Error(), "secret greeting"):
		t.Fatalf("error lacks Key Vault's status, the secret or the fix: %v", err)
	}
	t.Logf("error: %v", err)
	if n := kv.Count("GetSecret"); n != 1 {
		t.Fatalf("%d authorized GetSecret calls, want 1 (no retries of a 403)", n)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" {
			t.Fatalf("the failed step changed the runtime: %s %s", r.Method, r.Path)
		}
	}
	if after := js(emu.Groups()); after != before {
		t.Fatalf("groups changed:\n%s\n%s", before, after)
	}
}

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
		for _, v := range []string{goldenKVValue, goldenSOPSValue, "s3cret-value", b64(goldenSOPSValue), b64(goldenKVValue)} {
			if strings.Contains(string(b), v) {
				t.Fatalf("%s holds a secret value", f)
			}
		}
	}
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestKeyVaultTransientRetried: throttling and 5xx from Key Vault are retried to success.
func TestKeyVaultTransientRetried(t *testing.T) {
	for _, kind := range []keyvaultemu.Fault{keyvaultemu.Throttle, keyvaultemu.ServerError, keyvaultemu.Unavailable} {
		t.Run(string(kind), func(t *testing.T) {
			emu := aciemu.New(aciemu.Options{})
			t.Cleanup(emu.Close)
			kv := keyvaultemu.New(keyvaultemu.Options{})
			t.Cleanup(kv.Close)
			ver := kv.SetSecret(testVault, "greeting", "v1")
			p := newProviderKV(t, emu, kv)
			kv.Fail(6, kind) // more than the SDK's own 3 retries: the provider retries what escapes them
			if err := p.Apply(context.Background(), secretDesired(ver, "s1")); err != nil {
				t.Fatalf("Apply with %s faults: %v", kind, err)
			}
			if n := len(emu.Groups()); n != 1 {
				t.Fatalf("%d groups", n)
			}
		})
	}
}

// TestValidateSecretFiles: a secret file must sit in a directory ACI can mount a secret volume at.
func TestValidateSecretFiles(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	w := referenceWorkload("web")
	w.Files = map[string]schema.File{"/db": {Secret: "db"}, "/run/secrets/ok": {Secret: "db"}}
	w.SecretEnv = map[string]string{"bad-name": "db"}
	got := map[string]bool{}
	for _, pr := range p.Validate(w) {
		got[pr.Field] = true
	}
	if !got["files./db"] || got["files./run/secrets/ok"] || !got["env.bad-name"] {
		t.Fatalf("problems: %v", p.Validate(w))
	}
	c := p.Capabilities()
	if !c.SecretFiles || js(c.SecretKinds) != `["sops","azure"]` {
		t.Fatalf("capabilities: %+v", c)
	}
}
