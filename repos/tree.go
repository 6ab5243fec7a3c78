package repos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrFileTooLarge is returned (wrapped, naming the file) when a snapshot would hold a file larger than
// Options.MaxFileSize.
var ErrFileTooLarge = errors.New("file too large")

const (
	// maxLinkHops bounds how many symlinks one path resolution follows (the same bound as Linux's ELOOP).
	maxLinkHops = 40
	// maxEntries bounds the entries one snapshot may hold after symlinks to directories are expanded.
	maxEntries = 200_000
	// maxLinkTarget bounds the length of a symlink target read from Git.
	maxLinkTarget = 4096
)

type nodeKind int

const (
	kindFile nodeKind = iota
	kindDir
	kindLink
)

// node is one entry of a source tree, read from a directory or a Git commit, before it is written as a snapshot.
type node struct {
	kind   nodeKind
	exec   bool
	size   int64
	target string                        // symlink target, kindLink only
	open   func() (io.ReadCloser, error) // contents, kindFile only
	kids   map[string]*node              // kindDir only
}

func newDir() *node { return &node{kind: kindDir, kids: map[string]*node{}} }

// tree is the metadata of a whole source tree; label names the snapshot in errors ("snapshot 1a2b3c4d5e6f").
type tree struct {
	root    *node
	label   string
	maxSize int64
}

func (t *tree) errorf(format string, args ...any) error {
	return fmt.Errorf("repos: "+t.label+": "+format, args...)
}

// validName refuses entry names that could step outside their directory.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

// add inserts n at the slash-separated path p, creating parent directories.
func (t *tree) add(p string, n *node) error {
	parts := strings.Split(p, "/")
	dir := t.root
	for i, part := range parts {
		if !validName(part) {
			return t.errorf("path %q: %w", p, ErrUnsafePath)
		}
		if i == len(parts)-1 {
			if old, ok := dir.kids[part]; ok && old.kind == kindDir && n.kind == kindDir {
				return nil
			}
			dir.kids[part] = n
			return nil
		}
		next, ok := dir.kids[part]
		if !ok {
			next = newDir()
			dir.kids[part] = next
		}
		if next.kind != kindDir {
			return t.errorf("path %q: parent %q is not a directory", p, strings.Join(parts[:i+1], "/"))
		}
		dir = next
	}
	return nil
}

func (t *tree) lookup(parts []string) *node {
	n := t.root
	for _, p := range parts {
		if n.kind != kindDir {
			return nil
		}
		if n = n.kids[p]; n == nil {
			return nil
		}
	}
	return n
}

func splitPath(p string) []string {
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, "/")
}

// resolve follows the symlink at linkPath (slash-separated, relative to the root) component by component, the way
// the kernel would, and returns the path and node of the final non-link target. A target that is absolute or that
// climbs above the root is refused with ErrUnsafePath.
func (t *tree) resolve(linkPath, target string) (string, *node, error) {
	unsafe := func() error {
		return t.errorf("link %q -> %q: %w", linkPath, target, ErrUnsafePath)
	}
	stack := splitPath(path.Dir(linkPath))
	pending := []string{}
	hops := 0
	push := func(tgt string) error {
		if tgt == "" {
			return t.errorf("link %q has an empty target", linkPath)
		}
		if strings.HasPrefix(tgt, "/") || filepath.IsAbs(tgt) {
			return unsafe()
		}
		pending = append(strings.Split(tgt, "/"), pending...)
		return nil
	}
	if err := push(target); err != nil {
		return "", nil, err
	}
	cur := t.lookup(stack)
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", nil, unsafe()
			}
			stack = stack[:len(stack)-1]
			cur = t.lookup(stack)
			continue
		}
		if cur == nil || cur.kind != kindDir {
			return "", nil, t.errorf("link %q -> %q: %q is not a directory", linkPath, target, strings.Join(stack, "/"))
		}
		child := cur.kids[c]
		if child == nil {
			return "", nil, t.errorf("link %q -> %q: target does not exist", linkPath, target)
		}
		if child.kind == kindLink {
			if hops++; hops > maxLinkHops {
				return "", nil, t.errorf("link %q -> %q: too many levels of symbolic links", linkPath, target)
			}
			if err := push(child.target); err != nil {
				return "", nil, err
			}
			continue
		}
		stack = append(stack, c)
		cur = child
	}
	return strings.Join(stack, "/"), cur, nil
}

// write materialises the tree under dst: regular files and directories as they are, symlinks as copies of what they
// point to. It does not change permissions of directories; see makeReadOnly.
func (t *tree) write(ctx context.Context, dst string) error {
	w := &treeWriter{t: t, ctx: ctx}
	return w.dir("", t.root, dst, []string{""})
}

type treeWriter struct {
	t       *tree
	ctx     context.Context
	entries int
}

// dir writes the directory n, found at the real path rel, to dst. stack holds the real paths of the directories being
// written, so a symlink back to one of them is reported as a cycle instead of being expanded forever.
func (w *treeWriter) dir(rel string, n *node, dst string, stack []string) error {
	for _, name := range sortedNames(n) {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if w.entries++; w.entries > maxEntries {
			return w.t.errorf("more than %d entries", maxEntries)
		}
		child, p, out := n.kids[name], path.Join(rel, name), filepath.Join(dst, name)
		if child.kind == kindLink {
			real, target, err := w.t.resolve(p, child.target)
			if err != nil {
				return err
			}
			if target.kind == kindDir {
				for _, s := range stack {
					if s == real {
						return w.t.errorf("link %q -> %q: forms a cycle", p, child.target)
					}
				}
				if err := os.Mkdir(out, 0o755); err != nil {
					return err
				}
				if err := w.dir(real, target, out, append(stack, real)); err != nil {
					return err
				}
				continue
			}
			if err := w.file(real, target, out); err != nil {
				return err
			}
			continue
		}
		switch child.kind {
		case kindDir:
			if err := os.Mkdir(out, 0o755); err != nil {
				return err
			}
			if err := w.dir(p, child, out, append(stack, p)); err != nil {
				return err
			}
		case kindFile:
			if err := w.file(p, child, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *treeWriter) file(rel string, n *node, out string) (err error) {
	if n.size > w.t.maxSize {
		return w.t.errorf("file %q is %d bytes, over the limit of %d bytes: %w", rel, n.size, w.t.maxSize, ErrFileTooLarge)
	}
	r, err := n.open()
	if err != nil {
		return w.t.errorf("read %q: %w", rel, err)
	}
	defer r.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// Read at most one byte past the limit, so a file that grew after it was listed is still refused.
	written, err := io.Copy(f, io.LimitReader(r, w.t.maxSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return w.t.errorf("copy %q: %w", rel, err)
	}
	if written > w.t.maxSize {
		return w.t.errorf("file %q is over the limit of %d bytes: %w", rel, w.t.maxSize, ErrFileTooLarge)
	}
	mode := os.FileMode(0o444)
	if n.exec {
		mode = 0o555
	}
	return os.Chmod(out, mode)
}

func sortedNames(n *node) []string {
	names := make([]string, 0, len(n.kids))
	for name := range n.kids {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
