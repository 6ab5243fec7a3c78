package repos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/gittest"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// lockedBuffer collects log output from the source's goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// backend is git http-backend serving the bare repositories under root.
// fetchOverWire fetches url with opts, pushes a commit to the served repository and fetches it again.
func fetchOverWire(t *testing.T, origin, url string, opts Options) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	src := open(t, url, opts)
	first := fetch(t, src)
	if want := gitCmd(t, origin, "rev-parse", "main"); first.Revision != want {
		t.Fatalf("revision %s, want %s", first.Revision, want)
	}
	writeFiles(t, origin, map[string]string{"a.cue": "a: 2\n"})
	sha := commitAll(t, origin, "over the wire")
	gitCmd(t, origin, "push", "-q", "served", "main")
	next := fetch(t, src)
	if next.Revision != sha || readFile(t, next.Dir, "a.cue") != "a: 2\n" {
		t.Fatalf("after push: %+v", next)
	}
}

// fetchFails opens url with opts, expects Fetch to fail, checks that no secret shows in the error or the logs,
// and returns the error.
func fetchFails(t *testing.T, url string, opts Options, secrets ...string) error {
	t.Helper()
	logs := &lockedBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	src := open(t, url, opts)
	_, err := src.Fetch(context.Background())
	if err == nil {
		t.Fatalf("Fetch succeeded, want an error")
	}
	t.Logf("Fetch error: %v", err)
	for _, s := range secrets {
		for what, text := range map[string]string{"error": err.Error(), "logs": logs.String(), "String()": src.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s leaks secret %q: %s", what, s, text)
			}
		}
	}
	return err
}

func TestGitHTTPBasicAuth(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	const user, right, wrong = "deployer", "right-pw-0xC0FFEE", "wrong-pw-0xBADBAD"
	h := gittest.HTTPBackend(t, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != right {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	fetchOverWire(t, origin, srv.URL+"/repo.git", Options{Credentials: &Credentials{Username: user, Password: right}})
	err := fetchFails(t, srv.URL+"/repo.git", Options{Credentials: &Credentials{Username: user, Password: wrong}}, wrong, right)
	if !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("wrong password: %v, want an authentication error", err)
	}
	// Credentials in the URL still work, and stay out of errors.
	u := strings.Replace(srv.URL, "http://", "http://"+user+":"+wrong+"@", 1) + "/repo.git"
	if err := fetchFails(t, u, Options{}, wrong); !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("wrong password in URL: %v", err)
	}
	u = strings.Replace(srv.URL, "http://", "http://"+user+":"+right+"@", 1) + "/repo.git"
	if snap := fetch(t, open(t, u, Options{})); snap.Revision != gitCmd(t, origin, "rev-parse", "main") {
		t.Errorf("credentials in URL: revision %s", snap.Revision)
	}
}

func TestGitHTTPBearerToken(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	const right, wrong = "tok-right-5d41402abc4b", "tok-wrong-7d793037a076"
	h := gittest.HTTPBackend(t, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+right {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	fetchOverWire(t, origin, srv.URL+"/repo.git", Options{Credentials: &Credentials{BearerToken: right}})
	err := fetchFails(t, srv.URL+"/repo.git", Options{Credentials: &Credentials{BearerToken: wrong}}, wrong, right)
	if !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("wrong token: %v, want an authentication error", err)
	}
}

func TestGitHTTPSCABundle(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	srv := httptest.NewTLSServer(gittest.HTTPBackend(t, root))
	t.Cleanup(srv.Close)
	err := fetchFails(t, srv.URL+"/repo.git", Options{})
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA bundle: %v, want a certificate error", err)
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	fetchOverWire(t, origin, srv.URL+"/repo.git", Options{CABundle: bundle})

	if _, err := Open(context.Background(), srv.URL+"/repo.git", Options{CABundle: []byte("not pem")}); err == nil ||
		!strings.Contains(err.Error(), "CABundle") {
		t.Errorf("bad CABundle: %v, want an error naming CABundle", err)
	}
}

func TestGitHTTPProxy(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	h := gittest.HTTPBackend(t, root)
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy gets absolute URIs; this one is also the origin of the unresolvable host.
		if r.URL.Host != "git.example.invalid" {
			http.Error(w, "unexpected host "+r.URL.Host, http.StatusBadGateway)
			return
		}
		proxied.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	fetchOverWire(t, origin, "http://git.example.invalid/repo.git", Options{ProxyURL: proxy.URL})
	if proxied.Load() == 0 {
		t.Errorf("no request went through the proxy")
	}
	// The environment's proxy is not used implicitly.
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	before := proxied.Load()
	fetchFails(t, "http://git.example.invalid/repo.git", Options{})
	if proxied.Load() != before {
		t.Errorf("HTTP_PROXY was used without Options.ProxyURL")
	}
}

func TestGitHTTPNotGit(t *testing.T) {
	hermetic(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><body>Please sign in</body></html>"))
	}))
	t.Cleanup(srv.Close)
	err := fetchFails(t, srv.URL+"/repo.git", Options{})
	if !errors.Is(err, ErrNotGitServer) || !strings.Contains(err.Error(), "text/html") {
		t.Errorf("HTML page: %v, want ErrNotGitServer naming text/html", err)
	}
}

// garbageServer accepts TCP connections and answers each with random bytes.
func garbageServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			junk := make([]byte, 64<<10)
			_, _ = rand.Read(junk)
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			_, _ = c.Write(junk)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func TestGitGarbageServer(t *testing.T) {
	hermetic(t)
	addr := garbageServer(t)
	for _, url := range []string{"git://" + addr + "/repo.git", "http://" + addr + "/repo.git"} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			err := fetchFails(t, url, Options{Timeout: 30 * time.Second})
			if errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "list refs") {
				t.Errorf("garbage: %v, want a protocol error from listing refs", err)
			}
		})
	}
}

// tempPacks lists half-written packs left in a source's cache.
func tempPacks(t *testing.T, src Source) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(src.(*gitSource).gitDir, "objects", "pack", "tmp_pack_*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestGitStallMidPack(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	h := gittest.HTTPBackend(t, root)
	var stall atomic.Bool
	stalled := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall.Load() && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			// Refs were advertised; now send the start of a pack response and nothing more.
			w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			stalled <- struct{}{}
			<-r.Context().Done()
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	src := open(t, srv.URL+"/repo.git", Options{Timeout: 3 * time.Second, CacheDir: t.TempDir()})
	first := fetch(t, src)
	writeFiles(t, origin, map[string]string{"a.cue": "a: 2\n"})
	sha := commitAll(t, origin, "second")
	gitCmd(t, origin, "push", "-q", "served", "main")

	stall.Store(true)
	result := make(chan error, 1)
	go func() { _, err := src.Fetch(context.Background()); result <- err }()
	select {
	case err := <-result:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "fetch") {
			t.Fatalf("stalled pack: %v, want a deadline error from the fetch", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Fetch did not return on a stalled pack")
	}
	select {
	case <-stalled:
	default:
		t.Fatal("the server never saw the pack request")
	}
	if p := tempPacks(t, src); len(p) != 0 {
		t.Errorf("half-written packs left: %v", p)
	}

	stall.Store(false)
	if next := fetch(t, src); next.Revision != sha || next.Revision == first.Revision {
		t.Fatalf("after the stall: %+v, want %s", next, sha)
	}
}

// incompressible returns n random bytes, hex-free so git cannot shrink them much.
func incompressible(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGitMaxFetchSize(t *testing.T) {
	hermetic(t)
	origin, root := bareServed(t)
	writeFiles(t, origin, map[string]string{"big.bin": incompressible(t, 256<<10)})
	sha := commitAll(t, origin, "big")
	gitCmd(t, origin, "push", "-q", "served", "main")
	srv := httptest.NewServer(gittest.HTTPBackend(t, root))
	t.Cleanup(srv.Close)

	for name, url := range map[string]string{"http": srv.URL + "/repo.git", "file": "file://" + origin} {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			opts := Options{CacheDir: cache, MaxFetchSize: 64 << 10, MaxFileSize: 1 << 20}
			src := open(t, url, opts)
			_, err := src.Fetch(context.Background())
			if !errors.Is(err, ErrFetchTooLarge) || !strings.Contains(err.Error(), "65536") {
				t.Fatalf("oversized fetch: %v, want ErrFetchTooLarge naming the limit", err)
			}
			if p := tempPacks(t, src); len(p) != 0 {
				t.Errorf("half-written packs left: %v", p)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			// The same cache serves a source with a larger limit.
			opts.MaxFetchSize = 0
			if snap := fetch(t, open(t, url, opts)); snap.Revision != sha {
				t.Errorf("after an oversized fetch: revision %s, want %s", snap.Revision, sha)
			}
		})
	}
}

func TestGitMaxSnapshotSize(t *testing.T) {
	hermetic(t)
	origin, sha := newOrigin(t, map[string]string{"a/one.cue": strings.Repeat("a", 600), "b/two.cue": strings.Repeat("b", 600)})
	src := open(t, "file://"+origin, Options{MaxSnapshotSize: 1000})
	_, err := src.Fetch(context.Background())
	if !errors.Is(err, ErrSnapshotTooLarge) || !strings.Contains(err.Error(), "1000") ||
		!strings.Contains(err.Error(), sha[:12]) {
		t.Fatalf("oversized snapshot: %v, want ErrSnapshotTooLarge naming the limit and the commit", err)
	}
	assertNoSnapshots(t, src)
	if snap := fetch(t, open(t, "file://"+origin, Options{MaxSnapshotSize: 1200})); snap.Revision != sha {
		t.Errorf("at the limit: %s", snap.Revision)
	}
}

func TestCredentialsValidation(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		name, url string
		opts      Options
		want      string
	}{
		{"ssh without known hosts", "ssh://git@127.0.0.1:1/r.git", Options{Credentials: &Credentials{SSHKey: "x"}}, "KnownHosts"},
		{"ssh without key", "ssh://git@127.0.0.1:1/r.git", Options{Credentials: &Credentials{Password: "pw"}}, "SSHKey"},
		{"bad ssh key", "ssh://git@127.0.0.1:1/r.git", Options{Credentials: &Credentials{
			SSHKey:     "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretkeymaterial\n-----END OPENSSH PRIVATE KEY-----\n",
			KnownHosts: []byte("x")}}, "SSHKey"},
		{"token and password", "https://h/r.git", Options{Credentials: &Credentials{Password: "pwpw", BearerToken: "tktk"}}, "not both"},
		{"credentials on git://", "git://h/r.git", Options{Credentials: &Credentials{Password: "pwpw"}}, "git"},
		{"CA on ssh", "ssh://git@h/r.git", Options{CABundle: []byte("x")}, "http(s) sources only"},
		{"bad proxy", "https://h/r.git", Options{ProxyURL: "ftp://proxy"}, "ProxyURL"},
		{"negative fetch size", "https://h/r.git", Options{MaxFetchSize: -1}, "MaxFetchSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), tc.url, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secretkeymaterial") || strings.Contains(err.Error(), "pwpw") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}
