package kubetest_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// TestController checks the simulated controller: pods up to the replica count, a completed status, a new
// template replacing every pod, and the pods of a deleted Deployment collected.
func TestController(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cctx, stop := context.WithCancel(ctx)
	stopped := kubetest.RunDeploymentController(cctx, c.Client)
	defer func() { stop(); <-stopped }()

	ns := "ctl-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	two := int32(2)
	sel := map[string]string{"app": "x"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "img:1"}}}}}}
	dep, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var first []corev1.Pod
	wait(ctx, t, "2 ready pods and a complete status", func() bool {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "x", metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration != d.Generation || d.Status.AvailableReplicas != 2 {
			return false
		}
		first, err = kubetest.PodsOf(ctx, c.Client, d)
		return err == nil && len(first) == 2 && first[0].Status.Phase == corev1.PodRunning
	})

	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"img:2"}]}}}}`)
	if _, err := c.Client.AppsV1().Deployments(ns).Patch(ctx, "x", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(ctx, t, "every pod replaced", func() bool {
		pods, err := kubetest.PodsOf(ctx, c.Client, dep)
		if err != nil || len(pods) != 2 {
			return false
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != "img:2" {
				return false
			}
		}
		return true
	})

	if err := c.Client.AppsV1().Deployments(ns).Delete(ctx, "x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(ctx, t, "the pods collected", func() bool {
		pods, err := kubetest.PodsOf(ctx, c.Client, dep)
		return err == nil && len(pods) == 0
	})
}

func wait(ctx context.Context, t *testing.T, what string, cond func() bool) {
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
