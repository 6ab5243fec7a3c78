package clouddnsemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"sync"
	"time"
)

// auth is the OAuth2 side: service-account keys made by ServiceAccountKey, the JWT-bearer grant at /token, and
// the access tokens it handed out.
type auth struct {
	mu     sync.Mutex
	keys   map[string]*rsa.PublicKey // by client_email
	tokens map[string]bool
}

func newAuth() *auth { return &auth{keys: map[string]*rsa.PublicKey{}, tokens: map[string]bool{}} }

// ServiceAccountKey makes a service account and returns its JSON key file (a credentialsFile), whose token_uri is
// baseURL+"/token": the URL this emulator is served at (httptest.Server.URL).
func (e *Emulator) ServiceAccountKey(baseURL, email string) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	e.auth.mu.Lock()
	e.auth.keys[email] = &key.PublicKey
	e.auth.mu.Unlock()
	var kid [8]byte
	_, _ = rand.Read(kid[:])
	base := strings.TrimSuffix(baseURL, "/")
	return json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     e.project,
		"private_key_id": hex.EncodeToString(kid[:]),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "1",
		"auth_uri":       base + "/auth",
		"token_uri":      base + "/token",
	}, "", "  ")
}

func (a *auth) valid(header string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	a.mu.Lock()
	defer a.mu.Unlock()
	return ok && a.tokens[tok]
}

// token answers the JWT-bearer grant (RFC 7523) as Google's token endpoint does: an RS256 assertion signed by a
// known key, for this endpoint's URL, not expired.
func (a *auth) token(w http.ResponseWriter, r *http.Request) {
	fail := func(msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": msg})
	}
	if err := r.ParseForm(); err != nil {
		fail("bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail("unsupported grant_type")
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		fail("malformed assertion")
		return
	}
	claimsJSON, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	var claims struct {
		Iss string `json:"iss"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
	}
	if err1 != nil || err2 != nil || json.Unmarshal(claimsJSON, &claims) != nil {
		fail("malformed assertion")
		return
	}
	a.mu.Lock()
	key := a.keys[claims.Iss]
	a.mu.Unlock()
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if key == nil || rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) != nil {
		fail("Invalid JWT Signature.")
		return
	}
	if claims.Aud != "http://"+r.Host+"/token" || claims.Exp < time.Now().Unix() {
		fail("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "ya29.emu-" + hex.EncodeToString(b[:])
	a.mu.Lock()
	a.tokens[tok] = true
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}
