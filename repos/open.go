package repos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"regexp"
	"strings"
)

// scpLike matches "user@host:path", the short form of an SSH URL.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:`)

// isGitLocation reports whether location names a Git remote rather than a local directory.
func isGitLocation(location string) bool {
	for _, scheme := range []string{"file://", "http://", "https://", "ssh://", "git://"} {
		if strings.HasPrefix(strings.ToLower(location), scheme) {
			return true
		}
	}
	return scpLike.MatchString(location)
}

// Open returns the source for location: a Git remote (file://, http://, https://, ssh://, git:// or user@host:path)
// or a local directory path. It does no network I/O; the first Fetch does. The caller must Close the source.
func Open(ctx context.Context, location string, opts Options) (Source, error) {
	if location == "" {
		return nil, fmt.Errorf("repos: empty location")
	}
	registerSecrets(location, opts)
	opts, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	if isGitLocation(location) {
		return openGit(ctx, location, opts)
	}
	if opts.Verify != nil && opts.Verify.Mode != "" && opts.Verify.Mode != VerifyOff {
		// A plain directory has no commits to sign: handing out its trees would silently skip the policy.
		return nil, fmt.Errorf("repos: directory source %q: signature verification (mode %s) needs a Git source", location, opts.Verify.Mode)
	}
	if opts.Credentials != nil || len(opts.CABundle) > 0 || opts.ProxyURL != "" {
		return nil, fmt.Errorf("repos: directory source %q: credentials, CA bundle and proxy apply to Git sources only", location)
	}
	info, err := os.Stat(location)
	if err != nil {
		return nil, fmt.Errorf("repos: directory source: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("repos: directory source %q: not a directory", location)
	}
	return openDir(ctx, location, opts)
}

func withDefaults(o Options) (Options, error) {
	if o.Tag != "" {
		if _, err := path.Match(o.Tag, "v0.0.0"); err != nil {
			return o, fmt.Errorf("repos: options: Tag pattern %q: %w", o.Tag, err)
		}
	}
	switch {
	case o.Debounce < 0:
		return o, fmt.Errorf("repos: options: Debounce %v is negative", o.Debounce)
	case o.Timeout < 0:
		return o, fmt.Errorf("repos: options: Timeout %v is negative", o.Timeout)
	case o.MaxFileSize < 0:
		return o, fmt.Errorf("repos: options: MaxFileSize %d is negative", o.MaxFileSize)
	}
	if o.Branch == "" {
		o.Branch = DefaultBranch
	}
	if o.Debounce == 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxFileSize == 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// ErrClosed is returned by Fetch after Close.
var ErrClosed = errors.New("repos: source closed")

// signal is a buffered (1) channel whose sends never block, so bursts coalesce into one wake-up.
type signal chan struct{}

func newSignal() signal { return make(signal, 1) }

func (s signal) fire() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// gate serialises Fetch calls while letting a waiting caller give up when its context ends.
type gate chan struct{}

func newGate() gate { return make(gate, 1) }

func (g gate) lock(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g gate) unlock() { <-g }
