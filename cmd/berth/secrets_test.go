package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

// secretRepo is a repository whose web workload takes GREETING from the SOPS secret greeting.
func secretRepo(hostPort string) string {
	return fmt.Sprintf(`package berth

targets: local: {type: "docker", publicAddress: "127.0.0.1"}
environments: production: {branch: "main"}

secrets: greeting: {sops: "secrets/greeting.enc.yaml", key: "greeting"}

workloads: web: {
	image:    %q
	args: ["serve"]
	provider: "local"
	replicas: 2
	env: GREETING: secret: "greeting"
	ports: [{name: "http", port: 8080, public: true, hostPort: %s}]
	health: {http: {path: "/healthz", port: 8080}, interval: "1s", timeout: "1s", retries: 3}
}
`, exampleImage, hostPort)
}

// TestSecretsEndToEnd: a SOPS secret deploys to Docker, the containers see the value (docker inspect shows it in
// their environment) but no label holds it; a rotation commit rolls the replicas without a failed request; a file
// encrypted for another key is reported with its place and changes nothing; no output holds a value.
func TestSecretsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine")
	}
	eng := newEngine(t)
	instance := fmt.Sprintf("sec%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })
	id := sopstest.NewIdentity(t)
	keys := filepath.Join(t.TempDir(), "age.txt")
	if err := os.WriteFile(keys, []byte("# berth test\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const one, two, three = "first-s3cret-greeting", "second-s3cret-greeting", "third-s3cret-greeting"
	sealed := func(v string, to age.Recipient) string {
		return string(sopstest.MustEncrypt(t, []byte("greeting: "+v+"\n"), sopstest.Options{}, to))
	}
	repo := newGitRepo(t)
	hostPort := freePort(t)
	public := "http://127.0.0.1:" + hostPort + "/"
	repo.write(map[string]string{"berth.cue": secretRepo(hostPort), "secrets/greeting.enc.yaml": sealed(one, id.Recipient())})
	dataDir := t.TempDir()
	ctrl := startController(t, instance, repo.url(), dataDir, "--age-identities", keys)
	waitApplied(t, ctrl, repo.commit("web with a SOPS secret"))
	waitRunning(t, eng, instance, "web", 2)
	serves := func(v string) {
		t.Helper()
		waitFor(t, settle, "web serves "+v, func() (bool, string) {
			body, err := get(public)
			return err == nil && strings.Contains(body, v+" from"), fmt.Sprint(body, err)
		})
	}
	serves(one)

	t.Run("in the environment, in no label", func(t *testing.T) {
		for _, c := range eng.containers(instance, "web") {
			ins, err := eng.cli.ContainerInspect(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(ins.Config.Env, "GREETING="+one) {
				t.Errorf("container %.12s env %v lacks the secret", c.ID, ins.Config.Env)
			}
			for k, v := range ins.Config.Labels {
				if strings.Contains(v, one) || strings.Contains(v, base64.StdEncoding.EncodeToString([]byte(one))) {
					t.Errorf("label %s holds the secret", k)
				}
			}
		}
		out, errOut, code := berthCmd(t, "plan", repo.dir, "--env", "production", "--instance", instance, "--age-identities", keys)
		if code != 0 || !strings.Contains(out, "No changes.") {
			t.Fatalf("berth plan after the apply: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("rotation rolls without a failed request", func(t *testing.T) {
		stop := requestLoop(t, public, "the rotation")
		repo.write(map[string]string{"berth.cue": secretRepo(hostPort), "secrets/greeting.enc.yaml": sealed(two, id.Recipient())})
		out, _, _ := berthCmd(t, "plan", repo.dir, "--env", "production", "--instance", instance, "--age-identities", keys)
		if !strings.Contains(out, "secret greeting: (sensitive) → (sensitive value changed)") {
			t.Errorf("the plan does not show the rotation:\n%s", out)
		}
		waitApplied(t, ctrl, repo.commit("rotate the greeting"))
		serves(two)
		stop()
		waitRunning(t, eng, instance, "web", 2)
	})

	t.Run("a file for another key changes nothing", func(t *testing.T) {
		_, before := eng.running(instance, "web", "")
		slices.Sort(before)
		other := sopstest.NewIdentity(t)
		repo.write(map[string]string{"berth.cue": secretRepo(hostPort), "secrets/greeting.enc.yaml": sealed(three, other.Recipient())})
		repo.commit("encrypted for someone else")
		waitFor(t, settle, "the secret's failure reported", func() (bool, string) {
			st, err := ctrl.status()
			if err != nil {
				return false, err.Error()
			}
			msg := envError(st, "production")
			return strings.Contains(msg, "berth.cue:") && strings.Contains(msg, "secret greeting") &&
				strings.Contains(msg, "no age identity"), msg
		})
		_, after := eng.running(instance, "web", "")
		slices.Sort(after)
		if !slices.Equal(before, after) {
			t.Fatalf("replicas changed: %v → %v", before, after)
		}
		serves(two)
	})

	// Nothing berth wrote or said holds a value, in any encoding.
	st, _, _ := berthCmd(t, "status", "--server", ctrl.api, "-o", "json")
	var stored strings.Builder
	_ = filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				stored.Write(b)
			}
		}
		return nil
	})
	for _, v := range []string{one, two, three} {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))} {
			for where, text := range map[string]string{"the log": ctrl.logs.String(), "the status": st, "the data directory": stored.String()} {
				if strings.Contains(text, form) {
					t.Errorf("%s holds a secret value (%q)", where, form)
				}
			}
		}
	}
}
