package keyvaultemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the api-version the azsecrets client (v1.5) sends.
const APIVersion = "2026-04-01"

// APIVersions are the api-versions the emulator accepts.
var APIVersions = []string{"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", APIVersion}

// Defaults of Options.
const (
	DefaultVault    = "berth-test"
	DefaultTenantID = "00000000-0000-0000-0000-00000000beef"
	// Resource is the audience of Key Vault tokens, the resource its challenge names.
	Resource = "https://vault.azure.net"
	// DNSSuffix is the public cloud's vault domain.
	DNSSuffix = ".vault.azure.net"
)

// Limits of Key Vault secrets.
const (
	MaxNameLen    = 127
	MaxValueBytes = 25 * 1024
	MaxTags       = 15
)

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z-]+$`)

// Fault is an injected failure (Fail, FailOp).
type Fault string

// Fault kinds. They hit authorized requests only: the unauthenticated request of the challenge is always answered.
const (
	Throttle    Fault = "throttle"    // 429 Throttled with Retry-After
	ServerError Fault = "server"      // 500 InternalServerError
	Unavailable Fault = "unavailable" // 503 ServiceUnavailable
	Timeout     Fault = "timeout"     // no answer until the client gives up (its context ends) or Close
	Reset       Fault = "reset"       // the connection is closed without an answer
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Vault is the vault's name when the server is addressed by IP (URL); addressed as <name>.vault.azure.net
	// (VaultURL, through Client), the host names the vault. Default DefaultVault.
	Vault string
	// TenantID is the tenant the challenge names (default DefaultTenantID).
	TenantID string
	// Token, when set, is the only bearer token accepted; another answers 401. Empty accepts any non-empty token.
	Token string
	// RetryAfter is the Retry-After of throttled answers (whole seconds, rounded up; default 0, so a client uses its
	// own retry delay and tests do not wait).
	RetryAfter time.Duration
	// Now is the clock of the attributes' dates (default a fixed instant, so answers are reproducible).
	Now func() time.Time
}

// Request is one request received. Body is what the client sent: a SetSecret's value is in it.
type Request struct {
	Op         string // GetSecret, SetSecret, UpdateSecret, GetSecretVersions, DeleteSecret, PurgeDeletedSecret, RecoverDeletedSecret, Unknown
	Method     string
	Path       string
	Body       json.RawMessage
	Authorized bool // false for the challenge's unauthenticated request
}

// Server is the emulator: an HTTPS server answering for any number of vaults. Safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server
	pool *x509.CertPool
	done chan struct{}

	mu       sync.Mutex
	seq      int
	requests []Request
	faults   []fault
	denied   map[string]bool // op \x00 vault \x00 lower name
	vaults   map[string]*vault
}

type fault struct {
	op   string
	n    int
	kind Fault
}

type vault struct {
	secrets map[string]*secret // by lower-cased name
	deleted map[string]*secret
}

type secret struct {
	name        string
	versions    []*version // creation order; the last is the latest
	deletedDate time.Time
}

type version struct {
	id          string
	value       string
	contentType string
	tags        map[string]string
	enabled     bool
	nbf, exp    *int64
	created     time.Time
	updated     time.Time
}

// New starts an emulator on a loopback port, serving HTTPS with a certificate of its own for
// *.vault.azure.net, localhost and 127.0.0.1.
func New(opts Options) *Server {
	if opts.Vault == "" {
		opts.Vault = DefaultVault
	}
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.Now == nil {
		fixed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		opts.Now = func() time.Time { return fixed }
	}
	s := &Server{opts: opts, done: make(chan struct{}), denied: map[string]bool{}, vaults: map[string]*vault{}}
	cert, pool := certificate()
	s.pool = pool
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	return s
}

// certificate makes a self-signed serving certificate and the pool that trusts it.
func certificate() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keyvaultemu"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"*" + DNSSuffix, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// URL is the server's address (https://127.0.0.1:port): the vault Options.Vault. A client on it must set
// azsecrets.ClientOptions.DisableChallengeResourceVerification, since the challenge's resource (vault.azure.net)
// is not a parent domain of 127.0.0.1.
func (s *Server) URL() string { return s.srv.URL }

// VaultURL is the real address of a vault, https://<name>.vault.azure.net; only Client reaches it (here).
func (s *Server) VaultURL(name string) string { return "https://" + name + DNSSuffix }

// Client is an HTTP client that trusts the server's certificate and connects every address to the server, never
// to the network: give it to azcore.ClientOptions.Transport to use VaultURL with the challenge verified.
func (s *Server) Client() *http.Client {
	addr := s.srv.Listener.Addr().String()
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		Proxy: nil,
	}}
}

// Close releases held requests and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Fail makes the next n authorized requests fail with kind.
func (s *Server) Fail(n int, kind Fault) { s.FailOp("", n, kind) }

// FailOp makes the next n authorized requests of op (e.g. "GetSecret") fail with kind.
func (s *Server) FailOp(op string, n int, kind Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: op, n: n, kind: kind})
}

// Deny makes op ("" for every operation) on the named secret of vault answer 403 Forbidden (ForbiddenByRbac), as
// a caller without the role (or access policy) would get.
func (s *Server) Deny(vaultName, op, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[op+"\x00"+vaultName+"\x00"+strings.ToLower(name)] = true
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count is how many authorized requests of op ("" for all) were received.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Authorized && (op == "" || r.Op == op) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// SetSecret gives the named secret of vault a new enabled version holding value, out of band (as an operator or a
// rotation would), and returns the version's id.
func (s *Server) SetSecret(vaultName, name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addVersion(s.vault(vaultName), name, setParams{Value: &value}).id
}

// SetEnabled enables or disables a version of a secret ("" = the latest) out of band; it reports whether it exists.
func (s *Server) SetEnabled(vaultName, name, versionID string, enabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.vault(vaultName).secrets[strings.ToLower(name)]
	if sec == nil {
		return false
	}
	v := sec.find(versionID)
	if v != nil {
		v.enabled = enabled
		v.updated = s.opts.Now()
	}
	return v != nil
}

func (s *Server) vault(name string) *vault {
	v := s.vaults[name]
	if v == nil {
		v = &vault{secrets: map[string]*secret{}, deleted: map[string]*secret{}}
		s.vaults[name] = v
	}
	return v
}

func (sec *secret) find(id string) *version {
	if id == "" {
		return sec.versions[len(sec.versions)-1]
	}
	for _, v := range sec.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// kvError is a Key Vault error answer.
type kvError struct {
	status      int
	code, msg   string
	inner       string
	retryHeader bool
}

func kvErr(status int, code, format string, a ...any) *kvError {
	return &kvError{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

func (s *Server) writeErr(w http.ResponseWriter, e *kvError) {
	if e.retryHeader {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.opts.RetryAfter.Seconds()))))
	}
	body := map[string]any{"code": e.code, "message": e.msg}
	if e.inner != "" {
		body["innererror"] = map[string]string{"code": e.inner}
	}
	writeJSON(w, e.status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// route names the operation of a request: secrets/{name}[/{version}|/versions], deletedsecrets/{name}[/recover].
func route(method, path string) (op, name, ver string) {
	p := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(p) >= 2 && len(p) <= 3 && p[0] == "secrets":
		name = p[1]
		if len(p) == 3 {
			ver = p[2]
		}
		switch {
		case method == http.MethodGet && ver == "versions":
			return "GetSecretVersions", name, ""
		case method == http.MethodGet:
			return "GetSecret", name, ver
		case method == http.MethodPut && len(p) == 2:
			return "SetSecret", name, ""
		case method == http.MethodPatch:
			return "UpdateSecret", name, ver
		case method == http.MethodDelete && len(p) == 2:
			return "DeleteSecret", name, ""
		}
	case len(p) == 2 && p[0] == "deletedsecrets" && method == http.MethodDelete:
		return "PurgeDeletedSecret", p[1], ""
	case len(p) == 3 && p[0] == "deletedsecrets" && p[2] == "recover" && method == http.MethodPost:
		return "RecoverDeletedSecret", p[1], ""
	}
	return "Unknown", "", ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	op, name, ver := route(r.Method, r.URL.Path)
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	vaultName := s.opts.Vault
	if v, ok := strings.CutSuffix(host, DNSSuffix); ok {
		vaultName = v
	}
	base := "https://" + r.Host
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	authorized := bearer && strings.TrimSpace(tok) != "" && (s.opts.Token == "" || tok == s.opts.Token)

	s.mu.Lock()
	s.requests = append(s.requests, Request{Op: op, Method: r.Method, Path: r.URL.Path, Body: compact(body), Authorized: authorized})
	if !authorized {
		s.mu.Unlock()
		// The challenge, as Key Vault answers any request without a valid token.
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="%s"`, s.opts.TenantID, Resource))
		msg := "AKV10000: Request is missing a Bearer or PoP token."
		if bearer {
			msg = "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/" + s.opts.TenantID + "/."
		}
		s.writeErr(w, kvErr(http.StatusUnauthorized, "Unauthorized", "%s", msg))
		return
	}
	kind := s.takeFault(op)
	var out any
	var kerr *kvError
	status := http.StatusOK
	if kind == "" {
		out, status, kerr = s.dispatch(r, op, vaultName, base, name, ver, body)
	}
	s.mu.Unlock()

	switch kind {
	case "":
	case Throttle:
		kerr = &kvError{status: http.StatusTooManyRequests, code: "Throttled", retryHeader: true,
			msg: "Request was not processed because too many requests were received. Reason: A request was made more than the allowed requests per 10 seconds for the vault."}
	case ServerError:
		kerr = kvErr(http.StatusInternalServerError, "InternalServerError", "An unexpected error occurred.")
	case Unavailable:
		kerr = kvErr(http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable.")
	case Timeout:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		kerr = kvErr(http.StatusInternalServerError, "InternalServerError", "connection reset")
	}
	w.Header().Set("x-ms-keyvault-service-version", "1.9.0.0")
	w.Header().Set("x-ms-request-id", fmt.Sprintf("%08x-0000-4000-8000-%012x", len(s.requests), len(s.requests)))
	if kerr != nil {
		s.writeErr(w, kerr)
		return
	}
	if out == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, out)
}

func (s *Server) takeFault(op string) Fault {
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.op == "" || f.op == op) {
			f.n--
			kind := f.kind
			if f.n == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return kind
		}
	}
	return ""
}

func compact(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(slices.Clone(b))
}

func notFound(name, ver string) *kvError {
	id := name
	if ver != "" {
		id += "/" + ver
	}
	return kvErr(http.StatusNotFound, "SecretNotFound", "A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", id)
}

func (s *Server) dispatch(r *http.Request, op, vaultName, base, name, ver string, body []byte) (any, int, *kvError) {
	v := r.URL.Query().Get("api-version")
	switch {
	case v == "":
		return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The api-version query parameter is missing.")
	case !slices.Contains(APIVersions, v):
		return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The specified version (%s) is not recognized. Consider using the latest supported version (%s).", v, APIVersion)
	case op == "Unknown":
		return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The request URI is not valid: %s %s", r.Method, r.URL.Path)
	case len(name) > MaxNameLen || !nameRE.MatchString(name):
		return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: %s", name)
	}
	key := strings.ToLower(name)
	if s.denied[op+"\x00"+vaultName+"\x00"+key] || s.denied["\x00"+vaultName+"\x00"+key] {
		action := map[string]string{"GetSecret": "getSecret", "SetSecret": "setSecret", "UpdateSecret": "setSecret",
			"GetSecretVersions": "readMetadata", "DeleteSecret": "delete", "PurgeDeletedSecret": "purge", "RecoverDeletedSecret": "recover"}[op]
		e := kvErr(http.StatusForbidden, "Forbidden", "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=00000000-0000-0000-0000-000000000000;oid=00000000-0000-0000-0000-000000000000\r\nAction: 'Microsoft.KeyVault/vaults/secrets/%s/action'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/microsoft.keyvault/vaults/%s/secrets/%s'\r\nAssignment: (not found)\r\nVault: %s;location=westeurope\r\n", action, vaultName, key, vaultName)
		e.inner = "ForbiddenByRbac"
		return nil, 0, e
	}
	vt := s.vault(vaultName)
	sec := vt.secrets[key]
	switch op {
	case "SetSecret":
		var in setParams
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The request body is not valid JSON.")
		}
		if in.Value == nil {
			return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "Property 'value' is required.")
		}
		if len(*in.Value) > MaxValueBytes {
			return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "Secret value is too large: the maximum size is %d bytes.", MaxValueBytes)
		}
		if len(in.Tags) > MaxTags {
			return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "A secret can have at most %d tags.", MaxTags)
		}
		if vt.deleted[key] != nil {
			return nil, 0, kvErr(http.StatusConflict, "Conflict", "Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name)
		}
		nv := s.addVersion(vt, name, in)
		return bundle(base, vt.secrets[key], nv, true), http.StatusOK, nil
	case "PurgeDeletedSecret":
		if vt.deleted[key] == nil {
			return nil, 0, kvErr(http.StatusNotFound, "SecretNotFound", "Deleted Secret not found: %s", name)
		}
		delete(vt.deleted, key)
		return nil, http.StatusNoContent, nil
	case "RecoverDeletedSecret":
		d := vt.deleted[key]
		if d == nil {
			return nil, 0, kvErr(http.StatusNotFound, "SecretNotFound", "Deleted Secret not found: %s", name)
		}
		delete(vt.deleted, key)
		d.deletedDate = time.Time{}
		vt.secrets[key] = d
		return bundle(base, d, d.find(""), false), http.StatusOK, nil
	}
	if sec == nil {
		return nil, 0, notFound(name, ver)
	}
	switch op {
	case "GetSecret":
		v := sec.find(ver)
		if v == nil {
			return nil, 0, notFound(name, ver)
		}
		if !v.enabled {
			e := kvErr(http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.")
			e.inner = "SecretDisabled"
			return nil, 0, e
		}
		return bundle(base, sec, v, true), http.StatusOK, nil
	case "UpdateSecret":
		v := sec.find(ver)
		if v == nil {
			return nil, 0, notFound(name, ver)
		}
		var in setParams
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The request body is not valid JSON.")
		}
		if in.ContentType != nil {
			v.contentType = *in.ContentType
		}
		if in.Tags != nil {
			v.tags = in.Tags
		}
		if a := in.Attributes; a != nil {
			if a.Enabled != nil {
				v.enabled = *a.Enabled
			}
			if a.NotBefore != nil {
				v.nbf = a.NotBefore
			}
			if a.Expires != nil {
				v.exp = a.Expires
			}
		}
		v.updated = s.opts.Now()
		return bundle(base, sec, v, false), http.StatusOK, nil
	case "GetSecretVersions":
		// Key Vault lists versions in the order of their ids, not of their creation.
		vs := slices.Clone(sec.versions)
		slices.SortFunc(vs, func(a, b *version) int { return strings.Compare(a.id, b.id) })
		items := []any{}
		for _, v := range vs {
			items = append(items, bundle(base, sec, v, false))
		}
		return map[string]any{"value": items, "nextLink": nil}, http.StatusOK, nil
	case "DeleteSecret":
		delete(vt.secrets, key)
		sec.deletedDate = s.opts.Now()
		vt.deleted[key] = sec
		out := bundle(base, sec, sec.find(""), false)
		out["recoveryId"] = base + "/deletedsecrets/" + sec.name
		out["deletedDate"] = sec.deletedDate.Unix()
		out["scheduledPurgeDate"] = sec.deletedDate.Add(90 * 24 * time.Hour).Unix()
		return out, http.StatusOK, nil
	}
	return nil, 0, kvErr(http.StatusBadRequest, "BadParameter", "The request URI is not valid: %s %s", r.Method, r.URL.Path)
}

type setParams struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Tags        map[string]string `json:"tags"`
	Attributes  *struct {
		Enabled   *bool  `json:"enabled"`
		NotBefore *int64 `json:"nbf"`
		Expires   *int64 `json:"exp"`
	} `json:"attributes"`
}

// addVersion adds a version to the named secret (creating it), as SetSecret does: every call is a new version.
func (s *Server) addVersion(vt *vault, name string, in setParams) *version {
	key := strings.ToLower(name)
	sec := vt.secrets[key]
	if sec == nil {
		sec = &secret{name: name}
		vt.secrets[key] = sec
	}
	s.seq++
	sum := sha256.Sum256([]byte(name + "\x00" + strconv.Itoa(s.seq)))
	now := s.opts.Now()
	v := &version{id: hex.EncodeToString(sum[:16]), value: *in.Value, tags: in.Tags, enabled: true, created: now, updated: now}
	if in.ContentType != nil {
		v.contentType = *in.ContentType
	}
	if a := in.Attributes; a != nil {
		if a.Enabled != nil {
			v.enabled = *a.Enabled
		}
		v.nbf, v.exp = a.NotBefore, a.Expires
	}
	sec.versions = append(sec.versions, v)
	return v
}

// bundle is a SecretBundle (withValue) or a SecretItem / properties answer.
func bundle(base string, sec *secret, v *version, withValue bool) map[string]any {
	attrs := map[string]any{"enabled": v.enabled, "created": v.created.Unix(), "updated": v.updated.Unix(),
		"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
	if v.nbf != nil {
		attrs["nbf"] = *v.nbf
	}
	if v.exp != nil {
		attrs["exp"] = *v.exp
	}
	out := map[string]any{"id": base + "/secrets/" + url.PathEscape(sec.name) + "/" + v.id, "attributes": attrs}
	if withValue {
		out["value"] = v.value
	}
	if v.contentType != "" {
		out["contentType"] = v.contentType
	}
	if len(v.tags) > 0 {
		out["tags"] = v.tags
	}
	return out
}
