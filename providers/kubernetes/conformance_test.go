package kubernetes_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite against a real kube-apiserver with the simulated deployment
// controller: drift is a Deployment scaled down out of band ("remove") or its image changed by another field
// manager ("stop"), both reverted by the next server-side apply; look-alikes are unlabelled Deployments; faults
// are 503 and 429 answers injected in the provider's transport.
func TestConformance(t *testing.T) {
	c := cluster(t)
	owner := providers.Owner{Instance: "cf" + randomID(t), Environment: "dev"}
	const tgt = "kube-test"
	ns := "berth-" + owner.Environment
	faults := &faultInjector{}
	cfg := withFaults(c.Config, faults)
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
		Faults:  faults.Fail,
		Timeout: 60 * time.Second,
	})
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
