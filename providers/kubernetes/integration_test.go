package kubernetes_test

import (
	"context"
	"errors"
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

// manualNamespace creates a namespace the simulated controller leaves alone.
func manualNamespace(ctx context.Context, t *testing.T, c *kubetest.Cluster) string {
	t.Helper()
	ns := "manual-" + randomID(t)
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{kubetest.LabelManual: "true"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// applyInBackground starts Apply and returns its result channel once the Deployment exists.
func applyInBackground(ctx context.Context, t *testing.T, c *kubetest.Cluster, p providers.Provider, d providers.Desired, ns string) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- p.Apply(ctx, d) }()
	waitFor(ctx, t, "the deployment to be applied", func() bool {
		_, err := c.Client.AppsV1().Deployments(ns).Get(ctx, d.Owner.Environment+"-"+d.Workload.Name, metav1.GetOptions{})
		return err == nil
	})
	return res
}

// TestRolloutOutcomes drives the rollout by hand in a target-named namespace: a stalled rollout
// (ProgressDeadlineExceeded) fails Apply with a permanent error; a simulated one lets it return.
func TestRolloutOutcomes(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := manualNamespace(ctx, t, c)
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type, Settings: map[string]any{"namespace": ns}})
	w := referenceWorkload("stall")
	d := providers.Desired{Owner: providers.Owner{Instance: "i" + randomID(t), Environment: "qa"}, Target: "k", Workload: w,
		SpecHash: providers.SpecHash(w)}
	name := "qa-stall" // <env>-<workload> in a namespace the target names

	res := applyInBackground(ctx, t, c, p, d, ns)
	if err := kubetest.StallRollout(ctx, c.Client, ns, name); err != nil {
		t.Fatal(err)
	}
	err := <-res
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply of a stalled rollout = %v, want a permanent error", err)
	}
	t.Logf("stalled: %v", err)

	w.Env = map[string]string{"GREETING": "again"}
	d.Workload, d.SpecHash = w, providers.SpecHash(w)
	res = applyInBackground(ctx, t, c, p, d, ns)
	waitFor(ctx, t, "the new generation", func() bool {
		dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && dep.Labels[providers.LabelSpecHash] == d.SpecHash
	})
	if err := kubetest.SimulateRollout(ctx, c.Client, ns, name); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("Apply after a simulated rollout: %v", err)
	}
	obs, err := p.List(ctx, d.Owner, "k")
	if err != nil || len(obs) != 1 || obs[0].SpecHash != d.SpecHash || len(obs[0].Replicas) != 2 {
		t.Fatalf("List = %+v, %v", obs, err)
	}
	if err := p.Delete(ctx, d.Owner, "k", w.Name); err != nil {
		t.Fatal(err)
	}
}

// TestNotOwned checks that an unlabelled Deployment or Service with berth's name is a permanent "not owned"
// error, left untouched by Apply and Delete.
func TestNotOwned(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "i" + randomID(t), Environment: "own"}
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	w := referenceWorkload("taken")

	// The namespace exists once the first Apply made sure of it; make it ourselves for the squatter.
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "berth-own"}},
		metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	lookAlike(ctx, t, c.Client, "berth-own", "taken")
	err = p.Apply(ctx, providers.Desired{Owner: owner, Target: "k", Workload: w, SpecHash: providers.SpecHash(w)})
	if !errors.Is(err, kubernetes.ErrNotOwned) || !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply over an unowned deployment = %v, want a permanent ErrNotOwned", err)
	}
	if err := p.Delete(ctx, owner, "k", "taken"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	dep, err := c.Client.AppsV1().Deployments("berth-own").Get(ctx, "taken", metav1.GetOptions{})
	if err != nil || dep.Labels[providers.LabelInstance] != "" {
		t.Fatalf("the unowned deployment was touched: %v %v", dep.Labels, err)
	}

	// A squatting Service blocks the workload the same way, before any write.
	w2 := referenceWorkload("svc-taken")
	_, err = c.Client.CoreV1().Services("berth-own").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-taken-public"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Services("berth-own").Delete(context.Background(), "svc-taken-public", metav1.DeleteOptions{})
	})
	err = p.Apply(ctx, providers.Desired{Owner: owner, Target: "k", Workload: w2, SpecHash: providers.SpecHash(w2)})
	if !errors.Is(err, kubernetes.ErrNotOwned) {
		t.Fatalf("Apply over an unowned service = %v, want ErrNotOwned", err)
	}
	if _, err := c.Client.AppsV1().Deployments("berth-own").Get(ctx, "svc-taken", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a deployment was written despite the unowned service: %v", err)
	}
}

// TestFactoryKubeconfig builds the provider through the registry from the cluster's kubeconfig file, applies a
// workload without ports, and checks the namespace berth made and that no Service exists.
func TestFactoryKubeconfig(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prov, err := providers.New(schema.Target{Name: "k", Type: kubernetes.Type,
		Settings: map[string]any{"kubeconfig": c.Kubeconfig, "context": "kubetest"}}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := prov.(*kubernetes.Provider)
	p.PollInterval = 20 * time.Millisecond
	owner := providers.Owner{Instance: "i" + randomID(t), Environment: "fac"}
	w := referenceWorkload("worker")
	w.Ports, w.Health = nil, &schema.HealthCheck{Command: []string{"/app", "healthcheck"}, Retries: 1}
	d := providers.Desired{Owner: owner, Target: "k", Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, "berth-fac", metav1.GetOptions{})
	if err != nil || ns.Labels[kubernetes.LabelManagedBy] != "berth" || ns.Labels[providers.LabelEnvironment] != "fac" {
		t.Fatalf("namespace: %v %v", ns, err)
	}
	svcs, err := c.Client.CoreV1().Services("berth-fac").List(ctx, metav1.ListOptions{})
	if err != nil || len(svcs.Items) != 0 {
		t.Fatalf("services of a workload without ports: %v %v", svcs, err)
	}
	dep, err := c.Client.AppsV1().Deployments("berth-fac").Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var berthManaged bool
	for _, mf := range dep.ManagedFields {
		berthManaged = berthManaged || (mf.Manager == kubernetes.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply)
	}
	if pr := dep.Spec.Template.Spec.Containers[0].ReadinessProbe; !berthManaged || pr == nil || pr.Exec == nil {
		t.Fatalf("deployment not applied server-side by berth with an exec probe: %+v", dep.ManagedFields)
	}
	// Re-applying the unchanged spec writes nothing: berth's extracted fields already match.
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	again, err := c.Client.AppsV1().Deployments("berth-fac").Get(ctx, "worker", metav1.GetOptions{})
	if err != nil || again.ResourceVersion != dep.ResourceVersion {
		t.Fatalf("an unchanged Apply wrote the deployment: resourceVersion %s, then %s (%v)", dep.ResourceVersion, again.ResourceVersion, err)
	}
	// Adding a port later creates the Service; removing it deletes it again.
	w.Ports = []schema.Port{{Port: 8080, Protocol: "tcp"}}
	d.Workload, d.SpecHash = w, providers.SpecHash(w)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Services("berth-fac").Get(ctx, "worker", metav1.GetOptions{}); err != nil {
		t.Fatalf("service after adding a port: %v", err)
	}
	w.Ports = nil
	d.Workload, d.SpecHash = w, providers.SpecHash(w)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Services("berth-fac").Get(ctx, "worker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("service after removing the port: %v", err)
	}
	if err := p.Delete(ctx, owner, "k", "worker"); err != nil {
		t.Fatal(err)
	}
}
