package kubernetes_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite against a real kube-apiserver with the simulated deployment
// controller: drift is a Deployment scaled down out of band ("remove") or its image changed by another field
// manager ("stop"), both reverted by the next server-side apply; field drift is every managed field edited as
// kubectl edit, patch, set and scale do (client-go with their field managers) and each Service deleted; the
// unmanaged change is an annotation and a grace period; the foreign value is an env entry another manager adds
// (kept, and said so, without takeOwnership); look-alikes are unlabelled Deployments; faults are 503 and 429
// answers injected in the provider's transport; the unhealthy version has its readiness probe on
// kubetest.UnreadyPath; the namespace's load balancers get the address 127.0.0.1 (kubetest.RunLoadBalancers).
func TestConformance(t *testing.T) {
	c := cluster(t)
	owner := providers.Owner{Instance: "cf" + randomID(t), Environment: "dev"}
	const tgt = "kube-test"
	ns := "berth-" + owner.Environment
	faults := &faultInjector{}
	cfg := withFaults(c.Config, faults)
	// A load balancer implementation gives the public Services of the namespace an address: at once after each
	// apply of one (so that the address is there when Apply returns), and on any later change.
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && resp.StatusCode < 300 && req.Method == http.MethodPatch &&
				strings.Contains(req.URL.Path, "/services/") && strings.HasSuffix(req.URL.Path, kubernetes.PublicSuffix) {
				if err := kubetest.AssignLoadBalancers(req.Context(), c.Client, ns, "127.0.0.1"); err != nil {
					t.Logf("load balancer address: %v", err) // RunLoadBalancers sets it a moment later
				}
			}
			return resp, err
		})
	})
	lbCtx, stopLB := context.WithCancel(context.Background())
	lbStopped := kubetest.RunLoadBalancers(lbCtx, c.Client, ns, "127.0.0.1")
	t.Cleanup(func() { stopLB(); <-lbStopped })
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			cs, err := k8s.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return newProvider(t, cs, schema.Target{Name: tgt, Type: kubernetes.Type})
		},
		Target:  tgt,
		Owner:   owner,
		Image:   "registry.example/berth-app:1",
		ImageV2: "registry.example/berth-app:2",
		Workload: func(n string) schema.Workload {
			w := referenceWorkload(n)
			w.Replicas = 1
			return w
		},
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			deps := c.Client.AppsV1().Deployments(ns)
			dep, err := deps.Get(ctx, workload, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("drift: %v", err)
			}
			before, err := kubetest.PodsOf(ctx, c.Client, dep)
			if err != nil {
				t.Fatal(err)
			}
			var patch string
			switch kind {
			case conformance.DriftRemove:
				patch = `{"spec":{"replicas":` + strconv.Itoa(int(*dep.Spec.Replicas-1)) + `}}`
			case conformance.DriftStop:
				patch = `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/drifted:0"}]}}}}`
			default:
				t.Fatalf("drift: unknown kind %q", kind)
			}
			if _, err := deps.Patch(ctx, workload, types.StrategicMergePatchType, []byte(patch),
				metav1.PatchOptions{FieldManager: "operator"}); err != nil {
				t.Fatalf("drift %s: %v", kind, err)
			}
			// Wait until the simulated controller has acted: one pod fewer, or none of the old ones left.
			waitFor(ctx, t, "drift "+kind+" to take effect", func() bool {
				now, err := kubetest.PodsOf(ctx, c.Client, dep)
				if err != nil {
					return false
				}
				if kind == conformance.DriftRemove {
					return len(now) == len(before)-1
				}
				for _, p := range now {
					for _, b := range before {
						if p.UID == b.UID {
							return false
						}
					}
				}
				return len(now) > 0
			})
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			name := workload + "-copy"
			lookAlike(ctx, t, c.Client, ns, name)
			return func() bool {
				_, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
				return !apierrors.IsNotFound(err)
			}
		},
		Tamper:    tamperHooks(c.Client, ns),
		Unmanaged: unmanaged(c.Client, ns),
		Foreign:   foreignEnv(c.Client, ns),
		Faults:    faults.Fail,
		Secrets:   &conformance.SecretsCase{Leaks: leaks(c.Client, ns)},
		// The simulated kubelet finds a readiness probe on kubetest.UnreadyPath failing: the new pod runs, never
		// Ready, and the old one stays (maxUnavailable 0).
		Unhealthy: func(w schema.Workload) schema.Workload {
			h := *w.Health
			check := *h.HTTP
			check.Path = kubetest.UnreadyPath
			h.HTTP = &check
			w.Health = &h
			return w
		},
		HoldFor: 3 * time.Second,
		Timeout: 60 * time.Second,
	})
}

// TestConformanceExistingSecret runs the suite's secret case alone with GREETING from an existing Secret
// (kind kubernetes) that the test writes, as an operator or an external-secrets controller would: berth
// references it by name, never writes it, and sees a rotation (a new resourceVersion) and rolls the pods.
func TestConformanceExistingSecret(t *testing.T) {
	c := cluster(t)
	owner := providers.Owner{Instance: "es" + randomID(t), Environment: "exist"}
	const tgt = "kube-exist"
	ns := "berth-" + owner.Environment
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			if !strings.HasSuffix(t.Name(), "/secret") {
				t.Skip("the other cases run in TestConformance")
			}
			return newProvider(t, c.Client, schema.Target{Name: tgt, Type: kubernetes.Type})
		},
		Target:   tgt,
		Owner:    owner,
		Image:    "registry.example/berth-app:1",
		Workload: func(n string) schema.Workload { w := referenceWorkload(n); w.Replicas = 1; return w },
		Secrets: &conformance.SecretsCase{
			Source: func(ctx context.Context, t *testing.T, name, value string) (schema.Secret, []byte) {
				writeSecret(ctx, t, c.Client, ns, "app-config", map[string]string{name: value})
				return schema.Secret{Kubernetes: &schema.KubernetesSecret{Name: "app-config", Key: name}}, nil
			},
			Leaks: leaks(c.Client, ns),
		},
		Timeout: 60 * time.Second,
	})
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// writeSecret creates or updates (as kubectl apply would, with its own field manager) the Secret ns/name
// holding data, creating the namespace if need be; the Secret is deleted at t's cleanup.
func writeSecret(ctx context.Context, t *testing.T, cs k8s.Interface, ns, name string, data map[string]string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	ac := coreac.Secret(name, ns).WithType(corev1.SecretTypeOpaque).WithStringData(data)
	if _, err := cs.CoreV1().Secrets(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "kubectl-client-side-apply", Force: true}); err != nil {
		t.Fatalf("writing Secret %s/%s: %v", ns, name, err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Secrets(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// leaks searches the workload's Deployment, pods and Services (whole: metadata, annotations, labels, the pod
// spec) and the metadata of every Secret of the namespace for value, plain or base64-encoded: the data of a
// Secret is where the value belongs and is not searched.
func leaks(cs k8s.Interface, ns string) func(context.Context, *testing.T, string, string) string {
	return func(ctx context.Context, t *testing.T, workload, value string) string {
		forms := []string{value, base64.StdEncoding.EncodeToString([]byte(value)), base64.RawStdEncoding.EncodeToString([]byte(value))}
		found := func(what string, obj any) string {
			b, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range forms {
				if strings.Contains(string(b), f) {
					return what
				}
			}
			return ""
		}
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, workload, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("leaks: %v", err)
		}
		if w := found("Deployment "+workload, dep); w != "" {
			return w
		}
		pods, err := kubetest.PodsOf(ctx, cs, dep)
		if err != nil {
			t.Fatal(err)
		}
		for _, pod := range pods {
			if w := found("Pod "+pod.Name, pod); w != "" {
				return w
			}
		}
		svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range svcs.Items {
			if w := found("Service "+svc.Name, svc); w != "" {
				return w
			}
		}
		secrets, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets.Items {
			sec.Data, sec.StringData = nil, nil
			sec.ManagedFields = nil // they name the data keys, which are no values
			if w := found("the metadata of Secret "+sec.Name, sec.ObjectMeta); w != "" {
				return w
			}
		}
		return ""
	}
}

// TestConformanceTakeOwnership runs the suite's foreign and secret cases alone on a target with takeOwnership:
// the env entry another manager added shows in the plan as a change, and the apply removes it; an env entry from
// a secret is berth's own, neither removed nor shown.
func TestConformanceTakeOwnership(t *testing.T) {
	c := cluster(t)
	owner := providers.Owner{Instance: "to" + randomID(t), Environment: "take"}
	const tgt = "kube-take"
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider {
			if !strings.HasSuffix(t.Name(), "/foreign") && !strings.HasSuffix(t.Name(), "/secret") {
				t.Skip("the other cases run in TestConformance")
			}
			return newProvider(t, c.Client, schema.Target{Name: tgt, Type: kubernetes.Type,
				Settings: map[string]any{"takeOwnership": true}})
		},
		Target:   tgt,
		Owner:    owner,
		Image:    "registry.example/berth-app:1",
		Workload: func(n string) schema.Workload { w := referenceWorkload(n); w.Replicas = 1; return w },
		Foreign:  foreignEnv(c.Client, "berth-"+owner.Environment),
		Secrets:  &conformance.SecretsCase{Leaks: leaks(c.Client, "berth-"+owner.Environment)},
		Timeout:  60 * time.Second,
	})
}

// patchDeployment patches workload's Deployment as kubectl does, with another field manager.
func patchDeployment(ctx context.Context, t *testing.T, cs k8s.Interface, ns, workload, manager, patch string, sub ...string) {
	t.Helper()
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, workload, types.StrategicMergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: manager}, sub...); err != nil {
		t.Fatalf("%s patch of %s: %v", manager, workload, err)
	}
}

// editDeployment changes workload's Deployment as kubectl edit does: read, change, update (field manager
// "kubectl-edit"), again on a conflict.
func editDeployment(ctx context.Context, t *testing.T, cs k8s.Interface, ns, workload string, edit func(*appsv1.Deployment)) {
	t.Helper()
	waitFor(ctx, t, "kubectl edit of "+workload, func() bool {
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, workload, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edit(dep)
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, dep, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		if err != nil && !apierrors.IsConflict(err) {
			t.Fatalf("kubectl-edit of %s: %v", workload, err)
		}
		return err == nil
	})
}

// tamperHooks edit each field berth manages as a person with kubectl would, and delete each Service.
func tamperHooks(cs k8s.Interface, ns string) map[string]func(context.Context, *testing.T, string) {
	container := func(fields string) string {
		return `{"spec":{"template":{"spec":{"containers":[{"name":"app",` + fields + `}]}}}}`
	}
	set := func(manager, fields string) func(context.Context, *testing.T, string) {
		return func(ctx context.Context, t *testing.T, workload string) {
			patchDeployment(ctx, t, cs, ns, workload, manager, container(fields))
		}
	}
	deleteService := func(suffix string) func(context.Context, *testing.T, string) {
		return func(ctx context.Context, t *testing.T, workload string) {
			if err := cs.CoreV1().Services(ns).Delete(ctx, workload+suffix, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("kubectl delete svc %s: %v", workload+suffix, err)
			}
		}
	}
	return map[string]func(context.Context, *testing.T, string){
		conformance.TamperImage:     set("kubectl-set", `"image":"registry.example/by-hand:0"`),
		conformance.TamperCommand:   set("kubectl-patch", `"command":["/bin/sh","-c","exec /app serve"]`),
		conformance.TamperArgs:      set("kubectl-patch", `"args":["debug"]`),
		conformance.TamperEnv:       set("kubectl-set", `"env":[{"name":"GREETING","value":"by hand"}]`),
		conformance.TamperResources: set("kubectl-set", `"resources":{"limits":{"memory":"1Gi"}}`),
		conformance.TamperReplicas: func(ctx context.Context, t *testing.T, workload string) {
			patchDeployment(ctx, t, cs, ns, workload, "kubectl-scale", `{"spec":{"replicas":3}}`, "scale")
		},
		conformance.TamperHealth: func(ctx context.Context, t *testing.T, workload string) {
			editDeployment(ctx, t, cs, ns, workload, func(d *appsv1.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
					pr.PeriodSeconds, pr.HTTPGet.Path = 7, "/edited"
				}
			})
		},
		// The public Service forwards to another port: port 8080 is no longer published.
		conformance.TamperPorts: func(ctx context.Context, t *testing.T, workload string) {
			svcs := cs.CoreV1().Services(ns)
			waitFor(ctx, t, "kubectl edit of "+workload+"-public", func() bool {
				svc, err := svcs.Get(ctx, workload+kubernetes.PublicSuffix, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				svc.Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
				_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
				if err != nil && !apierrors.IsConflict(err) {
					t.Fatal(err)
				}
				return err == nil
			})
		},
		conformance.TamperObject + "service":        deleteService(""),
		conformance.TamperObject + "public service": deleteService(kubernetes.PublicSuffix),
	}
}

// unmanaged annotates the Deployment and sets its pods' grace period, neither of which berth sets.
func unmanaged(cs k8s.Interface, ns string) func(context.Context, *testing.T, string) func(context.Context) (bool, error) {
	return func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
		patchDeployment(ctx, t, cs, ns, workload, "kubectl-annotate", `{"metadata":{"annotations":{"example.com/team":"a"}}}`)
		patchDeployment(ctx, t, cs, ns, workload, "kubectl-patch", `{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":45}}}}`)
		return func(ctx context.Context) (bool, error) {
			dep, err := cs.AppsV1().Deployments(ns).Get(ctx, workload, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			g := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
			return dep.Annotations["example.com/team"] == "a" && g != nil && *g == 45, nil
		}
	}
}

// foreignEnv adds an env entry as kubectl set env does (field manager "kubectl-set").
func foreignEnv(cs k8s.Interface, ns string) func(context.Context, *testing.T, string) string {
	return func(ctx context.Context, t *testing.T, workload string) string {
		patchDeployment(ctx, t, cs, ns, workload, "kubectl-set",
			`{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"EXTRA","value":"1"}]}]}}}}`)
		return "env.EXTRA"
	}
}

// lookAlike creates an unlabelled Deployment named name (deleted at cleanup).
func lookAlike(ctx context.Context, t *testing.T, cs k8s.Interface, ns, name string) {
	t.Helper()
	one := int32(1)
	sel := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/other:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("look-alike: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().Deployments(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// newProvider builds the provider on cs with fast polling and retries.
func newProvider(t *testing.T, cs k8s.Interface, tgt schema.Target) *kubernetes.Provider {
	t.Helper()
	p, err := kubernetes.NewWithClient(cs, tgt, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval = 20 * time.Millisecond
	p.RetryBase = 5 * time.Millisecond
	p.RetryMax = 100 * time.Millisecond
	return p
}

// waitFor polls cond until it holds or ctx ends (failing t).
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
