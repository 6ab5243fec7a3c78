package registrytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Distribution is a real CNCF distribution server (Debian's docker-registry) on loopback, with token
// authentication: its token server is the test's own, issuing ES256 tokens (for the scope asked, to DistUser and
// DistPassword only) signed by a key whose certificate is the server's root bundle.
type Distribution struct {
	host  string
	token *httptest.Server
	key   *ecdsa.PrivateKey
	cert  []byte
}

// The token server's service, issuer and only user.
const (
	DistService  = "berth-test"
	DistIssuer   = "berth-test-issuer"
	DistUser     = "berth"
	DistPassword = "pw"
)

// Host is the server's host:port.
func (d *Distribution) Host() string { return d.host }

// Credentials are the user's, for the server's host only (a registry.Client's Credentials).
func (d *Distribution) Credentials(host string) (string, string) {
	if host == d.host {
		return DistUser, DistPassword
	}
	return "", ""
}

// StartDistribution runs docker-registry until the test ends, or skips the test when it is not installed
// (BERTH_REQUIRE_REGISTRY=1 makes that a failure).
func StartDistribution(t testing.TB) *Distribution {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_REGISTRY") != "" {
			t.Fatal("docker-registry is not installed (apt-get install docker-registry)")
		}
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	d := &Distribution{}
	d.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	d.cert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &d.key.PublicKey, d.key)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "root.crt")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	d.token = httptest.NewServer(http.HandlerFunc(d.issue))
	t.Cleanup(d.token.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.host = l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  token:
    realm: %s/token
    service: %s
    issuer: %s
    rootcertbundle: %s
`, filepath.Join(dir, "data"), d.host, d.token.URL, DistService, DistIssuer, bundle)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Ready when /v2/ answers (401: it wants a token).
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get("http://" + d.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return d
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("docker-registry exited: %v\n%s", err, out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", d.host, err, out.String())
		}
	}
}

// issue is the token endpoint: the scope asked, to the test's user only.
func (d *Distribution) issue(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != DistUser || p != DistPassword {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	var access []map[string]any
	for _, s := range r.URL.Query()["scope"] {
		parts := strings.Split(s, ":")
		if len(parts) == 3 {
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": DistIssuer, "sub": DistUser,
		"aud": r.URL.Query().Get("service"), "exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"iat": now.Unix(), "jti": fmt.Sprint(now.UnixNano()), "access": access})
	tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(d.cert)}
	signed, err := tok.SignedString(d.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": signed, "expires_in": 300})
}

// PushConfig uploads a config blob and a manifest of mediaType naming it (no layers) as name:tag, and gives the
// manifest's digest.
func (d *Distribution) PushConfig(t testing.TB, name, tag, mediaType string, config []byte) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.token.URL+"/token?service="+DistService+"&scope=repository:"+name+":pull,push", nil)
	req.SetBasicAuth(DistUser, DistPassword)
	var tok struct{ Token string }
	do(t, req, http.StatusOK, &tok)
	auth := "Bearer " + tok.Token
	digest := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

	req, _ = http.NewRequest(http.MethodPost, "http://"+d.host+"/v2/"+name+"/blobs/uploads/", nil)
	req.Header.Set("Authorization", auth)
	loc := do(t, req, http.StatusAccepted, nil).Header.Get("Location")
	u := loc
	if strings.HasPrefix(loc, "/") {
		u = "http://" + d.host + loc
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	req, _ = http.NewRequest(http.MethodPut, u+sep+"digest="+digest(config), bytes.NewReader(config))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/octet-stream")
	do(t, req, http.StatusCreated, nil)

	configType := "application/vnd.docker.container.image.v1+json"
	if strings.Contains(mediaType, "oci") {
		configType = "application/vnd.oci.image.config.v1+json"
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaType,
		"config": map[string]any{"mediaType": configType, "digest": digest(config), "size": len(config)}, "layers": []any{}})
	req, _ = http.NewRequest(http.MethodPut, "http://"+d.host+"/v2/"+name+"/manifests/"+tag, bytes.NewReader(m))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", mediaType)
	do(t, req, http.StatusCreated, nil)
	return digest(m)
}

func do(t testing.TB, req *http.Request, status int, into any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, status, body.String())
	}
	if into != nil {
		if err := json.Unmarshal(body.Bytes(), into); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

// Push stores an image of img's configuration (linux/amd64, Docker or OCI media types; Index is not supported
// here) as name:tag and gives its reference and the manifest's digest.
func (d *Distribution) Push(t testing.TB, name, tag string, img Image) (ref, digest string) {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": img.Env},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	mt := "application/vnd.docker.distribution.manifest.v2+json"
	if img.OCI {
		mt = "application/vnd.oci.image.manifest.v1+json"
	}
	return d.host + "/" + name + ":" + tag, d.PushConfig(t, name, tag, mt, cfg)
}
