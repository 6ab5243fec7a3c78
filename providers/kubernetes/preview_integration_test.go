package kubernetes_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/schema"
)

// previewDesired is the reference workload in preview n at head, its port 8080 routed at host.
func previewDesired(instance string, n int, head, host string) providers.Desired {
	w := referenceWorkload("web")
	w.Replicas = 1
	return providers.Desired{Owner: providers.Owner{Instance: instance, Environment: schema.PreviewName(n), Preview: n},
		Target: "k", Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &schema.Preview{Number: n, Head: head, Base: "staging", Hosts: map[string]string{schema.HostKey("web", 8080): host}}}
}

// TestPreviewLifecycle runs a preview on a target with a namespace of its own: its namespace is created and
// labelled, its Ingress routes the host and is repaired when deleted or edited by hand, its endpoints come from the
// Ingress and the load balancer's status, Environments lists it in two calls, and DeleteEnvironment removes the
// namespace (List and Environments treat it as gone while it terminates; the simulated namespace controller
// finalizes it).
func TestPreviewLifecycle(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := "team-" + randomID(t)
	counter := &conformance.CountingTransport{}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.Next = rt; return counter })
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, cs, schema.Target{Name: "k", Type: kubernetes.Type,
		Settings: map[string]any{"namespace": base, "ingressClass": "nginx"}})
	n := 1000 + rand.IntN(1<<20)
	head := strings.Repeat("ab", 20)
	d := previewDesired("i"+randomID(t), n, head, "pr-"+strconv.Itoa(n)+"-web.preview.test")
	ns := kubernetes.PreviewNamespace(base, n)
	t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{providers.LabelInstance: d.Owner.Instance, providers.LabelEnvironment: d.Owner.Environment,
		providers.LabelPreview: strconv.Itoa(n)} {
		if got.Labels[k] != v {
			t.Errorf("namespace %s label %s = %q, want %q", ns, k, got.Labels[k], v)
		}
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err) // the workload's own name: the namespace is the preview's
	}
	if dep.Labels[providers.LabelHead] != head || dep.Labels[providers.LabelPreview] != strconv.Itoa(n) ||
		dep.Spec.Template.Labels[providers.LabelHead] != "" {
		t.Errorf("deployment labels %v, pod template labels %v", dep.Labels, dep.Spec.Template.Labels)
	}
	ing, err := c.Client.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cl := ing.Spec.IngressClassName; cl == nil || *cl != "nginx" || len(ing.Spec.Rules) != 1 ||
		ing.Spec.Rules[0].Host != d.Preview.Hosts["web/8080"] {
		t.Errorf("ingress spec %+v", ing.Spec)
	}

	list := func() providers.Observed {
		t.Helper()
		obs, err := p.List(ctx, d.Owner, "k")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List = %+v, %v", obs, err)
		}
		return obs[0]
	}
	url := "http://" + d.Preview.Hosts["web/8080"] + "/"
	if o := list(); len(o.Endpoints) != 1 || o.Endpoints[0] != (providers.Endpoint{Port: 8080, URL: url}) || len(o.Missing) > 0 {
		t.Errorf("before the load balancer: endpoints %+v, missing %v", o.Endpoints, o.Missing)
	}
	// A load balancer implementation gives the public Service an address.
	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, "web"+kubernetes.PublicSuffix, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
	if _, err := c.Client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: "service-controller"}); err != nil {
		t.Fatal(err)
	}
	if o := list(); len(o.Endpoints) != 1 || o.Endpoints[0] != (providers.Endpoint{Port: 8080, Address: "127.0.0.1:8080", URL: url}) {
		t.Errorf("with the load balancer: endpoints %+v", o.Endpoints)
	}

	// Drift: the Ingress deleted, then its host edited by hand.
	if err := c.Client.NetworkingV1().Ingresses(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if o := list(); !slices.Equal(o.Missing, []string{"Ingress web"}) || len(o.Endpoints) != 1 || o.Endpoints[0].URL != "" {
		t.Errorf("Ingress deleted: missing %v, endpoints %+v", o.Missing, o.Endpoints)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if o := list(); len(o.Missing) > 0 || len(o.Endpoints) != 1 || o.Endpoints[0].URL != url {
		t.Errorf("after the repair: missing %v, endpoints %+v", o.Missing, o.Endpoints)
	}
	waitFor(ctx, t, "a hand edit of the ingress", func() bool {
		ing, err := c.Client.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ing.Spec.Rules[0].Host = "elsewhere.example"
		_, err = c.Client.NetworkingV1().Ingresses(ns).Update(ctx, ing, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		return err == nil
	})
	if o := list(); len(o.Endpoints) != 1 || o.Endpoints[0].URL != "http://elsewhere.example/" {
		t.Errorf("host edited: endpoints %+v, want the URL the Ingress now routes", o.Endpoints)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if o := list(); len(o.Endpoints) != 1 || o.Endpoints[0].URL != url {
		t.Errorf("after the repair of the host: endpoints %+v", o.Endpoints)
	}

	// Environments: two calls, the preview once with its number and head.
	counter.Reset()
	refs, err := p.Environments(ctx, d.Owner.Instance, "k")
	if err != nil {
		t.Fatal(err)
	}
	if calls := counter.Requests(); calls != 2 {
		t.Errorf("Environments made %d requests, want 2", calls)
	}
	if want := []providers.EnvironmentRef{{Name: d.Owner.Environment, Preview: n, Head: head}}; !slices.Equal(refs, want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}

	// Teardown: the workload, then the namespace.
	if err := p.Delete(ctx, d.Owner, "k", "web"); err != nil {
		t.Fatal(err)
	}
	if refs, err := p.Environments(ctx, d.Owner.Instance, "k"); err != nil || len(refs) != 1 || refs[0].Preview != n {
		t.Errorf("an empty preview namespace: Environments = %+v, %v; want it listed, to be removed", refs, err)
	}
	if err := p.Apply(ctx, d); err != nil { // again, so that something is left in the namespace when it goes
		t.Fatal(err)
	}
	if err := p.DeleteEnvironment(ctx, d.Owner, "k"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteEnvironment(ctx, d.Owner, "k"); err != nil {
		t.Errorf("DeleteEnvironment again: %v", err)
	}
	if obs, err := p.List(ctx, d.Owner, "k"); err != nil || len(obs) != 0 {
		t.Errorf("List of a deleted preview = %+v, %v", obs, err)
	}
	if refs, err := p.Environments(ctx, d.Owner.Instance, "k"); err != nil || len(refs) != 0 {
		t.Errorf("Environments after DeleteEnvironment = %+v, %v", refs, err)
	}
	waitFor(ctx, t, "namespace "+ns+" gone", func() bool {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	// A preview opened again: its namespace is made anew.
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, d.Owner, "k", "web"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteEnvironment(ctx, d.Owner, "k"); err != nil {
		t.Fatal(err)
	}
}

// TestPreviewNamespaceNotAdopted: a namespace of a preview's name without berth's labels (or another instance's)
// fails Apply with ErrNotOwned naming it, and DeleteEnvironment leaves it alone.
func TestPreviewNamespaceNotAdopted(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	n := 1000 + rand.IntN(1<<20)
	d := previewDesired("i"+randomID(t), n, "", "web.preview.test")
	ns := kubernetes.PreviewNamespace("berth", n)
	for _, labels := range []map[string]string{nil, {providers.LabelInstance: "someone-else",
		providers.LabelEnvironment: d.Owner.Environment, providers.LabelPreview: strconv.Itoa(n)}} {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}},
			metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := p.Apply(ctx, d)
		if !errors.Is(err, kubernetes.ErrNotOwned) || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), ns) {
			t.Errorf("Apply into a namespace labelled %v = %v, want a permanent ErrNotOwned naming %s", labels, err, ns)
		}
		if err := p.DeleteEnvironment(ctx, d.Owner, "k"); err != nil {
			t.Errorf("DeleteEnvironment: %v", err)
		}
		got, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || got.DeletionTimestamp != nil {
			t.Fatalf("namespace %s after DeleteEnvironment: %v (deleting: %v)", ns, err, got.DeletionTimestamp)
		}
		if refs, err := p.Environments(ctx, d.Owner.Instance, "k"); err != nil || len(refs) != 0 {
			t.Errorf("Environments = %+v, %v; want none", refs, err)
		}
		if err := c.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "namespace "+ns+" gone", func() bool {
			_, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	}
}

// pathRecorder records the paths of the requests through it.
type pathRecorder struct {
	next  http.RoundTripper
	mu    sync.Mutex
	paths []string
}

func (r *pathRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.paths = append(r.paths, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestBaseWorkloadNoPreviewCalls: a workload of no preview costs no Ingress call (its RBAC Role need not allow
// ingresses) and List still costs three calls.
func TestBaseWorkloadNoPreviewCalls(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := &pathRecorder{}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, cs, schema.Target{Name: "k", Type: kubernetes.Type})
	w := referenceWorkload("plain")
	w.Replicas = 1
	d := providers.Desired{Owner: providers.Owner{Instance: "i" + randomID(t), Environment: "base" + randomID(t)}, Target: "k",
		Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	before := len(rec.paths)
	rec.mu.Unlock()
	if obs, err := p.List(ctx, d.Owner, "k"); err != nil || len(obs) != 1 || len(obs[0].Endpoints) != 0 {
		t.Fatalf("List = %+v, %v; want one workload, no endpoint (no load balancer address)", obs, err)
	}
	rec.mu.Lock()
	if n := len(rec.paths) - before; n != 3 {
		t.Errorf("List made %d requests, want 3: %v", n, rec.paths[before:])
	}
	rec.mu.Unlock()
	if err := p.Delete(ctx, d.Owner, "k", w.Name); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, path := range rec.paths {
		if strings.Contains(path, "ingresses") {
			t.Errorf("a workload of no preview: request %s", path)
		}
	}
	_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), "berth-"+d.Owner.Environment, metav1.DeleteOptions{})
}
