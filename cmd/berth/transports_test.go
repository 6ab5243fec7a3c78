package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/repos/gittest"
)

// The controller deploys from one repository served over git http-backend with basic auth, git daemon and OpenSSH
// with key auth and strict known_hosts, all at once; sources with a wrong password, a wrong key or an unknown host
// key report a clear error, deploy nothing and leak no secret.
func TestTransportsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine")
	}
	eng := newEngine(t)
	instance := fmt.Sprintf("tr%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })

	work := newGitRepo(t)
	envs := []string{"viahttp", "viadaemon", "viassh", "badpass", "badkey", "badhost"}
	writeRepo := func(tag string) {
		var b strings.Builder
		b.WriteString("targets: local: {type: \"docker\"}\n")
		for _, e := range envs {
			fmt.Fprintf(&b, "environments: %s: {branch: \"main\"}\n", e)
		}
		fmt.Fprintf(&b, "workloads: w: {image: %q, args: [\"work\"], provider: \"local\", env: TAG: %q}\n", exampleImage, tag)
		work.write(map[string]string{"berth.cue": b.String()})
	}
	writeRepo("t1")
	work.commit("t1")
	root := t.TempDir()
	bare := filepath.Join(root, "repo.git")
	work.git("clone", "-q", "--bare", work.dir, bare)

	const password = "right-horse-battery-staple"
	t.Setenv("BERTH_E2E_GIT_PASSWORD", password)
	t.Setenv("BERTH_E2E_WRONG_PASSWORD", "wrong-password-for-test")
	httpSrv := httptest.NewServer(gittest.BasicAuth("berth", password, gittest.HTTPBackend(t, root)))
	t.Cleanup(httpSrv.Close)
	daemon := gittest.Daemon(t, root)

	keys := t.TempDir()
	writeKey := func(name, text string) string {
		p := filepath.Join(keys, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	right, rightPub := gittest.SSHKey(t, keys, "right", "")
	wrong, _ := gittest.SSHKey(t, keys, "wrong", "")
	_, otherHostPub := gittest.SSHKey(t, keys, "otherhost", "")
	sshd := gittest.StartSSHD(t, rightPub)
	rightKey, wrongKey := writeKey("right.key", right), writeKey("wrong.key", wrong)
	knownHosts := writeKey("known_hosts", string(sshd.KnownHosts(sshd.HostPub)))
	otherHosts := writeKey("other_hosts", string(sshd.KnownHosts(otherHostPub)))

	config := filepath.Join(keys, "berth-serve.cue")
	text := fmt.Sprintf(`
sources: http: {url: "%[1]s/repo.git", interval: "1s", environments: ["viahttp"],
	credentials: {username: "berth", password: {env: "BERTH_E2E_GIT_PASSWORD"}}}
sources: daemon: {url: "git://%[2]s/repo.git", interval: "1s", environments: ["viadaemon"]}
sources: ssh: {url: %[3]q, interval: "1s", environments: ["viassh"],
	credentials: {sshKey: {file: %[4]q}, knownHosts: {file: %[5]q}}}
sources: badpass: {url: "%[1]s/repo.git", interval: "1s", environments: ["badpass"],
	credentials: {username: "berth", password: {env: "BERTH_E2E_WRONG_PASSWORD"}}}
sources: badkey: {url: %[3]q, interval: "1s", environments: ["badkey"],
	credentials: {sshKey: {file: %[6]q}, knownHosts: {file: %[5]q}}}
sources: badhost: {url: %[3]q, interval: "1s", environments: ["badhost"],
	credentials: {sshKey: {file: %[4]q}, knownHosts: {file: %[7]q}}}
`, httpSrv.URL, daemon, sshd.URL(bare), rightKey, knownHosts, wrongKey, otherHosts)
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startController(t, instance, "", t.TempDir(), "--config", config)

	tags := func() map[string]string {
		got := map[string]string{}
		for _, ct := range eng.containers(instance, "w") {
			if ct.State == "running" {
				got[ct.Labels[providers.LabelEnvironment]] = ct.Labels[providers.LabelSpecHash]
			}
		}
		return got
	}
	// waitEnvs waits until the three good environments run one spec other than not.
	waitEnvs := func(what, not string) map[string]string {
		var last map[string]string
		waitFor(t, settle, what, func() (bool, string) {
			last = tags()
			return len(last) == 3 && last["viahttp"] != "" && last["viahttp"] != not &&
				last["viahttp"] == last["viadaemon"] && last["viadaemon"] == last["viassh"], fmt.Sprint(last)
		})
		return last
	}
	first := waitEnvs("the three good transports deploy", "")

	for source, want := range map[string]string{
		"badpass": "authentication",
		"badkey":  "unable to authenticate",
		"badhost": "host key",
	} {
		waitFor(t, settle, source+" reports "+want, func() (bool, string) {
			st, err := c.sourceStatus(source)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(strings.ToLower(st.LastError), want), st.LastError
		})
	}
	for _, bad := range []string{"badpass", "badkey", "badhost"} {
		if _, ok := tags()[bad]; ok {
			t.Errorf("source %s deployed despite its bad credentials", bad)
		}
	}

	writeRepo("t2")
	work.commit("t2")
	work.git("push", "-q", bare, "main")
	waitEnvs("the push reaches every transport", first["viahttp"])

	logs := c.logs.String()
	for _, secret := range []string{password, "wrong-password-for-test", strings.Split(right, "\n")[1], strings.Split(wrong, "\n")[1]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret appears in the controller's log")
		}
	}
	out, _, _ := berthCmd(t, "status", "--server", c.api, "-o", "json")
	if strings.Contains(out, password) || strings.Contains(out, "wrong-password-for-test") {
		t.Fatal("a secret appears in the status")
	}
}
