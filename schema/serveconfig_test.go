package schema

import (
	"fmt"
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

func TestLoadServeConfigForge(t *testing.T) {
	t.Setenv("GH_TOKEN", "ghp_never_read")
	p := writeConfig(t, `
sources: gh: {
	url: "https://github.example.invalid/team/app.git"
	forge: {
		kind:       "github"
		repository: "team/app"
		token:      {env: "GH_TOKEN"}
	}
}
sources: app: {
	url: "https://github.example.invalid/team/app2.git"
	forge: {
		kind:       "github"
		url:        "https://ghe.example.invalid/api/v3"
		repository: "team/app2"
		app: {id: 12, installation: 34, privateKey: {file: "app.pem"}}
		interval: "1m"
		timeout:  "5s"
		caFile:   "ca.pem"
	}
}
sources: lab: {
	url: "https://gitlab.example.invalid/g/s/p.git"
	forge: {kind: "gitlab", url: "https://gitlab.example.invalid", repository: "g/s/p", token: {file: "/etc/berth/gl"}}
}
sources: com: {
	url: "https://gitlab.example.invalid/g/p.git"
	forge: {kind: "gitlab", repository: "g/p", token: {file: "t"}}
}
sources: tea: {
	url: "https://codeberg.example.invalid/o/r.git"
	forge: {kind: "forgejo", url: "https://codeberg.example.invalid/", repository: "o/r", token: {env: "T"}}
}
`)
	cfg, err := LoadServeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	by := map[string]*ForgeConfig{}
	for _, s := range cfg.Sources {
		by[s.Name] = s.Forge
	}
	gh := by["gh"]
	if gh.Kind != ForgeGitHub || gh.URL != DefaultGitHubAPIURL || gh.Repository != "team/app" || gh.Token.Env != "GH_TOKEN" ||
		gh.Token.Field != "sources.gh.forge.token" || gh.Token.Pos.Line != 7 || gh.App != nil ||
		gh.Interval != DefaultForgeInterval || gh.Timeout != DefaultForgeTimeout {
		t.Errorf("gh forge = %+v, token %+v", gh, gh.Token)
	}
	app := by["app"]
	if app.URL != "https://ghe.example.invalid/api/v3" || app.Token != nil || app.App == nil || app.App.ID != 12 ||
		app.App.Installation != 34 || app.App.PrivateKey.File != filepath.Join(dir, "app.pem") ||
		app.App.PrivateKey.Field != "sources.app.forge.app.privateKey" || app.Interval != time.Minute ||
		app.Timeout != 5*time.Second || app.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("app forge = %+v, app %+v", app, app.App)
	}
	if lab := by["lab"]; lab.URL != "https://gitlab.example.invalid/api/v4" || lab.Repository != "g/s/p" {
		t.Errorf("lab forge = %+v", lab)
	}
	if com := by["com"]; com.URL != DefaultGitLabAPIURL || com.Token.File != filepath.Join(dir, "t") {
		t.Errorf("com forge = %+v", com)
	}
	if tea := by["tea"]; tea.Kind != ForgeForgejo || tea.URL != "https://codeberg.example.invalid/" {
		t.Errorf("tea forge = %+v", tea)
	}
	// The configuration holds references only.
	if strings.Contains(fmt.Sprintf("%+v %+v", gh, gh.Token), "ghp_never_read") {
		t.Error("the token's value was read into the configuration")
	}
	if cfg.Previews.Listen != DefaultPreviewListen || cfg.Previews.Domain != DefaultPreviewDomain ||
		cfg.Previews.PortsFrom != DefaultPreviewPortsFrom || cfg.Previews.PortsTo != DefaultPreviewPortsTo ||
		cfg.Previews.URLScheme != "http" {
		t.Errorf("previews defaults = %+v", cfg.Previews)
	}
}

func TestLoadServeConfigPreviews(t *testing.T) {
	for _, tc := range []struct {
		text string
		want PreviewsConfig
	}{
		{`previews: {listen: "0.0.0.0:9000", domain: "preview.example.com", ports: {from: 31000, to: 31099}, urlScheme: "https"}`,
			PreviewsConfig{Listen: "0.0.0.0:9000", Domain: "preview.example.com", PortsFrom: 31000, PortsTo: 31099, URLScheme: "https"}},
		{`previews: listen: ""`, PreviewsConfig{Listen: "", Domain: "localhost", PortsFrom: 20000, PortsTo: 20999, URLScheme: "http"}},
		{`previews: {}`, PreviewsConfig{Listen: "127.0.0.1:8480", Domain: "localhost", PortsFrom: 20000, PortsTo: 20999, URLScheme: "http"}},
	} {
		cfg, err := LoadServeConfig(writeConfig(t, "sources: a: url: \"file:///r\"\n"+tc.text+"\n"))
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		got := cfg.Previews
		if got.Pos.Line != 2 {
			t.Errorf("%s: Pos = %v, want line 2", tc.text, got.Pos)
		}
		got.Pos = Pos{}
		if got != tc.want {
			t.Errorf("%s: previews = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

func TestLoadServeConfigForgeErrors(t *testing.T) {
	const src = "sources: a: {url: \"file:///r\", forge: {kind: \"github\", repository: \"o/r\", token: {env: \"T\"}, "
	tests := []struct{ name, text, want string }{
		{"inline token", "sources: a: {url: \"file:///r\", forge: {kind: \"github\", repository: \"o/r\", token: \"hunter2\"}}",
			"sources.a.forge.token: must be a reference"},
		{"inline private key", "sources: a: {url: \"file:///r\", forge: {kind: \"github\", repository: \"o/r\", app: {id: 1, installation: 2, privateKey: \"hunter2\"}}}",
			"sources.a.forge.app.privateKey: must be a reference"},
		{"no credentials", "sources: a: {url: \"file:///r\", forge: {kind: \"github\", repository: \"o/r\"}}",
			"berth-serve.cue:1:32: sources.a.forge: a forge needs a token or an app"},
		{"token and app", src + "app: {id: 1, installation: 2, privateKey: {file: \"k\"}}}}",
			"berth-serve.cue:1:94: sources.a.forge.app: give a token or an app, not both"},
		{"app on gitlab", "sources: a: {url: \"file:///r\", forge: {kind: \"gitlab\", repository: \"o/r\", app: {id: 1, installation: 2, privateKey: {file: \"k\"}}}}",
			"sources.a.forge.app: app is a GitHub App; a gitlab forge needs a token"},
		{"unknown kind", "sources: a: {url: \"file:///r\", forge: {kind: \"svn\", repository: \"o/r\", token: {env: \"T\"}}}",
			"sources.a.forge.kind"},
		{"gitea without url", "sources: a: {url: \"file:///r\", forge: {kind: \"gitea\", repository: \"o/r\", token: {env: \"T\"}}}",
			"sources.a.forge: a gitea forge needs url"},
		{"url with credentials", src + "url: \"https://bot:hunter2@git.example.invalid\"}}",
			"sources.a.forge.url: url must not hold credentials"},
		{"url not http", src + "url: \"ftp://git.example.invalid\"}}", "sources.a.forge.url: url: want the API's base URL"},
		{"bad repository", "sources: a: {url: \"file:///r\", forge: {kind: \"github\", repository: \"o/r/x\", token: {env: \"T\"}}}",
			"sources.a.forge.repository: repository \"o/r/x\": want \"owner/name\""},
		{"dot-dot repository", "sources: a: {url: \"file:///r\", forge: {kind: \"gitlab\", repository: \"g/../p\", token: {env: \"T\"}}}",
			"sources.a.forge.repository"},
		{"missing repository", "sources: a: {url: \"file:///r\", forge: {kind: \"github\", token: {env: \"T\"}}}",
			"sources.a.forge.repository: required field repository is missing"},
		{"bad interval", src + "interval: \"often\"}}", "sources.a.forge.interval: interval \"often\": want a positive duration"},
		{"zero app id", "sources: a: {url: \"file:///r\", forge: {kind: \"github\", repository: \"o/r\", app: {id: 0, installation: 2, privateKey: {file: \"k\"}}}}",
			"sources.a.forge.app.id: invalid value 0"},
		{"unknown forge field", src + "org: \"x\"}}", "sources.a.forge.org: field not allowed"},
		{"previews listen", "sources: a: url: \"x\"\npreviews: listen: \"8480\"", "berth-serve.cue:2:11: previews.listen: listen \"8480\": want host:port"},
		{"previews domain", "sources: a: url: \"x\"\npreviews: domain: \"Pr_Ev.example\"", "previews.domain: domain \"Pr_Ev.example\": want a DNS name"},
		{"previews ports order", "sources: a: url: \"x\"\npreviews: ports: {from: 30000, to: 20000}", "berth-serve.cue:2:11: previews.ports: ports: from 30000 is above to 20000"},
		{"previews ports range", "sources: a: url: \"x\"\npreviews: ports: {from: 0, to: 70000}", "previews.ports.from"},
		{"previews ports include listen", "sources: a: url: \"x\"\npreviews: {listen: \"127.0.0.1:20500\"}", "previews.ports: ports 20000-20999 include the preview router's own port 20500"},
		{"previews scheme", "sources: a: url: \"x\"\npreviews: urlScheme: \"ftp\"", "previews.urlScheme"},
		{"previews unknown field", "sources: a: url: \"x\"\npreviews: host: \"x\"", "berth-serve.cue:2:11: previews.host: field not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadServeConfig(writeConfig(t, tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}
