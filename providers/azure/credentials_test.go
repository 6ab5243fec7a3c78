package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
)

const badSecret = "wrong-secret-Q7rT~9vXk2mN"

// local answers every request a provider built by New makes, in process: Microsoft Entra ID (instance discovery,
// OpenID configuration, a token endpoint refusing the client secret as Entra words it), the instance metadata
// endpoint (connection refused: not an Azure VM), and Resource Manager, forwarded to the emulator. Nothing leaves
// the machine.
type local struct {
	emu *aciemu.Server
	arm string // the emulator's host

	mu    sync.Mutex
	asked map[string]int // host → requests
}

func newLocal(emu *aciemu.Server) *local {
	u, _ := url.Parse(emu.URL())
	return &local{emu: emu, arm: u.Host, asked: map[string]int{}}
}

func (l *local) count(host string) int { l.mu.Lock(); defer l.mu.Unlock(); return l.asked[host] }

func (l *local) Do(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.asked[req.URL.Host]++
	l.mu.Unlock()
	switch req.URL.Host {
	case l.arm:
		return l.emu.Client().Do(req)
	case "169.254.169.254":
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	case "login.microsoftonline.com":
		rec := httptest.NewRecorder()
		entra(rec, req)
		res := rec.Result()
		res.Request = req
		return res, nil
	}
	return nil, fmt.Errorf("test transport: no route to %s", req.URL.Host)
}

func entra(w http.ResponseWriter, r *http.Request) {
	const host = "https://login.microsoftonline.com/"
	tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	switch {
	case strings.HasSuffix(r.URL.Path, "/discovery/instance"):
		enc.Encode(map[string]any{"tenant_discovery_endpoint": host + "common/v2.0/.well-known/openid-configuration",
			"api-version": "1.1", "metadata": []map[string]any{{"preferred_network": "login.microsoftonline.com",
				"preferred_cache": "login.windows.net", "aliases": []string{"login.microsoftonline.com", "login.windows.net"}}}})
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		enc.Encode(map[string]any{"token_endpoint": host + tenant + "/oauth2/v2.0/token",
			"authorization_endpoint": host + tenant + "/oauth2/v2.0/authorize", "issuer": host + tenant + "/v2.0"})
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		r.ParseForm()
		w.WriteHeader(http.StatusUnauthorized)
		enc.Encode(map[string]any{"error": "invalid_client", "error_codes": []int{7000215},
			"error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the " +
				"request is the client secret value, not the client secret ID, for a secret added to app '" +
				r.PostForm.Get("client_id") + "'. Trace ID: 0b1c Correlation ID: 9f2e Timestamp: 2026-12-01 08:00:00Z"})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// noCredentials clears every source of the DefaultAzureCredential chain: no environment credentials, no workload
// identity, no managed identity endpoint variables (and the metadata endpoint refuses, through the test
// transport), no az, azd or pwsh on PATH.
func noCredentials(t *testing.T, emu *aciemu.Server) *local {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_AUTHORITY_HOST", "AZURE_TOKEN_CREDENTIALS", "AZURE_CONFIG_DIR", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
		"IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_ADDITIONALLY_ALLOWED_TENANTS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	l := newLocal(emu)
	azure.SetTransport(t, l)
	return l
}

// retries counts the provider's "retrying" log records.
type retries struct {
	mu sync.Mutex
	n  int
}

func (r *retries) Enabled(context.Context, slog.Level) bool { return true }
func (r *retries) Handle(_ context.Context, rec slog.Record) error {
	if strings.Contains(rec.Message, "retrying") {
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
	}
	return nil
}
func (r *retries) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *retries) WithGroup(string) slog.Handler      { return r }
func (r *retries) count() int                         { r.mu.Lock(); defer r.mu.Unlock(); return r.n }

// factory builds the provider through the registered factory, with the default retry pacing (1 s doubling within
// 10 minutes: seconds at least if a permanent error were retried).
func factory(t *testing.T, emu *aciemu.Server) (*azure.Provider, *retries) {
	t.Helper()
	rec := &retries{}
	pr, err := providers.New(testTargetFor(emu), providers.Options{Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	return pr.(*azure.Provider), rec
}

// With no credentials at all, a plan-time List fails after one attempt, nothing reaches Resource Manager, and the
// error quotes the chain's report with the sources tried and the fix.
func TestNoCredentialsFailFast(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	l := noCredentials(t, emu)
	p, rec := factory(t, emu)
	start := time.Now()
	_, err := p.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, testTarget)
	elapsed := time.Since(start)
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("List = %v, want permanent", err)
	}
	if n := len(emu.Requests()); n != 0 || l.count("login.microsoftonline.com") != 0 || rec.count() != 0 {
		t.Errorf("%d requests to Resource Manager, %d to Entra ID, %d retries; want none", n, l.count("login.microsoftonline.com"), rec.count())
	}
	if elapsed > 500*time.Millisecond {
		t.Errorf("List took %v", elapsed)
	}
	for _, want := range []string{`azure target "aci"`, `no usable Azure credentials (settings.credential "default")`,
		"DefaultAzureCredential: failed to acquire a token", "EnvironmentCredential", // the SDK's own words
		"AZURE_TENANT_ID, AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (not set)",
		"AZURE_FEDERATED_TOKEN_FILE", "managed identity (the instance metadata endpoint 169.254.169.254)",
		"Azure CLI (az not on PATH", "To fix:", "az login", "az ad sp create-for-rbac"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	t.Logf("%s (in %v)", err, elapsed.Round(time.Millisecond))
}

// A client secret Entra ID refuses fails once, permanent, with Entra's words (AADSTS7000215) and never the secret.
func TestRefusedSecretPermanent(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	l := noCredentials(t, emu)
	t.Setenv("AZURE_TENANT_ID", "72f988bf-0000-4000-8000-000000000001")
	t.Setenv("AZURE_CLIENT_ID", "5d3b0c4a-0000-4000-8000-000000000002")
	t.Setenv("AZURE_CLIENT_SECRET", badSecret)
	p, rec := factory(t, emu)
	start := time.Now()
	_, err := p.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, testTarget)
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("List = %v, want permanent", err)
	}
	if n := len(emu.Requests()); n != 0 || rec.count() != 0 {
		t.Errorf("%d requests to Resource Manager, %d retries; want none", n, rec.count())
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("List took %v", d)
	}
	if l.count("login.microsoftonline.com") == 0 {
		t.Errorf("Entra ID was not asked")
	}
	for _, want := range []string{"Microsoft Entra ID refused the credentials", "AADSTS7000215: Invalid client secret provided",
		"To fix:", "secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if strings.Contains(err.Error(), badSecret) {
		t.Errorf("error shows the secret: %s", err)
	}
	t.Log(err)
}

// Resource Manager refusing the action or the token fails once, permanent, with its words and the fix.
func TestDeniedPermanent(t *testing.T) {
	for _, c := range []struct {
		kind aciemu.Kind
		want []string
	}{
		{aciemu.Denied, []string{"access denied", "AuthorizationFailed", "The client '" + aciemu.DeniedObjectID +
			"' with object id", "does not have authorization to perform action " +
			"'Microsoft.ContainerInstance/containerGroups/read' over scope '/subscriptions/" + testSub + "/resourceGroups/" + testRG + "'",
			"az role assignment create", "--scope /subscriptions/" + testSub + "/resourceGroups/" + testRG}},
		{aciemu.Unauthenticated, []string{"Resource Manager refused the token", "InvalidAuthenticationToken", "az login"}},
	} {
		t.Run(string(c.kind), func(t *testing.T) {
			emu := aciemu.New(aciemu.Options{})
			t.Cleanup(emu.Close)
			p := newProvider(t, emu)
			p.RetryBase, p.RetryMax = time.Minute, time.Minute // a retry would show as a timeout
			emu.Fail(1, c.kind)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := p.List(ctx, providers.Owner{Instance: "i", Environment: "e"}, testTarget)
			if !errors.Is(err, providers.ErrPermanent) {
				t.Fatalf("List = %v, want permanent", err)
			}
			if n := len(emu.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

// Throttling and 5xx answers to a List are still retried, to success.
func TestListTransientRetried(t *testing.T) {
	for _, kind := range []aciemu.Kind{aciemu.Throttle, aciemu.Unavailable, aciemu.ServerError} {
		t.Run(string(kind), func(t *testing.T) {
			emu := aciemu.New(aciemu.Options{})
			t.Cleanup(emu.Close)
			p := newProvider(t, emu)
			emu.Fail(6, kind) // beyond the SDK's own 3 retries: the provider's retry takes over
			if _, err := p.List(context.Background(), providers.Owner{Instance: "i", Environment: "e"}, testTarget); err != nil {
				t.Fatalf("List: %v", err)
			}
			if n := len(emu.Requests()); n != 7 {
				t.Errorf("%d requests, want 7 (6 faults, then success)", n)
			}
		})
	}
}
