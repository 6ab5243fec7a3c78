package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// Names of the secret mapping.
const (
	// AnnotationSecrets, on the pod template, holds the secrets the pods are given, by name: the fingerprint and
	// the Secret and key referenced (never a value). A rotated value changes the fingerprint, so the template,
	// so the Deployment rolls.
	AnnotationSecrets = "berth.dev/secrets"
	// SecretSuffix names the Secret berth owns beside a workload's Deployment: it holds the values berth
	// decrypted (SOPS), one data key per secret name.
	SecretSuffix = "-secrets"
	// secretVolumePrefix names the volume of a secret delivered as a file: "secret-<secret name>".
	secretVolumePrefix = "secret-"
	// SecretFileMode is the mode of a secret file in the container.
	SecretFileMode = 0o400
)

// secretRef is one entry of AnnotationSecrets: what a secret's references point to and the fingerprint of
// what was delivered. Version is the resourceVersion of an existing Secret (kind kubernetes) at the apply,
// so that a change of its data is seen (and rolls the pods); it is empty for the Secret berth owns, whose
// values are fingerprinted themselves.
type secretRef struct {
	Fingerprint string `json:"fingerprint"`
	Secret      string `json:"secret"`
	Key         string `json:"key"`
	Version     string `json:"version,omitempty"`
}

// secretPlan is how a workload's secrets reach its pods: the references (by secret name) and the Secret berth
// owns (nil when no value is berth's to deliver).
type secretPlan struct {
	refs  map[string]secretRef
	owned *coreac.SecretApplyConfiguration
}

// planSecrets maps d's secrets: a value berth holds (SOPS) goes into the Secret <name>-secrets under its own
// name; an existing Secret (kind kubernetes) is referenced as it is, with its resourceVersion from versions.
// Another kind cannot be delivered (the planner refuses it first).
func planSecrets(d providers.Desired, ns, name string, versions map[string]string) (secretPlan, error) {
	var sp secretPlan
	names := d.Workload.Secrets()
	if len(names) == 0 {
		return sp, nil
	}
	sp.refs = map[string]secretRef{}
	data := map[string][]byte{}
	own := name + SecretSuffix
	for _, n := range names {
		s, ok := d.Secrets[n]
		switch {
		case !ok:
			return sp, fmt.Errorf("workload %q: secret %s was not resolved", d.Workload.Name, n)
		case s.Source.Kind() == schema.SecretKubernetes:
			k := s.Source.Kubernetes
			sp.refs[n] = secretRef{Fingerprint: s.Fingerprint, Secret: k.Name, Key: k.Key, Version: versions[n]}
		case s.Value != nil:
			data[n] = s.Value
			sp.refs[n] = secretRef{Fingerprint: s.Fingerprint, Secret: own, Key: n}
		default:
			return sp, fmt.Errorf("workload %q: secret %s: %s secrets cannot be delivered to Kubernetes", d.Workload.Name, n, s.Source.Kind())
		}
	}
	if len(data) > 0 {
		sp.owned = coreac.Secret(own, ns).WithLabels(secretLabels(d)).WithType(corev1.SecretTypeOpaque).WithData(data)
	}
	return sp, nil
}

// secretLabels are the labels of the Secret berth owns: the ownership labels without the spec hash and the head
// (a new spec or head with the same values is no new Secret).
func secretLabels(d providers.Desired) map[string]string {
	l := ownerLabels(d)
	delete(l, providers.LabelSpecHash)
	delete(l, providers.LabelHead)
	return l
}

// annotation is the AnnotationSecrets value of the references.
func (sp secretPlan) annotation() string {
	b, _ := json.Marshal(sp.refs) // map keys sorted: a stable template
	return string(b)
}

// envSource is an env var's secretKeyRef.
func (sp secretPlan) envSource(n string) *coreac.EnvVarSourceApplyConfiguration {
	r := sp.refs[n]
	return coreac.EnvVarSource().WithSecretKeyRef(coreac.SecretKeySelector().WithName(r.Secret).WithKey(r.Key))
}

// withFiles adds the secret files of w to the pod spec and the container: one secret volume per secret used as a
// file ("secret-<name>", its one key as the item <name>, mode SecretFileMode) and one read-only mount per file
// with subPath, so that a file never hides the other files of its directory and two files may share one.
func (sp secretPlan) withFiles(w schema.Workload, pod *coreac.PodSpecApplyConfiguration, c *coreac.ContainerApplyConfiguration) {
	if len(w.Files) == 0 {
		return
	}
	mode := int32(SecretFileMode)
	used := map[string]bool{}
	for _, path := range slices.Sorted(maps.Keys(w.Files)) {
		n := w.Files[path].Secret
		used[n] = true
		c.WithVolumeMounts(coreac.VolumeMount().WithName(secretVolumePrefix + n).WithMountPath(path).WithSubPath(n).WithReadOnly(true))
	}
	for _, n := range slices.Sorted(maps.Keys(used)) {
		r := sp.refs[n]
		pod.WithVolumes(coreac.Volume().WithName(secretVolumePrefix + n).WithSecret(coreac.SecretVolumeSource().
			WithSecretName(r.Secret).WithItems(coreac.KeyToPath().WithKey(r.Key).WithPath(n).WithMode(mode))))
	}
}

// liveSecrets reads the pod template's AnnotationSecrets: the references by secret name and their fingerprints
// as written (nil for none, or for a value that is not berth's JSON). The env vars and files themselves are
// read from their references (see refName).
func liveSecrets(dep *appsv1.Deployment) (refs map[string]secretRef, fingerprints map[string]string) {
	raw := dep.Spec.Template.Annotations[AnnotationSecrets]
	if raw == "" || json.Unmarshal([]byte(raw), &refs) != nil {
		return nil, nil
	}
	fingerprints = make(map[string]string, len(refs))
	for n, r := range refs {
		fingerprints[n] = r.Fingerprint
	}
	return refs, fingerprints
}

// refName is the secret name a reference to key of Secret secret stands for: a key of berth's own Secret is the
// secret's name; an existing Secret's key is the secret whose annotation entry names it (hint, the name a
// volume's own name suggests, first); a reference no entry explains (changed by hand) reads as "Secret X key K",
// so that the plan shows it.
func refName(refs map[string]secretRef, own, secret, key, hint string) string {
	if r, ok := refs[hint]; ok && r.Secret == secret && r.Key == key {
		return hint
	}
	if secret == own {
		return key
	}
	for _, n := range slices.Sorted(maps.Keys(refs)) {
		if r := refs[n]; r.Secret == secret && r.Key == key {
			return n
		}
	}
	return fmt.Sprintf("Secret %s key %s", secret, key)
}

// secretMeta gets a Secret's metadata only (labels, resourceVersion, managed fields): berth never reads the
// data of a Secret it does not own, and needs none of its own. Nil when there is none.
func (p *Provider) secretMeta(ctx context.Context, ns, name string) (*metav1.PartialObjectMetadata, error) {
	raw, err := call(ctx, p, "get secret "+ns+"/"+name, func(ctx context.Context) ([]byte, error) {
		return p.client.CoreV1().RESTClient().Get().Namespace(ns).Resource("secrets").Name(name).
			SetHeader("Accept", metadataAccept("PartialObjectMetadata")).Do(ctx).Raw()
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m metav1.PartialObjectMetadata
	if err := decodeMeta(raw, &m, &m.TypeMeta, "PartialObjectMetadata"); err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", ns, name, err)
	}
	return &m, nil
}

// secretMetas lists the metadata of the Secrets matching the label selector sel in ns.
func (p *Provider) secretMetas(ctx context.Context, ns, sel string) ([]metav1.PartialObjectMetadata, error) {
	raw, err := call(ctx, p, "list secrets in "+ns, func(ctx context.Context) ([]byte, error) {
		return p.client.CoreV1().RESTClient().Get().Namespace(ns).Resource("secrets").
			Param("labelSelector", sel).SetHeader("Accept", metadataAccept("PartialObjectMetadataList")).Do(ctx).Raw()
	})
	if err != nil {
		return nil, err
	}
	var l metav1.PartialObjectMetadataList
	if err := decodeMeta(raw, &l, &l.TypeMeta, "PartialObjectMetadataList"); err != nil {
		return nil, fmt.Errorf("list secrets in %s: %w", ns, err)
	}
	return l.Items, nil
}

// decodeMeta decodes a metadata-only answer into v, refusing (permanently) any other kind: an API server that
// answered with whole Secrets is not asked again.
func decodeMeta(raw []byte, v any, tm *metav1.TypeMeta, kind string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding the metadata: %w", err)
	}
	if tm.Kind != kind {
		return providers.Permanent(fmt.Errorf("the API server answered with a %q, not the metadata only (%s)", tm.Kind, kind))
	}
	return nil
}

func metadataAccept(kind string) string {
	return "application/json;as=" + kind + ";v=v1;g=meta.k8s.io,application/json"
}

// secretVersions reads the resourceVersion of every existing Secret (kind kubernetes) d references, by secret
// name. A missing Secret fails the apply before anything is written: its pods could not start.
func (p *Provider) secretVersions(ctx context.Context, d providers.Desired, ns string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range d.Workload.Secrets() {
		s := d.Secrets[n]
		if s.Source.Kind() != schema.SecretKubernetes {
			continue
		}
		k := s.Source.Kubernetes
		m, err := p.secretMeta(ctx, ns, k.Name)
		if err != nil {
			return nil, fmt.Errorf("workload %q: secret %s: %w", d.Workload.Name, n, err)
		}
		if m == nil {
			return nil, fmt.Errorf("workload %q: secret %s: Secret %s/%s does not exist; create it (with the key %q) or change the reference",
				d.Workload.Name, n, ns, k.Name, k.Key)
		}
		out[n] = m.ResourceVersion
	}
	return out, nil
}

// ownedSecretState is the Secret berth owns for a workload: wanted (nil for none) and the live one's metadata.
type ownedSecretState struct {
	name string
	want *coreac.SecretApplyConfiguration
	cur  *metav1.PartialObjectMetadata
}

// applySecret writes the Secret berth owns, before the Deployment that references it (a no-op for the
// apiserver when nothing changed). Its data is never logged.
func (p *Provider) applySecret(ctx context.Context, ns string, s *ownedSecretState) error {
	if s.want == nil {
		return nil
	}
	_, err := call(ctx, p, "apply secret "+ns+"/"+s.name, func(ctx context.Context) (*corev1.Secret, error) {
		return p.client.CoreV1().Secrets(ns).Apply(ctx, s.want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	})
	if err != nil {
		// The API server has no reason to quote the data back; should it ever, the values are registered.
		return redact.Error(err)
	}
	return nil
}

// deleteSecret removes the Secret berth owns when it is no longer wanted (after the rollout: old pods may still
// start from it until then).
func (p *Provider) deleteSecret(ctx context.Context, ns string, s *ownedSecretState) error {
	if s.want != nil || s.cur == nil {
		return nil
	}
	return p.deleteObject(ctx, "secret", ns, s.name, s.cur.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
		return p.client.CoreV1().Secrets(ns).Delete(ctx, s.name, o)
	})
}

// isSecretVolume tells whether a volume is one of berth's secret volumes, and of which secret.
func isSecretVolume(v corev1.Volume) (string, bool) {
	if v.Secret == nil || !strings.HasPrefix(v.Name, secretVolumePrefix) || len(v.Secret.Items) != 1 {
		return "", false
	}
	return strings.TrimPrefix(v.Name, secretVolumePrefix), true
}

// secretCheck compares, during one List, the Secrets a workload's pods reference with what the pod template
// says was delivered: the Secret berth owns must exist (else Observed.Missing, and Apply recreates it); an
// existing Secret must still be at the resourceVersion of the apply (else its fingerprint reads back changed,
// "<fingerprint>@<resourceVersion now>" or "@gone", so the plan shows the secret changed and Apply rolls the
// pods). It reads metadata only, and only when a workload has secrets: one list of berth's Secrets, one get
// per existing Secret referenced.
type secretCheck struct {
	p     *Provider
	ns    string
	sel   string
	owner providers.Owner
	// owned are berth's Secrets in ns by name (listed at the first need); versions the resourceVersions of
	// existing Secrets ("" for gone).
	owned    map[string]metav1.PartialObjectMetadata
	versions map[string]string
}

func (c *secretCheck) check(ctx context.Context, dep *appsv1.Deployment, wl string, st *liveState) error {
	own := dep.Name + SecretSuffix
	for _, n := range slices.Sorted(maps.Keys(st.secrets)) {
		r := st.secrets[n]
		if r.Secret == own && r.Version == "" {
			if c.owned == nil {
				items, err := c.p.secretMetas(ctx, c.ns, c.sel)
				if err != nil {
					return err
				}
				c.owned = map[string]metav1.PartialObjectMetadata{}
				for _, m := range items {
					if m.DeletionTimestamp == nil {
						c.owned[m.Name] = m
					}
				}
			}
			m, ok := c.owned[own]
			if miss := "Secret " + own; (!ok || !owned(m.Labels, c.owner, wl)) && !slices.Contains(st.missing, miss) {
				st.missing = append(st.missing, miss)
			}
			continue
		}
		if c.versions == nil {
			c.versions = map[string]string{}
		}
		v, ok := c.versions[r.Secret]
		if !ok {
			m, err := c.p.secretMeta(ctx, c.ns, r.Secret)
			if err != nil {
				return err
			}
			if m != nil {
				v = m.ResourceVersion
			}
			c.versions[r.Secret] = v
		}
		switch {
		case v == "":
			st.fingerprints[n] = r.Fingerprint + "@gone"
		case v != r.Version:
			st.fingerprints[n] = r.Fingerprint + "@" + v
		}
	}
	return nil
}
