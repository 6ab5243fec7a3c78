package azure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/azcred"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// Tags of the secrets a group was given: names and fingerprints only, never values.
const (
	// TagSecretPrefix + secret name = its fingerprint, followed by "@" and the Key Vault version berth resolved
	// for a Key Vault reference.
	TagSecretPrefix = "berth.dev-secret."
	// TagEnvPrefix + variable = the name of the secret that sets it (a secureValue).
	TagEnvPrefix = "berth.dev-env."
	// TagFilePrefix + a hash of the path = "<secret>:<path>" (a file of a secret volume).
	TagFilePrefix = "berth.dev-file."
)

// maxFilePath bounds a secret file's path so that its tag ("<secret>:<path>") stays within Azure's 256 characters.
const maxFilePath = 120

// resolvedSecret is a value to deliver, and the Key Vault version it was read at ("" for SOPS).
type resolvedSecret struct {
	value   []byte
	version string
}

// vaultSuffix is the Key Vault domain of a cloud: the public cloud's for a custom Resource Manager endpoint.
func vaultSuffix(c cloud.Configuration) string {
	switch c.ActiveDirectoryAuthorityHost {
	case cloud.AzureGovernment.ActiveDirectoryAuthorityHost:
		return ".vault.usgovcloudapi.net"
	case cloud.AzureChina.ActiveDirectoryAuthorityHost:
		return ".vault.azure.cn"
	}
	return ".vault.azure.net"
}

// keyVaults caches one azsecrets client per vault.
type keyVaults struct {
	mu      sync.Mutex
	clients map[string]*azsecrets.Client
}

func (p *Provider) vaultClient(vault string) (*azsecrets.Client, error) {
	p.vaults.mu.Lock()
	defer p.vaults.mu.Unlock()
	if c := p.vaults.clients[vault]; c != nil {
		return c, nil
	}
	var o azsecrets.ClientOptions
	if p.KeyVault != nil {
		o = *p.KeyVault
	}
	c, err := azsecrets.NewClient("https://"+vault+p.vaultDomain, p.cred, &o)
	if err != nil {
		return nil, err
	}
	if p.vaults.clients == nil {
		p.vaults.clients = map[string]*azsecrets.Client{}
	}
	p.vaults.clients[vault] = c
	return c, nil
}

// resolveSecrets gives the value of each secret d's workload uses: SOPS values as berth decrypted them, Key Vault
// references read with the provider's own credential (the version given, else the latest) and registered with
// redact before anything else sees them. It runs before any mutation, so a secret that cannot be read changes
// nothing; denied access, a missing secret or vault and a refused token are permanent, with Key Vault's words.
func (p *Provider) resolveSecrets(ctx context.Context, d providers.Desired) (map[string]resolvedSecret, error) {
	names := d.Workload.Secrets()
	if len(names) == 0 {
		return nil, nil
	}
	out := make(map[string]resolvedSecret, len(names))
	for _, n := range names {
		s, ok := d.Secrets[n]
		if !ok {
			return nil, providers.Permanent(fmt.Errorf("azure: workload %s: secret %s was not resolved by the controller", d.Workload.Name, n))
		}
		switch s.Source.Kind() {
		case schema.SecretSOPS:
			if s.Value == nil {
				return nil, providers.Permanent(fmt.Errorf("azure: workload %s: secret %s: no value", d.Workload.Name, n))
			}
			out[n] = resolvedSecret{value: s.Value}
		case schema.SecretAzure:
			ref := s.Source.Azure
			var got resolvedSecret
			err := p.retry(ctx, "key vault "+ref.Vault+" secret "+ref.Name, func() error {
				var err error
				got, err = p.readKeyVault(ctx, ref)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("azure: %s: %w", s.Where(d.Workload), err)
			}
			out[n] = got
		default:
			return nil, providers.Permanent(fmt.Errorf("azure: workload %s: secret %s: Azure Container Instances cannot deliver a %q secret (sops and azure only)",
				d.Workload.Name, n, s.Source.Kind()))
		}
	}
	return out, nil
}

// readKeyVault reads one Key Vault secret (a pinned version or the latest).
func (p *Provider) readKeyVault(ctx context.Context, ref *schema.AzureSecret) (resolvedSecret, error) {
	c, err := p.vaultClient(ref.Vault)
	if err != nil {
		return resolvedSecret{}, providers.Permanent(fmt.Errorf("key vault %s: %w", ref.Vault, err))
	}
	resp, err := c.GetSecret(ctx, ref.Name, ref.Version, nil)
	if err != nil {
		err = &vaultError{vault: ref.Vault, name: ref.Name, version: ref.Version, err: err}
		var ce *azcred.Error
		var re *azcore.ResponseError
		switch {
		case errors.As(err, &ce):
			if !azcred.Transient(ce.Err) {
				return resolvedSecret{}, providers.Permanent(err)
			}
		case errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
			re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests:
			// Denied, not found, disabled, a refused token, a bad name: Key Vault's answer will not change.
			return resolvedSecret{}, providers.Permanent(err)
		}
		return resolvedSecret{}, err // throttling and 5xx the SDK's retries did not outlast, timeouts
	}
	if resp.Value == nil {
		return resolvedSecret{}, providers.Permanent(fmt.Errorf("key vault %s secret %s: the answer has no value", ref.Vault, ref.Name))
	}
	redact.Register(*resp.Value)
	version := ref.Version
	if resp.ID != nil {
		version = resp.ID.Version()
	}
	return resolvedSecret{value: []byte(*resp.Value), version: version}, nil
}

// vaultError is a failed Key Vault read: its status and words, bounded and redacted, with the fix for the
// permanent ones.
type vaultError struct {
	vault, name, version string
	err                  error
}

func (e *vaultError) Error() string {
	what := fmt.Sprintf("key vault %s secret %s", e.vault, e.name)
	if e.version != "" {
		what += " version " + e.version
	}
	var re *azcore.ResponseError
	if !errors.As(e.err, &re) {
		return what + ": " + redact.String(e.err.Error())
	}
	code, msg := errorBody(re)
	if code == "" {
		code = re.ErrorCode
	}
	msg = redact.Body([]byte(msg), quoteMax)
	s := fmt.Sprintf("%s: HTTP %d %s: %s", what, re.StatusCode, code, msg)
	switch re.StatusCode {
	case http.StatusForbidden:
		s += ". To fix: give the identity berth's azure target uses the \"Key Vault Secrets User\" role on vault " + e.vault +
			" (or, with access policies, the secret get permission), and check that the secret is enabled"
	case http.StatusNotFound:
		s += ". To fix: check the vault, the secret's name and version, or create it"
	case http.StatusUnauthorized:
		s += ". To fix: check that the target's credential is for the vault's tenant"
	}
	return s
}

func (e *vaultError) Unwrap() error { return e.err }

// deliver adds the secrets of d to the container: each SecretEnv variable as a secureValue (never returned by the
// API), each directory of Files as a secret volume mounted read-only there, and the tags naming them with their
// fingerprints (and resolved Key Vault versions).
func deliver(d providers.Desired, vals map[string]resolvedSecret, props *armcontainerinstance.ContainerGroupPropertiesProperties, tags map[string]*string) {
	w := d.Workload
	if len(w.Secrets()) == 0 {
		return
	}
	c := props.Containers[0].Properties
	for _, v := range sortedKeys(w.SecretEnv) {
		n := w.SecretEnv[v]
		c.EnvironmentVariables = append(c.EnvironmentVariables, &armcontainerinstance.EnvironmentVariable{
			Name: ptr(v), SecureValue: ptr(string(vals[n].value))})
		tags[TagEnvPrefix+v] = ptr(n)
	}
	slices.SortFunc(c.EnvironmentVariables, func(a, b *armcontainerinstance.EnvironmentVariable) int {
		return strings.Compare(*a.Name, *b.Name)
	})
	dirs := map[string]map[string]*string{}
	for _, f := range sortedFiles(w.Files) {
		n := w.Files[f].Secret
		dir, file := path.Split(f)
		dir = path.Clean(dir)
		if dirs[dir] == nil {
			dirs[dir] = map[string]*string{}
		}
		dirs[dir][file] = ptr(base64.StdEncoding.EncodeToString(vals[n].value))
		tags[TagFilePrefix+shortHash(f, 8)] = ptr(n + ":" + f)
	}
	for _, dir := range sortedDirs(dirs) {
		name := volumeName(dir)
		props.Volumes = append(props.Volumes, &armcontainerinstance.Volume{Name: ptr(name), Secret: dirs[dir]})
		c.VolumeMounts = append(c.VolumeMounts, &armcontainerinstance.VolumeMount{Name: ptr(name), MountPath: ptr(dir), ReadOnly: ptr(true)})
	}
	for _, n := range w.Secrets() {
		v := d.Secrets[n].Fingerprint
		if ver := vals[n].version; ver != "" {
			v += "@" + ver
		}
		tags[TagSecretPrefix+n] = ptr(v)
	}
}

// volumeName is the secret volume of a directory.
func volumeName(dir string) string { return "berth-secrets-" + shortHash(dir, 8) }

func sortedFiles(m map[string]schema.File) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedDirs(m map[string]map[string]*string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// readSecrets reads back, from a group's container and tags, the variables and files set from secrets (names
// only: a variable counts when the container has it as a secure value, a file when a secret volume is mounted at
// its directory), and removes those variables from w.Env.
func readSecrets(g *cg, c *armcontainerinstance.ContainerProperties, w *schema.Workload) {
	secure := map[string]bool{}
	for _, e := range c.EnvironmentVariables {
		if e != nil && e.Name != nil && e.Value == nil {
			secure[*e.Name] = true
		}
	}
	// Directories a secret volume is mounted at. The service does not return a secret volume's contents, so the
	// file names come from the tags; the volume is judged by its kind alone.
	mounted := map[string]bool{}
	vols := map[string]*armcontainerinstance.Volume{}
	if g.Properties != nil {
		for _, v := range g.Properties.Volumes {
			if v != nil && v.Name != nil && v.AzureFile == nil && v.EmptyDir == nil && v.GitRepo == nil {
				vols[*v.Name] = v
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if m != nil && m.Name != nil && m.MountPath != nil && vols[*m.Name] != nil {
			mounted[path.Clean(*m.MountPath)] = true
		}
	}
	for k, v := range g.Tags {
		if v == nil {
			continue
		}
		switch {
		case hasPrefixFold(k, TagEnvPrefix):
			name := k[len(TagEnvPrefix):]
			if !secure[name] {
				continue
			}
			if w.SecretEnv == nil {
				w.SecretEnv = map[string]string{}
			}
			w.SecretEnv[name] = *v
			delete(w.Env, name)
		case hasPrefixFold(k, TagFilePrefix):
			secret, file, ok := strings.Cut(*v, ":")
			if !ok || !mounted[path.Dir(file)] {
				continue
			}
			if w.Files == nil {
				w.Files = map[string]schema.File{}
			}
			w.Files[file] = schema.File{Secret: secret}
		}
	}
}

// secretFingerprints reads the fingerprints of a group's secret tags (without the Key Vault versions).
func secretFingerprints(tags map[string]*string) map[string]string {
	var out map[string]string
	for k, v := range tags {
		if v == nil || !hasPrefixFold(k, TagSecretPrefix) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		fp, _, _ := strings.Cut(*v, "@")
		out[k[len(TagSecretPrefix):]] = fp
	}
	return out
}

// secretTags is a group's secret tags as one string, versions included: a group whose Key Vault version is not
// the one just resolved is updated (its containers restart with the new values).
func secretTags(tags map[string]*string) string {
	var parts []string
	for k, v := range tags {
		if v != nil && hasPrefixFold(k, TagSecretPrefix) {
			parts = append(parts, strings.ToLower(k)+"="+*v)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// maxTags is Azure's limit of tags per resource; berth's ownership tags take ownTags of them: 7, 2 more (preview,
// head) in a preview and 1 (entrypoint) for args without a command, counted always so that a workload valid in its
// base is valid in its previews.
const (
	maxTags = 50
	ownTags = 10
)

// validateSecrets reports what ACI cannot deliver of w's secrets.
func validateSecrets(w schema.Workload, add func(field, format string, args ...any)) {
	if n := ownTags + len(w.Secrets()) + len(w.SecretEnv) + len(w.Files); n > maxTags {
		add("secretEnv", "%d secrets, variables and files from secrets need %d tags with berth's own; an Azure resource holds at most %d", len(w.Secrets())+len(w.SecretEnv)+len(w.Files), n, maxTags)
	}
	for _, name := range sortedKeys(w.SecretEnv) {
		if !envName.MatchString(name) {
			add("env."+name, "Azure Container Instances refuses environment variable names other than a letter or '_' followed by letters, digits and '_'")
		} else if len(TagEnvPrefix+name) > maxTagName {
			add("secretEnv."+name, "the variable's name is named in a tag: at most %d characters on Azure", maxTagName-len(TagEnvPrefix))
		}
	}
	for _, n := range w.Secrets() {
		if len(TagSecretPrefix+n) > maxTagName {
			add("secrets."+n, "the secret's name is named in a tag: at most %d characters on Azure", maxTagName-len(TagSecretPrefix))
		}
	}
	for _, f := range sortedFiles(w.Files) {
		dir := path.Dir(f)
		switch {
		case !path.IsAbs(f) || path.Clean(f) != f:
			add("files."+f, "a secret file's path must be absolute and clean")
		case dir == "/":
			add("files."+f, "Azure Container Instances mounts secret files as a volume over their directory: a file directly under / cannot be mounted; use a directory such as /run/secrets")
		case len(f) > maxFilePath:
			add("files."+f, "a secret file's path must be at most %d characters on Azure Container Instances (it is named in a tag)", maxFilePath)
		}
	}
}
