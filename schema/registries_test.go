package schema

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const registriesRepo = `targets: local: type: "docker"
environments: staging: branch: "main"
environments: production: branch: "prod"
secrets: reg: sops: "secrets/reg.enc.yaml"
workloads: web: {image: "127.0.0.1:5000/app:v1", provider: "local"}
registries: "127.0.0.1:5000": {
	username: "berth"
	password: secret: "reg"
}
registries: "ghcr.io": insecure: true
registries: localhost: {}
`

func TestLoadRegistries(t *testing.T) {
	cfg := loadText(t, "berth.cue", registriesRepo)
	want := map[string]Registry{
		"127.0.0.1:5000": {Host: "127.0.0.1:5000", Username: "berth", Password: "reg"},
		"ghcr.io":        {Host: "ghcr.io", Insecure: true},
		"localhost":      {Host: "localhost"},
	}
	got := map[string]Registry{}
	for h, r := range cfg.Registries {
		if r.Pos[""].File != "berth.cue" {
			t.Errorf("registry %s: no position: %v", h, r.Pos)
		}
		r.Pos = nil
		got[h] = r
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Registries = %+v\nwant %+v", got, want)
	}
	if p := cfg.Registries["127.0.0.1:5000"].Position("password.secret"); p.Line != 8 {
		t.Errorf("password position = %v, want line 8", p)
	}
	if r, ok := cfg.RegistryFor("127.0.0.1:5000/app:v1@sha256:" + strings.Repeat("a", 64)); !ok || r.Host != "127.0.0.1:5000" {
		t.Errorf("RegistryFor = %+v, %v", r, ok)
	}
	if _, ok := cfg.RegistryFor("app:v1"); ok {
		t.Error("RegistryFor(app:v1) found a registry; docker.io is not declared")
	}
	if cfg := loadText(t, "berth.cue", `environments: s: branch: "main"`); cfg.Registries != nil {
		t.Errorf("no section: Registries = %v, want nil", cfg.Registries)
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"app":                        "docker.io",
		"app:v1":                     "docker.io",
		"library/app:v1":             "docker.io",
		"ghcr.io/o/app:v1":           "ghcr.io",
		"127.0.0.1:5000/app":         "127.0.0.1:5000",
		"localhost/app@sha256:abc":   "localhost",
		"[::1]:5000/app:v1":          "[::1]:5000",
		"registry.local:443/a/b/c:1": "registry.local:443",
		"":                           "",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadRegistriesInvalid(t *testing.T) {
	const head = `targets: local: type: "docker"
environments: staging: branch: "main"
secrets: store: aws: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reg"
`
	for _, c := range []struct{ name, text, want string }{
		{"not-a-host", `registries: myreg: {}`, `berth.cue:4:13: registries."myreg": registry "myreg": want a registry host as image references name it`},
		{"scheme", `registries: "https://ghcr.io": {}`, `berth.cue:4:13: registries."https://ghcr.io": registry "https://ghcr.io": want a host with an optional port`},
		{"path", `registries: "ghcr.io/o": {}`, `berth.cue:4:13: registries."ghcr.io/o": registry "ghcr.io/o": want a host with an optional port as image references name it ("ghcr.io")`},
		{"unknown-field", `registries: "ghcr.io": token: "x"`, `berth.cue:4:24: registries."ghcr.io".token: field not allowed`},
		{"bad-type", `registries: "ghcr.io": insecure: "yes"`, `berth.cue:4:34: registries."ghcr.io".insecure: conflicting values`},
		{"password-string", `registries: "ghcr.io": {username: "u", password: "hunter2"}`, `berth.cue:4:50: registries."ghcr.io".password: conflicting values`},
		{"no-password", `registries: "ghcr.io": username: "u"`, `berth.cue:4:24: registries."ghcr.io".username: username needs a password`},
		{"no-username", `registries: "ghcr.io": password: secret: "store"`, `berth.cue:4:24: registries."ghcr.io".password: password needs a username`},
		{"undeclared", `registries: "ghcr.io": {username: "u", password: secret: "nope"}`, `berth.cue:4:50: registries."ghcr.io".password.secret: secret "nope" is not declared for environment staging (declared: store)`},
		{"unreadable", `registries: "ghcr.io": {username: "u", password: secret: "store"}`, `berth.cue:4:50: registries."ghcr.io".password.secret: secret "store" of environment staging is a aws reference: berth sends a registry's password itself and reads only sops secrets' values`},
		{"not-struct", `registries: ["ghcr.io"]`, `registries: must be a struct of registries by host`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(head+c.text+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Load = %v, want schema.Errors", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
			for _, e := range es {
				if e.Pos.File != "berth.cue" || e.Pos.Line == 0 {
					t.Errorf("error without a position: %v", e)
				}
			}
		})
	}
}

// TestPreviewHeadRegistries: a pull request's head cannot add, change or remove a registry (where credentials go).
func TestPreviewHeadRegistries(t *testing.T) {
	const base = `targets: local: type: "docker"
environments: staging: branch: "main"
secrets: reg: sops: "secrets/reg.enc.yaml"
workloads: web: {image: "ghcr.io/o/app:v1", provider: "local"}
previews: pr: from: "staging"
`
	withReg := base + `registries: "ghcr.io": {username: "u", password: secret: "reg"}` + "\n"
	b := loadText(t, "berth.cue", withReg)
	for name, c := range map[string]struct{ head, want string }{
		"same":    {withReg, ""},
		"changes": {base + `registries: "ghcr.io": {username: "v", password: secret: "reg"}` + "\n", `berth.cue:6:13: registries."ghcr.io": the pull request changes registry ghcr.io`},
		"adds":    {withReg + `registries: "evil.example": {}` + "\n", `berth.cue:7:13: registries."evil.example": the pull request adds registry evil.example`},
		"removes": {base, `berth.cue:6:13: registries."ghcr.io": the pull request removes registry ghcr.io`},
	} {
		t.Run(name, func(t *testing.T) {
			h := loadText(t, "berth.cue", c.head)
			_, errs := CheckPreviewHead(b, h, b.Previews.PR)
			if c.want == "" {
				if len(errs) > 0 {
					t.Fatalf("CheckPreviewHead: %v", errs)
				}
				return
			}
			if !strings.Contains(errs.Error(), c.want) {
				t.Errorf("CheckPreviewHead:\n%v\nwant it to contain %s", errs, c.want)
			}
		})
	}
}
