package webhook

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// mayNotify is an independent oracle: could a request with these headers and body carry a valid signature for kind?
func mayNotify(k Kind, secret string, hdr http.Header, body []byte) bool {
	want := hexMAC(secret, body)
	prefixed := func(v string) bool {
		rest, ok := strings.CutPrefix(v, "sha256=")
		return ok && strings.ToLower(rest) == want
	}
	switch k {
	case GitHub:
		return prefixed(hdr.Get("X-Hub-Signature-256"))
	case Bitbucket:
		return prefixed(hdr.Get("X-Hub-Signature"))
	case Generic:
		return prefixed(hdr.Get("X-Berth-Signature"))
	case GitLab:
		return hdr.Get("X-Gitlab-Token") == secret
	case Gitea:
		g, f := hdr.Get("X-Gitea-Signature"), hdr.Get("X-Forgejo-Signature")
		return (g != "" || f != "") && (g == "" || strings.ToLower(g) == want) && (f == "" || strings.ToLower(f) == want)
	}
	return false
}

func fuzzReceiver(t *testing.T, k Kind) (*Receiver, *notes) {
	rcv, n, _ := fuzzReceiverEvents(t, k)
	return rcv, n
}

// fuzzReceiverEvents is fuzzReceiver with an OnEvent that records.
func fuzzReceiverEvents(t *testing.T, k Kind) (*Receiver, *notes, *events) {
	n, evs := &notes{}, &events{}
	frozen := time.Unix(1, 0)
	rcv, err := New([]Hook{{Source: "app", Kind: k, Secret: []byte(testSecret), Burst: 1000}}, n.notify,
		Options{MaxBody: 4096, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return frozen },
			OnEvent: evs.on})
	if err != nil {
		t.Fatal(err)
	}
	return rcv, n, evs
}

func FuzzGitHubSignature(f *testing.F) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	f.Add("sha256="+hexMAC(testSecret, body), body)
	f.Add("sha256="+strings.ToUpper(hexMAC(testSecret, body)), body)
	f.Add("sha256="+hexMAC("x", body), body)
	f.Add("sha1=abcdef", body)
	f.Add("sha256=", []byte{})
	f.Add("sha256="+hexMAC(testSecret, nil)+"00", []byte(nil))
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		rcv, n := fuzzReceiver(t, GitHub)
		req := httptest.NewRequest(http.MethodPost, "/hooks/app", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", sig)
		w := httptest.NewRecorder()
		rcv.ServeHTTP(w, req)
		valid := mayNotify(GitHub, testSecret, req.Header, body) && len(body) <= 4096
		if got := n.count() == 1; got != valid {
			t.Fatalf("sig %q: notified=%v, valid=%v (status %d)", sig, got, valid, w.Code)
		}
		if valid != (w.Code == http.StatusAccepted) {
			t.Fatalf("sig %q: status %d, valid=%v", sig, w.Code, valid)
		}
	})
}

// FuzzReceiver sends arbitrary methods, paths, headers ("Name: value" lines) and bodies to every kind. When sign is
// set the right signature is added first, so the accepting paths are explored too; the fuzzed headers may override it.
func FuzzReceiver(f *testing.F) {
	f.Add(uint8(0), "POST", "/hooks/app", "X-GitHub-Event: ping", []byte(`{}`), true)
	f.Add(uint8(1), "POST", "/hooks/app", "X-Gitlab-Event: System Hook", []byte(`{"object_kind":"push"}`), true)
	f.Add(uint8(2), "POST", "/hooks/app", "X-Forgejo-Signature: 00", []byte(`{}`), true)
	f.Add(uint8(3), "POST", "/hooks/app", "X-Event-Key: repo:push\nX-Hub-Signature: sha256=", []byte(`x`), false)
	f.Add(uint8(4), "GET", "/hooks/", "X-Berth-Signature: sha256=00", []byte(nil), false)
	f.Add(uint8(4), "POST", "/hooks/app", "Content-Length: 99999", bytes.Repeat([]byte("a"), 5000), true)
	f.Add(uint8(0), "POST", "/hooks/app", "X-GitHub-Event: pull_request", []byte(`{"number":42}`), true)
	f.Add(uint8(0), "POST", "/hooks/app", "X-GitHub-Event: issue_comment", []byte(`{"issue":{"number":1,"pull_request":{}}}`), true)
	f.Add(uint8(1), "POST", "/hooks/app", "X-Gitlab-Event: Note Hook", []byte(`{"object_attributes":{"noteable_type":"MergeRequest"},"merge_request":{"iid":3}}`), true)
	f.Add(uint8(2), "POST", "/hooks/app", "X-Gitea-Event-Type: pull_request_sync", []byte(`{"number":9}`), true)
	f.Fuzz(func(t *testing.T, kind uint8, method, path, headers string, body []byte, sign bool) {
		k := allKinds[int(kind)%len(allKinds)]
		rcv, n, evs := fuzzReceiverEvents(t, k)
		if !validMethod(method) {
			method = http.MethodPost
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/app", bytes.NewReader(body))
		req.Method = method
		req.URL.Path = path
		if sign {
			req.Header = goodHeaders(k, testSecret, body)
		}
		for line := range strings.SplitSeq(headers, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && name != "" {
				req.Header.Set(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)), strings.TrimSpace(value))
			}
		}
		w := httptest.NewRecorder()
		rcv.ServeHTTP(w, req)
		notified := n.count()
		if notified > 1 {
			t.Fatalf("notified %d times for one request", notified)
		}
		got := evs.take()
		if len(got) > 1 || (notified == 1 && (len(got) != 1 || got[0].Kind != EventPush)) {
			t.Fatalf("notified %d times, events %+v", notified, got)
		}
		if len(got) == 1 {
			if !mayNotify(k, testSecret, req.Header, body) || w.Code != http.StatusAccepted || got[0].Kind == EventOther {
				t.Fatalf("%s: event %+v without a valid signature or answered %d", k, got[0], w.Code)
			}
			checkEvent(t, got[0])
		} else if w.Code == http.StatusAccepted {
			t.Fatal("202 without notify or an event")
		}
		if notified == 1 {
			if method != http.MethodPost || path != "/hooks/app" || len(body) > 4096 {
				t.Fatalf("notified for %s %s with %d bytes", method, path, len(body))
			}
			if !mayNotify(k, testSecret, req.Header, body) {
				t.Fatalf("%s: notified without a valid signature: %v", k, req.Header)
			}
			if w.Code != http.StatusAccepted {
				t.Fatalf("notified but answered %d", w.Code)
			}
		}
		if strings.Contains(w.Body.String(), testSecret) {
			t.Fatal("secret echoed")
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

// checkEvent holds for every Event: a known kind, a change number in 1..2³¹-1 or 0, a short valid UTF-8 name.
func checkEvent(t *testing.T, ev Event) {
	t.Helper()
	switch ev.Kind {
	case EventPush, EventChange, EventComment, EventStatus, EventOther:
	default:
		t.Fatalf("kind %q", ev.Kind)
	}
	if ev.Change < 0 || ev.Change > 1<<31-1 || len(ev.Name) > maxName || !utf8.ValidString(ev.Name) {
		t.Fatalf("%+v", ev)
	}
}

// FuzzClassify feeds arbitrary event names and payloads to every kind's classifier.
func FuzzClassify(f *testing.F) {
	for _, c := range []struct {
		kind       uint8
		name, body string
	}{
		{0, "pull_request", `{"action":"opened","number":42,"pull_request":{"number":42}}`},
		{0, "issue_comment", `{"issue":{"number":7,"pull_request":{"url":"x"}},"comment":{"body":"/berth preview"}}`},
		{0, "check_suite", `{"check_suite":{"pull_requests":[{"number":3}]}}`},
		{1, "Merge Request Hook", `{"object_kind":"merge_request","object_attributes":{"iid":23}}`},
		{1, "Note Hook", `{"object_attributes":{"noteable_type":"MergeRequest"},"merge_request":{"iid":23}}`},
		{1, "System Hook", `{"object_kind":"merge_request","object_attributes":{"iid":-1}}`},
		{2, "pull_request_sync", `{"number":9,"pull_request":{"number":9}}`},
		{2, "issue_comment", `{"is_pull":true,"issue":{"number":2}}`},
		{3, "pr:comment:added", `{"pullRequest":{"id":5}}`},
		{3, "pullrequest:created", `{"pullrequest":{"id":99999999999}}`},
		{4, "ping", `{}`},
	} {
		f.Add(c.kind, c.name, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, kind uint8, name string, body []byte) {
		k := allKinds[int(kind)%len(allKinds)]
		hdr := http.Header{}
		for _, h := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Forgejo-Event-Type",
			"X-Event-Key", "X-Berth-Event"} {
			hdr.Set(h, name)
		}
		ev := Classify(k, hdr, body)
		checkEvent(t, ev)
		if again := Classify(k, hdr, body); again != ev {
			t.Fatalf("not deterministic: %+v, %+v", ev, again)
		}
	})
}
