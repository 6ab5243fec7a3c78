package kubernetes_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes"
	"github.com/berth-dev/berth/schema"
)

// TestForeignValues adds, as other field managers, a container port, a sidecar container and a public Service
// port to a workload, and a CPU limit it does not declare. Without takeOwnership, List keeps the three foreign
// values out of the spec and names them (Kept), and Apply leaves them; the CPU limit is drift. With
// takeOwnership, the foreign port entries read back too, and Apply removes them; the sidecar stays, said so.
func TestForeignValues(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "fv" + randomID(t), Environment: "foreign"}
	ns := "berth-" + owner.Environment
	p := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type})
	take := newProvider(t, c.Client, schema.Target{Name: "k", Type: kubernetes.Type, Settings: map[string]any{"takeOwnership": true}})
	w := referenceWorkload("fv")
	w.Replicas, w.Resources = 1, schema.Resources{}
	d := providers.Desired{Owner: owner, Target: "k", Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete(context.Background(), owner, "k", w.Name) })

	patch := func(kind, name, body string) {
		t.Helper()
		var err error
		opts := metav1.PatchOptions{FieldManager: "kubectl-patch"}
		if kind == "service" {
			_, err = c.Client.CoreV1().Services(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(body), opts)
		} else {
			_, err = c.Client.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(body), opts)
		}
		if err != nil {
			t.Fatalf("patch %s %s: %v", kind, name, err)
		}
	}
	patch("deployment", "fv", `{"spec":{"template":{"spec":{"containers":[
		{"name":"app","ports":[{"containerPort":9999,"protocol":"TCP"}]},
		{"name":"sidecar","image":"registry.example/sidecar:1"}]}}}}`)
	patch("service", "fv-public", `{"spec":{"ports":[{"name":"extra","port":9090,"targetPort":8080,"protocol":"TCP"}]}}`)

	want := providers.Normalize(p.Normalize(providers.Normalize(w)))
	observe := func(p *kubernetes.Provider) providers.Observed {
		t.Helper()
		obs, err := p.List(ctx, owner, "k")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List = %+v, %v", obs, err)
		}
		return obs[0]
	}
	same := func(o providers.Observed) bool {
		got := providers.Normalize(o.Spec)
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		return string(a) == string(b)
	}
	paths := func(o providers.Observed) []string {
		var ps []string
		for _, k := range o.Kept {
			ps = append(ps, k.Path)
		}
		slices.Sort(ps)
		return ps
	}
	allKept := []string{"containers.sidecar", "ports[9090/tcp on Service fv-public]", "ports[9999/tcp]"}

	o := observe(p)
	if !same(o) || !slices.Equal(paths(o), allKept) {
		t.Fatalf("without takeOwnership: spec %+v (same %t), kept %v, want kept %v", o.Spec, same(o), paths(o), allKept)
	}
	t.Logf("kept: %+v", o.Kept)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if o := observe(p); !slices.Equal(paths(o), allKept) {
		t.Fatalf("Apply without takeOwnership removed a kept value: kept %v", paths(o))
	}

	// A CPU limit the workload does not declare is drift, removed by Apply whatever the setting.
	patch("deployment", "fv", `{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"1"}}}]}}}}`)
	if o := observe(p); o.Spec.Resources.CPUMillis != 1000 {
		t.Fatalf("a CPU limit set by hand reads back as %d millis", o.Spec.Resources.CPUMillis)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if o := observe(p); !same(o) {
		t.Fatalf("after Apply, the CPU limit set by hand is still read: %+v", o.Spec.Resources)
	}

	o = observe(take)
	if same(o) || !slices.Equal(paths(o), []string{"containers.sidecar"}) {
		t.Fatalf("with takeOwnership: spec %+v (same %t), kept %v", o.Spec, same(o), paths(o))
	}
	if err := take.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if o := observe(take); !same(o) || !slices.Equal(paths(o), []string{"containers.sidecar"}) {
		t.Fatalf("after Apply with takeOwnership: spec %+v (same %t), kept %v", o.Spec, same(o), paths(o))
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "fv", metav1.GetOptions{})
	if err != nil || len(dep.Spec.Template.Spec.Containers) != 2 || len(dep.Spec.Template.Spec.Containers[0].Ports) != 1 {
		t.Fatalf("after Apply with takeOwnership: containers %+v, %v", dep.Spec.Template.Spec.Containers, err)
	}
	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, "fv-public", metav1.GetOptions{})
	if err != nil || len(svc.Spec.Ports) != 1 {
		t.Fatalf("after Apply with takeOwnership: public ports %+v, %v", svc.Spec.Ports, err)
	}
}
