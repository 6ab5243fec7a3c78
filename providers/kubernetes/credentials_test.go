package kubernetes

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berth-dev/berth/providers"
	bschema "github.com/berth-dev/berth/schema"
)

// Credentials the API server refuses (401) and a missing RBAC permission (403) fail a List once, permanent, with
// the server's words and what to fix in the kubeconfig or the RBAC rules.
func TestRefusedExplained(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), []string{`kubernetes target "k8s": the API server refused the credentials`,
			"Unauthorized", `context "ci" of /etc/berth/kubeconfig`, "kubectl --kubeconfig /etc/berth/kubeconfig --context ci get namespaces"}},
		{"forbidden", apierrors.NewForbidden(gr, "", errors.New(`User "ci" cannot list resource "deployments" in API group "apps" in the namespace "berth-dev"`)),
			[]string{"permission denied", `deployments.apps is forbidden: User "ci" cannot list resource "deployments"`,
				"Role in namespace berth-<environment>", "auth can-i --list -n berth-<environment>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := fake.NewClientset()
			var calls atomic.Int32
			client.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
				calls.Add(1)
				return true, nil, c.err
			})
			p, err := NewWithClient(client, bschema.Target{Name: "k8s", Type: "kubernetes", Settings: map[string]any{
				"type": "kubernetes", "kubeconfig": "/etc/berth/kubeconfig", "context": "ci"}}, providers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.List(context.Background(), providers.Owner{Instance: "berth", Environment: "dev"}, "k8s")
			if !errors.Is(err, providers.ErrPermanent) {
				t.Fatalf("List = %v, want permanent", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if !apierrors.IsUnauthorized(err) && !apierrors.IsForbidden(err) {
				t.Errorf("the API status is lost: %v", err)
			}
		})
	}
}
