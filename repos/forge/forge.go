package forge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Change is a pull request (GitHub, Gitea) or merge request (GitLab). Every text field is untrusted input.
type Change struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	Author string `json:"author"`
	// State is StateOpen, StateClosed or StateMerged.
	State string `json:"state"`
	Draft bool   `json:"draft"`
	// HeadSHA is the commit the change proposes; HeadRef its branch (untrusted text, never used in a name).
	HeadSHA string `json:"headSHA"`
	HeadRef string `json:"headRef"`
	// HeadRepo is "owner/name" of the repository the head lives in; Fork is true when it is not the base
	// repository.
	HeadRepo string `json:"headRepo"`
	Fork     bool   `json:"fork"`
	// BaseRef is the branch the change targets.
	BaseRef   string    `json:"baseRef"`
	Labels    []string  `json:"labels,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Change states.
const (
	StateOpen   = "open"
	StateClosed = "closed"
	StateMerged = "merged"
)

// List is one complete listing of the open changes of the repository.
type List struct {
	Changes []Change
	// ETag identifies this listing; give it to the next ListOpen.
	ETag string
	// NotModified is true when the forge said the listing has not changed since the ETag given (Changes is nil:
	// keep the previous one). It cost no rate-limit quota.
	NotModified bool
}

// Permission is a user's access to the repository.
type Permission string

// Permissions, weakest first.
const (
	PermissionNone  Permission = "none"
	PermissionRead  Permission = "read"
	PermissionWrite Permission = "write"
	PermissionAdmin Permission = "admin"
)

// CanWrite tells whether p allows pushing (and so approving a fork's preview).
func (p Permission) CanWrite() bool { return p == PermissionWrite || p == PermissionAdmin }

// StatusState is a commit status's state.
type StatusState string

// Status states (GitLab's running/canceled map onto these).
const (
	StatusPending StatusState = "pending"
	StatusSuccess StatusState = "success"
	StatusFailure StatusState = "failure"
	StatusError   StatusState = "error"
)

// Status is one commit status berth sets.
type Status struct {
	SHA string
	// Context names the status: "berth/<instance>/<environment>".
	Context string
	State   StatusState
	// Description is cut to Limits.StatusDescription by the implementation.
	Description string
	TargetURL   string
}

// Comment is one comment on a change.
type Comment struct {
	ID      int64
	Author  string
	Body    string // untrusted
	Created time.Time
}

// Limits are what a forge accepts.
type Limits struct {
	// CommentBytes is the longest comment body (GitHub: 65,536 characters).
	CommentBytes int
	// StatusDescription is the longest status description (GitHub: 140 characters).
	StatusDescription int
}

// Forge is one repository on one Git host.
type Forge interface {
	// Kind is "github", "gitlab" or "gitea".
	Kind() string
	// ListOpen lists every open change of the repository (all pages), or fails. With etag from the previous
	// listing, an unchanged one answers NotModified.
	ListOpen(ctx context.Context, etag string) (List, error)
	// Get reads one change, whatever its state (ErrNotFound when the forge says it does not exist).
	Get(ctx context.Context, number int) (Change, error)
	// Permission is user's access to the repository.
	Permission(ctx context.Context, user string) (Permission, error)
	// Statuses are the latest states of the commit's statuses, by context.
	Statuses(ctx context.Context, sha string) (map[string]StatusState, error)
	// SetStatus sets a commit status; setting the same state and description again sends nothing.
	SetStatus(ctx context.Context, s Status) error
	// Comments lists the change's comments, oldest first.
	Comments(ctx context.Context, number int) ([]Comment, error)
	// UpsertComment keeps one comment on the change holding marker (an HTML comment berth puts first in the body):
	// it edits that comment in place, or creates it when there is none. body is cut to Limits.CommentBytes with a
	// note. It returns the comment's id.
	UpsertComment(ctx context.Context, number int, marker, body string) (int64, error)
	Limits() Limits
}

// LabelEvent is a label added to or removed from a change, by whom and when. Label and Actor are untrusted text,
// bounded by the implementation; Actor is "" when the forge names no one (a deleted account).
type LabelEvent struct {
	Label   string
	Actor   string
	Added   bool
	Created time.Time
}

// LabelHistory is implemented by forges that tell who labelled a change (GitHub's issue events, GitLab's resource
// label events, Gitea's timeline): what approving a fork's preview by a label needs, since a label alone says
// neither who set it nor when.
type LabelHistory interface {
	// LabelEvents lists every label event of the change, oldest first: complete (all pages) or an error, never
	// a cut list. ErrNotFound (wrapped) when the forge says the change does not exist.
	LabelEvents(ctx context.Context, number int) ([]LabelEvent, error)
}

// ErrNotFound is returned (wrapped) for a change, user or repository the forge says does not exist. It is the only
// error that says anything about existence: every other one means "unknown".
var ErrNotFound = errors.New("not found")

// Error is a failed forge call: which operation, the HTTP status (0 for a transport failure), and what the forge
// said, bounded and redacted. Temporary says whether retrying later can help (5xx, timeouts, rate limits).
type Error struct {
	Forge  string
	Op     string
	Status int
	// Message is the forge's words (redact.Body: bounded, cleaned, masked).
	Message   string
	Temporary bool
	// RetryAfter is how long the forge asked to wait (rate limits), 0 when it did not say.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Forge, e.Op)
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil && e.Message == "" {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Marker is the hidden marker berth puts first in its comment for instance and key (an environment name), so
// that UpsertComment finds its own comment again and never another's.
func Marker(instance, key string) string {
	return fmt.Sprintf("<!-- berth:%s:%s -->", instance, key)
}
