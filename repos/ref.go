package repos

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// RefFetcher is implemented by Git sources: it takes the snapshot of a pull request's head from the repository the
// source follows, for preview environments. A directory source does not implement it.
type RefFetcher interface {
	// FetchRef returns the snapshot of the commit want (40 hexadecimal digits, the head SHA the forge reported) that
	// ref names on the remote: "refs/pull/<N>/head" (GitHub, Gitea, Forgejo) or "refs/merge-requests/<N>/head"
	// (GitLab), N of 1 to 10 digits; the forges copy a fork's head there, so forks need no remote of their own.
	// Any other ref, or a want that is not a SHA, is ErrInvalidRef before any network call.
	//
	// When the commit is already in the source's cache, FetchRef does no network I/O. Otherwise it fetches ref, and
	// only ref, into the private tracking ref refs/berth/<pull|merge-requests>/<N> (never the followed branch's),
	// with the bounds and credentials of Fetch (Options.Timeout, MaxFetchSize, MaxSnapshotSize, MaxFileSize). If ref
	// then points to another commit than want, the head moved after the forge answered: the error wraps
	// ErrHeadMoved and names both, and the caller asks the forge again on its next pass. A ref the remote does not
	// have is ErrRefNotFound.
	//
	// The snapshot has Revision want, Branch and Tag "", the commit's time and subject, and Verified nil: no
	// signature is checked, whatever Options.Verify says. A pull request's head is untrusted input by design
	// (anyone who can open a pull request chooses it); callers run it only in preview environments and never
	// promote it. Head snapshots share the store with the branch's but are counted apart (keepHeadSnapshots, 16,
	// least recently fetched deleted first), so they never evict the branch's snapshots; a tree both hold stays.
	// A head snapshot's Dir must be done with before that many other heads have been fetched.
	//
	// FetchRef is safe for concurrent use with Fetch and with itself: calls are serialised.
	FetchRef(ctx context.Context, ref, want string) (*Snapshot, error)
}

// ErrInvalidRef is returned (wrapped, naming the argument quoted) by FetchRef for a ref that is not a pull or merge
// request head, or a want that is not a 40-digit SHA.
var ErrInvalidRef = errors.New("not a pull request head ref")

// ErrHeadMoved is returned (wrapped, naming the ref and both commits) by FetchRef when the ref points to another
// commit than the one asked for. Nothing is handed out; the caller retries with the forge's new head.
var ErrHeadMoved = errors.New("pull request head moved")

// ErrRefNotFound is returned (wrapped) by FetchRef when the remote has no such ref.
var ErrRefNotFound = errors.New("ref not found")

// headRef is the only shape of ref FetchRef accepts: kind, number.
var headRef = regexp.MustCompile(`^refs/(pull|merge-requests)/([0-9]{1,10})/head$`)

// fullSHA is a SHA-1 commit name, as a forge reports a head.
var fullSHA = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// maxQuotedRef bounds how many bytes of a refused argument, quoted, an error holds.
const maxQuotedRef = 100

// quoteBounded quotes s (Go syntax: control and invalid bytes escaped) in at most maxQuotedRef bytes, cutting s
// and marking the cut with "...".
func quoteBounded(s string) string {
	q := strconv.Quote(s)
	for n := len(s); len(q) > maxQuotedRef; {
		n -= (len(q) - maxQuotedRef + 3) / 4 // an escaped byte takes at most 4 bytes of the quoted form
		if n < 0 {
			n = 0
		}
		q = strconv.Quote(s[:n]) + "..."
	}
	return q
}

// headTracking returns the private tracking ref for a pull or merge request head ref, or ErrInvalidRef.
func headTracking(ref string) (plumbing.ReferenceName, error) {
	m := headRef.FindStringSubmatch(ref)
	if m == nil {
		return "", fmt.Errorf("repos: ref %s: %w (want refs/pull/<N>/head or refs/merge-requests/<N>/head)",
			quoteBounded(ref), ErrInvalidRef)
	}
	return plumbing.ReferenceName("refs/berth/" + m[1] + "/" + m[2]), nil
}

func (s *gitSource) FetchRef(ctx context.Context, ref, want string) (*Snapshot, error) {
	tracking, err := headTracking(ref)
	if err != nil {
		return nil, err
	}
	if !fullSHA.MatchString(want) {
		return nil, fmt.Errorf("repos: %s: head %s: %w (want a 40-digit commit SHA)", ref, quoteBounded(want), ErrInvalidRef)
	}
	hash := plumbing.NewHash(strings.ToLower(want))
	if err := s.gate.lock(ctx); err != nil {
		return nil, err
	}
	defer s.gate.unlock()
	if s.closed {
		return nil, ErrClosed
	}

	if _, err := s.repo.CommitObject(hash); err != nil {
		name := plumbing.ReferenceName(ref)
		got, err := s.fetchInto(ctx, name, tracking, fmt.Errorf("repos: %s: %s: %w", s.display, ref, ErrRefNotFound))
		if err != nil {
			return nil, err
		}
		if got != hash {
			return nil, fmt.Errorf("repos: %s: %s is at %s, not %s: %w", s.display, ref, got, hash, ErrHeadMoved)
		}
	} else if err := s.repo.Storer.SetReference(plumbing.NewHashReference(tracking, hash)); err != nil {
		// Already here (fetched before, or the branch's own commit): only the tracking ref moves.
		return nil, fmt.Errorf("repos: %s: %w", s.display, err)
	}
	commit, err := s.repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("repos: %s: %s: commit %s: %w", s.display, ref, hash, err)
	}
	dir, err := s.materialise(ctx, commit)
	if err != nil {
		return nil, err
	}
	if err := s.store.useHead(hash.String()); err != nil {
		s.log.WarnContext(ctx, "repos: pruning old head snapshots", "error", err)
	}
	s.log.InfoContext(ctx, "repos: head snapshot", "ref", ref, "revision", hash.String())
	return &Snapshot{Revision: hash.String(), Dir: dir, Time: commit.Committer.When, Message: subject(commit)}, nil
}

var _ RefFetcher = (*gitSource)(nil)
