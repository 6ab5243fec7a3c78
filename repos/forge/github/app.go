package github

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema/redact"
)

// App authenticates as a GitHub App installation: berth mints a JWT with the app's private key, trades it for an
// installation token (POST /app/installations/{id}/access_tokens) and uses that token until RefreshBefore ahead of
// its expiry, or until GitHub answers 401.
type App struct {
	// ID is the app's id (App settings → About → App ID), the JWT's issuer.
	ID int64
	// InstallationID is the installation on the repository's owner (the number in
	// https://github.com/settings/installations/{id}).
	InstallationID int64
	// PrivateKey is the app's RSA private key, PEM (PKCS#1 "RSA PRIVATE KEY" as GitHub generates it, or PKCS#8).
	// It is registered with schema/redact.
	PrivateKey []byte
}

// GitHub App token timings.
const (
	// JWTBackdate is how far before now a JWT says it was issued (GitHub's advice against clock drift).
	JWTBackdate = 60 * time.Second
	// JWTLifetime is how long after now a JWT expires (GitHub refuses more than 10 minutes).
	JWTLifetime = 9 * time.Minute
	// RefreshBefore is how long before its expires_at an installation token is replaced (half-way through its
	// life for a token that lives less than twice as long; GitHub's live an hour).
	RefreshBefore = 5 * time.Minute
	// maxTokenAnswer bounds the token endpoint's answer.
	maxTokenAnswer = 64 << 10
)

// installation mints and keeps an installation token. It is safe for concurrent use: one mint at a time, and
// callers waiting on it use its result.
type installation struct {
	app    App
	key    *rsa.PrivateKey
	url    string // {base}app/installations/{id}/access_tokens
	appURL string // {base}app
	now    func() time.Time
	next   http.RoundTripper // the observed transport, without authentication

	lock    chan struct{} // held (one slot) while the token is read or minted; waiting honours the context
	token   string
	refresh time.Time // when the token is replaced: RefreshBefore its expiry, or half-way for a shorter life
}

func newInstallation(a App, base string, now func() time.Time, next http.RoundTripper) (*installation, error) {
	if a.ID <= 0 || a.InstallationID <= 0 {
		return nil, errors.New("github: a GitHub App needs its app id and installation id")
	}
	if len(a.PrivateKey) == 0 {
		return nil, errors.New("github: a GitHub App needs its private key")
	}
	redact.RegisterPEM(string(a.PrivateKey))
	key, err := jwt.ParseRSAPrivateKeyFromPEM(a.PrivateKey)
	if err != nil {
		// The parser's words name the PEM type or ASN.1 trouble, never the key's content.
		return nil, &forge.Error{Forge: "github", Op: "read app private key",
			Err: fmt.Errorf("the GitHub App private key is not an RSA key in PEM: %w", redact.Error(err))}
	}
	a.PrivateKey = nil // parsed; the bytes are not kept
	return &installation{app: a, key: key, url: fmt.Sprintf("%sapp/installations/%d/access_tokens", base,
		a.InstallationID), appURL: base + "app", now: now, next: next, lock: make(chan struct{}, 1)}, nil
}

// login is the login the installation's comments are written by, "<app slug>[bot]", read with GET /app and the
// app's JWT: GitHub refuses GET /user to an installation token ("Resource not accessible by integration").
func (in *installation) login(ctx context.Context) (string, error) {
	const op = "get app"
	signed, err := in.jwt()
	if err != nil {
		return "", &forge.Error{Forge: "github", Op: op, Err: fmt.Errorf("sign the app JWT: %w", err)}
	}
	redact.Register(signed)
	req, err := http.NewRequestWithContext(forge.WithOp(ctx, forge.OpSelf), http.MethodGet, in.appURL, nil)
	if err != nil {
		return "", &forge.Error{Forge: "github", Op: op, Err: redact.Error(err)}
	}
	req.Header.Set("Authorization", "Bearer "+signed)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "berth")
	resp, err := in.next.RoundTrip(req)
	if err != nil {
		return "", &forge.Error{Forge: "github", Op: op, Temporary: !errors.Is(err, context.Canceled), Err: redact.Error(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer+1))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", &forge.Error{Forge: "github", Op: op, Status: resp.StatusCode,
			Temporary: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
			Message:   redact.Body(b, quoteLimit), Err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	var out struct {
		Slug string `json:"slug"`
	}
	if json.Unmarshal(b, &out) != nil || !namePart.MatchString(out.Slug) {
		return "", &forge.Error{Forge: "github", Op: op, Status: resp.StatusCode, Temporary: true,
			Err: errors.New("the answer has no app slug")}
	}
	return out.Slug + "[bot]", nil
}

// jwt is a fresh app JWT: RS256, iat now-60s, exp now+9min, iss the app id.
func (in *installation) jwt() (string, error) {
	now := in.now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now.Add(-JWTBackdate)),
		ExpiresAt: jwt.NewNumericDate(now.Add(JWTLifetime)),
		Issuer:    strconv.FormatInt(in.app.ID, 10),
	})
	return t.SignedString(in.key)
}

// current is the token to use: the kept one while it has more than RefreshBefore left, else a new one. stale, when
// set, is a token the host refused: it is replaced unless another caller replaced it already.
func (in *installation) current(ctx context.Context, stale string) (string, error) {
	select {
	case in.lock <- struct{}{}:
		defer func() { <-in.lock }()
	case <-ctx.Done():
		return "", &forge.Error{Forge: "github", Op: "mint installation token",
			Temporary: !errors.Is(ctx.Err(), context.Canceled), Message: "gave up waiting for the token",
			Err: ctx.Err()}
	}
	now := in.now()
	if in.token != "" && in.token != stale && now.Before(in.refresh) {
		return in.token, nil
	}
	tok, exp, err := in.mint(ctx)
	if err != nil {
		return "", err
	}
	in.token, in.refresh = tok, exp.Add(-min(RefreshBefore, exp.Sub(now)/2))
	return tok, nil
}

// mint trades a fresh JWT for an installation token.
func (in *installation) mint(ctx context.Context) (string, time.Time, error) {
	const op = "mint installation token"
	fail := func(status int, temporary bool, msg string, err error) (string, time.Time, error) {
		return "", time.Time{}, &forge.Error{Forge: "github", Op: op, Status: status, Temporary: temporary,
			Message: msg, Err: err}
	}
	signed, err := in.jwt()
	if err != nil {
		return fail(0, false, "", fmt.Errorf("sign the app JWT: %w", err))
	}
	redact.Register(signed) // a credential for 9 minutes: masked should anything echo it
	req, err := http.NewRequestWithContext(forge.WithOp(ctx, forge.OpToken), http.MethodPost, in.url, nil)
	if err != nil {
		return fail(0, false, "", redact.Error(err))
	}
	req.Header.Set("Authorization", "Bearer "+signed)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "berth")
	resp, err := in.next.RoundTrip(req)
	if err != nil {
		var ne net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		msg := ""
		if timeout {
			msg = "timed out"
		}
		return fail(0, !errors.Is(err, context.Canceled), msg, redact.Error(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer+1))
	if err != nil {
		return fail(resp.StatusCode, true, "", fmt.Errorf("read the answer: %w", redact.Error(err)))
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		msg := string(b)
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		msg = redact.Body([]byte(msg), quoteLimit)
		temporary := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		if resp.StatusCode == http.StatusUnauthorized {
			msg = "the GitHub App's JWT was refused (wrong key, app id or clock): " + msg
		}
		if resp.StatusCode == http.StatusNotFound {
			// Not forge.ErrNotFound: that would read as "the pull request does not exist" to the caller of Get.
			msg = fmt.Sprintf("no installation %d of app %d: %s", in.app.InstallationID, in.app.ID, msg)
		}
		return fail(resp.StatusCode, temporary, msg, fmt.Errorf("HTTP %d", resp.StatusCode))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if len(b) > maxTokenAnswer || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) ||
		json.NewDecoder(bytes.NewReader(b)).Decode(&out) != nil || out.Token == "" || out.ExpiresAt.IsZero() {
		// The answer may hold the token: it is not quoted.
		return fail(resp.StatusCode, true, "the answer is not an installation token",
			errors.New("not an installation token"))
	}
	redact.Register(out.Token)
	return out.Token, out.ExpiresAt, nil
}

// appAuth authenticates each request with the installation token, and on a 401 replaces the token and sends the
// request once more (a token revoked or expired early).
type appAuth struct {
	in   *installation
	next http.RoundTripper
}

func (t *appAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.in.current(req.Context(), "")
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(authorized(req, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // the body cannot be sent again
	}
	again := req
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		again = req.Clone(req.Context())
		again.Body = body
	}
	tok2, err := t.in.current(req.Context(), tok)
	if err != nil {
		return resp, nil // keep GitHub's own 401 as the answer
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return t.next.RoundTrip(authorized(again, tok2))
}

func authorized(req *http.Request, tok string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}
