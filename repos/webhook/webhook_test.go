package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/berth-dev/berth/schema/redact"
)

const testSecret = "s3cr3t-value-never-logged"

// clock is a frozen clock that tests advance by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// notes records notify calls.
type notes struct {
	mu    sync.Mutex
	calls []string
}

func (n *notes) notify(source string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, source)
}

func (n *notes) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.calls)
}

func hexMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// goodHeaders are what a real host of that kind sends for a push.
func goodHeaders(k Kind, secret string, body []byte) http.Header {
	h := http.Header{}
	sig := hexMAC(secret, body)
	switch k {
	case GitHub:
		h.Set("X-GitHub-Event", "push")
		h.Set("X-Hub-Signature-256", "sha256="+sig)
	case GitLab:
		h.Set("X-Gitlab-Event", "Push Hook")
		h.Set("X-Gitlab-Token", secret)
	case Gitea:
		h.Set("X-Gitea-Event", "push")
		h.Set("X-Gitea-Signature", sig)
	case Bitbucket:
		h.Set("X-Event-Key", "repo:push")
		h.Set("X-Hub-Signature", "sha256="+sig)
	case Generic:
		h.Set("X-Berth-Signature", "sha256="+sig)
	}
	return h
}

var allKinds = []Kind{GitHub, GitLab, Gitea, Bitbucket, Generic}

type fixture struct {
	rcv   *Receiver
	notes *notes
	clock *clock
	reg   *prometheus.Registry
	logs  *bytes.Buffer
}

func newFixture(t testing.TB, hooks []Hook, opts Options) *fixture {
	t.Helper()
	f := &fixture{notes: &notes{}, clock: newClock(), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	opts.Now = f.clock.Now
	opts.Metrics = f.reg
	opts.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rcv, err := New(hooks, f.notes.notify, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.rcv = rcv
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) post(source string, hdr http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, PathPrefix+source, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	f.rcv.ServeHTTP(w, req)
	return w
}

// counter reads berth_webhook_requests_total{source,result} through the registry's Gather.
func (f *fixture) counter(t *testing.T, source, res string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "berth_webhook_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labels(m)["source"] == source && labels(m)["result"] == res {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestKinds(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}`)
	for _, k := range allKinds {
		// other is a kind whose signature header differs from k's.
		other := GitHub
		if k == GitHub {
			other = Bitbucket
		}
		cases := []struct {
			name   string
			hdr    func() http.Header
			status int
			notify int
		}{
			{"good", func() http.Header { return goodHeaders(k, testSecret, body) }, http.StatusAccepted, 1},
			{"missing", func() http.Header {
				h := goodHeaders(k, testSecret, body)
				for _, n := range signatureHeaders[k] {
					h.Del(n)
				}
				return h
			}, http.StatusUnauthorized, 0},
			{"forged", func() http.Header { return goodHeaders(k, "another-secret", body) }, http.StatusForbidden, 0},
			{"wrong-kind", func() http.Header {
				h := goodHeaders(other, testSecret, body)
				if k == GitLab || k == Generic { // make the event header right, so only the signature is wrong
					for n, v := range goodHeaders(k, testSecret, body) {
						if !strings.Contains(strings.ToLower(n), "signature") && !strings.Contains(n, "Token") {
							h[n] = v
						}
					}
				}
				return h
			}, http.StatusUnauthorized, 0},
			{"garbage-signature", func() http.Header {
				h := goodHeaders(k, testSecret, body)
				for _, n := range signatureHeaders[k] {
					h.Set(n, "sha256=zz")
				}
				return h
			}, http.StatusForbidden, 0},
		}
		if k != GitLab { // a GitLab token does not sign the body
			type tcase = struct {
				name   string
				hdr    func() http.Header
				status int
				notify int
			}
			cases = append(cases,
				tcase{"forged-body", func() http.Header {
					return goodHeaders(k, testSecret, body[:len(body)-1]) // signed a different body
				}, http.StatusForbidden, 0},
				tcase{"truncated", func() http.Header {
					h := goodHeaders(k, testSecret, body)
					for _, n := range signatureHeaders[k] {
						if v := h.Get(n); v != "" {
							h.Set(n, v[:len(v)-2])
						}
					}
					return h
				}, http.StatusForbidden, 0},
				tcase{"no-prefix-or-extra-prefix", func() http.Header {
					h := goodHeaders(k, testSecret, body)
					for _, n := range signatureHeaders[k] {
						if v := h.Get(n); v != "" {
							if k == Gitea {
								h.Set(n, "sha256="+v)
							} else {
								h.Set(n, strings.TrimPrefix(v, "sha256="))
							}
						}
					}
					return h
				}, http.StatusForbidden, 0},
			)
		}
		for _, tc := range cases {
			t.Run(string(k)+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t, []Hook{{Source: "app", Kind: k, Secret: []byte(testSecret)}}, Options{})
				w := f.post("app", tc.hdr(), body)
				if w.Code != tc.status {
					t.Fatalf("status = %d, want %d (body %q)", w.Code, tc.status, w.Body)
				}
				if got := f.notes.count(); got != tc.notify {
					t.Fatalf("notified %d times, want %d", got, tc.notify)
				}
				if strings.Contains(w.Body.String(), testSecret) || strings.Contains(f.logs.String(), testSecret) {
					t.Fatalf("secret leaked: response %q logs %q", w.Body, f.logs)
				}
				if sig := hexMAC(testSecret, body); strings.Contains(w.Body.String()+f.logs.String(), sig) {
					t.Fatalf("expected signature leaked")
				}
			})
		}
	}
}

func TestForgejoHeaders(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := hexMAC(testSecret, body)
	bad := hexMAC("nope", body)
	cases := []struct {
		name           string
		gitea, forgejo string
		status         int
	}{
		{"forgejo-only", "", good, http.StatusAccepted},
		{"both", good, good, http.StatusAccepted},
		{"forgejo-forged", good, bad, http.StatusForbidden},
		{"gitea-forged", bad, good, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []Hook{{Source: "app", Kind: Gitea, Secret: []byte(testSecret)}}, Options{})
			h := http.Header{}
			h.Set("X-Forgejo-Event", "push")
			if tc.gitea != "" {
				h.Set("X-Gitea-Signature", tc.gitea)
			}
			if tc.forgejo != "" {
				h.Set("X-Forgejo-Signature", tc.forgejo)
			}
			if w := f.post("app", h, body); w.Code != tc.status {
				t.Fatalf("status = %d, want %d", w.Code, tc.status)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	cases := []struct {
		kind   Kind
		header string
		event  string
		body   string
		notify bool
	}{
		{GitHub, "X-GitHub-Event", "ping", `{"zen":"Keep it simple."}`, false},
		{GitHub, "X-GitHub-Event", "issues", `{}`, false},
		{GitHub, "X-GitHub-Event", "", `{}`, false},
		{GitHub, "X-GitHub-Event", "create", `{"ref_type":"tag"}`, true},
		{GitLab, "X-Gitlab-Event", "Tag Push Hook", `{}`, true},
		{GitLab, "X-Gitlab-Event", "Merge Request Hook", `{}`, false},
		{GitLab, "X-Gitlab-Event", "System Hook", `{"object_kind":"push"}`, true},
		{GitLab, "X-Gitlab-Event", "System Hook", `{"event_name":"tag_push"}`, true},
		{GitLab, "X-Gitlab-Event", "System Hook", `{"event_name":"user_create"}`, false},
		{GitLab, "X-Gitlab-Event", "System Hook", `not json`, false},
		{Gitea, "X-Gitea-Event", "create", `{}`, true},
		{Gitea, "X-Gitea-Event", "issues", `{}`, false},
		{Bitbucket, "X-Event-Key", "repo:refs_changed", `{}`, true},
		{Bitbucket, "X-Event-Key", "diagnostics:ping", `{}`, false},
		{Bitbucket, "X-Event-Key", "pullrequest:created", `{}`, false},
		{Generic, "X-Berth-Event", "ping", `{}`, false},
		{Generic, "X-Berth-Event", "anything", `{}`, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.kind, tc.event, tc.body), func(t *testing.T) {
			f := newFixture(t, []Hook{{Source: "app", Kind: tc.kind, Secret: []byte(testSecret)}}, Options{})
			body := []byte(tc.body)
			h := goodHeaders(tc.kind, testSecret, body)
			h.Del(tc.header)
			if tc.event != "" {
				h.Set(tc.header, tc.event)
			}
			w := f.post("app", h, body)
			want, res := http.StatusOK, "ignored"
			if tc.notify {
				want, res = http.StatusAccepted, "accepted"
			}
			if w.Code != want {
				t.Fatalf("status = %d, want %d", w.Code, want)
			}
			if got := f.notes.count(); (got == 1) != tc.notify || got > 1 {
				t.Fatalf("notified %d times, want notify=%v", got, tc.notify)
			}
			if got := f.counter(t, "app", res); got != 1 {
				t.Fatalf("counter %s = %v, want 1", res, got)
			}
		})
	}
}

func TestOversizedBody(t *testing.T) {
	const max = 1024
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			f := newFixture(t, []Hook{{Source: "app", Kind: GitHub, Secret: []byte(testSecret)}}, Options{MaxBody: max})
			body := bytes.Repeat([]byte("x"), max+1)
			req := httptest.NewRequest(http.MethodPost, "/hooks/app", bytes.NewReader(body))
			for k, v := range goodHeaders(GitHub, testSecret, body) {
				req.Header[k] = v
			}
			if chunked {
				req.ContentLength = -1
			}
			w := httptest.NewRecorder()
			f.rcv.ServeHTTP(w, req)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want 413", w.Code)
			}
			if f.notes.count() != 0 {
				t.Fatal("notified for an oversized body")
			}
			if got := f.counter(t, "app", "too_large"); got != 1 {
				t.Fatalf("too_large = %v, want 1", got)
			}
			// Exactly MaxBody is fine.
			body = body[:max]
			if w := f.post("app", goodHeaders(GitHub, testSecret, body), body); w.Code != http.StatusAccepted {
				t.Fatalf("status at the limit = %d, want 202", w.Code)
			}
		})
	}
}

func TestFloodAndRefill(t *testing.T) {
	const burst = 5
	f := newFixture(t, []Hook{
		{Source: "app", Kind: GitHub, Secret: []byte(testSecret), Rate: 2, Burst: burst},
		{Source: "other", Kind: Generic, Secret: []byte(testSecret)},
	}, Options{})
	body := []byte(`{}`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := f.post("app", goodHeaders(GitHub, testSecret, body), body)
			mu.Lock()
			codes[w.Code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusAccepted] != burst || codes[http.StatusTooManyRequests] != 100-burst {
		t.Fatalf("codes = %v, want %d×202 and %d×429", codes, burst, 100-burst)
	}
	if got := f.notes.count(); got != burst {
		t.Fatalf("notified %d, want %d", got, burst)
	}
	if a, r := f.counter(t, "app", "accepted"), f.counter(t, "app", "rate_limited"); a != burst || r != 100-burst {
		t.Fatalf("metrics accepted=%v rate_limited=%v", a, r)
	}
	// Another source has its own bucket.
	if w := f.post("other", goodHeaders(Generic, testSecret, body), body); w.Code != http.StatusAccepted {
		t.Fatalf("other source: status %d, want 202", w.Code)
	}
	// Pings do not spend tokens and are not rate limited.
	ping := goodHeaders(GitHub, testSecret, body)
	ping.Set("X-GitHub-Event", "ping")
	if w := f.post("app", ping, body); w.Code != http.StatusOK {
		t.Fatalf("ping while limited: status %d, want 200", w.Code)
	}
	// Rate 2/s: one second refills two calls, then the bucket is empty again.
	f.clock.Advance(time.Second)
	for i, want := range []int{http.StatusAccepted, http.StatusAccepted, http.StatusTooManyRequests} {
		if w := f.post("app", goodHeaders(GitHub, testSecret, body), body); w.Code != want {
			t.Fatalf("after refill, call %d: status %d, want %d", i, w.Code, want)
		}
	}
	// A long pause refills at most Burst.
	f.clock.Advance(time.Hour)
	n := 0
	for range 20 {
		if w := f.post("app", goodHeaders(GitHub, testSecret, body), body); w.Code == http.StatusAccepted {
			n++
		}
	}
	if n != burst {
		t.Fatalf("after an hour: %d accepted, want %d", n, burst)
	}
}

func TestRoutingAndMetrics(t *testing.T) {
	f := newFixture(t, []Hook{{Source: "app", Kind: GitHub, Secret: []byte(testSecret)}}, Options{})
	body := []byte(`{}`)

	req := httptest.NewRequest(http.MethodGet, "/hooks/app", nil)
	w := httptest.NewRecorder()
	f.rcv.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != http.MethodPost {
		t.Fatalf("GET: status %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
	for _, path := range []string{"/hooks/nope", "/hooks/", "/hooks/app/extra", "/elsewhere/app"} {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		for k, v := range goodHeaders(GitHub, testSecret, body) {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		f.rcv.ServeHTTP(w, req)
		if w.Code != http.StatusNotFound {
			t.Fatalf("%s: status %d, want 404", path, w.Code)
		}
	}
	f.post("app", goodHeaders(GitHub, testSecret, body), body)
	f.post("app", http.Header{"X-Github-Event": {"push"}}, body)
	f.post("app", goodHeaders(GitHub, "wrong", body), body)
	if f.notes.count() != 1 {
		t.Fatalf("notified %d, want 1", f.notes.count())
	}
	want := []struct {
		source, result string
		n              float64
	}{
		{"app", "bad_method", 1}, {"unknown", "not_found", 4}, {"app", "accepted", 1},
		{"app", "unauthorized", 1}, {"app", "forbidden", 1}, {"app", "ignored", 0},
	}
	for _, c := range want {
		if got := f.counter(t, c.source, c.result); got != c.n {
			t.Errorf("counter{source=%s,result=%s} = %v, want %v", c.source, c.result, got, c.n)
		}
	}

	// Mounted with a {source} wildcard, the path value is used.
	mux := http.NewServeMux()
	mux.Handle("POST /x/{source}", f.rcv)
	req = httptest.NewRequest(http.MethodPost, "/x/app", bytes.NewReader(body))
	for k, v := range goodHeaders(GitHub, testSecret, body) {
		req.Header[k] = v
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if w.Code != http.StatusAccepted {
		t.Fatalf("wildcard mount: status %d, want 202", w.Code)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Hook{Source: "app", Kind: GitHub, Secret: []byte("k")}
	with := func(mod func(*Hook)) []Hook { h := ok; mod(&h); return []Hook{h} }
	cases := []struct {
		name  string
		hooks []Hook
		field string
	}{
		{"empty-source", with(func(h *Hook) { h.Source = "" }), "Source"},
		{"slash", with(func(h *Hook) { h.Source = "a/b" }), "Source"},
		{"duplicate", []Hook{ok, {Source: "app", Kind: GitLab, Secret: []byte("t")}}, "Source"},
		{"kind", with(func(h *Hook) { h.Kind = "svn" }), "Kind"},
		{"empty-kind", with(func(h *Hook) { h.Kind = "" }), "Kind"},
		{"secret", with(func(h *Hook) { h.Secret = nil }), "Secret"},
		{"rate", with(func(h *Hook) { h.Rate = -1 }), "Rate"},
		{"burst", with(func(h *Hook) { h.Burst = -2 }), "Burst"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.hooks, func(string) {}, Options{})
			if !errors.Is(err, ErrInvalidHook) {
				t.Fatalf("err = %v, want ErrInvalidHook", err)
			}
			if !strings.Contains(err.Error(), "field "+tc.field) {
				t.Fatalf("error %q does not name field %s", err, tc.field)
			}
		})
	}
	if _, err := New([]Hook{ok}, nil, Options{}); !errors.Is(err, ErrInvalidHook) {
		t.Fatalf("nil notify: err = %v", err)
	}
	// Two receivers on one registry share the counter instead of failing.
	reg := prometheus.NewRegistry()
	for i := range 2 {
		if _, err := New([]Hook{ok}, func(string) {}, Options{Metrics: reg}); err != nil {
			t.Fatalf("receiver %d: %v", i, err)
		}
	}
}

func TestSecretNotPrinted(t *testing.T) {
	h := Hook{Source: "app", Kind: GitHub, Secret: []byte(testSecret)}
	for _, s := range []string{fmt.Sprint(h), fmt.Sprintf("%v %+v %#v %s", h, h, h, h), fmt.Sprint([]Hook{h})} {
		if strings.Contains(s, testSecret) || strings.Contains(s, fmt.Sprint([]byte(testSecret))) {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

// New hands each hook's secret to the redaction choke point: every output of the process masks it, in any encoding.
func TestSecretRegistered(t *testing.T) {
	const secret = "webhook-secret-registered-0x99"
	if _, err := New([]Hook{{Source: "app", Kind: GitLab, Secret: []byte(secret)}}, func(string) {}, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, echoed := range []string{secret, hex.EncodeToString([]byte(secret))} {
		if got := redact.String("token " + echoed); strings.Contains(got, echoed) {
			t.Errorf("%q not masked: %q", echoed, got)
		}
	}
}

func TestSecretCopied(t *testing.T) {
	secret := []byte(testSecret)
	f := newFixture(t, []Hook{{Source: "app", Kind: GitHub, Secret: secret}}, Options{})
	secret[0] ^= 0xff // the caller reuses its buffer
	body := []byte(`{}`)
	if w := f.post("app", goodHeaders(GitHub, testSecret, body), body); w.Code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", w.Code)
	}
}

func BenchmarkReceiverGitHub(b *testing.B) {
	body := bytes.Repeat([]byte(`{"ref":"refs/heads/main"}`), 160) // about 4 KiB
	var n int
	now := time.Unix(0, 0)
	rcv, err := New([]Hook{{Source: "app", Kind: GitHub, Secret: []byte(testSecret)}},
		func(string) { n++ },
		Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		b.Fatal(err)
	}
	hdr := goodHeaders(GitHub, testSecret, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/hooks/app", bytes.NewReader(body))
		req.Header = hdr
		w := httptest.NewRecorder()
		rcv.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d", w.Code)
		}
	}
	if n == 0 {
		b.Fatal("never notified")
	}
}
