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
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Apply implements providers.Provider: it server-side applies the Deployment and Services of d (force, field
// manager "berth") when they are missing, when berth's fields differ from d or when the live read-back differs
// from d (a hand edit, whatever the spec-hash label says), first removing with a guarded JSON patch what the apply
// cannot (see stripDeployment), then waits until the Deployment's status shows d.Workload.Replicas updated,
// ready and available replicas of the new generation. A rollout past its progress deadline is a permanent error.
//
// When berth makes the namespace (a preview's, berth-<env>) and it is deleted under the Apply (Delete of the
// environment's last workload, by this provider or another), the Apply waits until it is gone, creates it again
// and starts over, at most maxNamespaceRestarts times.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	ns := p.namespace(d.Owner)
	log := p.log.With("env", d.Owner.Environment, "workload", d.Workload.Name, "revision", d.SpecHash)
	for restarts := 0; ; restarts++ {
		err := p.apply(ctx, d, ns, log)
		if err == nil || !errors.Is(err, errNamespaceGoing) || !p.makesNamespace(d.Owner) || restarts >= maxNamespaceRestarts {
			return err
		}
		p.forget(ns)
		log.Info("the namespace went during the apply; applying again once it is created again", "namespace", ns, "error", err)
	}
}

func (p *Provider) apply(ctx context.Context, d providers.Desired, ns string, log *slog.Logger) error {
	w := d.Workload
	name := p.objectName(d.Owner, w.Name)
	if msg := dnsLabel(w.Name); msg != "" {
		return providers.Permanent(fmt.Errorf("workload %q: name: %s", w.Name, msg))
	}
	if err := checkLabels(ownerLabels(d)); err != nil {
		return fmt.Errorf("workload %q: %w", w.Name, err)
	}
	ing := &ingressState{name: name}
	var err error
	if ing.want, err = ingress(d, ns, name, p.set.ingressClass); err != nil {
		return providers.Permanent(fmt.Errorf("workload %q: %w", w.Name, err))
	}
	nsOwned, err := p.ensureNamespace(ctx, ns, d.Owner, log)
	if err != nil {
		return err
	}

	versions, err := p.secretVersions(ctx, d, ns)
	if err != nil {
		return err
	}
	sp, err := planSecrets(d, ns, name, versions)
	if err != nil {
		return providers.Permanent(err)
	}
	want, err := deploymentWith(d, ns, name, sp)
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
	svcs := []*serviceState{{name: name, want: internal}, {name: name + PublicSuffix, want: public}}
	// Check every object's ownership before writing any.
	for _, s := range svcs {
		if s.cur, err = p.getService(ctx, ns, s.name); err != nil {
			return err
		}
		if s.cur != nil && !owned(s.cur.Labels, d.Owner, w.Name) {
			if s.want != nil {
				return providers.Permanent(fmt.Errorf("service %s/%s: %w", ns, s.name, ErrNotOwned))
			}
			s.cur = nil // not ours and not wanted: leave it alone
		}
	}
	if d.Owner.Preview != 0 { // only previews have one: no call, and no RBAC rule, for the others
		if ing.cur, err = p.getIngress(ctx, ns, ing.name); err != nil {
			return err
		}
	}
	if ing.cur != nil && !owned(ing.cur.Labels, d.Owner, w.Name) {
		if ing.want != nil {
			return providers.Permanent(fmt.Errorf("ingress %s/%s: %w", ns, ing.name, ErrNotOwned))
		}
		ing.cur = nil
	}
	sec := &ownedSecretState{name: name + SecretSuffix, want: sp.owned}
	if sec.cur, err = p.secretMeta(ctx, ns, sec.name); err != nil {
		return err
	}
	if sec.cur != nil && !owned(sec.cur.Labels, d.Owner, w.Name) {
		if sec.want != nil {
			return providers.Permanent(fmt.Errorf("secret %s/%s: %w", ns, sec.name, ErrNotOwned))
		}
		sec.cur = nil
	}
	// The values are in place before any pod of the new template starts.
	if err := p.applySecret(ctx, ns, sec); err != nil {
		return err
	}

	if cur != nil {
		if cur, err = p.strip(ctx, ns, name, cur, w, log); err != nil {
			return err
		}
	}
	drifted := cur != nil && !p.liveMatches(cur, svcs[0].cur, svcs[1].cur, w)
	if cur == nil || drifted || !sameAsOurs(cur, want) {
		if cur != nil {
			log.Info("deployment differs from the desired spec; applying", "namespace", ns, "generation", cur.Generation, "drift", drifted)
		}
		got, err := call(ctx, p, "apply deployment "+ns+"/"+name, func(ctx context.Context) (*appsv1.Deployment, error) {
			return p.client.AppsV1().Deployments(ns).Apply(ctx, want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		})
		if err != nil {
			return err
		}
		if cur == nil && nsOwned && d.Owner.Preview == 0 { // a preview's namespace goes with the preview only
			if err := p.markCreated(ctx, ns, got); err != nil {
				return err
			}
		}
	}
	for _, s := range svcs {
		if err := p.convergeService(ctx, ns, s, drifted, log); err != nil {
			return err
		}
	}
	if err := p.convergeIngress(ctx, ns, ing, log); err != nil {
		return err
	}
	if err := p.waitRollout(ctx, ns, name, log); err != nil {
		return err
	}
	return p.deleteSecret(ctx, ns, sec)
}

// liveMatches tells whether the workload reads back from its live objects as w would.
func (p *Provider) liveMatches(dep *appsv1.Deployment, internal, public *corev1.Service, w schema.Workload) bool {
	got := providers.Normalize(p.live(workloadObjects{dep: dep, internal: internal, public: public}).spec)
	want := providers.Normalize(p.Normalize(providers.Normalize(w)))
	got.Name, want.Name = "", ""
	return jsonEqual(got, want)
}

// strip removes from the Deployment what berth's forced apply cannot (stripDeployment), with a JSON patch
// guarded by the resourceVersion it was computed from; on a conflict it reads the Deployment again and
// recomputes. It returns the Deployment as it now is.
func (p *Provider) strip(ctx context.Context, ns, name string, cur *appsv1.Deployment, w schema.Workload, log *slog.Logger) (*appsv1.Deployment, error) {
	for attempt := 1; ; attempt++ {
		ops := p.stripDeployment(cur, w)
		if len(ops) == 0 {
			return cur, nil
		}
		body, err := guarded(cur.ResourceVersion, ops)
		if err != nil {
			return nil, err
		}
		log.Info("removing values berth's apply cannot", "namespace", ns, "removals", len(ops))
		next, err := p.client.AppsV1().Deployments(ns).Patch(ctx, name, types.JSONPatchType, body,
			metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil {
			return next, nil
		}
		if attempt >= p.RetryAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("patch deployment %s/%s: %w", ns, name, err)
		}
		// The object changed meanwhile (the guard failed) or the call failed: look again.
		log.Debug("guarded patch refused; reading the deployment again", "attempt", attempt, "error", err)
		if err := providers.Sleep(ctx, p.RetryBase); err != nil {
			return nil, fmt.Errorf("patch deployment %s/%s: %w", ns, name, err)
		}
		if cur, err = p.getDeployment(ctx, ns, name); err != nil || cur == nil {
			return nil, err
		}
	}
}

// serviceState is one of a workload's Services: the apply configuration berth wants (nil for none) and the live
// object (nil when absent).
type serviceState struct {
	name string
	want *coreac.ServiceApplyConfiguration
	cur  *corev1.Service
}

func (p *Provider) getService(ctx context.Context, ns, name string) (*corev1.Service, error) {
	svc, err := call(ctx, p, "get service "+ns+"/"+name, func(ctx context.Context) (*corev1.Service, error) {
		return p.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return svc, err
}

// convergeService applies s.want when it is missing, when berth's fields differ or when the workload drifted
// (after removing, with takeOwnership, the foreign ports it does not have), and deletes an owned Service that is
// not wanted.
func (p *Provider) convergeService(ctx context.Context, ns string, s *serviceState, drifted bool, log *slog.Logger) error {
	switch {
	case s.want != nil:
		if s.cur != nil {
			if ops := p.stripService(s.cur, s.want); len(ops) > 0 {
				body, err := guarded(s.cur.ResourceVersion, ops)
				if err != nil {
					return err
				}
				log.Info("removing foreign service ports", "service", ns+"/"+s.name, "removals", len(ops))
				if _, err := p.client.CoreV1().Services(ns).Patch(ctx, s.name, types.JSONPatchType, body,
					metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
					return fmt.Errorf("patch service %s/%s: %w", ns, s.name, err) // the next pass looks again
				}
				drifted = true
			}
			if got, err := coreac.ExtractService(s.cur, FieldManager); !drifted && err == nil && jsonEqual(got, s.want) {
				return nil
			}
		}
		_, err := call(ctx, p, "apply service "+ns+"/"+s.name, func(ctx context.Context) (*corev1.Service, error) {
			return p.client.CoreV1().Services(ns).Apply(ctx, s.want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		})
		return err
	case s.cur != nil:
		return p.deleteObject(ctx, "service", ns, s.name, s.cur.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
			return p.client.CoreV1().Services(ns).Delete(ctx, s.name, o)
		})
	}
	return nil
}

// sameAsOurs tells whether the fields berth owns in cur equal want, using the managed fields (Extract), so that
// an unchanged spec costs no write and a field another manager took from berth is re-applied.
func sameAsOurs(cur *appsv1.Deployment, want *appsac.DeploymentApplyConfiguration) bool {
	got, err := appsac.ExtractDeployment(cur, FieldManager)
	if err != nil {
		return false
	}
	return jsonEqual(got, want)
}

func jsonEqual(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
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
			if p.namespaceGoing(ctx, ns) {
				return fmt.Errorf("deployment %s/%s disappeared during the rollout: %w", ns, name, errNamespaceGoing)
			}
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
// read back from its live fields and Services (see live), with its pods (not terminating) as replicas. It makes
// three calls per pass, whatever the number of workloads: Deployments, pods and Services, by label selector.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	ns := p.namespace(owner)
	sel := labels.SelectorFromSet(labels.Set{
		providers.LabelInstance: owner.Instance, providers.LabelEnvironment: owner.Environment,
	}).String()
	if owner.Preview != 0 {
		// A preview's namespace being deleted is gone, whatever is left in it until the namespace controller
		// has removed it.
		cur, err := call(ctx, p, "get namespace "+ns, func(ctx context.Context) (*corev1.Namespace, error) {
			return p.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		})
		if apierrors.IsNotFound(err) || err == nil && cur.DeletionTimestamp != nil {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
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
	svcs, err := call(ctx, p, "list services in "+ns, func(ctx context.Context) (*corev1.ServiceList, error) {
		return p.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
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
	svcByName := map[string]*corev1.Service{}
	for i := range svcs.Items {
		if svcs.Items[i].DeletionTimestamp == nil {
			svcByName[svcs.Items[i].Name] = &svcs.Items[i]
		}
	}
	service := func(name, wl string) *corev1.Service {
		if s := svcByName[name]; s != nil && owned(s.Labels, owner, wl) {
			return s
		}
		return nil
	}
	ings, err := p.listIngresses(ctx, ns, sel, deps.Items)
	if err != nil {
		return nil, err
	}
	sc := &secretCheck{p: p, ns: ns, sel: sel, owner: owner}
	var out []providers.Observed
	for i := range deps.Items {
		dep := &deps.Items[i]
		wl := dep.Labels[providers.LabelWorkload]
		if dep.Labels[providers.LabelTarget] != target || wl == "" || dep.DeletionTimestamp != nil {
			continue
		}
		objs := workloadObjects{dep: dep, internal: service(dep.Name, wl), public: service(dep.Name+PublicSuffix, wl)}
		if ing := ings[dep.Annotations[AnnotationIngress]]; ing != nil && owned(ing.Labels, owner, wl) {
			objs.ingress = ing
		}
		st := p.live(objs)
		if err := sc.check(ctx, dep, wl, &st); err != nil {
			return nil, err
		}
		o := providers.Observed{Workload: wl, Target: target, Spec: st.spec, Missing: st.missing, Kept: st.kept,
			SecretFingerprints: st.fingerprints, Endpoints: st.endpoints}
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

// listIngresses lists the Ingresses of ns by selector, by name; only when a Deployment of deps names one (a
// preview's), so a List without previews costs no call more.
func (p *Provider) listIngresses(ctx context.Context, ns, sel string, deps []appsv1.Deployment) (map[string]*networkingv1.Ingress, error) {
	if !slices.ContainsFunc(deps, func(d appsv1.Deployment) bool { return d.Annotations[AnnotationIngress] != "" }) {
		return nil, nil
	}
	list, err := call(ctx, p, "list ingresses in "+ns, func(ctx context.Context) (*networkingv1.IngressList, error) {
		return p.client.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*networkingv1.Ingress{}
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
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
// Deployment is gone, then removes berth's Secret. Objects of that name without owner's labels are left alone.
// Last, the namespace goes when berth created it for owner and nothing else is left in it (collectNamespace).
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	ns, name := p.namespace(owner), p.objectName(owner, workload)
	var ing *networkingv1.Ingress
	var err error
	if owner.Preview != 0 {
		if ing, err = p.getIngress(ctx, ns, name); err != nil {
			return err
		}
	}
	if ing != nil && owned(ing.Labels, owner, workload) {
		if err := p.deleteObject(ctx, "ingress", ns, name, ing.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
			return p.client.NetworkingV1().Ingresses(ns).Delete(ctx, name, o)
		}); err != nil {
			return err
		}
	}
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
	if err != nil {
		return err
	}
	if dep != nil && owned(dep.Labels, owner, workload) {
		if err := p.deleteObject(ctx, "deployment", ns, name, dep.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
			return p.client.AppsV1().Deployments(ns).Delete(ctx, name, o)
		}); err != nil {
			return err
		}
		for {
			cur, err := p.getDeployment(ctx, ns, name)
			if err != nil {
				return err
			}
			if cur == nil || cur.UID != dep.UID {
				break
			}
			if err := providers.Sleep(ctx, p.PollInterval); err != nil {
				return fmt.Errorf("deployment %s/%s: waiting for the deletion: %w", ns, name, err)
			}
		}
	}
	// The Secret berth owns goes last: until the Deployment is gone, its pods may still start from it.
	sec := &ownedSecretState{name: name + SecretSuffix}
	if sec.cur, err = p.secretMeta(ctx, ns, sec.name); err != nil {
		return err
	}
	if sec.cur != nil && owned(sec.cur.Labels, owner, workload) {
		if err := p.deleteSecret(ctx, ns, sec); err != nil {
			return err
		}
	}
	return p.collectNamespace(ctx, owner, ns, p.log.With("env", owner.Environment, "workload", workload))
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
		if namespaceRefused(err) { // not retried here: Apply waits for the namespace to go and starts over
			return zero, fmt.Errorf("%s: %w: %w", what, errNamespaceGoing, err)
		}
		if apierrors.IsNotFound(err) {
			return zero, fmt.Errorf("%s: %w", what, err) // the caller decides what absence means
		}
		if !Transient(err) {
			return zero, providers.Permanent(p.explain(fmt.Errorf("%s: %w", what, err)))
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
