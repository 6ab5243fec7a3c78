package providers

import (
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/schema"
)

func TestSecretsRecordAndWhere(t *testing.T) {
	w := schema.Workload{Name: "web", SecretEnv: map[string]string{"DB_PASSWORD": "db"},
		Files: map[string]schema.File{"/run/secrets/tls.pem": {Secret: "tls"}},
		Pos:   map[string]schema.Pos{"": {File: "berth.cue", Line: 9, Column: 2}, "env.DB_PASSWORD": {File: "berth.cue", Line: 14, Column: 17}}}
	secrets := map[string]Secret{
		"db":  {Name: "db", Value: []byte("hunter2-value"), Fingerprint: "0123456789abcdef", Source: schema.Secret{Pos: schema.Pos{File: "berth.cue", Line: 6, Column: 11}}},
		"tls": {Name: "tls", Value: []byte("-----BEGIN"), Fingerprint: "fedcba9876543210"},
	}
	rec := FormatSecretsRecord(w, secrets)
	if strings.Contains(rec, "hunter2") || !strings.Contains(rec, "0123456789abcdef") {
		t.Fatalf("record %s", rec)
	}
	back := ParseSecretsRecord(rec)
	if back.Env["DB_PASSWORD"] != "db" || back.Files["/run/secrets/tls.pem"] != "tls" || back.Fingerprints["tls"] != "fedcba9876543210" {
		t.Errorf("read back %+v", back)
	}
	if got := ParseSecretsRecord("{damaged"); got.Env != nil || got.Fingerprints != nil {
		t.Errorf("a damaged record reads as %+v", got)
	}
	if got := secrets["db"].Where(w); got != "berth.cue:14:17: workload web: secret db (berth.cue:6:11)" {
		t.Errorf("Where = %q", got)
	}
	if got := SecretField(w, "tls"); got != "files./run/secrets/tls.pem" {
		t.Errorf("SecretField = %q", got)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := sprintf(verb, secrets["db"]); strings.Contains(s, "hunter2") {
			t.Errorf("%s shows the value: %s", verb, s)
		}
	}
}

func sprintf(verb string, v any) string { return fmt.Sprintf(verb, v) }
