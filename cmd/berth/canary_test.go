package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/gittest"
	"github.com/berth-dev/berth/schema/redact"
	"github.com/berth-dev/berth/schema/secrets/sopstest"
)

// canary is a value berth is given and must never show. user is the name it is sent with as HTTP basic
// credentials ("" when it is not), so that base64 of "user:value" is searched too.
type canary struct {
	name, user, value string
}

// forms are the encodings a server, a library or an encoder may turn the value into.
func (c canary) forms() map[string]string {
	out := map[string]string{}
	add := func(label, v string) {
		out[label] = v
		for _, enc := range []struct {
			name string
			enc  *base64.Encoding
		}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding},
			{"base64 unpadded", base64.RawStdEncoding}, {"base64url unpadded", base64.RawURLEncoding}} {
			out[enc.name+" of "+label] = enc.enc.EncodeToString([]byte(v))
		}
	}
	add("plain", c.value)
	if c.user != "" {
		add("user:password", c.user+":"+c.value)
		delete(out, "user:password") // its plain form holds the plain value, already searched
	}
	out["query-escaped"] = url.QueryEscape(c.value)
	out["path-escaped"] = url.PathEscape(c.value)
	out["userinfo-escaped"] = strings.TrimPrefix(url.UserPassword("", c.value).String(), ":")
	out["hex"] = hex.EncodeToString([]byte(c.value))
	return out
}

// sightings lists every form of every canary found in each output.
func sightings(canaries []canary, outputs map[string][]byte) []string {
	var found []string
	for what, text := range outputs {
		for _, c := range canaries {
			for form, v := range c.forms() {
				if strings.Contains(string(text), v) {
					found = append(found, fmt.Sprintf("%s holds the %s canary (%s)", what, c.name, form))
				}
			}
		}
	}
	return found
}

// The canary test: a SOPS secret, a Git password file, a bearer token, a webhook secret and a URL's userinfo, each a canary value,
// given to a controller whose Git server echoes every request header (Authorization included) in its error pages.
// No log line, status (API, text, JSON), metric, plan (text, JSON), printed error or byte under --data-dir (the
// state store, the sources' caches) holds any canary in any encoding.
//
// A later source of secrets adds its canary with one line in canaries (and places the value where it belongs, e.g.
// a SOPS file in the repository): every output below is searched for it.
func TestCanaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine")
	}
	eng := newEngine(t)
	instance := fmt.Sprintf("can%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })

	const gitUser = "canary-bot"
	canaries := []canary{
		{name: "Git password file (accepted)", user: gitUser, value: "canary-good-pw+Q9/x=7f3a"},
		{name: "Git password file (refused)", user: gitUser, value: "canary-bad-pw+W2/y=91c4"},
		{name: "bearer token", value: "canary-token-8b1a9953c4611296a827abf8c47804d7"},
		{name: "webhook secret", value: "canary-webhook-secret-e4da3b7fbbce2345"},
		{name: "URL userinfo", user: gitUser, value: "canary-url-pw:@/%?-1679091c"},
		{name: "SOPS secret", value: "canary-sops-value-45c48cce2e2d7fbd"},
	}
	value := func(name string) string {
		for _, c := range canaries {
			if strings.HasPrefix(c.name, name) {
				return c.value
			}
		}
		t.Fatalf("no canary %q", name)
		return ""
	}
	good, bad := canaries[0].value, canaries[1].value

	env := func(e string) string { return fmt.Sprintf("environments: %s: {branch: \"main\"}\n", e) }
	// The SOPS secret is decrypted with identities the serve configuration names; the container gets it.
	id := sopstest.NewIdentity(t)
	work := newGitRepo(t)
	work.write(map[string]string{"berth.cue": `targets: local: {type: "docker"}
secrets: canary: {sops: "secrets/canary.enc.yaml", key: "canary"}
` + env("good") + env("refused") + env("token") + env("userinfo") + fmt.Sprintf(`workloads: w: {
	image:    %q
	args: ["work"]
	provider: "local"
	env: WORK_INTERVAL: "1s"
	env: CANARY: secret: "canary"
}
`, exampleImage),
		"secrets/canary.enc.yaml": string(sopstest.MustEncrypt(t, []byte("canary: "+value("SOPS secret")+"\n"), sopstest.Options{}, id.Recipient()))})
	work.commit("c1")
	root := t.TempDir()
	work.git("clone", "-q", "--bare", work.dir, filepath.Join(root, "repo.git"))
	srv := httptest.NewServer(gittest.BasicAuthEcho(gitUser, good, gittest.HTTPBackend(t, root)))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodFile, badFile := write("good.pw", good), write("bad.pw", bad)
	ageFile := write("age.txt", id.String()+"\n")
	t.Setenv("BERTH_E2E_CANARY_TOKEN", value("bearer token"))
	t.Setenv("BERTH_E2E_CANARY_WEBHOOK", value("webhook secret"))
	userinfoURL := strings.Replace(srv.URL, "http://", "http://"+url.UserPassword(gitUser, value("URL userinfo")).String()+"@", 1) +
		"/repo.git"
	config := write("berth-serve.cue", fmt.Sprintf(`
secrets: ageIdentities: {file: %[6]q}
sources: good: {url: "%[1]s/repo.git", interval: "1s", environments: ["good"],
	credentials: {username: %[2]q, password: {file: %[3]q}}
	webhook: {kind: "github", secret: {env: "BERTH_E2E_CANARY_WEBHOOK"}}}
sources: refused: {url: "%[1]s/repo.git", interval: "1s", environments: ["refused"],
	credentials: {username: %[2]q, password: {file: %[4]q}}}
sources: token: {url: "%[1]s/repo.git", interval: "1s", environments: ["token"],
	credentials: {token: {env: "BERTH_E2E_CANARY_TOKEN"}}}
sources: userinfo: {url: %[5]q, interval: "1s", environments: ["userinfo"]}
`, srv.URL, gitUser, goodFile, badFile, userinfoURL, ageFile))

	dataDir := t.TempDir()
	c := startController(t, instance, "", dataDir, "--config", config)
	waitFor(t, settle, "the good source deploys", func() (bool, string) {
		st, err := c.sourceStatus("good")
		if err != nil {
			return false, err.Error()
		}
		return applied(st, "good") != "", fmt.Sprintf("%+v", st.Environments)
	})
	for _, s := range []string{"refused", "token", "userinfo"} {
		// Each refused source quotes the echoing error page, masked: the test would see a leak if masking failed.
		waitFor(t, settle, s+" reports the refusal", func() (bool, string) {
			st, err := c.sourceStatus(s)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(st.LastError, "Authorization: ") && strings.Contains(st.LastError, redact.Mask), st.LastError
		})
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	if code := postHook(t, c.api, "good", body, githubSignature([]byte(value("webhook secret")), body)); code != http.StatusAccepted {
		t.Errorf("signed webhook: status %d, want 202", code)
	}
	if code := postHook(t, c.api, "good", body, githubSignature([]byte("not the secret"), body)); code != http.StatusForbidden {
		t.Errorf("badly signed webhook: status %d, want 403", code)
	}

	delivered := false
	for _, ct := range eng.containers(instance, "w") {
		if ins, err := eng.cli.ContainerInspect(context.Background(), ct.ID); err == nil &&
			slices.Contains(ins.Config.Env, "CANARY="+value("SOPS secret")) {
			delivered = true
		}
	}
	if !delivered {
		t.Errorf("no container of w got the SOPS secret: the SOPS canary proves nothing")
	}
	outputs := map[string][]byte{}
	must := func(what string, text string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		outputs[what] = []byte(text)
	}
	raw, err := get(c.api + statusPath)
	must("/api/v1/status", raw, err)
	metrics, err := get(c.api + "/metrics")
	must("/metrics", metrics, err)
	for _, o := range []string{"text", "json"} {
		out, errOut, code := berthCmd(t, "status", "--server", c.api, "-o", o)
		must("berth status -o "+o, out+errOut, nil)
		if code != 0 {
			t.Errorf("berth status -o %s: exit %d: %s", o, code, errOut)
		}
		out, errOut, code = berthCmd(t, "plan", "--instance", instance, "--env", "good", "-o", o, "--age-identities", ageFile, work.dir)
		must("berth plan -o "+o, out+errOut, nil)
		if code != 0 {
			t.Errorf("berth plan -o %s: exit %d: %s", o, code, errOut)
		}
	}
	// A printed error: a source whose URL does not parse, its userinfo a canary.
	badURL := strings.Replace(userinfoURL, "http://", "http://[", 1)
	badConfig := write("bad-serve.cue", fmt.Sprintf("sources: broken: {url: %q}\n", badURL))
	out, errOut, code := berthCmd(t, "serve", "--config", badConfig, "--listen", "127.0.0.1:"+freePort(t),
		"--data-dir", t.TempDir(), "--instance", instance+"x")
	must("berth serve's printed error", out+errOut, nil)
	if code == 0 || !strings.Contains(errOut, "source broken") {
		t.Errorf("serve with an unparsable URL: exit %d: %s", code, errOut)
	}

	c.stop()
	outputs["the controller's log"] = []byte(c.logs.String())
	stored := 0
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, p)
		outputs["data dir file "+rel] = b
		if strings.HasSuffix(p, ".db") && strings.Contains(string(b), redact.Mask) {
			stored++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored == 0 {
		t.Errorf("the state store holds no masked record: the refusals were not stored, the test proves nothing there")
	}
	for _, s := range sightings(canaries, outputs) {
		t.Error(s)
	}
}
