package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/berth-dev/berth/schema/secrets"
)

// TestSOPSFixtures decrypts files written by the sops library itself (v3.13.3, by testdata/sopsgen): comments,
// nested maps, lists, typed values, every encryption rule berth supports, several YAML documents, JSON and binary.
func TestSOPSFixtures(t *testing.T) {
	ids, err := os.ReadFile("testdata/sops-test-identity.txt")
	if err != nil {
		t.Fatal(err)
	}
	d, err := secrets.ParseIdentities(ids, secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tree := os.DirFS("testdata")
	values := map[string]string{
		"db.password": "s3cr3t-db-Pa55", "db.user": "app", "db.port": "5432", "db.tls": "true", "db.ratio": "0.25",
		"db.when": "2026-12-01T08:00:00Z", "hosts.1": "b.example.com", "hosts.2.pw": "nested-in-list",
		"api_token": "tok-9f8e7d6c5b4a", "note_unencrypted": "rotated by ops", "empty": "",
	}
	for _, f := range []string{"sops.enc.yaml", "sops-maconly.enc.yaml", "sops-encregex.enc.yaml", "sops-unencregex.enc.yaml"} {
		for k, want := range values {
			got, err := d.Decrypt(context.Background(), tree, sopsSecret(f, k))
			if err != nil || string(got) != want {
				t.Errorf("%s %s = %q, %v; want %q", f, k, got, err, want)
			}
		}
	}
	for _, c := range []struct{ file, key, want string }{
		{"sops.enc.json", "db.password", "s3cr3t-db-Pa55"},
		{"sops.enc.json", "db.big", "12345678901234"},
		{"sops.enc.json", "db.f", "1500"},
		{"sops.enc.json", "list.2.three", "3"},
		{"sops-encsuffix.enc.yaml", "a_secret", "one-value"},
		{"sops-encsuffix.enc.yaml", "b", "two-value"},
		{"sops.pem.enc", "", "-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateBodyLine0123456789\n-----END CERTIFICATE-----\n"},
	} {
		got, err := d.Decrypt(context.Background(), tree, sopsSecret(c.file, c.key))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %s = %q, %v; want %q", c.file, c.key, got, err, c.want)
		}
	}
	// A whole file is what `sops -d` prints (comments aside: this YAML has none, the JSON cannot).
	for _, f := range []string{"sops.enc.json", "sops-multi.enc.yaml"} {
		want, err := os.ReadFile("testdata/" + f + ".sops-d")
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decrypt(context.Background(), tree, sopsSecret(f, ""))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("whole %s:\n%s%v\nwant (sops -d):\n%s", f, got, err, want)
		}
	}
}

// TestSOPSFixtureEdited edits a value sops left in clear, as a tool rewriting plaintext keys would: the MAC no
// longer matches.
func TestSOPSFixtureEdited(t *testing.T) {
	ids, _ := os.ReadFile("testdata/sops-test-identity.txt")
	d, err := secrets.ParseIdentities(ids, secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/sops.enc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte("rotated by ops"), []byte("rotated by a bot"), 1)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/db.enc.yaml", edited, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = d.Decrypt(context.Background(), os.DirFS(dir), sopsSecret("db.enc.yaml", "db.password"))
	if !errors.Is(err, secrets.ErrIntegrity) {
		t.Errorf("error %v, want ErrIntegrity", err)
	}
}
