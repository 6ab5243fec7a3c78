package githubemu_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The access_tokens endpoint checks the JWT as GitHub does and hands out tokens that expire.
func TestAppAccessTokens(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	emu := newEmu(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	emu.SetNow(func() time.Time { return now })
	emu.AddApp(7, &key.PublicKey)
	emu.AddInstallation(70, 7, "berth[bot]")
	emu.SetTokenTTL(30 * time.Minute)
	sign := func(m jwt.SigningMethod, k any, iss string, iat, exp time.Duration) string {
		s, err := jwt.NewWithClaims(m, jwt.RegisteredClaims{Issuer: iss,
			IssuedAt: jwt.NewNumericDate(now.Add(iat)), ExpiresAt: jwt.NewNumericDate(now.Add(exp))}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodRS256, key, "7", -time.Minute, 9*time.Minute)
	resp, body := do(t, emu, "POST", "/app/installations/70/access_tokens", "", "Authorization", "Bearer "+good)
	var out struct {
		Token               string            `json:"token"`
		ExpiresAt           time.Time         `json:"expires_at"`
		Permissions         map[string]string `json:"permissions"`
		RepositorySelection string            `json:"repository_selection"`
	}
	if resp.StatusCode != 201 || json.Unmarshal([]byte(body), &out) != nil || !strings.HasPrefix(out.Token, "ghs_") ||
		!out.ExpiresAt.Equal(now.Add(30*time.Minute)) || out.Permissions["pull_requests"] != "read" ||
		out.RepositorySelection == "" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if emu.Minted() != 1 {
		t.Fatalf("minted %d", emu.Minted())
	}
	// The token works for the repository, but GET /user is refused to an installation token, as on GitHub; GET
	// /app with the JWT names the app's slug.
	if resp, body := do(t, emu, "GET", "/repos/"+emu.Owner+"/"+emu.Repo+"/pulls", "", "Authorization", "Bearer "+out.Token); resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, emu, "GET", "/user", "", "Authorization", "Bearer "+out.Token); resp.StatusCode != 403 ||
		!strings.Contains(body, "Resource not accessible by integration") {
		t.Fatalf("GET /user with an installation token: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, emu, "GET", "/app", "", "Authorization", "Bearer "+good); resp.StatusCode != 200 ||
		!strings.Contains(body, `"slug":"berth"`) {
		t.Fatalf("GET /app: %d %s", resp.StatusCode, body)
	}
	// The JWT itself is no token for the REST API.
	if resp, _ := do(t, emu, "GET", "/user", "", "Authorization", "Bearer "+good); resp.StatusCode != 401 {
		t.Fatalf("JWT as a token: %d", resp.StatusCode)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tc := range map[string]struct {
		jwt, inst string
		code      int
		msg       string
	}{
		"other key":       {sign(jwt.SigningMethodRS256, other, "7", -time.Minute, 9*time.Minute), "70", 401, "could not be decoded"},
		"HS256":           {sign(jwt.SigningMethodHS256, []byte("secret"), "7", -time.Minute, 9*time.Minute), "70", 401, "could not be decoded"},
		"unknown app":     {sign(jwt.SigningMethodRS256, key, "8", -time.Minute, 9*time.Minute), "70", 401, "could not be decoded"},
		"expired":         {sign(jwt.SigningMethodRS256, key, "7", -20*time.Minute, -time.Minute), "70", 401, "could not be decoded"},
		"issued later":    {sign(jwt.SigningMethodRS256, key, "7", time.Minute, 9*time.Minute), "70", 401, "could not be decoded"},
		"exp too far":     {sign(jwt.SigningMethodRS256, key, "7", -time.Minute, 11*time.Minute), "70", 401, "too far in the future"},
		"garbage":         {"not.a.jwt", "70", 401, "could not be decoded"},
		"no installation": {good, "71", 404, "Not Found"},
	} {
		resp, body := do(t, emu, "POST", "/app/installations/"+tc.inst+"/access_tokens", "", "Authorization", "Bearer "+tc.jwt)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// Expiry and revocation: 401 Bad credentials.
	now = now.Add(30 * time.Minute)
	if resp, body := do(t, emu, "GET", "/user", "", "Authorization", "Bearer "+out.Token); resp.StatusCode != 401 ||
		!strings.Contains(body, "Bad credentials") {
		t.Fatalf("expired token: %d %s", resp.StatusCode, body)
	}
	good = sign(jwt.SigningMethodRS256, key, "7", -time.Minute, 9*time.Minute)
	_, body = do(t, emu, "POST", "/app/installations/70/access_tokens", "", "Authorization", "Bearer "+good)
	_ = json.Unmarshal([]byte(body), &out)
	emu.RevokeAppTokens()
	if resp, _ := do(t, emu, "GET", "/user", "", "Authorization", "Bearer "+out.Token); resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
	if emu.Minted() != 2 {
		t.Fatalf("minted %d", emu.Minted())
	}
}
