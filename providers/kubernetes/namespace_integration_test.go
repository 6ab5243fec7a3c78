package kubernetes_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/schema"
)

// hookTransport runs hook ahead of each request it forwards; a response hook returns replaces the request.
type hookTransport struct {
	mu   sync.Mutex
	hook func(*http.Request) *http.Response
	next http.RoundTripper
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	hook := h.hook
	h.mu.Unlock()
	if hook != nil {
		if resp := hook(req); resp != nil {
			return resp, nil
		}
	}
	return h.next.RoundTrip(req)
}

func (h *hookTransport) set(hook func(*http.Request) *http.Response) {
	h.mu.Lock()
	h.hook = hook
	h.mu.Unlock()
}

// hookedClient is a clientset on the cluster whose requests go through h.
func hookedClient(t *testing.T, cfg *rest.Config, h *hookTransport) k8s.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { h.next = rt; return h })
	cs, err := k8s.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// forbidden is the API server's answer to a request RBAC denies.
func forbidden(req *http.Request) *http.Response {
	body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"rolebindings.rbac.authorization.k8s.io is forbidden: User \"berth\" cannot list resource \"rolebindings\"","reason":"Forbidden","code":403}`
	return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": []string{"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
}

// nsFixture is one environment on a target without a namespace setting: berth makes berth-<env>.
type nsFixture struct {
	c     *kubetest.Cluster
	owner providers.Owner
	ns    string
}

func newNSFixture(t *testing.T, c *kubetest.Cluster, prefix string) nsFixture {
	f := nsFixture{c: c, owner: providers.Owner{Instance: prefix + randomID(t), Environment: prefix + randomID(t)}}
	f.ns = "berth-" + f.owner.Environment
	t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(context.Background(), f.ns, metav1.DeleteOptions{}) })
	return f
}

func (f nsFixture) desired(name string) providers.Desired {
	w := referenceWorkload(name)
	w.Replicas = 1
	return providers.Desired{Owner: f.owner, Target: "k", Workload: w, SpecHash: providers.SpecHash(w)}
}

func (f nsFixture) apply(ctx context.Context, t *testing.T, p providers.Provider, name string) {
	t.Helper()
	if err := p.Apply(ctx, f.desired(name)); err != nil {
		t.Fatalf("Apply %s: %v", name, err)
	}
}

func (f nsFixture) delete(ctx context.Context, t *testing.T, p providers.Provider, name string) {
	t.Helper()
	if err := p.Delete(ctx, f.owner, "k", name); err != nil {
		t.Fatalf("Delete %s: %v", name, err)
	}
}

// get is the namespace, nil when gone.
func (f nsFixture) get(ctx context.Context, t *testing.T) *corev1.Namespace {
	t.Helper()
	ns, err := f.c.Client.CoreV1().Namespaces().Get(ctx, f.ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// kept fails t unless the namespace is there and not being deleted.
func (f nsFixture) kept(ctx context.Context, t *testing.T, why string) *corev1.Namespace {
	t.Helper()
	ns := f.get(ctx, t)
	if ns == nil || ns.DeletionTimestamp != nil {
		t.Fatalf("%s: namespace %s was deleted", why, f.ns)
	}
	return ns
}

// gone waits until the namespace is gone (the simulated namespace controller finalizes it).
func (f nsFixture) gone(ctx context.Context, t *testing.T, why string) {
	t.Helper()
	ns := f.get(ctx, t)
	if ns != nil && ns.DeletionTimestamp == nil {
		t.Fatalf("%s: namespace %s is still there, not being deleted", why, f.ns)
	}
	waitFor(ctx, t, "namespace "+f.ns+" to go", func() bool { return f.get(ctx, t) == nil })
}

// TestNamespaceCollected: berth-<env>, created and labelled by berth, is deleted with the environment's last
// workload, not before, and created again by the next Apply.
func TestNamespaceCollected(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f := newNSFixture(t, c, "gc")
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	f.apply(ctx, t, p, "a")
	f.apply(ctx, t, p, "b")
	ns := f.kept(ctx, t, "after the applies")
	for k, v := range map[string]string{providers.LabelInstance: f.owner.Instance, providers.LabelEnvironment: f.owner.Environment,
		kubernetes.LabelManagedBy: "berth"} {
		if ns.Labels[k] != v {
			t.Errorf("namespace label %s = %q, want %q", k, ns.Labels[k], v)
		}
	}
	if !strings.HasPrefix(ns.Annotations[kubernetes.AnnotationCreated], "b ") {
		t.Errorf("annotation %s = %q, want the Deployment created last", kubernetes.AnnotationCreated, ns.Annotations[kubernetes.AnnotationCreated])
	}
	// What every namespace holds does not keep it.
	if _, err := c.Client.CoreV1().ConfigMaps(f.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(f.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.delete(ctx, t, p, "a")
	f.kept(ctx, t, "b is left")
	f.delete(ctx, t, p, "b")
	f.gone(ctx, t, "the last workload deleted")

	// The same provider (its cache of the namespace dropped) creates it again.
	f.apply(ctx, t, p, "a")
	if again := f.kept(ctx, t, "applied again"); again.UID == ns.UID {
		t.Error("the namespace has the old UID")
	}
	if obs, err := p.List(ctx, f.owner, "k"); err != nil || len(obs) != 1 || obs[0].Workload != "a" {
		t.Errorf("List = %+v, %v", obs, err)
	}
}

// TestNamespaceKept: a namespace berth did not create, one another instance created, one holding an object
// that is not berth's, the target's own namespace and one whose contents RBAC does not let berth see are never
// deleted; Delete succeeds all the same.
func TestNamespaceKept(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})

	t.Run("not created by berth", func(t *testing.T) {
		f := newNSFixture(t, c, "hand")
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.apply(ctx, t, p, "a")
		if ns := f.kept(ctx, t, "applied"); len(ns.Labels[providers.LabelInstance]) > 0 {
			t.Errorf("berth labelled a namespace it did not create: %v", ns.Labels)
		}
		f.delete(ctx, t, p, "a")
		f.kept(ctx, t, "its workload deleted")
	})

	t.Run("another instance's workload", func(t *testing.T) {
		f := newNSFixture(t, c, "two")
		other := f
		other.owner.Instance = "other" + randomID(t)
		f.apply(ctx, t, p, "a")
		other.apply(ctx, t, p, "x") // berth of another instance, same environment name, same namespace
		f.delete(ctx, t, p, "a")
		f.kept(ctx, t, "the other instance's workload is left")
		other.delete(ctx, t, p, "x")
		f.kept(ctx, t, "the other instance did not create it")
	})

	foreign := map[string]func(t *testing.T, ns string){
		"configmap": func(t *testing.T, ns string) {
			if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		"rolebinding": func(t *testing.T, ns string) {
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ci"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "ci"}}}
			if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		"deployment": func(t *testing.T, ns string) { lookAlike(ctx, t, c.Client, ns, "other") },
	}
	for name, add := range foreign {
		t.Run("holding a "+name, func(t *testing.T) {
			f := newNSFixture(t, c, "fo")
			f.apply(ctx, t, p, "a")
			add(t, f.ns)
			f.delete(ctx, t, p, "a")
			f.kept(ctx, t, "it holds a "+name)
		})
	}

	t.Run("the target's namespace", func(t *testing.T) {
		f := newNSFixture(t, c, "tn")
		f.ns = "apps-" + randomID(t)
		t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(context.Background(), f.ns, metav1.DeleteOptions{}) })
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pt := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type, Settings: map[string]any{"namespace": f.ns}})
		f.apply(ctx, t, pt, "a")
		f.delete(ctx, t, pt, "a")
		f.kept(ctx, t, "the target names it")
	})

	t.Run("contents not visible", func(t *testing.T) {
		f := newNSFixture(t, c, "rb")
		h := &hookTransport{}
		pr := newProvider(t, hookedClient(t, c.Config, h), schema.Target{Name: "k", Type: kubernetes.Type})
		f.apply(ctx, t, pr, "a")
		var denied sync.Once
		seen := make(chan struct{})
		h.set(func(req *http.Request) *http.Response {
			if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/namespaces/"+f.ns+"/rolebindings") {
				denied.Do(func() { close(seen) })
				return forbidden(req)
			}
			return nil
		})
		f.delete(ctx, t, pr, "a") // succeeds: the namespace is only left in place
		select {
		case <-seen:
		default:
			t.Fatal("Delete never listed the rolebindings")
		}
		f.kept(ctx, t, "berth may not list its rolebindings")
	})
}

// TestNamespaceRaces: an Apply into berth's namespace racing the Delete of the environment's last workload
// never loses its workload. A Delete that found the namespace empty before a Deployment was created in it is
// refused (the namespace changed); an Apply whose namespace was deleted under it waits for it to go and applies
// again in a new one; an Apply into a namespace being deleted waits until it is gone.
func TestNamespaceRaces(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	deployed := func(t *testing.T, f nsFixture, p providers.Provider, name string) {
		t.Helper()
		obs, err := p.List(ctx, f.owner, "k")
		if err != nil || len(obs) != 1 || obs[0].Workload != name || len(obs[0].Replicas) != 1 || !obs[0].Replicas[0].Running {
			t.Fatalf("List = %+v, %v; want %s running", obs, err, name)
		}
	}

	t.Run("delete after the namespace was found empty", func(t *testing.T) {
		f := newNSFixture(t, c, "ra")
		h := &hookTransport{}
		pDel := newProvider(t, hookedClient(t, c.Config, h), schema.Target{Name: "k", Type: kubernetes.Type})
		pApp := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
		f.apply(ctx, t, pDel, "a")
		var once sync.Once
		h.set(func(req *http.Request) *http.Response {
			if req.Method == http.MethodDelete && strings.HasSuffix(req.URL.Path, "/api/v1/namespaces/"+f.ns) {
				// Between the look inside and the deletion, another workload is applied.
				once.Do(func() { f.apply(ctx, t, pApp, "b") })
			}
			return nil
		})
		f.delete(ctx, t, pDel, "a")
		f.kept(ctx, t, "b was applied before the deletion")
		deployed(t, f, pApp, "b")
	})

	t.Run("namespace deleted under the apply", func(t *testing.T) {
		f := newNSFixture(t, c, "rb")
		h := &hookTransport{}
		pApp := newProvider(t, hookedClient(t, c.Config, h), schema.Target{Name: "k", Type: kubernetes.Type})
		f.apply(ctx, t, pApp, "a")
		f.delete(ctx, t, pApp, "a")
		f.gone(ctx, t, "a deleted")
		var first *corev1.Namespace
		var once sync.Once
		h.set(func(req *http.Request) *http.Response {
			if req.Method == http.MethodPatch && strings.HasSuffix(req.URL.Path, "/api/v1/namespaces/"+f.ns) {
				// A Delete that found the namespace empty before b's Deployment existed deletes it now.
				once.Do(func() {
					first = f.get(ctx, t)
					if err := c.Client.CoreV1().Namespaces().Delete(ctx, f.ns, metav1.DeleteOptions{}); err != nil {
						t.Error(err)
					}
				})
			}
			return nil
		})
		f.apply(ctx, t, pApp, "b")
		now := f.kept(ctx, t, "b applied")
		if first == nil || now.UID == first.UID {
			t.Fatalf("the apply went on in the deleted namespace (first %v)", first)
		}
		deployed(t, f, pApp, "b")
	})

	t.Run("apply into a namespace being deleted", func(t *testing.T) {
		f := newNSFixture(t, c, "rc")
		waiting := make(chan struct{})
		var once sync.Once
		log := slog.New(&signalHandler{msg: "the namespace is being deleted", hit: func() { once.Do(func() { close(waiting) }) }})
		p, err := kubernetes.NewWithClient(c.Client, schema.Target{Name: "k", Type: kubernetes.Type}, providers.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		p.PollInterval, p.RetryBase, p.RetryMax = 20*time.Millisecond, 5*time.Millisecond, 100*time.Millisecond
		f.apply(ctx, t, p, "a")
		// A finalizer of someone else's holds the namespace in Terminating after the namespace controller's work.
		hold := `{"metadata":{"finalizers":["kubetest.berth.dev/hold"]}}`
		if _, err := c.Client.CoreV1().Namespaces().Patch(ctx, f.ns, types.MergePatchType, []byte(hold), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		first := f.get(ctx, t)
		if err := c.Client.CoreV1().Namespaces().Delete(ctx, f.ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Apply(ctx, f.desired("b")) }()
		select {
		case <-waiting:
		case err := <-done:
			t.Fatalf("Apply returned %v while the namespace was being deleted", err)
		case <-ctx.Done():
			t.Fatal("Apply never said it waits for the namespace")
		}
		release := `{"metadata":{"finalizers":null}}`
		if _, err := c.Client.CoreV1().Namespaces().Patch(ctx, f.ns, types.MergePatchType, []byte(release), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if now := f.kept(ctx, t, "b applied"); now.UID == first.UID {
			t.Error("b went into the namespace being deleted")
		}
		deployed(t, f, p, "b")
	})
}

// signalHandler calls hit for each record whose message starts with msg.
type signalHandler struct {
	msg string
	hit func()
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.hit()
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }

// TestEnvironmentEndpoint: an environment's public port is reported once the load balancer implementation has
// set the LoadBalancer Service's status (a hostname here), at the host port, and only then; the target's
// ingressClass gives an environment no Ingress and no URL (it is for previews' hosts).
func TestEnvironmentEndpoint(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newNSFixture(t, c, "ep")
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type, Settings: map[string]any{"ingressClass": "nginx"}})
	d := f.desired("web")
	d.Workload.Ports[0].HostPort = 80
	d.SpecHash = providers.SpecHash(d.Workload)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	list := func() []providers.Endpoint {
		t.Helper()
		obs, err := p.List(ctx, f.owner, "k")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List = %+v, %v", obs, err)
		}
		return obs[0].Endpoints
	}
	if eps := list(); len(eps) != 0 {
		t.Errorf("before the load balancer has an address: endpoints %+v", eps)
	}
	svc, err := c.Client.CoreV1().Services(f.ns).Get(ctx, "web"+kubernetes.PublicSuffix, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Fatalf("public Service type %s", svc.Spec.Type)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "web-123.elb.example"}}
	if _, err := c.Client.CoreV1().Services(f.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: "service-controller"}); err != nil {
		t.Fatal(err)
	}
	want := providers.Endpoint{Port: 8080, Address: "web-123.elb.example:80"}
	if eps := list(); len(eps) != 1 || eps[0] != want {
		t.Errorf("with the load balancer's hostname: endpoints %+v, want %+v", eps, want)
	}
	if ings, err := c.Client.NetworkingV1().Ingresses(f.ns).List(ctx, metav1.ListOptions{}); err != nil || len(ings.Items) != 0 {
		t.Errorf("an environment got Ingresses: %v, %v", ings, err)
	}
	f.delete(ctx, t, p, "web")
}
