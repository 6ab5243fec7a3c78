package repos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

const (
	remoteName = "origin"
	// maxTreeDepth bounds directory nesting in a commit, against hostile trees.
	maxTreeDepth = 256
	// minSecret is the shortest credential scrubbed from error texts; shorter ones would mangle the message.
	minSecret = 4
)

// gitSource follows one branch of a Git remote through a bare repository under the cache directory.
type gitSource struct {
	url     string // as given, possibly with credentials
	display string // url without credentials
	secrets []string
	opts    Options
	log     *slog.Logger

	gate    gate
	store   *store
	repo    *git.Repository
	last    *Snapshot // guarded by gate
	fetches int       // network fetches done, guarded by gate; read by tests
	changes signal
	once    sync.Once
	closed  bool // guarded by gate
}

func openGit(ctx context.Context, location string, opts Options) (*gitSource, error) {
	display, secrets := redactURL(location)
	if _, err := transport.NewEndpoint(location); err != nil {
		return nil, fmt.Errorf("repos: git source %s: %w", display, redact(err, secrets))
	}
	if err := plumbing.NewBranchReferenceName(opts.Branch).Validate(); err != nil || strings.HasPrefix(opts.Branch, "-") {
		return nil, fmt.Errorf("repos: git source %s: invalid branch name %q", display, opts.Branch)
	}
	st, err := openStore(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	s := &gitSource{
		url: location, display: display, secrets: secrets, opts: opts, store: st, gate: newGate(),
		changes: newSignal(), log: opts.Logger.With("source", display),
	}
	if s.repo, err = openBare(filepath.Join(st.cache, "git"), location); err != nil {
		return nil, errors.Join(fmt.Errorf("repos: git source %s: cache: %w", display, redact(err, secrets)), st.close())
	}
	s.log.DebugContext(ctx, "repos: git source opened", "branch", opts.Branch)
	return s, nil
}

// openBare opens or creates the bare repository holding fetched objects, with "origin" pointing at url.
func openBare(dir, rawURL string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, err
	}
	if r, err := repo.Remote(remoteName); err == nil {
		if urls := r.Config().URLs; len(urls) == 1 && urls[0] == rawURL {
			return repo, nil
		}
		if err := repo.DeleteRemote(remoteName); err != nil {
			return nil, err
		}
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{rawURL}})
	return repo, err
}

func (s *gitSource) String() string           { return s.display }
func (s *gitSource) Changes() <-chan struct{} { return s.changes }
func (s *gitSource) Notify()                  { s.changes.fire() }

func (s *gitSource) auth() transport.AuthMethod {
	if s.opts.Auth == nil {
		return nil
	}
	return s.opts.Auth
}

func (s *gitSource) Fetch(ctx context.Context) (*Snapshot, error) {
	if err := s.gate.lock(ctx); err != nil {
		return nil, err
	}
	defer s.gate.unlock()
	if s.closed {
		return nil, ErrClosed
	}

	branch := plumbing.NewBranchReferenceName(s.opts.Branch)
	hash, err := s.lsRemote(ctx, branch)
	if err != nil {
		return nil, err
	}
	if s.last != nil && s.last.Revision == hash.String() {
		snap := *s.last
		return &snap, nil
	}
	tracking := plumbing.NewRemoteReferenceName(remoteName, s.opts.Branch)
	if _, err := s.repo.CommitObject(hash); err == nil {
		// Already here (a force-push back to a commit we had, or an earlier run): no fetch needed.
		if err := s.repo.Storer.SetReference(plumbing.NewHashReference(tracking, hash)); err != nil {
			return nil, fmt.Errorf("repos: %s: %w", s.display, err)
		}
	} else if hash, err = s.fetch(ctx, branch, tracking); err != nil {
		return nil, err
	}
	commit, err := s.repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("repos: %s: commit %s: %w", s.display, hash, err)
	}
	id := hash.String()
	dir := s.store.path(id)
	if !s.store.exists(id) {
		t, err := s.readTree(ctx, commit)
		if err != nil {
			return nil, err
		}
		if dir, err = s.store.create(ctx, id, t.write); err != nil {
			return nil, err
		}
	}
	if err := s.store.use(id); err != nil {
		s.log.WarnContext(ctx, "repos: pruning old snapshots", "error", err)
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(commit.Message), "\n")
	s.last = &Snapshot{
		Revision: id, Branch: s.opts.Branch, Dir: dir, Time: commit.Committer.When, Message: strings.TrimSpace(subject),
	}
	s.log.InfoContext(ctx, "repos: new snapshot", "revision", id, "branch", s.opts.Branch)
	snap := *s.last
	return &snap, nil
}

// lsRemote lists the remote's refs and returns the hash of branch.
func (s *gitSource) lsRemote(ctx context.Context, branch plumbing.ReferenceName) (plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	remote, err := s.repo.Remote(remoteName)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("repos: %s: %w", s.display, err)
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth(), PeelingOption: git.IgnorePeeled})
	if err != nil {
		return plumbing.ZeroHash, s.netErr(ctx, "list refs", err)
	}
	for _, r := range refs {
		if r.Name() == branch && r.Type() == plumbing.HashReference {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("repos: %s: branch %q: %w", s.display, s.opts.Branch, ErrBranchNotFound)
}

// fetch brings in only the watched branch, without tags, and returns where it points now.
func (s *gitSource) fetch(ctx context.Context, branch, tracking plumbing.ReferenceName) (plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	s.fetches++
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", branch, tracking))
	err := s.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName, RefSpecs: []config.RefSpec{spec}, Tags: git.NoTags, Force: true, Auth: s.auth(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if errors.Is(err, git.NoMatchingRefSpecError{}) {
			return plumbing.ZeroHash, fmt.Errorf("repos: %s: branch %q: %w", s.display, s.opts.Branch, ErrBranchNotFound)
		}
		return plumbing.ZeroHash, s.netErr(ctx, "fetch", err)
	}
	ref, err := s.repo.Reference(tracking, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("repos: %s: after fetch: %w", s.display, err)
	}
	return ref.Hash(), nil
}

// netErr wraps a transport error, keeping the context's error visible to errors.Is and credentials out of the text.
func (s *gitSource) netErr(ctx context.Context, op string, err error) error {
	err = redact(err, s.secrets)
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("repos: %s: %s: %w: %w", s.display, op, cerr, err)
	}
	return fmt.Errorf("repos: %s: %s: %w", s.display, op, err)
}

// readTree reads the metadata of a commit's tree; blobs are read when the snapshot is written.
func (s *gitSource) readTree(ctx context.Context, c *object.Commit) (*tree, error) {
	t := &tree{root: newDir(), label: "snapshot " + c.Hash.String()[:12], maxSize: s.opts.MaxFileSize}
	root, err := c.Tree()
	if err != nil {
		return nil, t.errorf("tree: %w", err)
	}
	var walk func(prefix string, tr *object.Tree, depth int) error
	walk = func(prefix string, tr *object.Tree, depth int) error {
		if depth > maxTreeDepth {
			return t.errorf("%q: directories nested deeper than %d", prefix, maxTreeDepth)
		}
		for _, e := range tr.Entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := path.Join(prefix, e.Name)
			if !validName(e.Name) || strings.EqualFold(e.Name, ".git") {
				return t.errorf("path %q: %w", p, ErrUnsafePath)
			}
			switch e.Mode {
			case filemode.Dir:
				sub, err := s.repo.TreeObject(e.Hash)
				if err != nil {
					return t.errorf("tree %q: %w", p, err)
				}
				if err := t.add(p, newDir()); err != nil {
					return err
				}
				if err := walk(p, sub, depth+1); err != nil {
					return err
				}
			case filemode.Regular, filemode.Deprecated, filemode.Executable:
				blob, err := s.repo.BlobObject(e.Hash)
				if err != nil {
					return t.errorf("file %q: %w", p, err)
				}
				h := e.Hash
				n := &node{kind: kindFile, size: blob.Size, exec: e.Mode == filemode.Executable,
					open: func() (io.ReadCloser, error) {
						b, err := s.repo.BlobObject(h)
						if err != nil {
							return nil, err
						}
						return b.Reader()
					}}
				if err := t.add(p, n); err != nil {
					return err
				}
			case filemode.Symlink:
				target, err := s.linkTarget(e.Hash)
				if err != nil {
					return t.errorf("link %q: %w", p, err)
				}
				if err := t.add(p, &node{kind: kindLink, target: target}); err != nil {
					return err
				}
			case filemode.Submodule:
				s.log.WarnContext(ctx, "repos: submodule left out of the snapshot", "path", p, "revision", c.Hash.String())
			default:
				return t.errorf("%q: unsupported file mode %s", p, e.Mode)
			}
		}
		return nil
	}
	if err := walk("", root, 0); err != nil {
		return nil, err
	}
	return t, nil
}

func (s *gitSource) linkTarget(h plumbing.Hash) (string, error) {
	blob, err := s.repo.BlobObject(h)
	if err != nil {
		return "", err
	}
	if blob.Size > maxLinkTarget {
		return "", fmt.Errorf("target longer than %d bytes", maxLinkTarget)
	}
	r, err := blob.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

func (s *gitSource) Close() error {
	var err error
	s.once.Do(func() {
		_ = s.gate.lock(context.Background()) // let a running Fetch finish before deleting its cache
		defer s.gate.unlock()
		s.closed = true
		err = s.store.close()
	})
	return err
}

// redactURL returns location without credentials, and the secrets to scrub from error texts. For HTTP the whole
// user part goes (tokens are often passed as the user name); for SSH only a password does.
func redactURL(location string) (string, []string) {
	u, err := url.Parse(location)
	if err != nil || u.User == nil || u.Scheme == "" {
		return location, nil
	}
	var secrets []string
	pw, hasPW := u.User.Password()
	if hasPW && len(pw) >= minSecret {
		secrets = append(secrets, pw)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if name := u.User.Username(); len(name) >= minSecret {
			secrets = append(secrets, name)
		}
		u.User = nil
	default:
		u.User = url.User(u.User.Username())
	}
	return u.String(), secrets
}

// redactedError hides secrets in an error's text while keeping its identity for errors.Is and errors.As.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "***")
		if esc := url.PathEscape(s); esc != s {
			msg = strings.ReplaceAll(msg, esc, "***")
		}
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	return &redactedError{err: err, secrets: secrets}
}

var _ Source = (*gitSource)(nil)
