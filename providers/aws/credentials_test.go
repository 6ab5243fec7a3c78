package aws_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// noCredentials leaves the AWS SDK with no credential source at all: no keys in the environment, a HOME with no
// ~/.aws, no web identity or container credentials, and instance metadata disabled (nothing leaves the machine).
func noCredentials(t testing.TB) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_ECS"} {
		t.Setenv(k, "")
		os.Unsetenv(k) // t.Setenv restores it; the SDK tells "" from unset for some
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return home
}

// records counts the provider's "retrying" log records: every retry of a call logs one.
type records struct {
	mu    sync.Mutex
	retry int
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Contains(rec.Message, "retrying") {
		r.retry++
	}
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }
func (r *records) retries() int                       { r.mu.Lock(); defer r.mu.Unlock(); return r.retry }

// defaultPaced builds the provider through the registered factory with the default retry tunables (250 ms
// doubling, 8 tries: several seconds if a permanent error were retried).
func defaultPaced(t *testing.T, tgt schema.Target) (*berthaws.Provider, *records) {
	t.Helper()
	rec := &records{}
	pr, err := providers.New(tgt, providers.Options{Instance: "test", Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	return pr.(*berthaws.Provider), rec
}

// With no credentials anywhere, a plan-time List fails at once: one attempt, nothing sent to ECS, a permanent
// error quoting the SDK and naming the sources tried and the fix.
func TestNoCredentialsFailFast(t *testing.T) {
	home := noCredentials(t)
	emu := emulator(t)
	p, rec := defaultPaced(t, target("aws-prod", emu.URL()))
	start := time.Now()
	_, err := p.List(testCtx(t), providers.Owner{Instance: "berth", Environment: "dev"}, "aws-prod")
	elapsed := time.Since(start)
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("List = %v, want a permanent error", err)
	}
	if n := len(emu.Requests()); n != 0 {
		t.Errorf("%d requests reached ECS, want 0", n)
	}
	if n := rec.retries(); n != 0 {
		t.Errorf("%d retries, want 0 (one attempt)", n)
	}
	if elapsed > 500*time.Millisecond {
		t.Errorf("List took %v, want well under a second", elapsed)
	}
	msg := err.Error()
	for _, want := range []string{`aws target "aws-prod"`, "no usable AWS credentials",
		"no EC2 IMDS role found", // the SDK's own words
		"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)",
		filepath.Join(home, ".aws", "credentials") + " (missing)", `profile "default"`,
		"AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (not set)", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED=true)",
		"To fix: export AWS_ACCESS_KEY_ID", "aws configure --profile", "settings.profile", "IAM role"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	t.Logf("%s (in %v)", msg, elapsed.Round(time.Millisecond))
}

// A profile named by the target that exists in no shared file is refused when the provider is built, with the fix.
func TestMissingProfile(t *testing.T) {
	noCredentials(t)
	tgt := target("aws-prod", "http://127.0.0.1:1")
	tgt.Settings["profile"] = "deploy"
	_, err := providers.New(tgt, providers.Options{})
	if err == nil || !strings.Contains(err.Error(), `profile "deploy"`) ||
		!strings.Contains(err.Error(), "aws configure --profile deploy") {
		t.Fatalf("New = %v, want an error naming the profile and the fix", err)
	}
}

// A profile without credentials, named by the target: the chain skips the environment and says so.
func TestProfileWithoutCredentials(t *testing.T) {
	home := noCredentials(t)
	cfg := filepath.Join(home, "config")
	if err := os.WriteFile(cfg, []byte("[profile deploy]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE") // ignored: a named profile comes first
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	emu := emulator(t)
	tgt := target("aws-prod", emu.URL())
	tgt.Settings["profile"] = "deploy"
	p, rec := defaultPaced(t, tgt)
	_, err := p.List(testCtx(t), providers.Owner{Instance: "berth", Environment: "dev"}, "aws-prod")
	if !errors.Is(err, providers.ErrPermanent) || rec.retries() != 0 || len(emu.Requests()) != 0 {
		t.Fatalf("List = %v after %d retries and %d requests, want one permanent failure", err, rec.retries(), len(emu.Requests()))
	}
	for _, want := range []string{"skipped: the target names a profile", `profile "deploy" (the target's settings.profile)`, cfg} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

// ECS refusing the action or the key answers once, permanent, with ECS's words, where the credentials came from
// and the fix.
func TestRefusedPermanent(t *testing.T) {
	for _, c := range []struct {
		kind string
		want []string
	}{
		{ecsemu.Denied, []string{"access denied", "AccessDeniedException",
			"User: arn:aws:iam::123456789012:user/berth is not authorized to perform: ecs:ListServices on resource: " +
				"arn:aws:ecs:eu-west-1:123456789012:cluster/berth-test", "(from EnvConfigCredentials)", "ecs:ListServices",
			"iam:PassRole"}},
		{ecsemu.Unrecognized, []string{"ECS refused the credentials (from EnvConfigCredentials)",
			"UnrecognizedClientException", "The security token included in the request is invalid", "aws sso login"}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			hermetic(t)
			emu := emulator(t)
			p, rec := defaultPaced(t, target("aws-prod", emu.URL()))
			emu.Fail(1, c.kind)
			start := time.Now()
			_, err := p.List(testCtx(t), providers.Owner{Instance: "berth", Environment: "dev"}, "aws-prod")
			if !errors.Is(err, providers.ErrPermanent) {
				t.Fatalf("List = %v, want permanent", err)
			}
			if n := len(emu.Requests()); n != 1 || rec.retries() != 0 {
				t.Errorf("%d requests and %d retries, want 1 and 0", n, rec.retries())
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("List took %v", d)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), "wJalrXUtnFEMI") {
				t.Errorf("error shows the secret key: %s", err)
			}
		})
	}
}

// Throttling and 5xx answers to a List are still retried, to success.
func TestListTransientRetried(t *testing.T) {
	for _, kind := range []string{ecsemu.Throttle, ecsemu.Unavailable, ecsemu.ServerError} {
		t.Run(kind, func(t *testing.T) {
			hermetic(t)
			emu := emulator(t)
			p := newProvider(t, emu, "aws-test")
			emu.FailOp("ListServices", 3, kind)
			if _, err := p.List(testCtx(t), providers.Owner{Instance: "berth", Environment: "dev"}, "aws-test"); err != nil {
				t.Fatalf("List: %v", err)
			}
			if n := count(emu, "ListServices"); n != 4 {
				t.Errorf("ListServices sent %d times, want 4", n)
			}
		})
	}
}

// A credential endpoint that answers 503 (here the ECS container credentials endpoint, on loopback) is a
// transient failure of the chain: retried, and the call goes through once it answers.
func TestCredentialEndpointTransient(t *testing.T) {
	noCredentials(t)
	var calls atomic.Int32
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) <= 5 { // more than the credential client's own 3 tries
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"code":"ServiceUnavailable","message":"try again"}`)
			return
		}
		fmt.Fprintf(w, `{"AccessKeyId":"AKIDEXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","Token":"tok","Expiration":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(creds.Close)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/creds")
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	if _, err := p.List(testCtx(t), providers.Owner{Instance: "berth", Environment: "dev"}, "aws-test"); err != nil {
		t.Fatalf("List: %v", err)
	}
	if n := count(emu, "ListServices"); n != 1 {
		t.Errorf("ListServices sent %d times, want 1", n)
	}
	if n := calls.Load(); n < 6 {
		t.Errorf("credential endpoint called %d times, want at least 6", n)
	}
}

// The path of `berth plan`: the engine plans a repository with an aws target and no credentials, and fails at
// once with the provider's explanation.
func TestPlanWithoutCredentials(t *testing.T) {
	noCredentials(t)
	emu := emulator(t)
	dir := t.TempDir()
	repo := fmt.Sprintf(`targets: prod: {type: "aws", region: "eu-west-1", cluster: %q, subnets: ["subnet-0a1b2c3d"], endpoint: %q}
environments: production: {branch: "main"}
workloads: api: {image: "registry.example/api:1", provider: "prod", command: ["/app"]}
`, testCluster, emu.URL())
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(repo), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := reconciler.NewEngine(reconciler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	start := time.Now()
	_, err = eng.Plan(testCtx(t), cfg, "production", "rev")
	elapsed := time.Since(start)
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "no usable AWS credentials") ||
		!strings.Contains(err.Error(), "To fix:") {
		t.Fatalf("Plan = %v, want the permanent credentials error", err)
	}
	if elapsed > time.Second || len(emu.Requests()) != 0 {
		t.Errorf("Plan took %v and sent %d requests, want well under a second and none", elapsed, len(emu.Requests()))
	}
}
