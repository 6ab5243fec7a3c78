package secretsemu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/providers/aws/secretsemu"
)

const accessKey = "AKIDSECRETSEMUTEST"

// config is an SDK configuration with static test credentials, no instance metadata, and retries without delay.
func config(t *testing.T, key string) aws.Config {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return aws.Config{
		Region:      secretsemu.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider(key, "test-secret-key", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
}

func clients(t *testing.T, s *secretsemu.Server) (*secretsmanager.Client, *ssm.Client) {
	cfg := config(t, accessKey)
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(s.URL()) })
	ps := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(s.URL()) })
	return sm, ps
}

func newServer(t *testing.T) *secretsemu.Server {
	s := secretsemu.New(secretsemu.Options{AccessKeyID: accessKey})
	t.Cleanup(s.Close)
	return s
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// A secret's life through the SDK: create, read by name and ARN, rotate (AWSCURRENT moves, the old version is
// AWSPREVIOUS), describe without reading, read an older version by id or label, delete and restore.
func TestSecretsManagerVersions(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	sm, _ := clients(t, s)

	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"), SecretString: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-")+6 {
		t.Fatalf("ARN %q", arn)
	}
	v1 := aws.ToString(created.VersionId)
	for _, id := range []string{"prod/db", arn, strings.TrimSuffix(arn, arn[len(arn)-7:])} {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue %s: %v", id, err)
		}
		if aws.ToString(out.SecretString) != "v1" || aws.ToString(out.VersionId) != v1 || aws.ToString(out.ARN) != arn ||
			aws.ToString(out.Name) != "prod/db" || out.CreatedDate == nil || !equal(out.VersionStages, "AWSCURRENT") {
			t.Fatalf("GetSecretValue %s = %+v", id, out)
		}
	}
	// The same token and value again changes nothing; the same token with another value is refused.
	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v2")})
	if err != nil {
		t.Fatal(err)
	}
	v2 := aws.ToString(put.VersionId)
	if v2 == v1 || !equal(put.VersionStages, "AWSCURRENT") {
		t.Fatalf("PutSecretValue = %+v", put)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v2"), ClientRequestToken: aws.String(v2)}); err != nil {
		t.Fatalf("idempotent repeat: %v", err)
	}
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("other"), ClientRequestToken: aws.String(v2)})
	if e := new(smtypes.ResourceExistsException); !errors.As(err, &e) {
		t.Fatalf("same token, other value: %v", err)
	}
	desc, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.VersionIdsToStages) != 2 || !equal(desc.VersionIdsToStages[v2], "AWSCURRENT") || !equal(desc.VersionIdsToStages[v1], "AWSPREVIOUS") ||
		desc.LastAccessedDate == nil || desc.CreatedDate == nil || aws.ToString(desc.ARN) != arn {
		t.Fatalf("DescribeSecret = %+v", desc)
	}
	prev, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != "v1" {
		t.Fatalf("AWSPREVIOUS: %v %+v", err, prev)
	}
	// A third version: v1 loses its label but stays readable by id.
	arnOOB, v3 := s.SetSecretString("prod/db", "v3")
	if arnOOB != arn {
		t.Fatalf("SetSecretString ARN %s, want %s", arnOOB, arn)
	}
	desc, _ = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if _, ok := desc.VersionIdsToStages[v1]; ok || !equal(desc.VersionIdsToStages[v3], "AWSCURRENT") || !equal(desc.VersionIdsToStages[v2], "AWSPREVIOUS") {
		t.Fatalf("after a third version: %v", desc.VersionIdsToStages)
	}
	old, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(v1)})
	if err != nil || aws.ToString(old.SecretString) != "v1" || len(old.VersionStages) != 0 {
		t.Fatalf("deprecated version by id: %v %+v", err, old)
	}
	// Binary secrets.
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: []byte{0, 1, 2, 255}}); err != nil {
		t.Fatal(err)
	}
	bin, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || string(bin.SecretBinary) != "\x00\x01\x02\xff" || bin.SecretString != nil {
		t.Fatalf("binary: %v %+v", err, bin)
	}
	// Deletion: reads are refused, DescribeSecret shows the date, RestoreSecret brings it back.
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if e := new(smtypes.InvalidRequestException); !errors.As(err, &e) || !strings.Contains(e.ErrorMessage(), "marked for deletion") {
		t.Fatalf("read of a deleted secret: %v", err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"), SecretString: aws.String("x")}); code(err) != "InvalidRequestException" {
		t.Fatalf("create over a deleted name: %v", err)
	}
	if d, _ := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); d.DeletedDate == nil {
		t.Fatal("DescribeSecret of a deleted secret has no DeletedDate")
	}
	if _, err := sm.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil || aws.ToString(out.SecretString) != "v3" {
		t.Fatalf("after restore: %v %+v", err, out)
	}
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("after a forced delete: %v", err)
	}
	if n := s.Count("GetSecretValue"); n != 8 {
		t.Errorf("Count(GetSecretValue) = %d, want 8", n)
	}
}

func equal(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// Every error a provider must tell apart, as the SDK surfaces it.
func TestSecretsManagerErrors(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	sm, _ := clients(t, s)
	arn, _ := s.SetSecretString("db", "pw")
	s.SetSecretString("denied", "pw")
	s.SetSecretString("broken", "pw")
	s.Deny("GetSecretValue", "denied")
	s.BreakKey("broken")

	get := func(in *secretsmanager.GetSecretValueInput) error { _, err := sm.GetSecretValue(ctx, in); return err }
	var nf *smtypes.ResourceNotFoundException
	if err := get(&secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")}); !errors.As(err, &nf) || nf.ErrorMessage() != "Secrets Manager can't find the specified secret." {
		t.Errorf("missing secret: %v", err)
	}
	if err := get(&secretsmanager.GetSecretValueInput{SecretId: aws.String(arn + "x")}); !errors.As(err, &nf) {
		t.Errorf("unknown ARN: %v", err)
	}
	if err := get(&secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING")}); !errors.As(err, &nf) || !strings.Contains(nf.ErrorMessage(), "staging label: AWSPENDING") {
		t.Errorf("missing stage: %v", err)
	}
	if err := get(&secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String("00000000-0000-4000-8000-000000000000")}); !errors.As(err, &nf) || !strings.Contains(nf.ErrorMessage(), "VersionId") {
		t.Errorf("missing version: %v", err)
	}
	err := get(&secretsmanager.GetSecretValueInput{SecretId: aws.String("denied")})
	if code(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "not authorized to perform: secretsmanager:GetSecretValue") {
		t.Errorf("denied: %v", err)
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("denied")}); err != nil {
		t.Errorf("DescribeSecret is not denied: %v", err)
	}
	var df *smtypes.DecryptionFailure
	if err := get(&secretsmanager.GetSecretValueInput{SecretId: aws.String("broken")}); !errors.As(err, &df) {
		t.Errorf("broken key: %v", err)
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("broken")}); err != nil {
		t.Errorf("DescribeSecret needs no decryption: %v", err)
	}
	var ip *smtypes.InvalidParameterException
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("a"), SecretBinary: []byte("b")}); !errors.As(err, &ip) {
		t.Errorf("both values: %v", err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!"), SecretString: aws.String("a")}); !errors.As(err, &ip) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String("a")}); code(err) != "ResourceExistsException" {
		t.Errorf("existing name: %v", err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), SecretString: aws.String(strings.Repeat("x", 65537))}); !errors.As(err, &ip) {
		t.Errorf("too large: %v", err)
	}
	var ir *smtypes.InvalidRequestException
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db")}); !errors.As(err, &ir) {
		t.Errorf("no value: %v", err)
	}
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db"), RecoveryWindowInDays: aws.Int64(3)}); !errors.As(err, &ip) {
		t.Errorf("short recovery window: %v", err)
	}
}

// Throttling and 5xx are retried by the SDK and succeed within its attempts; a timeout ends with the caller's
// context; a reset is a transport error; a wrong key, region or service is refused before any operation runs.
func TestFaultsAndAuth(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	sm, ps := clients(t, s)
	s.SetSecretString("db", "pw")
	read := func() error {
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
		return err
	}
	for _, f := range []secretsemu.Fault{secretsemu.Throttle, secretsemu.ServerError, secretsemu.Unavailable} {
		s.ResetRequests()
		s.FailOp("GetSecretValue", 2, f)
		if err := read(); err != nil {
			t.Errorf("%s twice, then success within 3 attempts: %v", f, err)
		}
		if n := s.Count("GetSecretValue"); n != 3 {
			t.Errorf("%s: %d requests, want 3", f, n)
		}
	}
	s.Fail(3, secretsemu.Throttle)
	if err := read(); code(err) != "ThrottlingException" {
		t.Errorf("throttled past the retry budget: %v", err)
	}
	s.FailOp("GetParameter", 3, secretsemu.ServerError)
	if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("p")}); code(err) != "InternalServerError" {
		t.Errorf("SSM 500: %v", err)
	}

	s.Fail(1, secretsemu.Timeout)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := sm.GetSecretValue(tctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
	s.Fail(3, secretsemu.Reset)
	if err := read(); err == nil || code(err) != "" {
		t.Errorf("reset: %v, want a transport error", err)
	}
	if err := read(); err != nil {
		t.Errorf("after the faults: %v", err)
	}

	other := secretsmanager.NewFromConfig(config(t, "AKIDUNKNOWN"), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(s.URL()) })
	if _, err := other.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}); code(err) != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v", err)
	}
	cfg := config(t, accessKey)
	cfg.Region = "eu-west-1"
	wrong := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(s.URL()) })
	if _, err := wrong.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}); code(err) != "InvalidSignatureException" {
		t.Errorf("other region: %v", err)
	}
}

// Parameter Store: String and SecureString, versions, selectors, decryption, and its errors.
func TestParameters(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	_, ps := clients(t, s)

	put, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/prod/db/password"), Value: aws.String("pw1"), Type: ssmtypes.ParameterTypeSecureString})
	if err != nil || put.Version != 1 || put.Tier != ssmtypes.ParameterTierStandard {
		t.Fatalf("PutParameter: %v %+v", err, put)
	}
	var exists *ssmtypes.ParameterAlreadyExists
	if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/prod/db/password"), Value: aws.String("pw2")}); !errors.As(err, &exists) {
		t.Fatalf("without Overwrite: %v", err)
	}
	if put, err = ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/prod/db/password"), Value: aws.String("pw2"), Overwrite: aws.Bool(true)}); err != nil || put.Version != 2 {
		t.Fatalf("overwrite: %v %+v", err, put)
	}
	got, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/db/password"), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Parameter
	if aws.ToString(p.Value) != "pw2" || p.Version != 2 || p.Type != ssmtypes.ParameterTypeSecureString ||
		aws.ToString(p.ARN) != "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password" || p.LastModifiedDate == nil {
		t.Fatalf("GetParameter = %+v", p)
	}
	enc, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/db/password")})
	if err != nil || strings.Contains(aws.ToString(enc.Parameter.Value), "pw") || aws.ToString(enc.Parameter.Value) == "" {
		t.Fatalf("without decryption: %v %+v", err, enc.Parameter)
	}
	v1, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(aws.ToString(p.ARN) + ":1"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(v1.Parameter.Value) != "pw1" || aws.ToString(v1.Parameter.Selector) != ":1" || aws.ToString(v1.Parameter.Name) != "/prod/db/password" {
		t.Fatalf("ARN:1: %v %+v", err, v1)
	}
	var vnf *ssmtypes.ParameterVersionNotFound
	if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/db/password:9")}); !errors.As(err, &vnf) {
		t.Errorf("missing version: %v", err)
	}
	var pnf *ssmtypes.ParameterNotFound
	if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/none")}); !errors.As(err, &pnf) {
		t.Errorf("missing parameter: %v", err)
	}
	s.SetParameter("plain", secretsemu.TypeString, "hello")
	if out, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("plain")}); err != nil || aws.ToString(out.Parameter.Value) != "hello" {
		t.Errorf("String parameter: %v %+v", err, out)
	}
	s.BreakKey("/prod/db/password")
	var kid *ssmtypes.InvalidKeyId
	if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/db/password"), WithDecryption: aws.Bool(true)}); !errors.As(err, &kid) {
		t.Errorf("broken key: %v", err)
	}
	s.Deny("", "plain")
	if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("plain")}); code(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "ssm:GetParameter") {
		t.Errorf("denied: %v", err)
	}
	for _, c := range []struct {
		in   ssm.PutParameterInput
		code string
	}{
		{ssm.PutParameterInput{Name: aws.String("aws-thing"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{ssm.PutParameterInput{Name: aws.String("a/b"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{ssm.PutParameterInput{Name: aws.String("new"), Value: aws.String("x")}, "ValidationException"},
		{ssm.PutParameterInput{Name: aws.String("big"), Value: aws.String(strings.Repeat("x", 4097)), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{ssm.PutParameterInput{Name: aws.String("/prod/db/password"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}, "HierarchyTypeMismatchException"},
		{ssm.PutParameterInput{Name: aws.String(strings.Repeat("/a", 16)), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, "HierarchyLevelLimitExceededException"},
	} {
		if _, err := ps.PutParameter(ctx, &c.in); code(err) != c.code {
			t.Errorf("PutParameter %s: %v, want %s", aws.ToString(c.in.Name), err, c.code)
		}
	}
	if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("big"), Value: aws.String(strings.Repeat("x", 4097)), Type: ssmtypes.ParameterTypeString, Tier: ssmtypes.ParameterTierAdvanced}); err != nil {
		t.Errorf("advanced tier: %v", err)
	}
}

// CreateSecret holds tags to Secrets Manager's limits: 50, keys of 1–128 and values of up to 256 characters, no
// aws: prefix.
func TestSecretsManagerTagLimits(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	sm, _ := clients(t, s)
	tags := func(n int, key, value string) []smtypes.Tag {
		var out []smtypes.Tag
		for i := range n {
			out = append(out, smtypes.Tag{Key: aws.String(key + strings.Repeat("k", i)), Value: aws.String(value)})
		}
		return out
	}
	for i, c := range []struct {
		tags []smtypes.Tag
		code string
	}{
		{tags(50, "k", "v"), ""},
		{tags(51, "k", "v"), "InvalidParameterException"},
		{tags(1, strings.Repeat("é", 128), strings.Repeat("v", 256)), ""},
		{tags(1, strings.Repeat("k", 129), "v"), "InvalidParameterException"},
		{tags(1, "k", strings.Repeat("v", 257)), "InvalidParameterException"},
		{tags(1, "aws:owner", "v"), "InvalidParameterException"},
	} {
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tagged-" + string(rune('a'+i))),
			SecretString: aws.String("v"), Tags: c.tags})
		if code(err) != c.code {
			t.Errorf("case %d: %v, want %q", i, err, c.code)
		}
	}
}
