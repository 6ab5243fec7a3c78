package kubetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Labels of the simulation.
const (
	// LabelManual on a namespace keeps RunDeploymentController out of it: tests there call SimulateRollout and
	// StallRollout themselves.
	LabelManual = "kubetest.berth.dev/manual"
	// LabelTemplateHash is the pod label naming the pod template a pod was made from (as the real controller's
	// pod-template-hash).
	LabelTemplateHash = "pod-template-hash"
	// UnreadyPath, as the path of a container's httpGet readiness probe, makes the simulated kubelet find the probe
	// failing: the pod runs and is never Ready (an app answering 404 there).
	UnreadyPath = "/kubetest/unready"
)

// resync paces the controller's full passes besides watch events.
const resync = time.Second

// RunDeploymentController plays the deployment and ReplicaSet controllers (and the garbage collector for pods) for
// every namespace not labelled LabelManual: after each change of a Deployment it creates the pods of the current
// template (Running at once, and Ready as though every probe passed, unless the readiness probe is an httpGet of
// UnreadyPath), deletes the extra ones (newest first) and, once the current ones are all Ready, those of older
// templates (make before break), deletes pods whose Deployment is gone, and writes the rollout's status. It also
// plays the namespace controller (for every namespace, manual ones too): a namespace being deleted has its
// Deployments, pods, Services, Secrets, ConfigMaps and Ingresses deleted, then its finalizer "kubernetes" removed,
// so that it goes. It runs until ctx ends; the returned channel is closed when it has stopped.
func RunDeploymentController(ctx context.Context, client kubernetes.Interface) <-chan struct{} {
	stopped := make(chan struct{})
	poke := make(chan struct{}, 1)
	notify := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	watchers := make(chan struct{}, 3)
	go func() {
		watchLoop(ctx, notify, func(ctx context.Context) (watch.Interface, error) {
			return client.AppsV1().Deployments("").Watch(ctx, metav1.ListOptions{})
		})
		watchers <- struct{}{}
	}()
	go func() {
		watchLoop(ctx, notify, func(ctx context.Context) (watch.Interface, error) {
			return client.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
		})
		watchers <- struct{}{}
	}()
	go func() {
		watchLoop(ctx, notify, func(ctx context.Context) (watch.Interface, error) {
			return client.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
		})
		watchers <- struct{}{}
	}()
	go func() {
		defer close(stopped)
		defer func() { <-watchers; <-watchers; <-watchers }()
		tick := time.NewTicker(resync)
		defer tick.Stop()
		for {
			if err := pass(ctx, client); err != nil && ctx.Err() == nil {
				notify() // conflicts and races with the test's own writes: look again
			}
			select {
			case <-ctx.Done():
				return
			case <-poke:
			case <-tick.C:
			}
		}
	}()
	return stopped
}

// watchLoop keeps a watch open and pokes on every event, reopening it when the server ends it.
func watchLoop(ctx context.Context, notify func(), open func(context.Context) (watch.Interface, error)) {
	for ctx.Err() == nil {
		w, err := open(ctx)
		if err != nil {
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		for range w.ResultChan() {
			notify()
		}
		w.Stop()
	}
}

// pass reconciles every Deployment outside manual namespaces, collects orphaned pods and finalizes namespaces
// being deleted.
func pass(ctx context.Context, client kubernetes.Interface) error {
	manual, known := map[string]bool{}, map[string]bool{}
	nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i := range nss.Items {
		ns := &nss.Items[i]
		known[ns.Name] = true
		if ns.Labels[LabelManual] == "true" {
			manual[ns.Name] = true
		}
		if ns.DeletionTimestamp != nil {
			if err := finalizeNamespace(ctx, client, ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	deps, err := client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for i := range deps.Items {
		d := &deps.Items[i]
		live[string(d.UID)] = true
		// A namespace made after the list above may be manual: the next pass looks at it.
		if manual[d.Namespace] || !known[d.Namespace] || d.DeletionTimestamp != nil {
			continue
		}
		if err := reconcile(ctx, client, d, pods.Items); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "Deployment" && !live[string(ref.UID)] &&
			!manual[p.Namespace] && known[p.Namespace] && p.DeletionTimestamp == nil {
			if err := deletePod(ctx, client, &p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SimulateRollout does for one Deployment what the deployment controller and kubelets would: pods of the current
// template up and ready, old and extra ones gone, status complete with conditions Available and Progressing.
func SimulateRollout(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	return reconcile(ctx, client, d, pods.Items)
}

// StallRollout writes the status of a rollout that passed its progress deadline: the generation observed, no
// replica updated, Progressing false with reason ProgressDeadlineExceeded.
func StallRollout(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
				Message: "Deployment does not have minimum availability.", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
				Message: fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.Name), LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	_, err = client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err
}

// reconcile converges the pods of d (from pods, any namespace) and writes its status.
func reconcile(ctx context.Context, client kubernetes.Interface, d *appsv1.Deployment, pods []corev1.Pod) error {
	hash := templateHash(d.Spec.Template)
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}
	var cur, old []corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(&p); p.Namespace != d.Namespace || ref == nil || ref.UID != d.UID || p.DeletionTimestamp != nil {
			continue
		}
		if p.Labels[LabelTemplateHash] == hash {
			if p.Status.Phase == "" { // created by a pass whose status write failed
				started, err := startPod(ctx, client, &p)
				if err != nil {
					return err
				}
				p = *started
			}
			cur = append(cur, p)
		} else {
			old = append(old, p)
		}
	}
	// Make before break (maxUnavailable 0): the new pods first; the old ones go once the new ones are ready.
	for len(cur) < want {
		p, err := createPod(ctx, client, d, hash)
		if err != nil {
			return err
		}
		cur = append(cur, *p)
	}
	sort.Slice(cur, func(i, j int) bool {
		ti, tj := cur[i].CreationTimestamp, cur[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return cur[i].Name < cur[j].Name
	})
	extra := cur[want:]
	cur = cur[:want]
	ready := 0
	for _, p := range cur {
		if podReady(p) {
			ready++
		}
	}
	gone := extra
	if ready == want {
		gone, old = append(gone, old...), nil
	}
	for _, p := range gone {
		if err := deletePod(ctx, client, &p); err != nil {
			return err
		}
	}
	oldReady := 0
	for _, p := range old {
		if podReady(p) {
			oldReady++
		}
	}
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           int32(want + len(old)), UpdatedReplicas: int32(want), ReadyReplicas: int32(ready + oldReady),
		AvailableReplicas: int32(ready + oldReady),
	}
	now := metav1.Now()
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
		Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now}
	if ready+oldReady < want {
		avail.Status, avail.Reason, avail.Message = corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	prog := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
		Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.Name+"-"+hash), LastUpdateTime: now, LastTransitionTime: now}
	if ready < want || len(old) > 0 {
		prog.Reason, prog.Message = "ReplicaSetUpdated", fmt.Sprintf("ReplicaSet %q is progressing.", d.Name+"-"+hash)
	}
	st.Conditions = []appsv1.DeploymentCondition{avail, prog}
	if sameStatus(d.Status, st) {
		return nil
	}
	d = d.DeepCopy()
	d.Status = st
	_, err := client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err
}

// sameStatus compares two statuses, the times of conditions aside.
func sameStatus(a, b appsv1.DeploymentStatus) bool {
	strip := func(s appsv1.DeploymentStatus) appsv1.DeploymentStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastUpdateTime, s.Conditions[i].LastTransitionTime = metav1.Time{}, metav1.Time{}
		}
		return s
	}
	x, _ := json.Marshal(strip(a))
	y, _ := json.Marshal(strip(b))
	return string(x) == string(y)
}

// podReady tells whether a pod's Ready condition holds.
func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unready tells whether the simulated kubelet finds a readiness probe of the pod failing: an httpGet probe on
// UnreadyPath.
func unready(spec corev1.PodSpec) bool {
	for _, c := range spec.Containers {
		if pr := c.ReadinessProbe; pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Path == UnreadyPath {
			return true
		}
	}
	return false
}

// createPod creates a pod of d's template, owned by d, and marks it Running and, unless a readiness probe
// fails (unready), Ready.
func createPod(ctx context.Context, client kubernetes.Interface, d *appsv1.Deployment, hash string) (*corev1.Pod, error) {
	l := maps.Clone(d.Spec.Template.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelTemplateHash] = hash
	yes := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: d.Name + "-" + hash + "-", Namespace: d.Namespace, Labels: l,
			Annotations: maps.Clone(d.Spec.Template.Annotations),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
				Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: *d.Spec.Template.Spec.DeepCopy(),
	}
	p, err := client.CoreV1().Pods(d.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating a pod of %s/%s: %w", d.Namespace, d.Name, err)
	}
	return startPod(ctx, client, p)
}

// startPod writes the status of a pod the simulated kubelet started: Running and, unless a readiness probe fails
// (unready), Ready.
func startPod(ctx context.Context, client kubernetes.Interface, p *corev1.Pod) (*corev1.Pod, error) {
	yes := true
	p = p.DeepCopy()
	now := metav1.Now()
	ok, isReady := corev1.ConditionTrue, !unready(p.Spec)
	if !isReady {
		ok = corev1.ConditionFalse
	}
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, StartTime: &now, PodIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: ok, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: ok, LastTransitionTime: now},
		},
	}
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: isReady, Started: &yes,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	got, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("marking pod %s/%s running: %w", p.Namespace, p.Name, err)
	}
	return got, nil
}

func deletePod(ctx context.Context, client kubernetes.Interface, p *corev1.Pod) error {
	zero := int64(0)
	err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// templateHash names a pod template, as the real controller's pod-template-hash does.
func templateHash(t corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	h.Write(b)
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

// PodsOf lists the live (not terminating) pods of a Deployment's selector, oldest first.
func PodsOf(ctx context.Context, client kubernetes.Interface, d *appsv1.Deployment) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	if sel.Empty() {
		sel = labels.Nothing()
	}
	list, err := client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp) })
	return out, nil
}

// finalizeNamespace does what the namespace controller does for a namespace being deleted: deletes what it holds
// (of the kinds berth and the tests write) and, once none is left, removes the finalizer "kubernetes" so that the
// apiserver removes the namespace.
func finalizeNamespace(ctx context.Context, client kubernetes.Interface, ns *corev1.Namespace) error {
	n := ns.Name
	zero := int64(0)
	opts := metav1.DeleteOptions{GracePeriodSeconds: &zero}
	left := 0
	sweep := func(names []string, err error, del func(string) error) error {
		if err != nil {
			return err
		}
		left += len(names)
		for _, name := range names {
			if err := del(name); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return nil
	}
	deps, err := client.AppsV1().Deployments(n).List(ctx, metav1.ListOptions{})
	if err := sweep(itemNames(deps, err), err, func(x string) error { return client.AppsV1().Deployments(n).Delete(ctx, x, opts) }); err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods(n).List(ctx, metav1.ListOptions{})
	if err := sweep(itemNames(pods, err), err, func(x string) error { return client.CoreV1().Pods(n).Delete(ctx, x, opts) }); err != nil {
		return err
	}
	svcs, err := client.CoreV1().Services(n).List(ctx, metav1.ListOptions{})
	if err := sweep(itemNames(svcs, err), err, func(x string) error { return client.CoreV1().Services(n).Delete(ctx, x, opts) }); err != nil {
		return err
	}
	secs, err := client.CoreV1().Secrets(n).List(ctx, metav1.ListOptions{})
	if err := sweep(itemNames(secs, err), err, func(x string) error { return client.CoreV1().Secrets(n).Delete(ctx, x, opts) }); err != nil {
		return err
	}
	cms, err := client.CoreV1().ConfigMaps(n).List(ctx, metav1.ListOptions{})
	if err := sweep(itemNames(cms, err), err, func(x string) error { return client.CoreV1().ConfigMaps(n).Delete(ctx, x, opts) }); err != nil {
		return err
	}
	ings, err := client.NetworkingV1().Ingresses(n).List(ctx, metav1.ListOptions{})
	if err := sweep(itemNames(ings, err), err, func(x string) error { return client.NetworkingV1().Ingresses(n).Delete(ctx, x, opts) }); err != nil {
		return err
	}
	if left > 0 {
		return nil // the next pass finalizes it (the deletions poke the watches; the resync covers the rest)
	}
	ns = ns.DeepCopy()
	ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	_, err = client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// itemNames are the names of a list's items (none when err is set).
func itemNames(list metav1.ListInterface, err error) []string {
	if err != nil {
		return nil
	}
	var out []string
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for _, x := range l.Items {
			out = append(out, x.Name)
		}
	case *corev1.PodList:
		for _, x := range l.Items {
			out = append(out, x.Name)
		}
	case *corev1.ServiceList:
		for _, x := range l.Items {
			out = append(out, x.Name)
		}
	case *corev1.SecretList:
		for _, x := range l.Items {
			out = append(out, x.Name)
		}
	case *corev1.ConfigMapList:
		for _, x := range l.Items {
			out = append(out, x.Name)
		}
	case *networkingv1.IngressList:
		for _, x := range l.Items {
			out = append(out, x.Name)
		}
	}
	return out
}
