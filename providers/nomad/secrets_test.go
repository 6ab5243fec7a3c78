package nomad_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/schema"
)

// The clear values of the secret tests: no golden file, error or read-back may hold them.
const (
	dbValue      = "s3cr3t-db-password-one"
	dbRotated    = "s3cr3t-db-password-two"
	apiValue     = "s3cr3t-api-key-in-nomad"
	tlsValue     = "-----BEGIN KEY-----\ns3cr3t-tls-key\n-----END KEY-----\n"
	placeholder  = "(secret value)"
	apiVarPath   = "nomad/jobs/shared/api"
	tlsVaultPath = "secret/data/web/tls"
)

var secretValues = []string{dbValue, dbRotated, apiValue, "s3cr3t-tls-key"}

func sopsSecret(name, value string) providers.Secret {
	return providers.Secret{Name: name, Source: schema.Secret{Name: name, SOPS: &schema.SOPSSecret{File: "secrets/" + name + ".enc.yaml"}},
		Value: []byte(value), Fingerprint: "fp-" + shortFP(value)}
}

// shortFP stands in for the controller's keyed fingerprint: distinct per value, shows nothing of it.
func shortFP(v string) string {
	for i, s := range secretValues {
		if s == v {
			return string(rune('a' + i))
		}
	}
	return "z"
}

func refSecret(name string, src schema.Secret) providers.Secret {
	src.Name = name
	return providers.Secret{Name: name, Source: src, Fingerprint: "ref-" + name}
}

// secretWorkload: DB_PASSWORD from SOPS, API_KEY from a Nomad variable, a TLS key file from Vault.
func secretWorkload(name, db string) (schema.Workload, map[string]providers.Secret) {
	w := referenceWorkload(name)
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db", "API_KEY": "api"}
	w.Files = map[string]schema.File{"/secrets/tls.key": {Secret: "tls"}}
	return w, map[string]providers.Secret{
		"db":  sopsSecret("db", db),
		"api": refSecret("api", schema.Secret{Nomad: &schema.NomadSecret{Path: apiVarPath, Key: "key"}}),
		"tls": refSecret("tls", schema.Secret{Vault: &schema.VaultSecret{Path: tlsVaultPath, Key: "pem"}}),
	}
}

func desiredSecrets(owner providers.Owner, tgt string, w schema.Workload, ss map[string]providers.Secret) providers.Desired {
	return providers.Desired{Owner: owner, Target: tgt, Workload: w, SpecHash: providers.DesiredHash(w, ss), Secrets: ss}
}

func secretEmulator(t *testing.T) *nomademu.Server {
	emu := emulator(t)
	emu.SetVariable(testNamespace, apiVarPath, map[string]string{"key": apiValue})
	emu.SetVaultSecret(tlsVaultPath, map[string]string{"pem": tlsValue})
	return emu
}

// TestGoldenSecrets records the native mapping of secrets: berth's variable at the job's path written with
// check-and-set before the register, the env template and the file template, the vault block, the fingerprints in
// meta; a rotation; the removal of the variable once the job no longer reads it; a delete. Clear values in the
// variable writes are replaced by a placeholder before the comparison.
func TestGoldenSecrets(t *testing.T) {
	hermetic(t)
	emu := secretEmulator(t)
	p := newProvider(t, emu, "nomad-prod")
	ctx := testCtx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w, ss := secretWorkload("web", dbValue)
	plain := referenceWorkload("web")
	steps := []struct {
		golden string
		run    func() error
	}{
		{"secret-create", func() error { return p.Apply(ctx, desiredSecrets(owner, "nomad-prod", w, ss)) }},
		{"secret-rotate", func() error {
			_, rotated := secretWorkload("web", dbRotated)
			return p.Apply(ctx, desiredSecrets(owner, "nomad-prod", w, rotated))
		}},
		{"secret-drop", func() error { return p.Apply(ctx, desired(owner, "nomad-prod", plain)) }},
		{"secret-delete", func() error {
			if err := p.Apply(ctx, desiredSecrets(owner, "nomad-prod", w, ss)); err != nil {
				return err
			}
			emu.ResetRequests()
			return p.Delete(ctx, owner, "nomad-prod", "web")
		}},
	}
	for _, s := range steps {
		emu.ResetRequests()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.golden, err)
		}
		got := normalise(t, placeholders(t, emu.Requests()))
		for _, v := range secretValues {
			if strings.Contains(string(got), v) {
				t.Fatalf("%s: a request other than a variable write carries a secret's value:\n%s", s.golden, got)
			}
		}
		conformance.Golden(t, filepath.Join("testdata", s.golden+".golden"), got, *update)
	}
	if _, ok := emu.Variable(testNamespace, "nomad/jobs/berth-berth-prod-web"); ok {
		t.Fatal("the variable is left after Delete")
	}
}

// placeholders replaces the items' values of variable writes, the only requests that carry clear values.
func placeholders(t *testing.T, reqs []nomademu.Request) []nomademu.Request {
	t.Helper()
	out := make([]nomademu.Request, len(reqs))
	for i, r := range reqs {
		out[i] = r
		if !strings.HasPrefix(r.Path, "/v1/var/") || len(r.Body) == 0 {
			continue
		}
		var v api.Variable
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
		for k := range v.Items {
			v.Items[k] = placeholder
		}
		out[i].Body, _ = json.Marshal(v)
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

// TestSecretDelivery: each kind reaches the task (the emulator renders the templates as the client would), the
// read-back shows names and fingerprints only, an untouched workload is not registered again, a rotation rolls
// every allocation onto the new value.
func TestSecretDelivery(t *testing.T) {
	hermetic(t)
	emu := secretEmulator(t)
	p := newProvider(t, emu, "nomad")
	ctx := testCtx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	const job = "berth-berth-prod-web"
	w, ss := secretWorkload("web", dbValue)
	if err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, ss)); err != nil {
		t.Fatal(err)
	}
	check := func(db string) {
		t.Helper()
		allocs := emu.LiveAllocs(testNamespace, job)
		if len(allocs) != w.Replicas {
			t.Fatalf("%d live allocations, want %d", len(allocs), w.Replicas)
		}
		for _, id := range allocs {
			env, _ := emu.AllocEnv(id)
			file, _ := emu.AllocFile(id, "secrets/tls.key")
			if env["DB_PASSWORD"] != db || env["API_KEY"] != apiValue || env["GREETING"] != "hello" || file != tlsValue {
				t.Fatalf("allocation %s started with DB_PASSWORD %t, API_KEY %t, GREETING %q, tls.key %t", id,
					env["DB_PASSWORD"] == db, env["API_KEY"] == apiValue, env["GREETING"], file == tlsValue)
			}
		}
	}
	check(dbValue)
	v, ok := emu.Variable(testNamespace, "nomad/jobs/"+job)
	if !ok || len(v.Items) != 1 || v.Items["db"] != dbValue {
		t.Fatalf("berth's variable: %v, items %d; want the SOPS value alone", ok, len(v.Items))
	}

	obs, err := p.List(ctx, owner, "nomad")
	if err != nil || len(obs) != 1 {
		t.Fatalf("List: %d, %v", len(obs), err)
	}
	o := obs[0]
	b, _ := json.Marshal(o)
	for _, v := range secretValues {
		if strings.Contains(string(b), v) {
			t.Fatalf("the read-back holds a value: %s", b)
		}
	}
	want := map[string]string{"db": ss["db"].Fingerprint, "api": "ref-api", "tls": "ref-tls"}
	if !equalMaps(o.SecretFingerprints, want) || !equalMaps(o.Spec.SecretEnv, w.SecretEnv) ||
		len(o.Spec.Files) != 1 || o.Spec.Files["/secrets/tls.key"].Secret != "tls" || o.SpecHash != providers.DesiredHash(w, ss) {
		t.Fatalf("read back fingerprints %v, secretEnv %v, files %v, hash %s", o.SecretFingerprints, o.Spec.SecretEnv,
			o.Spec.Files, o.SpecHash)
	}

	emu.ResetRequests()
	if err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, ss)); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" {
			t.Fatalf("Apply of an untouched workload wrote: %s %s", r.Method, r.Path)
		}
	}

	_, rotated := secretWorkload("web", dbRotated)
	if err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, rotated)); err != nil {
		t.Fatal(err)
	}
	check(dbRotated)
}

// TestVariableCheckAndSet: the variable is created with cas=0 and updated with cas=<the ModifyIndex read>; a lost
// check-and-set (another writer between the read and the write) reads again and wins on the next write.
func TestVariableCheckAndSet(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx := testCtx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	const path = "nomad/jobs/berth-berth-prod-web"
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	one := map[string]providers.Secret{"db": sopsSecret("db", dbValue)}
	emu.Fail(1, nomademu.VariableConflict)
	if err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, one)); err != nil {
		t.Fatal(err)
	}
	writes := varWrites(emu.Requests())
	if len(writes) != 2 || writes[0] != "PUT /v1/var/"+path+"?cas=0" || !strings.Contains(writes[1], "?cas=") ||
		strings.Contains(writes[1], "cas=0") {
		t.Fatalf("variable writes %v; want a create with cas=0 lost to another writer, then an update with its index", writes)
	}
	v, _ := emu.Variable(testNamespace, path)
	if v.Items["db"] != dbValue || len(v.Items) != 1 {
		t.Fatalf("after the conflict the variable holds %d items, db set %t", len(v.Items), v.Items["db"] == dbValue)
	}
	index := v.ModifyIndex
	emu.ResetRequests()
	two := map[string]providers.Secret{"db": sopsSecret("db", dbRotated)}
	if err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, two)); err != nil {
		t.Fatal(err)
	}
	writes = varWrites(emu.Requests())
	if len(writes) != 1 || writes[0] != "PUT /v1/var/"+path+"?cas="+uitoa(index) {
		t.Fatalf("rotation wrote %v; want one update with cas=%d", writes, index)
	}
	// The variable is written before the job is registered: the new allocations render it when they start.
	var order []string
	for _, r := range emu.Requests() {
		if r.Method == "PUT" {
			order = append(order, strings.SplitN(r.Path, "?", 2)[0])
		}
	}
	if len(order) < 2 || order[0] != "/v1/var/"+path || order[1] != "/v1/jobs" {
		t.Fatalf("writes in order %v; want the variable before the register", order)
	}

	// A check-and-set lost on every try within the budget is an error, not a blind overwrite.
	p.RetryAttempts = 2
	emu.Fail(2, nomademu.VariableConflict)
	three := map[string]providers.Secret{"db": sopsSecret("db", dbValue)}
	err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, three))
	if err == nil || !strings.Contains(err.Error(), "cas conflict") {
		t.Fatalf("Apply through lost check-and-sets: %v", err)
	}
	assertNoValue(t, err)
}

func varWrites(reqs []nomademu.Request) []string {
	var out []string
	for _, r := range reqs {
		if strings.HasPrefix(r.Path, "/v1/var/") && r.Method != "GET" {
			out = append(out, r.Method+" "+r.Path[:strings.Index(r.Path+"&", "&")])
		}
	}
	return out
}

func uitoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func assertNoValue(t *testing.T, err error) {
	t.Helper()
	for _, v := range secretValues {
		if err != nil && strings.Contains(err.Error(), v) {
			t.Fatalf("the error shows a secret's value: %v", err)
		}
	}
}

// TestDeleteRemovesVariable: Delete removes berth's variable with the job, and also when only the variable is
// left (a crash between its write and the register).
func TestDeleteRemovesVariable(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx := testCtx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	const path = "nomad/jobs/berth-berth-prod-web"
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	if err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, map[string]providers.Secret{"db": sopsSecret("db", dbValue)})); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.Variable(testNamespace, path); !ok {
		t.Fatal("no variable after Apply")
	}
	if err := p.Delete(ctx, owner, "nomad", "web"); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.Variable(testNamespace, path); ok || emu.JobExists(testNamespace, "berth-berth-prod-web") {
		t.Fatal("Delete left the variable or the job")
	}
	emu.SetVariable(testNamespace, path, map[string]string{"db": dbValue}) // left by a crash
	if err := p.Delete(ctx, owner, "nomad", "web"); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.Variable(testNamespace, path); ok {
		t.Fatal("Delete of a workload without a job left its variable")
	}
}

// TestVariableRefused: a path Nomad refuses (too long for its variable paths) and items over its 64 KiB limit are
// Nomad 500s that no retry passes: permanent at once, one write, nothing registered, no value in the error.
func TestVariableRefused(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx := testCtx(t)
	for _, c := range []struct {
		name, instance, value, want string
	}{
		{"oversized path", strings.Repeat("i", 120), dbValue, "invalid path"},
		{"oversized value", "berth", dbValue + strings.Repeat("x", nomademu.MaxVariableSize), "64KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			emu.ResetRequests()
			owner := providers.Owner{Instance: c.instance, Environment: "prod"}
			w := referenceWorkload("web")
			w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
			err := p.Apply(ctx, desiredSecrets(owner, "nomad", w, map[string]providers.Secret{"db": sopsSecret("db", c.value)}))
			if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "500") {
				t.Fatalf("Apply: %v; want a permanent 500 saying %q", err, c.want)
			}
			assertNoValue(t, err)
			if n := len(varWrites(emu.Requests())); n != 1 {
				t.Fatalf("%d variable writes, want 1 (no retry)", n)
			}
			for _, r := range emu.Requests() {
				if r.Path == "/v1/jobs?namespace=berth&region=global" {
					t.Fatal("the job was registered although its variable was refused")
				}
			}
		})
	}
}

// TestSecretProblems: files outside the task directory mounts are refused at plan time; an env value on several
// lines is refused at apply, naming the secret only.
func TestSecretProblems(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	w.Files = map[string]schema.File{"/run/secrets/db": {Secret: "db"}, "/secrets/env.env": {Secret: "db"},
		"/secrets/ok": {Secret: "db"}, "/local/ok": {Secret: "db"}}
	got := map[string]bool{}
	for _, pr := range p.Validate(w) {
		got[pr.Field] = true
	}
	if !got["files./run/secrets/db"] || !got["files./secrets/env.env"] || got["files./secrets/ok"] || got["files./local/ok"] {
		t.Fatalf("Validate reported %v", got)
	}
	caps := p.Capabilities()
	if !caps.SecretFiles || strings.Join(caps.SecretKinds, ",") != "sops,nomad,vault" {
		t.Fatalf("capabilities %+v", caps)
	}

	w.Files = nil
	ml := "line one " + dbValue + "\nline two"
	err := p.Apply(testCtx(t), desiredSecrets(providers.Owner{Instance: "berth", Environment: "prod"}, "nomad", w,
		map[string]providers.Secret{"db": sopsSecret("db", ml)}))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "secret db") {
		t.Fatalf("Apply of a multi-line env secret: %v", err)
	}
	assertNoValue(t, err)
	if len(emu.Requests()) != 0 {
		t.Fatalf("%d requests for a refused secret, want none", len(emu.Requests()))
	}
}

// TestVariableMissing: berth's variable removed by hand shows as a missing object (from the variables' metadata,
// never their items); Apply writes it again without registering the job.
func TestVariableMissing(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx := testCtx(t)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	const path = "nomad/jobs/berth-berth-prod-web"
	w := referenceWorkload("web")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	d := desiredSecrets(owner, "nomad", w, map[string]providers.Secret{"db": sopsSecret("db", dbValue)})
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	missing := func() []string {
		t.Helper()
		obs, err := p.List(ctx, owner, "nomad")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List: %v, %v", obs, err)
		}
		return obs[0].Missing
	}
	if m := missing(); len(m) != 0 {
		t.Fatalf("missing %v after Apply", m)
	}
	if _, err := operator(t, emu).Variables().Delete(path, nil); err != nil { // `nomad var purge`
		t.Fatal(err)
	}
	if m := missing(); len(m) != 1 || m[0] != "Nomad variable "+path {
		t.Fatalf("missing %v, want the variable", m)
	}
	emu.ResetRequests()
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests() {
		if r.Method == "PUT" && strings.HasPrefix(r.Path, "/v1/jobs") {
			t.Fatal("the job was registered again to repair its variable")
		}
	}
	if v, ok := emu.Variable(testNamespace, path); !ok || v.Items["db"] != dbValue {
		t.Fatal("Apply did not write the variable again")
	}
	if m := missing(); len(m) != 0 {
		t.Fatalf("missing %v after the repair", m)
	}
}
