package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/reconciler"
)

// workerRepo writes a repository with one worker workload in environment env, greeting g.
func workerRepo(r *gitRepo, env, workload, g string) {
	r.write(map[string]string{"berth.cue": fmt.Sprintf(`targets: local: {type: "docker"}
environments: %s: {branch: "main"}
workloads: %s: {
	image:    %q
	args: ["work"]
	provider: "local"
	env: {WORK_INTERVAL: "1s", TAG: %q}
}
`, env, workload, exampleImage, g)})
}

// signedCommit commits with an SSH signature by key.
func (r *gitRepo) signedCommit(key, msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("-c", "gpg.format=ssh", "-c", "user.signingkey="+key, "commit", "-q", "-S", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func sshKeygen(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	priv = filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return priv, priv + ".pub"
}

func githubSignature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// postHook sends a GitHub push webhook for source and returns the HTTP status.
func postHook(t testing.TB, api, source string, body []byte, signature string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, api+"/hooks/"+source, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sourceStatus returns the status of one named source.
func (c *controller) sourceStatus(name string) (*reconciler.Status, error) {
	all, _, err := fetchStatus(context.Background(), c.api)
	if err != nil {
		return nil, err
	}
	for i := range all.Sources {
		if all.Sources[i].Name == name {
			return &all.Sources[i], nil
		}
	}
	return nil, fmt.Errorf("no source %q in status", name)
}

func TestSourcesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	top := t
	eng := newEngine(t)
	instance := fmt.Sprintf("src%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })
	keys := t.TempDir()
	trusted, trustedPub := sshKeygen(t, keys, "trusted")
	stranger, _ := sshKeygen(t, keys, "stranger")
	secret := []byte("webhook-secret-for-the-test")
	if err := os.WriteFile(filepath.Join(keys, "hook.secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}

	a, b := newGitRepo(t), newGitRepo(t)
	workerRepo(a, "alpha", "wa", "a1")
	a1 := a.commit("a1")
	workerRepo(b, "beta", "wb", "b1")
	b.signedCommit(trusted, "b1")

	// A server that accepts connections and never answers: its source must time out on its own.
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	go func() {
		for {
			conn, err := stall.Accept()
			if err != nil {
				return
			}
			held <- conn
		}
	}()
	t.Cleanup(func() {
		stall.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})

	config := filepath.Join(keys, "berth-serve.cue")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`
sources: a: {url: %q, interval: "1s"}
sources: stalled: {url: "http://%s/repo.git", interval: "1s", timeout: "2s"}
sources: b: {
	url: %q
	interval: "1h"  // only the webhook makes it look
	verify: {mode: "head", sshKeys: [{file: %q}]}
	webhook: {kind: "github", secret: {file: "hook.secret"}, burst: 3, rate: 0.01}
}
`, a.url(), stall.Addr(), b.url(), trustedPub)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startController(t, instance, "", t.TempDir(), "--config", config)

	tag := func(workload string) string {
		for _, ct := range eng.containers(instance, workload) {
			if ct.State != "running" {
				continue
			}
			in, err := eng.cli.ContainerInspect(context.Background(), ct.ID)
			if err != nil {
				return ""
			}
			for _, e := range in.Config.Env {
				if v, ok := strings.CutPrefix(e, "TAG="); ok {
					return v
				}
			}
		}
		return ""
	}
	waitTag := func(workload, want string) {
		t.Helper()
		waitFor(t, settle, workload+" runs "+want, func() (bool, string) {
			got := tag(workload)
			return got == want, got
		})
	}

	t.Run("both sources deploy; the signed one is verified", func(t *testing.T) {
		waitTag("wa", "a1")
		waitTag("wb", "b1")
		waitFor(t, settle, "the stalled source times out", func() (bool, string) {
			st, err := c.sourceStatus("stalled")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(st.LastError, "deadline") || strings.Contains(st.LastError, "timeout"), st.LastError
		})
		st, err := c.sourceStatus("b")
		if err != nil {
			t.Fatal(err)
		}
		if st.Verified == nil || st.Verified.Object != "commit" || !strings.HasPrefix(st.Verified.Key, "SHA256:") {
			t.Fatalf("source b verification = %+v", st.Verified)
		}
	})

	body := []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}`)
	t.Run("a signed webhook deploys without waiting for the poll", func(t *testing.T) {
		workerRepo(b, "beta", "wb", "b2")
		b.signedCommit(trusted, "b2")
		if code := postHook(t, c.api, "b", body, githubSignature(secret, body)); code != http.StatusAccepted {
			t.Fatalf("webhook answered %d", code)
		}
		waitTag("wb", "b2")
	})

	t.Run("forged, oversized and flooding webhooks are refused", func(t *testing.T) {
		workerRepo(b, "beta", "wb", "b3")
		b.signedCommit(trusted, "b3")
		if code := postHook(t, c.api, "b", body, githubSignature([]byte("wrong"), body)); code != http.StatusForbidden {
			t.Fatalf("forged signature answered %d", code)
		}
		if code := postHook(t, c.api, "b", body, ""); code != http.StatusUnauthorized {
			t.Fatalf("unsigned call answered %d", code)
		}
		big := bytes.Repeat([]byte("x"), 2<<20)
		if code := postHook(t, c.api, "b", big, githubSignature(secret, big)); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized body answered %d", code)
		}
		// None of those may have triggered a fetch: b3 is not deployed.
		if got := tag("wb"); got != "b2" {
			t.Fatalf("a refused webhook deployed %q", got)
		}
		// The bucket holds 3 calls (burst) and refills at one per 100 s: one accepted call took one already.
		accepted, limited := 0, 0
		for range 10 {
			switch code := postHook(t, c.api, "b", body, githubSignature(secret, body)); code {
			case http.StatusAccepted:
				accepted++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("flood call answered %d", code)
			}
		}
		if accepted > 3 || limited < 7 {
			t.Fatalf("flood: %d accepted, %d rate limited; want at most 3 accepted", accepted, limited)
		}
		waitTag("wb", "b3")
	})

	t.Run("unsigned or untrusted commits are not deployed", func(t *testing.T) {
		// The webhook's bucket is spent: poll source b every second from here on.
		c = restartWithInterval(t, top, c, instance, config, "1s")
		waitReported := func(rev, reason string) {
			t.Helper()
			waitFor(t, settle, "revision "+rev[:7]+" refused: "+reason, func() (bool, string) {
				st, err := c.sourceStatus("b")
				if err != nil {
					return false, err.Error()
				}
				return strings.Contains(st.LastError, rev[:7]) && strings.Contains(st.LastError, reason), st.LastError
			})
			if got := tag("wb"); got != "b3" {
				t.Fatalf("a refused revision was deployed: wb runs %q", got)
			}
		}
		workerRepo(b, "beta", "wb", "b4")
		waitReported(b.commit("b4 unsigned"), "not signed")
		workerRepo(b, "beta", "wb", "b5")
		b.git("add", "-A")
		b.git("-c", "gpg.format=ssh", "-c", "user.signingkey="+stranger, "commit", "-q", "-S", "-m", "b5 by a stranger")
		waitReported(b.git("rev-parse", "HEAD"), "untrusted")
		if strings.Contains(c.logs.String(), string(secret)) {
			t.Fatal("the webhook secret is in the controller's log")
		}
	})

	t.Run("force-push and a vanished server on one source; the other keeps deploying", func(t *testing.T) {
		workerRepo(a, "alpha", "wa", "a2")
		a.commit("a2")
		waitTag("wa", "a2")
		a.git("reset", "-q", "--hard", a1) // force-push back to a1
		waitTag("wa", "a1")

		if err := os.RemoveAll(filepath.Join(a.dir, ".git")); err != nil { // the server is gone
			t.Fatal(err)
		}
		waitFor(t, settle, "source a reports the missing repository", func() (bool, string) {
			st, err := c.sourceStatus("a")
			if err != nil {
				return false, err.Error()
			}
			return st.LastError != "", "no error yet"
		})
		workerRepo(b, "beta", "wb", "b6")
		b.signedCommit(trusted, "b6")
		waitTag("wb", "b6")
		if got := tag("wa"); got != "a1" {
			t.Fatalf("source a's workload changed while its server was gone: %q", got)
		}
	})
}

// restartWithInterval stops c and starts a controller on the same configuration with source b polled every
// interval instead of hourly, so the test does not depend on the spent webhook rate limit.
func restartWithInterval(t, owner testing.TB, c *controller, instance, config, interval string) *controller {
	t.Helper()
	c.stop()
	text, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, bytes.Replace(text, []byte(`interval: "1h"`), []byte(`interval: "`+interval+`"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return startOwnedController(t, owner, instance, "", c.dataDir, "--config", config)
}
