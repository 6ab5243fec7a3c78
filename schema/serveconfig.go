package schema

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
)

// ServeConfig is the controller's configuration (berth serve --config FILE): the sources it follows and how.
type ServeConfig struct {
	Instance string
	Listen   string
	DataDir  string
	// Evaluation bounds each snapshot's evaluation; zero fields are not set (the defaults or flags apply).
	Evaluation EvalLimits
	// Sources are sorted by name.
	Sources []SourceConfig
	// Secrets says how SOPS files are decrypted; nil when the configuration has no secrets block.
	Secrets *SecretsConfig
	// Previews says how pull-request previews are served; its defaults are filled in when the configuration has
	// no previews block.
	Previews PreviewsConfig
}

// PreviewsConfig is the serve configuration's previews block.
type PreviewsConfig struct {
	// Listen is the address of berth's preview router (HTTP, routed by Host), "" when disabled;
	// DefaultPreviewListen by default.
	Listen string
	// Domain is the domain preview host names are made under ("pr-42-x1y2.localhost"); DefaultPreviewDomain by
	// default.
	Domain string
	// PortsFrom and PortsTo bound (inclusive) the host ports given to previews' public ports.
	PortsFrom, PortsTo int
	// URLScheme is "http" (default) or "https", the scheme of the preview URLs berth posts.
	URLScheme string
	// Pos is where the block is ("" file when it was not written).
	Pos Pos
}

// Forge kinds, as ForgeConfig.Kind holds them.
const (
	ForgeGitHub  = "github"
	ForgeGitLab  = "gitlab"
	ForgeGitea   = "gitea"
	ForgeForgejo = "forgejo"
)

// ForgeConfig is a source's Git host API: where its pull requests are read and its statuses and comments posted.
// Credentials are references, read with SecretRef.Read when used; exactly one of Token and App is set.
type ForgeConfig struct {
	// Kind is one of the Forge* constants.
	Kind string
	// URL is the API's base URL, with the kind's default filled in (DefaultGitHubAPIURL, DefaultGitLabAPIURL;
	// a GitLab server's root gets "/api/v4"). Gitea and Forgejo have no default: it is the server's root.
	URL string
	// Repository is "owner/name" (GitLab: "group/subgroup/project").
	Repository string
	Token      *SecretRef
	App        *GitHubAppRef
	// Interval is the poll of open pull requests; Timeout bounds each API call.
	Interval time.Duration
	Timeout  time.Duration
	CAFile   string
	Pos      Pos
}

// GitHubAppRef authenticates as an installation of a GitHub App.
type GitHubAppRef struct {
	ID           int64
	Installation int64
	PrivateKey   SecretRef
}

// SecretsConfig is the serve configuration's secrets block.
type SecretsConfig struct {
	// AgeIdentities references the age identities that decrypt SOPS files (package schema/secrets reads them);
	// nil when not set.
	AgeIdentities *SecretRef
}

// SourceConfig is one followed repository. Credentials are references, read with SecretRef.Read when used.
type SourceConfig struct {
	Name   string
	URL    string
	Branch string
	// Tag, when set, follows the newest tag matching this pattern instead of Branch.
	Tag string
	// Path is the directory inside the repository holding the .cue files ("" for the root).
	Path string
	// Environments, when not empty, are the environments this source applies (instead of those bound to Branch).
	Environments []string
	Interval     time.Duration
	Timeout      time.Duration
	Credentials  *CredentialRefs
	CAFile       string
	Proxy        string
	Verify       *VerifyConfig
	Webhook      *WebhookConfig
	// Forge is the Git host's API for the repository's pull requests; nil when not configured (no previews).
	Forge        *ForgeConfig
	MaxFileSize  int64
	MaxFetchSize int64
	// MaxSnapshotSize caps the repository tree; 0 for the default.
	MaxSnapshotSize int64
	Pos             Pos
}

// CredentialRefs say where a source's credentials are; nil fields are not set.
type CredentialRefs struct {
	Username         string
	Password         *SecretRef
	Token            *SecretRef
	SSHKey           *SecretRef
	SSHKeyPassphrase *SecretRef
	KnownHosts       *SecretRef
}

// SecretRef names a file or an environment variable holding a value (a secret or a key). Inline holds a value
// written in the configuration itself, allowed only for public keys.
type SecretRef struct {
	File   string
	Env    string
	Inline string
	// Field is the configuration path, for errors ("sources.app.credentials.password").
	Field string
	Pos   Pos
}

// Read returns the referenced value. Its errors name the configuration field and place, never the value.
func (r *SecretRef) Read() ([]byte, error) {
	switch {
	case r.Inline != "":
		return []byte(r.Inline), nil
	case r.Env != "":
		v, ok := os.LookupEnv(r.Env)
		if !ok || v == "" {
			return nil, fmt.Errorf("%s: %s: environment variable %s is not set", r.Pos, r.Field, r.Env)
		}
		return []byte(v), nil
	default:
		b, err := os.ReadFile(r.File)
		if err != nil {
			var reason string
			switch {
			case os.IsNotExist(err):
				reason = "does not exist"
			case os.IsPermission(err):
				reason = "is not readable"
			default:
				reason = "cannot be read"
			}
			return nil, fmt.Errorf("%s: %s: file %s %s", r.Pos, r.Field, r.File, reason)
		}
		return b, nil
	}
}

// VerifyConfig is a source's signature policy: Mode "off", "head" or "head-or-tag", and the trusted keys.
type VerifyConfig struct {
	Mode        string
	OpenPGPKeys []SecretRef
	SSHKeys     []SecretRef
}

// WebhookConfig enables /hooks/<source> for a Git host's push notifications.
type WebhookConfig struct {
	Kind   string
	Secret SecretRef
	Rate   float64
	Burst  int
}

// Serve configuration defaults.
const (
	DefaultSourceInterval = 30 * time.Second
	DefaultSourceTimeout  = 60 * time.Second
	DefaultSourceBranch   = "main"
	DefaultWebhookRate    = 1.0
	DefaultWebhookBurst   = 5

	DefaultForgeInterval = 30 * time.Second
	DefaultForgeTimeout  = 30 * time.Second
	DefaultGitHubAPIURL  = "https://api.github.com"
	DefaultGitLabAPIURL  = "https://gitlab.com/api/v4"

	DefaultPreviewListen    = "127.0.0.1:8480"
	DefaultPreviewDomain    = "localhost"
	DefaultPreviewPortsFrom = 20000
	DefaultPreviewPortsTo   = 20999
	DefaultPreviewURLScheme = "http"
)

type rawRef struct {
	File *string `json:"file"`
	Env  *string `json:"env"`
}

type rawSource struct {
	URL          string   `json:"url"`
	Branch       string   `json:"branch"`
	Tag          string   `json:"tag"`
	Path         string   `json:"path"`
	Environments []string `json:"environments"`
	Interval     string   `json:"interval"`
	Timeout      string   `json:"timeout"`
	Credentials  *struct {
		Username         string  `json:"username"`
		Password         *rawRef `json:"password"`
		Token            *rawRef `json:"token"`
		SSHKey           *rawRef `json:"sshKey"`
		SSHKeyPassphrase *rawRef `json:"sshKeyPassphrase"`
		KnownHosts       *rawRef `json:"knownHosts"`
	} `json:"credentials"`
	CAFile string `json:"caFile"`
	Proxy  string `json:"proxy"`
	Verify *struct {
		Mode string `json:"mode"`
	} `json:"verify"`
	Webhook *struct {
		Kind   string  `json:"kind"`
		Secret rawRef  `json:"secret"`
		Rate   float64 `json:"rate"`
		Burst  int     `json:"burst"`
	} `json:"webhook"`
	Forge  *rawForge `json:"forge"`
	Limits *struct{} `json:"limits"`
}

type rawForge struct {
	Kind       string  `json:"kind"`
	URL        string  `json:"url"`
	Repository string  `json:"repository"`
	Token      *rawRef `json:"token"`
	App        *struct {
		ID           int64  `json:"id"`
		Installation int64  `json:"installation"`
		PrivateKey   rawRef `json:"privateKey"`
	} `json:"app"`
	Interval string `json:"interval"`
	Timeout  string `json:"timeout"`
	CAFile   string `json:"caFile"`
}

type rawPreviews struct {
	Listen *string `json:"listen"`
	Domain *string `json:"domain"`
	Ports  *struct {
		From int `json:"from"`
		To   int `json:"to"`
	} `json:"ports"`
	URLScheme string `json:"urlScheme"`
}

// LoadServeConfig reads and checks the controller configuration at path. Problems in the file come back as Errors
// with file, line, column and field; no referenced file or variable is read here.
func LoadServeConfig(path string) (*ServeConfig, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	var errs errList
	name := filepath.Base(path)
	f, err := parser.ParseFile(name, src)
	if err != nil {
		errs.addCUE(err, cueOpts{at: Pos{File: name, Line: 1, Column: 1}})
		return nil, errs.result()
	}
	ctx := cuecontext.New()
	d := compileDefs(ctx)
	user := ctx.BuildFile(f)
	if err := user.Err(); err != nil {
		errs.addCUE(err, cueOpts{at: Pos{File: name, Line: 1, Column: 1}})
		return nil, errs.result()
	}
	v := d.serve.Unify(user)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		errs.addCUE(err, cueOpts{stripDef: true, at: Pos{File: name, Line: 1, Column: 1}})
		for _, e := range errs.errs {
			if isSecretField(e.Path) {
				// CUE's message would quote the value, and a value written here may be a secret.
				e.Message = "must be a reference, {file: PATH} or {env: NAME}, never the value itself"
			}
		}
		return nil, errs.result()
	}
	dir := filepath.Dir(path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg := &ServeConfig{}
	for _, fld := range []struct {
		name string
		dst  *string
	}{{"instance", &cfg.Instance}, {"listen", &cfg.Listen}, {"dataDir", &cfg.DataDir}} {
		if x := v.LookupPath(cue.ParsePath(fld.name)); x.Exists() {
			*fld.dst, _ = x.String()
		}
	}
	if ev := v.LookupPath(cue.ParsePath("evaluation")); ev.Exists() {
		at := func(sub string) Pos {
			return posOf(user.LookupPath(cue.ParsePath("evaluation."+sub)), Pos{File: name, Line: 1, Column: 1})
		}
		if tv := ev.LookupPath(cue.ParsePath("timeout")); tv.Exists() {
			s, _ := tv.String()
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				errs.add(at("timeout"), "evaluation.timeout", "timeout %q: want a positive duration such as \"30s\"", s)
			}
			cfg.Evaluation.Timeout = d
		}
		if mv := ev.LookupPath(cue.ParsePath("memory")); mv.Exists() {
			n, err := mv.Int64()
			if s, serr := mv.String(); serr == nil {
				n, err = parseMemory(s)
			}
			if err != nil || n <= 0 {
				errs.add(at("memory"), "evaluation.memory", "memory: want a positive size such as \"2Gi\" or a number of bytes")
			}
			cfg.Evaluation.Memory = n
		}
	}
	cfg.DataDir = abs(cfg.DataDir)
	if sv := v.LookupPath(cue.ParsePath("secrets")); sv.Exists() {
		cfg.Secrets = &SecretsConfig{}
		if rv := sv.LookupPath(cue.ParsePath("ageIdentities")); rv.Exists() {
			var r rawRef
			_ = rv.Decode(&r) // CUE checked it is a #SecretRef
			up := posOf(user.LookupPath(cue.ParsePath("secrets.ageIdentities")), Pos{File: name, Line: 1, Column: 1})
			ref := &SecretRef{Field: "secrets.ageIdentities", Pos: up}
			if r.File != nil {
				ref.File = abs(*r.File)
			} else if r.Env != nil {
				ref.Env = *r.Env
			}
			cfg.Secrets.AgeIdentities = ref
		}
	}
	cfg.Previews = servePreviews(v, user, name, &errs)
	it, _ := v.LookupPath(cue.ParsePath("sources")).Fields()
	for it.Next() {
		srcName := it.Selector().Unquoted()
		sv := it.Value()
		// Positions come from the user's value: the unified one carries the schema's.
		uv := user.LookupPath(cue.MakePath(cue.Str("sources"), cue.Str(srcName)))
		at := posOf(uv, Pos{File: name, Line: 1, Column: 1})
		pos := map[string]Pos{"": at}
		collectPos(uv, "", pos)
		field := "sources." + srcName
		fail := func(sub, format string, args ...any) {
			errs.add(nearest(pos, sub), field+"."+sub, format, args...)
		}
		var raw rawSource
		if err := sv.Decode(&raw); err != nil {
			errs.addCUE(err, cueOpts{prefix: []string{"sources", srcName}, at: at})
			continue
		}
		sc := SourceConfig{Name: srcName, URL: raw.URL, Branch: raw.Branch, Tag: raw.Tag, Path: raw.Path,
			Environments: raw.Environments, CAFile: abs(raw.CAFile), Proxy: raw.Proxy, Pos: at,
			Interval: DefaultSourceInterval, Timeout: DefaultSourceTimeout}
		if !nameRE.MatchString(srcName) {
			errs.add(at, field, "invalid source name %q: %s", srcName, nameRule)
		}
		switch {
		case sc.Tag != "" && sc.Branch != "":
			fail("tag", "give a branch or a tag pattern, not both")
		case sc.Tag != "" && len(sc.Environments) == 0:
			fail("tag", "a source following tags needs environments: the environments it applies")
		case sc.Tag != "":
			if _, err := filepath.Match(sc.Tag, "v0.0.0"); err != nil {
				fail("tag", "tag pattern %q: %v", sc.Tag, err)
			}
		case sc.Branch == "":
			sc.Branch = DefaultSourceBranch
		}
		if strings.Contains(sc.Path, "..") || filepath.IsAbs(sc.Path) {
			fail("path", "path %q must stay inside the repository", sc.Path)
		}
		if !strings.Contains(sc.URL, "://") && !strings.Contains(sc.URL, "@") {
			sc.URL = abs(sc.URL)
		}
		for _, d := range []struct {
			name string
			raw  string
			dst  *time.Duration
		}{{"interval", raw.Interval, &sc.Interval}, {"timeout", raw.Timeout, &sc.Timeout}} {
			if d.raw == "" {
				continue
			}
			pd, err := time.ParseDuration(d.raw)
			if err != nil || pd <= 0 {
				fail(d.name, "%s %q: want a positive duration such as \"30s\"", d.name, d.raw)
				continue
			}
			*d.dst = pd
		}
		ref := func(sub string, r *rawRef) *SecretRef {
			if r == nil {
				return nil
			}
			sr := &SecretRef{Field: field + "." + sub, Pos: nearest(pos, sub)}
			if r.File != nil {
				sr.File = abs(*r.File)
			} else if r.Env != nil {
				sr.Env = *r.Env
			}
			return sr
		}
		if c := raw.Credentials; c != nil {
			sc.Credentials = &CredentialRefs{Username: c.Username,
				Password: ref("credentials.password", c.Password), Token: ref("credentials.token", c.Token),
				SSHKey: ref("credentials.sshKey", c.SSHKey), SSHKeyPassphrase: ref("credentials.sshKeyPassphrase", c.SSHKeyPassphrase),
				KnownHosts: ref("credentials.knownHosts", c.KnownHosts)}
			if c.Password != nil && c.Token != nil {
				fail("credentials.token", "give a password or a token, not both")
			}
			if c.Password != nil && c.Username == "" {
				fail("credentials.password", "a password needs a username")
			}
			if c.SSHKey != nil && c.KnownHosts == nil {
				fail("credentials.sshKey", "an SSH key needs knownHosts: berth never trusts a host key on first use")
			}
		}
		if raw.Verify != nil {
			sc.Verify = &VerifyConfig{Mode: raw.Verify.Mode}
			for _, kind := range []struct {
				name string
				dst  *[]SecretRef
			}{{"openpgpKeys", &sc.Verify.OpenPGPKeys}, {"sshKeys", &sc.Verify.SSHKeys}} {
				lv := sv.LookupPath(cue.ParsePath("verify." + kind.name))
				li, _ := lv.List()
				for i := 0; li.Next(); i++ {
					sub := fmt.Sprintf("verify.%s[%d]", kind.name, i)
					kr := SecretRef{Field: field + "." + sub, Pos: nearest(pos, sub)}
					if s, err := li.Value().String(); err == nil {
						kr.Inline = s
					} else {
						var r rawRef
						_ = li.Value().Decode(&r)
						kr = *ref(sub, &r)
					}
					*kind.dst = append(*kind.dst, kr)
				}
			}
			if sc.Verify.Mode != "off" && len(sc.Verify.OpenPGPKeys)+len(sc.Verify.SSHKeys) == 0 {
				fail("verify", "verify mode %q needs at least one trusted key (openpgpKeys or sshKeys)", sc.Verify.Mode)
			}
		}
		if w := raw.Webhook; w != nil {
			sc.Webhook = &WebhookConfig{Kind: w.Kind, Secret: *ref("webhook.secret", &w.Secret),
				Rate: w.Rate, Burst: w.Burst}
			if sc.Webhook.Rate == 0 {
				sc.Webhook.Rate = DefaultWebhookRate
			}
			if sc.Webhook.Burst == 0 {
				sc.Webhook.Burst = DefaultWebhookBurst
			}
		}
		if raw.Forge != nil {
			sc.Forge = sourceForge(raw.Forge, abs, ref, fail)
		}
		if raw.Limits != nil {
			for _, q := range []struct {
				name string
				dst  *int64
			}{{"maxFileSize", &sc.MaxFileSize}, {"maxFetchSize", &sc.MaxFetchSize}, {"maxSnapshotSize", &sc.MaxSnapshotSize}} {
				qv := sv.LookupPath(cue.ParsePath("limits." + q.name))
				if !qv.Exists() {
					continue
				}
				if str, err := qv.String(); err == nil {
					n, err := parseMemory(str)
					if err != nil || n <= 0 {
						fail("limits."+q.name, "%s %q: want a size such as \"64Mi\"", q.name, str)
					}
					*q.dst = n
				} else if n, err := qv.Int64(); err == nil && n > 0 {
					*q.dst = n
				} else {
					fail("limits."+q.name, "%s must be a positive number of bytes", q.name)
				}
			}
		}
		cfg.Sources = append(cfg.Sources, sc)
	}
	if len(cfg.Sources) == 0 {
		errs.add(Pos{File: name, Line: 1, Column: 1}, "sources", "declare at least one source")
	}
	if err := errs.result(); err != nil {
		return nil, err
	}
	sort.Slice(cfg.Sources, func(i, j int) bool { return cfg.Sources[i].Name < cfg.Sources[j].Name })
	return cfg, nil
}

// isSecretField tells whether a configuration path holds a credential reference.
func isSecretField(path string) bool {
	under := func(field string) bool { return strings.HasSuffix(path, field) || strings.Contains(path, field+".") }
	return strings.Contains(path, ".credentials.") && !strings.HasSuffix(path, ".username") ||
		under(".webhook.secret") || under(".forge.token") || under(".forge.app.privateKey") ||
		path == "secrets.ageIdentities" || strings.HasPrefix(path, "secrets.ageIdentities.")
}

// forgeRepoRE is one segment of a forge repository path: letters, digits, '.', '_' and '-', not "." or "..".
var forgeRepoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// sourceForge checks and renders a source's forge block (CUE checked its shape).
func sourceForge(r *rawForge, abs func(string) string, ref func(string, *rawRef) *SecretRef,
	fail func(sub, format string, args ...any)) *ForgeConfig {
	f := &ForgeConfig{Kind: r.Kind, URL: r.URL, Repository: r.Repository, Token: ref("forge.token", r.Token),
		Interval: DefaultForgeInterval, Timeout: DefaultForgeTimeout, CAFile: abs(r.CAFile)}
	if a := r.App; a != nil {
		f.App = &GitHubAppRef{ID: a.ID, Installation: a.Installation, PrivateKey: *ref("forge.app.privateKey", &a.PrivateKey)}
	}
	switch {
	case r.Token != nil && r.App != nil:
		fail("forge.app", "give a token or an app, not both")
	case r.Token == nil && r.App == nil && r.Kind == ForgeGitHub:
		fail("forge", "a forge needs a token or an app: {id, installation, privateKey}")
	case r.Token == nil && r.App == nil:
		fail("forge", "a forge needs a token")
	case r.App != nil && r.Kind != ForgeGitHub:
		fail("forge.app", "app is a GitHub App; a %s forge needs a token", r.Kind)
	}

	if f.URL == "" {
		switch r.Kind {
		case ForgeGitHub:
			f.URL = DefaultGitHubAPIURL
		case ForgeGitLab:
			f.URL = DefaultGitLabAPIURL
		default:
			fail("forge", "a %s forge needs url, the server's root, e.g. \"https://codeberg.org\"", r.Kind)
		}
	} else {
		// The URL is not quoted in errors: a mistaken one may hold a password.
		u, err := url.Parse(f.URL)
		switch {
		case err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "":
			fail("forge.url", "url: want the API's base URL, http:// or https://, e.g. \"https://gitlab.example.com\"")
		case u.User != nil:
			fail("forge.url", "url must not hold credentials: give them in token")
		case u.RawQuery != "" || u.Fragment != "":
			fail("forge.url", "url must not have a query or a fragment")
		case r.Kind == ForgeGitLab && !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v4"):
			f.URL = strings.TrimSuffix(f.URL, "/") + "/api/v4"
		}
	}

	segs := strings.Split(r.Repository, "/")
	ok := len(segs) == 2 || r.Kind == ForgeGitLab && len(segs) >= 2
	for _, s := range segs {
		if !forgeRepoRE.MatchString(s) || s == "." || s == ".." || len(s) > 255 {
			ok = false
		}
	}
	if !ok {
		want := `"owner/name"`
		if r.Kind == ForgeGitLab {
			want = `"group/project" or "group/subgroup/project"`
		}
		fail("forge.repository", "repository %q: want %s", r.Repository, want)
	}
	for _, d := range []struct {
		name string
		raw  string
		dst  *time.Duration
	}{{"interval", r.Interval, &f.Interval}, {"timeout", r.Timeout, &f.Timeout}} {
		if d.raw == "" {
			continue
		}
		pd, err := time.ParseDuration(d.raw)
		if err != nil || pd <= 0 {
			fail("forge."+d.name, "%s %q: want a positive duration such as \"30s\"", d.name, d.raw)
			continue
		}
		*d.dst = pd
	}
	return f
}

// servePreviews checks and renders the previews block of the serve configuration v (user is the user's own value,
// for positions), with defaults for what is not given.
func servePreviews(v, user cue.Value, file string, errs *errList) PreviewsConfig {
	pc := PreviewsConfig{Listen: DefaultPreviewListen, Domain: DefaultPreviewDomain, PortsFrom: DefaultPreviewPortsFrom,
		PortsTo: DefaultPreviewPortsTo, URLScheme: DefaultPreviewURLScheme}
	pv := v.LookupPath(cue.ParsePath("previews"))
	if !pv.Exists() {
		return pc
	}
	uv := user.LookupPath(cue.ParsePath("previews"))
	pos := map[string]Pos{"": posOf(uv, Pos{File: file, Line: 1, Column: 1})}
	collectPos(uv, "", pos)
	pc.Pos = pos[""]
	fail := func(sub, format string, args ...any) {
		errs.add(nearest(pos, sub), "previews."+sub, format, args...)
	}
	var raw rawPreviews
	if err := pv.Decode(&raw); err != nil {
		errs.addCUE(err, cueOpts{prefix: []string{"previews"}, at: pc.Pos})
		return pc
	}
	if raw.URLScheme != "" {
		pc.URLScheme = raw.URLScheme
	}
	if raw.Listen != nil {
		pc.Listen = *raw.Listen
		if pc.Listen != "" {
			if _, port, err := net.SplitHostPort(pc.Listen); err != nil || port == "" {
				fail("listen", "listen %q: want host:port, e.g. %q, or \"\" to disable the preview router", pc.Listen, DefaultPreviewListen)
			}
		}
	}
	if raw.Domain != nil {
		pc.Domain = strings.TrimSuffix(*raw.Domain, ".")
		if !dnsNameRE.MatchString(pc.Domain) || len(pc.Domain) > 200 {
			fail("domain", "domain %q: want a DNS name such as \"localhost\" or \"preview.example.com\" (lowercase letters, digits, '-' and '.')", *raw.Domain)
		}
	}
	if p := raw.Ports; p != nil {
		pc.PortsFrom, pc.PortsTo = p.From, p.To
		if p.From > p.To {
			fail("ports", "ports: from %d is above to %d", p.From, p.To)
		}
	}
	if _, port, err := net.SplitHostPort(pc.Listen); err == nil && pc.Listen != "" {
		if n, err := strconv.Atoi(port); err == nil && n >= pc.PortsFrom && n <= pc.PortsTo {
			fail("ports", "ports %d-%d include the preview router's own port %d (listen)", pc.PortsFrom, pc.PortsTo, n)
		}
	}
	return pc
}

// dnsNameRE is a DNS name of lowercase labels.
var dnsNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
