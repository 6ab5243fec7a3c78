package keyvaultemu_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/berth-dev/berth/providers/azure/keyvaultemu"
)

// credential is a fake token credential that records what the challenge asked it for.
type credential struct {
	token string
	mu    sync.Mutex
	asked []policy.TokenRequestOptions
}

func (c *credential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, o)
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func options(s *keyvaultemu.Server) azcore.ClientOptions {
	return azcore.ClientOptions{Transport: s.Client(), Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond}}
}

// client is an azsecrets client on the vault's real address, the challenge's resource verified.
func client(t *testing.T, s *keyvaultemu.Server, vault string, cred azcore.TokenCredential) *azsecrets.Client {
	c, err := azsecrets.NewClient(s.VaultURL(vault), cred, &azsecrets.ClientOptions{ClientOptions: options(s)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func code(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, ""
}

// The challenge as Key Vault does it, then secrets set and read, by the latest and by version; disabling a
// version; listing versions; soft delete, recover and purge.
func TestSecrets(t *testing.T) {
	ctx := context.Background()
	s := keyvaultemu.New(keyvaultemu.Options{Token: "good-token"})
	defer s.Close()
	cred := &credential{token: "good-token"}
	c := client(t, s, "myvault", cred)

	set, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: new("v1"), ContentType: new("text/plain")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cred.asked) != 1 || cred.asked[0].TenantID != keyvaultemu.DefaultTenantID || strings.Join(cred.asked[0].Scopes, ",") != "https://vault.azure.net/.default" {
		t.Fatalf("token requests %+v", cred.asked)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Authorized || reqs[0].Body != nil || !reqs[1].Authorized || reqs[1].Op != "SetSecret" {
		t.Fatalf("challenge then request: %+v", reqs)
	}
	v1 := set.ID.Version()
	if !strings.HasPrefix(string(*set.ID), "https://myvault.vault.azure.net/secrets/db-password/") || len(v1) != 32 || *set.Value != "v1" || !*set.Attributes.Enabled {
		t.Fatalf("SetSecret = %+v", set.Secret)
	}
	v2 := s.SetSecret("myvault", "db-password", "v2")
	latest, err := c.GetSecret(ctx, "db-password", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *latest.Value != "v2" || latest.ID.Version() != v2 || latest.ID.Name() != "db-password" || latest.Attributes.Created == nil {
		t.Fatalf("latest = %+v", latest.Secret)
	}
	old, err := c.GetSecret(ctx, "DB-PASSWORD", v1, nil)
	if err != nil || *old.Value != "v1" || *old.ContentType != "text/plain" {
		t.Fatalf("by version (names are case-insensitive): %v %+v", err, old)
	}
	if len(s.Requests()) != 4 {
		t.Errorf("the challenge is answered once per client: %d requests", len(s.Requests()))
	}
	// Disable v1 through the SDK: its read is refused, the latest still reads.
	if _, err := c.UpdateSecretProperties(ctx, "db-password", v1, azsecrets.UpdateSecretPropertiesParameters{SecretAttributes: &azsecrets.SecretAttributes{Enabled: new(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecret(ctx, "db-password", v1, nil)
	if st, cd := code(err); st != 403 || cd != "Forbidden" || !strings.Contains(err.Error(), "disabled secret") {
		t.Fatalf("disabled version: %v", err)
	}
	var ids []string
	for pager := c.NewListSecretPropertiesVersionsPager("db-password", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Value {
			ids = append(ids, p.ID.Version())
		}
	}
	want := []string{v1, v2}
	slices.Sort(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("versions %v", ids)
	}
	// Soft delete: reads are 404, the name cannot be reused until purged; recover brings it back.
	if _, err := c.DeleteSecret(ctx, "db-password", nil); err != nil {
		t.Fatal(err)
	}
	if st, cd := code(func() error { _, err := c.GetSecret(ctx, "db-password", "", nil); return err }()); st != 404 || cd != "SecretNotFound" {
		t.Fatalf("read of a deleted secret: %d %s", st, cd)
	}
	if st, _ := code(func() error {
		_, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: new("x")}, nil)
		return err
	}()); st != 409 {
		t.Fatalf("reuse of a deleted name: %d", st)
	}
	if _, err := c.RecoverDeletedSecret(ctx, "db-password", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetSecret(ctx, "db-password", "", nil); err != nil || *got.Value != "v2" {
		t.Fatalf("after recovery: %v", err)
	}
	c.DeleteSecret(ctx, "db-password", nil)
	if _, err := c.PurgeDeletedSecret(ctx, "db-password", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: new("fresh")}, nil); err != nil {
		t.Fatalf("set after purge: %v", err)
	}
}

// Errors as the SDK surfaces them: 404 SecretNotFound, 403 Forbidden, 401 for a token the vault refuses, 400 for
// a bad name, 429 Throttled with Retry-After (retried), 5xx (retried), a timeout, and the IP address with the
// resource check disabled.
func TestErrorsAndFaults(t *testing.T) {
	ctx := context.Background()
	s := keyvaultemu.New(keyvaultemu.Options{Token: "good-token"})
	defer s.Close()
	c := client(t, s, "v", &credential{token: "good-token"})
	s.SetSecret("v", "db", "pw")
	s.SetSecret("v", "private", "pw")
	s.Deny("v", "GetSecret", "private")

	get := func(name, ver string) error { _, err := c.GetSecret(ctx, name, ver, nil); return err }
	if err := get("missing", ""); !strings.Contains(err.Error(), "SecretNotFound") {
		t.Errorf("missing: %v", err)
	}
	if st, cd := code(get("db", "0123456789abcdef0123456789abcdef")); st != 404 || cd != "SecretNotFound" {
		t.Errorf("missing version: %d %s", st, cd)
	}
	if st, cd := code(get("private", "")); st != 403 || cd != "Forbidden" {
		t.Errorf("denied: %d %s", st, cd)
	}
	if st, cd := code(get("bad_name", "")); st != 400 || cd != "BadParameter" {
		t.Errorf("bad name: %d %s", st, cd)
	}
	bad := client(t, s, "v", &credential{token: "stolen"})
	if st, cd := code(func() error { _, err := bad.GetSecret(ctx, "db", "", nil); return err }()); st != 401 || cd != "Unauthorized" {
		t.Errorf("refused token: %d %s", st, cd)
	}

	for _, f := range []keyvaultemu.Fault{keyvaultemu.Throttle, keyvaultemu.ServerError, keyvaultemu.Unavailable} {
		s.ResetRequests()
		s.FailOp("GetSecret", 2, f)
		if err := get("db", ""); err != nil {
			t.Errorf("%s twice, then success: %v", f, err)
		}
		if n := s.Count("GetSecret"); n != 3 {
			t.Errorf("%s: %d requests, want 3", f, n)
		}
	}
	s.Fail(3, keyvaultemu.Throttle)
	err := get("db", "")
	var re *azcore.ResponseError
	if st, cd := code(err); st != http.StatusTooManyRequests || cd != "Throttled" || !errors.As(err, &re) || re.RawResponse.Header.Get("Retry-After") != "0" {
		t.Errorf("throttled past the retries: %d %s", st, cd)
	}
	s.Fail(1, keyvaultemu.Timeout)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.GetSecret(tctx, "db", "", nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}

	s.SetSecret(keyvaultemu.DefaultVault, "db", "pw") // the vault of the IP address
	ip, err := azsecrets.NewClient(s.URL(), &credential{token: "good-token"}, &azsecrets.ClientOptions{ClientOptions: options(s), DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ip.GetSecret(ctx, "db", "", nil)
	if err != nil || *got.Value != "pw" {
		t.Fatalf("by IP, resource check disabled: %v", err)
	}
	strict, _ := azsecrets.NewClient(s.URL(), &credential{token: "good-token"}, &azsecrets.ClientOptions{ClientOptions: options(s)})
	if _, err := strict.GetSecret(ctx, "db", "", nil); err == nil || !strings.Contains(err.Error(), "DisableChallengeResourceVerification") {
		t.Errorf("by IP with the resource check: %v", err)
	}
}
