package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"

	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
	"github.com/berth-dev/berth/schema/secrets"
	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

const plainYAML = `db:
    user: app
    password: s3cr3t-db-Pa55
    port: 5432
    tls: true
    ratio: 0.25
hosts:
    - a.example.com
    - b.example.com
empty: ""
note_unencrypted: rotated by ops
api_token: tok-9f8e7d6c5b4a
`

var declared = schema.Pos{File: "secrets.cue", Line: 3, Column: 2}

func sopsSecret(file, key string) schema.Secret {
	return schema.Secret{Name: "db", SOPS: &schema.SOPSSecret{File: file, Key: key}, Pos: declared}
}

func decrypter(t *testing.T, ids ...*age.X25519Identity) *secrets.Decrypter {
	t.Helper()
	var lines []string
	for _, id := range ids {
		lines = append(lines, id.String())
	}
	d, err := secrets.ParseIdentities([]byte("# berth test identities\n"+strings.Join(lines, "\n")+"\n"), secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecryptValues(t *testing.T) {
	other, id := sopstest.NewIdentity(t), sopstest.NewIdentity(t)
	tree := fstest.MapFS{
		"secrets/db.enc.yaml":       {Data: sopstest.MustEncrypt(t, []byte(plainYAML), sopstest.Options{}, other.Recipient(), id.Recipient())},
		"secrets/db.enc.json":       {Data: sopstest.MustEncrypt(t, []byte(`{"db": {"password": "s3cr3t-db-Pa55", "port": 5432}, "n": 1.50}`), sopstest.Options{Format: sopstest.JSON}, id.Recipient())},
		"secrets/tls.pem.enc":       {Data: sopstest.MustEncrypt(t, []byte("-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateBodyLine0123456789\n-----END CERTIFICATE-----\n"), sopstest.Options{Format: sopstest.Binary}, id.Recipient())},
		"secrets/mac-only.enc.yaml": {Data: sopstest.MustEncrypt(t, []byte(plainYAML), sopstest.Options{MACOnlyEncrypted: true}, id.Recipient())},
	}
	d := decrypter(t, id)
	for _, c := range []struct{ file, key, want string }{
		{"secrets/db.enc.yaml", "db.password", "s3cr3t-db-Pa55"},
		{"secrets/db.enc.yaml", "db.user", "app"},
		{"secrets/db.enc.yaml", "db.port", "5432"},
		{"secrets/db.enc.yaml", "db.tls", "true"},
		{"secrets/db.enc.yaml", "db.ratio", "0.25"},
		{"secrets/db.enc.yaml", "hosts.1", "b.example.com"},
		{"secrets/db.enc.yaml", "empty", ""},
		{"secrets/db.enc.yaml", "note_unencrypted", "rotated by ops"},
		{"secrets/db.enc.yaml", "api_token", "tok-9f8e7d6c5b4a"},
		{"secrets/db.enc.json", "db.password", "s3cr3t-db-Pa55"},
		{"secrets/db.enc.json", "db.port", "5432"},
		{"secrets/db.enc.json", "n", "1.5"},
		{"secrets/tls.pem.enc", "", "-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateBodyLine0123456789\n-----END CERTIFICATE-----\n"},
		{"secrets/tls.pem.enc", "data", "-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateBodyLine0123456789\n-----END CERTIFICATE-----\n"},
		{"secrets/mac-only.enc.yaml", "db.password", "s3cr3t-db-Pa55"},
	} {
		got, err := d.Decrypt(context.Background(), tree, sopsSecret(c.file, c.key))
		if err != nil {
			t.Errorf("%s %s: %v", c.file, c.key, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s %s = %q, want %q", c.file, c.key, got, c.want)
		}
	}
	// Every returned value is registered for redaction.
	if s := redact.String("password=s3cr3t-db-Pa55 cert=MIIBfakeCertificateBodyLine0123456789"); strings.Contains(s, "s3cr3t") || strings.Contains(s, "MIIBfakeCertificateBodyLine0123456789") {
		t.Errorf("decrypted values are not redacted: %s", s)
	}
}

func TestDecryptWholeDocument(t *testing.T) {
	id := sopstest.NewIdentity(t)
	tree := fstest.MapFS{
		"app.enc.yaml": {Data: sopstest.MustEncrypt(t, []byte(plainYAML), sopstest.Options{}, id.Recipient())},
		"app.enc.json": {Data: sopstest.MustEncrypt(t, []byte(`{"a": {"b": ["x", 2, true]}, "c": "only-in-whole-json"}`), sopstest.Options{Format: sopstest.JSON}, id.Recipient())},
	}
	d := decrypter(t, id)
	got, err := d.Decrypt(context.Background(), tree, sopsSecret("app.enc.yaml", ""))
	if err != nil {
		t.Fatal(err)
	}
	var gotV, wantV any
	if err := yaml.Unmarshal(got, &gotV); err != nil {
		t.Fatalf("whole document is not YAML: %v", err)
	}
	if err := yaml.Unmarshal([]byte(plainYAML), &wantV); err != nil {
		t.Fatal(err)
	}
	if g, w := mustYAML(t, gotV), mustYAML(t, wantV); g != w {
		t.Errorf("whole document:\n%s\nwant\n%s", g, w)
	}
	if strings.Contains(string(got), "sops") {
		t.Errorf("whole document keeps the sops metadata:\n%s", got)
	}
	got, err = d.Decrypt(context.Background(), tree, sopsSecret("app.enc.json", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n\t\"a\": {\n\t\t\"b\": [\n\t\t\t\"x\",\n\t\t\t2,\n\t\t\ttrue\n\t\t]\n\t},\n\t\"c\": \"only-in-whole-json\"\n}\n"
	if string(got) != want {
		t.Errorf("whole JSON document:\n%s\nwant\n%s", got, want)
	}
	// A whole-file secret's values are masked one by one too.
	if s := redact.String("c=only-in-whole-json"); strings.Contains(s, "only-in-whole-json") {
		t.Errorf("leaf of a whole-file secret not redacted: %s", s)
	}
}

func mustYAML(t *testing.T, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecryptErrors: each failure is an *Error naming the secret, its declaration and its file, wrapping a cause
// that errors.Is finds, and quoting no value.
func TestDecryptErrors(t *testing.T) {
	id, wrong := sopstest.NewIdentity(t), sopstest.NewIdentity(t)
	enc := sopstest.MustEncrypt(t, []byte(plainYAML), sopstest.Options{}, id.Recipient())
	edited := bytes.Replace(enc, []byte("note_unencrypted: rotated by ops"), []byte("note_unencrypted: rotated by renovate"), 1)
	if bytes.Equal(edited, enc) {
		t.Fatal("the plaintext field was not found")
	}
	macRE := regexp.MustCompile(`mac: ENC\[AES256_GCM,data:([A-Za-z0-9+/])`)
	badMAC := macRE.ReplaceAllFunc(enc, func(m []byte) []byte {
		m = bytes.Clone(m)
		if m[len(m)-1] == 'A' {
			m[len(m)-1] = 'B'
		} else {
			m[len(m)-1] = 'A'
		}
		return m
	})
	valRE := regexp.MustCompile(`password: ENC\[AES256_GCM,data:([A-Za-z0-9+/])`)
	badValue := valRE.ReplaceAllFunc(enc, func(m []byte) []byte {
		m = bytes.Clone(m)
		m[len(m)-1] ^= 1
		return m
	})
	tree := fstest.MapFS{
		"db.enc.yaml":     {Data: enc},
		"edited.enc.yaml": {Data: edited},
		"badmac.enc.yaml": {Data: badMAC},
		"badval.enc.yaml": {Data: badValue},
		"plain.yaml":      {Data: []byte(plainYAML)},
		"garbage.json":    {Data: []byte("not json at all")},
		"db.env":          {Data: []byte("A=1\n")},
		"kms.enc.yaml":    {Data: []byte("a: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\nsops:\n    kms:\n        - arn: arn:aws:kms:eu-west-1:123456789012:key/x\n          enc: AAAA\n    lastmodified: \"2026-01-01T00:00:00Z\"\n    mac: x\n    version: 3.13.3\n")},
		"dir/x.enc.yaml":  {Data: enc},
		"big.enc.yaml":    {Data: bytes.Repeat([]byte("a"), 2<<20)},
	}
	good, bad := decrypter(t, id), decrypter(t, wrong)
	for _, c := range []struct {
		name  string
		d     *secrets.Decrypter
		s     schema.Secret
		cause error
		says  string
	}{
		{"wrong key", bad, sopsSecret("db.enc.yaml", "db.password"), secrets.ErrNoIdentity, "encrypted for " + id.Recipient().String() + "; this controller holds " + wrong.Recipient().String()},
		{"edited plaintext", good, sopsSecret("edited.enc.yaml", "db.password"), secrets.ErrIntegrity, "MAC mismatch"},
		{"corrupted MAC", good, sopsSecret("badmac.enc.yaml", "db.password"), secrets.ErrIntegrity, "MAC cannot be opened"},
		{"corrupted value", good, sopsSecret("badval.enc.yaml", "db.user"), secrets.ErrIntegrity, "value at db.password"},
		{"missing key", good, sopsSecret("db.enc.yaml", "db.pasword"), secrets.ErrKeyNotFound, `db has no key "pasword" (keys there: user, password, port, tls, ratio)`},
		{"missing index", good, sopsSecret("db.enc.yaml", "hosts.7"), secrets.ErrKeyNotFound, "hosts is a list of 2"},
		{"key at a map", good, sopsSecret("db.enc.yaml", "db"), secrets.ErrKeyNotFound, "db is a map, not a single value"},
		{"below a value", good, sopsSecret("db.enc.yaml", "api_token.x"), secrets.ErrKeyNotFound, "api_token is a single value"},
		{"missing file", good, sopsSecret("secrets/gone.enc.yaml", "x"), secrets.ErrFileNotFound, "secrets/gone.enc.yaml is not in the repository"},
		{"missing dir", good, sopsSecret("dir", "x"), secrets.ErrNotSOPS, "not a regular file"},
		{"not encrypted", good, sopsSecret("plain.yaml", "db.password"), secrets.ErrNotSOPS, "no sops metadata"},
		{"not json", good, sopsSecret("garbage.json", "x"), secrets.ErrNotSOPS, "not valid JSON"},
		{"dotenv", good, sopsSecret("db.env", "A"), secrets.ErrUnsupported, "dotenv format is not supported"},
		{"kms only", good, sopsSecret("kms.enc.yaml", "a"), secrets.ErrNoIdentity, "encrypted only for kms"},
		{"too big", good, sopsSecret("big.enc.yaml", "a"), secrets.ErrNotSOPS, "more than the 1048576"},
		{"a reference", good, schema.Secret{Name: "db", AWS: &schema.AWSSecret{ARN: "arn:aws:ssm:eu-west-1:123456789012:parameter/x"}, Pos: declared}, secrets.ErrNotSOPSSecret, "its source is aws"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := c.d.Decrypt(context.Background(), tree, c.s)
			if err == nil {
				t.Fatalf("decrypted %q, want an error", v)
			}
			var se *secrets.Error
			if !errors.As(err, &se) || se.Secret != "db" || se.Pos != declared {
				t.Fatalf("error %v is not a positioned *secrets.Error", err)
			}
			if !errors.Is(err, c.cause) {
				t.Errorf("error %v does not wrap %v", err, c.cause)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "secrets.cue:3:2: secret db") || !strings.Contains(msg, c.says) {
				t.Errorf("error %q does not say %q", msg, c.says)
			}
			for _, v := range []string{"s3cr3t", "tok-9f8e", "AGE-SECRET-KEY"} {
				if strings.Contains(msg, v) {
					t.Errorf("error quotes %s: %s", v, msg)
				}
			}
		})
	}
}

func TestDecryptRefusesSymlinks(t *testing.T) {
	id := sopstest.NewIdentity(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "db.enc.yaml"), sopstest.MustEncrypt(t, []byte(plainYAML), sopstest.Options{}, id.Recipient()), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "db.enc.yaml"), filepath.Join(repo, "link.enc.yaml")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "dir")); err != nil {
		t.Fatal(err)
	}
	d := decrypter(t, id)
	for _, f := range []string{"link.enc.yaml", "dir/db.enc.yaml"} {
		_, err := d.Decrypt(context.Background(), os.DirFS(repo), sopsSecret(f, "db.password"))
		if !errors.Is(err, secrets.ErrNotSOPS) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s: error %v, want a refused symbolic link", f, err)
		}
	}
}

func TestDecryptCancelled(t *testing.T) {
	id := sopstest.NewIdentity(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := decrypter(t, id).Decrypt(ctx, fstest.MapFS{}, sopsSecret("x.enc.yaml", "k"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestParseIdentitiesNeverQuotesKeys(t *testing.T) {
	id := sopstest.NewIdentity(t)
	broken := id.String()[:len(id.String())-3] + "QQQ"
	for _, c := range []struct{ in, says string }{
		{"# only a comment\n\n", "no age identity found"},
		{"# key\n" + broken + "\n", "line 2: not a valid age identity"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\n", "line 1: not an age identity"},
	} {
		_, err := secrets.ParseIdentities([]byte(c.in), secrets.Options{})
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseIdentities(%.20q) = %v, want %q", c.in, err, c.says)
		}
		if err != nil && (strings.Contains(err.Error(), id.String()[:30]) || strings.Contains(err.Error(), "QQQ")) {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}

func TestLoadIdentities(t *testing.T) {
	a, b := sopstest.NewIdentity(t), sopstest.NewIdentity(t)
	file := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(file, []byte("# created: 2026-12-01\n# public key: "+a.Recipient().String()+"\n"+a.String()+"\n"+b.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := secrets.LoadIdentities(&schema.SecretRef{File: file, Field: "secrets.ageIdentities"}, secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fromFile.Recipients(); len(got) != 2 || got[0] != a.Recipient().String() {
		t.Errorf("recipients %v", got)
	}
	t.Setenv("BERTH_TEST_AGE_KEYS", "  "+b.String()+"\r\n"+a.String())
	fromEnv, err := secrets.LoadIdentities(&schema.SecretRef{Env: "BERTH_TEST_AGE_KEYS", Field: "secrets.ageIdentities"}, secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The fingerprint key depends on the set of identities, not on their order or source.
	if !bytes.Equal(fromFile.FingerprintKey(), fromEnv.FingerprintKey()) {
		t.Error("fingerprint keys differ for the same identities")
	}
	if s := redact.String("key " + a.String()); strings.Contains(s, "AGE-SECRET-KEY") {
		t.Errorf("identity not redacted: %s", s)
	}
	_, err = secrets.LoadIdentities(&schema.SecretRef{Env: "BERTH_TEST_NO_SUCH_VAR", Field: "secrets.ageIdentities", Pos: schema.Pos{File: "serve.cue", Line: 4, Column: 3}}, secrets.Options{})
	if err == nil || !strings.Contains(err.Error(), "serve.cue:4:3: secrets.ageIdentities: environment variable BERTH_TEST_NO_SUCH_VAR is not set") {
		t.Errorf("missing variable: %v", err)
	}
	if _, err := secrets.LoadIdentities(nil, secrets.Options{}); err == nil {
		t.Error("no reference: want an error")
	}
}

func TestFingerprint(t *testing.T) {
	k1, k2 := []byte("key one, 32 bytes long, roughly."), []byte("key two, 32 bytes long, roughly.")
	f := secrets.Fingerprint(k1, []byte("hunter2"))
	if len(f) != secrets.FingerprintLen || strings.Trim(f, "0123456789abcdef") != "" {
		t.Errorf("fingerprint %q is not %d hex digits", f, secrets.FingerprintLen)
	}
	if secrets.Fingerprint(k1, []byte("hunter2")) != f {
		t.Error("fingerprint is not stable")
	}
	if secrets.Fingerprint(k1, []byte("hunter3")) == f || secrets.Fingerprint(k2, []byte("hunter2")) == f {
		t.Error("fingerprint does not depend on both the key and the value")
	}
	k, err := secrets.NewFingerprintKey()
	if err != nil || len(k) != 32 {
		t.Errorf("NewFingerprintKey: %d bytes, %v", len(k), err)
	}
}

// TestEncryptedFileHoldsNoClearValue guards the test helper itself: nothing it encrypts is left in clear.
func TestEncryptedFileHoldsNoClearValue(t *testing.T) {
	id := sopstest.NewIdentity(t)
	enc := sopstest.MustEncrypt(t, []byte(plainYAML), sopstest.Options{LastModified: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}, id.Recipient())
	for _, v := range []string{"s3cr3t", "tok-9f8e", "b.example.com", "5432"} {
		if bytes.Contains(enc, []byte(v)) {
			t.Errorf("encrypted file holds %q in clear:\n%s", v, enc)
		}
	}
	if !bytes.Contains(enc, []byte(`lastmodified: "2026-12-01T08:00:00Z"`)) {
		t.Errorf("lastmodified not written as sops does:\n%s", enc)
	}
}
