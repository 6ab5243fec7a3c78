package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/berth-dev/berth/providers"
)

// Apply implements providers.Provider: it server-side applies the Deployment and Services of d (force, field
// manager "berth"), then waits until the Deployment's status shows d.Workload.Replicas updated, ready and
// available replicas of the new generation. A rollout past its progress deadline is a permanent error.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	w := d.Workload
	ns, name := p.namespace(d.Owner.Environment), p.objectName(d.Owner.Environment, w.Name)
	log := p.log.With("env", d.Owner.Environment, "workload", w.Name, "revision", d.SpecHash)
	if msg := dnsLabel(w.Name); msg != "" {
		return providers.Permanent(fmt.Errorf("workload %q: name: %s", w.Name, msg))
	}
	if err := checkLabels(ownerLabels(d)); err != nil {
		return fmt.Errorf("workload %q: %w", w.Name, err)
	}
	if err := p.ensureNamespace(ctx, ns, d.Owner.Environment); err != nil {
		return err
	}

	want, err := deployment(d, ns, name)
	if err != nil {
		return providers.Permanent(err)
	}
	cur, err := p.getDeployment(ctx, ns, name)
	if err != nil {
		return err
	}
	if cur != nil && !owned(cur.Labels, d.Owner, w.Name) {
		return providers.Permanent(fmt.Errorf("deployment %s/%s: %w", ns, name, ErrNotOwned))
	}
	internal, public := services(d, ns, name)
	// Check every object's ownership before writing any.
	for _, s := range []struct {
		name string
		ac   *coreac.ServiceApplyConfiguration
	}{{name, internal}, {name + PublicSuffix, public}} {
		if err := p.reconcileService(ctx, d, ns, s.name, s.ac, true); err != nil {
			return err
		}
	}

	if cur == nil || !sameAsOurs(cur, want) {
		if cur != nil {
			log.Info("deployment differs from berth's fields; applying", "namespace", ns, "generation", cur.Generation)
		}
		_, err = call(ctx, p, "apply deployment "+ns+"/"+name, func(ctx context.Context) (*appsv1.Deployment, error) {
			return p.client.AppsV1().Deployments(ns).Apply(ctx, want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		})
		if err != nil {
			return err
		}
	}
	for _, s := range []struct {
		name string
		ac   *coreac.ServiceApplyConfiguration
	}{{name, internal}, {name + PublicSuffix, public}} {
		if err := p.reconcileService(ctx, d, ns, s.name, s.ac, false); err != nil {
			return err
		}
	}
	return p.waitRollout(ctx, ns, name, log)
}

// sameAsOurs tells whether the fields berth owns in cur equal want, using the managed fields (Extract), so that
// an unchanged spec costs no write and any drift of our fields is re-applied.
func sameAsOurs(cur *appsv1.Deployment, want *appsac.DeploymentApplyConfiguration) bool {
	got, err := appsac.ExtractDeployment(cur, FieldManager)
	if err != nil {
		return false
	}
	a, errA := json.Marshal(got)
	b, errB := json.Marshal(want)
	return errA == nil && errB == nil && string(a) == string(b)
}

// reconcileService checks (checkOnly) or converges one Service: applied when ac is set, deleted when ac is nil and
// an owned one exists. An unowned Service of that name is a permanent error.
func (p *Provider) reconcileService(ctx context.Context, d providers.Desired, ns, name string, ac *coreac.ServiceApplyConfiguration, checkOnly bool) error {
	cur, err := call(ctx, p, "get service "+ns+"/"+name, func(ctx context.Context) (*corev1.Service, error) {
		return p.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	})
	if apierrors.IsNotFound(err) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	if cur != nil && !owned(cur.Labels, d.Owner, d.Workload.Name) {
		if ac == nil {
			return nil // not ours and not wanted: leave it alone
		}
		return providers.Permanent(fmt.Errorf("service %s/%s: %w", ns, name, ErrNotOwned))
	}
	if checkOnly {
		return nil
	}
	switch {
	case ac != nil:
		if cur != nil {
			if got, err := coreac.ExtractService(cur, FieldManager); err == nil && jsonEqual(got, ac) {
				return nil
			}
		}
		_, err = call(ctx, p, "apply service "+ns+"/"+name, func(ctx context.Context) (*corev1.Service, error) {
			return p.client.CoreV1().Services(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		})
		return err
	case cur != nil:
		return p.deleteObject(ctx, "service", ns, name, cur.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
			return p.client.CoreV1().Services(ns).Delete(ctx, name, o)
		})
	}
	return nil
}

func jsonEqual(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
}

// ensureNamespace creates berth's per-environment namespace (labelled) once per provider; a namespace the target
// names is the operator's and is never created.
func (p *Provider) ensureNamespace(ctx context.Context, ns, env string) error {
	if p.set.namespace != "" {
		return nil
	}
	p.mu.Lock()
	done := p.namespaces[ns]
	p.mu.Unlock()
	if done {
		return nil
	}
	ac := coreac.Namespace(ns).WithLabels(map[string]string{LabelManagedBy: "berth", providers.LabelEnvironment: env})
	_, err := call(ctx, p, "apply namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
		return p.client.CoreV1().Namespaces().Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.namespaces[ns] = true
	p.mu.Unlock()
	return nil
}

func (p *Provider) getDeployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	dep, err := call(ctx, p, "get deployment "+ns+"/"+name, func(ctx context.Context) (*appsv1.Deployment, error) {
		return p.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return dep, err
}

// waitRollout polls the Deployment every PollInterval until RolloutState says done or failed.
func (p *Provider) waitRollout(ctx context.Context, ns, name string, log *slog.Logger) error {
	for {
		dep, err := p.getDeployment(ctx, ns, name)
		if err != nil {
			return err
		}
		if dep == nil {
			return fmt.Errorf("deployment %s/%s disappeared during the rollout", ns, name)
		}
		done, why, err := RolloutState(dep)
		if err != nil || done {
			return err
		}
		log.Debug("waiting for the rollout", "why", why)
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("deployment %s/%s: %s: %w", ns, name, why, err)
		}
	}
}

// RolloutState reads a Deployment's status the way `kubectl rollout status` does: done when the controller has
// observed the latest generation and every desired replica is updated, ready and available with no old replica
// left; a Progressing condition with reason ProgressDeadlineExceeded is a failed rollout (a permanent error).
// Otherwise why says what is awaited.
func RolloutState(dep *appsv1.Deployment) (done bool, why string, err error) {
	st := dep.Status
	if dep.Generation > st.ObservedGeneration {
		return false, fmt.Sprintf("generation %d not yet observed (at %d)", dep.Generation, st.ObservedGeneration), nil
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "", providers.Permanent(fmt.Errorf("deployment %s/%s: rollout failed: progress deadline exceeded: %s",
				dep.Namespace, dep.Name, c.Message))
		}
	}
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	switch {
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas), nil
	case st.ReadyReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas ready", st.ReadyReplicas, want), nil
	case st.AvailableReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas available", st.AvailableReplicas, want), nil
	case st.Replicas > want:
		return false, fmt.Sprintf("%d replicas, scaling down to %d", st.Replicas, want), nil
	}
	if want > 0 {
		for _, c := range st.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status != corev1.ConditionTrue {
				return false, "condition Available is " + string(c.Status), nil
			}
		}
	}
	return true, "", nil
}

// List implements providers.Provider: owner's Deployments on this target in the environment's namespace, each
// with its pods (not terminating) as replicas.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	ns := p.namespace(owner.Environment)
	sel := labels.SelectorFromSet(labels.Set{
		providers.LabelInstance: owner.Instance, providers.LabelEnvironment: owner.Environment,
	}).String()
	deps, err := call(ctx, p, "list deployments in "+ns, func(ctx context.Context) (*appsv1.DeploymentList, error) {
		return p.client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	})
	if err != nil {
		return nil, err
	}
	pods, err := call(ctx, p, "list pods in "+ns, func(ctx context.Context) (*corev1.PodList, error) {
		return p.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	})
	if err != nil {
		return nil, err
	}
	byWorkload := map[string][]corev1.Pod{}
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp == nil {
			byWorkload[pod.Labels[providers.LabelWorkload]] = append(byWorkload[pod.Labels[providers.LabelWorkload]], pod)
		}
	}
	var out []providers.Observed
	for i := range deps.Items {
		dep := &deps.Items[i]
		wl := dep.Labels[providers.LabelWorkload]
		if dep.Labels[providers.LabelTarget] != target || wl == "" || dep.DeletionTimestamp != nil {
			continue
		}
		o := providers.Observed{Workload: wl, Target: target, Spec: observedSpec(dep)}
		o.Spec.Provider = target
		counts := map[string]int{}
		for _, pod := range byWorkload[wl] {
			r := replica(pod, o.Spec.Health != nil)
			counts[r.SpecHash]++
			o.Replicas = append(o.Replicas, r)
		}
		sort.Slice(o.Replicas, func(a, b int) bool { return o.Replicas[a].Name < o.Replicas[b].Name })
		o.SpecHash = dep.Labels[providers.LabelSpecHash]
		if best := majority(counts); best != "" {
			o.SpecHash = best
		}
		out = append(out, o)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Workload < out[b].Workload })
	return out, nil
}

// majority is the most frequent hash (ties broken by name, for a stable answer); "" for none.
func majority(counts map[string]int) string {
	best := ""
	for _, h := range slices.Sorted(maps.Keys(counts)) {
		if best == "" || counts[h] > counts[best] {
			best = h
		}
	}
	return best
}

// replica describes a pod: running when its phase is Running, healthy when its Ready condition holds.
func replica(pod corev1.Pod, hasHealth bool) providers.Replica {
	r := providers.Replica{
		ID: string(pod.UID), Name: pod.Name, SpecHash: pod.Labels[providers.LabelSpecHash],
		State: strings.ToLower(string(pod.Status.Phase)), Running: pod.Status.Phase == corev1.PodRunning,
	}
	if r.State == "" {
		r.State = "pending"
	}
	ready := false
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	switch {
	case ready && hasHealth:
		r.Health = "healthy"
	case !ready && r.Running && hasHealth:
		r.Health = "unhealthy"
	case !ready && r.Running:
		r.Health = "starting" // not ready without a probe: containers still starting
	}
	return r
}

// Delete implements providers.Provider: removes the workload's Deployment and Services when they carry owner's
// labels (background propagation: the garbage collector removes ReplicaSets and pods), then waits until the
// Deployment is gone. Objects of that name without owner's labels are left alone.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	ns, name := p.namespace(owner.Environment), p.objectName(owner.Environment, workload)
	for _, sn := range []string{name + PublicSuffix, name} {
		svc, err := call(ctx, p, "get service "+ns+"/"+sn, func(ctx context.Context) (*corev1.Service, error) {
			return p.client.CoreV1().Services(ns).Get(ctx, sn, metav1.GetOptions{})
		})
		if apierrors.IsNotFound(err) || (err == nil && !owned(svc.Labels, owner, workload)) {
			continue
		}
		if err != nil {
			return err
		}
		if err := p.deleteObject(ctx, "service", ns, sn, svc.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
			return p.client.CoreV1().Services(ns).Delete(ctx, sn, o)
		}); err != nil {
			return err
		}
	}
	dep, err := p.getDeployment(ctx, ns, name)
	if err != nil || dep == nil || !owned(dep.Labels, owner, workload) {
		return err
	}
	if err := p.deleteObject(ctx, "deployment", ns, name, dep.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
		return p.client.AppsV1().Deployments(ns).Delete(ctx, name, o)
	}); err != nil {
		return err
	}
	for {
		cur, err := p.getDeployment(ctx, ns, name)
		if err != nil || cur == nil || cur.UID != dep.UID {
			return err
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("deployment %s/%s: waiting for the deletion: %w", ns, name, err)
		}
	}
}

// deleteObject deletes one object with a UID precondition (never a replacement someone made meanwhile); gone
// already is success.
func (p *Provider) deleteObject(ctx context.Context, kind, ns, name string, uid types.UID, del func(context.Context, metav1.DeleteOptions) error) error {
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &bg}
	_, err := call(ctx, p, "delete "+kind+" "+ns+"/"+name, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, del(ctx, opts)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// call runs one API call with CallTimeout, retrying transient failures with capped exponential backoff and
// jitter; other failures come back as providers.Permanent. Errors name the operation.
func call[T any](ctx context.Context, p *Provider, what string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	backoff := p.RetryBase
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		v, err := f(cctx)
		cancel()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if apierrors.IsNotFound(err) {
			return zero, fmt.Errorf("%s: %w", what, err) // the caller decides what absence means
		}
		if !Transient(err) {
			return zero, providers.Permanent(fmt.Errorf("%s: %w", what, err))
		}
		if attempt >= p.RetryAttempts {
			return zero, fmt.Errorf("%s: giving up after %d tries: %w", what, attempt, err)
		}
		wait := backoff
		if s, ok := apierrors.SuggestsClientDelay(err); ok && time.Duration(s)*time.Second > wait {
			wait = time.Duration(s) * time.Second
		}
		wait = min(wait, p.RetryMax)
		wait = wait/2 + rand.N(wait/2+1) // jitter: spread retries of many workloads
		p.log.Debug("retrying a transient failure", "call", what, "attempt", attempt, "error", err)
		if err := providers.Sleep(ctx, wait); err != nil {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		backoff = min(2*backoff, p.RetryMax)
	}
}

// Transient tells whether an API error is worth retrying: conflicts, throttling, timeouts, 5xx answers and
// transport failures (no answer at all). Invalid, forbidden and unauthorized requests are not.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case apierrors.IsConflict(err), apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err),
		apierrors.IsTimeout(err), apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsUnexpectedServerError(err), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Code >= 500
	}
	return true // no API answer: connection refused or reset, TLS handshake timeout, EOF
}
