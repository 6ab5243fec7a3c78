package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"filippo.io/age"

	"github.com/berth-dev/berth/schema/secrets"
)

// bombYAML is a billion laughs: nine levels of nine aliases.
const bombYAML = `a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// hostile are SOPS files a hostile repository could hold: each fails at once with a *secrets.Error.
var hostile = map[string]string{
	"bomb.enc.yaml": bombYAML + "sops: {lastmodified: \"2026-01-01T00:00:00Z\", mac: x, age: [{recipient: r, enc: e}]}\n",
	// The bomb in a second document: sops's duplicate-key check decodes only the first.
	"bomb2.enc.yaml":     "x: 1\n---\n" + bombYAML,
	"deep.enc.json":      strings.Repeat(`{"a":`, 5000) + `"x"` + strings.Repeat("}", 5000),
	"deep.enc.yaml":      "a: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n",
	"sops-list.enc.yaml": "sops: [1, 2]\n",
	"seq.enc.yaml":       "- a\n- b\n",
	"twice.enc.yaml":     "a: 1\na: 2\nsops: {mac: x}\n",
	"keys.enc.yaml":      "1: a\nsops: {mac: x}\n",
	"groups.enc.yaml":    "a: x\nsops: {lastmodified: \"2026-01-01T00:00:00Z\", mac: x, key_groups: [{age: []}, {age: []}], shamir_threshold: 2}\n",
	"rules.enc.yaml":     "a: x\nsops: {lastmodified: \"2026-01-01T00:00:00Z\", mac: x, encrypted_regex: a, unencrypted_suffix: b, age: [{recipient: r, enc: e}]}\n",
	"comment.enc.yaml":   "a: x\nsops: {lastmodified: \"2026-01-01T00:00:00Z\", mac: x, encrypted_comment_regex: a, age: [{recipient: r, enc: e}]}\n",
}

func TestHostileFiles(t *testing.T) {
	tree := fstest.MapFS{}
	for n, b := range hostile {
		tree[n] = &fstest.MapFile{Data: []byte(b)}
	}
	d := decrypter(t, mustIdentity(t))
	for n := range hostile {
		start := time.Now()
		_, err := d.Decrypt(context.Background(), tree, sopsSecret(n, "a"))
		var se *secrets.Error
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v, want a *secrets.Error", n, err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s: took %v", n, el)
		}
		t.Logf("%s: %v", n, err)
	}
}

// FuzzDecrypt decrypts arbitrary files: it must never panic, and must fail with a *secrets.Error or succeed.
func FuzzDecrypt(f *testing.F) {
	fixtures, _ := filepath.Glob("testdata/*.enc*")
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, strings.HasSuffix(p, ".json"), "db.password")
	}
	for _, b := range hostile {
		f.Add([]byte(b), false, "a")
	}
	ids, err := os.ReadFile("testdata/sops-test-identity.txt")
	if err != nil {
		f.Fatal(err)
	}
	d, err := secrets.ParseIdentities(ids, secrets.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file []byte, asJSON bool, key string) {
		name := "f.enc.yaml"
		if asJSON {
			name = "f.enc.json"
		}
		if strings.ContainsAny(key, " \t\n") || strings.Contains(key, "..") || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
			key = "db.password" // the schema refuses such keys
		}
		_, err := d.Decrypt(context.Background(), fstest.MapFS{name: {Data: file}}, sopsSecret(name, key))
		var se *secrets.Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %T %v, want a *secrets.Error", err, err)
		}
	})
}

func mustIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
