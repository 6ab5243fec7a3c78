package azure_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/azure/keyvaultemu"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGoldenRequests pins the exact mutating requests berth sends for the reference workload: on create, then on a
// rollout to a new image (make before break: each new group is created before the old one of its index goes).
func TestGoldenRequests(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	owner := providers.Owner{Instance: "golden", Environment: "prod"}
	w := referenceWorkload("web")
	w.Env["API_TOKEN"] = "s3cret-value"
	ctx := context.Background()

	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "create.golden", emu.Requests())
	emu.ResetRequests()

	w.Image = "ghcr.io/berth-dev/quickstart:2"
	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "rollout.golden", emu.Requests())
}

const goldenKVValue, goldenSOPSValue = "golden-key-vault-value", "golden-sops-value"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestGoldenSecrets pins the native secret mapping: a Key Vault secret and a SOPS secret as secureValue
// environment variables, a SOPS secret as a file in a secret volume mounted at its directory, and the tags naming
// them with fingerprints (and the Key Vault version berth read). Clear values are replaced before comparing.
func TestGoldenSecrets(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	kv := keyvaultemu.New(keyvaultemu.Options{})
	t.Cleanup(kv.Close)
	ver := kv.SetSecret(testVault, "greeting", goldenKVValue)
	p := newProviderKV(t, emu, kv)
	d := secretDesired(ver, goldenSOPSValue)
	d.Owner = providers.Owner{Instance: "golden", Environment: "prod"}
	d.Workload.SecretEnv["DB_PASSWORD"] = "db"
	g := d.Secrets["greeting"]
	g.Fingerprint = "fp-ref-golden" // the version is random per run: the golden file must not depend on it
	d.Secrets["greeting"] = g
	d.SpecHash = providers.DesiredHash(d.Workload, d.Secrets)
	if err := p.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	var reqs []aciemu.Request
	for _, r := range emu.Requests() {
		r.Body = []byte(versionID.ReplaceAllString(string(r.Body), "@<version>"))
		reqs = append(reqs, r)
	}
	checkGolden(t, "secrets.golden", reqs)
}

// versionID is a Key Vault version beside a fingerprint: random per run.
var versionID = regexp.MustCompile(`@[0-9a-f]{32}`)

// checkGolden renders the mutating requests (PUT, DELETE) as "METHOD path" plus the body with sorted keys, secure
// values replaced, and compares with testdata/name.
func checkGolden(t *testing.T, name string, reqs []aciemu.Request) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range reqs {
		if r.Method == "GET" {
			continue
		}
		fmt.Fprintf(&b, "%s %s  # %s\n", r.Method, r.Path, r.Op)
		if len(r.Body) > 0 {
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatal(err)
			}
			redact(v)
			out, _ := json.MarshalIndent(v, "", "  ")
			b.Write(out)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	for _, v := range []string{"s3cret-value", goldenKVValue, goldenSOPSValue, b64(goldenSOPSValue)} {
		if bytes.Contains(b.Bytes(), []byte(v)) {
			t.Fatal("a secure value reached the golden file")
		}
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, b.String())
	}
}

// redact replaces secureValue fields and secret volumes' contents, which are secret.
func redact(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "secureValue" {
				x[k] = "<secure>"
				continue
			}
			if sec, ok := e.(map[string]any); ok && k == "secret" {
				for f := range sec {
					sec[f] = "<secret, base64>"
				}
				continue
			}
			redact(e)
		}
	case []any:
		for _, e := range x {
			redact(e)
		}
	}
}
