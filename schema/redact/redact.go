package redact

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Mask replaces every registered value.
const Mask = "[redacted]"

// MinLen is the shortest value that is registered.
const MinLen = 4

// Set is a set of values to mask. The zero value is ready to use; it is safe for concurrent use.
type Set struct {
	mu       sync.RWMutex
	forms    map[string]bool
	replacer *strings.Replacer
}

// Default is the process-wide set the package functions use.
var Default = &Set{}

// Register masks value (and its encodings) in everything that goes through Default from now on.
func Register(value string) { Default.Register(value) }

// RegisterBasic masks an HTTP basic credential: the password alone and base64("user:password").
func RegisterBasic(user, password string) { Default.RegisterBasic(user, password) }

// RegisterPEM masks a PEM (or OpenSSH) private key: the whole text, each line of its base64 body and the body joined
// on one line, so that a library or server quoting a piece of the key shows none of it.
func RegisterPEM(text string) { Default.RegisterPEM(text) }

// String masks every registered value in s.
func String(s string) string { return Default.String(s) }

// Error masks err's message, keeping its identity for errors.Is and errors.As.
func Error(err error) error { return Default.Error(err) }

// Register masks value and its encodings.
func (s *Set) Register(value string) {
	if len(value) < MinLen {
		return
	}
	s.add(encodings(value)...)
}

// RegisterBasic masks password and base64("user:password").
func (s *Set) RegisterBasic(user, password string) {
	s.Register(password)
	if password == "" {
		return
	}
	s.add(b64forms(user + ":" + password)...)
}

// MinPEMLine is the shortest line of a PEM body that RegisterPEM masks on its own (a short last line is masked as
// part of the whole text and the joined body only: four random characters would garble unrelated text).
const MinPEMLine = 16

// RegisterPEM masks text, each line of its base64 body at least MinPEMLine long, and the body joined on one line.
// Armor lines ("-----BEGIN ...") and headers ("Proc-Type: ...") are not masked alone.
func (s *Set) RegisterPEM(text string) {
	s.Register(text)
	s.Register(strings.TrimSpace(text))
	var body strings.Builder
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") || strings.Contains(line, ":") {
			continue
		}
		body.WriteString(line)
		if len(line) >= MinPEMLine {
			s.Register(line)
		}
	}
	if body.Len() >= MinPEMLine {
		s.Register(body.String())
	}
}

func (s *Set) add(forms ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forms == nil {
		s.forms = map[string]bool{}
	}
	changed := false
	for _, f := range forms {
		if len(f) >= MinLen && !s.forms[f] {
			s.forms[f] = true
			changed = true
		}
	}
	if !changed {
		return
	}
	// Longest first, so that an encoding containing another form is masked whole.
	all := make([]string, 0, len(s.forms))
	for f := range s.forms {
		all = append(all, f)
	}
	slices.SortFunc(all, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(all))
	for _, f := range all {
		pairs = append(pairs, f, Mask)
	}
	s.replacer = strings.NewReplacer(pairs...)
}

// encodings are the forms in which value may be echoed back.
func encodings(value string) []string {
	forms := []string{value, url.QueryEscape(value), url.PathEscape(value), url.User(value).String(),
		hex.EncodeToString([]byte(value))}
	if b, err := json.Marshal(value); err == nil {
		forms = append(forms, strings.Trim(string(b), `"`))
	}
	// Without HTML escaping, as log/slog's JSON handler and json.Encoder with SetEscapeHTML(false) write it.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(value) == nil {
		forms = append(forms, strings.Trim(strings.TrimSuffix(buf.String(), "\n"), `"`))
	}
	return append(forms, b64forms(value)...)
}

func b64forms(v string) []string {
	b := []byte(v)
	out := []string{}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		full := enc.EncodeToString(b)
		out = append(out, full, strings.TrimRight(full, "="))
	}
	return out
}

// String masks every registered value in v.
func (s *Set) String(v string) string {
	s.mu.RLock()
	r := s.replacer
	s.mu.RUnlock()
	if r == nil {
		return v
	}
	return r.Replace(v)
}

// Error masks err's message; the result unwraps to err.
func (s *Set) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := s.String(msg); red != msg {
		return &redacted{msg: red, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// Body is what an error may quote of a remote server's answer: at most max bytes (cut at a rune boundary, with
// "…" when cut), terminal escape sequences removed, control characters and invalid UTF-8 replaced by spaces, runs of
// spaces made one, registered values masked.
func Body(b []byte, max int) string { return Default.Body(b, max) }

// escapes are terminal control sequences: CSI (colours, cursor moves) and OSC (window titles, hyperlinks).
var escapes = regexp.MustCompile(`\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)`)

// Body is the package-level Body on s.
func (s *Set) Body(b []byte, max int) string {
	// Mask before cutting, so that a secret cut in half is not left half-visible.
	v := s.String(string(b))
	cut := false
	if len(v) > max {
		i := max
		for i > 0 && !utf8.RuneStart(v[i]) {
			i--
		}
		v, cut = v[:i], true
	}
	v = escapes.ReplaceAllString(v, "")
	v = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, v)
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' }), " ")
	if cut {
		v += "…"
	}
	return v
}

// Writer wraps w so that every Write is masked with Default. Each Write is masked on its own: a value split across
// two Writes is not seen, so callers write whole records (a log line, a JSON document, a plan), as log/slog's
// handlers, json.Encoder and fmt.Fprintf do.
func Writer(w io.Writer) io.Writer { return Default.Writer(w) }

// Writer is the package-level Writer on s.
func (s *Set) Writer(w io.Writer) io.Writer { return &writer{w: w, set: s} }

type writer struct {
	w   io.Writer
	set *Set
}

// Write writes p masked and reports len(p) written when the masked bytes all went through.
func (w *writer) Write(p []byte) (int, error) {
	v := string(p)
	red := w.set.String(v)
	if red == v {
		return w.w.Write(p)
	}
	if _, err := io.WriteString(w.w, red); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Handler wraps h so that every record's message and attribute values (groups included) are masked with Default.
func Handler(h slog.Handler) slog.Handler { return &handler{next: h, set: Default} }

// Handler wraps h, masking with s.
func (s *Set) Handler(h slog.Handler) slog.Handler { return &handler{next: h, set: s} }

type handler struct {
	next slog.Handler
	set  *Set
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.set.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(red), set: h.set}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), set: h.set}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.set.String(v.String()))
	case slog.KindGroup:
		gs := v.Group()
		red := make([]any, len(gs))
		for i, g := range gs {
			red[i] = h.attr(g)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.set.String(err.Error()))
		}
		return slog.String(a.Key, h.set.String(v.String()))
	}
	return a
}

var _ error = (*redacted)(nil)
