package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// kubeDriftInterval is the controller's interval in the Kubernetes drift test (startController's --interval).
const kubeDriftInterval = 2 * time.Second

// A running `berth serve` repairs what a person changes with kubectl on a real kube-apiserver: an env var and the
// image edited by other field managers, and each Service deleted, each on its next pass. No controllers run in
// the apiserver, so kubetest's simulated deployment controller rolls the pods.
func TestKubernetesDriftEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against a kube-apiserver")
	}
	cluster := kubetest.Start(t) // skips without the binaries, unless BERTH_REQUIRE_KUBE is set
	kctx, kcancel := context.WithCancel(context.Background())
	stopped := kubetest.RunDeploymentController(kctx, cluster.Client)
	t.Cleanup(func() { kcancel(); <-stopped })

	instance := fmt.Sprintf("kd%d", time.Now().UnixNano()%1_000_000_000)
	owner := providers.Owner{Instance: instance, Environment: "production"}
	const ns, name, image = "berth-production", "web", "registry.example/berth-app:1"
	repo := newGitRepo(t)
	repo.write(map[string]string{"berth.cue": fmt.Sprintf(`targets: k8s: {type: "kubernetes", kubeconfig: %q, context: "kubetest"}
environments: production: {branch: "main"}
workloads: web: {
	image:    %q
	args: ["serve"]
	provider: "k8s"
	replicas: 2
	env: GREETING: "declared"
	ports: [{name: "http", port: 8080, public: true}]
	health: {http: {path: "/healthz", port: 8080}, interval: "2s", timeout: "1s", retries: 3}
}
`, cluster.Kubeconfig, image)})
	rev := repo.commit("web on kubernetes")
	t.Cleanup(func() {
		// After the controller stopped (cleanups run last-in first-out): remove what it made.
		p, err := kubernetes.NewWithClient(cluster.Client, schema.Target{Name: "k8s", Type: kubernetes.Type}, providers.Options{})
		if err != nil {
			t.Error(err)
			return
		}
		p.PollInterval = 50 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Delete(ctx, owner, "k8s", name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctrl := startController(t, instance, repo.url(), t.TempDir())
	waitApplied(t, ctrl, rev)

	ctx := context.Background()
	deps, svcs := cluster.Client.AppsV1().Deployments(ns), cluster.Client.CoreV1().Services(ns)
	getDep := func() (*appsv1.Deployment, string) {
		dep, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err.Error()
		}
		return dep, ""
	}
	waitFor(t, settle, "two ready replicas", func() (bool, string) {
		dep, why := getDep()
		return dep != nil && dep.Status.ReadyReplicas == 2, why
	})

	container := func(fields string) []byte {
		return []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app",` + fields + `}]}}}}`)
	}
	env := func(dep *appsv1.Deployment, k string) string {
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			if e.Name == k {
				return e.Value
			}
		}
		return ""
	}
	for _, c := range []struct {
		name     string
		path     string // the plan change the controller must have applied
		tamper   func() error
		repaired func() (bool, string)
	}{
		{
			name: "kubectl set env", path: "env.GREETING",
			tamper: func() error {
				_, err := deps.Patch(ctx, name, types.StrategicMergePatchType, container(`"env":[{"name":"GREETING","value":"by hand"}]`),
					metav1.PatchOptions{FieldManager: "kubectl-set"})
				return err
			},
			repaired: func() (bool, string) {
				dep, why := getDep()
				if dep == nil {
					return false, why
				}
				return env(dep, "GREETING") == "declared", "GREETING=" + env(dep, "GREETING")
			},
		},
		{
			name: "kubectl set image", path: "image",
			tamper: func() error {
				_, err := deps.Patch(ctx, name, types.StrategicMergePatchType, container(`"image":"registry.example/by-hand:0"`),
					metav1.PatchOptions{FieldManager: "kubectl-set"})
				return err
			},
			repaired: func() (bool, string) {
				dep, why := getDep()
				if dep == nil {
					return false, why
				}
				img := dep.Spec.Template.Spec.Containers[0].Image
				return img == image, "image " + img
			},
		},
		{name: "kubectl delete svc", path: "object Service " + name},
		{name: "kubectl delete svc -public", path: "object Service " + name + kubernetes.PublicSuffix},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.tamper == nil { // a Service deletion
				svc := strings.TrimPrefix(c.path, "object Service ")
				c.tamper = func() error { return svcs.Delete(ctx, svc, metav1.DeleteOptions{}) }
				c.repaired = func() (bool, string) {
					_, err := svcs.Get(ctx, svc, metav1.GetOptions{})
					if apierrors.IsNotFound(err) {
						return false, "Service " + svc + " not found"
					}
					return err == nil, fmt.Sprint(err)
				}
			}
			waitApplied(t, ctrl, rev) // no pass is still busy with the previous repair
			if ok, why := c.repaired(); !ok {
				t.Fatalf("not as declared before the edit: %s", why)
			}
			if err := c.tamper(); err != nil {
				t.Fatal(err)
			}
			edited := time.Now()
			// The next pass repairs it: allow a few intervals for a loaded machine, never a fixed sleep.
			waitFor(t, 5*kubeDriftInterval, "the controller to repair "+c.name, c.repaired)
			t.Logf("%s repaired after %s (interval %s)", c.name, time.Since(edited).Round(100*time.Millisecond), kubeDriftInterval)
			waitFor(t, 5*kubeDriftInterval, "the repair of "+c.name+" in the controller's last apply", func() (bool, string) {
				st, err := ctrl.status()
				if err != nil {
					return false, err.Error()
				}
				steps := lastApplySteps(st, "production")
				return hasChange(steps, c.path), strings.Join(stepKeys(steps), "; ")
			})
			waitFor(t, settle, "two ready replicas after the repair", func() (bool, string) {
				dep, why := getDep()
				if dep == nil {
					return false, why
				}
				done, why, err := kubernetes.RolloutState(dep)
				return done && err == nil, why
			})
		})
	}
	if steps := planCLI(t, instance, repo.dir); len(steps) != 0 {
		t.Fatalf("after the repairs, berth plan is not empty: %v", stepKeys(steps))
	}
}

// hasChange tells whether a drift step of steps changed path.
func hasChange(steps []reconciler.Step, path string) bool {
	for _, s := range steps {
		if !strings.HasPrefix(s.Reason, "drift") {
			continue
		}
		for _, c := range s.Changes {
			if c.Path == path {
				return true
			}
		}
	}
	return false
}
