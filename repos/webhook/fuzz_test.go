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
	n := &notes{}
	frozen := time.Unix(1, 0)
	rcv, err := New([]Hook{{Source: "app", Kind: k, Secret: []byte(testSecret), Burst: 1000}}, n.notify,
		Options{MaxBody: 4096, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	return rcv, n
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
	f.Fuzz(func(t *testing.T, kind uint8, method, path, headers string, body []byte, sign bool) {
		k := allKinds[int(kind)%len(allKinds)]
		rcv, n := fuzzReceiver(t, k)
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
		} else if w.Code == http.StatusAccepted {
			t.Fatal("202 without notify")
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
