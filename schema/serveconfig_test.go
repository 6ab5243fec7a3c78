package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "berth-serve.cue")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadServeConfig(t *testing.T) {
	p := writeConfig(t, `
instance: "prod-eu"
listen: "127.0.0.1:9000"
sources: app: {
	url:    "https://git.example.invalid/team/app.git"
	branch: "release"
	path:   "deploy"
	interval: "10s"
	credentials: {username: "bot", password: {env: "APP_GIT_PASSWORD"}}
	caFile: "ca.pem"
	verify: {mode: "head", sshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx test"], openpgpKeys: [{file: "keys/release.asc"}]}
	webhook: {kind: "github", secret: {file: "hook.secret"}}
	limits: {maxFetchSize: "128Mi", maxFileSize: 1048576}
}
sources: infra: {
	url: "git@git.example.invalid:ops/infra.git"
	environments: ["staging"]
	credentials: {sshKey: {file: "/etc/berth/key"}, knownHosts: {file: "/etc/berth/known_hosts"}}
}
`)
	cfg, err := LoadServeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if cfg.Instance != "prod-eu" || cfg.Listen != "127.0.0.1:9000" || len(cfg.Sources) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
	app, infra := cfg.Sources[0], cfg.Sources[1]
	if app.Name != "app" || app.Branch != "release" || app.Path != "deploy" || app.Interval != 10*time.Second ||
		app.Timeout != DefaultSourceTimeout || app.CAFile != filepath.Join(dir, "ca.pem") || app.MaxFetchSize != 128<<20 ||
		app.MaxFileSize != 1<<20 {
		t.Errorf("app = %+v", app)
	}
	if app.Credentials.Username != "bot" || app.Credentials.Password.Env != "APP_GIT_PASSWORD" ||
		app.Credentials.Password.Field != "sources.app.credentials.password" || app.Credentials.Password.Pos.Line != 9 {
		t.Errorf("app credentials = %+v / %+v", app.Credentials, app.Credentials.Password)
	}
	if app.Verify.Mode != "head" || len(app.Verify.SSHKeys) != 1 || !strings.HasPrefix(app.Verify.SSHKeys[0].Inline, "ssh-ed25519") ||
		app.Verify.OpenPGPKeys[0].File != filepath.Join(dir, "keys/release.asc") {
		t.Errorf("app verify = %+v", app.Verify)
	}
	if app.Webhook.Kind != "github" || app.Webhook.Secret.File != filepath.Join(dir, "hook.secret") ||
		app.Webhook.Rate != DefaultWebhookRate || app.Webhook.Burst != DefaultWebhookBurst {
		t.Errorf("app webhook = %+v", app.Webhook)
	}
	if infra.Branch != "main" || infra.Interval != DefaultSourceInterval || infra.Environments[0] != "staging" ||
		infra.URL != "git@git.example.invalid:ops/infra.git" || infra.Credentials.SSHKey.File != "/etc/berth/key" {
		t.Errorf("infra = %+v", infra)
	}
}

func TestLoadServeConfigErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"no sources", `instance: "x"`, "sources"},
		{"unknown field", "sources: a: {url: \"file:///r\", brnach: \"main\"}", "berth-serve.cue:1:32: sources.a.brnach: field not allowed"},
		{"inline secret", "sources: a: {url: \"file:///r\", credentials: {username: \"u\", password: \"hunter2\"}}", "sources.a.credentials.password: must be a reference"},
		{"bad interval", "sources: a: {url: \"file:///r\", interval: \"soon\"}", "berth-serve.cue:1:32: sources.a.interval: interval \"soon\": want a positive duration"},
		{"ssh without known hosts", "sources: a: {url: \"ssh://h/r\", credentials: {sshKey: {file: \"k\"}}}", "sources.a.credentials.sshKey: an SSH key needs knownHosts"},
		{"verify without keys", "sources: a: {url: \"file:///r\", verify: mode: \"head\"}", "sources.a.verify: verify mode \"head\" needs at least one trusted key"},
		{"unknown webhook kind", "sources: a: {url: \"file:///r\", webhook: {kind: \"svn\", secret: {env: \"S\"}}}", "sources.a.webhook.kind"},
		{"escaping path", "sources: a: {url: \"file:///r\", path: \"../x\"}", "sources.a.path: path \"../x\" must stay inside the repository"},
		{"bad name", "sources: A: {url: \"file:///r\"}", "sources.A"},
		{"syntax", "sources: a: {", "berth-serve.cue:1:"},
		{"tag and branch", "sources: a: {url: \"file:///r\", branch: \"main\", tag: \"v*\", environments: [\"p\"]}", "sources.a.tag: give a branch or a tag pattern, not both"},
		{"tag without environments", "sources: a: {url: \"file:///r\", tag: \"v*\"}", "sources.a.tag: a source following tags needs environments"},
		{"bad tag pattern", "sources: a: {url: \"file:///r\", tag: \"v[\", environments: [\"p\"]}", "sources.a.tag: tag pattern \"v[\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadServeConfig(writeConfig(t, tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the inline secret: %v", err)
			}
		})
	}
}

func TestSecretRefRead(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s")
	if err := os.WriteFile(f, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BERTH_TEST_SECRET", "from-env")
	at := Pos{File: "c.cue", Line: 3, Column: 4}
	for _, tc := range []struct {
		ref  SecretRef
		want string
		err  string
	}{
		{SecretRef{File: f}, "s3cret", ""},
		{SecretRef{Env: "BERTH_TEST_SECRET"}, "from-env", ""},
		{SecretRef{Inline: "ssh-ed25519 AAAA"}, "ssh-ed25519 AAAA", ""},
		{SecretRef{Env: "BERTH_TEST_UNSET_VARIABLE", Field: "sources.a.webhook.secret", Pos: at}, "", "c.cue:3:4: sources.a.webhook.secret: environment variable BERTH_TEST_UNSET_VARIABLE is not set"},
		{SecretRef{File: filepath.Join(dir, "missing"), Field: "sources.a.credentials.password", Pos: at}, "", "c.cue:3:4: sources.a.credentials.password: file " + filepath.Join(dir, "missing") + " does not exist"},
	} {
		b, err := tc.ref.Read()
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Read(%+v) error = %v, want %q", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil || string(b) != tc.want {
			t.Errorf("Read(%+v) = %q, %v", tc.ref, b, err)
		}
	}
}
