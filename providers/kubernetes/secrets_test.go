package kubernetes

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/berth-dev/berth/providers"
	bschema "github.com/berth-dev/berth/schema"
)

// goldenSecretValue is the clear value of the golden workload's SOPS secret: no file under testdata may hold it.
const goldenSecretValue = "golden-secret-value-Zq8w"

// secretWorkload is the reference workload with a SOPS secret (db) as an env var and two files, and an existing
// Secret (kind kubernetes) as an env var and a file.
func secretWorkload() (bschema.Workload, map[string]providers.Secret) {
	w := refWorkload()
	delete(w.Env, "GREETING")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db", "GREETING": "greeting"}
	w.Files = map[string]bschema.File{
		"/run/secrets/db": {Secret: "db"}, "/etc/app/db.conf": {Secret: "db"}, "/etc/app/tls.key": {Secret: "tls"},
	}
	secrets := map[string]providers.Secret{
		"db": {Name: "db", Source: bschema.Secret{Name: "db", SOPS: &bschema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "password"}},
			Value: []byte(goldenSecretValue), Fingerprint: "f1a2b3c4d5e6f708"},
		"greeting": {Name: "greeting", Source: bschema.Secret{Name: "greeting",
			Kubernetes: &bschema.KubernetesSecret{Name: "app-config", Key: "greeting"}}, Fingerprint: "0a1b2c3d4e5f6071"},
		"tls": {Name: "tls", Source: bschema.Secret{Name: "tls",
			Kubernetes: &bschema.KubernetesSecret{Name: "web-tls", Key: "tls.key"}}, Fingerprint: "9e8d7c6b5a493827"},
	}
	return w, secrets
}

// TestGoldenSecrets pins the native mapping of secrets (go test -update rewrites): the Secret berth owns with the
// data replaced by a placeholder before the comparison, the env vars' secretKeyRefs, the secret volumes and
// subPath mounts, and the pod template's berth.dev/secrets annotation.
func TestGoldenSecrets(t *testing.T) {
	w, secrets := secretWorkload()
	d := providers.Desired{Owner: providers.Owner{Instance: "prod-1", Environment: "dev"}, Target: "k8s", Workload: w,
		SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
	sp, err := planSecrets(d, "berth-dev", "web", map[string]string{"greeting": "4711", "tls": "4712"})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := deploymentWith(d, "berth-dev", "web", sp)
	if err != nil {
		t.Fatal(err)
	}
	if sp.owned == nil || string(sp.owned.Data["db"]) != goldenSecretValue || len(sp.owned.Data) != 1 {
		t.Fatalf("the Secret berth owns: %+v", sp.owned)
	}
	// The data is where the value belongs: the golden file shows a placeholder instead.
	var secret map[string]any
	b, err := json.Marshal(sp.owned)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &secret); err != nil {
		t.Fatal(err)
	}
	data := secret["data"].(map[string]any)
	for k := range data {
		data[k] = "(the value of secret " + k + ")"
	}
	got, err := json.MarshalIndent(map[string]any{"deployment": dep, "secret": secret}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "secrets.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("objects differ from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestGoldenHoldsNoValue checks that no file under testdata holds the golden secret's value, in clear, base64
// or hex.
func TestGoldenHoldsNoValue(t *testing.T) {
	forms := []string{goldenSecretValue, base64.StdEncoding.EncodeToString([]byte(goldenSecretValue)),
		base64.RawStdEncoding.EncodeToString([]byte(goldenSecretValue)), hex.EncodeToString([]byte(goldenSecretValue))}
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range forms {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds the secret's value (as %q)", f, v)
			}
		}
	}
}

// TestLiveSecretsRoundTrip reads the secret references back from the Deployment berth would apply: the secret
// names of the env vars and files and the fingerprints, never a value; a reference changed by hand reads as the
// Secret and key it now names.
func TestLiveSecretsRoundTrip(t *testing.T) {
	w, secrets := secretWorkload()
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "dev"}, Target: "k8s", Workload: w,
		SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
	p, err := NewWithClient(nil, bschema.Target{Name: "k8s", Type: Type, Settings: map[string]any{"takeOwnership": true}}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := deployment(d, "berth-dev", "web")
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	roundTrip(t, ac, &dep)
	if b, _ := json.Marshal(&dep); strings.Contains(string(b), goldenSecretValue) {
		t.Fatalf("the Deployment holds the value: %s", b)
	}
	st := p.live(workloadObjects{dep: &dep})
	if !jsonEqual(st.spec.SecretEnv, w.SecretEnv) || !jsonEqual(st.spec.Files, w.Files) || len(st.spec.Env) != len(w.Env) {
		t.Errorf("read back env %v, secret env %v, files %v; want %v, %v, %v", st.spec.Env, st.spec.SecretEnv, st.spec.Files,
			w.Env, w.SecretEnv, w.Files)
	}
	for n, s := range secrets {
		if st.fingerprints[n] != s.Fingerprint {
			t.Errorf("fingerprint of %s read back as %q, want %q", n, st.fingerprints[n], s.Fingerprint)
		}
	}
	if ops := p.stripDeployment(&dep, w); len(ops) != 0 {
		t.Errorf("takeOwnership strips berth's own secret env vars: %v", ops)
	}

	c := &dep.Spec.Template.Spec.Containers[0]
	for i := range c.Env {
		if c.Env[i].Name == "GREETING" {
			c.Env[i].ValueFrom.SecretKeyRef.Name = "other"
		}
	}
	for i := range dep.Spec.Template.Spec.Volumes {
		if v := &dep.Spec.Template.Spec.Volumes[i]; v.Name == "secret-tls" {
			v.Secret.Items[0].Key = "other.key"
		}
	}
	st = p.live(workloadObjects{dep: &dep})
	if got := st.spec.SecretEnv["GREETING"]; got != "Secret other key greeting" {
		t.Errorf("a hand-edited env reference reads back as %q", got)
	}
	if got := st.spec.Files["/etc/app/tls.key"].Secret; got != "Secret web-tls key other.key" {
		t.Errorf("a hand-edited volume reference reads back as %q", got)
	}
}

// TestPlanSecretsRefuses checks that a secret the provider was not given, or of a kind it cannot deliver, fails
// the mapping with the secret's name and no value.
func TestPlanSecretsRefuses(t *testing.T) {
	w, secrets := secretWorkload()
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "dev"}, Target: "k8s", Workload: w, Secrets: secrets}
	delete(d.Secrets, "tls")
	if _, err := planSecrets(d, "ns", "web", nil); err == nil || !strings.Contains(err.Error(), "secret tls was not resolved") {
		t.Errorf("a secret missing from Desired.Secrets: %v", err)
	}
	d.Secrets = map[string]providers.Secret{"tls": {Name: "tls", Source: bschema.Secret{Name: "tls",
		AWS: &bschema.AWSSecret{ARN: "arn:aws:ssm:eu-west-1:1:parameter/x"}}}}
	for k, v := range secrets {
		if k != "tls" {
			d.Secrets[k] = v
		}
	}
	_, err := planSecrets(d, "ns", "web", nil)
	if err == nil || !strings.Contains(err.Error(), "aws secrets cannot be delivered") || strings.Contains(err.Error(), goldenSecretValue) {
		t.Errorf("an AWS secret: %v", err)
	}
}

// TestValidateSecretFiles refuses a secret file inside another, and an env var from a secret with a name
// Kubernetes refuses.
func TestValidateSecretFiles(t *testing.T) {
	p, err := NewWithClient(nil, bschema.Target{Name: "k8s", Type: Type}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := secretWorkload()
	if probs := p.Validate(w); len(probs) != 0 {
		t.Fatalf("the secret workload: %v", probs)
	}
	w.Files["/run/secrets/db/extra"] = bschema.File{Secret: "db"}
	w.SecretEnv["1BAD"] = "db"
	probs := p.Validate(w)
	if len(probs) != 2 || probs[0].Field != "env.1BAD" || probs[1].Field != "files./run/secrets/db/extra" {
		t.Errorf("problems: %+v", probs)
	}
}
