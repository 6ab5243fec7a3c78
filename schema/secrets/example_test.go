package secrets_test

import (
	"context"
	"fmt"
	"testing/fstest"

	"filippo.io/age"

	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
	"github.com/berth-dev/berth/schema/secrets"
	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

func Example() {
	// The controller's identity (in production: secrets.ageIdentities of the serve configuration).
	id, _ := age.GenerateX25519Identity()
	d, _ := secrets.ParseIdentities([]byte(id.String()), secrets.Options{})

	// A repository with a SOPS file, as `sops -e --age <recipient>` writes it.
	enc, _ := sopstest.Encrypt([]byte("db:\n  password: correct-horse-battery\n"), sopstest.Options{}, id.Recipient())
	tree := fstest.MapFS{"secrets/db.enc.yaml": {Data: enc}}

	// env.Secrets["db"] of a rendered environment.
	s := schema.Secret{Name: "db", SOPS: &schema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "db.password"},
		Pos: schema.Pos{File: "berth.cue", Line: 4, Column: 1}}
	v, err := d.Decrypt(context.Background(), tree, s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(v), "bytes")
	fmt.Println(redact.String("DB_PASSWORD=" + string(v)))
	fmt.Println(len(secrets.Fingerprint(d.FingerprintKey(), v)), "hex digits in a label")

	s.SOPS.Key = "db.pasword"
	_, err = d.Decrypt(context.Background(), tree, s)
	fmt.Println(err)
	// Output:
	// 21 bytes
	// DB_PASSWORD=[redacted]
	// 16 hex digits in a label
	// berth.cue:4:1: secret db (secrets/db.enc.yaml): key not found: db has no key "pasword" (keys there: password)
}
