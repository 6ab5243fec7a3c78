// Package registrytest is an in-process container registry for tests: the read side of the Registry HTTP API v2
// (GET and HEAD of /v2/<name>/manifests/<reference> and /v2/<name>/blobs/<digest>) with a bearer-token
// challenge, as the CNCF distribution server and Docker Hub answer it. Images are built from a configuration alone
// (no layers are served); an image may be pushed as a single manifest or under an OCI index with other platforms.
//
// Authentication: every /v2/ request without a valid token gets 401 with
// `WWW-Authenticate: Bearer realm="<url>/token",service="registrytest",scope="repository:<name>:pull"`; the token
// endpoint gives a token for the scope asked, to anyone when Options.User is empty, else only with that user and
// password as basic authentication (401 otherwise). Errors are the distribution specification's JSON bodies
// (MANIFEST_UNKNOWN, NAME_UNKNOWN, BLOB_UNKNOWN, UNAUTHORIZED).
//
// StartDistribution runs the real thing instead, Debian's docker-registry (the CNCF distribution server), on
// loopback with token authentication from a token server of the test's own; tests skip without it unless
// BERTH_REQUIRE_REGISTRY is set.
package registrytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
)

// Options configure a Server.
type Options struct {
	// User and Password, when User is set, are required by the token endpoint.
	User, Password string
	// TLS serves HTTPS (the client must trust Server.Client's transport); plain HTTP otherwise.
	TLS bool
}

// Server is a running registry.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu        sync.Mutex
	manifests map[string]blob // name + "@" + tag or digest
	blobs     map[string][]byte
	tokens    map[string]string // token → scope
	seq       int
	// Requests counts the /v2/ and token requests, by "METHOD path".
	requests map[string]int
	fault    atomic.Int32
}

type blob struct {
	mediaType string
	data      []byte
}

// New starts a registry; Close stops it.
func New(opts Options) *Server {
	s := &Server{opts: opts, manifests: map[string]blob{}, blobs: map[string][]byte{}, tokens: map[string]string{},
		requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.token)
	mux.HandleFunc("/v2/", s.v2)
	if opts.TLS {
		s.srv = httptest.NewTLSServer(mux)
	} else {
		s.srv = httptest.NewServer(mux)
	}
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Host is the registry's host:port, the first part of the references of its images.
func (s *Server) Host() string {
	return strings.TrimPrefix(strings.TrimPrefix(s.srv.URL, "http://"), "https://")
}

// Client is an HTTP client that trusts the server (for TLS).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Image is one image to push: its configuration's entrypoint and command.
type Image struct {
	Entrypoint, Cmd []string
	Env             []string
	// OCI pushes OCI media types (default: Docker v2); Index wraps the manifest in an index (a manifest list with
	// Docker types) beside an arm64 one.
	OCI, Index bool
}

// Push stores img as name:tag and gives the reference host/name:tag and the digest of what the tag names.
func (s *Server) Push(name, tag string, img Image) (ref, digest string) {
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": img.Env},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	manifestType, configType, indexType := "application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.container.image.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"
	if img.OCI {
		manifestType, configType, indexType = "application/vnd.oci.image.manifest.v1+json",
			"application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.index.v1+json"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cd := s.putBlob(cfg)
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifestType,
		"config": map[string]any{"mediaType": configType, "digest": cd, "size": len(cfg)}, "layers": []any{}})
	md := s.putManifest(name, manifestType, m)
	top := md
	if img.Index {
		other, _ := json.Marshal(map[string]any{"architecture": "arm64", "os": "linux", "config": map[string]any{"Entrypoint": []string{"/wrong-arch"}}})
		od := s.putBlob(other)
		om, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifestType,
			"config": map[string]any{"mediaType": configType, "digest": od, "size": len(other)}, "layers": []any{}})
		omd := s.putManifest(name, manifestType, om)
		ix, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": indexType, "manifests": []any{
			map[string]any{"mediaType": manifestType, "digest": omd, "size": len(om), "platform": map[string]string{"os": "linux", "architecture": "arm64"}},
			map[string]any{"mediaType": manifestType, "digest": md, "size": len(m), "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
		}})
		top = s.putManifest(name, indexType, ix)
	}
	s.manifests[name+"@"+tag] = s.manifests[name+"@"+top]
	return s.Host() + "/" + name + ":" + tag, top
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (s *Server) putBlob(b []byte) string {
	d := digestOf(b)
	s.blobs[d] = b
	return d
}

func (s *Server) putManifest(name, mediaType string, b []byte) string {
	d := digestOf(b)
	s.manifests[name+"@"+d] = blob{mediaType: mediaType, data: b}
	return d
}

// CorruptBlob replaces the content of a blob (its digest no longer matches).
func (s *Server) CorruptBlob(digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[digest] = []byte(`{"config":{"Entrypoint":["/evil"]}}`)
}

// ConfigDigest is the digest of the config blob of the single-platform manifest name:tag names.
func (s *Server) ConfigDigest(name, tag string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m struct {
		Config struct{ Digest string } `json:"config"`
	}
	_ = json.Unmarshal(s.manifests[name+"@"+tag].data, &m)
	return m.Config.Digest
}

// FailNext makes the next n /v2/ requests answer 503.
func (s *Server) FailNext(n int) { s.fault.Store(int32(n)) }

// Requests is how many requests of "METHOD path" the server got.
func (s *Server) Requests(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[key]
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.Method+" /token"]++
	s.mu.Unlock()
	if s.opts.User != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != s.opts.User || p != s.opts.Password {
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	if r.URL.Query().Get("service") != "registrytest" {
		writeErr(w, http.StatusBadRequest, "UNSUPPORTED", "unknown service")
		return
	}
	s.mu.Lock()
	s.seq++
	tok := fmt.Sprintf("tok-%d", s.seq)
	s.tokens[tok] = r.URL.Query().Get("scope")
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"token":%q,"access_token":%q,"expires_in":300}`, tok, tok)
}

func (s *Server) v2(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.Method+" "+r.URL.Path]++
	s.mu.Unlock()
	if s.fault.Load() > 0 {
		s.fault.Add(-1)
		writeErr(w, http.StatusServiceUnavailable, "UNAVAILABLE", "try again")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeErr(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "read only")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	var name, kind, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(rest, k); i > 0 {
			name, kind, ref = rest[:i], strings.Trim(k, "/"), rest[i+len(k):]
			break
		}
	}
	if rest == "" {
		name = ""
	}
	scope := "repository:" + name + ":pull"
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	granted := s.tokens[auth]
	s.mu.Unlock()
	if auth == "" || (granted != scope && !(name == "" && granted != "")) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="registrytest",scope="%s"`, s.srv.URL, scope))
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if name == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case "manifests":
		m, ok := s.manifests[name+"@"+ref]
		if !ok {
			known := false
			for k := range s.manifests {
				known = known || strings.HasPrefix(k, name+"@")
			}
			if !known {
				writeErr(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
				return
			}
			writeErr(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", digestOf(m.data))
		if r.Method == http.MethodGet {
			_, _ = w.Write(m.data)
		}
	case "blobs":
		b, ok := s.blobs[ref]
		if !ok {
			writeErr(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	default:
		writeErr(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
	}
}
