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
	// Branch is the branch it was taken from ("" for a plain directory or a tag).
	Branch string `json:"branch,omitempty"`
	// Tag is the tag it was taken from, for a source following a tag pattern.
	Tag string `json:"tag,omitempty"`
	// Dir is the root of the read-only tree. Callers must not write to it.
	Dir string `json:"-"`
	// Time is the commit time for Git, the time the tree was read for a directory.
	Time time.Time `json:"time"`
	// Message is the commit subject line ("" for a directory).
	Message string `json:"message,omitempty"`
	// Verified says which trusted signature let the revision through; nil when the source verifies nothing.
	Verified *Verification `json:"verified,omitempty"`
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
	// Branch to follow for Git sources; DefaultBranch when empty and Tag is not set.
	Branch string
	// Tag, when set, follows the newest tag matching this pattern (path.Match syntax, e.g. "v*") instead of a
	// branch: newest by semantic version when the matching names are versions (an optional "v", then
	// MAJOR.MINOR.PATCH), else by name.
	Tag string
	// CacheDir holds clones and snapshot trees; a temporary directory when empty (removed by Close).
	CacheDir string
	// Debounce is how long a directory must be quiet after a file event before Changes fires; DefaultDebounce when 0.
	Debounce time.Duration
	// Timeout bounds each network operation; DefaultTimeout when 0.
	Timeout time.Duration
	// MaxFileSize refuses snapshots holding a larger file; DefaultMaxFileSize when 0.
	MaxFileSize int64
	// Logger receives the source's logs, each with location=<the location without credentials> (the caller's
	// logger may already name the source); slog.Default() when nil.
	Logger *slog.Logger
	// Auth authenticates Git network operations beyond credentials in the URL; nil for none. Any go-git
	// transport.AuthMethod (e.g. ssh.PublicKeys, http.BasicAuth) fits. Credentials, when set, is used instead.
	Auth AuthMethod
	// Credentials for the transport, already read from the files or environment variables the configuration names.
	Credentials *Credentials
	// CABundle is PEM certificates trusted for HTTPS besides the system's; nil for the system's only.
	CABundle []byte
	// ProxyURL is the HTTP(S) proxy for HTTP(S) sources ("" for none; the environment's proxy variables are not
	// read implicitly).
	ProxyURL string
	// MaxFetchSize refuses a fetch that transfers more bytes; DefaultMaxFetchSize when 0.
	MaxFetchSize int64
	// MaxSnapshotSize refuses a snapshot tree larger than this in total; DefaultMaxSnapshotSize when 0.
	MaxSnapshotSize int64
	// Verify is the commit signature policy; nil or Mode VerifyOff for none.
	Verify *VerifyPolicy
}

// Secret is a credential value. It prints, formats and marshals as "[redacted]", so it cannot leak through logs,
// errors, status or JSON by accident; Reveal gives the value to the code that sends it.
type Secret string

func (s Secret) String() string               { return "[redacted]" }
func (s Secret) GoString() string             { return "[redacted]" }
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }
func (s Secret) Reveal() string               { return string(s) }

// Credentials authenticate a Git source. HTTPS uses Username with Password (basic) or BearerToken; SSH uses
// SSHKey (PEM or OpenSSH private key, with SSHKeyPassphrase when encrypted) and checks the server against
// KnownHosts (known_hosts format) strictly: an unknown or changed host key is an error, never trusted on first use.
type Credentials struct {
	Username         string
	Password         Secret
	BearerToken      Secret
	SSHKey           Secret
	SSHKeyPassphrase Secret
	KnownHosts       []byte
}

// VerifyMode says which signature a revision needs to be deployed.
type VerifyMode string

const (
	// VerifyOff deploys every revision.
	VerifyOff VerifyMode = "off"
	// VerifyHead needs the head commit signed by a trusted key.
	VerifyHead VerifyMode = "head"
	// VerifyHeadOrTag needs the head commit, or an annotated tag pointing at it, signed by a trusted key.
	VerifyHeadOrTag VerifyMode = "head-or-tag"
)

// VerifyPolicy lists the keys a source trusts.
type VerifyPolicy struct {
	Mode VerifyMode
	// OpenPGPKeys are ASCII-armored public keys (a key ring each).
	OpenPGPKeys []string
	// SSHKeys are public keys in authorized_keys form ("ssh-ed25519 AAAA... comment"), for commits signed with
	// gpg.format=ssh.
	SSHKeys []string
}

// Verification is how a snapshot's revision passed its source's policy.
type Verification struct {
	Mode VerifyMode `json:"mode"`
	// Object is "commit" or "tag <name>": what carried the trusted signature.
	Object string `json:"object,omitempty"`
	// Key identifies the trusted key that signed: an OpenPGP key ID or an SSH key fingerprint (SHA256:...).
	Key string `json:"key,omitempty"`
}

// ErrUnverified is returned (wrapped, naming the commit and why) when a revision does not pass the source's
// signature policy; no snapshot of it is handed out.
var ErrUnverified = errors.New("revision not verified")

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
	// DefaultMaxFetchSize caps one fetch's transfer.
	DefaultMaxFetchSize = 512 << 20
	// DefaultMaxSnapshotSize caps a snapshot tree.
	DefaultMaxSnapshotSize = 64 << 20
)

// ErrUnsafePath is returned (wrapped, naming the path) for a symlink pointing outside the repository or a path that
// escapes it.
var ErrUnsafePath = errors.New("path escapes the repository")

// ErrBranchNotFound is returned (wrapped) when the watched branch does not exist on the remote.
var ErrBranchNotFound = errors.New("branch not found")
