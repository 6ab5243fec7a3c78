package preview

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
	"github.com/berth-dev/berth/repos/gittest"
)

// gitRepo is a base repository served by git http-backend, with pull request heads pushed into its refs as a
// forge does.
type gitRepo struct {
	t      *testing.T
	origin string // working repository on main, with remote "served"
	bare   string // the served bare repository
	url    string // its smart HTTP URL
}

// newGitRepo makes a repository whose main holds files, served over HTTP, in a hermetic Git environment.
func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
		"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
		"GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
	} {
		t.Setenv(k, v)
	}
	r := &gitRepo{t: t, origin: t.TempDir()}
	r.git(r.origin, "init", "-q", "-b", "main")
	r.commit(files, "base")
	root := t.TempDir()
	r.bare = filepath.Join(root, "repo.git")
	r.git(root, "clone", "-q", "--bare", r.origin, "repo.git")
	r.git(r.origin, "remote", "add", "served", r.bare)
	srv := httptest.NewServer(gittest.HTTPBackend(t, root))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/repo.git"
	return r
}

func (r *gitRepo) git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files into the origin's work tree and commits them on the branch checked out.
func (r *gitRepo) commit(files map[string]string, msg string) string {
	r.t.Helper()
	for name, text := range files {
		p := filepath.Join(r.origin, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git(r.origin, "add", "-A")
	r.git(r.origin, "commit", "-q", "--allow-empty", "-m", msg)
	return r.git(r.origin, "rev-parse", "HEAD")
}

// branchCommit commits files on branch (made from main when new, else continued) and returns the commit; the
// origin is back on main afterwards.
func (r *gitRepo) branchCommit(branch string, files map[string]string, msg string) string {
	r.t.Helper()
	if r.git(r.origin, "branch", "--list", branch) == "" {
		r.git(r.origin, "checkout", "-q", "-b", branch, "main")
	} else {
		r.git(r.origin, "checkout", "-q", branch)
	}
	sha := r.commit(files, msg)
	r.git(r.origin, "checkout", "-q", "main")
	return sha
}

// publish points the base's ref (refs/pull/N/head) at sha, as the forge does after a push.
func (r *gitRepo) publish(ref, sha string) {
	r.t.Helper()
	gittest.PushPull(r.t, r.origin, sha, r.bare, ref)
}

// gitWorld is a world whose controller's source is a real Git source (repos.Open over HTTP) of repo.
type gitWorld struct {
	*world
	repo *gitRepo
	git  repos.Source
}

func newGitWorld(t *testing.T, previews string) *gitWorld {
	t.Helper()
	gw := &gitWorld{repo: newGitRepo(t, baseCUE(previews))}
	src, err := repos.Open(context.Background(), gw.repo.url, repos.Options{CacheDir: t.TempDir(), Timeout: 30 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("closing the Git source: %v", err)
		}
	})
	gw.git = src
	gw.world = newWorld(t, previews, func(o *Options) { o.Source = src })
	return gw
}

// pushHead commits headCUE(image, greeting) on branch and returns the commit (not yet published at a ref).
func (gw *gitWorld) pushHead(branch, image, greeting string) string {
	return gw.repo.branchCommit(branch, headCUE(gw.previews, image, greeting), image+" "+greeting)
}

// TestGitSourcePreview runs previews from a real Git source: a pull request's head is a commit the forge published
// at refs/pull/N/head, a push moves it, and a fork's head is copied there from the fork's repository.
func TestGitSourcePreview(t *testing.T) {
	w := newGitWorld(t, forkPreviews)
	head := w.pushHead("feature", "app:v2", "from git")
	w.repo.publish("refs/pull/1/head", head)
	n := w.emu.Open(githubemu.PR{Author: "alice", HeadRef: "feature", HeadSHA: head, Labels: []string{"preview"}})
	if n != 1 {
		t.Fatalf("pull request %d, want 1", n)
	}
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head {
		t.Fatalf("state %s (%s) deployed %s errors %v, want ready at %s", st.State, st.Reason, st.Deployed, st.Errors, head)
	}
	if got := w.running(n); len(got) != 1 || got["web"] != "app:v2" {
		t.Fatalf("the preview runs %v, want the head's image app:v2", got)
	}

	// A push: the forge moves the ref and reports the new head.
	head2 := w.pushHead("feature", "app:v3", "pushed")
	w.repo.publish("refs/pull/1/head", head2)
	w.emu.Push(n, head2)
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head2 {
		t.Fatalf("after the push: state %s (%s) deployed %s errors %v", st.State, st.Reason, st.Deployed, st.Errors)
	}
	if got := w.running(n); got["web"] != "app:v3" {
		t.Fatalf("after the push the preview runs %v", got)
	}

	// A fork: its commit lives in the fork's repository until the forge copies it into refs/pull/2/head.
	fork := gittest.Fork(t, w.repo.bare)
	w.repo.git(w.repo.origin, "remote", "add", "fork", fork)
	forkHead := w.pushHead("forked", "fork:v1", "from a fork")
	w.repo.git(w.repo.origin, "push", "-q", "fork", "forked")
	w.repo.git(w.repo.origin, "branch", "-q", "-D", "forked")
	if got := gittest.PushPull(t, fork, "forked", w.repo.bare, "refs/pull/2/head"); got != forkHead {
		t.Fatalf("the fork's head is %s, want %s", got, forkHead)
	}
	m := w.emu.Open(githubemu.PR{Author: "mallory", HeadRef: "forked", HeadRepo: "mallory/shop", HeadSHA: forkHead, Labels: []string{"preview"}})
	w.sync()
	if st := w.status(m); st.State != StateAwaitingApproval || len(w.running(m)) != 0 {
		t.Fatalf("an unapproved fork: state %s, runs %v", st.State, w.running(m))
	}
	w.emu.AddComment(m, "maintainer", "/berth preview "+forkHead[:12])
	w.sync()
	if st := w.status(m); st.State != StateReady || st.Deployed != forkHead || !st.Fork {
		t.Fatalf("the approved fork: state %s (%s) deployed %s fork %v errors %v", st.State, st.Reason, st.Deployed, st.Fork, st.Errors)
	}
	if got := w.running(m); len(got) != 1 || got["web"] != "fork:v1" {
		t.Fatalf("the fork's preview runs %v, want fork:v1", got)
	}
	if got := w.running(n); got["web"] != "app:v3" {
		t.Fatalf("the first preview runs %v beside the fork's", got)
	}
}

// TestGitSourceHeadMovedChangesNothing: the forge reported a head, but the author pushed again before the fetch and
// the ref is at a newer commit (ErrHeadMoved). Nothing changes: what runs keeps running at its head, nothing is
// reported failed; the next pass takes the forge's new head.
func TestGitSourceHeadMovedChangesNothing(t *testing.T) {
	w := newGitWorld(t, defaultPreviews)
	head := w.pushHead("feature", "app:v2", "first")
	w.repo.publish("refs/pull/1/head", head)
	n := w.emu.Open(githubemu.PR{Author: "alice", HeadRef: "feature", HeadSHA: head, Labels: []string{"preview"}})
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head {
		t.Fatalf("state %s (%s) deployed %s errors %v", st.State, st.Reason, st.Deployed, st.Errors)
	}

	head2 := w.pushHead("feature", "app:v3", "second")
	w.emu.Push(n, head2)
	// Force-pushed since the forge answered head2: head2 is not in the ref's history, so no fetch brings it.
	head3 := w.pushHead("rewritten", "app:v4", "third")
	w.repo.publish("refs/pull/1/head", head3)
	w.sync()
	st := w.status(n)
	if got := w.running(n); got["web"] != "app:v2" {
		t.Fatalf("a moved head changed what runs: %v", got)
	}
	if _, err := w.git.(repos.RefFetcher).FetchRef(w.ctx, "refs/pull/1/head", head2); !errors.Is(err, repos.ErrHeadMoved) {
		t.Fatalf("the setup does not move the head: %v", err)
	}
	if st.State == StateFailed || st.Deployed != head {
		t.Errorf("a moved head is reported: state %s (%s) deployed %s errors %v; want the preview as it was", st.State, st.Reason, st.Deployed, st.Errors)
	}
	if got := w.githubStatus(head2); got == forge.StatusFailure || got == forge.StatusError {
		t.Errorf("commit %s got status %s for a head that was only moved", short(head2), got)
	}

	w.emu.Push(n, head3)
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head3 {
		t.Fatalf("the next pass: state %s (%s) deployed %s errors %v, want ready at %s", st.State, st.Reason, st.Deployed, st.Errors, head3)
	}
	if got := w.running(n); got["web"] != "app:v4" {
		t.Fatalf("the next pass runs %v, want app:v4", got)
	}
}

// TestGitSourceHeadMovedIsRetried: the forge reports a push before it has moved refs/pull/N/head (GitHub moves it
// asynchronously), so the fetch finds the old commit there (ErrHeadMoved). The next pass fetches again and, the
// ref being there now, deploys the head, though the forge's answer is the same.
func TestGitSourceHeadMovedIsRetried(t *testing.T) {
	w := newGitWorld(t, defaultPreviews)
	head := w.pushHead("feature", "app:v2", "first")
	w.repo.publish("refs/pull/1/head", head)
	n := w.emu.Open(githubemu.PR{Author: "alice", HeadRef: "feature", HeadSHA: head, Labels: []string{"preview"}})
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head {
		t.Fatalf("state %s (%s) deployed %s errors %v", st.State, st.Reason, st.Deployed, st.Errors)
	}

	head2 := w.pushHead("feature", "app:v3", "second")
	w.emu.Push(n, head2) // the ref is still at head
	w.sync()
	if got := w.running(n); got["web"] != "app:v2" {
		t.Fatalf("a head not yet at its ref changed what runs: %v", got)
	}
	w.repo.publish("refs/pull/1/head", head2)
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head2 {
		t.Fatalf("the ref is at the forge's head now, but the next pass: state %s (%s) deployed %s errors %v; want ready at %s",
			st.State, st.Reason, st.Deployed, st.Errors, short(head2))
	}
	if got := w.running(n); got["web"] != "app:v3" {
		t.Fatalf("the next pass runs %v, want app:v3", got)
	}
}

// githubStatus is the state of berth's status of preview pr-1 on sha, as the GitHub emulator holds it.
func (gw *gitWorld) githubStatus(sha string) forge.StatusState {
	gw.t.Helper()
	sts, err := gw.forge.Statuses(gw.ctx, sha)
	if err != nil {
		gw.t.Fatal(err)
	}
	return sts[gw.c.statusContext("pr-1")]
}

// TestGitSourceHeadNotYetPublished: the forge lists a new pull request before refs/pull/N/head exists
// (ErrRefNotFound). Nothing is deployed and nothing is remembered against the head: once the ref is there, the next
// pass deploys it.
func TestGitSourceHeadNotYetPublished(t *testing.T) {
	w := newGitWorld(t, defaultPreviews)
	head := w.pushHead("feature", "app:v2", "first")
	n := w.emu.Open(githubemu.PR{Author: "alice", HeadRef: "feature", HeadSHA: head, Labels: []string{"preview"}})
	if _, err := w.git.(repos.RefFetcher).FetchRef(w.ctx, "refs/pull/1/head", head); !errors.Is(err, repos.ErrRefNotFound) {
		t.Fatalf("the setup publishes the head already: %v", err)
	}
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("a head that cannot be fetched runs: %v", got)
	}
	w.repo.publish("refs/pull/1/head", head)
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head {
		t.Fatalf("the ref is there now, but the next pass: state %s (%s) deployed %s errors %v", st.State, st.Reason, st.Deployed, st.Errors)
	}
	if got := w.running(n); got["web"] != "app:v2" {
		t.Fatalf("runs %v, want app:v2", got)
	}
}
