package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Labels of berth's secrets.
const (
	// LabelSecrets, on a service, names the secrets its tasks are given and their fingerprints, never their
	// values, as JSON ({"env":{"VAR":"secret"},"files":{"/path":"secret"},"fingerprints":{"secret":"fp"}}).
	LabelSecrets = "berth.dev/secrets"
	// LabelSecret and LabelSecretFingerprint, on a swarm secret object berth made, name the workload's secret it
	// holds and the fingerprint of the value it holds.
	LabelSecret            = "berth.dev/secret"
	LabelSecretFingerprint = "berth.dev/secret-fingerprint"
)

// SecretFileMode is the mode of a secret file in a task's container.
const SecretFileMode = 0o400

// maxSecretNameLen is swarm's limit on the name of a secret object.
const maxSecretNameLen = 64

var validSecretName = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)

// checkSecrets says why d's secrets cannot be delivered (see providers.CheckSOPSOnly).
func checkSecrets(d providers.Desired) error { return providers.CheckSOPSOnly(d, "swarm") }

// SecretObjectName is the name of the swarm secret object holding one value of a workload's secret:
// berth-<instance>-<env>-<workload>-<secret>-<fingerprint>, so a rotated value is a new object. A name over swarm's
// 64 characters keeps "berth-", a hash of the rest and the fingerprint's part.
func SecretObjectName(o providers.Owner, workload, secret, fingerprint string) string {
	fp := secretSanitize(fingerprint)
	if len(fp) > 24 || !validSecretName.MatchString(fp) {
		sum := sha256.Sum256([]byte(fingerprint))
		fp = hex.EncodeToString(sum[:8])
	}
	name := fmt.Sprintf("berth-%s-%s-%s-%s-%s", secretSanitize(o.Instance), secretSanitize(o.Environment),
		secretSanitize(workload), secretSanitize(secret), fp)
	if len(name) <= maxSecretNameLen && validSecretName.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(o.Instance + "\x00" + o.Environment + "\x00" + workload + "\x00" + secret))
	return "berth-" + hex.EncodeToString(sum[:10]) + "-" + fp
}

// secretSanitize keeps a name component within the [a-zA-Z0-9-_.] alphabet of secret names.
func secretSanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// secretObjectSpec is the swarm secret object holding the value of secret n for d: ownership labels (and
// LabelPreview in a preview environment), the secret's name and fingerprint, the value as data.
func secretObjectSpec(d providers.Desired, n string) swarm.SecretSpec {
	s := d.Secrets[n]
	labels := keyOf(d).labels()
	labels[LabelSecret] = n
	labels[LabelSecretFingerprint] = s.Fingerprint
	maps.Copy(labels, providers.PreviewLabels(d.Owner, nil))
	return swarm.SecretSpec{
		Annotations: swarm.Annotations{Name: SecretObjectName(d.Owner, d.Workload.Name, n, s.Fingerprint), Labels: labels},
		Data:        s.Value,
	}
}

// fileSecrets are the secrets w delivers as files, sorted.
func fileSecrets(w schema.Workload) []string {
	var out []string
	for _, f := range w.Files {
		if !slices.Contains(out, f.Secret) {
			out = append(out, f.Secret)
		}
	}
	slices.Sort(out)
	return out
}

// secretRefs are the task template's references to d's file secrets, by path; IDs are set by setSecretIDs.
func secretRefs(d providers.Desired, uid, gid string) []*swarm.SecretReference {
	var refs []*swarm.SecretReference
	for _, path := range slices.Sorted(maps.Keys(d.Workload.Files)) {
		n := d.Workload.Files[path].Secret
		refs = append(refs, &swarm.SecretReference{
			File:       &swarm.SecretReferenceFileTarget{Name: path, UID: uid, GID: gid, Mode: SecretFileMode},
			SecretName: SecretObjectName(d.Owner, d.Workload.Name, n, d.Secrets[n].Fingerprint),
		})
	}
	return refs
}

// setSecretIDs fills the IDs of the secret objects the spec references, by object name.
func setSecretIDs(spec *swarm.ServiceSpec, ids map[string]string) {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Secrets {
			r.SecretID = ids[r.SecretName]
		}
	}
}

// setFileOwner gives the secret files of spec to uid:gid.
func setFileOwner(spec *swarm.ServiceSpec, uid, gid int) {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Secrets {
			r.File.UID, r.File.GID = strconv.Itoa(uid), strconv.Itoa(gid)
		}
	}
}

// fileOwner is the uid and gid a secret file gets for a container running as user (the image's Config.User: "",
// "root", "uid" or "uid:gid"). A user by name cannot be resolved without the image's /etc/passwd: refused.
func fileOwner(user string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" || u == "root" {
		u = "0"
	}
	uid, err = strconv.Atoi(u)
	if err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("the image runs as user %q: berth gives secret files to a numeric uid only (USER 1000 or 1000:1000 in the image)", user)
	}
	gid = uid
	if hasGroup {
		if g == "root" {
			g = "0"
		}
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("the image runs as group %q: berth gives secret files to a numeric gid only", g)
		}
	}
	return uid, gid, nil
}

// imageUser is the user the image runs as, when the manager's engine has the image ("" and false when not: the
// files are then root's).
func (p *Provider) imageUser(ctx context.Context, ref string) (string, bool, error) {
	var user string
	err := p.call(ctx, "inspect image "+ref, func(ctx context.Context) error {
		img, err := p.cli.ImageInspect(ctx, ref)
		if err == nil && img.Config != nil {
			user = img.Config.User
		}
		return err
	})
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	return user, err == nil, err
}

// ensureSecrets makes the secret objects of d's file secrets exist, one per value, and returns their IDs by
// object name. An object of that name that berth does not own for this workload and secret is a permanent error.
func (p *Provider) ensureSecrets(ctx context.Context, d providers.Desired, log *slog.Logger) (map[string]string, error) {
	ids := map[string]string{}
	k := keyOf(d)
	for _, n := range fileSecrets(d.Workload) {
		spec := secretObjectSpec(d, n)
		name := spec.Name
		for attempt := 0; ; attempt++ {
			objs, err := p.secretObjects(ctx, map[string]string{}, name)
			if err != nil {
				return nil, err
			}
			found := ""
			for _, o := range objs {
				if o.Spec.Name != name {
					continue // the name filter matches prefixes
				}
				if !k.owns(o.Spec.Labels) || o.Spec.Labels[LabelSecret] != n ||
					o.Spec.Labels[LabelSecretFingerprint] != d.Secrets[n].Fingerprint {
					return nil, providers.Permanent(fmt.Errorf("secret object %s exists but is not berth's for "+
						"workload %s secret %s: not adopted", name, k.Workload, n))
				}
				found = o.ID
			}
			if found != "" {
				ids[name] = found
				break
			}
			if attempt > 0 {
				return nil, fmt.Errorf("secret object %s: created but not found", name)
			}
			conflict := false
			var resp swarm.SecretCreateResponse
			err = p.call(ctx, "create secret object "+name, func(ctx context.Context) error {
				r, err := p.cli.SecretCreate(ctx, spec)
				if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
					conflict = true // made meanwhile (by a retried call of ours): find it again
					return nil
				}
				resp = r
				return err
			})
			if err != nil {
				return nil, err
			}
			if !conflict {
				log.InfoContext(ctx, "secret object created", "secret", n, "object", name)
				ids[name] = resp.ID
				break
			}
		}
	}
	return ids, nil
}

// secretObjects lists the secret objects carrying every label of match (and named with the prefix name, when
// set).
func (p *Provider) secretObjects(ctx context.Context, match map[string]string, name string) ([]swarm.Secret, error) {
	f := filters.NewArgs()
	for k, v := range match {
		f.Add("label", k+"="+v)
	}
	if name != "" {
		f.Add("name", name)
	}
	var objs []swarm.Secret
	err := p.call(ctx, "list secret objects", func(ctx context.Context) error {
		var err error
		objs, err = p.cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
		return err
	})
	return objs, err
}

// removeSecrets removes the workload's secret objects other than keep (by ID). One the engine refuses to remove
// (still referenced by a service spec) is left for the next Apply or Delete, and logged.
func (p *Provider) removeSecrets(ctx context.Context, k wkey, keep map[string]bool, log *slog.Logger) error {
	objs, err := p.secretObjects(ctx, k.labels(), "")
	if err != nil {
		return err
	}
	for _, o := range objs {
		if keep[o.ID] || !k.owns(o.Spec.Labels) || o.Spec.Labels[LabelSecret] == "" {
			continue
		}
		err := p.call(ctx, "remove secret object "+o.Spec.Name, func(ctx context.Context) error {
			return p.cli.SecretRemove(ctx, o.ID)
		})
		switch {
		case err == nil:
			log.InfoContext(ctx, "secret object removed", "secret", o.Spec.Labels[LabelSecret], "object", o.Spec.Name)
		case cerrdefs.IsNotFound(err):
		case ctx.Err() != nil:
			return err
		default:
			log.WarnContext(ctx, "secret object not removed yet", "object", o.Spec.Name, "err", err)
		}
	}
	return nil
}

// referencedSecrets are the IDs of the secret objects a service spec references.
func referencedSecrets(s swarm.ServiceSpec) map[string]bool {
	ids := map[string]bool{}
	if cs := s.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Secrets {
			ids[r.SecretID] = true
		}
	}
	return ids
}
