package kubernetes

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/berth-dev/berth/schema/redact"
)

// explain says how to fix credentials the API server refuses (401) or a missing RBAC permission (403), quoting
// the server's words (bounded, redacted); other errors come back as they are. The result keeps err's identity.
func (p *Provider) explain(err error) error {
	var what, fix string
	switch {
	case apierrors.IsUnauthorized(err):
		what = "the API server refused the credentials"
		fix = "the service account token of berth's pod is not accepted (in-cluster configuration: no settings.kubeconfig or context)"
		if p.set.kubeconfig != "" || p.set.context != "" {
			fix = fmt.Sprintf("the user of %s has no valid credentials (an expired token or client certificate, "+
				"or a kubeconfig of another cluster): refresh them, check with `kubectl%s get namespaces`, or point "+
				"settings.kubeconfig and settings.context at a user that works", p.kubeconfigName(), p.kubectlFlags())
		}
	case apierrors.IsForbidden(err):
		what = "permission denied"
		ns := p.set.namespace
		if ns == "" {
			ns = "berth-<environment>" // berth creates them: that takes namespaces create, cluster-wide
		}
		fix = fmt.Sprintf("bind the user berth runs as to a Role in namespace %s allowing get, list, watch, create, "+
			"update, patch and delete on deployments (apps), services, pods and secrets (a ClusterRole with namespaces get "+
			"and create too when settings.namespace is not set); `kubectl%s auth can-i --list -n %s` shows what it "+
			"may do", ns, p.kubectlFlags(), ns)
	default:
		return err
	}
	return &explained{err: err, msg: fmt.Sprintf("kubernetes target %q: %s: %s. To fix: %s", p.target, what,
		strings.TrimRight(redact.Body([]byte(err.Error()), 400), "."), fix)}
}

func (p *Provider) kubeconfigName() string {
	s := "the current context"
	if p.set.context != "" {
		s = fmt.Sprintf("context %q", p.set.context)
	}
	if p.set.kubeconfig != "" {
		return s + " of " + p.set.kubeconfig
	}
	return s + " of the default kubeconfig (KUBECONFIG or ~/.kube/config)"
}

func (p *Provider) kubectlFlags() string {
	var f []string
	if p.set.kubeconfig != "" {
		f = append(f, " --kubeconfig "+p.set.kubeconfig)
	}
	if p.set.context != "" {
		f = append(f, " --context "+p.set.context)
	}
	return strings.Join(f, "")
}

// explained is an error with a message for people; it unwraps to the error it explains.
type explained struct {
	err error
	msg string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }
