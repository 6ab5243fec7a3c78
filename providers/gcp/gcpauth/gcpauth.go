// Package gcpauth is the OAuth2 side of berth's Google API emulators (Compute Engine, Cloud DNS): it makes
// service-account key files whose token_uri is the emulator, answers the JWT-bearer grant (RFC 7523) at that URL
// as Google's token endpoint does, and checks the bearer tokens it handed out. The real Google client libraries
// authenticate against it unchanged, so no test reaches Google.
//
// Non-goals: user credentials, refresh tokens, scopes, token expiry after it was issued.
package gcpauth

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

// Issuer holds the service accounts' public keys and the access tokens issued. The zero value is ready to use; it
// is safe for concurrent use.
type Issuer struct {
	mu     sync.Mutex
	keys   map[string]*rsa.PublicKey // by client_email
	tokens map[string]bool
}

// ServiceAccountKey makes a service account of project and returns its JSON key file (a credentialsFile), whose
// token_uri is baseURL+"/token".
func (i *Issuer) ServiceAccountKey(baseURL, project, email string) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	if i.keys == nil {
		i.keys = map[string]*rsa.PublicKey{}
	}
	i.keys[email] = &key.PublicKey
	i.mu.Unlock()
	var kid [8]byte
	_, _ = rand.Read(kid[:])
	base := strings.TrimSuffix(baseURL, "/")
	return json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": hex.EncodeToString(kid[:]),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "1",
		"auth_uri":       base + "/auth",
		"token_uri":      base + "/token",
	}, "", "  ")
}

// Valid tells whether an Authorization header carries a token this issuer handed out.
func (i *Issuer) Valid(header string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	i.mu.Lock()
	defer i.mu.Unlock()
	return ok && i.tokens[tok]
}

// Token answers the JWT-bearer grant: an RS256 assertion signed by a known key, for audience (the token URL the
// key file names), not expired; the answer is an access token, as Google's.
func (i *Issuer) Token(w http.ResponseWriter, r *http.Request, audience string) {
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
	i.mu.Lock()
	key := i.keys[claims.Iss]
	i.mu.Unlock()
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if key == nil || rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) != nil {
		fail("Invalid JWT Signature.")
		return
	}
	if claims.Aud != audience || claims.Exp < time.Now().Unix() {
		fail("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "ya29.emu-" + hex.EncodeToString(b[:])
	i.mu.Lock()
	if i.tokens == nil {
		i.tokens = map[string]bool{}
	}
	i.tokens[tok] = true
	i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}
