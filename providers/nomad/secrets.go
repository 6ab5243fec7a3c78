package nomad

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Secret delivery constants.
const (
	// MetaSecrets is the job meta key listing the secrets the job's task is given, as "name=fingerprint" pairs
	// joined by ",", sorted by name: fingerprints only, never a value.
	MetaSecrets = "berth.dev/secrets"
	// EnvTemplatePath is the destination (in the task directory) of the template rendering the secret environment
	// variables (env = true): Nomad reads it into the task's environment at start.
	EnvTemplatePath = "secrets/env.env"
	// FilePerms are the permissions of a rendered secret file.
	FilePerms = "0400"
	// envPerms are those of the environment file (read by the Nomad client only).
	envPerms = "0400"
)

// Task directory mounts of the docker driver a secret file may be rendered into: a file at /secrets/x in the
// container is the template destination secrets/x. Nomad's templates write only inside the task directory.
var fileRoots = []string{"/secrets/", "/local/"}

// variablePath is the Nomad variable berth owns for a job: the job's own path, which every task of the job may read
// with its workload identity (no ACL policy needed).
func variablePath(id string) string { return "nomad/jobs/" + id }

// destination maps a file path of the workload to its template destination, or "" when Nomad cannot render there.
func destination(path string) string {
	for _, r := range fileRoots {
		if rest, ok := strings.CutPrefix(path, r); ok && rest != "" {
			return strings.TrimPrefix(r, "/") + rest
		}
	}
	return ""
}

// secretProblems are the files and env names Nomad cannot deliver as asked.
func secretProblems(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	for _, path := range slices.Sorted(maps.Keys(w.Files)) {
		switch dest := destination(path); {
		case dest == "":
			out = append(out, providers.Problem{Field: "files." + path,
				Message: "Nomad renders secret files only inside the task directory, which the docker driver mounts " +
					"at /secrets and /local: put the file under /secrets/ (private to the task, in memory where " +
					"the client supports it)"})
		case dest == EnvTemplatePath && len(w.SecretEnv) > 0:
			out = append(out, providers.Problem{Field: "files." + path,
				Message: "/" + EnvTemplatePath + " is where berth renders the secret environment variables; use another path"})
		}
	}
	return out
}

// secretLine is the template text reading secret sec: berth's own variable for a SOPS value, the named variable
// for a Nomad reference, a Vault secret (KV v2: .Data.data) for a Vault reference. The comment names the secret,
// so that the read-back knows which secret a template delivers.
func secretLine(id string, sec providers.Secret) (string, error) {
	src := sec.Source
	var body string
	switch src.Kind() {
	case schema.SecretSOPS:
		body = fmt.Sprintf(`{{ with nomadVar %q }}{{ index . %q }}{{ end }}`, variablePath(id), sec.Name)
	case schema.SecretNomad:
		body = fmt.Sprintf(`{{ with nomadVar %q }}{{ index . %q }}{{ end }}`, src.Nomad.Path, src.Nomad.Key)
	case schema.SecretVault:
		body = fmt.Sprintf(`{{ with secret %q }}{{ index .Data.data %q }}{{ end }}`, src.Vault.Path, src.Vault.Key)
	default:
		return "", providers.Permanent(fmt.Errorf("secret %s: %s secrets cannot be delivered to Nomad", sec.Name, src.Kind()))
	}
	return fmt.Sprintf("{{/* berth secret %s */}}%s", sec.Name, body), nil
}

// secretTag finds the secret a template line delivers.
var secretTag = regexp.MustCompile(`^\{\{/\* berth secret (\S+) \*/\}\}`)

// envLine is one line of the environment template.
var envLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// lookup is the secret name of the workload, or a permanent error when the controller did not resolve it.
func lookup(d providers.Desired, name string) (providers.Secret, error) {
	sec, ok := d.Secrets[name]
	if !ok || sec.Source.Kind() == "" {
		return sec, providers.Permanent(fmt.Errorf("secret %s was not resolved for workload %s", name, d.Workload.Name))
	}
	sec.Name = name
	return sec, nil
}

// secretTask adds to task the templates (and the vault block) delivering d's secrets, and returns the meta value
// of MetaSecrets ("" without secrets).
func secretTask(id string, d providers.Desired, task *api.Task) (string, error) {
	w := d.Workload
	names := w.Secrets()
	if len(names) == 0 {
		return "", nil
	}
	vault := false
	if len(w.SecretEnv) > 0 {
		var b strings.Builder
		for _, env := range slices.Sorted(maps.Keys(w.SecretEnv)) {
			sec, err := lookup(d, w.SecretEnv[env])
			if err != nil {
				return "", err
			}
			line, err := secretLine(id, sec)
			if err != nil {
				return "", err
			}
			vault = vault || sec.Source.Kind() == schema.SecretVault
			fmt.Fprintf(&b, "%s=%s\n", env, line)
		}
		task.Templates = append(task.Templates, template(EnvTemplatePath, b.String(), envPerms, true))
	}
	for _, path := range slices.Sorted(maps.Keys(w.Files)) {
		dest := destination(path)
		if dest == "" {
			return "", providers.Permanent(fmt.Errorf("files.%s: Nomad renders secret files only under /secrets/ or /local/", path))
		}
		sec, err := lookup(d, w.Files[path].Secret)
		if err != nil {
			return "", err
		}
		line, err := secretLine(id, sec)
		if err != nil {
			return "", err
		}
		vault = vault || sec.Source.Kind() == schema.SecretVault
		task.Templates = append(task.Templates, template(dest, line, FilePerms, false))
	}
	if vault {
		// The cluster's default Vault role, through the task's workload identity; a renewed token restarts nothing.
		task.Vault = &api.Vault{ChangeMode: new("noop")}
	}
	pairs := make([]string, len(names))
	for i, n := range names {
		pairs[i] = n + "=" + d.Secrets[n].Fingerprint
	}
	return strings.Join(pairs, ","), nil
}

// template is a template block rendered once at task start (once, change_mode noop): a rotation reaches the task
// through a new job version, which the update block rolls out one allocation at a time; running allocations keep
// what they rendered.
func template(dest, data, perms string, env bool) *api.Template {
	t := &api.Template{DestPath: new(dest), EmbeddedTmpl: new(data), Perms: new(perms), ChangeMode: new("noop"),
		Once: new(true), ErrMissingKey: new(true)}
	if env {
		t.Envvars = new(true)
	}
	return t
}

// readSecrets reads back, from a task's templates, the secret environment variables and files it is given, by
// secret name (from the comment of each template line).
func readSecrets(task *api.Task, w *schema.Workload) {
	for _, t := range task.Templates {
		dest, data := deref(t.DestPath), deref(t.EmbeddedTmpl)
		if deref(t.Envvars) {
			for _, l := range strings.Split(data, "\n") {
				m := envLine.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				if s := secretTag.FindStringSubmatch(m[2]); s != nil {
					if w.SecretEnv == nil {
						w.SecretEnv = map[string]string{}
					}
					w.SecretEnv[m[1]] = s[1]
				}
			}
			continue
		}
		if s := secretTag.FindStringSubmatch(data); s != nil && dest != "" {
			if w.Files == nil {
				w.Files = map[string]schema.File{}
			}
			w.Files["/"+strings.TrimPrefix(dest, "/")] = schema.File{Secret: s[1]}
		}
	}
}

// fingerprints reads the secrets' fingerprints from the job meta MetaSecrets.
func fingerprints(meta map[string]string) map[string]string {
	var fps map[string]string
	for _, pair := range strings.Split(meta[MetaSecrets], ",") {
		if n, fp, ok := strings.Cut(pair, "="); ok && n != "" {
			if fps == nil {
				fps = map[string]string{}
			}
			fps[n] = fp
		}
	}
	return fps
}

// usesVariable tells whether a job's task reads berth's variable for the job.
func usesVariable(job *api.Job) bool {
	if job == nil || len(job.TaskGroups) == 0 {
		return false
	}
	needle := fmt.Sprintf("nomadVar %q", variablePath(deref(job.ID)))
	for _, t := range job.TaskGroups[0].Tasks {
		for _, tp := range t.Templates {
			if strings.Contains(deref(tp.EmbeddedTmpl), needle) {
				return true
			}
		}
	}
	return false
}

// variableItems are the items of berth's variable for d: each SOPS secret's value by secret name; nil when the
// workload has none. A value Nomad cannot carry (not UTF-8, or a line break in an environment value) is a
// permanent error naming the secret, never showing the value.
func variableItems(d providers.Desired) (map[string]string, error) {
	var items map[string]string
	inEnv := map[string]bool{}
	for _, n := range d.Workload.SecretEnv {
		inEnv[n] = true
	}
	for _, n := range d.Workload.Secrets() {
		sec, err := lookup(d, n)
		if err != nil {
			return nil, err
		}
		if sec.Source.Kind() != schema.SecretSOPS {
			continue
		}
		switch v := sec.Value; {
		case !utf8.Valid(v):
			return nil, providers.Permanent(fmt.Errorf("secret %s: the value is not UTF-8 text, which a Nomad variable cannot hold", n))
		case inEnv[n] && strings.ContainsAny(string(v), "\r\n\x00"):
			return nil, providers.Permanent(fmt.Errorf("secret %s: an environment variable's value cannot span lines in Nomad's env template; deliver it as a file", n))
		}
		if items == nil {
			items = map[string]string{}
		}
		items[n] = string(sec.Value)
	}
	return items, nil
}

// ensureVariable makes berth's variable for job id hold exactly items: read, compare, and write with
// check-and-set on the ModifyIndex read (0: must not exist); a lost check-and-set reads again.
func (p *Provider) ensureVariable(ctx context.Context, id string, items map[string]string) error {
	path := variablePath(id)
	for attempt := 1; ; attempt++ {
		var cur *api.Variable
		if err := p.call(ctx, "Variables.Read", 0, func(ctx context.Context) error {
			var err error
			cur, _, err = p.client.Variables().Peek(path, p.query(ctx))
			return err
		}); err != nil {
			return fmt.Errorf("nomad variable %s: %w", path, err)
		}
		v := &api.Variable{Path: path, Items: items}
		if cur != nil {
			if maps.Equal(map[string]string(cur.Items), items) {
				return nil
			}
			v.ModifyIndex = cur.ModifyIndex
		}
		p.log.InfoContext(ctx, "writing nomad variable", "path", path, "cas", v.ModifyIndex, "items", len(items))
		err := p.call(ctx, "Variables.Write", 0, func(ctx context.Context) error {
			var err error
			if v.ModifyIndex == 0 {
				_, _, err = p.client.Variables().CheckedCreate(v, p.write(ctx))
			} else {
				_, _, err = p.client.Variables().CheckedUpdate(v, p.write(ctx))
			}
			return err
		})
		if errors.Is(err, errConflict) && attempt < p.RetryAttempts {
			p.log.InfoContext(ctx, "nomad variable changed since it was read; reading it again", "path", path)
			continue
		}
		if err != nil {
			return fmt.Errorf("nomad variable %s: %w", path, err)
		}
		return nil
	}
}

// deleteVariable removes berth's variable for job id; a missing one is no error.
func (p *Provider) deleteVariable(ctx context.Context, id string) error {
	path := variablePath(id)
	err := p.call(ctx, "Variables.Delete", 0, func(ctx context.Context) error {
		_, err := p.client.Variables().Delete(path, p.write(ctx))
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("nomad variable %s: %w", path, err)
	}
	return nil
}

// sameTemplates tells whether the live task renders what want's task does: the fields berth sets that every Nomad
// version keeps (once is left out: a server that predates it drops it, and berth would register again forever).
func sameTemplates(live, want *api.Task) bool {
	if (live.Vault != nil) != (want.Vault != nil) || len(live.Templates) != len(want.Templates) {
		return false
	}
	for i, a := range live.Templates {
		b := want.Templates[i]
		if deref(a.DestPath) != deref(b.DestPath) || deref(a.EmbeddedTmpl) != deref(b.EmbeddedTmpl) ||
			deref(a.Envvars) != deref(b.Envvars) || deref(a.Perms) != deref(b.Perms) ||
			deref(a.ChangeMode) != deref(b.ChangeMode) {
			return false
		}
	}
	return true
}
