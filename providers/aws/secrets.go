package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// LabelSecrets is the docker label of the container "app" that records, per environment variable set from a
// secret, the secret's name, its fingerprint and the valueFrom sent: names, fingerprints and ARNs only, never a
// value. List reads Observed.SecretFingerprints and Spec.SecretEnv back from it and from the container's own
// secrets[].
const LabelSecrets = "berth.dev/secrets"

// LabelSecretName tags a Secrets Manager secret berth made with the name of the berth secret it holds.
const LabelSecretName = "berth.dev/secret"

// maxSecretNameLen is Secrets Manager's limit on a secret's name.
const maxSecretNameLen = 512

// secretEntry is one environment variable of LabelSecrets.
type secretEntry struct {
	Secret      string `json:"secret"`
	Fingerprint string `json:"fingerprint"`
	ValueFrom   string `json:"valueFrom"`
}

// smName is the Secrets Manager secret berth keeps a SOPS secret's value in: berth/<instance>/<env>/<workload>/
// <secret>, each part mapped to the characters Secrets Manager allows (letters, digits, _+=.@-), cut to 512 with a
// hash suffix when longer.
func smName(k wkey, secret string) string {
	part := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_+=.@-", r):
				b.WriteRune(r)
			default:
				b.WriteByte('-')
			}
		}
		return b.String()
	}
	name := smPrefix(k) + part(secret)
	if len(name) <= maxSecretNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	return name[:maxSecretNameLen-len(suffix)] + suffix
}

// smPrefix starts the name of every Secrets Manager secret berth keeps for workload k.
func smPrefix(k wkey) string {
	return "berth/" + sanitize(k.Instance) + "/" + sanitize(k.Environment) + "/" + sanitize(k.Workload) + "/"
}

// smVersion is the version id (ClientRequestToken) of a value: a name-based UUID (the shape Secrets Manager's own
// version ids have) derived from the secret's name and fingerprint, so the same value is one version however
// often it is applied, a rotated one a new version, and the version id in valueFrom changes with the value (a
// new task definition revision).
func smVersion(name, fingerprint string) string {
	sum := sha256.Sum256([]byte("berth-secret-version\x00" + name + "\x00" + fingerprint))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5 (name-based, SHA)
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(u)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// pinVersion is ECS's valueFrom for one version of a Secrets Manager secret: ARN:json-key:version-stage:version-id.
func pinVersion(arn, version string) string { return arn + ":::" + version }

// secretARN is the secret's ARN in a Secrets Manager valueFrom (without ECS's :json-key:stage:version tail), or ""
// when valueFrom is not a Secrets Manager ARN.
func secretARN(valueFrom string) string {
	parts := strings.Split(valueFrom, ":")
	if len(parts) < 7 || parts[0] != "arn" || parts[2] != "secretsmanager" || parts[5] != "secret" {
		return ""
	}
	return strings.Join(parts[:7], ":")
}

// ownedSecret tells whether valueFrom names a Secrets Manager secret of berth's for workload k.
func ownedSecret(k wkey, valueFrom string) bool {
	arn := secretARN(valueFrom)
	if arn == "" {
		return false
	}
	return strings.HasPrefix(arn[strings.Index(arn, ":secret:")+len(":secret:"):], smPrefix(k))
}

// secretRefs returns, for each secret the workload uses, the valueFrom its container definition gets: the
// reference itself for an AWS secret (Secrets Manager or SSM ARN: ECS resolves it at task start with the
// execution role), a pinned version of berth's own Secrets Manager secret for a SOPS one (created or given a new
// version here, before the task definition that names it is registered).
func (p *Provider) secretRefs(ctx context.Context, k wkey, d providers.Desired) (map[string]string, error) {
	w := d.Workload
	if len(w.Files) > 0 {
		return nil, providers.Permanent(fmt.Errorf("workload %q: files: ECS has no secret files; deliver the secret as env", w.Name))
	}
	refs := map[string]string{}
	for _, n := range w.Secrets() {
		sec, ok := d.Secrets[n]
		if !ok {
			return nil, providers.Permanent(fmt.Errorf("workload %q: secret %s was not resolved", w.Name, n))
		}
		switch kind := sec.Source.Kind(); kind {
		case schema.SecretAWS:
			refs[n] = sec.Source.AWS.ARN
		case schema.SecretSOPS:
			from, err := p.ensureSecret(ctx, k, sec, previewTags(d.Owner, d.Preview))
			if err != nil {
				return nil, fmt.Errorf("workload %s: secret %s: %w", k.Workload, n, err)
			}
			refs[n] = from
		default:
			return nil, providers.Permanent(fmt.Errorf("workload %q: secret %s: %s secrets cannot be delivered to ECS", w.Name, n, kind))
		}
	}
	return refs, nil
}

// ensureSecret makes berth's Secrets Manager secret for a SOPS secret hold sec.Value as the version
// smVersion(name, fingerprint) — CreateSecret with the ownership tags, or PutSecretValue of a new version (a
// version that exists is not sent again; a secret scheduled for deletion is restored) — and returns the valueFrom
// that pins that version.
func (p *Provider) ensureSecret(ctx context.Context, k wkey, sec providers.Secret, extra []types.Tag) (string, error) {
	if p.sm == nil {
		return "", providers.Permanent(errors.New("no Secrets Manager client: the provider was built with NewWithClient without WithSecretsManager"))
	}
	if !utf8.Valid(sec.Value) {
		return "", providers.Permanent(errors.New("the value is not UTF-8 text: ECS sets environment variables from a secret's SecretString only"))
	}
	name := smName(k, sec.Name)
	version := smVersion(name, sec.Fingerprint)
	for attempt := 0; ; attempt++ {
		desc, err := p.describeSecret(ctx, name)
		if err != nil {
			return "", err
		}
		if desc == nil {
			arn, err := p.createSecret(ctx, k, sec, name, version, extra)
			var exists *smtypes.ResourceExistsException
			var invalid *smtypes.InvalidRequestException
			if (errors.As(err, &exists) || errors.As(err, &invalid)) && attempt == 0 {
				continue // made meanwhile (a lost answer) or scheduled for deletion: describe again
			}
			if err != nil {
				return "", err
			}
			return pinVersion(arn, version), nil
		}
		arn := aws.ToString(desc.ARN)
		tags := map[string]string{}
		for _, t := range desc.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if !k.owns(tags) || tags[LabelSecretName] != sec.Name {
			return "", providers.Permanent(fmt.Errorf("secrets manager secret %s exists and is not owned by berth instance %q environment %q workload %q; remove it or rename the secret",
				name, k.Instance, k.Environment, k.Workload))
		}
		if desc.DeletedDate != nil {
			p.log.InfoContext(ctx, "restoring secrets manager secret", "env", k.Environment, "workload", k.Workload, "secret", sec.Name, "name", name)
			if err := p.callSM(ctx, "RestoreSecret", func(ctx context.Context) error {
				_, err := p.sm.RestoreSecret(ctx, &sm.RestoreSecretInput{SecretId: aws.String(arn)})
				return err
			}); err != nil {
				return "", err
			}
		}
		if _, ok := desc.VersionIdsToStages[version]; !ok {
			p.log.InfoContext(ctx, "putting a new secrets manager secret version", "env", k.Environment, "workload", k.Workload,
				"secret", sec.Name, "name", name, "fingerprint", sec.Fingerprint)
			// The same token with the same value is answered with the existing version (a repeat, a value
			// rotated back to one whose version lost its labels).
			if err := p.callSM(ctx, "PutSecretValue", func(ctx context.Context) error {
				_, err := p.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{
					SecretId: aws.String(arn), ClientRequestToken: aws.String(version), SecretString: aws.String(string(sec.Value)),
				})
				return err
			}); err != nil {
				return "", err
			}
		}
		return pinVersion(arn, version), nil
	}
}

// describeSecret is DescribeSecret of a name; nil when no such secret exists.
func (p *Provider) describeSecret(ctx context.Context, id string) (*sm.DescribeSecretOutput, error) {
	var out *sm.DescribeSecretOutput
	err := p.callSM(ctx, "DescribeSecret", func(ctx context.Context) error {
		var err error
		out, err = p.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(id)})
		return err
	})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	return out, err
}

func (p *Provider) createSecret(ctx context.Context, k wkey, sec providers.Secret, name, version string, extra []types.Tag) (string, error) {
	p.log.InfoContext(ctx, "creating secrets manager secret", "env", k.Environment, "workload", k.Workload,
		"secret", sec.Name, "name", name, "fingerprint", sec.Fingerprint)
	tags := []smtypes.Tag{{Key: aws.String(LabelSecretName), Value: aws.String(sec.Name)}}
	for _, t := range append(ownerTags(k), extra...) {
		tags = append(tags, smtypes.Tag{Key: t.Key, Value: t.Value})
	}
	var out *sm.CreateSecretOutput
	err := p.callSM(ctx, "CreateSecret", func(ctx context.Context) error {
		var err error
		out, err = p.sm.CreateSecret(ctx, &sm.CreateSecretInput{
			Name: aws.String(name), ClientRequestToken: aws.String(version), SecretString: aws.String(string(sec.Value)),
			Description: aws.String(fmt.Sprintf("berth: secret %s of workload %s (instance %s, environment %s), from SOPS; managed by berth",
				sec.Name, k.Workload, k.Instance, k.Environment)),
			Tags: tags,
		})
		return err
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ARN), nil
}

// deleteSecrets removes berth's Secrets Manager secrets named by the valueFroms in arns (secretARN form) at once
// (ForceDeleteWithoutRecovery: the value is in the repository, no recovery window is needed), each only if it
// carries k's tags.
func (p *Provider) deleteSecrets(ctx context.Context, k wkey, arns []string) error {
	if p.sm == nil {
		return nil
	}
	for _, arn := range arns {
		desc, err := p.describeSecret(ctx, arn)
		if err != nil {
			return err
		}
		if desc == nil {
			continue
		}
		tags := map[string]string{}
		for _, t := range desc.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if !k.owns(tags) {
			continue
		}
		p.log.InfoContext(ctx, "deleting secrets manager secret", "env", k.Environment, "workload", k.Workload, "name", aws.ToString(desc.Name))
		err = p.callSM(ctx, "DeleteSecret", func(ctx context.Context) error {
			_, err := p.sm.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)})
			return err
		})
		var nf *smtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			return err
		}
	}
	return nil
}

// ownedSecretARNs lists, without repeats and sorted, the berth secrets of k that the revisions' containers name.
func ownedSecretARNs(k wkey, infos ...tdInfo) []string {
	seen := map[string]bool{}
	for _, info := range infos {
		for _, s := range info.secrets {
			if from := aws.ToString(s.ValueFrom); ownedSecret(k, from) {
				seen[secretARN(from)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// containerSecrets are the container's secrets[] (sorted by variable) and its LabelSecrets label, for the
// secrets w uses through SecretEnv; refs maps each secret to its valueFrom.
func containerSecrets(d providers.Desired, refs map[string]string) ([]types.Secret, map[string]string, error) {
	w := d.Workload
	if len(w.SecretEnv) == 0 {
		return nil, nil, nil
	}
	vars := make([]string, 0, len(w.SecretEnv))
	for v := range w.SecretEnv {
		vars = append(vars, v)
	}
	sort.Strings(vars)
	var out []types.Secret
	entries := map[string]secretEntry{}
	for _, v := range vars {
		n := w.SecretEnv[v]
		from, ok := refs[n]
		if !ok {
			return nil, nil, providers.Permanent(fmt.Errorf("workload %q: env.%s: secret %s was not resolved", w.Name, v, n))
		}
		out = append(out, types.Secret{Name: aws.String(v), ValueFrom: aws.String(from)})
		entries[v] = secretEntry{Secret: n, Fingerprint: d.Secrets[n].Fingerprint, ValueFrom: from}
	}
	label, _ := json.Marshal(entries) // sorted keys
	return out, map[string]string{LabelSecrets: string(label)}, nil
}

// readSecrets reads a container's secrets[] back: each variable's secret name where LabelSecrets records it with
// the same valueFrom (else the valueFrom itself, a reference berth did not write), and the fingerprints recorded.
func readSecrets(c *types.ContainerDefinition) (env, fingerprints map[string]string) {
	if len(c.Secrets) == 0 {
		return nil, nil
	}
	var entries map[string]secretEntry
	if l, ok := c.DockerLabels[LabelSecrets]; ok {
		_ = json.Unmarshal([]byte(l), &entries) // a label edited into garbage reads as no label
	}
	env = map[string]string{}
	for _, s := range c.Secrets {
		v, from := aws.ToString(s.Name), aws.ToString(s.ValueFrom)
		e, ok := entries[v]
		if !ok || e.ValueFrom != from || e.Secret == "" {
			env[v] = from
			continue
		}
		env[v] = e.Secret
		if fingerprints == nil {
			fingerprints = map[string]string{}
		}
		fingerprints[e.Secret] = e.Fingerprint
	}
	return env, fingerprints
}

// explainSM explains a permanent Secrets Manager error: a denied access with the permissions berth's identity
// needs on its own secrets (and what the task execution role needs), anything else as explain does.
func (p *Provider) explainSM(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) || (ae.ErrorCode() != "AccessDeniedException" && ae.ErrorCode() != "AccessDenied") {
		return p.explain(err)
	}
	quote := strings.TrimRight(redact.Body([]byte(err.Error()), quoteMax), ".")
	return &explained{err: err, msg: fmt.Sprintf("aws target %q: Secrets Manager denied access: %s. To fix: allow the "+
		"IAM identity berth runs as secretsmanager:DescribeSecret, CreateSecret, PutSecretValue, TagResource, "+
		"RestoreSecret and DeleteSecret on arn:aws:secretsmanager:%s:<account>:secret:berth/* (and kms:Encrypt / "+
		"kms:GenerateDataKey on the key, if not the default aws/secretsmanager one); the task execution role needs "+
		"secretsmanager:GetSecretValue on the same secrets", p.target, quote, p.set.region)}
}

// sameSecrets tells whether two secrets[] lists set the same variables from the same valueFroms.
func sameSecrets(a, b []types.Secret) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]string, len(a))
	for _, s := range a {
		m[aws.ToString(s.Name)] = aws.ToString(s.ValueFrom)
	}
	for _, s := range b {
		if v, ok := m[aws.ToString(s.Name)]; !ok || v != aws.ToString(s.ValueFrom) {
			return false
		}
	}
	return true
}
