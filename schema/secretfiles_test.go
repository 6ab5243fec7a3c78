package schema

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestSecretFilesOutliveTheTree(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("secrets/db.enc.yaml", "password: ENC[...]\n")
	write("outside.yaml", "x")
	if err := os.Symlink("../outside.yaml", filepath.Join(dir, "secrets", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Environments: map[string]Environment{"prod": {Secrets: map[string]Secret{
		"db":      {SOPS: &SOPSSecret{File: "secrets/db.enc.yaml"}},
		"link":    {SOPS: &SOPSSecret{File: "secrets/link.yaml"}},
		"missing": {SOPS: &SOPSSecret{File: "secrets/none.yaml"}},
		"ref":     {AWS: &AWSSecret{ARN: "arn:aws:secretsmanager:eu-west-1:1:secret:x"}},
	}}}}
	withSecretFiles(cfg, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(cfg.Root, "secrets/db.enc.yaml"); err != nil || string(b) != "password: ENC[...]\n" {
		t.Errorf("captured file: %q, %v", b, err)
	}
	if fi, err := fs.Lstat(cfg.Root, "secrets/link.yaml"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("a link is not kept as a link: %v, %v", fi, err)
	}
	if _, err := fs.Stat(cfg.Root, "secrets/none.yaml"); err == nil {
		t.Error("a missing file appeared")
	}
	if _, err := fs.Stat(cfg.Root, "outside.yaml"); err == nil {
		t.Error("a file no secret names was captured")
	}
}
