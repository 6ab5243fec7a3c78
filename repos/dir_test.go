package repos

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDirHashStableAndChangeDetection(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.cue": "a: 1\n", "sub/b.cue": "b: 2\n", ".git/HEAD": "ref: x\n"})
	src := open(t, root, Options{})

	first := fetch(t, src)
	if !strings.HasPrefix(first.Revision, "sha256:") || len(first.Revision) != len("sha256:")+64 {
		t.Fatalf("Revision = %q, want sha256:<64 hex>", first.Revision)
	}
	if first.Branch != "" || first.Message != "" {
		t.Errorf("directory snapshot has Branch %q Message %q, want empty", first.Branch, first.Message)
	}
	if again := fetch(t, src); again.Revision != first.Revision || again.Dir != first.Dir {
		t.Fatalf("unchanged tree: got %s %s, want %s %s", again.Revision, again.Dir, first.Revision, first.Dir)
	}
	if _, err := os.Stat(filepath.Join(first.Dir, ".git")); !os.IsNotExist(err) {
		t.Errorf(".git copied into the snapshot (stat err %v)", err)
	}

	// .git is ignored by the hash.
	writeFiles(t, root, map[string]string{".git/HEAD": "ref: y\n"})
	if got := fetch(t, src); got.Revision != first.Revision {
		t.Errorf("a change under .git changed the revision")
	}

	writeFiles(t, root, map[string]string{"sub/b.cue": "b: 3\n"})
	changed := fetch(t, src)
	if changed.Revision == first.Revision || changed.Dir == first.Dir {
		t.Fatalf("content change not detected: %s", changed.Revision)
	}
	if got := readFile(t, changed.Dir, "sub/b.cue"); got != "b: 3\n" {
		t.Errorf("snapshot content = %q", got)
	}

	if err := os.Chmod(filepath.Join(root, "a.cue"), 0o755); err != nil {
		t.Fatal(err)
	}
	exec := fetch(t, src)
	if exec.Revision == changed.Revision {
		t.Errorf("executable bit change not detected")
	}
	if err := os.Chmod(filepath.Join(root, "a.cue"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Back to the first contents: the first revision again, and the same tree is reused.
	writeFiles(t, root, map[string]string{"sub/b.cue": "b: 2\n"})
	if back := fetch(t, src); back.Revision != first.Revision || back.Dir != first.Dir {
		t.Errorf("reverted tree: got %s %s, want %s %s", back.Revision, back.Dir, first.Revision, first.Dir)
	}

	// A second source over the same contents computes the same revision.
	other := open(t, root, Options{})
	if got := fetch(t, other); got.Revision != first.Revision {
		t.Errorf("second source revision %s, want %s", got.Revision, first.Revision)
	}
}

func TestDirSnapshotReadOnlyAndCleanup(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.cue": "a: 1\n", "sub/deep/b.cue": "b: 2\n"})
	src, err := Open(context.Background(), root, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	snap := fetch(t, src)
	err = filepath.WalkDir(snap.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o444)
		if d.IsDir() {
			want = 0o555
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // root ignores permission bits
		if err := os.WriteFile(filepath.Join(snap.Dir, "a.cue"), []byte("x"), 0o644); err == nil {
			t.Errorf("wrote into a read-only snapshot")
		}
		if err := os.WriteFile(filepath.Join(snap.Dir, "new.cue"), []byte("x"), 0o644); err == nil {
			t.Errorf("created a file in a read-only snapshot")
		}
	}
	cache := filepath.Dir(filepath.Dir(snap.Dir))
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := src.Fetch(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Fetch after Close: %v, want ErrClosed", err)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("temporary cache %s left after Close (stat err %v)", cache, err)
	}
}

func TestDirChangesAfterEdit(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.cue": "a: 1\n"})
	src := open(t, root, Options{Debounce: 10_000_000}) // 10ms
	fetch(t, src)

	writeFiles(t, root, map[string]string{"a.cue": "a: 2\n"})
	waitSignal(t, src.Changes(), "edit of a.cue")

	// A directory created after Open is watched too: creating it fires, then a file written inside it fires again.
	if err := os.Mkdir(filepath.Join(root, "newdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, src.Changes(), "mkdir newdir")
	writeFiles(t, root, map[string]string{"newdir/c.cue": "c: 1\n"})
	waitSignal(t, src.Changes(), "write in newdir")
	if got := readFile(t, fetch(t, src).Dir, "newdir/c.cue"); got != "c: 1\n" {
		t.Errorf("newdir/c.cue = %q", got)
	}
}

func TestNotifyCoalesces(t *testing.T) {
	hermetic(t)
	src := open(t, t.TempDir(), Options{})
	for range 5 {
		src.Notify() // must never block
	}
	waitSignal(t, src.Changes(), "Notify")
	select {
	case <-src.Changes():
		t.Fatalf("five Notify calls gave more than one signal")
	default:
	}
}

func TestDirUnsafeSymlinks(t *testing.T) {
	hermetic(t)
	for name, target := range map[string]string{
		"relative escape": "../../etc/passwd",
		"absolute":        "/etc/passwd",
		"through a dir":   "../conf/../../x",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{"conf/x.cue": "->" + target, "ok.cue": "a: 1\n"})
			src := open(t, root, Options{})
			_, err := src.Fetch(context.Background())
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("Fetch error = %v, want ErrUnsafePath", err)
			}
			if !strings.Contains(err.Error(), `link "conf/x.cue"`) || !strings.Contains(err.Error(), target) {
				t.Errorf("error %q does not name the link and its target", err)
			}
			assertNoSnapshots(t, src)
		})
	}
}

// assertNoSnapshots checks that a failed Fetch left nothing under snapshots/, not even a temporary tree.
func assertNoSnapshots(t *testing.T, src Source) {
	t.Helper()
	var st *store
	switch s := src.(type) {
	case *dirSource:
		st = s.store
	case *gitSource:
		st = s.store
	}
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind after a failed Fetch: %s", e.Name())
	}
}

func TestDirInternalSymlinksMaterialised(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"sub/b.cue":   "b: 1\n",
		"a.cue":       "->sub/b.cue",
		"chain.cue":   "->a.cue",
		"alias":       "->sub",
		"sub/up.cue":  "->../a.cue",
		"sub/dot.cue": "->./b.cue",
	})
	snap := fetch(t, open(t, root, Options{}))
	for _, name := range []string{"a.cue", "chain.cue", "alias/b.cue", "sub/up.cue", "alias/dot.cue"} {
		info, err := os.Lstat(filepath.Join(snap.Dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want a regular file copy", name, info.Mode())
		}
		if got := readFile(t, snap.Dir, name); got != "b: 1\n" {
			t.Errorf("%s = %q", name, got)
		}
	}
	if info, err := os.Lstat(filepath.Join(snap.Dir, "alias")); err != nil || !info.IsDir() {
		t.Errorf("alias: want a directory copy (err %v)", err)
	}
}

func TestDirSymlinkCycleAndDangling(t *testing.T) {
	hermetic(t)
	for name, files := range map[string]map[string]string{
		"cycle":    {"sub/loop": "->..", "sub/a.cue": "a: 1\n"},
		"loop":     {"x": "->y", "y": "->x"},
		"dangling": {"x.cue": "->missing.cue"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, files)
			_, err := open(t, root, Options{}).Fetch(context.Background())
			if err == nil {
				t.Fatalf("Fetch succeeded, want an error")
			}
			if errors.Is(err, ErrUnsafePath) {
				t.Errorf("error %v should not be ErrUnsafePath", err)
			}
		})
	}
}

func TestDirOversizedFile(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"small.cue": "0123456789", "big/blob.bin": "0123456789X"})
	src := open(t, root, Options{MaxFileSize: 10})
	_, err := src.Fetch(context.Background())
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("Fetch error = %v, want ErrFileTooLarge", err)
	}
	if !strings.Contains(err.Error(), `"big/blob.bin"`) {
		t.Errorf("error %q does not name the file", err)
	}
	assertNoSnapshots(t, src)
}

func TestDirKeepsNewestSnapshots(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	src := open(t, root, Options{})
	var dirs []string
	for i := range keepSnapshots + 3 {
		writeFiles(t, root, map[string]string{"n.cue": strings.Repeat("x", i)})
		dirs = append(dirs, fetch(t, src).Dir)
	}
	for i, d := range dirs {
		_, err := os.Stat(d)
		if kept := i >= len(dirs)-keepSnapshots; kept != (err == nil) {
			t.Errorf("snapshot %d: kept=%v but stat err %v", i, kept, err)
		}
	}
	entries, err := os.ReadDir(src.(*dirSource).store.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != keepSnapshots {
		t.Errorf("%d trees on disk, want %d", len(entries), keepSnapshots)
	}
}

func TestDirConcurrentFetch(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.cue": "a: 1\n"})
	src := open(t, root, Options{})
	var wg sync.WaitGroup
	revs := make([]string, 8)
	errs := make([]error, 8)
	for i := range revs {
		wg.Go(func() {
			snap, err := src.Fetch(context.Background())
			errs[i] = err
			if err == nil {
				revs[i] = snap.Revision
			}
		})
	}
	wg.Wait()
	for i := range revs {
		if errs[i] != nil || revs[i] != revs[0] {
			t.Errorf("fetch %d: %s, %v; want %s", i, revs[i], errs[i], revs[0])
		}
	}
}

func TestOpenErrors(t *testing.T) {
	hermetic(t)
	file := filepath.Join(t.TempDir(), "f")
	writeFiles(t, filepath.Dir(file), map[string]string{"f": "x"})
	for _, tc := range []struct {
		loc  string
		opts Options
	}{
		{"", Options{}},
		{filepath.Join(t.TempDir(), "missing"), Options{}},
		{file, Options{}},
		{t.TempDir(), Options{Timeout: -1}},
		{"file:///x", Options{Branch: "bad..name"}},
	} {
		if src, err := Open(context.Background(), tc.loc, tc.opts); err == nil {
			src.Close()
			t.Errorf("Open(%q, %+v) succeeded, want an error", tc.loc, tc.opts)
		}
	}
}

func TestDirCacheInsideTreeIsIgnored(t *testing.T) {
	hermetic(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.cue": "a: 1\n"})
	src := open(t, root, Options{CacheDir: filepath.Join(root, ".cache")})
	first := fetch(t, src)
	if again := fetch(t, src); again.Revision != first.Revision {
		t.Errorf("the cache inside the tree changed the revision: %s then %s", first.Revision, again.Revision)
	}
	if _, err := os.Stat(filepath.Join(first.Dir, ".cache")); !os.IsNotExist(err) {
		t.Errorf("the cache was copied into the snapshot (stat err %v)", err)
	}
}

func TestDirRootIsSymlink(t *testing.T) {
	hermetic(t)
	real := t.TempDir()
	writeFiles(t, real, map[string]string{"a.cue": "a: 1\n"})
	link := filepath.Join(t.TempDir(), "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, fetch(t, open(t, link, Options{})).Dir, "a.cue"); got != "a: 1\n" {
		t.Errorf("a.cue = %q", got)
	}
}
