package marathon_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

// The clear values of the secret tests: no golden file, error or read-back may hold them.
const (
	dbValue     = "s3cr3t-marathon-db-one"
	dbRotated   = "s3cr3t-marathon-db-two"
	placeholder = "(secret value)"
)

var secretValues = []string{dbValue, dbRotated}

func sopsSecret(name, value, fp string) providers.Secret {
	return providers.Secret{Name: name, Source: schema.Secret{Name: name, SOPS: &schema.SOPSSecret{File: "secrets/" + name + ".enc.yaml"}},
		Value: []byte(value), Fingerprint: fp}
}

func secretWorkload(name string) schema.Workload {
	w := referenceWorkload(name)
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	return w
}

func desiredSecrets(o providers.Owner, tgt string, w schema.Workload, ss map[string]providers.Secret) providers.Desired {
	return providers.Desired{Owner: o, Target: tgt, Workload: w, SpecHash: providers.DesiredHash(w, ss), Secrets: ss}
}

// TestGoldenSecrets records what berth sends for a SOPS secret: the value as a plain env value of the app (Marathon
// has no secret store without DC/OS Enterprise), the labels naming the variable, the secret and its fingerprint;
// then a rotation (a new definition: Marathon's rolling restart) and a delete. The env values that come from a
// secret (those the berth.dev/secret-env label names) are replaced by a placeholder before the comparison.
func TestGoldenSecrets(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "marathon-prod", nil)
	c := ctx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := secretWorkload("web")
	one := map[string]providers.Secret{"db": sopsSecret("db", dbValue, "fp-one")}
	two := map[string]providers.Secret{"db": sopsSecret("db", dbRotated, "fp-two")}
	steps := []struct {
		golden string
		run    func() error
	}{
		{"secret-create", func() error { return p.Apply(c, desiredSecrets(owner, "marathon-prod", w, one)) }},
		{"secret-rotate", func() error { return p.Apply(c, desiredSecrets(owner, "marathon-prod", w, two)) }},
		{"secret-delete", func() error { return p.Delete(c, owner, "marathon-prod", "web") }},
	}
	for _, s := range steps {
		emu.ResetRequests()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.golden, err)
		}
		got := normalise(t, placeholders(t, emu.Requests()))
		for _, v := range secretValues {
			if strings.Contains(string(got), v) {
				t.Fatalf("%s: a secret's value outside the env the label names:\n%s", s.golden, got)
			}
		}
		conformance.Golden(t, filepath.Join("testdata", s.golden+".golden"), got, *update)
	}
}

// placeholders replaces, in app definitions sent, the env values that the berth.dev/secret-env label says come
// from a secret.
func placeholders(t *testing.T, reqs []marathonemu.Request) []marathonemu.Request {
	t.Helper()
	out := make([]marathonemu.Request, len(reqs))
	for i, r := range reqs {
		out[i] = r
		if r.Method != http.MethodPut || len(r.Body) == 0 {
			continue
		}
		var def map[string]any
		if err := json.Unmarshal(r.Body, &def); err != nil {
			t.Fatal(err)
		}
		labels, _ := def["labels"].(map[string]any)
		env, _ := def["env"].(map[string]any)
		names, _ := labels[marathon.LabelSecretEnv].(string)
		for _, pair := range strings.Split(names, ",") {
			if k, _, ok := strings.Cut(pair, "="); ok {
				env[k] = placeholder
			}
		}
		out[i].Body, _ = json.Marshal(def)
	}
	return out
}

// TestNoSecretInGoldens: no file under testdata holds a value of the secret tests.
func TestNoSecretInGoldens(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata: %v, %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range secretValues {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds a secret test value", f)
			}
		}
	}
}

// TestSecretEnv: the task sees the value, the read-back shows the variable's secret name and fingerprint only (no
// value anywhere in Observed), an untouched workload is not sent again, a value changed by hand in the app's env
// is put back by Apply, and a rotation restarts the tasks onto the new value.
func TestSecretEnv(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "marathon", nil)
	c := ctx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	const id = "/berth/berth/prod/web"
	w := secretWorkload("web")
	one := map[string]providers.Secret{"db": sopsSecret("db", dbValue, "fp-one")}
	if err := p.Apply(c, desiredSecrets(owner, "marathon", w, one)); err != nil {
		t.Fatal(err)
	}
	sees := func(want string) {
		t.Helper()
		tasks := emu.Tasks(id)
		if len(tasks) != w.Replicas {
			t.Fatalf("%d tasks, want %d", len(tasks), w.Replicas)
		}
		for _, tk := range tasks {
			if env, _ := emu.TaskEnv(id, tk); env["DB_PASSWORD"] != want || env["GREETING"] != "hello" {
				t.Fatalf("task %s: DB_PASSWORD set as wanted %t, GREETING %q", tk, env["DB_PASSWORD"] == want, env["GREETING"])
			}
		}
	}
	sees(dbValue)
	obs, err := p.List(c, owner, "marathon")
	if err != nil || len(obs) != 1 {
		t.Fatalf("List: %v, %v", obs, err)
	}
	b, _ := json.Marshal(obs[0])
	if strings.Contains(string(b), dbValue) {
		t.Fatalf("the read-back holds the value: %s", b)
	}
	o := obs[0]
	if o.Spec.SecretEnv["DB_PASSWORD"] != "db" || len(o.Spec.SecretEnv) != 1 || o.Spec.Env["DB_PASSWORD"] != "" ||
		o.SecretFingerprints["db"] != "fp-one" || len(o.SecretFingerprints) != 1 {
		t.Fatalf("read back secretEnv %v, fingerprints %v, env has DB_PASSWORD %t", o.Spec.SecretEnv, o.SecretFingerprints,
			o.Spec.Env["DB_PASSWORD"] != "")
	}

	emu.ResetRequests()
	if err := p.Apply(c, desiredSecrets(owner, "marathon", w, one)); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests() {
		if r.Method != http.MethodGet {
			t.Fatalf("Apply of an untouched workload sent %s %s", r.Method, r.Path)
		}
	}

	a := getApp(t, emu, id) // the value edited by hand in the UI
	for _, k := range []string{"version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks"} {
		delete(a, k)
	}
	a["env"].(map[string]any)["DB_PASSWORD"] = "by hand"
	putApp(t, emu, id, a)
	if err := p.Apply(c, desiredSecrets(owner, "marathon", w, one)); err != nil {
		t.Fatal(err)
	}
	sees(dbValue)

	two := map[string]providers.Secret{"db": sopsSecret("db", dbRotated, "fp-two")}
	if err := p.Apply(c, desiredSecrets(owner, "marathon", w, two)); err != nil {
		t.Fatal(err)
	}
	sees(dbRotated)

	// Without the secret, the variable and the labels go.
	if err := p.Apply(c, desired(owner, "marathon", referenceWorkload("web"))); err != nil {
		t.Fatal(err)
	}
	a = getApp(t, emu, id)
	if _, ok := a["env"].(map[string]any)["DB_PASSWORD"]; ok || a["labels"].(map[string]any)[marathon.LabelSecrets] != nil {
		t.Fatalf("after dropping the secret: env has DB_PASSWORD %t, labels %v", ok, a["labels"])
	}
}

// TestSecretRefused: what Marathon cannot deliver (a store reference, a file) is a permanent error naming the field,
// before any request; Capabilities say so first, for the planner.
func TestSecretRefused(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "marathon", nil)
	if caps := p.Capabilities(); caps.SecretFiles || strings.Join(caps.SecretKinds, ",") != "sops" {
		t.Fatalf("capabilities %+v", caps)
	}
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	ref := providers.Secret{Name: "db", Source: schema.Secret{Vault: &schema.VaultSecret{Path: "secret/data/db", Key: "pw"}}, Fingerprint: "r"}
	w := secretWorkload("web")
	files := referenceWorkload("web")
	files.Files = map[string]schema.File{"/run/secrets/db": {Secret: "db"}}
	for name, d := range map[string]providers.Desired{
		"reference": desiredSecrets(owner, "marathon", w, map[string]providers.Secret{"db": ref}),
		"file":      desiredSecrets(owner, "marathon", files, map[string]providers.Secret{"db": sopsSecret("db", dbValue, "f")}),
	} {
		err := p.Apply(ctx(t), d)
		if !errors.Is(err, providers.ErrPermanent) || strings.Contains(err.Error(), dbValue) {
			t.Errorf("%s: %v, want a permanent error without the value", name, err)
		}
	}
	if n := len(emu.Requests()); n != 0 {
		t.Fatalf("%d requests for refused secrets", n)
	}
}
