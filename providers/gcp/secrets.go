package gcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/grpc/codes"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// metaSecrets is the template metadata key naming the workload's secrets: which variables they set, their
// fingerprints and the Secret Manager versions berth read. Never a value.
const metaSecrets = "berth-secrets"

// secretsMeta is the JSON of metaSecrets.
type secretsMeta struct {
	// Env maps a variable of the container declaration to the secret that sets it.
	Env map[string]string `json:"env"`
	// Secrets are the fingerprints, by secret name.
	Secrets map[string]secretMeta `json:"secrets"`
}

type secretMeta struct {
	Fingerprint string `json:"fingerprint"`
	// Version is the Secret Manager version berth read ("projects/N/secrets/S/versions/V"); "" for SOPS.
	Version string `json:"version,omitempty"`
	// Latest is the secret ("projects/P/secrets/S") of a reference to its latest version: List asks Secret
	// Manager which version that is now (metadata only), so that a new one shows in the plan.
	Latest string `json:"latest,omitempty"`
}

// resolvedSecret is a value to deliver, and the Secret Manager version it was read at ("" for SOPS).
type resolvedSecret struct {
	value   []byte
	version string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// resolveSecrets gives the value of each secret d's workload uses: SOPS values as berth decrypted them, Secret
// Manager references read with the provider's own credentials (the version given, else latest; the payload's
// CRC32C checked) and registered with schema/redact before anything else sees them. It runs before any mutation,
// so a secret that cannot be read changes nothing; PERMISSION_DENIED, NOT_FOUND, a disabled or destroyed version
// and UNAUTHENTICATED are permanent, with Secret Manager's words.
func (p *Provider) resolveSecrets(ctx context.Context, d providers.Desired) (map[string]resolvedSecret, error) {
	names := d.Workload.Secrets()
	if len(names) == 0 {
		return nil, nil
	}
	out := make(map[string]resolvedSecret, len(names))
	for _, n := range names {
		s, ok := d.Secrets[n]
		if !ok {
			return nil, providers.Permanent(fmt.Errorf("gcp: workload %s: secret %s was not resolved by the controller", d.Workload.Name, n))
		}
		switch s.Source.Kind() {
		case schema.SecretSOPS:
			if s.Value == nil {
				return nil, providers.Permanent(fmt.Errorf("gcp: workload %s: secret %s: no value", d.Workload.Name, n))
			}
			out[n] = resolvedSecret{value: s.Value}
		case schema.SecretGCP:
			got, err := p.accessSecret(ctx, s.Source.GCP)
			if err != nil {
				return nil, fmt.Errorf("gcp: %s: %w", s.Where(d.Workload), err)
			}
			out[n] = got
		default:
			return nil, providers.Permanent(fmt.Errorf("gcp: workload %s: secret %s: Compute Engine cannot deliver a %q secret (sops and gcp only)",
				d.Workload.Name, n, s.Source.Kind()))
		}
	}
	return out, nil
}

// versionName is the Secret Manager version a reference names.
func versionName(ref *schema.GCPSecret) string {
	v := ref.Version
	if v == "" {
		v = "latest"
	}
	return ref.Name + "/versions/" + v
}

// accessSecret reads one Secret Manager version.
func (p *Provider) accessSecret(ctx context.Context, ref *schema.GCPSecret) (resolvedSecret, error) {
	if p.secrets == nil {
		return resolvedSecret{}, providers.Permanent(errors.New("no Secret Manager client"))
	}
	name := versionName(ref)
	var resp *secretmanagerpb.AccessSecretVersionResponse
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Logger: p.log,
		Classify: func(err error) providers.Class {
			if secretRetryable(err) {
				return providers.Transient
			}
			return providers.Invalid
		}}
	err := r.Do(ctx, "secret manager "+name, func(ctx context.Context) error {
		var err error
		resp, err = p.secrets.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, noRetry)
		if err != nil {
			return &smError{name: name, who: p.who, err: err}
		}
		data := resp.GetPayload().GetData()
		if c := resp.GetPayload().DataCrc32C; c != nil && int64(crc32.Checksum(data, castagnoli)) != *c {
			return errCorrupt // retried: the answer was damaged on its way
		}
		return nil
	})
	if err != nil {
		return resolvedSecret{}, err
	}
	data := resp.GetPayload().GetData()
	redact.Register(string(data))
	return resolvedSecret{value: data, version: resp.GetName()}, nil
}

var errCorrupt = errors.New("the payload's CRC32C does not match its data")

// secretRetryable: throttling, unavailability, internal errors, timeouts and a damaged payload are retried.
func secretRetryable(err error) bool {
	if errors.Is(err, errCorrupt) {
		return true
	}
	if ae, ok := apierror.FromError(err); ok {
		switch ae.GRPCStatus().Code() {
		case codes.ResourceExhausted, codes.Unavailable, codes.Internal, codes.DeadlineExceeded, codes.Aborted:
			return true
		case codes.Unknown:
			return ae.HTTPCode() == 0 || ae.HTTPCode() >= 500 || ae.HTTPCode() == http.StatusTooManyRequests
		}
		return false
	}
	return retryable(err)
}

// smError is a failed Secret Manager read: its status and words, bounded and redacted, with the fix for the
// permanent ones.
type smError struct {
	name, who string
	err       error
}

func (e *smError) Error() string {
	// The retry names the version read; this is Secret Manager's answer and the fix.
	ae, ok := apierror.FromError(e.err)
	if !ok {
		return redact.String(e.err.Error())
	}
	code := ae.GRPCStatus().Code()
	s := codeName(code) + ": " + strings.TrimSuffix(redact.Body([]byte(ae.GRPCStatus().Message()), 400), ".")
	if code == codes.Unknown || ae.GRPCStatus().Message() == "" {
		s = strings.TrimSuffix(redact.Body([]byte(ae.Error()), 400), ".")
	}
	who := "the identity of the target's credentials"
	if e.who != "" {
		who = e.who
	}
	switch code {
	case codes.PermissionDenied:
		s += ". To fix: grant " + who + " roles/secretmanager.secretAccessor on the secret (or its project), and check that the secret exists"
	case codes.NotFound:
		s += ". To fix: check the secret's name and version, or add a version"
	case codes.Unauthenticated:
		s += ". To fix: renew the target's credentials"
	case codes.FailedPrecondition, codes.InvalidArgument:
		s += ". To fix: enable the version, or reference an enabled one"
	}
	return s
}

func (e *smError) Unwrap() error { return e.err }

// codeName is a gRPC code as Google writes it: PERMISSION_DENIED.
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// withSecrets is w with its secrets delivered as values of the container declaration, the only path
// Container-Optimized OS offers: every SecretEnv variable becomes an env value. vals are the values resolved.
func withSecrets(w schema.Workload, vals map[string]resolvedSecret) schema.Workload {
	if len(w.SecretEnv) == 0 {
		return w
	}
	env := make(map[string]string, len(w.Env)+len(w.SecretEnv))
	for k, v := range w.Env {
		env[k] = v
	}
	for k, n := range w.SecretEnv {
		env[k] = string(vals[n].value)
	}
	w.Env = env
	return w
}

// secretsItem is the metadata item naming d's secrets (nil for a workload without any).
func secretsItem(d providers.Desired, vals map[string]resolvedSecret) *computepb.Items {
	names := d.Workload.Secrets()
	if len(names) == 0 {
		return nil
	}
	m := secretsMeta{Env: d.Workload.SecretEnv, Secrets: map[string]secretMeta{}}
	for _, n := range names {
		sm := secretMeta{Fingerprint: d.Secrets[n].Fingerprint, Version: vals[n].version}
		if ref := d.Secrets[n].Source.GCP; ref != nil && (ref.Version == "" || ref.Version == "latest") {
			sm.Latest = ref.Name
		}
		m.Secrets[n] = sm
	}
	b, _ := json.Marshal(m) // sorted keys
	v := string(b)
	return &computepb.Items{Key: &[]string{metaSecrets}[0], Value: &v}
}

// secretsOf reads a template's metaSecrets item.
func secretsOf(t *computepb.InstanceTemplate) (secretsMeta, bool) {
	for _, it := range t.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() == metaSecrets {
			var m secretsMeta
			if json.Unmarshal([]byte(it.GetValue()), &m) == nil {
				return m, true
			}
		}
	}
	return secretsMeta{}, false
}

// templateKey is the hash a spec's template is named by: the spec hash, folded with the Secret Manager versions
// read when there are any, so that a new latest version (same spec hash) is a new template and a rolling update.
func templateKey(specHash string, vals map[string]resolvedSecret) string {
	var vs []string
	for n, v := range vals {
		if v.version != "" {
			vs = append(vs, n+"="+v.version)
		}
	}
	if len(vs) == 0 {
		return specHash
	}
	slices.Sort(vs)
	sum := sha256.Sum256([]byte(specHash + "\x00" + strings.Join(vs, "\x00")))
	return hex.EncodeToString(sum[:])[:len(specHash)]
}

// rotated is the fingerprint List reports for a secret whose latest version is no longer the one the template
// holds: never a desired fingerprint, so the plan shows the secret's value changed.
const rotated = "+rotated"

// observedFingerprints are the fingerprints of a template's secrets; a reference to a latest version that Secret
// Manager now resolves to another version (GetSecretVersion, metadata only: no value is read) is reported as
// rotated. A lookup that fails (the identity may hold secretAccessor but not the viewer role that
// secretmanager.versions.get needs) leaves the fingerprint as written: the next apply reads the latest anyway.
func (p *Provider) observedFingerprints(ctx context.Context, sm secretsMeta) map[string]string {
	out := make(map[string]string, len(sm.Secrets))
	for n, s := range sm.Secrets {
		out[n] = s.Fingerprint
		if s.Latest == "" || p.secrets == nil {
			continue
		}
		v, err := p.secrets.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: s.Latest + "/versions/latest"}, noRetry)
		if err != nil {
			p.log.DebugContext(ctx, "cannot tell the latest version of a secret", "secret", n, "err", redact.Error(err))
			continue
		}
		if v.GetName() != s.Version {
			out[n] = s.Fingerprint + rotated
		}
	}
	return out
}
