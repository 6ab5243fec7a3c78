package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/berth-dev/berth/providers"
)

// AnnotationCreated, on a namespace berth created, names the Deployment berth created in it last ("<name>
// <uid>"). Apply writes it after creating a Deployment there: the write changes the namespace's resourceVersion,
// which Delete's deletion of an emptied namespace is conditioned on, so that a workload created meanwhile is
// never deleted with it (see collectNamespace).
const AnnotationCreated = "berth.dev/created"

// holdsLimit bounds each list of collectNamespace's look into a namespace: a kind with more objects than that
// is taken as holding something.
const holdsLimit = 100

// maxNamespaceRestarts bounds how often one Apply starts again after its namespace went under it.
const maxNamespaceRestarts = 5

// errNamespaceGoing is wrapped by the error of a call refused because its namespace is being deleted (or went
// meanwhile): Apply waits for the namespace to go, creates it again and starts over.
var errNamespaceGoing = errors.New("the namespace is being deleted")

// makesNamespace tells whether owner's namespace is one berth creates (a preview's, or berth-<env> when the target
// names no namespace) rather than the operator's.
func (p *Provider) makesNamespace(owner providers.Owner) bool {
	return owner.Preview != 0 || p.set.namespace == ""
}

// namespaceLabels are the labels of a namespace berth creates: the instance and the environment, and a preview's
// number, which Delete, DeleteEnvironment and Environments go by.
func namespaceLabels(owner providers.Owner) map[string]string {
	l := map[string]string{
		LabelManagedBy: "berth", providers.LabelInstance: owner.Instance, providers.LabelEnvironment: owner.Environment,
	}
	if owner.Preview != 0 {
		l[providers.LabelPreview] = strconv.Itoa(owner.Preview)
	}
	return l
}

// namespaceOwned tells whether a namespace's labels say berth created it for owner: the instance, the
// environment, and the preview number for a preview's (none for an environment's).
func namespaceOwned(l map[string]string, owner providers.Owner) bool {
	want := ""
	if owner.Preview != 0 {
		want = strconv.Itoa(owner.Preview)
	}
	return l[providers.LabelInstance] == owner.Instance && l[providers.LabelEnvironment] == owner.Environment &&
		l[providers.LabelPreview] == want
}

// ensureNamespace makes sure owner's namespace exists, when berth makes it (makesNamespace), and tells whether
// berth created it for owner. A missing one is created, labelled as namespaceLabels says; one being deleted is
// waited out (polling every PollInterval), then created again. berth-<env> is checked once per provider (a write
// refused because it went meanwhile starts the Apply over, forgetting it); a preview's is read on every call, and
// one of that name without owner's labels is never adopted (ErrNotOwned, naming it). A berth-<env> that berth did
// not create (no instance label: made by hand, or by a berth before namespaces were collected) is used as it is
// and never labelled.
func (p *Provider) ensureNamespace(ctx context.Context, ns string, owner providers.Owner, log *slog.Logger) (bool, error) {
	if !p.makesNamespace(owner) {
		return false, nil
	}
	if owner.Preview == 0 {
		p.mu.Lock()
		owned, done := p.namespaces[ns]
		p.mu.Unlock()
		if done {
			return owned, nil
		}
	}
	waiting := false
	for creates := 0; ; {
		cur, err := call(ctx, p, "get namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
			return p.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return false, err
		case owner.Preview != 0 && !namespaceOwned(cur.Labels, owner):
			return false, providers.Permanent(fmt.Errorf("namespace %s of preview %s: %w", ns, owner.Environment, ErrNotOwned))
		case cur.DeletionTimestamp != nil:
			if !waiting {
				log.Info("the namespace is being deleted; creating it again once it is gone", "namespace", ns)
				waiting = true
			}
			if err := providers.Sleep(ctx, p.PollInterval); err != nil {
				return false, fmt.Errorf("namespace %s is being deleted: %w", ns, err)
			}
			continue
		default:
			return p.remember(ns, owner, namespaceOwned(cur.Labels, owner)), nil
		}
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: namespaceLabels(owner)}}
		_, err = call(ctx, p, "create namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
			return p.client.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
		})
		if err == nil {
			return p.remember(ns, owner, true), nil
		}
		if creates++; !apierrors.IsAlreadyExists(err) || creates >= 3 {
			return false, err
		}
		// Created meanwhile (another call, or a retry whose first try went through): check it.
	}
}

// remember caches what ensureNamespace found of an environment's namespace (never of a preview's).
func (p *Provider) remember(ns string, owner providers.Owner, owned bool) bool {
	if owner.Preview == 0 {
		p.mu.Lock()
		p.namespaces[ns] = owned
		p.mu.Unlock()
	}
	return owned
}

// forget drops what ensureNamespace cached of ns.
func (p *Provider) forget(ns string) {
	p.mu.Lock()
	delete(p.namespaces, ns)
	p.mu.Unlock()
}

// markCreated writes AnnotationCreated on ns (a namespace berth created) after the creation of dep in it. The
// namespace's answer showing it being deleted, or gone, is errNamespaceGoing: a collectNamespace that found it
// empty before dep existed deleted it.
func (p *Provider) markCreated(ctx context.Context, ns string, dep *appsv1.Deployment) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationCreated, dep.Name+" "+string(dep.UID))
	got, err := call(ctx, p, "annotate namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
		return p.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager})
	})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("namespace %s: %w", ns, errNamespaceGoing)
	case err != nil:
		return err
	case got.DeletionTimestamp != nil:
		return fmt.Errorf("namespace %s, after creating deployment %s: %w", ns, dep.Name, errNamespaceGoing)
	}
	return nil
}

// namespaceGoing tells whether ns is gone or being deleted.
func (p *Provider) namespaceGoing(ctx context.Context, ns string) bool {
	cur, err := call(ctx, p, "get namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
		return p.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	})
	return apierrors.IsNotFound(err) || err == nil && cur.DeletionTimestamp != nil
}

// namespaceRefused tells whether an API error refuses a write because its namespace is being deleted
// (NamespaceTerminating) or does not exist (a NotFound of the namespace itself, as admission answers).
func namespaceRefused(err error) bool {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return true
	}
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d != nil && d.Kind == "namespaces"
}

// collectNamespace deletes owner's namespace after Delete removed a workload, when all of this holds: it is
// berth-<env> (a preview's goes with the preview: DeleteEnvironment; until then Environments lists it, even
// empty), its labels say berth created it for owner (namespaceOwned); it is not already being
// deleted; and it holds nothing but what every namespace holds (the ConfigMap kube-root-ca.crt, the ServiceAccount
// default and its token Secret) and pods of owner's workloads that are going (see namespaceHolds). The deletion is
// conditioned on the UID and the resourceVersion the namespace had when it was found empty: an Apply that created
// a Deployment in it since then changed it (AnnotationCreated), the deletion is refused and the namespace stays.
// Denied by RBAC (a list or the delete), the namespace stays and a warning says what was refused: a workload's
// deletion never fails for the namespace's sake.
func (p *Provider) collectNamespace(ctx context.Context, owner providers.Owner, ns string, log *slog.Logger) error {
	if owner.Preview != 0 || !p.makesNamespace(owner) {
		return nil
	}
	err := p.collect(ctx, owner, ns, log)
	if apierrors.IsForbidden(err) {
		log.Warn("the namespace berth created is left in place: access denied", "namespace", ns, "error", err)
		return nil
	}
	return err
}

func (p *Provider) collect(ctx context.Context, owner providers.Owner, ns string, log *slog.Logger) error {
	cur, err := call(ctx, p, "get namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
		return p.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case cur.DeletionTimestamp != nil || !namespaceOwned(cur.Labels, owner):
		return nil
	}
	what, err := p.namespaceHolds(ctx, ns, owner)
	if err != nil {
		return err
	}
	if what != "" {
		log.Debug("the namespace berth created is kept: it holds more", "namespace", ns, "holds", what)
		return nil
	}
	rv, bg := cur.ResourceVersion, metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &rv}, PropagationPolicy: &bg}
	moved := false
	_, err = call(ctx, p, "delete namespace "+ns, func(ctx context.Context) (struct{}, error) {
		err := p.client.CoreV1().Namespaces().Delete(ctx, ns, opts)
		if apierrors.IsConflict(err) { // the precondition: not worth a retry
			moved, err = true, nil
		}
		return struct{}{}, err
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case moved:
		log.Info("the namespace berth created is kept: it changed since it was found empty (a workload being applied)", "namespace", ns)
		return nil
	}
	p.forget(ns)
	log.Info("deleted the namespace berth created: its last workload is gone", "namespace", ns)
	return nil
}

// namespaceHolds says what ns holds besides what every namespace holds ("" for nothing), from the metadata of
// the kinds a person or a tool commonly puts in a namespace: Deployments, StatefulSets, DaemonSets, Jobs,
// CronJobs, Pods, Services, ConfigMaps, Secrets, ServiceAccounts, PersistentVolumeClaims, Roles and
// RoleBindings (one list each, in that order, until one holds something). Not Ingresses: berth asks for none
// outside previews, so that an environment's RBAC Role need not allow them. Left out: the ConfigMap kube-root-ca.crt,
// the ServiceAccount default and a token Secret of it, and pods labelled with owner's instance and environment
// (those of a Deployment berth just deleted, which the garbage collector removes). Every Deployment, Service
// and Secret counts, berth's of another workload, target or instance too.
func (p *Provider) namespaceHolds(ctx context.Context, ns string, owner providers.Owner) (string, error) {
	core, apps := p.client.CoreV1().RESTClient(), p.client.AppsV1().RESTClient()
	kinds := []struct {
		kind, resource string
		rc             rest.Interface
		ignore         func(metav1.PartialObjectMetadata) bool
	}{
		{"Deployment", "deployments", apps, nil},
		{"StatefulSet", "statefulsets", apps, nil},
		{"DaemonSet", "daemonsets", apps, nil},
		{"Job", "jobs", p.client.BatchV1().RESTClient(), nil},
		{"CronJob", "cronjobs", p.client.BatchV1().RESTClient(), nil},
		{"Pod", "pods", core, func(m metav1.PartialObjectMetadata) bool {
			return m.Labels[providers.LabelInstance] == owner.Instance && m.Labels[providers.LabelEnvironment] == owner.Environment
		}},
		{"Service", "services", core, nil},
		{"ConfigMap", "configmaps", core, func(m metav1.PartialObjectMetadata) bool { return m.Name == "kube-root-ca.crt" }},
		{"Secret", "secrets", core, func(m metav1.PartialObjectMetadata) bool {
			return m.Annotations[corev1.ServiceAccountNameKey] == "default"
		}},
		{"ServiceAccount", "serviceaccounts", core, func(m metav1.PartialObjectMetadata) bool { return m.Name == "default" }},
		{"PersistentVolumeClaim", "persistentvolumeclaims", core, nil},
		{"Role", "roles", p.client.RbacV1().RESTClient(), nil},
		{"RoleBinding", "rolebindings", p.client.RbacV1().RESTClient(), nil},
	}
	for _, k := range kinds {
		list, err := p.metaList(ctx, k.rc, ns, k.resource)
		if err != nil {
			return "", err
		}
		for _, m := range list.Items {
			if k.ignore == nil || !k.ignore(m) {
				return k.kind + " " + m.Name, nil
			}
		}
		if list.Continue != "" {
			return fmt.Sprintf("more than %d %ss", holdsLimit, k.kind), nil
		}
	}
	return "", nil
}

// metaList lists the metadata only of the objects of one resource in ns (at most holdsLimit of them).
func (p *Provider) metaList(ctx context.Context, rc rest.Interface, ns, resource string) (*metav1.PartialObjectMetadataList, error) {
	raw, err := call(ctx, p, "list "+resource+" in "+ns, func(ctx context.Context) ([]byte, error) {
		return rc.Get().Namespace(ns).Resource(resource).Param("limit", strconv.Itoa(holdsLimit)).
			SetHeader("Accept", metadataAccept("PartialObjectMetadataList")).Do(ctx).Raw()
	})
	if err != nil {
		return nil, err
	}
	var l metav1.PartialObjectMetadataList
	if err := decodeMeta(raw, &l, &l.TypeMeta, "PartialObjectMetadataList"); err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", resource, ns, err)
	}
	return &l, nil
}
