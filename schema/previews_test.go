package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// previewGolden is the rendered previews section with its positions, which JSON leaves out.
func previewGolden(t testing.TB, cfg *Config) []byte {
	t.Helper()
	pos := map[string]string{}
	if cfg.Previews != nil && cfg.Previews.PR != nil {
		for k, p := range cfg.Previews.PR.Pos {
			pos[k] = p.String()
		}
	}
	b, err := json.MarshalIndent(struct {
		Previews  *Previews         `json:"previews"`
		Positions map[string]string `json:"positions"`
	}{cfg.Previews, pos}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestLoadPreviewsValid(t *testing.T) {
	runGolden(t, "previews/valid-*.txtar", func(t *testing.T, a *txtar.Archive, dir string) (string, []byte) {
		cfg, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.Previews == nil || cfg.Previews.PR == nil {
			t.Fatal("no previews.pr rendered")
		}
		return "want.json", previewGolden(t, cfg)
	})
}

func TestLoadPreviewsInvalid(t *testing.T) {
	runGolden(t, "previews/invalid-*.txtar", func(t *testing.T, a *txtar.Archive, dir string) (string, []byte) {
		cfg, err := Load(dir)
		if err == nil {
			t.Fatalf("Load succeeded, want an error; previews:\n%s", previewGolden(t, cfg))
		}
		var es Errors
		if !errors.As(err, &es) {
			t.Fatalf("Load error is %T, want schema.Errors: %v", err, err)
		}
		for _, e := range es {
			if e.Pos.File == "" || e.Pos.Line == 0 || e.Message == "" || !strings.HasPrefix(e.Path, "previews") {
				t.Errorf("error without position, message or previews path: %+v", e)
			}
		}
		return "want.err", []byte(err.Error() + "\n")
	})
}

// TestLoadNoPreviews checks that a repository without the section renders none, and an empty one renders no
// policy.
func TestLoadNoPreviews(t *testing.T) {
	const repo = "targets: l: type: \"docker\"\nenvironments: s: branch: \"main\"\n"
	if cfg := loadText(t, "berth.cue", repo); cfg.Previews != nil {
		t.Errorf("Previews = %+v, want nil", cfg.Previews)
	}
	if cfg := loadText(t, "berth.cue", repo+"previews: {}\n"); cfg.Previews == nil || cfg.Previews.PR != nil {
		t.Errorf("Previews = %+v, want an empty section", cfg.Previews)
	}
}

func TestOverridePatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"workloads.*.image", "workloads.web.image", true},
		{"workloads.*.image", "workloads.web.image.x", false},
		{"workloads.*.image", "workloads.web", false},
		{"workloads.*.env.*", "workloads.web.env.GREETING", true},
		{"workloads.*.env.*", "workloads.web.secretEnv.TOKEN", false},
		{"workloads.web.env.GREET*", "workloads.web.env.GREETING", true},
		{"workloads.web.env.*_URL", "workloads.web.env.DB_URL", true},
		{"workloads.web.env.*_URL", "workloads.web.env.DB_URLS", false},
		{"workloads.*", "workloads.new", true},
		{"workloads.*", "workloads.web.image", false},
		{"workloads.web.**", "workloads.web", true},
		{"workloads.web.**", "workloads.web.provider", true},
		{"workloads.web.**", "workloads.web.health.http.path", true},
		{"workloads.web.**", "workloads.api.image", false},
		{"workloads.*.ports[0].**", "workloads.web.ports[0].port", true},
		{"workloads.*.ports[*].port", "workloads.web.ports[3].port", true},
		{"workloads.*.ports[*].port", "workloads.web.ports[3].hostPort", false},
		{"workloads.*.ports[0].port", "workloads.web.ports[1].port", false},
	} {
		if err := checkOverride(c.pattern); err != nil {
			t.Errorf("checkOverride(%q) = %v", c.pattern, err)
		}
		path := strings.Split(c.path, ".")
		if got := matchOverride(c.pattern, path); got != c.want {
			t.Errorf("matchOverride(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"", "image", "workloads", "workloads.", "workloads..image", "workloads.**.image",
		"workloads.web.a**", "workloads.web.files./run", "workloads.web.env.A B", "workloads.web.ports[x]",
		"workloads.web.ports[0", "targets.*"} {
		if checkOverride(bad) == nil {
			t.Errorf("checkOverride(%q) = nil, want an error", bad)
		}
	}
}

// loadText loads a one-file repository.
func loadText(t testing.TB, name, text string) *Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		t.Fatalf("Load %s:\n%s\n%v", name, text, err)
	}
	return cfg
}

// previewBase is the trusted branch of the CheckPreviewHead tests; each case edits a copy for the head. Lines
// matter: the head's errors name them.
const previewBase = `targets: local: type: "docker"
targets: remote: {type: "docker", host: "tcp://127.0.0.1:2375"}
environments: production: branch: "main"
environments: staging: {
	branch: "main"
}
secrets: db: sops: "secrets/db.enc.yaml"
workloads: web: {
	image:    "app:v1"
	provider: "local"
	env: GREETING: "hi"
	ports: [{port: 8080, public: true}]
	health: http: {path: "/healthz", port: 8080}
}
workloads: db: {image: "postgres:16", provider: "local"}
previews: pr: {
	from: "staging"
	skip: ["db"]
}
`

func TestCheckPreviewHead(t *testing.T) {
	edit := func(pairs ...string) func(string) string {
		return func(s string) string {
			for i := 0; i < len(pairs); i += 2 {
				if !strings.Contains(s, pairs[i]) {
					panic("test edit: no " + pairs[i])
				}
				s = strings.Replace(s, pairs[i], pairs[i+1], 1)
			}
			return s
		}
	}
	same := func(s string) string { return s }
	for _, c := range []struct {
		name string
		// base edits the base (both sides get it); head edits the head after that.
		base, head func(string) string
		// want are the errors as "file:line: path", sorted; none: the check passes with workloads.
		want      []string
		workloads []string
		// msg must be in every error's message.
		msg string
		// check looks at the workloads returned.
		check func(t *testing.T, ws []Workload)
	}{
		{name: "unchanged", head: same, workloads: []string{"web"}},
		{name: "image allowed by default", head: edit(`"app:v1"`, `"app:v2"`), workloads: []string{"web"},
			check: func(t *testing.T, ws []Workload) {
				if ws[0].Image != "app:v2" {
					t.Errorf("image = %q, want the head's", ws[0].Image)
				}
			}},
		{name: "env change and new env allowed", head: edit(`env: GREETING: "hi"`, `env: {GREETING: "hello", NEW: "1"}`),
			workloads: []string{"web"}, check: func(t *testing.T, ws []Workload) {
				if !reflect.DeepEqual(ws[0].Env, map[string]string{"GREETING": "hello", "NEW": "1"}) {
					t.Errorf("env = %v", ws[0].Env)
				}
			}},
		{name: "env removed allowed", head: edit(`	env: GREETING: "hi"`+"\n", ""), workloads: []string{"web"}},
		{name: "provider refused", head: edit(`provider: "local"
	env`, `provider: "remote"
	env`), want: []string{"head.cue:10:2: workloads.web.provider"}, msg: "override: workloads.*.image, workloads.*.env.*"},
		{name: "secret env refused although env.* is allowed", head: edit(`env: GREETING: "hi"`, `env: {GREETING: "hi", TOKEN: secret: "db"}`),
			want: []string{"head.cue:11:24: workloads.web.secretEnv.TOKEN"}},
		{name: "files refused", head: edit(`	env:`, `	files: "/run/secrets/db": secret: "db"
	env:`), want: []string{"head.cue:11:9: workloads.web.files./run/secrets/db"}, msg: `"workloads.web.files.*"`},
		{name: "replicas ports and health refused", head: edit(`image:    "app:v1"`, `image:    "app:v1"
	replicas: 3`, `port: 8080, public: true`, `port: 9090, public: true`, `"/healthz"`, `"/"`),
			want: []string{"head.cue:10:2: workloads.web.replicas", "head.cue:13:10: workloads.web.ports[0].hostPort",
				"head.cue:13:11: workloads.web.ports[0].port", "head.cue:14:17: workloads.web.health.http.path"}},
		{name: "new workload refused", head: edit(`workloads: db:`, `workloads: extra: {image: "x", provider: "local"}
workloads: db:`), want: []string{"head.cue:15:12: workloads.extra"}, msg: `"workloads.extra"`},
		{name: "new workload allowed with workloads.*", base: edit(`skip: ["db"]`, `skip: ["db"]
	override: ["workloads.*"]`),
			head: edit(`workloads: db:`, `workloads: extra: {image: "x", provider: "local"}
workloads: db:`), workloads: []string{"extra", "web"}},
		{name: "removed workload refused at the base's line", head: edit(`workloads: web: {`, `workloads: gone: {`),
			want: []string{"berth.cue:8:12: workloads.web", "head.cue:8:12: workloads.gone"}},
		{name: "workloads.*.** allows everything of a workload", base: edit(`skip: ["db"]`, `skip: ["db"]
	override: ["workloads.*.**"]`),
			head: edit(`provider: "local"
	env`, `provider: "remote"
	env`, `env: GREETING: "hi"`, `env: {GREETING: "hi", TOKEN: secret: "db"}`, `port: 8080`, `port: 9`),
			workloads: []string{"web"}},
		{name: "target edit refused", head: edit(`2375"`, `2376"`), want: []string{"head.cue:2:10: targets.remote"},
			msg: "previews use the base branch's targets"},
		{name: "target added refused", head: edit(`environments: production:`, `targets: evil: type: "docker"
environments: production:`), want: []string{"head.cue:3:10: targets.evil"}},
		{name: "secrets edit refused", head: edit(`"secrets/db.enc.yaml"`, `"secrets/other.enc.yaml"`),
			want: []string{"head.cue:7:10: environments.production.secrets.db", "head.cue:7:10: environments.staging.secrets.db"}, msg: "previews use the base branch's secrets"},
		{name: "secret added in another environment refused", head: edit(`environments: production: branch: "main"`,
			`environments: production: {branch: "main", secrets: x: aws: "arn:aws:ssm:eu-west-1:123456789012:parameter/x"}`),
			want: []string{"head.cue:3:53: environments.production.secrets.x"}},
		{name: "previews edit refused", head: edit(`skip: ["db"]`, `skip: []`),
			want: []string{"head.cue:18:2: previews.pr.skip"}, msg: "preview settings"},
		{name: "previews override widened refused", head: edit(`skip: ["db"]`, `skip: ["db"]
	override: ["workloads.**"]`), want: []string{"head.cue:19:2: previews.pr.override"}},
		{name: "skip honoured", head: edit(`"postgres:16", provider: "local"`, `"postgres:17", provider: "remote", replicas: 9`),
			workloads: []string{"web"}},
		{name: "branch change refused", head: edit(`branch: "main"
}`, `branch: "evil"
}`), want: []string{"head.cue:4:15: environments.staging.branch"}},
		{name: "base environment removed", head: edit(`environments: staging: {
	branch: "main"
}
`, ``, `from: "staging"`, `from: "production"`),
			want: []string{"berth.cue:4:15: environments.staging", "berth.cue:7:10: environments.staging.secrets.db",
				"head.cue:14:2: previews.pr.from"}},
		{name: "every error, sorted", head: edit(`2375"`, `2376"`, `"app:v1"`, `"app:v2"`, `provider: "local"
	env`, `provider: "remote"
	env`, `skip: ["db"]`, `skip: []`), want: []string{"head.cue:2:10: targets.remote",
			"head.cue:10:2: workloads.web.provider", "head.cue:18:2: previews.pr.skip"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			baseText := previewBase
			if c.base != nil {
				baseText = c.base(baseText)
			}
			base := loadText(t, "berth.cue", baseText)
			head := loadText(t, "head.cue", c.head(baseText))
			ws, errs := CheckPreviewHead(base, head, base.Previews.PR)
			var got []string
			for _, e := range errs {
				got = append(got, e.Pos.String()+": "+e.Path)
				if c.msg != "" && !strings.Contains(e.Message, c.msg) {
					t.Errorf("message %q does not say %q", e.Message, c.msg)
				}
				if !strings.Contains(e.Message, "pull request") {
					t.Errorf("message %q does not say what the pull request did", e.Message)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("errors:\n%s\nwant:\n%s\n(%v)", strings.Join(got, "\n"), strings.Join(c.want, "\n"), errs)
			}
			var names []string
			for _, w := range ws {
				names = append(names, w.Name)
			}
			if !slices.Equal(names, c.workloads) {
				t.Errorf("workloads = %v, want %v", names, c.workloads)
			}
			if c.check != nil && len(ws) > 0 {
				c.check(t, ws)
			}
		})
	}
}

// TestCheckPreviewHeadCopies checks that the returned workloads do not share maps with the head's configuration.
func TestCheckPreviewHeadCopies(t *testing.T) {
	base := loadText(t, "berth.cue", previewBase)
	head := loadText(t, "head.cue", previewBase)
	ws, errs := CheckPreviewHead(base, head, base.Previews.PR)
	if errs != nil {
		t.Fatal(errs)
	}
	ws[0].Env["GREETING"] = "changed"
	if w, _ := head.Environments["staging"].Workload("web"); w.Env["GREETING"] != "hi" {
		t.Fatal("changing a returned workload changed the head's configuration")
	}
}

func TestCheckPreviewHeadNoPolicy(t *testing.T) {
	base := loadText(t, "berth.cue", previewBase)
	if _, errs := CheckPreviewHead(base, base, nil); len(errs) != 1 {
		t.Fatalf("errors = %v, want one", errs)
	}
}

// TestPreviewHeadHostileNames checks that names a head cannot use come out as load errors of the head, before any
// check: unicode, upper case, too long, path-like.
func TestPreviewHeadHostileNames(t *testing.T) {
	for _, name := range []string{"wéb", "ｗｅｂ", "Web", "web/../x", "web\u200b", strings.Repeat("a", 41), `web"; x`} {
		text := previewBase + "workloads: " + quoteCUE(name) + ": {image: \"x\", provider: \"local\"}\n"
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "head.cue"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Errorf("Load with workload %q = %v, want schema.Errors", name, err)
			continue
		}
		if es[0].Pos.File != "head.cue" || es[0].Pos.Line != 20 || !strings.Contains(es[0].Message, "invalid name") {
			t.Errorf("workload %q: error %v, want an invalid name at head.cue:20", name, es[0])
		}
	}
}

// quoteCUE writes s as a CUE string label.
func quoteCUE(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// FuzzCheckPreviewHead loads a head made of the input and checks it against previewBase: no panic, and either the
// workloads or positioned errors that name a field.
func FuzzCheckPreviewHead(f *testing.F) {
	f.Add([]byte(previewBase))
	f.Add([]byte(strings.Replace(previewBase, `"app:v1"`, `"app:v2"`, 1)))
	f.Add([]byte(strings.Replace(previewBase, `provider: "local"`, `provider: "remote"`, 1)))
	f.Add([]byte(strings.Replace(previewBase, `skip: ["db"]`, `skip: []`, 1)))
	f.Add([]byte(previewBase + "workloads: extra: {image: \"x\", provider: \"local\", ports: [{port: 1, public: true}]}\n"))
	base := loadText(f, "berth.cue", previewBase)
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "head.cue"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		head, err := Load(dir)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not schema.Errors: %v", err)
			}
			return
		}
		ws, errs := CheckPreviewHead(base, head, base.Previews.PR)
		if len(errs) == 0 && len(ws) == 0 && len(head.Environments["staging"].Workloads) > 1 {
			t.Fatal("no errors and no workloads")
		}
		for _, e := range errs {
			if e.Pos.File == "" || e.Path == "" || e.Message == "" {
				t.Fatalf("error without position, path or message: %+v", e)
			}
		}
	})
}
