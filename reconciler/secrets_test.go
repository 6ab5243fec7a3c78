package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"filippo.io/age"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/secrets"
	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

// sopsConfig is a prod environment running web with DB_PASSWORD from the SOPS secret db, and worker without
// secrets, read from tree.
func sopsConfig(tree fstest.MapFS) *schema.Config {
	web := wl("web", "local", "app:1", 2)
	web.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	web.Pos = map[string]schema.Pos{"": {File: "berth.cue", Line: 7, Column: 2}, "env.DB_PASSWORD": {File: "berth.cue", Line: 9, Column: 15}}
	cfg := config([]string{"local"}, web, wl("worker", "local", "app:1", 1))
	ev := cfg.Environments["prod"]
	ev.Secrets = map[string]schema.Secret{"db": {Name: "db", Pos: schema.Pos{File: "berth.cue", Line: 3, Column: 13},
		SOPS: &schema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "password"}}}
	cfg.Environments["prod"] = ev
	cfg.Root = tree
	return cfg
}

func encrypt(t *testing.T, password string, to age.Recipient) *fstest.MapFile {
	t.Helper()
	return &fstest.MapFile{Data: sopstest.MustEncrypt(t, []byte("password: "+password+"\n"), sopstest.Options{}, to)}
}

func TestSOPSSecretDeliveredRotatedNeverShown(t *testing.T) {
	id := sopstest.NewIdentity(t)
	dec, err := secrets.NewDecrypter(secrets.Options{}, id)
	if err != nil {
		t.Fatal(err)
	}
	ps := map[string]*fake.Provider{"local": fake.New()}
	e := newTestEngine(t, ps, func(o *Options) { o.Secrets = &Secrets{Decrypter: dec, Key: dec.FingerprintKey()} })
	tree := fstest.MapFS{"secrets/db.enc.yaml": encrypt(t, "first-s3cret-value", id.Recipient())}
	ctx := context.Background()

	apply := func(cfg *schema.Config) *Plan {
		t.Helper()
		p, err := e.Plan(ctx, cfg, "prod", "r")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Apply(ctx, cfg, p); err != nil {
			t.Fatalf("apply:\n%s\n%v", p, err)
		}
		return p
	}
	shown := func(p *Plan) string {
		b, _ := json.Marshal(p)
		return p.String() + string(b)
	}
	first := apply(sopsConfig(tree))
	if v, _ := ps["local"].SecretValue("web", "db"); string(v) != "first-s3cret-value" {
		t.Fatalf("the runtime got %q", v)
	}
	again, _ := e.Plan(ctx, sopsConfig(tree), "prod", "r")
	if !again.Empty() {
		t.Fatalf("plan after the apply:\n%s", again)
	}

	tree["secrets/db.enc.yaml"] = encrypt(t, "second-s3cret-value", id.Recipient())
	rotated := apply(sopsConfig(tree))
	if len(rotated.Steps) != 1 || rotated.Steps[0].Reason != "spec changed" {
		t.Fatalf("a rotation is not a spec change of web alone:\n%s", rotated)
	}
	if c, ok := changeNamed(rotated.Steps[0], "secret db"); !ok || c.New != "(sensitive value changed)" {
		t.Errorf("rotation shown as %+v in:\n%s", c, rotated)
	}
	if v, _ := ps["local"].SecretValue("web", "db"); string(v) != "second-s3cret-value" {
		t.Fatalf("after the rotation the runtime has %q", v)
	}
	for _, p := range []*Plan{first, rotated} {
		if s := shown(p); strings.Contains(s, "s3cret") {
			t.Errorf("a plan shows the value:\n%s", s)
		}
	}
}

func changeNamed(s Step, path string) (Change, bool) {
	for _, c := range s.Changes {
		if c.Path == path {
			return c, true
		}
	}
	return Change{}, false
}

func TestSOPSSecretFailureFailsItsWorkloadOnly(t *testing.T) {
	id, other := sopstest.NewIdentity(t), sopstest.NewIdentity(t)
	dec, err := secrets.NewDecrypter(secrets.Options{}, id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		tree  fstest.MapFS
		dec   *secrets.Decrypter
		cause error
	}{
		{"wrong key", fstest.MapFS{"secrets/db.enc.yaml": encrypt(t, "x-s3cret", other.Recipient())}, dec, secrets.ErrNoIdentity},
		{"missing file", fstest.MapFS{}, dec, secrets.ErrFileNotFound},
		{"no identities", fstest.MapFS{"secrets/db.enc.yaml": encrypt(t, "x-s3cret", id.Recipient())}, nil, ErrNoIdentities},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := map[string]*fake.Provider{"local": fake.New()}
			seed(ps["local"], wl("web", "local", "app:0", 2)) // what runs must keep running
			e := newTestEngine(t, ps, func(o *Options) { o.Secrets = &Secrets{Decrypter: tc.dec} })
			cfg := sopsConfig(tc.tree)
			p, err := e.Plan(ctx, cfg, "prod", "r")
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Apply(ctx, cfg, p)
			if err == nil || res.Failed() != 1 {
				t.Fatalf("apply: %v\n%s", err, p)
			}
			for _, r := range res.Steps {
				switch r.Step.Workload {
				case "web":
					if r.OK || !strings.Contains(r.Error, "berth.cue:9:15: workload web") ||
						!strings.Contains(r.Error, "berth.cue:3:13: secret db") || !strings.Contains(r.Error, tc.cause.Error()) {
						t.Errorf("web's step: %s", r.Error)
					}
				case "worker":
					if !r.OK {
						t.Errorf("worker failed too: %s", r.Error)
					}
				}
			}
			for _, c := range ps["local"].Calls(false) {
				if c.Op == "apply" && c.Workload == "web" {
					t.Errorf("web was touched: %+v", c)
				}
			}
			if !errors.Is(res.Steps[0].Err, tc.cause) && !strings.Contains(res.Steps[0].Error, tc.cause.Error()) {
				t.Errorf("cause lost: %v", res.Steps[0].Err)
			}
		})
	}
}
