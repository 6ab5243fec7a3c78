package providers

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/berth-dev/berth/schema"
)

// SecretsRecord is what a provider writes beside a workload's objects about its secrets, so that List can read
// them back: the names (which variable and which file comes from which secret) and the fingerprints, never a
// value. Providers that keep it in one label, tag or meta value use FormatSecretsRecord and ParseSecretsRecord.
type SecretsRecord struct {
	// Env maps an environment variable to its secret (Workload.SecretEnv).
	Env map[string]string `json:"env,omitempty"`
	// Files maps a path to its secret (Workload.Files).
	Files map[string]string `json:"files,omitempty"`
	// Fingerprints are the secrets' fingerprints, by name (Observed.SecretFingerprints).
	Fingerprints map[string]string `json:"fingerprints,omitempty"`
}

// FormatSecretsRecord is the record of w's secrets as JSON, "" for a workload without any.
func FormatSecretsRecord(w schema.Workload, secrets map[string]Secret) string {
	names := w.Secrets()
	if len(names) == 0 {
		return ""
	}
	r := SecretsRecord{Env: maps.Clone(w.SecretEnv), Fingerprints: map[string]string{}}
	for path, f := range w.Files {
		if r.Files == nil {
			r.Files = map[string]string{}
		}
		r.Files[path] = f.Secret
	}
	for _, n := range names {
		r.Fingerprints[n] = secrets[n].Fingerprint
	}
	b, _ := json.Marshal(r) // maps of strings: cannot fail; keys come out sorted
	return string(b)
}

// ParseSecretsRecord reads a record written by FormatSecretsRecord; a damaged one reads as none (the plan then
// shows the secrets as changed, and the apply rewrites it).
func ParseSecretsRecord(s string) SecretsRecord {
	var r SecretsRecord
	if s == "" || json.Unmarshal([]byte(s), &r) != nil {
		return SecretsRecord{}
	}
	return r
}

// CheckSOPSOnly says why d's secrets cannot be delivered by a runtime that resolves no store reference (runtime
// names it in the message): a secret that is not a SOPS value berth decrypted, or one missing from d.Secrets. It
// names the secret, never a value.
func CheckSOPSOnly(d Desired, runtime string) error {
	for _, n := range d.Workload.Secrets() {
		s, ok := d.Secrets[n]
		switch {
		case !ok:
			return fmt.Errorf("secret %s: not resolved for this workload", n)
		case s.Source.Kind() != schema.SecretSOPS && s.Source.Kind() != "":
			return fmt.Errorf("secret %s: a %s reference cannot be resolved by %s; use a SOPS secret", n, s.Source.Kind(), runtime)
		case s.Value == nil:
			return fmt.Errorf("secret %s: no value was resolved", n)
		}
	}
	return nil
}

// SecretField is the first field of w that uses secret name: "env.DB_PASSWORD" or "files./run/secrets/db" ("env"
// when none does).
func SecretField(w schema.Workload, name string) string {
	for _, k := range slices.Sorted(maps.Keys(w.SecretEnv)) {
		if w.SecretEnv[k] == name {
			return "env." + k
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.Files)) {
		if w.Files[k].Secret == name {
			return "files." + k
		}
	}
	return "env"
}

// Where names secret s of workload w for an error: the place that uses it, the workload, and where the secret was
// declared: "berth.cue:14:17: workload web: secret db (berth.cue:6:11)".
func (s Secret) Where(w schema.Workload) string {
	var b []byte
	if p := w.Position(SecretField(w, s.Name)); p.File != "" {
		b = fmt.Appendf(b, "%s: ", p)
	}
	b = fmt.Appendf(b, "workload %s: secret %s", w.Name, s.Name)
	if s.Source.Pos.File != "" {
		b = fmt.Appendf(b, " (%s)", s.Source.Pos)
	}
	return string(b)
}
