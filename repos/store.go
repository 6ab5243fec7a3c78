package repos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// keepSnapshots is how many snapshot trees of the followed branch (or directory) a source keeps on disk; older
// ones are deleted.
const keepSnapshots = 4

// keepHeadSnapshots is how many snapshot trees of pull request heads (FetchRef) a Git source keeps besides
// keepSnapshots; the least recently fetched go first. A tree that is also one of the branch's is kept as long as
// either list holds it, so heads never evict the branch's snapshots.
const keepHeadSnapshots = 16

const tmpPrefix = ".tmp-"

// store holds a source's snapshot trees under <cache>/snapshots/<id>, written to a temporary directory first and
// renamed into place once complete and read-only, so a half-written tree never carries a final name.
type store struct {
	cache     string
	removeAll bool // cache is a temporary directory owned by the source
	dir       string
	order     []string // snapshot ids of the branch (or directory), least recently used first
	heads     []string // snapshot ids of pull request heads, least recently used first
}

func openStore(cacheDir string) (*store, error) {
	st := &store{cache: cacheDir}
	if cacheDir == "" {
		d, err := os.MkdirTemp("", "berth-repos-")
		if err != nil {
			return nil, fmt.Errorf("repos: cache dir: %w", err)
		}
		st.cache, st.removeAll = d, true
	}
	abs, err := filepath.Abs(st.cache)
	if err != nil {
		return nil, fmt.Errorf("repos: cache dir: %w", err)
	}
	st.cache = abs
	if err := os.MkdirAll(filepath.Join(st.cache, "snapshots"), 0o755); err != nil {
		return nil, fmt.Errorf("repos: cache dir: %w", err)
	}
	if st.cache, err = filepath.EvalSymlinks(st.cache); err != nil {
		return nil, fmt.Errorf("repos: cache dir: %w", err)
	}
	st.dir = filepath.Join(st.cache, "snapshots")
	// Adopt the trees of an earlier run (oldest first, so pruning removes them first); drop half-written ones.
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, fmt.Errorf("repos: cache dir: %w", err)
	}
	type aged struct {
		id  string
		mod int64
	}
	var old []aged
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := removeTree(filepath.Join(st.dir, e.Name())); err != nil {
				return nil, fmt.Errorf("repos: cache dir: %w", err)
			}
			continue
		}
		if info, err := e.Info(); err == nil && e.IsDir() {
			old = append(old, aged{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].mod < old[j].mod })
	for _, a := range old {
		st.order = append(st.order, a.id)
	}
	return st, nil
}

func (st *store) path(id string) string { return filepath.Join(st.dir, id) }

// exists reports whether a complete snapshot tree with this id is on disk.
func (st *store) exists(id string) bool {
	info, err := os.Stat(st.path(id))
	return err == nil && info.IsDir()
}

// create writes a snapshot tree with fill into a temporary directory, makes it read-only and renames it to id.
func (st *store) create(ctx context.Context, id string, fill func(ctx context.Context, dir string) error) (string, error) {
	tmp, err := os.MkdirTemp(st.dir, tmpPrefix)
	if err != nil {
		return "", err
	}
	if err := fill(ctx, tmp); err != nil {
		return "", errors.Join(err, removeTree(tmp))
	}
	if err := makeReadOnly(tmp); err != nil {
		return "", errors.Join(err, removeTree(tmp))
	}
	final := st.path(id)
	if err := os.Rename(tmp, final); err != nil {
		if st.exists(id) { // written meanwhile by an earlier run: same id, same contents
			return final, removeTree(tmp)
		}
		return "", errors.Join(err, removeTree(tmp))
	}
	return final, nil
}

// use marks id as the newest snapshot of the branch (or directory) and deletes the branch's trees beyond
// keepSnapshots, oldest first, unless a head still holds them.
func (st *store) use(id string) error {
	var errs []error
	st.order, errs = st.touch(st.order, st.heads, id, keepSnapshots)
	return errors.Join(errs...)
}

// useHead marks id as the newest snapshot of a pull request head and deletes the heads' trees beyond
// keepHeadSnapshots, oldest first, unless the branch still holds them.
func (st *store) useHead(id string) error {
	var errs []error
	st.heads, errs = st.touch(st.heads, st.order, id, keepHeadSnapshots)
	return errors.Join(errs...)
}

// touch moves id to the end of list, then drops the oldest entries beyond keep, deleting their trees when other
// does not hold them.
func (st *store) touch(list, other []string, id string, keep int) ([]string, []error) {
	for i, o := range list {
		if o == id {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	list = append(list, id)
	var errs []error
	for len(list) > keep {
		if !slices.Contains(other, list[0]) {
			errs = append(errs, removeTree(st.path(list[0])))
		}
		list = list[1:]
	}
	return list, errs
}

func (st *store) close() error {
	if !st.removeAll {
		return nil
	}
	return removeTree(st.cache)
}

// makeReadOnly sets every directory under root to 0555; files were given 0444 or 0555 when written.
func makeReadOnly(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o555)
		}
		return nil
	})
}

// removeTree deletes a tree that may contain read-only directories.
func removeTree(root string) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o700)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(root)
}
