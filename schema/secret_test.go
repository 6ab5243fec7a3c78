package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

func loadArchive(t *testing.T, file string) *Config {
	t.Helper()
	a, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeRepo(t, a))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSecretPositions checks that a secret is positioned at the declaration that counts for each environment:
// the environment's own when it overrides one, the top-level one otherwise.
func TestSecretPositions(t *testing.T) {
	cfg := loadArchive(t, filepath.Join("testdata", "valid", "secrets.txtar"))
	for _, c := range []struct{ env, secret, pos, kind string }{
		{"production", "db", "berth.cue:6:11", SecretSOPS},
		{"staging", "db", "berth.cue:11:2", SecretSOPS},
		{"production", "api", "berth.cue:7:11", SecretGCP},
		{"staging", "token", "berth.cue:14:2", SecretAWS},
	} {
		s, ok := cfg.Environments[c.env].Secrets[c.secret]
		if !ok {
			t.Errorf("%s: no secret %s", c.env, c.secret)
			continue
		}
		if got := s.Pos.String(); got != c.pos {
			t.Errorf("%s: secret %s at %s, want %s", c.env, c.secret, got, c.pos)
		}
		if s.Kind() != c.kind || s.Name != c.secret {
			t.Errorf("%s: secret %s is %q named %q, want %q", c.env, c.secret, s.Kind(), s.Name, c.kind)
		}
	}
	w, _ := cfg.Environments["production"].Workload("web")
	if got, want := w.Secrets(), []string{"api", "db", "tls"}; !slices.Equal(got, want) {
		t.Errorf("web uses %v, want %v", got, want)
	}
}

// TestWorkloadWithoutSecretsEncodesAsBefore guards the spec hashes of existing workloads: a workload that uses
// no secret encodes without the new fields, so its hash (providers.SpecHash) does not move.
func TestWorkloadWithoutSecretsEncodesAsBefore(t *testing.T) {
	cfg := loadArchive(t, filepath.Join("testdata", "valid", "secrets.txtar"))
	w, _ := cfg.Environments["production"].Workload("plain")
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"secretEnv", "files", "secrets"} {
		if strings.Contains(string(b), `"`+k+`"`) {
			t.Errorf("workload without secrets encodes %q: %s", k, b)
		}
	}
	if want := `{"name":"plain","provider":"local","image":"berth-example/app:v1","env":{"GREETING":"hello"},"replicas":1,"resources":{}}`; string(b) != want {
		t.Errorf("encoding changed:\n got %s\nwant %s", b, want)
	}
}

// FuzzSecretBlock loads a repository whose one secret declaration is the input: it must never panic, and must
// either render a secret of exactly one kind or return positioned Errors.
func FuzzSecretBlock(f *testing.F) {
	for _, s := range []string{
		`{sops: "secrets/db.enc.yaml", key: "password"}`,
		`{sops: "secrets/db.enc.yaml"}`,
		`{aws: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"}`,
		`{aws: "arn:aws:ssm:eu-west-1:123456789012:parameter/db"}`,
		`{kubernetes: {name: "db", key: "password"}}`,
		`{nomad: {path: "nomad/jobs/x", key: "pw"}}`,
		`{vault: {path: "secret/data/db", key: "pw"}}`,
		`{azure: {vault: "myvault", name: "db"}}`,
		`{gcp: {name: "projects/my-project/secrets/db"}}`,
		`{}`, `"db"`, `{sops: "../x", key: ""}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, decl string) {
		dir := t.TempDir()
		src := "targets: l: type: \"docker\"\nenvironments: p: branch: \"main\"\n" +
			"workloads: w: {image: \"x\", provider: \"l\", env: X: secret: \"s\"}\nsecrets: s: " + decl + "\n"
		if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(dir)
		if err == nil {
			s, ok := cfg.Environments["p"].Secrets["s"]
			if !ok || s.Kind() == "" || s.Pos.File == "" {
				t.Fatalf("rendered without a positioned secret: %+v", s)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not schema.Errors: %v", err)
		}
		for _, e := range es {
			if e.Pos.File == "" || e.Pos.Line == 0 {
				t.Fatalf("error without a position: %v", e)
			}
		}
	})
}

func TestServeConfigSecrets(t *testing.T) {
	p := writeConfig(t, `sources: app: url: "https://git.example.invalid/app.git"
secrets: {
	ageIdentities: {file: "keys/age.txt"}
}
`)
	cfg, err := LoadServeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Secrets.AgeIdentities
	if r == nil || r.File != filepath.Join(filepath.Dir(p), "keys/age.txt") || r.Field != "secrets.ageIdentities" || r.Pos.Line != 3 {
		t.Fatalf("ageIdentities = %+v", r)
	}
	cfg, err = LoadServeConfig(writeConfig(t, `sources: app: url: "/srv/app"
secrets: ageIdentities: env: "BERTH_AGE_KEYS"
`))
	if err != nil || cfg.Secrets.AgeIdentities.Env != "BERTH_AGE_KEYS" {
		t.Fatalf("env reference: %+v, %v", cfg, err)
	}
	cfg, err = LoadServeConfig(writeConfig(t, `sources: app: url: "/srv/app"`))
	if err != nil || cfg.Secrets != nil {
		t.Fatalf("no secrets block: %+v, %v", cfg.Secrets, err)
	}
	// A key written in the configuration itself is refused without being quoted.
	_, err = LoadServeConfig(writeConfig(t, `sources: app: url: "/srv/app"
secrets: ageIdentities: "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
`))
	if err == nil || strings.Contains(err.Error(), "QQQQ") || !strings.Contains(err.Error(), "secrets.ageIdentities: must be a reference") {
		t.Errorf("inline identity: %v", err)
	}
	_, err = LoadServeConfig(writeConfig(t, `sources: app: url: "/srv/app"
secrets: ageIdentity: {env: "X"}
`))
	if err == nil || !strings.Contains(err.Error(), "secrets.ageIdentity: field not allowed") {
		t.Errorf("misspelled field: %v", err)
	}
}
