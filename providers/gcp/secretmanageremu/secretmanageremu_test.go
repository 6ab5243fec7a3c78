package secretmanageremu_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers/gcp/secretmanageremu"
)

// fast retries 429 and 503 at once, so tests never wait for the client's 2 s backoff.
var fast = gax.WithRetry(func() gax.Retryer {
	return gax.OnCodes([]codes.Code{codes.Unavailable, codes.ResourceExhausted}, gax.Backoff{Initial: time.Microsecond, Max: time.Microsecond})
})

func restClient(t *testing.T, s *secretmanageremu.Server, opts ...option.ClientOption) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewRESTClient(context.Background(), append([]option.ClientOption{
		option.WithEndpoint(s.URL()), option.WithoutAuthentication()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func grpcClient(t *testing.T, s *secretmanageremu.Server) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewClient(context.Background(), option.WithEndpoint(s.GRPCAddr()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// transports runs f against both clients of one fresh emulator each.
func transports(t *testing.T, opts secretmanageremu.Options, f func(t *testing.T, s *secretmanageremu.Server, c *secretmanager.Client)) {
	for _, tr := range []string{"rest", "grpc"} {
		t.Run(tr, func(t *testing.T) {
			s := secretmanageremu.New(opts)
			t.Cleanup(s.Close)
			c := restClient(t, s)
			if tr == "grpc" {
				c = grpcClient(t, s)
			}
			f(t, s, c)
		})
	}
}

// canonical is the gRPC code an error carries, whichever transport; over REST the code is derived from the HTTP
// status, so the body's "status" tells FAILED_PRECONDITION from INVALID_ARGUMENT (both 400).
func canonical(err error) string {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		for _, st := range []string{"FAILED_PRECONDITION", "INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "ALREADY_EXISTS", "UNAUTHENTICATED", "INTERNAL", "UNAVAILABLE"} {
			if strings.Contains(ge.Body, `"status":"`+st+`"`) {
				return st
			}
		}
		return "?"
	}
	if ae, ok := apierror.FromError(err); ok {
		return strings.ToUpper(snake(ae.GRPCStatus().Code().String()))
	}
	return strings.ToUpper(snake(status.Code(err).String()))
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

const project = "projects/" + secretmanageremu.DefaultProject

func automatic() *secretmanagerpb.Secret {
	return &secretmanagerpb.Secret{Replication: &secretmanagerpb.Replication{
		Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}}}
}

// A secret's life through both clients: create, add versions, access the latest and by number (names come back
// with the project number), the checksum, version states (disable, enable, destroy) and delete.
func TestLifecycle(t *testing.T) {
	transports(t, secretmanageremu.Options{}, func(t *testing.T, s *secretmanageremu.Server, c *secretmanager.Client) {
		ctx := context.Background()
		num := s.ProjectNumber(secretmanageremu.DefaultProject)
		secName := "projects/" + strconv.FormatInt(num, 10) + "/secrets/db"
		sec, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: project, SecretId: "db", Secret: automatic()})
		if err != nil {
			t.Fatal(err)
		}
		if sec.Name != secName || sec.CreateTime == nil || sec.Etag == "" {
			t.Fatalf("CreateSecret = %v", sec)
		}
		v1, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: project + "/secrets/db",
			Payload: &secretmanagerpb.SecretPayload{Data: []byte("pw1"), DataCrc32C: proto.Int64(secretmanageremu.CRC32C([]byte("pw1")))}})
		if err != nil {
			t.Fatal(err)
		}
		if v1.Name != secName+"/versions/1" || v1.State != secretmanagerpb.SecretVersion_ENABLED || !v1.ClientSpecifiedPayloadChecksum {
			t.Fatalf("AddSecretVersion = %v", v1)
		}
		v2name, err := s.AddVersion(project+"/secrets/db", []byte("pw2"))
		if err != nil || v2name != secName+"/versions/2" {
			t.Fatalf("AddVersion: %q %v", v2name, err)
		}
		acc, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: project + "/secrets/db/versions/latest"}, fast)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Name != v2name || string(acc.Payload.Data) != "pw2" || acc.Payload.GetDataCrc32C() != secretmanageremu.CRC32C([]byte("pw2")) {
			t.Fatalf("access latest = %v", acc)
		}
		if acc, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: secName + "/versions/1"}, fast); err != nil || string(acc.Payload.Data) != "pw1" {
			t.Fatalf("access 1 by project number: %v %v", err, acc)
		}
		got, err := c.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: project + "/secrets/db/versions/latest"})
		if err != nil || got.Name != v2name || got.State != secretmanagerpb.SecretVersion_ENABLED || got.CreateTime == nil {
			t.Fatalf("GetSecretVersion latest: %v %v", err, got)
		}
		// Disabled: access refused, the state readable; enabled again; destroyed: refused for good.
		if _, err := c.DisableSecretVersion(ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: v2name}); err != nil {
			t.Fatal(err)
		}
		_, err = c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: project + "/secrets/db/versions/latest"}, fast)
		if canonical(err) != "FAILED_PRECONDITION" || !strings.Contains(err.Error(), "is in DISABLED state") {
			t.Fatalf("access of a disabled version: %s %v", canonical(err), err)
		}
		if got, _ := c.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: v2name}); got.GetState() != secretmanagerpb.SecretVersion_DISABLED {
			t.Fatalf("state after disable: %v", got)
		}
		if _, err := c.EnableSecretVersion(ctx, &secretmanagerpb.EnableSecretVersionRequest{Name: v2name}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: v2name}, fast); err != nil {
			t.Fatalf("access after enable: %v", err)
		}
		d, err := c.DestroySecretVersion(ctx, &secretmanagerpb.DestroySecretVersionRequest{Name: v1.Name})
		if err != nil || d.State != secretmanagerpb.SecretVersion_DESTROYED || d.DestroyTime == nil {
			t.Fatalf("destroy: %v %v", err, d)
		}
		if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: v1.Name}, fast); canonical(err) != "FAILED_PRECONDITION" || !strings.Contains(err.Error(), "DESTROYED") {
			t.Fatalf("access of a destroyed version: %v", err)
		}
		if _, err := c.EnableSecretVersion(ctx, &secretmanagerpb.EnableSecretVersionRequest{Name: v1.Name}); canonical(err) != "FAILED_PRECONDITION" {
			t.Fatalf("enable of a destroyed version: %v", err)
		}
		if g, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: project + "/secrets/db"}); err != nil || g.Name != secName {
			t.Fatalf("GetSecret: %v %v", err, g)
		}
		if err := c.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: project + "/secrets/db"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: project + "/secrets/db"}); canonical(err) != "NOT_FOUND" {
			t.Fatalf("after delete: %v", err)
		}
		if n := s.Count("AccessSecretVersion"); n != 5 {
			t.Errorf("Count(AccessSecretVersion) = %d, want 5", n)
		}
	})
}

// The errors a provider tells apart, through both clients.
func TestErrors(t *testing.T) {
	transports(t, secretmanageremu.Options{}, func(t *testing.T, s *secretmanageremu.Server, c *secretmanager.Client) {
		ctx := context.Background()
		s.AddVersion(project+"/secrets/db", []byte("pw"))
		s.AddVersion(project+"/secrets/private", []byte("pw"))
		s.Deny("AccessSecretVersion", project+"/secrets/private")
		access := func(name string) error {
			_, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, fast)
			return err
		}
		for _, e := range []struct {
			name, want, text string
		}{
			{project + "/secrets/none/versions/latest", "NOT_FOUND", "not found or has no versions"},
			{project + "/secrets/db/versions/7", "NOT_FOUND", "Secret Version ["},
			{project + "/secrets/private/versions/latest", "PERMISSION_DENIED", "Permission 'secretmanager.versions.access' denied"},
		} {
			if err := access(e.name); canonical(err) != e.want || !strings.Contains(err.Error(), e.text) {
				t.Errorf("access %s: %s %v, want %s", e.name, canonical(err), err, e.want)
			}
		}
		if _, err := c.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: project + "/secrets/private/versions/1"}); err != nil {
			t.Errorf("GetSecretVersion is not denied: %v", err)
		}
		if _, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: project, SecretId: "db", Secret: automatic()}); canonical(err) != "ALREADY_EXISTS" {
			t.Errorf("existing secret: %v", err)
		}
		if _, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: project, SecretId: "bad.id", Secret: automatic()}); canonical(err) != "INVALID_ARGUMENT" {
			t.Errorf("bad id: %v", err)
		}
		if _, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: project, SecretId: "norepl", Secret: &secretmanagerpb.Secret{}}); canonical(err) != "INVALID_ARGUMENT" {
			t.Errorf("no replication: %v", err)
		}
		add := func(p *secretmanagerpb.SecretPayload) error {
			_, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: project + "/secrets/db", Payload: p})
			return err
		}
		if err := add(&secretmanagerpb.SecretPayload{Data: []byte("x"), DataCrc32C: proto.Int64(1)}); canonical(err) != "INVALID_ARGUMENT" {
			t.Errorf("checksum mismatch: %v", err)
		}
		if err := add(&secretmanagerpb.SecretPayload{Data: make([]byte, 65537)}); canonical(err) != "INVALID_ARGUMENT" {
			t.Errorf("too large: %v", err)
		}
		if _, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: project + "/secrets/none", Payload: &secretmanagerpb.SecretPayload{Data: []byte("x")}}); canonical(err) != "NOT_FOUND" {
			t.Errorf("add to a missing secret: %v", err)
		}

		// Faults: 429 and 503 are retried by the client's policy; 500 is not; a timeout ends with the context.
		for _, f := range []secretmanageremu.Fault{secretmanageremu.Throttle, secretmanageremu.Unavailable} {
			s.ResetRequests()
			s.FailOp("AccessSecretVersion", 2, f)
			if err := access(project + "/secrets/db/versions/latest"); err != nil {
				t.Errorf("%s twice, then success: %v", f, err)
			}
			if n := s.Count("AccessSecretVersion"); n != 3 {
				t.Errorf("%s: %d calls, want 3", f, n)
			}
		}
		s.Fail(1, secretmanageremu.Throttle)
		if _, err := c.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: project + "/secrets/db/versions/latest"}); canonical(err) != "RESOURCE_EXHAUSTED" || !strings.Contains(err.Error(), "Quota exceeded") {
			t.Errorf("throttled, no retry policy: %v", err)
		}
		s.Fail(1, secretmanageremu.ServerError)
		if err := access(project + "/secrets/db/versions/latest"); canonical(err) != "INTERNAL" {
			t.Errorf("500: %v", err)
		}
		s.Fail(1, secretmanageremu.Timeout)
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := c.AccessSecretVersion(tctx, &secretmanagerpb.AccessSecretVersionRequest{Name: project + "/secrets/db/versions/latest"})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("timeout: %v", err)
		}
	})
}

// Projects: names come back with the project's number; a project outside Options.Projects is PERMISSION_DENIED;
// with Options.Token, a request without it is UNAUTHENTICATED.
func TestProjectsAndToken(t *testing.T) {
	ctx := context.Background()
	s := secretmanageremu.New(secretmanageremu.Options{Projects: map[string]int64{"p1": 111}, Token: "tok"})
	defer s.Close()
	if _, err := s.AddVersion("projects/p1/secrets/db", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	anon := restClient(t, s)
	if _, err := anon.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/p1/secrets/db/versions/1"}, fast); canonical(err) != "UNAUTHENTICATED" {
		t.Fatalf("without a token: %v", err)
	}
	c := restClient(t, s, option.WithHTTPClient(&http.Client{Transport: bearer{"tok"}}))
	acc, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/p1/secrets/db/versions/1"}, fast)
	if err != nil || acc.Name != "projects/111/secrets/db/versions/1" {
		t.Fatalf("with the token: %v %v", err, acc)
	}
	if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/other/secrets/db/versions/1"}, fast); canonical(err) != "PERMISSION_DENIED" {
		t.Fatalf("unknown project: %v", err)
	}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
