package gitea_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
)

// giteaServer is Gitea's own server (BERTH_GITEA_BIN, built by hack/gitea.sh) running on 127.0.0.1 with a
// temporary work directory and SQLite.
type giteaServer struct {
	URL   string // http://127.0.0.1:port, no trailing slash
	User  string // the admin user, owner of the repositories the test makes
	Token string // the admin user's access token for setting up (scope all)
	// BerthToken is another token of the admin user with only the scopes berth's doc names (read:user,
	// write:repository, write:issue): the Forge under test uses it.
	BerthToken string

	bin, config, dir string
	log              *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 8192 {
		s = "…" + s[len(s)-8192:]
	}
	return s
}

// startGitea starts the server, or skips when BERTH_GITEA_BIN is not set (fails instead when
// BERTH_REQUIRE_GITEA is set). The server stops when the test ends.
func startGitea(t *testing.T) *giteaServer {
	t.Helper()
	bin := os.Getenv("BERTH_GITEA_BIN")
	if bin == "" {
		if os.Getenv("BERTH_REQUIRE_GITEA") != "" {
			t.Fatal("BERTH_REQUIRE_GITEA is set but BERTH_GITEA_BIN is not (run hack/gitea.sh)")
		}
		t.Skip("BERTH_GITEA_BIN not set (export BERTH_GITEA_BIN=$(hack/gitea.sh); BERTH_REQUIRE_GITEA=1 makes this a failure)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("BERTH_GITEA_BIN: %v", err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("Gitea needs git: %v", err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	s := &giteaServer{URL: "http://127.0.0.1:" + strconv.Itoa(port), User: "berth-bot", bin: bin, dir: dir,
		config: filepath.Join(dir, "custom", "conf", "app.ini"), log: &lockedBuffer{}}
	if err := os.MkdirAll(filepath.Dir(s.config), 0o700); err != nil {
		t.Fatal(err)
	}
	// Templates and options are read from beside the binary (hack/gitea.sh builds without bindata).
	ini := fmt.Sprintf(`APP_NAME = berth test
RUN_MODE = prod
RUN_USER = %[1]s
WORK_PATH = %[2]s

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[3]d
ROOT_URL = %[4]s/
LOCAL_ROOT_URL = %[4]s/
DOMAIN = 127.0.0.1
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = %[2]s/data
STATIC_ROOT_PATH = %[5]s

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = %[2]s/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = berth-test-secret-key-not-for-use
PASSWORD_HASH_ALGO = pbkdf2_hi

[oauth2]
ENABLED = false

[mailer]
ENABLED = false

[service]
DISABLE_REGISTRATION = true
NO_REPLY_ADDRESS = noreply.localhost

[indexer]
ISSUE_INDEXER_TYPE = db

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[actions]
ENABLED = false

[packages]
ENABLED = false

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[migrations]
ALLOW_LOCALNETWORKS = false

[log]
MODE = console
LEVEL = warn
ROOT_PATH = %[2]s/log
`, me.Username, dir, port, s.URL, filepath.Dir(bin))
	if err := os.WriteFile(s.config, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}

	s.cli(t, "migrate")
	s.cli(t, "admin", "user", "create", "--admin", "--username", s.User, "--password", "berth-Passw0rd!",
		"--email", "bot@example.invalid", "--must-change-password=false")
	s.Token = s.token(t, s.User, "setup", "all")
	s.BerthToken = s.token(t, s.User, "berth", "read:user,write:repository,write:issue")

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "web", "--config", s.config, "--work-path", dir)
	cmd.Dir = dir
	cmd.Env = s.env()
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // Gitea shuts down gracefully on SIGINT
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cancel()
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("gitea log:\n%s", s.log.tail())
		}
	})

	// Ready when the API answers; fail at once if the server exits.
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(s.URL + "/api/v1/version")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("gitea exited before answering: %v\n%s", err, s.log.tail())
		case <-deadline:
			t.Fatalf("gitea did not answer on %s in 90s\n%s", s.URL, s.log.tail())
		case <-tick.C:
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// env is the environment of every gitea process. It holds no GIT_* or GITEA* variable from outside: Gitea runs
// `git config --global` for its own git home, and an inherited GIT_CONFIG_GLOBAL=/dev/null (hack/test.sh sets it)
// would make git, running as root, replace /dev/null with a config file.
func (s *giteaServer) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "GITEA") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "GITEA_WORK_DIR="+s.dir, "HOME="+s.dir,
		// CI runs as root; Gitea refuses root unless told.
		"GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
}

// cli runs a gitea subcommand against the server's configuration and returns its standard output.
func (s *giteaServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, append(args, "--config", s.config, "--work-path", s.dir)...)
	cmd.Dir = s.dir
	cmd.Env = s.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gitea %s: %v\n%s", args[0], err, stderr.String())
	}
	return stdout.String()
}

// token makes an access token of user with the given scopes.
func (s *giteaServer) token(t *testing.T, user, name, scopes string) string {
	t.Helper()
	tok := strings.TrimSpace(s.cli(t, "admin", "user", "generate-access-token", "--username", user,
		"--token-name", name, "--scopes", scopes, "--raw"))
	if len(tok) < 20 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("generate-access-token printed no token")
	}
	return tok
}

// api sends one request to Gitea's API as the admin user and decodes a JSON answer into out (when not nil).
func (s *giteaServer) api(t *testing.T, method, path string, in, out any) {
	t.Helper()
	s.apiAs(t, s.Token, method, path, in, out)
}

// apiAs is api with another user's token.
func (s *giteaServer) apiAs(t *testing.T, token, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/api/v1"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// git runs git in dir, authenticated to the server as the admin user by a header passed in the environment (the
// token is in no URL and no argument).
func (s *giteaServer) git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	basic := base64.StdEncoding.EncodeToString([]byte(s.User + ":" + s.Token))
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"HOME="+dir, "GIT_AUTHOR_NAME=alice", "GIT_AUTHOR_EMAIL=alice@example.invalid",
		"GIT_COMMITTER_NAME=alice", "GIT_COMMITTER_EMAIL=alice@example.invalid",
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// commit writes a file and commits it in the work tree, returning the commit's SHA.
func (s *giteaServer) commit(t *testing.T, wt, file, text string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(wt, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s.git(t, wt, "add", file)
	s.git(t, wt, "commit", "-q", "-m", "change "+file)
	return s.git(t, wt, "rev-parse", "HEAD")
}

// headOf reads the pull request's head SHA as Gitea's API says it.
func (s *giteaServer) headOf(t *testing.T, repo string, n int) string {
	t.Helper()
	var pr struct {
		Head struct {
			SHA string `json:"sha"`
		} `json:"head"`
	}
	s.api(t, "GET", fmt.Sprintf("/repos/%s/pulls/%d", repo, n), nil, &pr)
	return pr.Head.SHA
}

// TestGiteaServer runs the Forge against Gitea's own server: a repository, a branch pushed over HTTP, a pull
// request opened through the API, and every Forge call on it.
func TestGiteaServer(t *testing.T) {
	s := startGitea(t)
	ctx := context.Background()
	repo := s.User + "/shop"

	// Two more users: alice, a collaborator with write access, and bob, who has none.
	s.cli(t, "admin", "user", "create", "--username", "alice", "--password", "alice-Passw0rd!",
		"--email", "alice@example.invalid", "--must-change-password=false")
	s.cli(t, "admin", "user", "create", "--username", "bob", "--password", "bob-Passw0rd!",
		"--email", "bob@example.invalid", "--must-change-password=false")
	s.api(t, "POST", "/user/repos", map[string]any{"name": "shop", "default_branch": "main"}, nil)
	s.api(t, "PUT", "/repos/"+repo+"/collaborators/alice", map[string]any{"permission": "write"}, nil)

	wt := t.TempDir()
	s.git(t, wt, "init", "-q", "-b", "main")
	s.commit(t, wt, "README.md", "# shop\n")
	remote := s.URL + "/" + repo + ".git"
	s.git(t, wt, "push", "-q", remote, "main")
	s.git(t, wt, "checkout", "-q", "-b", "cart")
	head1 := s.commit(t, wt, "cart.cue", "cart: replicas: 1\n")
	s.git(t, wt, "push", "-q", remote, "cart")
	waitFor(t, "branch cart", func() bool {
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/repos/"+repo+"/branches/cart", nil)
		req.Header.Set("Authorization", "token "+s.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	var opened struct {
		Number int `json:"number"`
	}
	s.api(t, "POST", "/repos/"+repo+"/pulls", map[string]any{"head": "cart", "base": "main", "title": "Add a cart",
		"body": "adds the cart service"}, &opened)
	n := opened.Number
	if n <= 0 {
		t.Fatalf("pull request number %d", n)
	}

	var mu sync.Mutex
	requests := map[string]int{}
	newForge := func() *gitea.Forge {
		f, err := gitea.New(gitea.Options{BaseURL: s.URL, Repository: repo, Token: s.BerthToken, Timeout: 10 * time.Second,
			Observer: forge.ObserverFuncs{OnRequest: func(_, op string, code int) {
				mu.Lock()
				defer mu.Unlock()
				requests[op]++
				requests["all"]++
				if code == 0 || code >= 400 {
					requests["failed"]++
				}
			}}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := newForge()

	t.Run("ListOpen", func(t *testing.T) {
		l, err := f.ListOpen(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Changes) != 1 || l.NotModified || l.ETag == "" {
			t.Fatalf("listing: %d changes, notModified %v, etag %q", len(l.Changes), l.NotModified, l.ETag)
		}
		c := l.Changes[0]
		want := forge.Change{Number: n, Title: "Add a cart", Author: s.User, State: forge.StateOpen, HeadSHA: head1,
			HeadRef: "cart", HeadRepo: repo, BaseRef: "main"}
		c.UpdatedAt = time.Time{}
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("change:\n got %+v\nwant %+v", c, want)
		}
		// Gitea sends no ETag on listings: berth's own digest makes an unchanged listing NotModified.
		if !strings.HasPrefix(l.ETag, "berth-sha256:") {
			t.Fatalf("etag %q: want berth's digest (Gitea sends no ETag on API listings)", l.ETag)
		}
		l2, err := f.ListOpen(ctx, l.ETag)
		if err != nil || !l2.NotModified || l2.Changes != nil || l2.ETag != l.ETag {
			t.Fatalf("unchanged listing: notModified %v, %d changes, etag %q, %v", l2.NotModified, len(l2.Changes),
				l2.ETag, err)
		}
	})

	t.Run("PullHeadRef", func(t *testing.T) {
		clone := t.TempDir()
		s.git(t, clone, "init", "-q")
		s.git(t, clone, "fetch", "-q", remote, fmt.Sprintf("refs/pull/%d/head", n))
		if got := s.git(t, clone, "rev-parse", "FETCH_HEAD"); got != head1 {
			t.Fatalf("refs/pull/%d/head is %s, want %s", n, got, head1)
		}
	})

	t.Run("Get", func(t *testing.T) {
		c, err := f.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if c.Number != n || c.State != forge.StateOpen || c.HeadSHA != head1 || c.Fork || c.Draft {
			t.Fatalf("get: %+v", c)
		}
		if _, err := f.Get(ctx, n+1000); !errors.Is(err, forge.ErrNotFound) {
			t.Fatalf("get of a missing pull request: %v, want ErrNotFound", err)
		}
	})

	t.Run("Permission", func(t *testing.T) {
		for user, want := range map[string]forge.Permission{s.User: forge.PermissionAdmin,
			"alice": forge.PermissionWrite} {
			p, err := f.Permission(ctx, user)
			if err != nil || p != want {
				t.Fatalf("permission of %s: %q %v, want %q", user, p, err, want)
			}
		}
		p, err := f.Permission(ctx, "bob")
		if err != nil || p.CanWrite() {
			t.Fatalf("permission of bob: %q %v, want no write", p, err)
		}
	})

	t.Run("Statuses", func(t *testing.T) {
		st := forge.Status{SHA: head1, Context: "berth/eu/pr-" + strconv.Itoa(n), State: forge.StatusPending,
			Description: "applying", TargetURL: "http://127.0.0.1/berth"}
		for range 2 {
			if err := f.SetStatus(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		// A new Forge (a restarted berth) reads the listing and sends nothing either.
		if err := newForge().SetStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
		var list []map[string]any
		s.api(t, "GET", "/repos/"+repo+"/statuses/"+head1, nil, &list)
		if len(list) != 1 {
			t.Fatalf("Gitea holds %d statuses after the same one set three times, want 1", len(list))
		}
		got, err := f.Statuses(ctx, head1)
		if err != nil || got[st.Context] != forge.StatusPending {
			t.Fatalf("statuses: %v %v", got, err)
		}
		st.State, st.Description = forge.StatusSuccess, strings.Repeat("d", 300) // cut to 140
		if err := f.SetStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
		got, err = f.Statuses(ctx, head1)
		if err != nil || got[st.Context] != forge.StatusSuccess {
			t.Fatalf("statuses after success: %v %v", got, err)
		}
	})

	t.Run("Comments", func(t *testing.T) {
		marker := forge.Marker("eu", "pr-"+strconv.Itoa(n))
		// Alice's comment starting with the same marker is a look-alike: never edited.
		aliceToken := s.token(t, "alice", "alice", "write:issue")
		lookAlike := marker + "\nnot berth's"
		var alices struct {
			ID int64 `json:"id"`
		}
		s.apiAs(t, aliceToken, "POST", fmt.Sprintf("/repos/%s/issues/%d/comments", repo, n),
			map[string]any{"body": lookAlike}, &alices)
		id1, err := f.UpsertComment(ctx, n, marker, "preview: applying")
		if err != nil {
			t.Fatal(err)
		}
		id2, err := f.UpsertComment(ctx, n, marker, "preview: ready")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		before := requests["all"]
		mu.Unlock()
		id3, err := f.UpsertComment(ctx, n, marker, "preview: ready") // the same body: read, no edit
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		sent := requests["all"] - before
		mu.Unlock()
		if id1 != id2 || id2 != id3 || id1 == alices.ID {
			t.Fatalf("comment ids %d, %d, %d (alice's %d): want one comment of berth's edited in place", id1, id2,
				id3, alices.ID)
		}
		if sent != 1 {
			t.Fatalf("an upsert of the same body sent %d requests, want 1 (the listing)", sent)
		}
		cs, err := f.Comments(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 2 || cs[0].ID != alices.ID || cs[0].Body != lookAlike || cs[0].Author != "alice" ||
			cs[1].ID != id1 || cs[1].Body != marker+"\npreview: ready" || cs[1].Author != s.User {
			t.Fatalf("comments: %+v", cs)
		}
	})

	t.Run("PushMovesHead", func(t *testing.T) {
		l, err := f.ListOpen(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		head2 := s.commit(t, wt, "cart.cue", "cart: replicas: 2\n")
		s.git(t, wt, "push", "-q", remote, "cart")
		waitFor(t, "the pull request's head to move", func() bool { return s.headOf(t, repo, n) == head2 })
		l2, err := f.ListOpen(ctx, l.ETag)
		if err != nil || l2.NotModified || len(l2.Changes) != 1 || l2.Changes[0].HeadSHA != head2 {
			t.Fatalf("after a push: notModified %v, %+v, %v", l2.NotModified, l2.Changes, err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		l, err := f.ListOpen(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		s.api(t, "PATCH", fmt.Sprintf("/repos/%s/pulls/%d", repo, n), map[string]any{"state": "closed"}, nil)
		c, err := f.Get(ctx, n)
		if err != nil || c.State != forge.StateClosed {
			t.Fatalf("after closing: %q %v", c.State, err)
		}
		l2, err := f.ListOpen(ctx, l.ETag)
		if err != nil || l2.NotModified || len(l2.Changes) != 0 {
			t.Fatalf("after closing: notModified %v, %d changes, %v", l2.NotModified, len(l2.Changes), err)
		}
	})

	mu.Lock()
	defer mu.Unlock()
	// Only the deliberate Get of a missing pull request failed.
	if requests["failed"] != 1 {
		t.Fatalf("%d requests failed: %v", requests["failed"], requests)
	}
	t.Logf("requests by op: %v", requests)
}
