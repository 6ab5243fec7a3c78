package forge

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Observer is told of every HTTP request a forge implementation sends, for the metrics
// berth_forge_requests_total{forge,op,code} and berth_forge_ratelimit_remaining{forge}. Its methods are called on
// the request's goroutine, concurrently: they must be safe for concurrent use and must not block.
type Observer interface {
	// Request reports one request: forge is the Kind ("github", "gitlab", "gitea"), op one of the Op constants
	// (the Forge method that sent it; OpOther when none), code the HTTP status of the answer (304 for a
	// not-modified) or 0 when no answer came (a transport failure or a timeout). A request a client library
	// refuses without sending it (a remembered rate limit) is not reported.
	Request(forge, op string, code int)
	// RateLimit reports the quota left, as the answer's rate-limit header said (GitHub X-RateLimit-Remaining,
	// GitLab RateLimit-Remaining; Gitea sends none, so it never reports). Only answers that carry the header
	// report.
	RateLimit(forge string, remaining int)
}

// ObserverFuncs is an Observer made of two functions; a nil one is skipped.
type ObserverFuncs struct {
	OnRequest   func(forge, op string, code int)
	OnRateLimit func(forge string, remaining int)
}

// Request calls OnRequest.
func (o ObserverFuncs) Request(forge, op string, code int) {
	if o.OnRequest != nil {
		o.OnRequest(forge, op, code)
	}
}

// RateLimit calls OnRateLimit.
func (o ObserverFuncs) RateLimit(forge string, remaining int) {
	if o.OnRateLimit != nil {
		o.OnRateLimit(forge, remaining)
	}
}

// The op label of Observer.Request: one per Forge method, plus the implementations' own bookkeeping calls. The
// set is small and fixed, so that the metric's cardinality is bounded.
const (
	OpListOpen      = "list_open"
	OpGet           = "get"
	OpPermission    = "permission"
	OpStatuses      = "statuses"
	OpSetStatus     = "set_status"
	OpComments      = "comments"
	OpUpsertComment = "upsert_comment"
	// OpLabelEvents is LabelHistory.LabelEvents.
	OpLabelEvents = "label_events"
	// OpSelf reads the token's own user.
	OpSelf = "self"
	// OpToken mints a GitHub App installation token.
	OpToken = "token"
	// OpVersion reads a Gitea server's version.
	OpVersion = "version"
	// OpOther is a request sent outside any of the above.
	OpOther = "other"
)

type opKey struct{}

// WithOp returns ctx labelled with op for the requests sent under it (ObserveTransport reads it).
func WithOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// OpOf is the op ctx was labelled with by WithOp, or OpOther.
func OpOf(ctx context.Context) string {
	if op, ok := ctx.Value(opKey{}).(string); ok && op != "" {
		return op
	}
	return OpOther
}

// ObserveTransport wraps next (http.DefaultTransport when nil) so that every request it carries is reported to o:
// Request with the op of the request's context (WithOp), and RateLimit when the answer carries remainingHeader
// (none when it is ""). With a nil o it returns next unchanged.
func ObserveTransport(next http.RoundTripper, kind string, o Observer, remainingHeader string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if o == nil {
		return next
	}
	return &observed{next: next, kind: kind, o: o, header: remainingHeader}
}

type observed struct {
	next   http.RoundTripper
	kind   string
	o      Observer
	header string
}

func (t *observed) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	code := 0
	if err == nil && resp != nil {
		code = resp.StatusCode
	}
	t.o.Request(t.kind, OpOf(req.Context()), code)
	if code != 0 && t.header != "" {
		if v := strings.TrimSpace(resp.Header.Get(t.header)); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				t.o.RateLimit(t.kind, n)
			}
		}
	}
	return resp, err
}
