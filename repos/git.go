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
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/berth-dev/berth/schema/redact"
)

const (
	remoteName = "origin"
	// maxTreeDepth bounds directory nesting in a commit, against hostile trees.
	maxTreeDepth = 256
)

// gitSource follows one branch of a Git remote through a bare repository under the cache directory.
type gitSource struct {
	display string // the location without credentials
	opts    Options
	log     *slog.Logger

	gate    gate
	store   *store
	repo    *git.Repository
	last    *Snapshot             // guarded by gate
	fetches int                   // network fetches done, guarded by gate; read by tests
	verify  *verifier             // nil when the source verifies no signatures
	authm   transport.AuthMethod  // from Options.Credentials, else Options.Auth
	http    *httpTransport        // this source's HTTP(S) client side; nil for other transports
	gitDir  string                // the bare repository
	local   bool                  // a file:// remote, served by a local git-upload-pack
	refs    []*plumbing.Reference // the remote's refs at the last listing, guarded by gate
	changes signal
	once    sync.Once
	closed  bool // guarded by gate
}

func openGit(ctx context.Context, location string, opts Options) (*gitSource, error) {
	display := redactURL(location)
	ep, err := transport.NewEndpoint(location)
	if err != nil {
		return nil, fmt.Errorf("repos: git source %s: %w", display, redact.Error(err))
	}
	if opts, err = transportDefaults(opts); err != nil {
		return nil, fmt.Errorf("repos: git source %s: %w", display, err)
	}
	if err := plumbing.NewBranchReferenceName(opts.Branch).Validate(); err != nil || strings.HasPrefix(opts.Branch, "-") {
		return nil, fmt.Errorf("repos: git source %s: invalid branch name %q", display, opts.Branch)
	}
	v, err := newVerifier(opts.Verify)
	if err != nil {
		return nil, fmt.Errorf("repos: git source %s: %w", display, err)
	}
	st, err := openStore(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	s := &gitSource{
		display: display, opts: opts, store: st, gate: newGate(),
		changes: newSignal(), log: opts.Logger.With("location", display), verify: v,
		gitDir: filepath.Join(st.cache, "git"),
	}
	authm, err := buildAuth(ep, opts.Credentials, st.cache)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("repos: git source %s: %w", display, redact.Error(err)), st.close())
	}
	if authm == nil && opts.Auth == nil && (ep.Protocol == "http" || ep.Protocol == "https") && ep.User != "" {
		// The URL's credentials, sent as go-git would send them; the URL on disk (the bare repository's remote)
		// is the one without them.
		authm = &githttp.BasicAuth{Username: ep.User, Password: ep.Password}
	}
	s.authm = authm
	s.local = ep.Protocol == "file"
	if ep.Protocol == "http" || ep.Protocol == "https" {
		h, err := newHTTPTransport(opts.CABundle, opts.ProxyURL)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("repos: git source %s: %w", display, err), st.close())
		}
		s.http = h
		installDispatcher()
	} else if len(opts.CABundle) > 0 || opts.ProxyURL != "" {
		return nil, errors.Join(fmt.Errorf("repos: git source %s: CABundle and ProxyURL apply to http(s) sources only", display), st.close())
	}
	if s.repo, err = openBare(s.gitDir, display); err != nil {
		return nil, errors.Join(fmt.Errorf("repos: git source %s: cache: %w", display, redact.Error(err)), st.close())
	}
	if err := removeTempPacks(s.gitDir); err != nil {
		s.log.WarnContext(ctx, "repos: removing half-written packs", "error", err)
	}
	s.log.DebugContext(ctx, "repos: git source opened", "branch", opts.Branch)
	return s, nil
}

// openBare opens or creates the bare repository holding fetched objects, with "origin" pointing at url (the
// location without a password: the cache never holds credentials).
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
	if s.authm != nil {
		return s.authm
	}
	if s.opts.Auth == nil {
		return nil
	}
	return s.opts.Auth
}

// transportDefaults fills in and checks the transport limits (Open's withDefaults predates them).
func transportDefaults(o Options) (Options, error) {
	switch {
	case o.MaxFetchSize < 0:
		return o, fmt.Errorf("options: MaxFetchSize %d is negative", o.MaxFetchSize)
	case o.MaxSnapshotSize < 0:
		return o, fmt.Errorf("options: MaxSnapshotSize %d is negative", o.MaxSnapshotSize)
	}
	if o.MaxFetchSize == 0 {
		o.MaxFetchSize = DefaultMaxFetchSize
	}
	if o.MaxSnapshotSize == 0 {
		o.MaxSnapshotSize = DefaultMaxSnapshotSize
	}
	return o, nil
}

// netContext bounds one network operation by Options.Timeout and gives it this source's HTTP settings and a fresh
// MaxFetchSize budget.
func (s *gitSource) netContext(ctx context.Context) (context.Context, *budget, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	b := newBudget(s.opts.MaxFetchSize)
	return withNetCall(ctx, &netCall{http: s.http, budget: b}), b, cancel
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
	tracking := plumbing.NewRemoteReferenceName(remoteName, s.opts.Branch)
	hash, tag, err := s.lsRemote(ctx, branch)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		branch = plumbing.NewTagReferenceName(tag)
		tracking = branch
	}
	if s.last != nil && s.last.Revision == hash.String() {
		snap := *s.last
		return &snap, nil
	}
	if _, err := s.repo.CommitObject(hash); err == nil {
		// Already here (a force-push back to a commit we had, or an earlier run): no fetch needed.
		if err := s.repo.Storer.SetReference(plumbing.NewHashReference(tracking, hash)); err != nil {
			return nil, fmt.Errorf("repos: %s: %w", s.display, err)
		}
	} else if hash, err = s.fetch(ctx, branch, tracking); err != nil {
		return nil, err
	} else if hash, err = s.peel(hash); err != nil {
		return nil, err
	}
	commit, err := s.repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("repos: %s: commit %s: %w", s.display, hash, err)
	}
	verified, err := s.verifyRevision(ctx, commit)
	if err != nil {
		return nil, err
	}
	id := hash.String()
	dir, err := s.materialise(ctx, commit)
	if err != nil {
		return nil, err
	}
	if err := s.store.use(id); err != nil {
		s.log.WarnContext(ctx, "repos: pruning old snapshots", "error", err)
	}
	s.last = &Snapshot{
		Revision: id, Branch: s.opts.Branch, Tag: tag, Dir: dir, Time: commit.Committer.When,
		Message: subject(commit), Verified: verified,
	}
	if tag != "" {
		s.last.Branch = ""
	}
	s.log.InfoContext(ctx, "repos: new snapshot", "revision", id, "branch", s.last.Branch, "tag", tag)
	snap := *s.last
	return &snap, nil
}

// materialise writes the tree of commit under the store, unless a complete one is there, and returns its directory.
// The caller marks it used.
func (s *gitSource) materialise(ctx context.Context, commit *object.Commit) (string, error) {
	id := commit.Hash.String()
	if s.store.exists(id) {
		return s.store.path(id), nil
	}
	t, err := s.readTree(ctx, commit)
	if err != nil {
		return "", err
	}
	return s.store.create(ctx, id, t.write)
}

// subject is a commit message's first line, trimmed.
func subject(c *object.Commit) string {
	line, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return strings.TrimSpace(line)
}

// lsRemote lists the remote's refs and returns the commit to deploy: branch's, or, with Options.Tag, the newest
// matching tag's (peeled to its commit) and that tag's name. Only the tags are kept for verification, and only in
// head-or-tag mode: a listing of many refs is not held between polls.
func (s *gitSource) lsRemote(ctx context.Context, branch plumbing.ReferenceName) (plumbing.Hash, string, error) {
	ctx, b, cancel := s.netContext(ctx)
	defer cancel()
	remote, err := s.repo.Remote(remoteName)
	if err != nil {
		return plumbing.ZeroHash, "", fmt.Errorf("repos: %s: %w", s.display, err)
	}
	peel := git.IgnorePeeled
	if s.verify != nil && s.verify.mode == VerifyHeadOrTag || s.opts.Tag != "" {
		peel = git.AppendPeeled // the tags' targets: to find the signed tags on the head, or a tag's commit
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth(), PeelingOption: peel})
	if err != nil {
		return plumbing.ZeroHash, "", s.netErr(ctx, "list refs", overBudget(err, b))
	}
	s.refs = nil
	if s.verify != nil && s.verify.mode == VerifyHeadOrTag {
		for _, r := range refs {
			if r.Name().IsTag() || strings.HasPrefix(r.Name().String(), "refs/tags/") {
				s.refs = append(s.refs, r)
			}
		}
	}
	if s.opts.Tag != "" {
		name, hash, ok := newestTag(refs, s.opts.Tag)
		if !ok {
			return plumbing.ZeroHash, "", fmt.Errorf("repos: %s: no tag matches %q: %w", s.display, s.opts.Tag, ErrBranchNotFound)
		}
		return hash, name, nil
	}
	for _, r := range refs {
		if r.Name() == branch && r.Type() == plumbing.HashReference {
			return r.Hash(), "", nil
		}
	}
	return plumbing.ZeroHash, "", fmt.Errorf("repos: %s: branch %q: %w", s.display, s.opts.Branch, ErrBranchNotFound)
}

// peel turns a fetched tag object's hash into its commit's (a commit's hash is returned as it is).
func (s *gitSource) peel(h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 { // tags of tags, bounded
		t, err := s.repo.TagObject(h)
		if err != nil {
			return h, nil // not a tag object: a commit
		}
		h = t.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("repos: %s: tag chain too long at %s", s.display, h)
}

// fetch fetches the remote's ref from into tracking (forced) and returns what tracking points to; a ref the remote
// does not have is ErrBranchNotFound.
func (s *gitSource) fetch(ctx context.Context, from, tracking plumbing.ReferenceName) (plumbing.Hash, error) {
	return s.fetchInto(ctx, from, tracking, fmt.Errorf("repos: %s: branch %q: %w", s.display, s.opts.Branch, ErrBranchNotFound))
}

// fetchInto is fetch with notFound as the error when the remote has no ref from.
func (s *gitSource) fetchInto(ctx context.Context, from, tracking plumbing.ReferenceName, notFound error) (plumbing.Hash, error) {
	ctx, b, cancel := s.netContext(ctx)
	defer cancel()
	s.fetches++
	fs, ok := s.repo.Storer.(*filesystem.Storage)
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("repos: %s: cache storage is %T, not a filesystem", s.display, s.repo.Storer)
	}
	// The pack goes through a writer capped at MaxFetchSize: the cap for transports other than HTTP(S), whose
	// bodies are counted as they arrive.
	capped, err := git.Open(&cappedStorage{Storage: fs, budget: newBudget(s.opts.MaxFetchSize), drain: s.local}, nil)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("repos: %s: %w", s.display, err)
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", from, tracking))
	err = capped.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName, RefSpecs: []config.RefSpec{spec}, Tags: git.NoTags, Force: true, Auth: s.auth(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if cerr := removeTempPacks(s.gitDir); cerr != nil {
			s.log.WarnContext(ctx, "repos: removing half-written packs", "error", cerr)
		}
		if errors.Is(err, git.NoMatchingRefSpecError{}) {
			return plumbing.ZeroHash, notFound
		}
		return plumbing.ZeroHash, s.netErr(ctx, "fetch", overBudget(err, b, capped.Storer.(*cappedStorage).budget))
	}
	ref, err := s.repo.Reference(tracking, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("repos: %s: after fetch: %w", s.display, err)
	}
	return ref.Hash(), nil
}

// netErr wraps a transport error, keeping the context's error visible to errors.Is, credentials out of the text, and
// what the server said (an HTTP error page, an ERR line, an SSH server's stderr) cut to maxTransportError bytes of
// printable text.
func (s *gitSource) netErr(ctx context.Context, op string, err error) error {
	err = quoted(err)
	if errors.Is(err, ErrFetchTooLarge) {
		return fmt.Errorf("repos: %s: %s: %w", s.display, op, err)
	}
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
	var total int64 // bytes of all files, against MaxSnapshotSize
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
				if total += blob.Size; total > s.opts.MaxSnapshotSize {
					return t.errorf("files add up to more than the limit of %d bytes (Options.MaxSnapshotSize) at %q: %w",
						s.opts.MaxSnapshotSize, p, ErrSnapshotTooLarge)
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
		if s.http != nil {
			s.http.close()
		}
		err = s.store.close()
	})
	return err
}

// redactURL returns location without credentials. For HTTP the whole user part goes (tokens are often passed as
// the user name); for SSH only a password does. A location that does not parse as a URL loses whatever sits between
// "://" and the last "@" before the path, so that a typo in a URL does not print its password.
func redactURL(location string) string {
	u, err := url.Parse(location)
	if err != nil {
		if _, info, ok := urlUserinfo(location); ok {
			return strings.Replace(location, info+"@", "", 1)
		}
		return location
	}
	if u.User == nil || u.Scheme == "" {
		return location
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		u.User = nil
	default:
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// urlUserinfo finds the userinfo of a URL-like location without parsing it as a URL: the text between "://" and
// the last "@" before the next "/". It returns the scheme too.
func urlUserinfo(location string) (scheme, info string, ok bool) {
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		return "", "", false
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at <= 0 {
		return "", "", false
	}
	return scheme, rest[:at], true
}

var _ Source = (*gitSource)(nil)
