package marathon

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Labels naming the secrets of an app: names and fingerprints, never a value.
const (
	// LabelSecrets lists the secrets the app is given as "name=fingerprint" pairs joined by ",", sorted by name.
	LabelSecrets = "berth.dev/secrets"
	// LabelSecretEnv lists the environment variables set from a secret as "VARIABLE=secret" pairs joined by ",",
	// sorted by variable.
	LabelSecretEnv = "berth.dev/secret-env"
)

// secretEnv sets the secret environment variables of d on a as plain env values (Marathon without DC/OS Enterprise
// has no secret store: the value is part of the app definition), and the labels naming them. A secret of another
// kind, or a secret file, is a permanent error (the planner refuses both first).
func secretEnv(a *app, d providers.Desired) error {
	w := d.Workload
	if len(w.Files) > 0 {
		return providers.Permanent(fmt.Errorf("workload %s: files: Marathon cannot mount secret files without the DC/OS Enterprise secret store", w.Name))
	}
	if len(w.SecretEnv) == 0 {
		return nil
	}
	if a.Env == nil {
		a.Env = map[string]any{}
	}
	envs := slices.Sorted(maps.Keys(w.SecretEnv))
	used := make([]string, 0, len(envs))
	for _, env := range envs {
		n := w.SecretEnv[env]
		sec, ok := d.Secrets[n]
		switch {
		case !ok:
			return providers.Permanent(fmt.Errorf("workload %s: env.%s: secret %s was not resolved", w.Name, env, n))
		case sec.Source.Kind() != schema.SecretSOPS || sec.Value == nil:
			return providers.Permanent(fmt.Errorf("workload %s: env.%s: secret %s: %s secrets cannot be delivered to Marathon",
				w.Name, env, n, sec.Source.Kind()))
		}
		a.Env[env] = string(sec.Value)
		used = append(used, env+"="+n)
	}
	var fps []string
	for _, n := range w.Secrets() {
		fps = append(fps, n+"="+d.Secrets[n].Fingerprint)
	}
	a.Labels[LabelSecretEnv] = strings.Join(used, ",")
	a.Labels[LabelSecrets] = strings.Join(fps, ",")
	return nil
}

// pairs reads a "k=v,k2=v2" label; nil when empty.
func pairs(label string) map[string]string {
	var out map[string]string
	for _, p := range strings.Split(label, ",") {
		if k, v, ok := strings.Cut(p, "="); ok && k != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
