package repos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// dirRetries is how often Fetch re-reads a directory that changed while it was being copied.
const dirRetries = 3

var errTreeChanged = errors.New("tree changed while it was copied")

// dirSource snapshots a local directory, named by the SHA-256 of its contents.
type dirSource struct {
	root string
	opts Options
	log  *slog.Logger

	gate    gate
	store   *store
	last    *Snapshot // guarded by gate
	changes signal

	watcher *fsnotify.Watcher
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closed  bool // guarded by gate
}

func openDir(ctx context.Context, location string, opts Options) (*dirSource, error) {
	// Resolve links in the root itself: the walk does not follow them.
	root, err := filepath.EvalSymlinks(location)
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		return nil, fmt.Errorf("repos: directory source: %w", err)
	}
	st, err := openStore(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	s := &dirSource{
		root: root, opts: opts, store: st, gate: newGate(), changes: newSignal(), done: make(chan struct{}),
		log: opts.Logger.With("location", root),
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		// Polling still works; only the early wake-up is lost.
		s.log.WarnContext(ctx, "repos: file watching unavailable, relying on polling", "error", err)
		return s, nil
	}
	s.watcher = w
	s.watchTree(ctx, root)
	s.wg.Add(1)
	go s.watch(context.WithoutCancel(ctx))
	return s, nil
}

func (s *dirSource) String() string           { return s.root }
func (s *dirSource) Changes() <-chan struct{} { return s.changes }
func (s *dirSource) Notify()                  { s.changes.fire() }

// skip reports whether an absolute path is left out of snapshots and watching: .git and the cache directory.
func (s *dirSource) skip(p string) bool {
	return filepath.Base(p) == ".git" || p == s.store.cache || strings.HasPrefix(p, s.store.cache+string(filepath.Separator))
}

func (s *dirSource) Fetch(ctx context.Context) (*Snapshot, error) {
	if err := s.gate.lock(ctx); err != nil {
		return nil, err
	}
	defer s.gate.unlock()
	if s.closed {
		return nil, ErrClosed
	}
	for attempt := 1; ; attempt++ {
		snap, err := s.fetchOnce(ctx)
		if errors.Is(err, errTreeChanged) && attempt < dirRetries {
			continue
		}
		return snap, err
	}
}

func (s *dirSource) fetchOnce(ctx context.Context) (*Snapshot, error) {
	t, err := s.scan(ctx)
	if err != nil {
		return nil, err
	}
	sum, err := s.hash(ctx, t)
	if err != nil {
		return nil, err
	}
	rev := "sha256:" + sum
	if s.last != nil && s.last.Revision == rev {
		snap := *s.last
		return &snap, nil
	}
	t.label = "snapshot " + rev[:len("sha256:")+12]
	dir := s.store.path(sum)
	if !s.store.exists(sum) {
		dir, err = s.store.create(ctx, sum, func(ctx context.Context, tmp string) error {
			if err := t.write(ctx, tmp); err != nil {
				return err
			}
			// The copy is only good if the directory did not change while it was read.
			again, err := s.scan(ctx)
			if err != nil {
				return err
			}
			if sum2, err := s.hash(ctx, again); err != nil {
				return err
			} else if sum2 != sum {
				return fmt.Errorf("repos: directory %s: %w", s.root, errTreeChanged)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := s.store.use(sum); err != nil {
		s.log.WarnContext(ctx, "repos: pruning old snapshots", "error", err)
	}
	s.last = &Snapshot{Revision: rev, Dir: dir, Time: time.Now()}
	s.log.InfoContext(ctx, "repos: new snapshot", "revision", rev)
	snap := *s.last
	return &snap, nil
}

// scan reads the directory's metadata into a tree; file contents are read later, when hashed or copied.
func (s *dirSource) scan(ctx context.Context) (*tree, error) {
	t := &tree{root: newDir(), label: "directory " + s.root, maxSize: s.opts.MaxFileSize}
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == s.root {
			return nil
		}
		if s.skip(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch typ := d.Type(); {
		case typ.IsDir():
			return t.add(rel, newDir())
		case typ&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return t.add(rel, &node{kind: kindLink, target: filepath.ToSlash(target)})
		case typ.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return t.add(rel, &node{
				kind: kindFile, size: info.Size(), exec: info.Mode()&0o111 != 0,
				open: func() (io.ReadCloser, error) { return os.Open(p) },
			})
		default: // sockets, fifos, devices: never configuration
			return nil
		}
	})
	if err != nil {
		return nil, fmt.Errorf("repos: directory %s: %w", s.root, err)
	}
	return t, nil
}

// hash digests the tree: sorted relative paths, entry kinds, the executable bit, link targets and file contents.
func (s *dirSource) hash(ctx context.Context, t *tree) (string, error) {
	h := sha256.New()
	var walk func(rel string, n *node) error
	walk = func(rel string, n *node) error {
		for _, name := range sortedNames(n) {
			if err := ctx.Err(); err != nil {
				return err
			}
			child, p := n.kids[name], strings.TrimPrefix(rel+"/"+name, "/")
			switch child.kind {
			case kindDir:
				fmt.Fprintf(h, "d %q\n", p)
				if err := walk(p, child); err != nil {
					return err
				}
			case kindLink:
				fmt.Fprintf(h, "l %q %q\n", p, child.target)
			case kindFile:
				if child.size > t.maxSize {
					return t.errorf("file %q is %d bytes, over the limit of %d bytes: %w", p, child.size, t.maxSize, ErrFileTooLarge)
				}
				sum, err := fileSum(child, t.maxSize)
				if err != nil {
					return t.errorf("read %q: %w", p, err)
				}
				fmt.Fprintf(h, "f %q %t %s\n", p, child.exec, sum)
			}
		}
		return nil
	}
	if err := walk("", t.root); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fileSum(n *node, limit int64) (string, error) {
	r, err := n.open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	c, err := io.Copy(h, io.LimitReader(r, limit+1))
	if err != nil {
		return "", err
	}
	if c > limit {
		return "", fmt.Errorf("over the limit of %d bytes: %w", limit, ErrFileTooLarge)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// watchTree adds a watch on dir and every directory below it.
func (s *dirSource) watchTree(ctx context.Context, dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != s.root && s.skip(p) {
			return filepath.SkipDir
		}
		if err := s.watcher.Add(p); err != nil {
			s.log.WarnContext(ctx, "repos: cannot watch directory", "path", p, "error", err)
		}
		return nil
	})
}

// watch turns file events into one Changes signal per quiet period of opts.Debounce.
func (s *dirSource) watch(ctx context.Context) {
	defer s.wg.Done()
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-s.done:
			return
		case ev, ok := <-s.watcher.Events:
			if !ok {
				return
			}
			if s.skip(ev.Name) || strings.Contains(ev.Name, string(filepath.Separator)+".git"+string(filepath.Separator)) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
					s.watchTree(ctx, ev.Name) // new subdirectory: watch it and whatever was already created in it
				}
			}
			if timer == nil {
				timer = time.NewTimer(s.opts.Debounce)
			} else {
				timer.Reset(s.opts.Debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			s.changes.fire()
		case err, ok := <-s.watcher.Errors:
			if !ok {
				return
			}
			s.log.WarnContext(ctx, "repos: file watcher", "error", err)
			s.changes.fire() // events may have been lost (queue overflow): look again
		}
	}
}

func (s *dirSource) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		if s.watcher != nil {
			err = s.watcher.Close()
		}
		s.wg.Wait()
		// Wait for a running Fetch before deleting the trees it may be writing.
		_ = s.gate.lock(context.Background())
		defer s.gate.unlock()
		s.closed = true
		err = errors.Join(err, s.store.close())
	})
	return err
}

var _ Source = (*dirSource)(nil)
