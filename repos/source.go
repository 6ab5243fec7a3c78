package repos

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Snapshot is one immutable revision of a source: a read-only file tree that never changes while it is handed out.
type Snapshot struct {
	// Revision is the commit SHA for Git, "sha256:<hex>" of the contents for a plain directory.
	Revision string `json:"revision"`
	// Branch is the branch it was taken from ("" for a plain directory).
	Branch string `json:"branch,omitempty"`
	// Dir is the root of the read-only tree. Callers must not write to it.
	Dir string `json:"-"`
	// Time is the commit time for Git, the time the tree was read for a directory.
	Time time.Time `json:"time"`
	// Message is the commit subject line ("" for a directory).
	Message string `json:"message,omitempty"`
}

// Source turns a location into snapshots.
type Source interface {
	// Fetch returns the newest snapshot. It is cheap when nothing moved: a Git source lists the remote's refs and
	// fetches only when the watched branch moved; a directory source re-hashes the tree. Calling it again with no
	// change returns a snapshot with the same Revision and Dir.
	Fetch(ctx context.Context) (*Snapshot, error)
	// Changes fires (never blocking the sender, coalesced) when the source may have changed: debounced file events for
	// a directory. Git sources return a channel that only fires on Notify. Callers still poll.
	Changes() <-chan struct{}
	// Notify asks the source to look sooner (a webhook arrived); it makes Changes fire.
	Notify()
	// String names the source for logs and status, with any credentials removed.
	String() string
	Close() error
}

// Options configure Open.
type Options struct {
	// Branch to follow for Git sources; DefaultBranch when empty.
	Branch string
	// CacheDir holds clones and snapshot trees; a temporary directory when empty (removed by Close).
	CacheDir string
	// Debounce is how long a directory must be quiet after a file event before Changes fires; DefaultDebounce when 0.
	Debounce time.Duration
	// Timeout bounds each network operation; DefaultTimeout when 0.
	Timeout time.Duration
	// MaxFileSize refuses snapshots holding a larger file; DefaultMaxFileSize when 0.
	MaxFileSize int64
	Logger      *slog.Logger
	// Auth authenticates Git network operations beyond credentials in the URL; nil for none. Any go-git
	// transport.AuthMethod (e.g. ssh.PublicKeys, http.BasicAuth) fits.
	Auth AuthMethod
}

// AuthMethod has the shape of go-git's transport.AuthMethod, so the contract does not import go-git.
type AuthMethod interface {
	Name() string
	String() string
}

const (
	DefaultBranch      = "main"
	DefaultDebounce    = 200 * time.Millisecond
	DefaultTimeout     = 60 * time.Second
	DefaultMaxFileSize = 4 << 20
)

// ErrUnsafePath is returned (wrapped, naming the path) for a symlink pointing outside the repository or a path that
// escapes it.
var ErrUnsafePath = errors.New("path escapes the repository")

// ErrBranchNotFound is returned (wrapped) when the watched branch does not exist on the remote.
var ErrBranchNotFound = errors.New("branch not found")
