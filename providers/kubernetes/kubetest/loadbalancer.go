package kubetest

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// RunLoadBalancers plays a cloud's service controller (a load balancer implementation) in namespace ns: every
// Service of type LoadBalancer there whose status has no address gets status.loadBalancer.ingress [{IP: ip}], on
// each Service event and every second, until ctx ends. Only the namespaces a test names get addresses, so that
// elsewhere a Service stays pending as it does in a cluster without one. The returned channel is closed when it
// has stopped.
func RunLoadBalancers(ctx context.Context, client kubernetes.Interface, ns, ip string) <-chan struct{} {
	stopped := make(chan struct{})
	poke := make(chan struct{}, 1)
	notify := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchLoop(ctx, notify, func(ctx context.Context) (watch.Interface, error) {
			return client.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{})
		})
	}()
	go func() {
		defer close(stopped)
		defer func() { <-watched }()
		tick := time.NewTicker(resync)
		defer tick.Stop()
		for {
			if err := AssignLoadBalancers(ctx, client, ns, ip); err != nil && ctx.Err() == nil {
				notify() // a conflict with another write: look again
			}
			select {
			case <-ctx.Done():
				return
			case <-poke:
			case <-tick.C:
			}
		}
	}()
	return stopped
}

// AssignLoadBalancers is one pass of RunLoadBalancers: every LoadBalancer Service of ns without an address gets
// the address ip. A test calls it where it needs the address at once (right after berth applied a Service).
func AssignLoadBalancers(ctx context.Context, client kubernetes.Interface, ns, ip string) error {
	svcs, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.DeletionTimestamp != nil ||
			slices.ContainsFunc(svc.Status.LoadBalancer.Ingress, func(in corev1.LoadBalancerIngress) bool { return in.IP != "" || in.Hostname != "" }) {
			continue
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if _, err := client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: "service-controller"}); err != nil {
			return err
		}
	}
	return nil
}
