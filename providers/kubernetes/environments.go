package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Environments implements providers.EnvironmentLister: the environments of instance on target, from two calls
// by label selector on berth.dev/instance: the namespaces (a preview's namespace is listed even when it holds no
// workload any more, so that it is removed; one being deleted is gone, and so is every Deployment left in it)
// and the Deployments of every namespace (on target). Each environment comes once, with its preview number (from
// berth.dev/preview; 0 when absent or malformed) and the head of the Deployment berth applied last.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	sel := labels.SelectorFromSet(labels.Set{providers.LabelInstance: instance}).String()
	nss, err := call(ctx, p, "list namespaces", func(ctx context.Context) (*corev1.NamespaceList, error) {
		return p.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	})
	if err != nil {
		return nil, err
	}
	depSel := labels.SelectorFromSet(labels.Set{providers.LabelInstance: instance, providers.LabelTarget: target}).String()
	deps, err := call(ctx, p, "list deployments", func(ctx context.Context) (*appsv1.DeploymentList, error) {
		return p.client.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: depSel})
	})
	if err != nil {
		return nil, err
	}
	type found struct {
		ref  providers.EnvironmentRef
		when time.Time // of the head
	}
	envs := map[string]*found{}
	add := func(env string, preview int, head string, when time.Time) {
		f := envs[env]
		if f == nil {
			f = &found{ref: providers.EnvironmentRef{Name: env}}
			envs[env] = f
		}
		if f.ref.Preview == 0 {
			f.ref.Preview = preview
		}
		if head != "" && (f.ref.Head == "" || when.After(f.when)) {
			f.ref.Head, f.when = head, when
		}
	}
	gone := map[string]bool{}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp != nil {
			gone[ns.Name] = true
			continue
		}
		env, n := ns.Labels[providers.LabelEnvironment], previewNumber(ns.Labels[providers.LabelPreview])
		// Only this target's preview namespaces: another target's on the same cluster has another base.
		if n != 0 && env == schema.PreviewName(n) && ns.Name == p.namespace(providers.Owner{Environment: env, Preview: n}) {
			add(env, n, "", time.Time{})
		}
	}
	for i := range deps.Items {
		dep := &deps.Items[i]
		env := dep.Labels[providers.LabelEnvironment]
		if env == "" || dep.Labels[providers.LabelWorkload] == "" || dep.DeletionTimestamp != nil || gone[dep.Namespace] {
			continue
		}
		add(env, previewNumber(dep.Labels[providers.LabelPreview]), dep.Labels[providers.LabelHead], appliedAt(dep))
	}
	out := make([]providers.EnvironmentRef, 0, len(envs))
	for _, k := range slices.Sorted(maps.Keys(envs)) {
		out = append(out, envs[k].ref)
	}
	return out, nil
}

// previewNumber parses a berth.dev/preview label: a positive decimal number written as strconv.Itoa writes it;
// 0 for anything else.
func previewNumber(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || strconv.Itoa(n) != v {
		return 0
	}
	return n
}

// appliedAt is when berth last applied the Deployment (its managed-fields entry), else its creation.
func appliedAt(dep *appsv1.Deployment) time.Time {
	for _, mf := range dep.ManagedFields {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" && mf.Time != nil {
			return mf.Time.Time
		}
	}
	return dep.CreationTimestamp.Time
}

// DeleteEnvironment implements providers.EnvironmentDeleter: a preview's namespace is deleted (UID
// precondition, background propagation) when its labels say it is owner's; the namespace controller removes what
// is left in it. A namespace that is gone or being deleted is success; one without owner's labels is left alone
// (logged). An environment that is no preview has no objects of its own.
func (p *Provider) DeleteEnvironment(ctx context.Context, owner providers.Owner, target string) error {
	if owner.Preview == 0 {
		return nil
	}
	ns := p.namespace(owner)
	cur, err := call(ctx, p, "get namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
		return p.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case cur.DeletionTimestamp != nil:
		return nil
	case !namespaceOwned(cur.Labels, owner):
		p.log.Warn("the preview's namespace is not berth's; left alone", "env", owner.Environment, "namespace", ns)
		return nil
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}, PropagationPolicy: &bg}
	_, err = call(ctx, p, "delete namespace "+ns, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, p.client.CoreV1().Namespaces().Delete(ctx, ns, opts)
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("preview %s: %w", owner.Environment, err)
	}
	return nil
}
