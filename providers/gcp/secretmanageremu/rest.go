package secretmanageremu

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// httpStatus is the HTTP status Google's REST front end gives a canonical code.
var httpStatus = map[codes.Code]int{
	codes.InvalidArgument: 400, codes.FailedPrecondition: 400, codes.OutOfRange: 400,
	codes.Unauthenticated: 401, codes.PermissionDenied: 403, codes.NotFound: 404,
	codes.AlreadyExists: 409, codes.Aborted: 409, codes.ResourceExhausted: 429, codes.Canceled: 499,
	codes.Internal: 500, codes.Unknown: 500, codes.DataLoss: 500, codes.Unimplemented: 501,
	codes.Unavailable: 503, codes.DeadlineExceeded: 504,
}

// restRoute maps a REST request to its RPC and request message, as the HTTP rules of the service define them.
func restRoute(r *http.Request, body []byte) (string, proto.Message, error) {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		return "", nil, status.Errorf(codes.NotFound, "The requested URL %s was not found on this server.", r.URL.Path)
	}
	name, verb, _ := strings.Cut(path, ":")
	parts := strings.Split(name, "/")
	isVersion := len(parts) == 6 && parts[4] == "versions"
	isSecret := len(parts) == 4 && parts[2] == "secrets"
	decode := func(m proto.Message) error {
		if len(body) == 0 {
			return nil
		}
		if err := (protojson.UnmarshalOptions{}).Unmarshal(body, m); err != nil {
			return status.Errorf(codes.InvalidArgument, "Invalid JSON payload received. %v", err)
		}
		return nil
	}
	var method string
	var req proto.Message
	switch {
	case r.Method == http.MethodGet && isVersion && verb == "access":
		method, req = "AccessSecretVersion", &secretmanagerpb.AccessSecretVersionRequest{Name: name}
	case r.Method == http.MethodGet && isVersion && verb == "":
		method, req = "GetSecretVersion", &secretmanagerpb.GetSecretVersionRequest{Name: name}
	case r.Method == http.MethodPost && isVersion && verb == "disable":
		m := &secretmanagerpb.DisableSecretVersionRequest{}
		method, req = "DisableSecretVersion", m
		defer func() { m.Name = name }()
	case r.Method == http.MethodPost && isVersion && verb == "enable":
		m := &secretmanagerpb.EnableSecretVersionRequest{}
		method, req = "EnableSecretVersion", m
		defer func() { m.Name = name }()
	case r.Method == http.MethodPost && isVersion && verb == "destroy":
		m := &secretmanagerpb.DestroySecretVersionRequest{}
		method, req = "DestroySecretVersion", m
		defer func() { m.Name = name }()
	case r.Method == http.MethodPost && isSecret && verb == "addVersion":
		m := &secretmanagerpb.AddSecretVersionRequest{}
		method, req = "AddSecretVersion", m
		defer func() { m.Parent = name }()
	case r.Method == http.MethodGet && isSecret && verb == "":
		method, req = "GetSecret", &secretmanagerpb.GetSecretRequest{Name: name}
	case r.Method == http.MethodDelete && isSecret && verb == "":
		method, req = "DeleteSecret", &secretmanagerpb.DeleteSecretRequest{Name: name, Etag: r.URL.Query().Get("etag")}
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "secrets" && verb == "":
		sec := &secretmanagerpb.Secret{}
		if err := decode(sec); err != nil {
			return "CreateSecret", nil, err
		}
		return "CreateSecret", &secretmanagerpb.CreateSecretRequest{Parent: strings.Join(parts[:2], "/"),
			SecretId: r.URL.Query().Get("secretId"), Secret: sec}, nil
	default:
		return "", nil, status.Errorf(codes.NotFound, "The requested URL %s was not found on this server.", r.URL.Path)
	}
	return method, req, decode(req)
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	method, req, err := restRoute(r, body)
	if err != nil {
		if method != "" {
			s.mu.Lock()
			s.begin(method, "", "rest", nil)
			s.mu.Unlock()
		}
		writeRESTError(w, err)
		return
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	out, kind, err := s.handle(r.Context(), method, "rest", token, req)
	switch {
	case kind == Timeout:
		return
	case kind == Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
	}
	if err != nil {
		writeRESTError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if out == nil {
		io.WriteString(w, "{}")
		return
	}
	// The client asks for $alt=json;enum-encoding=int: enums as numbers, as the front end then answers.
	enumInts := strings.Contains(r.URL.Query().Get("$alt"), "enum-encoding=int")
	b, merr := protojson.MarshalOptions{UseEnumNumbers: enumInts}.Marshal(out)
	if merr != nil {
		writeRESTError(w, status.Error(codes.Internal, merr.Error()))
		return
	}
	w.Write(b)
}

// writeRESTError answers in Google's JSON error format: {"error":{"code","message","status"}}.
func writeRESTError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := httpStatus[st.Code()]
	if code == 0 {
		code = 500
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": st.Message(),
		"status": rpccode.Code_name[int32(st.Code())]}})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	w.Write(b)
}
