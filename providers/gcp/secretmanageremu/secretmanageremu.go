package secretmanageremu

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits of Secret Manager.
const (
	MaxPayloadBytes = 65536
	MaxSecretIDLen  = 255
)

// DefaultProject is the project of the examples; any project is accepted unless Options.Projects is set.
const DefaultProject = "berth-test"

var secretIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C is the checksum Secret Manager gives a payload (payload.data_crc32c).
func CRC32C(data []byte) int64 { return int64(crc32.Checksum(data, castagnoli)) }

// Fault is an injected failure (Fail, FailOp).
type Fault string

// Fault kinds.
const (
	Throttle    Fault = "throttle"    // RESOURCE_EXHAUSTED (HTTP 429), a per-minute quota
	ServerError Fault = "server"      // INTERNAL (HTTP 500)
	Unavailable Fault = "unavailable" // UNAVAILABLE (HTTP 503)
	Timeout     Fault = "timeout"     // no answer until the client gives up (its context ends) or Close
	Reset       Fault = "reset"       // REST: the connection is closed; gRPC: UNAVAILABLE
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Projects maps the project ids that exist to their numbers. Nil accepts every project id, numbered by a
	// hash of the id (ProjectNumber); a project outside a non-nil map answers PERMISSION_DENIED, as Google answers a
	// project the caller cannot see.
	Projects map[string]int64
	// Token, when set, is the only OAuth2 access token accepted (Authorization: Bearer, as HTTP header or gRPC
	// metadata); a request without it answers UNAUTHENTICATED. Empty accepts requests without credentials
	// (option.WithoutAuthentication).
	Token string
	// Now is the clock of create and destroy times (default a fixed instant, so answers are reproducible).
	Now func() time.Time
}

// Request is one call received, by either transport. Body is the request message: an AddSecretVersion's payload
// is in it.
type Request struct {
	Method    string // the RPC name, e.g. AccessSecretVersion
	Name      string // the resource named by the request (name, or parent for creations)
	Transport string // "rest" or "grpc"
	Body      proto.Message
}

// Server is the emulator, serving the same state over REST (URL) and gRPC (GRPCAddr). Safe for concurrent use.
type Server struct {
	opts Options
	web  *httptest.Server
	rpc  *grpc.Server
	lis  net.Listener
	done chan struct{}

	mu       sync.Mutex
	seq      int
	requests []Request
	faults   []fault
	denied   map[string]bool // method \x00 canonical secret name
	secrets  map[string]*secret
}

type fault struct {
	method string
	n      int
	kind   Fault
}

type secret struct {
	pb       *secretmanagerpb.Secret
	versions []*version // version N is versions[N-1]
}

type version struct {
	pb   *secretmanagerpb.SecretVersion
	data []byte // nil once destroyed
}

// New starts the emulator: REST on an httptest server, gRPC on another loopback port.
func New(opts Options) *Server {
	if opts.Now == nil {
		fixed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		opts.Now = func() time.Time { return fixed }
	}
	s := &Server{opts: opts, done: make(chan struct{}), denied: map[string]bool{}, secrets: map[string]*secret{}}
	s.web = httptest.NewServer(http.HandlerFunc(s.serveREST))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("secretmanageremu: %v", err))
	}
	s.lis = lis
	s.rpc = grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(s.rpc, &grpcService{s: s})
	go s.rpc.Serve(lis)
	return s
}

// URL is the REST endpoint (http://127.0.0.1:port) for option.WithEndpoint with secretmanager.NewRESTClient.
func (s *Server) URL() string { return s.web.URL }

// GRPCAddr is the gRPC endpoint (127.0.0.1:port) for option.WithEndpoint with secretmanager.NewClient and an
// insecure transport (option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))).
func (s *Server) GRPCAddr() string { return s.lis.Addr().String() }

// Close releases held requests and stops both servers.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.rpc.Stop()
	s.web.Close()
}

// Fail makes the next n requests (any method, either transport) fail with kind.
func (s *Server) Fail(n int, kind Fault) { s.FailOp("", n, kind) }

// FailOp makes the next n requests of method (e.g. "AccessSecretVersion") fail with kind.
func (s *Server) FailOp(method string, n int, kind Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, n: n, kind: kind})
}

// Deny makes method ("" for every method) on a secret (projects/{id or number}/secrets/{id}) and its versions
// answer PERMISSION_DENIED, as a caller without the IAM permission gets.
func (s *Server) Deny(method, secretName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, err := s.parse(secretName); err == nil {
		s.denied[method+"\x00"+r.secret()] = true
	}
}

// Requests returns the calls received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count is how many calls of method ("" for all) were received.
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if method == "" || r.Method == method {
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

// ProjectNumber is the number of a project id, as the names in answers carry it.
func (s *Server) ProjectNumber(id string) int64 {
	if n, ok := s.opts.Projects[id]; ok {
		return n
	}
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	sum := sha256.Sum256([]byte(id))
	return 100000000000 + int64(binary.BigEndian.Uint64(sum[:8])%900000000000)
}

// AddVersion adds an enabled version holding data to a secret (projects/{p}/secrets/{s}), creating the secret
// with automatic replication when it does not exist, out of band (as an operator or a rotation would). It returns
// the version's full name (projects/{number}/secrets/{s}/versions/{n}).
func (s *Server) AddVersion(secretName string, data []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.parse(secretName)
	if err != nil {
		return "", err
	}
	if s.secrets[r.secret()] == nil {
		s.newSecret(r, &secretmanagerpb.Secret{Replication: &secretmanagerpb.Replication{
			Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}}})
	}
	v, err := s.addVersion(&secretmanagerpb.AddSecretVersionRequest{Parent: r.secret(), Payload: &secretmanagerpb.SecretPayload{Data: data}})
	if err != nil {
		return "", err
	}
	return v.Name, nil
}

// SetState sets a version's state out of band (ENABLED, DISABLED or DESTROYED, which erases the payload); it
// reports whether the version exists.
func (s *Server) SetState(versionName string, state secretmanagerpb.SecretVersion_State) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.parse(versionName)
	if err != nil || r.version == "" {
		return false
	}
	sec := s.secrets[r.secret()]
	if sec == nil {
		return false
	}
	v := sec.find(r.version)
	if v == nil {
		return false
	}
	s.transition(v, state)
	return true
}

// ref is a parsed resource name.
type ref struct {
	projectAsGiven string
	number         int64
	secretID       string
	version        string // "" for a secret; "latest" or a number
}

func (r ref) project() string { return "projects/" + strconv.FormatInt(r.number, 10) }
func (r ref) secret() string  { return r.project() + "/secrets/" + r.secretID }
func (r ref) versionName(n int) string {
	return r.secret() + "/versions/" + strconv.Itoa(n)
}

// parse reads projects/{p}[/secrets/{s}[/versions/{v}]].
func (s *Server) parse(name string) (ref, error) {
	p := strings.Split(name, "/")
	if len(p) < 2 || len(p)%2 != 0 || p[0] != "projects" || p[1] == "" ||
		(len(p) >= 4 && (p[2] != "secrets" || p[3] == "")) || (len(p) == 6 && (p[4] != "versions" || p[5] == "")) || len(p) > 6 {
		return ref{}, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: %s", name)
	}
	r := ref{projectAsGiven: p[1]}
	if s.opts.Projects != nil {
		found := false
		for id, n := range s.opts.Projects {
			if id == p[1] || strconv.FormatInt(n, 10) == p[1] {
				r.number, found = n, true
			}
		}
		if !found {
			return ref{}, status.Errorf(codes.PermissionDenied, "Permission denied on resource project %s.", p[1])
		}
	} else {
		r.number = s.ProjectNumber(p[1])
	}
	if len(p) >= 4 {
		r.secretID = p[3]
	}
	if len(p) == 6 {
		r.version = p[5]
	}
	return r, nil
}

var permissions = map[string]string{
	"CreateSecret": "secretmanager.secrets.create", "GetSecret": "secretmanager.secrets.get",
	"DeleteSecret": "secretmanager.secrets.delete", "AddSecretVersion": "secretmanager.versions.add",
	"GetSecretVersion": "secretmanager.versions.get", "AccessSecretVersion": "secretmanager.versions.access",
	"DisableSecretVersion": "secretmanager.versions.disable", "EnableSecretVersion": "secretmanager.versions.enable",
	"DestroySecretVersion": "secretmanager.versions.destroy",
}

// authorize applies Deny to a request on name (s.mu held).
func (s *Server) authorize(method, name string, r ref) error {
	if s.denied[method+"\x00"+r.secret()] || s.denied["\x00"+r.secret()] {
		return status.Errorf(codes.PermissionDenied, "Permission '%s' denied for resource '%s' (or it may not exist).", permissions[method], name)
	}
	return nil
}

// begin records a call and takes its fault (s.mu held).
func (s *Server) begin(method, name, transport string, body proto.Message) Fault {
	s.requests = append(s.requests, Request{Method: method, Name: name, Transport: transport, Body: proto.Clone(body)})
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.method == "" || f.method == method) {
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

// faultErr is the answer of a fault other than Timeout and (REST) Reset.
func faultErr(kind Fault, r ref) error {
	switch kind {
	case Throttle:
		return status.Errorf(codes.ResourceExhausted, "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute per project' of service 'secretmanager.googleapis.com' for consumer 'project_number:%d'.", r.number)
	case ServerError:
		return status.Error(codes.Internal, "Internal error encountered.")
	default:
		return status.Error(codes.Unavailable, "The service is currently unavailable.")
	}
}

func (s *Server) unauthenticated() error {
	return status.Error(codes.Unauthenticated, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
}

func (s *Server) etag() string {
	s.seq++
	sum := sha256.Sum256([]byte(strconv.Itoa(s.seq)))
	return fmt.Sprintf("\"%x\"", sum[:7])
}

func (sec *secret) find(v string) *version {
	if v == "latest" {
		if len(sec.versions) == 0 {
			return nil
		}
		return sec.versions[len(sec.versions)-1]
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > len(sec.versions) {
		return nil
	}
	return sec.versions[n-1]
}

// call runs one method on the state (s.mu held).
func (s *Server) call(method string, req proto.Message) (proto.Message, error) {
	switch m := req.(type) {
	case *secretmanagerpb.CreateSecretRequest:
		return s.createSecret(m)
	case *secretmanagerpb.GetSecretRequest:
		sec, _, err := s.lookupSecret(method, m.Name)
		if err != nil {
			return nil, err
		}
		return proto.Clone(sec.pb), nil
	case *secretmanagerpb.DeleteSecretRequest:
		sec, r, err := s.lookupSecret(method, m.Name)
		if err != nil {
			return nil, err
		}
		if m.Etag != "" && m.Etag != sec.pb.Etag {
			return nil, status.Errorf(codes.FailedPrecondition, "The etag provided in the request (%s) does not match the current etag of the secret.", m.Etag)
		}
		delete(s.secrets, r.secret())
		return nil, nil
	case *secretmanagerpb.AddSecretVersionRequest:
		if _, _, err := s.lookupSecret(method, m.Parent); err != nil {
			return nil, err
		}
		return s.addVersion(m)
	case *secretmanagerpb.GetSecretVersionRequest:
		_, v, err := s.lookupVersion(method, m.Name)
		if err != nil {
			return nil, err
		}
		return proto.Clone(v.pb), nil
	case *secretmanagerpb.AccessSecretVersionRequest:
		_, v, err := s.lookupVersion(method, m.Name)
		if err != nil {
			return nil, err
		}
		if v.pb.State != secretmanagerpb.SecretVersion_ENABLED {
			return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in %s state.", v.pb.Name, v.pb.State)
		}
		return &secretmanagerpb.AccessSecretVersionResponse{Name: v.pb.Name,
			Payload: &secretmanagerpb.SecretPayload{Data: slices.Clone(v.data), DataCrc32C: proto.Int64(CRC32C(v.data))}}, nil
	case *secretmanagerpb.DisableSecretVersionRequest:
		return s.changeState(method, m.Name, m.Etag, secretmanagerpb.SecretVersion_DISABLED)
	case *secretmanagerpb.EnableSecretVersionRequest:
		return s.changeState(method, m.Name, m.Etag, secretmanagerpb.SecretVersion_ENABLED)
	case *secretmanagerpb.DestroySecretVersionRequest:
		return s.changeState(method, m.Name, m.Etag, secretmanagerpb.SecretVersion_DESTROYED)
	}
	return nil, status.Errorf(codes.Unimplemented, "method %s is not emulated", method)
}

func (s *Server) lookupSecret(method, name string) (*secret, ref, error) {
	r, err := s.parse(name)
	if err != nil {
		return nil, r, err
	}
	if r.secretID == "" || r.version != "" {
		return nil, r, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: %s", name)
	}
	if err := s.authorize(method, name, r); err != nil {
		return nil, r, err
	}
	sec := s.secrets[r.secret()]
	if sec == nil {
		return nil, r, status.Errorf(codes.NotFound, "Secret [%s] not found.", r.secret())
	}
	return sec, r, nil
}

func (s *Server) lookupVersion(method, name string) (*secret, *version, error) {
	r, err := s.parse(name)
	if err != nil {
		return nil, nil, err
	}
	if r.version == "" {
		return nil, nil, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: %s", name)
	}
	if err := s.authorize(method, name, r); err != nil {
		return nil, nil, err
	}
	sec := s.secrets[r.secret()]
	if sec == nil || (r.version == "latest" && len(sec.versions) == 0) {
		return nil, nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", r.secret())
	}
	v := sec.find(r.version)
	if v == nil {
		return nil, nil, status.Errorf(codes.NotFound, "Secret Version [%s/versions/%s] not found.", r.secret(), r.version)
	}
	return sec, v, nil
}

func (s *Server) createSecret(m *secretmanagerpb.CreateSecretRequest) (proto.Message, error) {
	r, err := s.parse(m.Parent)
	if err != nil {
		return nil, err
	}
	if r.secretID != "" {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: %s", m.Parent)
	}
	switch {
	case m.SecretId == "":
		return nil, status.Error(codes.InvalidArgument, "secret_id must be specified.")
	case len(m.SecretId) > MaxSecretIDLen || !secretIDRE.MatchString(m.SecretId):
		return nil, status.Errorf(codes.InvalidArgument, "Secret ID [%s] must match the regular expression [a-zA-Z0-9_-]{1,255}.", m.SecretId)
	case m.Secret == nil || m.Secret.Replication == nil || m.Secret.Replication.Replication == nil:
		return nil, status.Error(codes.InvalidArgument, "Secret.replication must be specified.")
	}
	r.secretID = m.SecretId
	if err := s.authorize("CreateSecret", m.Parent+"/secrets/"+m.SecretId, r); err != nil {
		return nil, err
	}
	if s.secrets[r.secret()] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "Secret [%s] already exists.", r.secret())
	}
	return proto.Clone(s.newSecret(r, m.Secret).pb), nil
}

func (s *Server) newSecret(r ref, in *secretmanagerpb.Secret) *secret {
	pb := proto.Clone(in).(*secretmanagerpb.Secret)
	pb.Name = r.secret()
	pb.CreateTime = timestamppb.New(s.opts.Now())
	pb.Etag = s.etag()
	sec := &secret{pb: pb}
	s.secrets[r.secret()] = sec
	return sec
}

func (s *Server) addVersion(m *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	r, err := s.parse(m.Parent)
	if err != nil {
		return nil, err
	}
	sec := s.secrets[r.secret()]
	if m.Payload == nil {
		return nil, status.Error(codes.InvalidArgument, "payload must be specified.")
	}
	data := m.Payload.Data
	if len(data) > MaxPayloadBytes {
		return nil, status.Errorf(codes.InvalidArgument, "Secret payload data must be no larger than %d bytes.", MaxPayloadBytes)
	}
	if c := m.Payload.DataCrc32C; c != nil && *c != CRC32C(data) {
		return nil, status.Error(codes.InvalidArgument, "Checksum mismatch: the data_crc32c of the payload does not match its data.")
	}
	pb := &secretmanagerpb.SecretVersion{Name: r.versionName(len(sec.versions) + 1), CreateTime: timestamppb.New(s.opts.Now()),
		State: secretmanagerpb.SecretVersion_ENABLED, Etag: s.etag(), ClientSpecifiedPayloadChecksum: m.Payload.DataCrc32C != nil,
		ReplicationStatus: &secretmanagerpb.ReplicationStatus{ReplicationStatus: &secretmanagerpb.ReplicationStatus_Automatic{
			Automatic: &secretmanagerpb.ReplicationStatus_AutomaticStatus{}}}}
	sec.versions = append(sec.versions, &version{pb: pb, data: slices.Clone(data)})
	return proto.Clone(pb).(*secretmanagerpb.SecretVersion), nil
}

func (s *Server) changeState(method, name, etag string, to secretmanagerpb.SecretVersion_State) (proto.Message, error) {
	_, v, err := s.lookupVersion(method, name)
	if err != nil {
		return nil, err
	}
	if etag != "" && etag != v.pb.Etag {
		return nil, status.Errorf(codes.FailedPrecondition, "The etag provided in the request (%s) does not match the current etag of the secret version.", etag)
	}
	if v.pb.State == secretmanagerpb.SecretVersion_DESTROYED && to != secretmanagerpb.SecretVersion_DESTROYED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in DESTROYED state.", v.pb.Name)
	}
	s.transition(v, to)
	return proto.Clone(v.pb), nil
}

func (s *Server) transition(v *version, to secretmanagerpb.SecretVersion_State) {
	if v.pb.State == to {
		return
	}
	v.pb.State = to
	v.pb.Etag = s.etag()
	if to == secretmanagerpb.SecretVersion_DESTROYED {
		v.data = nil
		v.pb.DestroyTime = timestamppb.New(s.opts.Now())
	}
}

// requestName is the resource a request names (name, or parent for creations).
func requestName(req proto.Message) string {
	switch m := req.(type) {
	case interface{ GetName() string }:
		return m.GetName()
	case interface{ GetParent() string }:
		return m.GetParent()
	}
	return ""
}

// handle is the transport-independent path of a call: record it, check the token, apply a fault or run it. A
// Timeout fault blocks until ctx ends or Close, then answers DeadlineExceeded (which nobody reads).
func (s *Server) handle(ctx context.Context, method, transport, token string, req proto.Message) (proto.Message, Fault, error) {
	s.mu.Lock()
	name := requestName(req)
	kind := s.begin(method, name, transport, req)
	if s.opts.Token != "" && token != s.opts.Token {
		s.mu.Unlock()
		return nil, "", s.unauthenticated()
	}
	if kind == "" {
		out, err := s.call(method, req)
		s.mu.Unlock()
		return out, "", err
	}
	r, _ := s.parse(name)
	s.mu.Unlock()
	switch kind {
	case Timeout:
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		return nil, kind, status.Error(codes.DeadlineExceeded, "Deadline exceeded.")
	case Reset:
		return nil, kind, status.Error(codes.Unavailable, "connection reset")
	}
	return nil, kind, faultErr(kind, r)
}
