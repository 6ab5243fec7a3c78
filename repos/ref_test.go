package repos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/repos/gittest"
	"github.com/go-git/go-git/v5/plumbing"
)

// prRepo is a base repository served over git http-backend and file://, with pull request heads pushed into it
// as a forge does.
type prRepo struct {
	origin   string // working repository, branch main, remote "served"
	root     string // the served root
	bare     string // the served bare repository
	http     string // its smart HTTP URL
	file     string // its file:// URL
	requests atomic.Int64
}

func newPRRepo(t *testing.T) *prRepo {
	t.Helper()
	origin, root := bareServed(t)
	r := &prRepo{origin: origin, root: root, bare: filepath.Join(root, "repo.git")}
	h := gittest.HTTPBackend(t, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.http, r.file = srv.URL+"/repo.git", "file://"+r.bare
	return r
}

// head commits files on a branch of origin off main and pushes that commit into the base's ref, as GitHub does
// for a pull request; origin is back on main afterwards.
func (r *prRepo) head(t *testing.T, ref string, files map[string]string, msg string) string {
	t.Helper()
	gitCmd(t, r.origin, "checkout", "-q", "-B", "pr", "main")
	writeFiles(t, r.origin, files)
	commitAll(t, r.origin, msg)
	sha := gittest.PushPull(t, r.origin, "pr", r.bare, ref)
	gitCmd(t, r.origin, "checkout", "-q", "main")
	return sha
}

func fetchRef(t *testing.T, src Source, ref, want string) *Snapshot {
	t.Helper()
	snap, err := src.(RefFetcher).FetchRef(context.Background(), ref, want)
	if err != nil {
		t.Fatalf("FetchRef(%s, %s): %v", ref, want, err)
	}
	return snap
}

func TestFetchRef(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	same := r.head(t, "refs/pull/7/head", map[string]string{"a.cue": "a: 7\n"}, "pr seven\n\nbody")

	// A fork's head, pushed by the forge into the base's refs/pull/8/head.
	fork := gittest.Fork(t, r.bare)
	gitCmd(t, r.origin, "remote", "add", "fork", fork)
	gitCmd(t, r.origin, "checkout", "-q", "-b", "forked", "main")
	writeFiles(t, r.origin, map[string]string{"fork.cue": "fork: true\n"})
	commitAll(t, r.origin, "from a fork")
	gitCmd(t, r.origin, "push", "-q", "fork", "forked")
	gitCmd(t, r.origin, "checkout", "-q", "main")
	forked := gittest.PushPull(t, fork, "forked", r.bare, "refs/pull/8/head")

	// A GitLab merge request head, set with update-ref on a branch the base has.
	gitCmd(t, r.origin, "checkout", "-q", "-b", "feature", "main")
	writeFiles(t, r.origin, map[string]string{"a.cue": "a: 9\n"})
	mr := commitAll(t, r.origin, "merge request nine")
	gitCmd(t, r.origin, "push", "-q", "served", "feature")
	gitCmd(t, r.origin, "checkout", "-q", "main")
	gittest.PullRef(t, r.bare, "refs/merge-requests/9/head", mr)

	daemon := "git://" + gittest.Daemon(t, r.root) + "/repo.git"
	for name, url := range map[string]string{"http": r.http, "file": r.file, "daemon": daemon} {
		t.Run(name, func(t *testing.T) {
			src := open(t, url, Options{})
			base := fetch(t, src)

			snap := fetchRef(t, src, "refs/pull/7/head", same)
			if snap.Revision != same || snap.Branch != "" || snap.Tag != "" || snap.Message != "pr seven" ||
				snap.Verified != nil || filepath.Base(snap.Dir) != same {
				t.Fatalf("head snapshot = %+v, want revision %s with no branch", snap, same)
			}
			if got := readFile(t, snap.Dir, "a.cue"); got != "a: 7\n" {
				t.Errorf("head a.cue = %q", got)
			}
			if n := fetches(src); n != 2 {
				t.Errorf("%d fetches after a branch and a head, want 2", n)
			}

			// Already in the cache: no network at all.
			reqs, n := r.requests.Load(), fetches(src)
			if again := fetchRef(t, src, "refs/pull/7/head", strings.ToUpper(same)); again.Revision != same || again.Dir != snap.Dir {
				t.Fatalf("cached head = %+v", again)
			}
			if fetches(src) != n || r.requests.Load() != reqs {
				t.Errorf("a cached head went to the network (%d fetches, %d requests)", fetches(src)-n, r.requests.Load()-reqs)
			}

			if got := fetchRef(t, src, "refs/pull/8/head", forked); readFile(t, got.Dir, "fork.cue") != "fork: true\n" {
				t.Errorf("fork head: %+v", got)
			}
			if got := fetchRef(t, src, "refs/merge-requests/9/head", mr); readFile(t, got.Dir, "a.cue") != "a: 9\n" ||
				got.Message != "merge request nine" {
				t.Errorf("merge request head: %+v", got)
			}

			// Only private tracking refs: the branch's is where it was, and nothing else appeared.
			gs := src.(*gitSource)
			refs, _ := gs.repo.References()
			var names []string
			_ = refs.ForEach(func(ref *plumbing.Reference) error { names = append(names, ref.Name().String()); return nil })
			for _, n := range names {
				if n != "HEAD" && n != "refs/remotes/origin/main" && !strings.HasPrefix(n, "refs/berth/") {
					t.Errorf("unexpected local ref %s", n)
				}
			}
			for ref, want := range map[string]string{
				"refs/remotes/origin/main": base.Revision, "refs/berth/pull/7": same, "refs/berth/pull/8": forked,
				"refs/berth/merge-requests/9": mr,
			} {
				if got, err := gs.repo.Reference(plumbing.ReferenceName(ref), true); err != nil || got.Hash().String() != want {
					t.Errorf("%s = %v (%v), want %s", ref, got, err, want)
				}
			}

			// The followed branch is unaffected.
			if again := fetch(t, src); again.Revision != base.Revision || again.Dir != base.Dir || again.Branch != "main" {
				t.Errorf("branch after heads = %+v, want %+v", again, base)
			}
			if got := readFile(t, base.Dir, "a.cue"); got != "a: 1\n" {
				t.Errorf("branch snapshot changed: %q", got)
			}

			missing := strings.Repeat("ab", 20)
			if _, err := src.(RefFetcher).FetchRef(context.Background(), "refs/pull/99/head", missing); !errors.Is(err, ErrRefNotFound) ||
				!strings.Contains(err.Error(), "refs/pull/99/head") {
				t.Errorf("missing ref: %v, want ErrRefNotFound naming it", err)
			}
		})
	}
}

func TestFetchRefHeadMoved(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	for name, url := range map[string]string{"http": r.http, "file": r.file} {
		t.Run(name, func(t *testing.T) {
			ref := "refs/pull/3/head"
			if name == "file" {
				ref = "refs/pull/4/head"
			}
			first := r.head(t, ref, map[string]string{"a.cue": "a: " + name + "1\n"}, "first push")
			src := open(t, url, Options{})
			base := fetch(t, src)
			// The forge reported first, but the author pushed again before the fetch.
			moved := r.head(t, ref, map[string]string{"a.cue": "a: " + name + "2\n"}, "second push")
			_, err := src.(RefFetcher).FetchRef(context.Background(), ref, first)
			if !errors.Is(err, ErrHeadMoved) || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), moved) {
				t.Fatalf("moved head: %v, want ErrHeadMoved naming both commits", err)
			}
			assertHeadTrees(t, src, base.Revision)
			// The next pass asks with the forge's new head: served from the cache.
			n := fetches(src)
			snap := fetchRef(t, src, ref, moved)
			if snap.Revision != moved || readFile(t, snap.Dir, "a.cue") != "a: "+name+"2\n" || fetches(src) != n {
				t.Errorf("after the move: %+v (%d more fetches)", snap, fetches(src)-n)
			}
			if again := fetch(t, src); again.Revision != base.Revision || again.Dir != base.Dir {
				t.Errorf("branch after a moved head = %+v", again)
			}
		})
	}
}

// assertHeadTrees checks that snapshots/ holds exactly the trees named.
func assertHeadTrees(t *testing.T, src Source, ids ...string) {
	t.Helper()
	entries, err := os.ReadDir(src.(*gitSource).store.dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("snapshots/ holds %v, want %v", got, ids)
	}
}

func TestFetchRefRefusesHostileRefs(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	sha := r.head(t, "refs/pull/1/head", map[string]string{"a.cue": "a: 2\n"}, "pr")
	src := open(t, r.http, Options{})
	long := "refs/pull/1/head/" + strings.Repeat("a", 250-len("refs/pull/1/head/"))
	for _, ref := range []string{
		"refs/pull/1/head/../../heads/main", "refs/pull/1/../../heads/main/head", long,
		"refs/pull/" + strings.Repeat("1", 240) + "/head", "refs/pull/12345678901/head",
		"refs/pull/１/head", "refs/pull/1/héad", "refs/pull/٣/head", // fullwidth and Arabic-Indic digits
		"refs/pull/1/head;rm -rf /", "refs/pull/$(id)/head", "refs/pull/`id`/head", "refs/pull/1/head|cat",
		"refs/pull/1/head\n", "refs/pull/1/head\x00", " refs/pull/1/head", "refs/pull/1/head ",
		"refs/heads/main", "refs/pull/1/merge", "refs/pull//head", "refs/pull/-1/head", "refs/pull/+1/head",
		"refs/pull/1/head:refs/heads/main", "+refs/pull/1/head", "refs/pull/*/head", "--upload-pack=touch /tmp/x",
		"pull/1/head", "refs/Pull/1/head", "", "refs/pull/1/head.lock", "refs/pull/1/head@{0}",
	} {
		_, err := src.(RefFetcher).FetchRef(context.Background(), ref, sha)
		if !errors.Is(err, ErrInvalidRef) {
			t.Errorf("FetchRef(%q): %v, want ErrInvalidRef", ref, err)
			continue
		}
		if msg := err.Error(); len(msg) > 300 || strings.ContainsAny(msg, "\n\x00") {
			t.Errorf("FetchRef(%q): error not bounded or not quoted: %q", ref, msg)
		}
	}
	for _, want := range []string{"", "abc", sha[:39], sha + "0", strings.Repeat("g", 40), "HEAD", "main", sha + "\n",
		"-" + sha[1:], strings.Repeat("0", 64)} {
		if _, err := src.(RefFetcher).FetchRef(context.Background(), "refs/pull/1/head", want); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("FetchRef(want %q): %v, want ErrInvalidRef", want, err)
		}
	}
	if n := r.requests.Load(); n != 0 || fetches(src) != 0 {
		t.Errorf("refused refs made %d requests, %d fetches; want none", n, fetches(src))
	}
	if snap := fetchRef(t, src, "refs/pull/1/head", sha); snap.Revision != sha {
		t.Errorf("a valid ref after the refused ones: %+v", snap)
	}
}

func TestFetchRefLimits(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	big := r.head(t, "refs/pull/1/head", map[string]string{"big.bin": incompressible(t, 256<<10)}, "big")
	wide := r.head(t, "refs/pull/2/head", map[string]string{"x/one.cue": strings.Repeat("a", 600),
		"y/two.cue": strings.Repeat("b", 600)}, "wide")
	fat := r.head(t, "refs/pull/3/head", map[string]string{"fat.cue": strings.Repeat("f", 100)}, "fat")
	for name, url := range map[string]string{"http": r.http, "file": r.file} {
		t.Run(name, func(t *testing.T) {
			src := open(t, url, Options{MaxFetchSize: 64 << 10, MaxSnapshotSize: 1100, MaxFileSize: 99})
			base := fetch(t, src)
			ctx := context.Background()
			_, err := src.(RefFetcher).FetchRef(ctx, "refs/pull/1/head", big)
			if !errors.Is(err, ErrFetchTooLarge) || !strings.Contains(err.Error(), "65536") {
				t.Errorf("oversized head fetch: %v, want ErrFetchTooLarge naming the limit", err)
			}
			if p := tempPacks(t, src); len(p) != 0 {
				t.Errorf("half-written packs left: %v", p)
			}
			if _, err := src.(RefFetcher).FetchRef(ctx, "refs/pull/2/head", wide); !errors.Is(err, ErrSnapshotTooLarge) ||
				!strings.Contains(err.Error(), wide[:12]) {
				t.Errorf("oversized head snapshot: %v, want ErrSnapshotTooLarge naming the commit", err)
			}
			if _, err := src.(RefFetcher).FetchRef(ctx, "refs/pull/3/head", fat); !errors.Is(err, ErrFileTooLarge) ||
				!strings.Contains(err.Error(), `"fat.cue"`) {
				t.Errorf("oversized head file: %v, want ErrFileTooLarge naming it", err)
			}
			assertHeadTrees(t, src, base.Revision)
			if again := fetch(t, src); again.Revision != base.Revision || again.Dir != base.Dir {
				t.Errorf("branch after refused heads = %+v", again)
			}
		})
	}
}

func TestFetchRefKeepsBranchSnapshots(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	var heads []string
	for i := range keepHeadSnapshots + 3 {
		heads = append(heads, r.head(t, fmt.Sprintf("refs/pull/%d/head", i+1), map[string]string{"n.cue": fmt.Sprintf("n: %d\n", i)}, "pr"))
	}
	src := open(t, r.file, Options{})
	base := fetch(t, src)
	// A head at the branch's own commit shares its tree.
	if same := fetchRef(t, src, "refs/pull/100/head", base.Revision); same.Dir != base.Dir || fetches(src) != 1 {
		t.Fatalf("head at the branch's commit: %+v, %d fetches", same, fetches(src))
	}
	var dirs []string
	for i, sha := range heads {
		dirs = append(dirs, fetchRef(t, src, fmt.Sprintf("refs/pull/%d/head", i+1), sha).Dir)
	}
	if _, err := os.Stat(base.Dir); err != nil {
		t.Fatalf("the branch's snapshot was evicted by heads: %v", err)
	}
	for i, d := range dirs {
		_, err := os.Stat(d)
		if kept := i >= len(dirs)-keepHeadSnapshots; kept != (err == nil) {
			t.Errorf("head %d: kept %v, stat %v", i, kept, err)
		}
	}
	if again := fetch(t, src); again.Revision != base.Revision || again.Dir != base.Dir {
		t.Errorf("branch after %d heads = %+v", len(heads), again)
	}

	// The branch moving on does not evict the heads, nor the heads the branch's recent trees.
	for i := range keepSnapshots + 1 {
		writeFiles(t, r.origin, map[string]string{"a.cue": fmt.Sprintf("a: %d\n", 10+i)})
		commitAll(t, r.origin, "bump")
		gitCmd(t, r.origin, "push", "-q", "served", "main")
		fetch(t, src)
	}
	for _, d := range dirs[len(dirs)-keepHeadSnapshots:] {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("a head was evicted by the branch: %v", err)
		}
	}
	entries, _ := os.ReadDir(src.(*gitSource).store.dir)
	if len(entries) != keepSnapshots+keepHeadSnapshots {
		t.Errorf("%d trees, want %d", len(entries), keepSnapshots+keepHeadSnapshots)
	}
}

func TestFetchRefConcurrentWithFetch(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	var heads []string
	for i := range 4 {
		heads = append(heads, r.head(t, fmt.Sprintf("refs/pull/%d/head", i+1), map[string]string{"n.cue": fmt.Sprintf("n: %d\n", i)}, "pr"))
	}
	src := open(t, r.http, Options{})
	base := fetch(t, src)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 3 {
				snap, err := src.Fetch(context.Background())
				if err != nil {
					errs <- err
				} else if snap.Revision != base.Revision || snap.Dir != base.Dir {
					errs <- fmt.Errorf("branch = %+v, want %+v", snap, base)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 3 {
				k := (g + i) % len(heads)
				snap, err := src.(RefFetcher).FetchRef(context.Background(), fmt.Sprintf("refs/pull/%d/head", k+1), heads[k])
				if err != nil {
					errs <- err
					continue
				}
				b, err := os.ReadFile(filepath.Join(snap.Dir, "n.cue"))
				if err != nil || string(b) != fmt.Sprintf("n: %d\n", k) {
					errs <- fmt.Errorf("head %d: %q, %v", k, b, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := fetches(src); n != 1+len(heads) {
		t.Errorf("%d fetches, want %d: each head once", n, 1+len(heads))
	}
}

func TestFetchRefUnverifiedClosedAndDirectory(t *testing.T) {
	hermetic(t)
	r := newPRRepo(t)
	sha := r.head(t, "refs/pull/1/head", map[string]string{"a.cue": "a: 2\n"}, "pr")
	// A head is untrusted by design: the source's signature policy applies to the branch only.
	pub, _ := testSSHKey(t, 1)
	src := open(t, r.file, Options{Verify: &VerifyPolicy{Mode: VerifyHead, SSHKeys: []string{pub}}})
	if _, err := src.Fetch(context.Background()); !errors.Is(err, ErrUnverified) {
		t.Fatalf("unsigned branch: %v, want ErrUnverified", err)
	}
	if snap := fetchRef(t, src, "refs/pull/1/head", sha); snap.Verified != nil || snap.Revision != sha {
		t.Errorf("unsigned head = %+v, want it handed out with Verified nil", snap)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.(RefFetcher).FetchRef(context.Background(), "refs/pull/1/head", sha); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if _, ok := open(t, t.TempDir(), Options{}).(RefFetcher); ok {
		t.Errorf("a directory source implements RefFetcher")
	}
}

var trackingShape = regexp.MustCompile(`^refs/berth/(pull|merge-requests)/[0-9]{1,10}$`)

func FuzzHeadTracking(f *testing.F) {
	for _, s := range []string{"refs/pull/1/head", "refs/merge-requests/4294967295/head", "refs/pull/1/head/../x",
		"refs/pull/1/head\n", "refs/pull/١/head", "0" + strings.Repeat("\xd8", 75), strings.Repeat("\x00", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		tr, err := headTracking(ref)
		if err != nil {
			if !errors.Is(err, ErrInvalidRef) || len(err.Error()) > 200 || !strings.Contains(err.Error(), `"`) {
				t.Fatalf("headTracking(%q): %v", ref, err)
			}
			return
		}
		if !trackingShape.MatchString(tr.String()) || tr.Validate() != nil || plumbing.ReferenceName(ref).Validate() != nil {
			t.Fatalf("headTracking(%q) = %q", ref, tr)
		}
	})
}
