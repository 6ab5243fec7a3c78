package repos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/berth-dev/berth/schema/redact"
)

// ErrFetchTooLarge is returned (wrapped, naming the limit) when one network operation of a Git source transfers
// more than Options.MaxFetchSize bytes. The operation is aborted and the cache stays as it was.
var ErrFetchTooLarge = errors.New("fetch too large")

// ErrSnapshotTooLarge is returned (wrapped, naming the commit and the limit) when a commit's files add up to more
// than Options.MaxSnapshotSize bytes.
var ErrSnapshotTooLarge = errors.New("snapshot too large")

// ErrNotGitServer is returned (wrapped) when an HTTP(S) server answers with something other than Git's smart HTTP
// protocol, e.g. an HTML login page with status 200.
var ErrNotGitServer = errors.New("server did not answer as a Git smart HTTP server")

// budget counts the bytes of one network operation and refuses those over its limit.
type budget struct {
	limit    int64
	n        atomic.Int64
	exceeded atomic.Bool
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

func (b *budget) add(n int) error {
	if b.n.Add(int64(n)) > b.limit {
		b.exceeded.Store(true)
		return b.err()
	}
	return nil
}

func (b *budget) err() error {
	return fmt.Errorf("transfer over the limit of %d bytes (Options.MaxFetchSize): %w", b.limit, ErrFetchTooLarge)
}

// httpTransport is one source's HTTP(S) client side: its own TLS roots and proxy, never the environment's proxy
// variables.
type httpTransport struct {
	rt *http.Transport
}

func newHTTPTransport(caBundle []byte, proxyURL string) (*httpTransport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if proxyURL != "" {
		u, err := url.Parse(proxyURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("ProxyURL: not an absolute URL")
		}
		switch u.Scheme {
		case "http", "https", "socks5", "socks5h":
		default:
			return nil, fmt.Errorf("ProxyURL: scheme %q is not http, https or socks5", u.Scheme)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caBundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, fmt.Errorf("CABundle: no PEM certificate found")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &httpTransport{rt: tr}, nil
}

func (h *httpTransport) close() { h.rt.CloseIdleConnections() }

// netCall travels in the context of one network operation to the process-wide HTTP dispatcher.
type netCall struct {
	http   *httpTransport
	budget *budget
}

type netCallKey struct{}

func withNetCall(ctx context.Context, c *netCall) context.Context {
	return context.WithValue(ctx, netCallKey{}, c)
}

var installHTTP sync.Once

// installDispatcher makes go-git's http and https transports route each request through the settings of the source
// whose operation sent it (found in the request's context). go-git keeps one client per scheme for the whole
// process, and its per-call CABundle/ProxyOptions require that client's RoundTripper to be a bare *http.Transport,
// which would leave no place to count bytes; so the per-source transport travels in the context instead. Requests
// without a source (other go-git users in the process) go through http.DefaultTransport, as go-git's own default.
func installDispatcher() {
	installHTTP.Do(func() {
		c := githttp.NewClient(&http.Client{Transport: dispatcher{}})
		client.InstallProtocol("http", c)
		client.InstallProtocol("https", c)
	})
}

type dispatcher struct{}

func (dispatcher) RoundTrip(req *http.Request) (*http.Response, error) {
	call, ok := req.Context().Value(netCallKey{}).(*netCall)
	if !ok || call.http == nil {
		return http.DefaultTransport.RoundTrip(req)
	}
	res, err := call.http.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == http.StatusOK {
		ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if !strings.HasPrefix(ct, "application/x-git-") {
			res.Body.Close()
			if ct == "" {
				ct = "none"
			}
			return nil, fmt.Errorf("%s answered with content type %s: %w", req.URL.Path, ct, ErrNotGitServer)
		}
	}
	if call.budget != nil {
		res.Body = &countingBody{ReadCloser: res.Body, budget: call.budget}
	}
	if res.StatusCode >= http.StatusBadRequest {
		// go-git quotes an error page whole in its error (401, 403, 404): give it only what may be quoted.
		b, err := io.ReadAll(io.LimitReader(res.Body, maxErrorPage))
		res.Body.Close()
		if err != nil && !errors.Is(err, ErrFetchTooLarge) {
			return nil, fmt.Errorf("%s answered %s; reading the error page: %w", req.URL.Path, res.Status, err)
		}
		page := redact.Body(b, maxQuotedBody)
		res.Body, res.ContentLength = io.NopCloser(strings.NewReader(page)), int64(len(page))
		res.Header.Del("Content-Length")
	}
	return res, nil
}

const (
	// maxQuotedBody is the most an error quotes of a server's error page: enough for "Bad credentials" or a login
	// page's title, too little for a page of markup, and cleaned of control characters and credentials (redact.Body).
	maxQuotedBody = 400
	// maxErrorPage is the most read of an error page before it is cut to maxQuotedBody: credentials are masked on
	// what was read, so that one echoed across the cut is masked whole, not left half-visible.
	maxErrorPage = 64 << 10
	// maxTransportError bounds the text of a transport error as go-git makes it (its words, a quoted error page, an
	// ERR line or the first line an SSH server wrote on stderr), cleaned the same way.
	maxTransportError = 1024
)

// quotedError is a transport error whose text went through redact.Body; it unwraps to the original.
type quotedError struct {
	msg string
	err error
}

func (e *quotedError) Error() string { return e.msg }
func (e *quotedError) Unwrap() error { return e.err }

// quoted bounds, cleans and masks the text of a transport error, keeping its identity for errors.Is and errors.As.
func quoted(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if q := redact.Body([]byte(msg), maxTransportError); q != msg {
		return &quotedError{msg: q, err: err}
	}
	return err
}

// countingBody fails a response body's reads once the operation's budget is spent.
type countingBody struct {
	io.ReadCloser
	budget *budget
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		if berr := c.budget.add(n); berr != nil {
			return n, berr
		}
	}
	return n, err
}

// cappedStorage is the bare repository's storage with a pack writer that refuses packs over a budget. Fetches go
// through it, so the cap holds for every transport (file, git, ssh, http), counted on the pack as received.
type cappedStorage struct {
	*filesystem.Storage
	budget *budget
	// drain reads an oversized pack to its end instead of failing at once: go-git's file transport waits for the
	// local git-upload-pack to exit when a fetch ends, which never happens while that process blocks writing.
	drain bool
}

func (c *cappedStorage) PackfileWriter() (io.WriteCloser, error) {
	w, err := c.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &cappedWriter{WriteCloser: w, budget: c.budget, drain: c.drain}, nil
}

type cappedWriter struct {
	io.WriteCloser
	budget *budget
	drain  bool
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if err := w.budget.add(len(p)); err != nil {
		if w.drain {
			return len(p), nil // discarded; Close reports the error
		}
		return 0, err
	}
	return w.WriteCloser.Write(p)
}

func (w *cappedWriter) Close() error {
	err := w.WriteCloser.Close()
	if w.budget.exceeded.Load() {
		return w.budget.err()
	}
	return err
}

// removeTempPacks deletes packs a failed fetch left half-written (go-git keeps them when a pack ends early).
func removeTempPacks(gitDir string) error {
	names, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "tmp_pack_*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// overBudget makes an error of an operation that ran out of budget say so, whatever go-git made of the reader's
// error on its way up.
func overBudget(err error, budgets ...*budget) error {
	for _, b := range budgets {
		if b.exceeded.Load() && !errors.Is(err, ErrFetchTooLarge) {
			return fmt.Errorf("%w (%w)", b.err(), err)
		}
	}
	return err
}
