package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

const (
	testSecretValue = "s3cr3t-value-never-in-a-label"
	testFileValue   = "file-value-never-in-a-label"
)

// secretWorkload sets GREETING from secret "greeting" and puts secret "key" at /run/secrets/key.
func secretWorkload(greeting, key string) (schema.Workload, map[string]providers.Secret) {
	w := schema.Workload{Name: "web", Image: "app:1", Args: []string{"serve"}, Env: map[string]string{"PORT": "8080"},
		SecretEnv: map[string]string{"GREETING": "greeting"},
		Files:     map[string]schema.File{"/run/secrets/key": {Secret: "key"}}}
	src := schema.Secret{SOPS: &schema.SOPSSecret{File: "secrets/s.enc.yaml", Key: "k"}}
	return w, map[string]providers.Secret{
		"greeting": {Name: "greeting", Source: src, Value: []byte(greeting), Fingerprint: "fp-" + shortFP(greeting)},
		"key":      {Name: "key", Source: src, Value: []byte(key), Fingerprint: "fp-" + shortFP(key)},
	}
}

func shortFP(v string) string { return providers.SpecHash(schema.Workload{Name: v})[:8] }

// TestSecretsDelivery (no engine): the value is in the container's environment and nowhere in its labels; the
// read-back gives names and fingerprints, never the value, and hashes as the desired workload does; a rotation is a
// new spec hash and a changed fingerprint.
func TestSecretsDelivery(t *testing.T) {
	img := imageDefaults{entrypoint: []string{"/app"}, env: map[string]string{"PATH": "/bin"}}
	k := wkey{"i", "e", "t", "web"}
	w, secrets := secretWorkload(testSecretValue, testFileValue)
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: w,
		SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
	if err := checkSecrets(d); err != nil {
		t.Fatal(err)
	}
	want := readBack(w, img)
	cfg, hc, _, err := containerConfig(k, d, want, healthOf(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cfg.Env, "\n"), "GREETING="+testSecretValue) {
		t.Fatalf("env %v: no GREETING from the secret", cfg.Env)
	}
	labels, _ := json.Marshal(cfg.Labels)
	for _, v := range []string{testSecretValue, testFileValue} {
		if strings.Contains(string(labels), v) {
			t.Fatalf("a label holds a secret's value: %s", labels)
		}
	}
	if got := cfg.Labels[LabelSecrets]; got != `{"env":{"GREETING":"greeting"},"files":{"/run/secrets/key":"key"},"fingerprints":{"greeting":"`+
		secrets["greeting"].Fingerprint+`","key":"`+secrets["key"].Fingerprint+`"}}` {
		t.Fatalf("secrets label %s", got)
	}
	ci := created(cfg, hc, img)
	ci.ID, ci.Name, ci.State = "c0", "web-0", &container.State{Status: "exited"}
	got := live(ci, img)
	if _, ok := got.Env["GREETING"]; ok || got.SecretEnv["GREETING"] != "greeting" || got.Files["/run/secrets/key"].Secret != "key" {
		t.Fatalf("read back %+v", got)
	}
	if liveHash(got) != liveHash(want) || ci.Config.Labels[LabelLiveHash] != liveHash(got) {
		t.Fatalf("read back %+v\nwant      %+v", got, want)
	}
	edited := ci
	edited.Config = &container.Config{}
	*edited.Config = *ci.Config
	edited.Config.Env = nil
	for _, kv := range ci.Config.Env {
		if !strings.HasPrefix(kv, "GREETING=") {
			edited.Config.Env = append(edited.Config.Env, kv)
		}
	}
	if got := live(edited, img); got.SecretEnv["GREETING"] != "" || liveHash(got) == liveHash(want) {
		t.Fatalf("a secret variable removed by hand reads back as %+v", got.SecretEnv)
	}
	p := &Provider{images: map[string]imageDefaults{"sha256:x": img}, refs: map[string]string{}}
	o, err := p.observe(t.Context(), "web", "t", []container.InspectResponse{ci})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(o); bytes.Contains(b, []byte(testSecretValue)) || bytes.Contains(b, []byte(testFileValue)) {
		t.Fatalf("the observation holds a value: %s", b)
	}
	if o.SecretFingerprints["greeting"] != secrets["greeting"].Fingerprint || o.SecretFingerprints["key"] != secrets["key"].Fingerprint {
		t.Fatalf("fingerprints read back %v", o.SecretFingerprints)
	}
	// The same value edited by hand in the environment is not read back (the value is never read); a rotation
	// is a new spec hash, so the replica is replaced.
	_, rotated := secretWorkload("rotated", testFileValue)
	if providers.DesiredHash(w, rotated) == d.SpecHash {
		t.Fatal("a rotated secret keeps the spec hash")
	}
}

func TestCheckSecrets(t *testing.T) {
	w, secrets := secretWorkload(testSecretValue, testFileValue)
	d := providers.Desired{Workload: w, Secrets: secrets}
	for name, edit := range map[string]func(map[string]providers.Secret){
		"missing":  func(s map[string]providers.Secret) { delete(s, "key") },
		"no value": func(s map[string]providers.Secret) { g := s["key"]; g.Value = nil; s["key"] = g },
		"reference": func(s map[string]providers.Secret) {
			g := s["key"]
			g.Source = schema.Secret{AWS: &schema.AWSSecret{}}
			g.Value = nil
			s["key"] = g
		},
	} {
		c := map[string]providers.Secret{}
		for k, v := range secrets {
			c[k] = v
		}
		edit(c)
		d.Secrets = c
		err := checkSecrets(d)
		if err == nil || !strings.Contains(err.Error(), "secret key") || strings.Contains(err.Error(), testFileValue) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFileOwner(t *testing.T) {
	for user, want := range map[string][2]int{"": {0, 0}, "root": {0, 0}, "0": {0, 0}, "1000": {1000, 1000},
		"1000:2000": {1000, 2000}, "65532:root": {65532, 0}} {
		uid, gid, err := fileOwner(user)
		if err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("user %q: %d:%d, %v", user, uid, gid, err)
		}
	}
	for _, user := range []string{"app", "1000:staff", "-1"} {
		if _, _, err := fileOwner(user); err == nil {
			t.Errorf("user %q: no error", user)
		}
	}
}

func TestSecretArchive(t *testing.T) {
	w, secrets := secretWorkload(testSecretValue, testFileValue)
	arc, err := secretArchive(providers.Desired{Workload: w, Secrets: secrets}, 1000, 1001)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(arc))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(tr)
	if hdr.Name != "run/secrets/key" || hdr.Mode != SecretFileMode || hdr.Uid != 1000 || hdr.Gid != 1001 || string(body) != testFileValue {
		t.Fatalf("entry %+v %q", hdr, body)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("more than one entry: %v", err)
	}
}

// TestNoGoldenHoldsASecret: no file under testdata (none today; any golden added later) holds a test secret.
func TestNoGoldenHoldsASecret(t *testing.T) {
	filepath.WalkDir("testdata", func(path string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(testSecretValue)) || bytes.Contains(b, []byte(testFileValue)) {
			t.Errorf("%s holds a test secret's value", path)
		}
		return nil
	})
}

// TestSecretsOnTheEngine: on a real engine, the secret reaches the container's environment (as `docker inspect`
// shows it) and a file at its path with mode 0400 owned by the image's user, before the process starts; no label
// holds the value; List reads names and fingerprints; an Apply again keeps the replicas; a rotation replaces them
// make-before-break and the new value is served and in the file.
func TestSecretsOnTheEngine(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	w, secrets := secretWorkload(testSecretValue, testFileValue)
	base := web(2, port, "")
	w.Image, w.Args, w.Ports, w.Health, w.Replicas = base.Image, base.Args, base.Ports, base.Health, base.Replicas
	w.Env = map[string]string{"PORT": base.Env["PORT"]}
	apply := func(secrets map[string]providers.Secret) providers.Desired {
		t.Helper()
		d := providers.Desired{Owner: e.owner, Target: e.target, Workload: w, SpecHash: providers.DesiredHash(w, secrets),
			Secrets: secrets}
		ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
		defer cancel()
		if err := e.p.Apply(ctx, d); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return d
	}
	d := apply(secrets)
	httpc := freshClient
	waitFor(t, "the secret served", func() (bool, string) {
		body, err := get(httpc, port)
		return err == nil && strings.Contains(body, testSecretValue), body
	})
	check := func(d providers.Desired, greeting, file string) map[string]bool {
		t.Helper()
		o := onlyWorkload(t, e.list())
		checkReady(t, o, d.SpecHash, 2)
		if b, _ := json.Marshal(o); bytes.Contains(b, []byte(greeting)) || bytes.Contains(b, []byte(file)) {
			t.Fatalf("List reads a value back: %s", b)
		}
		if o.Spec.SecretEnv["GREETING"] != "greeting" || o.Spec.Files["/run/secrets/key"].Secret != "key" ||
			o.SecretFingerprints["greeting"] != d.Secrets["greeting"].Fingerprint || o.SecretFingerprints["key"] != d.Secrets["key"].Fingerprint {
			t.Fatalf("read back %+v fingerprints %v", o.Spec, o.SecretFingerprints)
		}
		if _, ok := o.Spec.Env["GREETING"]; ok || liveHash(o.Spec) == "" {
			t.Fatalf("GREETING in Env: %+v", o.Spec.Env)
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		for _, r := range o.Replicas {
			ci, err := e.cli.ContainerInspect(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(ci.Config.Env, "\n"), "GREETING="+greeting) {
				t.Errorf("container %s: GREETING not in its environment", ci.Name)
			}
			labels, _ := json.Marshal(ci.Config.Labels)
			if bytes.Contains(labels, []byte(greeting)) || bytes.Contains(labels, []byte(file)) {
				t.Errorf("container %s: a label holds a value: %s", ci.Name, labels)
			}
			st, err := e.cli.ContainerStatPath(ctx, r.ID, "/run/secrets/key")
			if err != nil {
				t.Fatalf("stat the secret file of %s: %v", ci.Name, err)
			}
			if st.Mode.Perm() != SecretFileMode || st.Size != int64(len(file)) {
				t.Errorf("secret file of %s: mode %v size %d", ci.Name, st.Mode, st.Size)
			}
			rc, _, err := e.cli.CopyFromContainer(ctx, r.ID, "/run/secrets/key")
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(rc)
			hdr, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(tr)
			rc.Close()
			if string(body) != file || hdr.Uid != 0 || hdr.Gid != 0 || hdr.FileInfo().Mode().Perm() != SecretFileMode {
				t.Errorf("secret file of %s: uid %d gid %d mode %v, content as set: %v", ci.Name, hdr.Uid, hdr.Gid,
					hdr.FileInfo().Mode(), string(body) == file)
			}
		}
		return replicaIDs(o)
	}
	ids := check(d, testSecretValue, testFileValue)
	apply(secrets)
	if again := check(d, testSecretValue, testFileValue); !equalSets(ids, again) {
		t.Fatalf("a repeated Apply replaced replicas: %v → %v", ids, again)
	}

	// Rotation: served throughout, with zero failed requests, and then only the new value.
	_, rotated := secretWorkload("rotated-greeting", "rotated-file")
	ctx, stop := context.WithCancel(context.Background())
	failures := make(chan error, 1)
	oks := 0
	go func() {
		defer close(failures)
		for ctx.Err() == nil {
			if _, err := get(httpc, port); err != nil {
				failures <- err
				return
			}
			oks++
		}
	}()
	d2 := apply(rotated)
	stop()
	if err := <-failures; err != nil {
		t.Fatalf("a request failed during the rotation: %v", err)
	}
	t.Logf("%d requests succeeded during the rotation", oks)
	if d2.SpecHash == d.SpecHash {
		t.Fatal("rotation kept the spec hash")
	}
	waitFor(t, "the rotated secret served", func() (bool, string) {
		body, err := get(httpc, port)
		return err == nil && strings.Contains(body, "rotated-greeting"), body
	})
	if after := check(d2, "rotated-greeting", "rotated-file"); equalSets(ids, after) {
		t.Fatal("the rotation kept the replicas")
	}
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
