package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/berth-dev/berth/schema/redact"
)

// Kind names the Git host that sends a hook; it decides the signature header and the event header.
type Kind string

// The kinds of hook a Receiver understands.
const (
	GitHub    Kind = "github"
	GitLab    Kind = "gitlab"
	Gitea     Kind = "gitea" // also Forgejo
	Bitbucket Kind = "bitbucket"
	Generic   Kind = "generic"
)

// Defaults applied by New when a field is zero.
const (
	DefaultRate    = 1.0     // accepted calls refilled per second, per source
	DefaultBurst   = 5       // accepted calls at once, per source
	DefaultMaxBody = 1 << 20 // bytes
)

// PathPrefix is where the Receiver expects to be mounted: a hook for source S is POST PathPrefix+S.
const PathPrefix = "/hooks/"

// ErrInvalidHook is wrapped by New for a hook it refuses.
var ErrInvalidHook = errors.New("invalid webhook")

// Hook is one source's webhook.
type Hook struct {
	Source string // source name: the URL path is /hooks/<Source>
	Kind   Kind
	Secret []byte // HMAC key (github, gitea, bitbucket, generic) or token (gitlab)
	// Rate limits accepted calls per source: at most Burst at once, refilled at Rate per second (defaults 1/s, 5).
	Rate  float64
	Burst int
}

// String describes the hook without its secret, so a Hook printed by accident leaks nothing.
func (h Hook) String() string {
	return fmt.Sprintf("webhook %s (%s, secret [redacted])", h.Source, h.Kind)
}

// GoString is String, for %#v.
func (h Hook) GoString() string { return h.String() }

// Options configure New.
type Options struct {
	MaxBody int64                 // largest body read; DefaultMaxBody when 0
	Metrics prometheus.Registerer // optional: berth_webhook_requests_total is registered on it
	Logger  *slog.Logger          // slog.Default() when nil
	Now     func() time.Time      // injected clock for the rate limiter (default time.Now)
	// OnEvent, when set, is called with every accepted call's Event: pushes (after notify), and the change,
	// comment and status events, which without OnEvent are ignored (200). It runs on the request's goroutine and
	// must not block (poke a channel). Other events are never passed.
	OnEvent func(Event)
}

// Receiver is an http.Handler for POST /hooks/{source}. It is safe for concurrent use.
type Receiver struct {
	hooks   map[string]*hook
	notify  func(source string)
	onEvent func(Event)
	maxBody int64
	log     *slog.Logger
	now     func() time.Time
	metrics *prometheus.CounterVec // nil without Options.Metrics
}

type hook struct {
	name     string
	kind     Kind
	secret   []byte   // HMAC key, a private copy
	tokenSum [32]byte // SHA-256 of a GitLab token: compared in constant time whatever the length sent
	limiter  *rate.Limiter
}

// result is the outcome of one request: the metric label and the HTTP status.
type result string

const (
	resAccepted     result = "accepted"
	resIgnored      result = "ignored"
	resUnauthorized result = "unauthorized"
	resForbidden    result = "forbidden"
	resTooLarge     result = "too_large"
	resRateLimited  result = "rate_limited"
	resNotFound     result = "not_found"
	resBadMethod    result = "bad_method"
	resBadRequest   result = "bad_request" // the body could not be read (client went away)
)

var statusOf = map[result]int{
	resAccepted:     http.StatusAccepted,
	resIgnored:      http.StatusOK,
	resUnauthorized: http.StatusUnauthorized,
	resForbidden:    http.StatusForbidden,
	resTooLarge:     http.StatusRequestEntityTooLarge,
	resRateLimited:  http.StatusTooManyRequests,
	resNotFound:     http.StatusNotFound,
	resBadMethod:    http.StatusMethodNotAllowed,
	resBadRequest:   http.StatusBadRequest,
}

// unknownSource labels metrics of requests whose path names no configured source.
const unknownSource = "unknown"

// New validates hooks (unique source names, known kinds, non-empty secrets, sane limits) and returns a Receiver that
// calls notify(source) for each accepted call. notify must not block: it should only poke a channel.
func New(hooks []Hook, notify func(source string), opts Options) (*Receiver, error) {
	if notify == nil {
		return nil, fmt.Errorf("webhook: notify is nil: %w", ErrInvalidHook)
	}
	if opts.MaxBody < 0 {
		return nil, fmt.Errorf("webhook: options: field MaxBody: %d is negative: %w", opts.MaxBody, ErrInvalidHook)
	}
	r := &Receiver{
		hooks:   make(map[string]*hook, len(hooks)),
		notify:  notify,
		onEvent: opts.OnEvent,
		maxBody: opts.MaxBody,
		log:     opts.Logger,
		now:     opts.Now,
	}
	if r.maxBody == 0 {
		r.maxBody = DefaultMaxBody
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	for i, h := range hooks {
		bad := func(field, format string, args ...any) error {
			return fmt.Errorf("webhook: hooks[%d] (source %q): field %s: %s: %w",
				i, h.Source, field, fmt.Sprintf(format, args...), ErrInvalidHook)
		}
		switch {
		case h.Source == "":
			return nil, bad("Source", "empty")
		case strings.ContainsAny(h.Source, "/?#%") || strings.TrimSpace(h.Source) != h.Source:
			return nil, bad("Source", "must not contain '/', '?', '#', '%%' or surrounding spaces")
		case r.hooks[h.Source] != nil:
			return nil, bad("Source", "duplicate source name")
		case !knownKind(h.Kind):
			return nil, bad("Kind", "unknown kind %q (want github, gitlab, gitea, bitbucket or generic)", h.Kind)
		case len(h.Secret) == 0:
			return nil, bad("Secret", "empty")
		case h.Rate < 0 || math.IsNaN(h.Rate) || math.IsInf(h.Rate, 0):
			return nil, bad("Rate", "%v is not a finite, non-negative number", h.Rate)
		case h.Burst < 0:
			return nil, bad("Burst", "%d is negative", h.Burst)
		}
		redact.Register(string(h.Secret)) // masked in every output of the process, like the sources' credentials
		lim, burst := h.Rate, h.Burst
		if lim == 0 {
			lim = DefaultRate
		}
		if burst == 0 {
			burst = DefaultBurst
		}
		r.hooks[h.Source] = &hook{
			name:     h.Source,
			kind:     h.Kind,
			secret:   append([]byte(nil), h.Secret...),
			tokenSum: sha256.Sum256(h.Secret),
			limiter:  rate.NewLimiter(rate.Limit(lim), burst),
		}
	}
	if opts.Metrics != nil {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_webhook_requests_total",
			Help: "Webhook requests by source and result (accepted, ignored, unauthorized, forbidden, too_large, " +
				"rate_limited, not_found, bad_method, bad_request).",
		}, []string{"source", "result"})
		if err := opts.Metrics.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("webhook: register metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("webhook: register metrics: %w", err)
			}
			c = existing
		}
		r.metrics = c
	}
	return r, nil
}

func knownKind(k Kind) bool {
	switch k {
	case GitHub, GitLab, Gitea, Bitbucket, Generic:
		return true
	}
	return false
}

// ServeHTTP handles POST /hooks/{source}: it checks the method, the source, the signature (before and after reading
// the capped body), the event and the source's rate limit, then calls notify and answers 202.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	name := sourceName(req)
	h := r.hooks[name]
	label := unknownSource
	if h != nil {
		label = name
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.finish(w, req, label, resBadMethod, Event{})
		return
	}
	if h == nil {
		r.finish(w, req, label, resNotFound, Event{})
		return
	}
	sigs := signatures(h.kind, req.Header)
	if len(sigs) == 0 {
		r.finish(w, req, label, resUnauthorized, Event{})
		return
	}
	if req.ContentLength > r.maxBody {
		r.finish(w, req, label, resTooLarge, Event{})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.finish(w, req, label, resTooLarge, Event{})
		} else {
			r.finish(w, req, label, resBadRequest, Event{})
		}
		return
	}
	for _, sig := range sigs {
		if !h.valid(sig, body) {
			r.finish(w, req, label, resForbidden, Event{})
			return
		}
	}
	ev := Classify(h.kind, req.Header, body)
	ev.Source = h.name
	wanted := ev.Kind == EventPush || (r.onEvent != nil && ev.Kind != EventOther)
	if !wanted {
		r.finish(w, req, label, resIgnored, ev)
		return
	}
	if !h.limiter.AllowN(r.now(), 1) {
		r.finish(w, req, label, resRateLimited, ev)
		return
	}
	if ev.Kind == EventPush {
		r.notify(h.name)
	}
	if r.onEvent != nil {
		r.onEvent(ev)
	}
	r.finish(w, req, label, resAccepted, ev)
}

// sourceName is the {source} path value when the handler is mounted with that pattern, else what follows PathPrefix.
func sourceName(req *http.Request) string {
	if v := req.PathValue("source"); v != "" {
		return v
	}
	rest, ok := strings.CutPrefix(req.URL.Path, PathPrefix)
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	return rest
}

func (r *Receiver) finish(w http.ResponseWriter, req *http.Request, source string, res result, ev Event) {
	if r.metrics != nil {
		r.metrics.WithLabelValues(source, string(res)).Inc()
	}
	level := slog.LevelDebug
	switch res {
	case resAccepted:
		level = slog.LevelInfo
	case resUnauthorized, resForbidden:
		level = slog.LevelWarn
	}
	if r.log.Enabled(req.Context(), level) {
		attrs := []slog.Attr{slog.String("source", source), slog.String("result", string(res)),
			slog.String("event", ev.Name), slog.String("remote", req.RemoteAddr)}
		if ev.Kind != "" {
			attrs = append(attrs, slog.String("kind", string(ev.Kind)))
		}
		if ev.Change != 0 {
			attrs = append(attrs, slog.Int("change", ev.Change))
		}
		r.log.LogAttrs(req.Context(), level, "webhook", attrs...)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(statusOf[res])
	io.WriteString(w, string(res)+"\n")
}

// signatureHeaders lists, per kind, the headers carrying the signature or token. Every one present must be valid.
var signatureHeaders = map[Kind][]string{
	GitHub:    {"X-Hub-Signature-256"},
	GitLab:    {"X-Gitlab-Token"},
	Gitea:     {"X-Gitea-Signature", "X-Forgejo-Signature"},
	Bitbucket: {"X-Hub-Signature"},
	Generic:   {"X-Berth-Signature"},
}

func signatures(k Kind, hdr http.Header) []string {
	var out []string
	for _, name := range signatureHeaders[k] {
		if v := hdr.Get(name); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// valid checks one signature header value against the body, in constant time.
func (h *hook) valid(sig string, body []byte) bool {
	if h.kind == GitLab {
		sum := sha256.Sum256([]byte(sig))
		return subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) == 1
	}
	if h.kind != Gitea {
		var ok bool
		if sig, ok = strings.CutPrefix(sig, "sha256="); !ok {
			return false
		}
	}
	var got [sha256.Size]byte
	if len(sig) != 2*sha256.Size {
		return false
	}
	if _, err := hex.Decode(got[:], []byte(sig)); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got[:])
}
