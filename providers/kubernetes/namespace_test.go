package kubernetes

import (
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/berth-dev/berth/providers"
)

// TestNamespaceRefused tells the API server's refusals of a write into a namespace being deleted or gone from
// other errors.
func TestNamespaceRefused(t *testing.T) {
	terminating := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
		errors.New("unable to create new content in namespace berth-dev because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: "namespace berth-dev is being terminated"}}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"terminating", terminating, true},
		{"terminating, wrapped", fmt.Errorf("apply deployment: %w", terminating), true},
		{"namespace not found", apierrors.NewNotFound(corev1.Resource("namespaces"), "berth-dev"), true},
		{"deployment not found", apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web"), false},
		{"forbidden", apierrors.NewForbidden(corev1.Resource("services"), "web", errors.New("RBAC")), false},
		{"other", errors.New("connection refused"), false},
	} {
		if got := namespaceRefused(c.err); got != c.want {
			t.Errorf("%s: namespaceRefused = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestNamespaceOwned: an environment's namespace and a preview's are told apart, and another instance's or
// environment's labels are not owner's.
func TestNamespaceOwned(t *testing.T) {
	env := providers.Owner{Instance: "i1", Environment: "prod"}
	pr := providers.Owner{Instance: "i1", Environment: "pr-7", Preview: 7}
	for _, c := range []struct {
		labels map[string]string
		owner  providers.Owner
		want   bool
	}{
		{namespaceLabels(env), env, true},
		{namespaceLabels(pr), pr, true},
		{namespaceLabels(pr), providers.Owner{Instance: "i1", Environment: "pr-7"}, false},
		{namespaceLabels(env), providers.Owner{Instance: "i2", Environment: "prod"}, false},
		{namespaceLabels(env), providers.Owner{Instance: "i1", Environment: "dev"}, false},
		{map[string]string{LabelManagedBy: "berth", providers.LabelEnvironment: "prod"}, env, false}, // an older berth's
		{nil, env, false},
	} {
		if got := namespaceOwned(c.labels, c.owner); got != c.want {
			t.Errorf("namespaceOwned(%v, %+v) = %v, want %v", c.labels, c.owner, got, c.want)
		}
	}
}
