package repos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/gittest"
	"github.com/berth-dev/berth/schema/redact"
	"github.com/go-git/go-git/v5/plumbing"
)

func fetches(src Source) int { return src.(*gitSource).fetches }

func TestGitFileURL(t *testing.T) {
	hermetic(t)
	origin, sha1 := newOrigin(t, map[string]string{
		"envs/prod.cue": "prod: 1\n", "bin/run.sh": "#!/bin/sh\n", "link.cue": "->envs/prod.cue",
	})
	if err := os.Chmod(filepath.Join(origin, "bin/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	sha1 = commitAll(t, origin, "make run.sh executable")
	gitCmd(t, origin, "tag", "v1")
	gitCmd(t, origin, "branch", "other")

	src := open(t, "file://"+origin, Options{})
	snap := fetch(t, src)
	if snap.Revision != sha1 || snap.Branch != "main" || snap.Message != "make run.sh executable" {
		t.Fatalf("snapshot = %+v, want revision %s on main", snap, sha1)
	}
	ct, _ := strconv.ParseInt(gitCmd(t, origin, "log", "-1", "--format=%ct"), 10, 64)
	if !snap.Time.Equal(time.Unix(ct, 0)) {
		t.Errorf("Time = %v, want committer time %v", snap.Time, time.Unix(ct, 0))
	}
	if got := readFile(t, snap.Dir, "envs/prod.cue"); got != "prod: 1\n" {
		t.Errorf("envs/prod.cue = %q", got)
	}
	if got := readFile(t, snap.Dir, "link.cue"); got != "prod: 1\n" {
		t.Errorf("materialised link.cue = %q", got)
	}
	if info, err := os.Lstat(filepath.Join(snap.Dir, "link.cue")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("link.cue should be a regular file copy (err %v)", err)
	}
	if info, err := os.Stat(filepath.Join(snap.Dir, "bin/run.sh")); err != nil || info.Mode().Perm() != 0o555 {
		t.Errorf("bin/run.sh mode: %v, %v; want 0555", info.Mode(), err)
	}
	if filepath.Base(snap.Dir) != sha1 {
		t.Errorf("Dir %s is not named by the commit", snap.Dir)
	}

	// Only the watched branch, no tags.
	gs := src.(*gitSource)
	refs, _ := gs.repo.References()
	_ = refs.ForEach(func(r *plumbing.Reference) error {
		if r.Name().IsTag() || strings.Contains(r.Name().String(), "other") {
			t.Errorf("fetched %s; only the watched branch should be fetched", r.Name())
		}
		return nil
	})

	// Unchanged: no fetch, same snapshot.
	objectsBefore := countObjects(t, gs)
	for range 3 {
		if again := fetch(t, src); again.Revision != sha1 || again.Dir != snap.Dir {
			t.Fatalf("unchanged branch gave %+v", again)
		}
	}
	if n := fetches(src); n != 1 {
		t.Fatalf("%d fetches for an unchanged branch, want 1", n)
	}
	if n := countObjects(t, gs); n != objectsBefore {
		t.Errorf("objects changed from %d to %d without a new commit", objectsBefore, n)
	}

	writeFiles(t, origin, map[string]string{"envs/prod.cue": "prod: 2\n"})
	sha2 := commitAll(t, origin, "bump prod")
	next := fetch(t, src)
	if next.Revision != sha2 || readFile(t, next.Dir, "envs/prod.cue") != "prod: 2\n" {
		t.Fatalf("after a commit: %+v", next)
	}
	if n := fetches(src); n != 2 {
		t.Errorf("%d fetches after one new commit, want 2", n)
	}
	if got := readFile(t, snap.Dir, "envs/prod.cue"); got != "prod: 1\n" {
		t.Errorf("old snapshot changed under its reader: %q", got)
	}
}

func countObjects(t *testing.T, gs *gitSource) int {
	t.Helper()
	iter, err := gs.repo.Storer.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = iter.ForEach(func(plumbing.EncodedObject) error { n++; return nil })
	return n
}

func TestGitForcePush(t *testing.T) {
	hermetic(t)
	origin, sha1 := newOrigin(t, map[string]string{"a.cue": "a: 1\n"})
	writeFiles(t, origin, map[string]string{"a.cue": "a: 2\n"})
	sha2 := commitAll(t, origin, "second")
	src := open(t, "file://"+origin, Options{})
	if got := fetch(t, src); got.Revision != sha2 {
		t.Fatalf("revision %s, want %s", got.Revision, sha2)
	}

	// Branch moved back to an older commit.
	gitCmd(t, origin, "reset", "-q", "--hard", sha1)
	old := fetch(t, src)
	if old.Revision != sha1 || readFile(t, old.Dir, "a.cue") != "a: 1\n" || old.Message != "first commit" {
		t.Fatalf("after force-push to the parent: %+v", old)
	}
	if n := fetches(src); n != 1 {
		t.Errorf("%d fetches, want 1: the older commit was already here", n)
	}

	// Branch moved to an unrelated history.
	gitCmd(t, origin, "checkout", "-q", "--orphan", "fresh")
	gitCmd(t, origin, "rm", "-q", "-rf", ".")
	writeFiles(t, origin, map[string]string{"b.cue": "b: 1\n"})
	sha3 := commitAll(t, origin, "unrelated root")
	gitCmd(t, origin, "branch", "-f", "main", sha3)
	fresh := fetch(t, src)
	if fresh.Revision != sha3 || readFile(t, fresh.Dir, "b.cue") != "b: 1\n" {
		t.Fatalf("after force-push to an unrelated commit: %+v", fresh)
	}
	if _, err := os.Stat(filepath.Join(fresh.Dir, "a.cue")); !os.IsNotExist(err) {
		t.Errorf("a.cue leaked into the unrelated snapshot")
	}
}

func TestGitBranchNotFound(t *testing.T) {
	hermetic(t)
	origin, _ := newOrigin(t, map[string]string{"a.cue": "a: 1\n"})
	if _, err := open(t, "file://"+origin, Options{Branch: "nope"}).Fetch(context.Background()); !errors.Is(err, ErrBranchNotFound) {
		t.Errorf("missing branch: %v, want ErrBranchNotFound", err)
	}

	gitCmd(t, origin, "checkout", "-q", "-b", "feature")
	src := open(t, "file://"+origin, Options{Branch: "feature"})
	fetch(t, src)
	gitCmd(t, origin, "checkout", "-q", "main")
	gitCmd(t, origin, "branch", "-q", "-D", "feature")
	_, err := src.Fetch(context.Background())
	if !errors.Is(err, ErrBranchNotFound) || !strings.Contains(err.Error(), `"feature"`) {
		t.Errorf("deleted branch: %v, want ErrBranchNotFound naming it", err)
	}
}

func TestGitUnsafeAndOversized(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		name  string
		files map[string]string
		opts  Options
		want  error
		names string
	}{
		{"escaping link", map[string]string{"conf/x.cue": "->../../etc/passwd"}, Options{}, ErrUnsafePath, `link "conf/x.cue" -> "../../etc/passwd"`},
		{"absolute link", map[string]string{"x.cue": "->/etc/passwd"}, Options{}, ErrUnsafePath, `link "x.cue"`},
		{"oversized", map[string]string{"big.bin": strings.Repeat("x", 100)}, Options{MaxFileSize: 99}, ErrFileTooLarge, `"big.bin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin, sha := newOrigin(t, tc.files)
			src := open(t, "file://"+origin, tc.opts)
			_, err := src.Fetch(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Fetch: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.names) || !strings.Contains(err.Error(), "snapshot "+sha[:12]) {
				t.Errorf("error %q should name %s and the snapshot", err, tc.names)
			}
			assertNoSnapshots(t, src)
		})
	}
}

// bareServed makes a bare copy of a fresh origin under a served root and returns (origin, root, repo name).
func bareServed(t *testing.T) (origin, root string) {
	t.Helper()
	origin, _ = newOrigin(t, map[string]string{"a.cue": "a: 1\n"})
	root = t.TempDir()
	gitCmd(t, root, "clone", "-q", "--bare", origin, "repo.git")
	gitCmd(t, origin, "remote", "add", "served", filepath.Join(root, "repo.git"))
	return origin, root
}

func pushAndFetch(t *testing.T, origin, url string) {
	t.Helper()
	src := open(t, url, Options{Timeout: 30 * time.Second})
	first := fetch(t, src)
	if want := gitCmd(t, origin, "rev-parse", "main"); first.Revision != want {
		t.Fatalf("revision %s, want %s", first.Revision, want)
	}
	writeFiles(t, origin, map[string]string{"a.cue": "a: 2\n"})
	sha := commitAll(t, origin, "over the wire")
	gitCmd(t, origin, "push", "-q", "served", "main")
	next := fetch(t, src)
	if next.Revision != sha || readFile(t, next.Dir, "a.cue") != "a: 2\n" || next.Message != "over the wire" {
		t.Fatalf("after push: %+v", next)
	}
	if n := fetches(src); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

func TestGitSmartHTTP(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	execPath := gitCmd(t, "", "--exec-path")
	srv := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + os.Getenv("HOME")},
	})
	t.Cleanup(srv.Close)
	pushAndFetch(t, origin, srv.URL+"/repo.git")
}

func TestGitDaemon(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	pushAndFetch(t, origin, "git://"+gittest.Daemon(t, root)+"/repo.git")
}

// silentServer accepts TCP connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	t.Cleanup(func() { close(done); l.Close() })
	return l.Addr().String()
}

func TestGitTimeoutOnSilentServer(t *testing.T) {
	hermetic(t)
	addr := silentServer(t)
	for _, url := range []string{
		"http://berth:s3cretpassword@" + addr + "/repo.git",
		"git://" + addr + "/repo.git",
	} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			src := open(t, url, Options{Timeout: 300 * time.Millisecond})
			result := make(chan error, 1)
			go func() { _, err := src.Fetch(context.Background()); result <- err }()
			select {
			case err := <-result:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Fetch: %v, want a deadline error", err)
				}
				if strings.Contains(err.Error(), "s3cretpassword") {
					t.Errorf("error leaks the password: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("Fetch did not return: Options.Timeout ignored")
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:tokensecret@example.com/org/repo.git": "https://example.com/org/repo.git",
		"https://ghp_tokenvalue@example.com/repo.git":       "https://example.com/repo.git",
		"ssh://git:hunter22@example.com/repo.git":           "ssh://git@example.com/repo.git",
		"ssh://git@example.com/repo.git":                    "ssh://git@example.com/repo.git",
		"git@example.com:org/repo.git":                      "git@example.com:org/repo.git",
		"file:///srv/repo":                                  "file:///srv/repo",
		// Does not parse (the host's bracket is not closed): the userinfo goes all the same.
		"https://user:pa%zzss@[::1/repo.git": "https://[::1/repo.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	hermetic(t)
	src := open(t, "https://user:tokensecret@example.com/org/repo.git", Options{})
	if s := src.String(); strings.Contains(s, "tokensecret") || strings.Contains(s, "user") {
		t.Errorf("String() = %q leaks credentials", s)
	}
	err := redact.Error(fmt.Errorf("GET https://user:tokensecret@example.com: %w", context.Canceled))
	if strings.Contains(err.Error(), "tokensecret") || !errors.Is(err, context.Canceled) {
		t.Errorf("redact: %v", err)
	}
	// A URL that does not parse: the error names neither the password nor the whole userinfo.
	_, err = Open(context.Background(), "https://user:unparsed-pw-0x5EED@[::1/repo.git", Options{})
	if err == nil || strings.Contains(err.Error(), "unparsed-pw") {
		t.Errorf("unparsable URL: %v", err)
	}
}

func TestIsGitLocation(t *testing.T) {
	for loc, want := range map[string]bool{
		"file:///x": true, "https://h/x": true, "http://h/x": true, "ssh://h/x": true, "git://h/x": true,
		"git@github.com:org/repo.git": true, "/srv/config": false, "./config": false, "config": false,
		"C:/config": false,
	} {
		if got := isGitLocation(loc); got != want {
			t.Errorf("isGitLocation(%q) = %v, want %v", loc, got, want)
		}
	}
}

func BenchmarkPollUnchanged(b *testing.B) {
	hermetic(b)
	origin, _ := newOrigin(b, map[string]string{"a.cue": "a: 1\n"})
	src := open(b, "file://"+origin, Options{})
	want := fetch(b, src).Revision
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		snap, err := src.Fetch(context.Background())
		if err != nil || snap.Revision != want {
			b.Fatalf("Fetch: %v %v", snap, err)
		}
	}
	if n := fetches(src); n != 1 {
		b.Fatalf("%d fetches while unchanged", n)
	}
}
