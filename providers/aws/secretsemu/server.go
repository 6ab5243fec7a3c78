package secretsemu

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Target prefixes of the two JSON 1.1 services (X-Amz-Target: <prefix><Op>).
const (
	SecretsManagerPrefix = "secretsmanager."
	SSMPrefix            = "AmazonSSM."
)

// Service names, as they appear in Request.Service and in the SigV4 credential scope.
const (
	SecretsManager = "secretsmanager"
	SSM            = "ssm"
)

// Defaults of Options.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"
)

// Fault is an injected failure (Fail, FailOp).
type Fault string

// Fault kinds.
const (
	// Throttle answers 400 ThrottlingException "Rate exceeded" (the SDK retries it).
	Throttle Fault = "throttle"
	// ServerError answers 500 InternalServiceError (Secrets Manager) or InternalServerError (SSM).
	ServerError Fault = "server"
	// Unavailable answers 503 ServiceUnavailable.
	Unavailable Fault = "unavailable"
	// Timeout never answers: the request is held until the client gives up (its context ends) or Close.
	Timeout Fault = "timeout"
	// Reset closes the connection without an answer.
	Reset Fault = "reset"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Region and Account make the ARNs and the SigV4 scope the server accepts (DefaultRegion, DefaultAccount).
	Region, Account string
	// AccessKeyID, when set, is the only access key accepted: a request signed with another answers 400
	// UnrecognizedClientException, as AWS answers an unknown key. Empty accepts any key.
	AccessKeyID string
	// Now is the clock of the dates in answers (default a fixed instant, so answers are reproducible).
	Now func() time.Time
}

// Request is one call received. Body is what the client sent: the values of CreateSecret, PutSecretValue and
// PutParameter are in it, so it is for assertions, never for golden files of a provider.
type Request struct {
	Service string // SecretsManager or SSM
	Op      string // e.g. GetSecretValue
	Body    json.RawMessage
}

// Server is a running emulator of both services; give its URL to both SDK clients. Safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server
	done chan struct{} // closed by Close: releases held (Timeout) requests

	mu       sync.Mutex
	requests []Request
	faults   []fault
	denied   map[string]bool // op + "\x00" + resource name; op "" = every op
	broken   map[string]bool // resource names whose KMS key cannot decrypt
	seq      int
	secrets  map[string]*secret // by name
	params   map[string]*parameter
}

type fault struct {
	op   string // "" = any
	n    int
	kind Fault
}

// New starts an emulator on a loopback port.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Account == "" {
		opts.Account = DefaultAccount
	}
	if opts.Now == nil {
		fixed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		opts.Now = func() time.Time { return fixed }
	}
	s := &Server{opts: opts, done: make(chan struct{}), denied: map[string]bool{}, broken: map[string]bool{},
		secrets: map[string]*secret{}, params: map[string]*parameter{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to give the SDK clients (BaseEndpoint of secretsmanager.Options and ssm.Options).
func (s *Server) URL() string { return s.srv.URL }

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

// Fail makes the next n requests (any operation of either service) fail with kind.
func (s *Server) Fail(n int, kind Fault) { s.FailOp("", n, kind) }

// FailOp makes the next n requests of operation op (e.g. "GetSecretValue") fail with kind.
func (s *Server) FailOp(op string, n int, kind Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: op, n: n, kind: kind})
}

// Deny makes op (e.g. "GetSecretValue"; "" for every operation) on the named secret or parameter answer
// AccessDeniedException, as an IAM policy that does not allow it would. name is the secret's or the parameter's
// name, not an ARN.
func (s *Server) Deny(op, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[op+"\x00"+name] = true
}

// BreakKey makes the KMS key of the named secret or SecureString parameter unusable (disabled, or its key policy
// no longer lets the caller decrypt): GetSecretValue answers DecryptionFailure, GetParameter WithDecryption
// answers InvalidKeyId. Metadata reads (DescribeSecret, GetParameter without decryption) still work.
func (s *Server) BreakKey(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken[name] = true
}

// Requests returns the calls received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count is how many calls of op (e.g. "GetSecretValue"; "" for all) were received.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if op == "" || r.Op == op {
			n++
		}
	}
	return n
}

// ResetRequests forgets the calls received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// apiError is an error answer of either service.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func errf(typ, format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, typ, fmt.Sprintf(format, a...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	service, op := "", ""
	if o, ok := strings.CutPrefix(target, SecretsManagerPrefix); ok {
		service, op = SecretsManager, o
	} else if o, ok := strings.CutPrefix(target, SSMPrefix); ok {
		service, op = SSM, o
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeErr(w, &apiError{http.StatusNotFound, "UnknownOperationException", "only POST / is served"})
		return
	case service == "":
		writeErr(w, errf("UnknownOperationException", "unknown X-Amz-Target %q", target))
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		writeErr(w, errf("SerializationException", "expected Content-Type application/x-amz-json-1.1"))
		return
	}
	if err := s.checkAuth(r.Header.Get("Authorization"), service); err != nil {
		writeErr(w, err)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Service: service, Op: op, Body: json.RawMessage(slices.Clone(body))})
	reqID := fmt.Sprintf("%08x-0000-4000-8000-%012x", len(s.requests), len(s.requests))
	kind := s.takeFault(op)
	var out any
	var err *apiError
	if kind == "" {
		if len(bytes.TrimSpace(body)) == 0 {
			body = []byte("{}")
		}
		if service == SecretsManager {
			out, err = s.secretsManager(op, body)
		} else {
			out, err = s.ssm(op, body)
		}
	}
	s.mu.Unlock()

	switch kind {
	case "":
	case Throttle:
		err = errf("ThrottlingException", "Rate exceeded")
	case ServerError:
		if service == SSM {
			err = &apiError{http.StatusInternalServerError, "InternalServerError", "An error occurred on the server side."}
		} else {
			err = &apiError{http.StatusInternalServerError, "InternalServiceError", "An error occurred on the server side."}
		}
	case Unavailable:
		err = &apiError{http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unavailable. Please try again later."}
	case Timeout:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		err = &apiError{http.StatusInternalServerError, "InternalFailure", "connection reset"}
	}
	w.Header().Set("X-Amzn-RequestId", reqID)
	if err != nil {
		writeErr(w, err)
		return
	}
	b, jerr := json.Marshal(out)
	if jerr != nil {
		writeErr(w, &apiError{http.StatusInternalServerError, "InternalFailure", jerr.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}

// checkAuth checks what AWS checks of a SigV4 Authorization header before the signature itself: its presence, the
// access key (Options.AccessKeyID) and the credential scope's region and service. The signature is not verified.
func (s *Server) checkAuth(h, service string) *apiError {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return errf("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	var cred string
	for _, part := range strings.Split(rest, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
			cred = v
		}
	}
	scope := strings.Split(cred, "/") // AKID/date/region/service/aws4_request
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return errf("IncompleteSignatureException", "Authorization header requires 'Credential' parameter.")
	}
	if s.opts.AccessKeyID != "" && scope[0] != s.opts.AccessKeyID {
		return errf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if scope[2] != s.opts.Region {
		return errf("InvalidSignatureException", "Credential should be scoped to a valid region. ")
	}
	if scope[3] != service {
		return errf("InvalidSignatureException", "Credential should be scoped to correct service: '%s'. ", service)
	}
	return nil
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

// writeErr answers as both services do: the error type in X-Amzn-ErrorType and in the body's __type, the text in
// Message.
func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]string{"__type": e.typ, "Message": e.msg})
	w.Write(b)
}

func decode(body []byte, v any) *apiError {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return errf("SerializationException", "Start of structure or map found where not expected")
	}
	return nil
}

func (s *Server) isDenied(op, name string) bool {
	return s.denied[op+"\x00"+name] || s.denied["\x00"+name]
}

func (s *Server) accessDenied(service, op, resource string) *apiError {
	return errf("AccessDeniedException", "User: arn:aws:iam::%s:user/berth-test is not authorized to perform: %s:%s on resource: %s because no identity-based policy allows the %s:%s action",
		s.opts.Account, service, op, resource, service, op)
}

// epoch is an AWS JSON timestamp: seconds since the epoch, with milliseconds.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// uuid is a random version 4 UUID, as the SDK's idempotency tokens are.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
