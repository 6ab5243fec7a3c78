package kubernetes_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/schema"
)

// secretDesired is w with its secrets: db a SOPS value berth holds, greeting an existing Secret app-config.
func secretDesired(owner providers.Owner, w schema.Workload, db string, dbFingerprint string) providers.Desired {
	secrets := map[string]providers.Secret{
		"db": {Name: "db", Source: schema.Secret{Name: "db", SOPS: &schema.SOPSSecret{File: "secrets/db.enc.yaml", Key: "password"}},
			Value: []byte(db), Fingerprint: dbFingerprint},
		"greeting": {Name: "greeting", Source: schema.Secret{Name: "greeting",
			Kubernetes: &schema.KubernetesSecret{Name: "app-config", Key: "greeting"}}, Fingerprint: "ref-app-config"},
	}
	for n := range secrets {
		if !slices.Contains(w.Secrets(), n) {
			delete(secrets, n)
		}
	}
	return providers.Desired{Owner: owner, Target: "k", Workload: w, SpecHash: providers.DesiredHash(w, secrets), Secrets: secrets}
}

// TestSecrets applies a workload whose DB_PASSWORD and file /run/secrets/db come from a SOPS value and whose
// GREETING and file /etc/app/greeting come from an existing Secret, then: checks the Secret berth owns (labels,
// type, berth's field manager, its data) and that the existing one is untouched; the pods' references; the
// read-back (names, fingerprints, an unchanged apply writing nothing); a rotation of each kind rolling the pods; a
// Secret deleted by hand reading as missing and recreated; dropping the secrets deleting berth's Secret after the
// rollout; Delete removing it.
func TestSecrets(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "sec" + randomID(t), Environment: "sec"}
	ns := "berth-" + owner.Environment
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	writeSecret(ctx, t, c.Client, ns, "app-config", map[string]string{"greeting": "hello from a Secret"})

	w := referenceWorkload("vault")
	w.Replicas = 2
	delete(w.Env, "GREETING")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db", "GREETING": "greeting"}
	w.Files = map[string]schema.File{"/run/secrets/db": {Secret: "db"}, "/etc/app/greeting": {Secret: "greeting"}}
	const one, two = "s3cr3t-value-one", "s3cr3t-value-two"
	d := secretDesired(owner, w, one, "fp-one")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() { _ = p.Delete(context.Background(), owner, "k", w.Name) })

	secrets := c.Client.CoreV1().Secrets(ns)
	sec, err := secrets.Get(ctx, "vault-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeOpaque || string(sec.Data["db"]) != one || len(sec.Data) != 1 ||
		sec.Labels[providers.LabelInstance] != owner.Instance || sec.Labels[providers.LabelWorkload] != "vault" ||
		!managedBy(sec.ManagedFields, kubernetes.FieldManager) {
		t.Fatalf("the Secret berth owns: type %s, keys %d, labels %v, managers %v", sec.Type, len(sec.Data), sec.Labels, sec.ManagedFields)
	}
	existing, err := secrets.Get(ctx, "app-config", metav1.GetOptions{})
	if err != nil || managedBy(existing.ManagedFields, kubernetes.FieldManager) || existing.Labels[providers.LabelInstance] != "" {
		t.Fatalf("berth wrote the existing Secret: %v %v", existing.ObjectMeta, err)
	}

	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "vault", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kubetest.PodsOf(ctx, c.Client, dep)
	if err != nil || len(pods) != 2 {
		t.Fatalf("pods: %d, %v", len(pods), err)
	}
	refs := map[string]string{}
	app := pods[0].Spec.Containers[0]
	for _, e := range app.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	if refs["DB_PASSWORD"] != "vault-secrets/db" || refs["GREETING"] != "app-config/greeting" {
		t.Errorf("the pods' env references: %v", refs)
	}
	mounts := map[string]string{}
	for _, m := range app.VolumeMounts {
		mounts[m.MountPath] = m.Name + ":" + m.SubPath
	}
	if mounts["/run/secrets/db"] != "secret-db:db" || mounts["/etc/app/greeting"] != "secret-greeting:greeting" {
		t.Errorf("the pods' mounts: %v", mounts)
	}
	for _, v := range pods[0].Spec.Volumes {
		if v.Secret != nil && (len(v.Secret.Items) != 1 || v.Secret.Items[0].Mode == nil || *v.Secret.Items[0].Mode != kubernetes.SecretFileMode) {
			t.Errorf("volume %s: %+v", v.Name, v.Secret)
		}
	}

	observe := func() providers.Observed {
		t.Helper()
		obs, err := p.List(ctx, owner, "k")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List = %+v, %v", obs, err)
		}
		return obs[0]
	}
	o := observe()
	want := providers.Normalize(p.Normalize(providers.Normalize(w)))
	if !equalJSON(t, o.Spec.SecretEnv, want.SecretEnv) || !equalJSON(t, o.Spec.Files, want.Files) || o.Spec.Env["GREETING"] != "" {
		t.Errorf("read back secret env %v, files %v, env %v", o.Spec.SecretEnv, o.Spec.Files, o.Spec.Env)
	}
	if o.SecretFingerprints["db"] != "fp-one" || o.SecretFingerprints["greeting"] != "ref-app-config" || len(o.Missing)+len(o.Kept) != 0 {
		t.Errorf("fingerprints %v, missing %v, kept %v", o.SecretFingerprints, o.Missing, o.Kept)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if again, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "vault", metav1.GetOptions{}); err != nil || again.ResourceVersion != dep.ResourceVersion {
		t.Fatalf("an unchanged Apply wrote the deployment (%v)", err)
	}

	// A rotated SOPS value: the Secret holds the new value before the pods of the new template start.
	before := podUIDs(ctx, t, c, ns, "vault")
	d = secretDesired(owner, w, two, "fp-two")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if sec, err := secrets.Get(ctx, "vault-secrets", metav1.GetOptions{}); err != nil || string(sec.Data["db"]) != two {
		t.Fatalf("the rotated value is not in the Secret (%v)", err)
	}
	rolled(ctx, t, c, ns, "vault", before)
	if o := observe(); o.SecretFingerprints["db"] != "fp-two" {
		t.Errorf("after the rotation: fingerprints %v", o.SecretFingerprints)
	}

	// The existing Secret rotated by its owner: a new resourceVersion reads as a changed fingerprint (never
	// its data); Apply rolls the pods, and the fingerprint then reads as desired.
	writeSecret(ctx, t, c.Client, ns, "app-config", map[string]string{"greeting": "hello again"})
	if o := observe(); !strings.HasPrefix(o.SecretFingerprints["greeting"], "ref-app-config@") {
		t.Fatalf("the rotated existing Secret reads back as %q", o.SecretFingerprints["greeting"])
	}
	before = podUIDs(ctx, t, c, ns, "vault")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	rolled(ctx, t, c, ns, "vault", before)
	if o := observe(); o.SecretFingerprints["greeting"] != "ref-app-config" {
		t.Errorf("after rolling for the existing Secret: %v", o.SecretFingerprints)
	}

	// Deleted by hand: missing, and recreated by the next Apply.
	if err := secrets.Delete(ctx, "vault-secrets", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if o := observe(); !slices.Equal(o.Missing, []string{"Secret vault-secrets"}) {
		t.Errorf("a deleted Secret: missing %v", o.Missing)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Get(ctx, "vault-secrets", metav1.GetOptions{}); err != nil {
		t.Fatalf("not recreated: %v", err)
	}

	// Only the existing Secret left: berth's own Secret goes once the pods no longer use it.
	w2 := w
	w2.SecretEnv = map[string]string{"GREETING": "greeting"}
	w2.Files = nil
	if err := p.Apply(ctx, secretDesired(owner, w2, "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Get(ctx, "vault-secrets", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Secret no longer used: %v", err)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, owner, "k", w.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Get(ctx, "vault-secrets", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Delete left the Secret: %v", err)
	}
	if _, err := secrets.Get(ctx, "app-config", metav1.GetOptions{}); err != nil {
		t.Fatalf("Delete touched the existing Secret: %v", err)
	}
}

// TestSecretNotOwned checks that an unlabelled Secret with the name of berth's is a permanent ErrNotOwned,
// written over by nothing, and that a missing existing Secret fails the apply naming it; in both cases no
// Deployment is written.
func TestSecretNotOwned(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "sno" + randomID(t), Environment: "secown"}
	ns := "berth-" + owner.Environment
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	writeSecret(ctx, t, c.Client, ns, "squat-secrets", map[string]string{"db": "not berth's"})

	w := referenceWorkload("squat")
	w.SecretEnv = map[string]string{"DB_PASSWORD": "db"}
	err := p.Apply(ctx, secretDesired(owner, w, "value", "fp"))
	if !errors.Is(err, kubernetes.ErrNotOwned) || !errors.Is(err, providers.ErrPermanent) || strings.Contains(err.Error(), "value") {
		t.Fatalf("Apply over an unowned Secret = %v, want a permanent ErrNotOwned", err)
	}
	sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "squat-secrets", metav1.GetOptions{})
	if err != nil || string(sec.Data["db"]) != "not berth's" || managedBy(sec.ManagedFields, kubernetes.FieldManager) {
		t.Fatalf("the unowned Secret was touched (%v)", err)
	}
	if err := p.Delete(ctx, owner, "k", "squat"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "squat-secrets", metav1.GetOptions{}); err != nil {
		t.Fatalf("Delete removed the unowned Secret: %v", err)
	}

	w = referenceWorkload("noref")
	w.SecretEnv = map[string]string{"GREETING": "greeting"}
	err = p.Apply(ctx, secretDesired(owner, w, "", ""))
	if err == nil || !strings.Contains(err.Error(), "Secret "+ns+"/app-config does not exist") {
		t.Fatalf("Apply with a missing existing Secret = %v", err)
	}
	for _, name := range []string{"squat", "noref"} {
		if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("deployment %s written: %v", name, err)
		}
	}
}

func managedBy(mfs []metav1.ManagedFieldsEntry, manager string) bool {
	return slices.ContainsFunc(mfs, func(mf metav1.ManagedFieldsEntry) bool { return mf.Manager == manager })
}

func podUIDs(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns, name string) []string {
	t.Helper()
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kubetest.PodsOf(ctx, c.Client, dep)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods {
		out = append(out, string(p.UID))
	}
	return out
}

// rolled checks that none of the pods before is left: the Deployment rolled.
func rolled(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns, name string, before []string) {
	t.Helper()
	now := podUIDs(ctx, t, c, ns, name)
	for _, u := range now {
		if slices.Contains(before, u) {
			t.Fatalf("pod %s of the old template is still there: the Deployment did not roll", u)
		}
	}
	if len(now) == 0 {
		t.Fatal("no pods")
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	return string(x) == string(y)
}

// TestSecretSwitch turns a plain env var into one from a secret and back on a running workload: berth's apply
// drops the value it held for the reference, and the reference for the value.
func TestSecretSwitch(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "ssw" + randomID(t), Environment: "secswitch"}
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	w := referenceWorkload("switch")
	w.Replicas = 1
	plain := secretDesired(owner, w, "", "")
	if err := p.Apply(ctx, plain); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete(context.Background(), owner, "k", w.Name) })
	ws := w
	ws.Env = map[string]string{"PORT": "8080"}
	ws.SecretEnv = map[string]string{"GREETING": "db"}
	for i, d := range []providers.Desired{secretDesired(owner, ws, "from a secret", "fp"), plain} {
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("switch %d: %v", i, err)
		}
		obs, err := p.List(ctx, owner, "k")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List = %v, %v", obs, err)
		}
		want := providers.Normalize(p.Normalize(providers.Normalize(d.Workload)))
		if got := obs[0].Spec; !equalJSON(t, got.Env, want.Env) || !equalJSON(t, got.SecretEnv, want.SecretEnv) {
			t.Errorf("switch %d: env %v, secret env %v", i, got.Env, got.SecretEnv)
		}
	}
}
