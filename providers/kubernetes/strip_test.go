package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	bschema "github.com/berth-dev/berth/schema"
)

// TestStripGuarded removes a command set by hand from a Deployment copy that is out of date: the guarded patch
// is refused (the resourceVersion moved), strip reads the Deployment again and removes it from the current one,
// keeping the change made meanwhile.
func TestStripGuarded(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns := "strip-" + hex.EncodeToString(b[:])
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{kubetest.LabelManual: "true"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewWithClient(c.Client, bschema.Target{Name: "k", Type: Type}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := refWorkload()
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "k", Workload: w, SpecHash: providers.SpecHash(w)}
	ac, err := deployment(d, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	deps := c.Client.AppsV1().Deployments(ns)
	if _, err := deps.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		t.Fatal(err)
	}
	patch := func(body string) {
		t.Helper()
		if _, err := deps.Patch(ctx, "web", types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
			t.Fatal(err)
		}
	}
	patch(`{"spec":{"template":{"spec":{"containers":[{"name":"app","command":["/bin/sh"]}]}}}}`)
	stale, err := deps.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patch(`{"metadata":{"annotations":{"example.com/meanwhile":"yes"}}}`)

	body, err := guarded(stale.ResourceVersion, p.stripDeployment(stale, w))
	if err != nil {
		t.Fatal(err)
	}
	_, err = deps.Patch(ctx, "web", types.JSONPatchType, body, metav1.PatchOptions{FieldManager: FieldManager})
	if err == nil {
		t.Fatal("a patch guarded by an old resourceVersion was accepted")
	}
	t.Logf("the guard refuses: %v", err)

	got, err := p.strip(ctx, ns, "web", stale, w, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cmd := got.Spec.Template.Spec.Containers[0].Command; len(cmd) != 0 || got.Annotations["example.com/meanwhile"] != "yes" {
		t.Fatalf("after strip: command %v, annotations %v", cmd, got.Annotations)
	}
	if ops := p.stripDeployment(got, w); len(ops) != 0 {
		t.Fatalf("left to strip: %+v", ops)
	}
}
