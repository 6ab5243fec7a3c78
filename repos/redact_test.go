package repos

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/berth-dev/berth/repos/gittest"
	"github.com/berth-dev/berth/schema/redact"
)

// echoedForms are the ways a server may echo a credential: plain, URL-encoded, hex, base64 in both alphabets with
// and without padding.
func echoedForms(values ...string) []string {
	var out []string
	for _, v := range values {
		out = append(out, v, url.QueryEscape(v), url.PathEscape(v), hex.EncodeToString([]byte(v)))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			out = append(out, enc.EncodeToString([]byte(v)))
		}
	}
	return out
}

// checkQuoted fails when text holds a form of a secret or a control character, or is longer than limit.
func checkQuoted(t *testing.T, what, text string, limit int, forms []string) {
	t.Helper()
	for _, f := range forms {
		if strings.Contains(text, f) {
			t.Errorf("%s holds %q: %s", what, f, text)
		}
	}
	if strings.IndexFunc(text, unicode.IsControl) >= 0 {
		t.Errorf("%s holds control characters: %q", what, text)
	}
	if len(text) > limit {
		t.Errorf("%s is %d bytes, want at most %d: %s", what, len(text), limit, text)
	}
}

// A Git server whose 401 and 403 pages echo the request's Authorization header, URL-encoded and decoded too, and
// a few KiB of padding: the errors quote a few hundred bytes of it, with no control character and none of the
// credentials in any encoding.
func TestErrorPagesQuotedRedacted(t *testing.T) {
	hermetic(t)
	_, root := bareServed(t)
	const (
		user        = "deploy-bot"
		right       = "right-pw-echo-0x1D"
		wrong       = "wrong-pw-echo-0x2E"
		token       = "tok-echo-3c59dc048e88"
		urlPassword = "url-pw-echo-0x4F"
		urlToken    = "urltok-echo-6512bd43d9"
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch auth := r.Header.Get("Authorization"); {
		case strings.HasPrefix(auth, "Bearer "):
			gittest.Echo(w, r, http.StatusUnauthorized)
		default:
			gittest.BasicAuthEcho(user, right, gittest.HTTPBackend(t, root)).ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	withUser := func(info string) string {
		return strings.Replace(srv.URL, "http://", "http://"+info+"@", 1) + "/repo.git"
	}
	// The longest error: the source's own words around the quoted transport error.
	limit := maxTransportError + len("…") + 200
	for _, c := range []struct {
		name  string
		url   string
		opts  Options
		want  error
		forms []string
	}{
		{"basic password", srv.URL + "/repo.git", Options{Credentials: &Credentials{Username: user, Password: wrong}},
			transport.ErrAuthorizationFailed, echoedForms(wrong, user+":"+wrong)},
		{"bearer token", srv.URL + "/repo.git", Options{Credentials: &Credentials{BearerToken: token}},
			transport.ErrAuthenticationRequired, echoedForms(token, "Bearer "+token)},
		{"URL userinfo", withUser(user + ":" + urlPassword), Options{},
			transport.ErrAuthorizationFailed, echoedForms(urlPassword, user+":"+urlPassword)},
		{"token as URL user", withUser(urlToken), Options{},
			transport.ErrAuthorizationFailed, echoedForms(urlToken, urlToken+":")},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Timeout = 60 * time.Second
			src := open(t, c.url, c.opts)
			_, err := src.Fetch(context.Background())
			if !errors.Is(err, c.want) {
				t.Fatalf("Fetch: %v, want %v", err, c.want)
			}
			t.Logf("error: %v", err)
			checkQuoted(t, "error", err.Error(), limit, c.forms)
			if !strings.Contains(err.Error(), "Authorization: Basic "+redact.Mask) &&
				!strings.Contains(err.Error(), "Authorization: Bearer "+redact.Mask) {
				t.Errorf("the echoed header is not shown masked: %v", err)
			}
			if n := strings.Count(err.Error(), "padding"); n > maxQuotedBody/len("<p>padding</p>") {
				t.Errorf("the error page is quoted beyond %d bytes (%d paddings)", maxQuotedBody, n)
			}
			if !strings.Contains(err.Error(), "…") {
				t.Errorf("a cut error page does not say so: %v", err)
			}
		})
	}
}

// An SSH key is masked whole and line by line, its passphrase, a proxy's password and a go-git Options.Auth too.
func TestRegisterSecrets(t *testing.T) {
	key, _ := gittest.SSHKey(t, t.TempDir(), "id", "key-passphrase-0x77")
	registerSecrets("ssh://git@example.invalid/repo.git", Options{
		Credentials: &Credentials{SSHKey: Secret(key), SSHKeyPassphrase: "key-passphrase-0x77"},
		ProxyURL:    "http://proxy-user:proxy-pw-0x88@127.0.0.1:3128",
	})
	registerSecrets("https://example.invalid/repo.git", Options{Auth: &githttp.BasicAuth{Username: "u", Password: "auth-pw-0x99"}})
	lines := strings.Split(strings.TrimSpace(key), "\n")
	for _, v := range append([]string{key, "key-passphrase-0x77", "proxy-pw-0x88", "auth-pw-0x99",
		base64.StdEncoding.EncodeToString([]byte("proxy-user:proxy-pw-0x88"))}, lines[1:len(lines)-2]...) {
		if got := redact.String("said: " + v); strings.Contains(got, v) {
			t.Errorf("%q not masked: %q", v, got)
		}
	}
	if got := redact.String("git"); got != "git" {
		t.Errorf("the SSH user name was registered: %q", got)
	}
}

// Credentials in a URL authenticate, and stay out of the cache on disk (the bare repository's remote has none).
func TestCacheHoldsNoURLCredentials(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	const user, password = "cache-bot", "cache-pw-0xABCDEF01"
	srv := httptest.NewServer(gittest.BasicAuthEcho(user, password, gittest.HTTPBackend(t, root)))
	t.Cleanup(srv.Close)
	cache := t.TempDir()
	u := strings.Replace(srv.URL, "http://", "http://"+user+":"+password+"@", 1) + "/repo.git"
	snap := fetch(t, open(t, u, Options{CacheDir: cache, Timeout: 60 * time.Second}))
	if snap.Revision != gitCmd(t, origin, "rev-parse", "main") {
		t.Fatalf("revision %s", snap.Revision)
	}
	forms := echoedForms(password, user+":"+password)
	err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s holds %q", p, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
