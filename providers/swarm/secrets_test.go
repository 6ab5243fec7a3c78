package swarm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

const (
	testSecretValue = "swarm-env-secret-never-in-a-label"
	testFileValue   = "swarm-file-secret-never-in-a-label"
	secretPath      = "/run/secrets/key"
)

// secretDesired is d for w with GREETING from secret "greeting" and secret "key" at secretPath.
func secretDesired(o providers.Owner, target string, w schema.Workload, greeting, key string) providers.Desired {
	delete(w.Env, "GREETING")
	w.SecretEnv = map[string]string{"GREETING": "greeting"}
	w.Files = map[string]schema.File{secretPath: {Secret: "key"}}
	src := schema.Secret{SOPS: &schema.SOPSSecret{File: "secrets/s.enc.yaml", Key: "k"}}
	secrets := map[string]providers.Secret{
		"greeting": {Name: "greeting", Source: src, Value: []byte(greeting), Fingerprint: fingerprint(greeting)},
		"key":      {Name: "key", Source: src, Value: []byte(key), Fingerprint: fingerprint(key)},
	}
	return providers.Desired{Owner: o, Target: target, Workload: w, SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
}

func fingerprint(v string) string { return providers.SpecHash(schema.Workload{Name: v}) + "0000" }

// placeholders replaces each secret's clear value by a placeholder in b (plain and base64, as JSON encodes data).
func placeholders(b []byte, d providers.Desired) []byte {
	for n, s := range d.Secrets {
		b = bytes.ReplaceAll(b, s.Value, []byte("<value of secret "+n+">"))
		b = bytes.ReplaceAll(b, []byte(base64.StdEncoding.EncodeToString(s.Value)), []byte("<value of secret "+n+">"))
	}
	return b
}

// TestGoldenSecrets records the native mapping of secrets: the env secret a value of ContainerSpec.Env, the file
// secret a swarm secret object (ownership labels, secret name and fingerprint, the value as data) referenced by
// the task template at its path with mode 0400, and the service's berth.dev/secrets label with names and
// fingerprints. Clear values are replaced by placeholders before writing or comparing.
func TestGoldenSecrets(t *testing.T) {
	d := secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, "swarm-prod", referenceWorkload("web"),
		testSecretValue, testFileValue)
	spec, err := berthswarm.ServiceSpecFor(d, "<network-id>", berthswarm.DefaultUpdateMonitor)
	if err != nil {
		t.Fatal(err)
	}
	obj := berthswarm.SecretObjectSpec(d, "key")
	berthswarm.SetSecretIDs(&spec, map[string]string{obj.Name: "<secret-id>"})
	if !strings.Contains(strings.Join(spec.TaskTemplate.ContainerSpec.Env, "\n"), "GREETING="+testSecretValue) ||
		string(obj.Data) != testFileValue {
		t.Fatalf("the values are not delivered: env %d entries, data of %d bytes", len(spec.TaskTemplate.ContainerSpec.Env), len(obj.Data))
	}
	for _, labels := range []map[string]string{spec.Labels, spec.TaskTemplate.ContainerSpec.Labels, obj.Labels} {
		b, _ := json.Marshal(labels)
		if bytes.Contains(b, []byte(testSecretValue)) || bytes.Contains(b, []byte(testFileValue)) {
			t.Fatalf("a label holds a value: %s", b)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"service": spec, "secretObjects": []swarm.SecretSpec{obj}}); err != nil {
		t.Fatal(err)
	}
	got := placeholders(buf.Bytes(), d)
	path := filepath.Join("testdata", "web-secrets.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("secret mapping differs from %s (run with -update after review):\n%s", path, got)
	}
}

// TestNoGoldenHoldsASecret: no file under testdata holds a test secret's value, plain or base64.
func TestNoGoldenHoldsASecret(t *testing.T) {
	vals := []string{testSecretValue, testFileValue}
	for _, v := range vals[:2] {
		vals = append(vals, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	filepath.WalkDir("testdata", func(path string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, v := range vals {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds a test secret's value", path)
			}
		}
		return nil
	})
}

// TestSecretsReadBack: a service made for a workload with secrets reads back with their names and fingerprints,
// equal to the desired workload, and without any value; a file reference removed by hand reads as changed.
func TestSecretsReadBack(t *testing.T) {
	d := secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, "swarm-prod", referenceWorkload("web"),
		testSecretValue, testFileValue)
	spec, err := berthswarm.ServiceSpecFor(d, "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	svc := swarm.Service{ID: "s1", Spec: spec}
	o := berthswarm.Observe(svc, nil, "swarm-prod", nil)
	if b, _ := json.Marshal(o); bytes.Contains(b, []byte(testSecretValue)) || bytes.Contains(b, []byte(testFileValue)) {
		t.Fatalf("the observation holds a value: %s", b)
	}
	p := newUnitProvider(t)
	want := p.Normalize(d.Workload)
	if providers.SpecHash(o.Spec) != providers.SpecHash(want) {
		t.Fatalf("read back %+v\nwant      %+v", o.Spec, want)
	}
	if o.Spec.SecretEnv["GREETING"] != "greeting" || o.Spec.Files[secretPath].Secret != "key" || o.Spec.Env["GREETING"] != "" {
		t.Fatalf("read back %+v", o.Spec)
	}
	if o.SecretFingerprints["greeting"] != d.Secrets["greeting"].Fingerprint || o.SecretFingerprints["key"] != d.Secrets["key"].Fingerprint {
		t.Fatalf("fingerprints %v", o.SecretFingerprints)
	}
	cs := *svc.Spec.TaskTemplate.ContainerSpec
	cs.Env = []string{"PORT=8080"}
	edited := svc
	edited.Spec.TaskTemplate.ContainerSpec = &cs
	if got := berthswarm.ReadBack(edited); got.SecretEnv["GREETING"] != "" || providers.SpecHash(got) == providers.SpecHash(want) {
		t.Fatalf("a secret variable removed by hand reads back as %+v", got.SecretEnv)
	}
	svc.Spec.TaskTemplate.ContainerSpec.Secrets = nil
	if got := berthswarm.ReadBack(svc); len(got.Files) != 0 || providers.SpecHash(got) == providers.SpecHash(want) {
		t.Fatalf("a removed file reference reads back as %+v", got.Files)
	}
}

func TestSecretObjectName(t *testing.T) {
	o := providers.Owner{Instance: "berth", Environment: "prod"}
	if got := berthswarm.SecretObjectName(o, "web", "db", "0123456789abcdef"); got != "berth-berth-prod-web-db-0123456789abcdef" {
		t.Errorf("name %q", got)
	}
	long := berthswarm.SecretObjectName(providers.Owner{Instance: strings.Repeat("i", 40), Environment: "prod"}, "web",
		"database_password", "0123456789abcdef")
	if len(long) > 64 || !strings.HasSuffix(long, "-0123456789abcdef") || !strings.HasPrefix(long, "berth-") {
		t.Errorf("long name %q (%d)", long, len(long))
	}
	if a, b := berthswarm.SecretObjectName(o, "web", "db", "fp1"), berthswarm.SecretObjectName(o, "web", "db", "fp2"); a == b {
		t.Errorf("a rotated value keeps the object name %q", a)
	}
	if got := berthswarm.SecretObjectName(o, "web", "db", "x/y:z"+strings.Repeat("0", 30)); len(got) > 64 || strings.ContainsAny(got, "/:") {
		t.Errorf("odd fingerprint: %q", got)
	}
}

func TestFileOwner(t *testing.T) {
	for user, want := range map[string][2]int{"": {0, 0}, "root": {0, 0}, "1000": {1000, 1000}, "1000:2000": {1000, 2000}} {
		if uid, gid, err := berthswarm.FileOwner(user); err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("user %q: %d:%d, %v", user, uid, gid, err)
		}
	}
	if _, _, err := berthswarm.FileOwner("app"); err == nil {
		t.Error("user by name: no error")
	}
}

// TestSecretsOnSwarm: on a real swarm, the file secret is a swarm secret object that each task's container sees at
// its path (mode 0400, the value), the env secret is in the containers' environment, no label of the service,
// the tasks or the objects holds a value, and List reads names and fingerprints; a rotation makes a new object,
// updates the service start-first and removes the old object; Delete removes the workload's objects.
func TestSecretsOnSwarm(t *testing.T) {
	cli := swarmClient(t)
	testImages(t, cli)
	owner := testOwner(t)
	t.Cleanup(func() { sweep(t, cli, owner.Instance) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()
	const target = "swarm-it"
	p := newTestProvider(t, cli, target, owner.Instance)
	w := workerWorkload("web")
	w.Replicas = 2
	apply := func(greeting, key string) providers.Desired {
		t.Helper()
		d := secretDesired(owner, target, w, greeting, key)
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return d
	}
	check := func(d providers.Desired, greeting, key string) {
		t.Helper()
		obs, err := p.List(ctx, owner, target)
		if err != nil || len(obs) != 1 {
			t.Fatalf("List: %+v, %v", obs, err)
		}
		o := obs[0]
		if b, _ := json.Marshal(o); bytes.Contains(b, []byte(greeting)) || bytes.Contains(b, []byte(key)) {
			t.Fatalf("List reads a value back: %s", b)
		}
		if o.SpecHash != d.SpecHash || o.Spec.SecretEnv["GREETING"] != "greeting" || o.Spec.Files[secretPath].Secret != "key" ||
			o.SecretFingerprints["key"] != d.Secrets["key"].Fingerprint {
			t.Fatalf("read back %+v, fingerprints %v", o, o.SecretFingerprints)
		}
		if leak := swarmLeaks(ctx, t, cli, owner, greeting) + swarmLeaks(ctx, t, cli, owner, key); leak != "" {
			t.Fatalf("the swarm holds a value in %s", leak)
		}
		objs, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(
			filters.Arg("label", providers.LabelInstance+"="+owner.Instance))})
		if err != nil {
			t.Fatal(err)
		}
		wantName := berthswarm.SecretObjectName(owner, "web", "key", d.Secrets["key"].Fingerprint)
		if len(objs) != 1 || objs[0].Spec.Name != wantName || objs[0].Spec.Labels[berthswarm.LabelSecretFingerprint] != d.Secrets["key"].Fingerprint {
			t.Fatalf("secret objects %+v, want one named %s", objs, wantName)
		}
		cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", providers.LabelInstance+"="+owner.Instance),
			filters.Arg("label", providers.LabelSpecHash+"="+d.SpecHash))})
		if err != nil || len(cs) != 2 {
			t.Fatalf("running containers of the spec: %d, %v", len(cs), err)
		}
		for _, c := range cs {
			ci, err := cli.ContainerInspect(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(ci.Config.Env, "\n"), "GREETING="+greeting) {
				t.Errorf("container %s: GREETING not in its environment", ci.Name)
			}
			// The engine's archive calls do not see a task's secret mounts (they show the empty mount point), and
			// a scratch image has no cat: the task's own reference to the object says what swarm mounts there.
			tk, _, err := cli.TaskInspectWithRaw(ctx, ci.Config.Labels["com.docker.swarm.task.id"])
			if err != nil {
				t.Fatalf("inspect the task of %s: %v", ci.Name, err)
			}
			refs := tk.Spec.ContainerSpec.Secrets
			if len(refs) != 1 || refs[0].SecretID != objs[0].ID || refs[0].File == nil || refs[0].File.Name != secretPath ||
				refs[0].File.Mode != berthswarm.SecretFileMode || refs[0].File.UID != "0" {
				t.Errorf("task %s: secret references %+v, want %s at %s mode 0400", tk.ID, refs, objs[0].ID, secretPath)
			}
		}
	}
	d := apply(testSecretValue, testFileValue)
	check(d, testSecretValue, testFileValue)
	svc, _, err := cli.ServiceInspectWithRaw(ctx, berthswarm.ServiceName(owner, "web"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apply(testSecretValue, testFileValue)
	if again, _, err := cli.ServiceInspectWithRaw(ctx, svc.ID, swarm.ServiceInspectOptions{}); err != nil || again.Version != svc.Version {
		t.Fatalf("a repeated Apply updated the service: %v → %v (%v)", svc.Version, again.Version, err)
	}

	d2 := apply("rotated-env-value", "rotated-file-value")
	if d2.SpecHash == d.SpecHash {
		t.Fatal("the rotation kept the spec hash")
	}
	check(d2, "rotated-env-value", "rotated-file-value")
	svc, _, err = cli.ServiceInspectWithRaw(ctx, svc.ID, swarm.ServiceInspectOptions{})
	if err != nil || svc.Spec.UpdateConfig.Order != swarm.UpdateOrderStartFirst {
		t.Fatalf("service %+v, %v", svc.Spec.UpdateConfig, err)
	}

	if err := p.Delete(ctx, owner, target, "web"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	objs, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelInstance+"="+owner.Instance))})
	if err != nil || len(objs) != 0 {
		t.Fatalf("secret objects after Delete: %+v, %v", objs, err)
	}
}

// TestSecretReferenceRefused: a store reference is refused before anything changes, naming the secret.
func TestSecretReferenceRefused(t *testing.T) {
	p := newUnitProvider(t)
	d := secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, "s", referenceWorkload("web"), "a", "b")
	s := d.Secrets["key"]
	s.Source, s.Value = schema.Secret{AWS: &schema.AWSSecret{}}, nil
	d.Secrets["key"] = s
	err := p.Apply(t.Context(), d)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "secret key") {
		t.Fatalf("Apply with an AWS reference: %v", err)
	}
}

// swarmLeaks searches the labels and names of the instance's services (and their task templates), tasks, secret
// objects, networks and containers for value, and says where it is ("" for nowhere). The containers' and the
// service's environment hold an env secret's value by design, and are not searched.
func swarmLeaks(ctx context.Context, t *testing.T, cli interface {
	ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error)
	SecretList(context.Context, swarm.SecretListOptions) ([]swarm.Secret, error)
	ContainerList(context.Context, container.ListOptions) ([]container.Summary, error)
}, owner providers.Owner, value string) string {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", providers.LabelInstance+"="+owner.Instance))
	in := func(labels map[string]string) bool {
		for k, v := range labels {
			if strings.Contains(k+"="+v, value) {
				return true
			}
		}
		return false
	}
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	for _, s := range svcs {
		if in(s.Spec.Labels) || strings.Contains(s.Spec.Name, value) {
			return "service " + s.Spec.Name
		}
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && in(cs.Labels) {
			return "the container labels of service " + s.Spec.Name
		}
		ts, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", s.ID))})
		if err != nil {
			t.Fatalf("leaks: %v", err)
		}
		for _, tk := range ts {
			if in(tk.Labels) || (tk.Spec.ContainerSpec != nil && in(tk.Spec.ContainerSpec.Labels)) {
				return "task " + tk.ID
			}
		}
	}
	objs, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	for _, o := range objs {
		if in(o.Spec.Labels) || strings.Contains(o.Spec.Name, value) {
			return "secret object " + o.Spec.Name
		}
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("leaks: %v", err)
	}
	for _, c := range cs {
		if in(c.Labels) || strings.Contains(strings.Join(c.Names, ","), value) {
			return "container " + strings.Join(c.Names, ",")
		}
	}
	return ""
}
