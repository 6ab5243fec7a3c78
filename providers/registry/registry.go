package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of a Client.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultOS           = "linux"
	DefaultArchitecture = "amd64"
	// DefaultTokenLifetime is how long a token is kept when the token endpoint gives no expires_in (the
	// distribution specification's own default).
	DefaultTokenLifetime = 60 * time.Second

	maxManifest = 4 << 20
	maxConfig   = 8 << 20
	maxToken    = 1 << 20
	maxErrBody  = 64 << 10
)

// Media types of the manifests read.
const (
	MediaOCIIndex         = "application/vnd.oci.image.index.v1+json"
	MediaOCIManifest      = "application/vnd.oci.image.manifest.v1+json"
	MediaDockerList       = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaDockerManifest   = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerSchema1    = "application/vnd.docker.distribution.manifest.v1+json"
	mediaDockerSchema1JWS = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var accept = strings.Join([]string{MediaOCIIndex, MediaOCIManifest, MediaDockerList, MediaDockerManifest}, ", ")

// Sentinel kinds of errors (errors.Is).
var (
	ErrNotFound     = errors.New("not found in the registry")
	ErrUnauthorized = errors.New("not authorized by the registry")
	ErrInvalid      = errors.New("invalid")
)

// Error is a failed registry call. Kind is ErrNotFound, ErrUnauthorized, ErrInvalid or nil (transient).
type Error struct {
	Op     string // "manifest", "config blob", "token", "reference"
	Ref    string
	Status int    // HTTP status, 0 when no answer came
	Code   string // the registry's error code (MANIFEST_UNKNOWN), when it gave one
	Msg    string
	Kind   error
	Err    error // the underlying error (network, context)
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry: %s %s", e.Op, e.Ref)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, ": %s", e.Msg)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap gives the kind and the underlying error.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Permanent tells whether retrying cannot help: the error is of a kind (not found, unauthorized, invalid).
func Permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrInvalid)
}

// Reference is a parsed image reference.
type Reference struct {
	// Host is the registry's host[:port] as written ("docker.io" for a reference without one).
	Host       string
	Repository string
	Tag        string // "latest" when neither a tag nor a digest is given
	Digest     string // "sha256:..." when given
}

// String is the reference in full: host/repository[:tag][@digest].
func (r Reference) String() string {
	s := r.Host + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// apiHost is where the Registry API answers for the host.
func (r Reference) apiHost() string {
	if r.Host == "docker.io" || r.Host == "index.docker.io" {
		return "registry-1.docker.io"
	}
	return r.Host
}

// ref is the manifest reference: the digest when given, else the tag.
func (r Reference) ref() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

var (
	repoRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	hostRE   = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$`)
)

// ParseReference parses an image reference as docker does: [host[:port]/]repository[:tag][@sha256:digest]. The
// first part is a host when it has a dot or a colon or is "localhost"; without one the host is docker.io, and a
// one-part repository there is under library/. Only sha256 digests are read.
func ParseReference(s string) (Reference, error) {
	bad := func(why string) (Reference, error) {
		return Reference{}, &Error{Op: "reference", Ref: strconv.Quote(s), Msg: why, Kind: ErrInvalid}
	}
	var r Reference
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.Digest, rest = rest[i+1:], rest[:i]
		if !digestRE.MatchString(r.Digest) {
			return bad("the digest is not sha256:<64 hex digits>")
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		r.Tag, rest = rest[i+1:], rest[:i]
		if !tagRE.MatchString(r.Tag) {
			return bad("the tag has characters other than letters, digits, '_', '.' and '-', or is longer than 128")
		}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 && (strings.ContainsAny(rest[:i], ".:") || rest[:i] == "localhost") {
		r.Host, r.Repository = rest[:i], rest[i+1:]
		if !hostRE.MatchString(r.Host) {
			return bad("the registry host is not a host name with an optional port")
		}
	} else {
		r.Host, r.Repository = "docker.io", rest
	}
	if (r.Host == "docker.io" || r.Host == "index.docker.io") && !strings.Contains(r.Repository, "/") {
		r.Repository = "library/" + r.Repository
	}
	if !repoRE.MatchString(r.Repository) || len(r.Repository) > 255 {
		return bad("the repository must be lower-case letters, digits and separators ('.', '_', '__', '-', '/')")
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Config is the part of an image's configuration (the "config" object of the OCI image configuration) that
// decides how its container starts.
type Config struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
}

// Image is what Client.Config found.
type Image struct {
	Reference Reference
	// Digest is the digest of the platform's manifest; Index the digest of the index it was picked from (when the
	// reference named one).
	Digest, Index string
	Config        Config
}

// Client reads image configurations. Its zero value is ready to use; it is safe for concurrent use.
type Client struct {
	// HTTP sends the requests (nil: a client with http.DefaultTransport). Its own redirect policy applies; Go's
	// drops the Authorization header on a redirect to another host (a blob store).
	HTTP *http.Client
	// Timeout bounds one Config call (default DefaultTimeout), within the caller's context.
	Timeout time.Duration
	// PlainHTTP tells which registry hosts are spoken to over http:// (nil: loopback hosts only).
	PlainHTTP func(host string) bool
	// Credentials gives the user name and password (or identity token) for a registry host; empty for anonymous.
	Credentials func(host string) (user, password string)
	// OS and Architecture pick the manifest of an index (defaults DefaultOS, DefaultArchitecture).
	OS, Architecture string
	// Now is the clock for token lifetimes (nil: time.Now).
	Now func() time.Time

	mu     sync.Mutex
	tokens map[string]token // host + " " + scope
}

type token struct {
	value   string
	expires time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Loopback tells whether host (with an optional port) is localhost or a loopback address.
func Loopback(host string) bool {
	h := hostname(host)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// hostname is host without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(host, "[]")
}

func (c *Client) scheme(host string) string {
	plain := Loopback
	if c.PlainHTTP != nil {
		plain = c.PlainHTTP
	}
	if plain(host) {
		return "http"
	}
	return "https"
}

// Config reads the configuration of the image ref names: the manifest (through an index to the Client's platform),
// then the config blob, each checked against its digest.
func (c *Client) Config(ctx context.Context, ref string) (Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	img := Image{Reference: r}
	m, digest, err := c.manifest(ctx, r, r.ref())
	if err != nil {
		return Image{}, err
	}
	img.Digest = digest
	if m.isIndex() {
		img.Index = digest
		d, err := c.pick(r, m)
		if err != nil {
			return Image{}, err
		}
		if m, img.Digest, err = c.manifest(ctx, r, d); err != nil {
			return Image{}, err
		}
		if m.isIndex() {
			return Image{}, &Error{Op: "manifest", Ref: r.String(), Msg: "an index names another index for the platform", Kind: ErrInvalid}
		}
	}
	if m.Config.Digest == "" {
		return Image{}, &Error{Op: "manifest", Ref: r.String(), Msg: "the manifest names no config blob", Kind: ErrInvalid}
	}
	if !digestRE.MatchString(m.Config.Digest) {
		return Image{}, &Error{Op: "manifest", Ref: r.String(), Msg: "the config blob's digest is not sha256:<64 hex digits>", Kind: ErrInvalid}
	}
	body, err := c.get(ctx, r, "config blob", "/blobs/"+m.Config.Digest, "*/*", maxConfig)
	if err != nil {
		return Image{}, err
	}
	if got := sha(body); got != m.Config.Digest {
		return Image{}, &Error{Op: "config blob", Ref: r.String(), Msg: "the blob's content has digest " + got + ", not " + m.Config.Digest, Kind: ErrInvalid}
	}
	var cfg struct {
		Config Config `json:"config"`
	}
	if err := json.Unmarshal(body.data, &cfg); err != nil {
		return Image{}, &Error{Op: "config blob", Ref: r.String(), Msg: "not an image configuration", Kind: ErrInvalid, Err: err}
	}
	img.Config = cfg.Config
	return img, nil
}

// Digest is the digest of what ref names (an index, for a multi-platform image), for a plan to pin: the
// registry's Docker-Content-Digest answer to a HEAD of the manifest, or the sha256 of the manifest itself when the
// registry gives none. A reference by digest is checked to exist and given back.
func (c *Client) Digest(ctx context.Context, ref string) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	head, err := c.fetch(ctx, r, "manifest", http.MethodHead, "/manifests/"+r.ref(), accept, 0)
	if err != nil {
		return "", err
	}
	switch {
	case r.Digest != "":
		return r.Digest, nil
	case digestRE.MatchString(head.digest):
		return head.digest, nil
	}
	_, digest, err := c.manifest(ctx, r, r.ref())
	return digest, err
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform,omitempty"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Manifests []descriptor `json:"manifests"`
}

func (m manifest) isIndex() bool {
	return m.MediaType == MediaOCIIndex || m.MediaType == MediaDockerList
}

// pick is the digest of the index's manifest for the Client's platform.
func (c *Client) pick(r Reference, m manifest) (string, error) {
	os, arch := c.OS, c.Architecture
	if os == "" {
		os = DefaultOS
	}
	if arch == "" {
		arch = DefaultArchitecture
	}
	var have []string
	for _, d := range m.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS == os && d.Platform.Architecture == arch && digestRE.MatchString(d.Digest) {
			return d.Digest, nil
		}
		have = append(have, d.Platform.OS+"/"+d.Platform.Architecture)
	}
	return "", &Error{Op: "manifest", Ref: r.String(), Kind: ErrNotFound,
		Msg: fmt.Sprintf("the index has no %s/%s image (it has: %s)", os, arch, strings.Join(have, ", "))}
}

type payload struct {
	data        []byte
	contentType string
	digest      string // Docker-Content-Digest
}

func sha(p payload) string {
	sum := sha256.Sum256(p.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// manifest fetches the manifest ref (a tag or a digest) and gives it with its digest.
func (c *Client) manifest(ctx context.Context, r Reference, ref string) (manifest, string, error) {
	body, err := c.get(ctx, r, "manifest", "/manifests/"+ref, accept, maxManifest)
	if err != nil {
		return manifest{}, "", err
	}
	digest := sha(body)
	if strings.HasPrefix(ref, "sha256:") && digest != ref {
		return manifest{}, "", &Error{Op: "manifest", Ref: r.String(), Msg: "the manifest's content has digest " + digest + ", not " + ref, Kind: ErrInvalid}
	}
	var m manifest
	if err := json.Unmarshal(body.data, &m); err != nil {
		return manifest{}, "", &Error{Op: "manifest", Ref: r.String(), Msg: "not a JSON manifest", Kind: ErrInvalid, Err: err}
	}
	mt := body.contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	switch mt {
	case MediaOCIIndex, MediaDockerList, MediaOCIManifest, MediaDockerManifest:
		m.MediaType = mt
	case mediaDockerSchema1, mediaDockerSchema1JWS:
		return manifest{}, "", &Error{Op: "manifest", Ref: r.String(), Msg: "a Docker schema 1 manifest (deprecated): push the image again with a current client", Kind: ErrInvalid}
	default: // a registry that answers application/json: the manifest's own mediaType, or its shape
		if m.MediaType == "" {
			if len(m.Manifests) > 0 {
				m.MediaType = MediaOCIIndex
			} else {
				m.MediaType = MediaOCIManifest
			}
		}
		switch m.MediaType {
		case MediaOCIIndex, MediaDockerList, MediaOCIManifest, MediaDockerManifest:
		default:
			return manifest{}, "", &Error{Op: "manifest", Ref: r.String(), Msg: "a manifest of media type " + strconv.Quote(m.MediaType) + ", not an image", Kind: ErrInvalid}
		}
	}
	return m, digest, nil
}

// get runs GET /v2/<repository><path> with the registry's authentication and reads at most limit bytes.
func (c *Client) get(ctx context.Context, r Reference, op, path, acceptType string, limit int64) (payload, error) {
	return c.fetch(ctx, r, op, http.MethodGet, path, acceptType, limit)
}

// fetch runs method (GET, or HEAD: no body is read) on /v2/<repository><path>.
func (c *Client) fetch(ctx context.Context, r Reference, op, method, path, acceptType string, limit int64) (payload, error) {
	host := r.apiHost()
	u := c.scheme(host) + "://" + host + "/v2/" + r.Repository + path
	scope := "repository:" + r.Repository + ":pull"
	fail := func(status int, err error) (payload, error) {
		return payload{}, &Error{Op: op, Ref: r.String(), Status: status, Err: err}
	}
	auth := c.cached(host, scope)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return fail(0, err)
		}
		req.Header.Set("Accept", acceptType)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.httpClient().Do(req)
		if err != nil {
			return fail(0, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			challenge := resp.Header.Get("WWW-Authenticate")
			drain(resp)
			if auth, err = c.authorize(ctx, r, host, scope, challenge); err != nil {
				return payload{}, err
			}
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return payload{}, c.statusError(op, r, resp)
		}
		if method == http.MethodHead {
			return payload{contentType: resp.Header.Get("Content-Type"), digest: resp.Header.Get("Docker-Content-Digest")}, nil
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fail(resp.StatusCode, err)
		}
		if int64(len(data)) > limit {
			return payload{}, &Error{Op: op, Ref: r.String(), Msg: fmt.Sprintf("larger than %d bytes", limit), Kind: ErrInvalid}
		}
		return payload{data: data, contentType: resp.Header.Get("Content-Type"), digest: resp.Header.Get("Docker-Content-Digest")}, nil
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrBody))
	resp.Body.Close()
}

// statusError reads the registry's error answer ({"errors":[{"code","message"}]}) into an *Error of its kind.
func (c *Client) statusError(op string, r Reference, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	e := &Error{Op: op, Ref: r.String(), Status: resp.StatusCode}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		e.Code, e.Msg = body.Errors[0].Code, oneLine(body.Errors[0].Message)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound, e.Code == "MANIFEST_UNKNOWN", e.Code == "NAME_UNKNOWN", e.Code == "BLOB_UNKNOWN":
		e.Kind = ErrNotFound
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden, e.Code == "UNAUTHORIZED", e.Code == "DENIED":
		e.Kind = ErrUnauthorized
		if e.Msg == "" {
			e.Msg = "anonymous access refused"
			if c.Credentials != nil {
				if u, _ := c.Credentials(r.Host); u != "" {
					e.Msg = "the credentials for " + r.Host + " were refused"
				}
			}
		}
	case e.Code == "NAME_INVALID", e.Code == "TAG_INVALID", e.Code == "MANIFEST_INVALID", e.Code == "DIGEST_INVALID":
		e.Kind = ErrInvalid
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
	case resp.StatusCode >= 400:
		e.Kind = ErrInvalid
	}
	return e
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func (c *Client) cached(host, scope string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[host+" "+scope]
	if !ok || !c.now().Before(t.expires) {
		return ""
	}
	return "Bearer " + t.value
}

func (c *Client) credentials(host string) (string, string) {
	if c.Credentials == nil {
		return "", ""
	}
	return c.Credentials(host)
}

// authorize answers a 401's challenge: the Authorization header to repeat the request with.
func (c *Client) authorize(ctx context.Context, r Reference, host, scope, challenge string) (string, error) {
	unauthorized := func(msg string) error {
		return &Error{Op: "token", Ref: r.String(), Status: http.StatusUnauthorized, Msg: msg, Kind: ErrUnauthorized}
	}
	kind, params := parseChallenge(challenge)
	user, pass := c.credentials(r.Host)
	switch kind {
	case "basic":
		if user == "" {
			return "", unauthorized("the registry asks for basic credentials and none are given for " + r.Host)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		req.SetBasicAuth(user, pass)
		return req.Header.Get("Authorization"), nil
	case "bearer":
	default:
		return "", unauthorized("the registry's challenge " + strconv.Quote(oneLine(challenge)) + " is neither Bearer nor Basic")
	}
	realm, err := url.Parse(params["realm"])
	if err != nil || params["realm"] == "" || (realm.Scheme != "https" && realm.Scheme != "http") {
		return "", unauthorized("the registry's Bearer challenge names no http(s) realm")
	}
	if s := params["scope"]; s != "" {
		scope = s
	}
	q := realm.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", &Error{Op: "token", Ref: r.String(), Err: err}
	}
	// Credentials go only where they cannot be read on the way (HTTPS, loopback), or to the registry's own host.
	if user != "" && (realm.Scheme == "https" || Loopback(realm.Host) || realm.Hostname() == hostname(host)) {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return "", &Error{Op: "token", Ref: r.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := c.statusError("token", r, resp).(*Error)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			e.Kind = ErrUnauthorized
		}
		return "", e
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxToken+1))
	if err != nil {
		return "", &Error{Op: "token", Ref: r.String(), Status: resp.StatusCode, Err: err}
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if len(data) > maxToken || json.Unmarshal(data, &body) != nil {
		return "", &Error{Op: "token", Ref: r.String(), Status: resp.StatusCode, Msg: "the token endpoint's answer is not a token", Kind: ErrInvalid}
	}
	tok := body.Token
	if tok == "" {
		tok = body.AccessToken
	}
	if tok == "" {
		return "", &Error{Op: "token", Ref: r.String(), Status: resp.StatusCode, Msg: "the token endpoint gave no token", Kind: ErrInvalid}
	}
	life := DefaultTokenLifetime
	if body.ExpiresIn > 0 {
		life = time.Duration(body.ExpiresIn) * time.Second
	}
	c.mu.Lock()
	if c.tokens == nil {
		c.tokens = map[string]token{}
	}
	// Kept under the scope the request was made for, so the next call finds it; a little before it expires.
	c.tokens[host+" repository:"+r.Repository+":pull"] = token{value: tok, expires: c.now().Add(life * 9 / 10)}
	c.mu.Unlock()
	return "Bearer " + tok, nil
}

// parseChallenge reads a WWW-Authenticate value: its scheme (lower case) and parameters (quoted strings may hold
// commas: scope="repository:a:pull,push").
func parseChallenge(h string) (string, map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimSpace(rest[eq+1:])
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val, rest = b.String(), rest[min(i+1, len(rest)):]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		params[key] = val
		rest = strings.TrimLeft(strings.TrimSpace(rest), ",")
		rest = strings.TrimSpace(rest)
	}
	return strings.ToLower(scheme), params
}
