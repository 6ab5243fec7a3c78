package aws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/providers/aws/secretsemu"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/schema"
)

// leaks says where, besides the container's environment, value is found: in anything berth sent ECS (task
// definitions, tags, services), in the metadata of berth's Secrets Manager secrets, or in any Secrets Manager
// request other than the value fields of CreateSecret and PutSecretValue.
func leaks(ctx context.Context, t *testing.T, emu *ecsemu.Server, store *secretsemu.Server, owner providers.Owner, workload, value string) string {
	t.Helper()
	for _, r := range emu.Requests() {
		if bytes.Contains(r.Body, []byte(value)) {
			return "the ECS request " + r.Op
		}
	}
	for _, r := range store.Requests() {
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("%s: %v", r.Op, err)
		}
		if r.Op == "CreateSecret" || r.Op == "PutSecretValue" {
			delete(body, "SecretString")
		}
		if b, _ := json.Marshal(body); bytes.Contains(b, []byte(value)) {
			return "the Secrets Manager request " + r.Op + " outside its value"
		}
	}
	sm, _ := storeClients(store)
	out, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
		SecretId: aws.String("berth/" + owner.Instance + "/" + owner.Environment + "/" + workload + "/greeting")})
	var nf *smtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if b, _ := json.Marshal(out); out != nil && bytes.Contains(b, []byte(value)) {
		return "the metadata of berth's Secrets Manager secret"
	}
	return ""
}

const (
	dbValue, dbRotated   = "golden-db-password-4f1c", "golden-db-password-rotated-9e2a"
	apiValue, apiRotated = "golden-api-key-77b3", "golden-api-key-rotated-0c5d"
)

// secretWorkload is the reference workload with DB_PASSWORD from a SOPS secret "db" and API_KEY from a Secrets
// Manager reference "api"; desired gives its Desired with the db value and the api reference given.
func secretWorkload() schema.Workload {
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db", "API_KEY": "api"}
	return w
}

func secretDesired(owner providers.Owner, w schema.Workload, db, dbFP, apiARN, apiFP string) providers.Desired {
	secrets := map[string]providers.Secret{}
	for _, n := range w.Secrets() {
		switch n {
		case "db":
			secrets[n] = providers.Secret{Name: n, Value: []byte(db), Fingerprint: dbFP,
				Source: schema.Secret{Name: n, SOPS: &schema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "password"}}}
		case "api":
			secrets[n] = providers.Secret{Name: n, Fingerprint: apiFP,
				Source: schema.Secret{Name: n, AWS: &schema.AWSSecret{ARN: apiARN, Service: "secretsmanager"}}}
		case "tok":
			secrets[n] = providers.Secret{Name: n, Fingerprint: "fp-tok-1", Source: schema.Secret{Name: n, AWS: &schema.AWSSecret{
				ARN: "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/token", Service: "ssm"}}}
		}
	}
	return providers.Desired{Owner: owner, Target: "aws-prod", Workload: w, Secrets: secrets,
		SpecHash: providers.DesiredHash(w, secrets)}
}

// TestGoldenSecrets records what berth asks of ECS and of Secrets Manager for a workload with a SOPS secret and
// a Secrets Manager reference: on create, on a rotation of both (a new SOPS value: a new version of berth's
// secret; a new version of the referenced secret, pinned by version id), and on delete. The clear values of
// CreateSecret and PutSecretValue are replaced by a placeholder before the golden is written or compared.
func TestGoldenSecrets(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := secretWorkload()
	apiARN, _ := store.SetSecretString("prod/api-key", apiValue)
	first := secretDesired(owner, w, dbValue, "fp-db-1", apiARN+"::AWSCURRENT:", "fp-api-1")

	steps := []struct {
		golden string
		run    func() error
		sees   map[string]string
	}{
		{"secrets-create", func() error { return p.Apply(ctx, first) },
			map[string]string{"DB_PASSWORD": dbValue, "API_KEY": apiValue}},
		{"secrets-rotate", func() error {
			// An operator's new version, with a fixed id so that the golden is reproducible.
			const v2 = "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
			sm, _ := storeClients(store)
			if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(apiARN),
				ClientRequestToken: aws.String(v2), SecretString: aws.String(apiRotated)}); err != nil {
				t.Fatal(err)
			}
			store.ResetRequests()
			return p.Apply(ctx, secretDesired(owner, w, dbRotated, "fp-db-2", apiARN+":::"+v2, "fp-api-2"))
		}, map[string]string{"DB_PASSWORD": dbRotated, "API_KEY": apiRotated}},
		{"secrets-delete", func() error { return p.Delete(ctx, owner, "aws-prod", "web") }, nil},
	}
	for _, s := range steps {
		emu.ResetRequests()
		store.ResetRequests()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.golden, err)
		}
		if s.sees != nil {
			envs := emu.TaskEnvironment(testCluster, "berth-berth-prod-web")
			if len(envs) != w.Replicas {
				t.Fatalf("%s: %d running tasks, want %d", s.golden, len(envs), w.Replicas)
			}
			for _, env := range envs {
				for k, v := range s.sees {
					if env[k] != v {
						t.Errorf("%s: a task sees %s=%q, want %q", s.golden, k, env[k], v)
					}
				}
			}
		}
		got := append(normalise(t, emu.Requests()), normaliseStore(t, store.Requests())...)
		conformance.Golden(t, filepath.Join("testdata", s.golden+".golden"), got, *update)
	}
	sm, _ := storeClients(store)
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("berth/berth/prod/web/db")}); err == nil {
		t.Error("berth's secret outlives the workload's Delete")
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/api-key")}); err != nil {
		t.Errorf("Delete touched a referenced secret: %v", err)
	}
}

// normaliseStore prints each Secrets Manager request berth made as "## secretsmanager Op" and its body, keys
// sorted, with SecretString and SecretBinary replaced by "<value>". GetSecretValue is left out: berth never reads
// a value back; those are the emulated ECS agent's, resolving the tasks' secrets with the execution role.
func normaliseStore(t *testing.T, reqs []secretsemu.Request) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, r := range reqs {
		if r.Op == "GetSecretValue" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("%s: %v", r.Op, err)
		}
		for _, k := range []string{"SecretString", "SecretBinary"} {
			if _, ok := v[k]; ok {
				v[k] = "<value>"
			}
		}
		var body bytes.Buffer
		e := json.NewEncoder(&body)
		e.SetEscapeHTML(false)
		e.SetIndent("", "  ")
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		b.WriteString("## " + r.Service + " " + r.Op + "\n" + strings.TrimSpace(body.String()) + "\n\n")
	}
	return b.Bytes()
}

// TestNoGoldenHoldsASecret: no golden file of the package holds a value the tests put in a secret.
func TestNoGoldenHoldsASecret(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{dbValue, dbRotated, apiValue, apiRotated, "conformance-secret-value"} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds the secret value %q", f, v)
			}
		}
	}
}

// TestSecretsReadBack: List reads the secrets' names and fingerprints back (never a value), an unchanged
// workload compares equal, a rotation shows as a new fingerprint, and a workload that stops using a SOPS secret
// has berth's Secrets Manager secret deleted after its rollout.
func TestSecretsReadBack(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := secretWorkload()
	w.SecretEnv["TOKEN"] = "tok"
	apiARN, _ := store.SetSecretString("prod/api-key", apiValue)
	store.SetParameter("/prod/token", secretsemu.TypeSecureString, "ssm-token-value-31d")
	if got := store.ParameterARN("/prod/token"); got != "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/token" {
		t.Fatalf("parameter ARN %s", got)
	}
	d := secretDesired(owner, w, dbValue, "fp-db-1", apiARN, "fp-api-1")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, env := range emu.TaskEnvironment(testCluster, "berth-berth-prod-web") {
		if env["DB_PASSWORD"] != dbValue || env["API_KEY"] != apiValue || env["TOKEN"] != "ssm-token-value-31d" {
			t.Errorf("a task sees %v", env)
		}
	}
	obs := list(ctx, t, p, owner)
	if b, _ := json.Marshal(obs); bytes.Contains(b, []byte(dbValue)) || bytes.Contains(b, []byte(apiValue)) ||
		bytes.Contains(b, []byte("ssm-token-value-31d")) {
		t.Fatalf("List reads a value back: %s", b)
	}
	if want := w.SecretEnv; !reflect.DeepEqual(obs.Spec.SecretEnv, want) {
		t.Errorf("Spec.SecretEnv = %v, want %v", obs.Spec.SecretEnv, want)
	}
	if want := map[string]string{"db": "fp-db-1", "api": "fp-api-1", "tok": "fp-tok-1"}; !reflect.DeepEqual(obs.SecretFingerprints, want) {
		t.Errorf("SecretFingerprints = %v, want %v", obs.SecretFingerprints, want)
	}
	if obs.SpecHash != d.SpecHash {
		t.Errorf("SpecHash = %s, want %s", obs.SpecHash, d.SpecHash)
	}
	// A repeat sends no new version and registers nothing.
	emu.ResetRequests()
	store.ResetRequests()
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := store.Count("PutSecretValue") + store.Count("CreateSecret"); n != 0 {
		t.Errorf("a repeated Apply wrote %d secret values", n)
	}
	for _, r := range emu.Requests() {
		if r.Op == "RegisterTaskDefinition" {
			t.Error("a repeated Apply registered a revision")
		}
	}
	// The SOPS secret dropped: berth's Secrets Manager secret goes after the rollout.
	w2 := w
	w2.SecretEnv = map[string]string{"API_KEY": "api", "TOKEN": "tok"}
	if err := p.Apply(ctx, secretDesired(owner, w2, "", "", apiARN, "fp-api-1")); err != nil {
		t.Fatal(err)
	}
	sm, _ := storeClients(store)
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("berth/berth/prod/web/db")}); err == nil {
		t.Error("berth's secret of a secret no longer used is still there")
	}
	if got := list(ctx, t, p, owner); !reflect.DeepEqual(got.SecretFingerprints, map[string]string{"api": "fp-api-1", "tok": "fp-tok-1"}) {
		t.Errorf("SecretFingerprints after dropping db = %v", got.SecretFingerprints)
	}
}

func list(ctx context.Context, t *testing.T, p *berthaws.Provider, owner providers.Owner) providers.Observed {
	t.Helper()
	// ListServices is eventually consistent: a new service may be left out of the first listing.
	for range 5 {
		obs, err := p.List(ctx, owner, "aws-prod")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(obs) == 1 {
			return obs[0]
		}
	}
	t.Fatal("List never shows the workload")
	return providers.Observed{}
}

// TestSecretNotOwned: a Secrets Manager secret of berth's name that berth did not make is never written to.
func TestSecretNotOwned(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store.SetSecretString("berth/berth/prod/web/db", "someone else's")
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	err := p.Apply(ctx, secretDesired(owner, w, dbValue, "fp-db-1", "", ""))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "not owned by berth") {
		t.Fatalf("Apply = %v, want a permanent not-owned error", err)
	}
	if store.Count("PutSecretValue") != 0 {
		t.Error("berth wrote a version to a secret it does not own")
	}
	if len(emu.Requests()) > 1 {
		t.Errorf("berth went on to ECS after the refusal: %d requests", len(emu.Requests()))
	}
}

// TestSecretsDenied: Secrets Manager refusing CreateSecret is permanent at once, and says which permissions to
// grant berth and the execution role.
func TestSecretsDenied(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store.Deny("CreateSecret", "berth/berth/prod/web/db")
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	err := p.Apply(ctx, secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, w, dbValue, "fp-db-1", "", ""))
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply = %v, want permanent", err)
	}
	for _, want := range []string{"secretsmanager:DescribeSecret, CreateSecret, PutSecretValue, TagResource", "GetSecretValue", "not authorized"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), dbValue) {
		t.Error("the error holds the value")
	}
	if n := store.Count("CreateSecret"); n != 1 {
		t.Errorf("CreateSecret tried %d times, want 1", n)
	}
}

// TestSecretUnresolvable: a reference the execution role cannot read stops the new tasks with ECS's
// ResourceInitializationError; the rollout fails permanently, quoting it.
func TestSecretUnresolvable(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apiARN, _ := store.SetSecretString("prod/api-key", apiValue)
	store.Deny("GetSecretValue", "prod/api-key")
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"API_KEY": "api"}
	err := p.Apply(ctx, secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, w, "", "", apiARN, "fp-api-1"))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "ResourceInitializationError") {
		t.Fatalf("Apply = %v, want the failed rollout with ResourceInitializationError", err)
	}
}

// TestSecretFilesRefused: ECS has no secret files: the capabilities say so and Apply refuses them.
func TestSecretFilesRefused(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-prod")
	caps := p.Capabilities()
	if caps.SecretFiles || !reflect.DeepEqual(caps.SecretKinds, []string{schema.SecretAWS, schema.SecretSOPS}) {
		t.Fatalf("Capabilities = %+v", caps)
	}
	w := referenceWorkload("web")
	w.Files = map[string]schema.File{"/run/secrets/db": {Secret: "db"}}
	err := p.Apply(context.Background(), secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, w, dbValue, "fp", "", ""))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "files") {
		t.Fatalf("Apply = %v", err)
	}
	if len(emu.Requests()) > 1 {
		t.Error("files sent to ECS")
	}
}

// TestSecretsEndpoint: the Secrets Manager endpoint comes from the target's secretsEndpoint (accepted by the
// schema) or, without it, from the SDK's AWS_ENDPOINT_URL_SECRETS_MANAGER, as the ECS endpoint comes from
// endpoint.
func TestSecretsEndpoint(t *testing.T) {
	for _, viaEnv := range []bool{false, true} {
		hermetic(t)
		store := secretsEmulator(t)
		emu := emulatorWithStore(t, store)
		setting := fmt.Sprintf(", secretsEndpoint: %q", store.URL())
		if viaEnv {
			setting = ""
			t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", store.URL())
		}
		dir := t.TempDir()
		repo := fmt.Sprintf(`targets: prod: {type: "aws", region: "eu-west-1", cluster: %q, subnets: ["subnet-0a1b2c3d"], endpoint: %q%s}
environments: production: {branch: "main"}
workloads: web: {image: "registry.example/web:1", provider: "prod", command: ["/app"]}
`, testCluster, emu.URL(), setting)
		if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(repo), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := schema.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := providers.New(cfg.Targets["prod"], providers.Options{Instance: "berth"})
		if err != nil {
			t.Fatal(err)
		}
		p := pr.(*berthaws.Provider)
		p.PollInterval, p.RetryBase, p.RetryMax = 2*time.Millisecond, time.Millisecond, 5*time.Millisecond
		w := referenceWorkload("web")
		w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := p.Apply(ctx, secretDesired(providers.Owner{Instance: "berth", Environment: "production"}, w, dbValue, "fp-db-1", "", "")); err != nil {
			t.Fatalf("via env %v: %v", viaEnv, err)
		}
		cancel()
		if store.Count("CreateSecret") != 1 {
			t.Errorf("via env %v: the secret was not created on the emulator", viaEnv)
		}
	}
}

// TestSecretRestoredAndRetried: throttling and 5xx answers of Secrets Manager are retried; berth's secret
// scheduled for deletion by hand is restored and given the new version.
func TestSecretRestoredAndRetried(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	store.FailOp("DescribeSecret", 1, secretsemu.Throttle)
	store.FailOp("CreateSecret", 1, secretsemu.ServerError)
	if err := p.Apply(ctx, secretDesired(owner, w, dbValue, "fp-db-1", "", "")); err != nil {
		t.Fatalf("Apply through transient faults: %v", err)
	}
	sm, _ := storeClients(store)
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("berth/berth/prod/web/db"),
		RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, secretDesired(owner, w, dbRotated, "fp-db-2", "", "")); err != nil {
		t.Fatalf("Apply after a deletion by hand: %v", err)
	}
	if store.Count("RestoreSecret") != 1 {
		t.Error("berth's secret was not restored")
	}
	for _, env := range emu.TaskEnvironment(testCluster, "berth-berth-prod-web") {
		if env["DB_PASSWORD"] != dbRotated {
			t.Errorf("a task sees DB_PASSWORD=%q, want the rotated value", env["DB_PASSWORD"])
		}
	}
}
