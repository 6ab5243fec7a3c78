// Command sopsgen writes the SOPS fixtures of schema/secrets/testdata with the real sops library (v3.13.3) and
// cross-checks both ways: files encrypted by sops are decrypted by berth, files written by berth's sopstest are
// decrypted by sops. It is its own module so that berth does not depend on sops/v3. Run it from this directory:
//
//	GOFLAGS=-mod=mod go run . ..
//
// It overwrites the fixtures and the test identity, and prints any disagreement ("failures: 0" when none).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/decrypt"
	"github.com/getsops/sops/v3/keyservice"

	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/secrets"
	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

const plainYAML = `# database credentials
db:
  user: app # inline comment
  password: s3cr3t-db-Pa55
  port: 5432
  tls: true
  ratio: 0.25
  when: 2026-12-01T08:00:00Z
hosts:
  - a.example.com
  # a comment in a list
  - b.example.com
  - {name: c, pw: nested-in-list}
empty: ""
nothing: null
note_unencrypted: rotated by ops
api_token: tok-9f8e7d6c5b4a
`

const plainJSON = `{"db": {"password": "s3cr3t-db-Pa55", "port": 5432, "big": 12345678901234, "f": 1.5e3, "ok": false, "none": null}, "list": [1, "two", {"three": 3}], "x_unencrypted": 7}`

func sopsEncrypt(format string, plain []byte, rcp string, mutate func(*sops.Metadata)) []byte {
	cfg := config.NewStoresConfig()
	st := map[string]common.Store{
		"yaml":   common.DefaultStoreForPathOrFormat(cfg, "x.yaml", "yaml"),
		"json":   common.DefaultStoreForPathOrFormat(cfg, "x.json", "json"),
		"binary": common.DefaultStoreForPathOrFormat(cfg, "x.bin", "binary"),
	}[format]
	branches, err := st.LoadPlainFile(plain)
	must(err)
	mk, err := sopsage.MasterKeyFromRecipient(rcp)
	must(err)
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups:         []sops.KeyGroup{{mk}},
		UnencryptedSuffix: sops.DefaultUnencryptedSuffix,
		Version:           "3.13.3",
	}}
	if mutate != nil {
		mutate(&tree.Metadata)
	}
	dataKey, errs := tree.GenerateDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyservice.NewLocalClient()})
	if len(errs) > 0 {
		panic(fmt.Sprint(errs))
	}
	must(common.EncryptTree(common.EncryptTreeOpts{DataKey: dataKey, Tree: &tree, Cipher: aes.NewCipher()}))
	out, err := st.EmitEncryptedFile(tree)
	must(err)
	return out
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

type tb struct{ testing.TB }

func (tb) Helper()                   {}
func (tb) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (tb) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

func main() {
	id, err := age.GenerateX25519Identity()
	must(err)
	rcp := id.Recipient().String()
	d, err := secrets.ParseIdentities([]byte(id.String()), secrets.Options{})
	must(err)
	out := os.Args[1]
	files := map[string][]byte{
		"sops.enc.yaml":            sopsEncrypt("yaml", []byte(plainYAML), rcp, nil),
		"sops.enc.json":            sopsEncrypt("json", []byte(plainJSON), rcp, nil),
		"sops.pem.enc":             sopsEncrypt("binary", []byte("-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateBodyLine0123456789\n-----END CERTIFICATE-----\n"), rcp, nil),
		"sops-maconly.enc.yaml":    sopsEncrypt("yaml", []byte(plainYAML), rcp, func(m *sops.Metadata) { m.MACOnlyEncrypted = true }),
		"sops-encregex.enc.yaml":   sopsEncrypt("yaml", []byte(plainYAML), rcp, func(m *sops.Metadata) { m.UnencryptedSuffix = ""; m.EncryptedRegex = "^(password|api_token)$" }),
		"sops-unencregex.enc.yaml": sopsEncrypt("yaml", []byte(plainYAML), rcp, func(m *sops.Metadata) { m.UnencryptedSuffix = ""; m.UnencryptedRegex = "^(user|hosts)$" }),
		"sops-encsuffix.enc.yaml":  sopsEncrypt("yaml", []byte("a_secret: one-value\nb: two-value\n"), rcp, func(m *sops.Metadata) { m.UnencryptedSuffix = ""; m.EncryptedSuffix = "_secret" }),
		"sops-multi.enc.yaml":      sopsEncrypt("yaml", []byte("a: first-doc\n---\nb: second-doc\n"), rcp, nil),
	}
	tree := fstest.MapFS{}
	for n, b := range files {
		tree[n] = &fstest.MapFile{Data: b}
		must(os.WriteFile(filepath.Join(out, n), b, 0o644))
	}
	must(os.WriteFile(filepath.Join(out, "sops-test-identity.txt"), []byte("# A throwaway age identity for the fixtures of these tests only.\n"+id.String()+"\n"), 0o644))
	os.Setenv("SOPS_AGE_KEY", id.String())
	fails := 0
	check := func(file, key, want string) {
		got, err := d.Decrypt(context.Background(), tree, schema.Secret{Name: "x", SOPS: &schema.SOPSSecret{File: file, Key: key}})
		if err != nil || string(got) != want {
			fails++
			fmt.Printf("FAIL berth decrypting sops %s %q: %q, %v (want %q)\n", file, key, got, err, want)
			return
		}
		fmt.Printf("ok   berth decrypts sops %s %q\n", file, key)
	}
	for _, f := range []string{"sops.enc.yaml", "sops-maconly.enc.yaml", "sops-encregex.enc.yaml", "sops-unencregex.enc.yaml"} {
		check(f, "db.password", "s3cr3t-db-Pa55")
		check(f, "db.user", "app")
		check(f, "db.port", "5432")
		check(f, "db.tls", "true")
		check(f, "hosts.1", "b.example.com")
		check(f, "hosts.2.pw", "nested-in-list")
		check(f, "api_token", "tok-9f8e7d6c5b4a")
		check(f, "note_unencrypted", "rotated by ops")
		check(f, "db.when", "2026-12-01T08:00:00Z")
	}
	check("sops.enc.json", "db.password", "s3cr3t-db-Pa55")
	check("sops.enc.json", "db.big", "12345678901234")
	check("sops.enc.json", "db.f", "1500")
	check("sops.enc.json", "list.2.three", "3")
	check("sops.pem.enc", "", "-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateBodyLine0123456789\n-----END CERTIFICATE-----\n")
	check("sops-encsuffix.enc.yaml", "a_secret", "one-value")
	check("sops-encsuffix.enc.yaml", "b", "two-value")
	// whole files
	for _, f := range []string{"sops.enc.yaml", "sops.enc.json", "sops-multi.enc.yaml"} {
		got, err := d.Decrypt(context.Background(), tree, schema.Secret{Name: "x", SOPS: &schema.SOPSSecret{File: f}})
		ref, rerr := decrypt.Data(files[f], map[string]string{"sops.enc.yaml": "yaml", "sops.enc.json": "json", "sops-multi.enc.yaml": "yaml"}[f])
		fmt.Printf("---- whole %s (berth, err %v) same as sops -d: %v (%v)\n", f, err, string(got) == string(ref), rerr)
		must(os.WriteFile(filepath.Join(out, f+".sops-d"), ref, 0o644))
		if string(got) != string(ref) {
			fmt.Printf("%s---- sops -d:\n%s\n", got, ref)
		}
	}

	// The other direction: sopstest's files decrypted by sops.
	os.Setenv("SOPS_AGE_KEY", id.String())
	for _, c := range []struct {
		name   string
		format string
		plain  string
		o      sopstest.Options
	}{
		{"yaml", "yaml", "db:\n  password: s3cr3t\n  port: 5432\n  on: true\n  r: 0.5\nlist: [a, b]\nx_unencrypted: plain\n", sopstest.Options{}},
		{"yaml-maconly", "yaml", "db:\n  password: s3cr3t\nx_unencrypted: plain\n", sopstest.Options{MACOnlyEncrypted: true}},
		{"json", "json", plainJSON, sopstest.Options{Format: sopstest.JSON}},
		{"binary", "binary", "line one\nline two\n", sopstest.Options{Format: sopstest.Binary}},
		{"multi", "yaml", "a: 1\n---\nb: two\n", sopstest.Options{}},
	} {
		enc := sopstest.MustEncrypt(tb{}, []byte(c.plain), c.o, id.Recipient())
		clear, err := decrypt.Data(enc, c.format)
		if err != nil {
			fails++
			fmt.Printf("FAIL sops decrypting sopstest %s: %v\n", c.name, err)
			continue
		}
		fmt.Printf("ok   sops decrypts sopstest %s:\n%s\n", c.name, clear)
	}
	fmt.Println("failures:", fails)
}
