package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	networkingac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// AnnotationIngress names, on a preview's Deployment, the Ingress berth applies beside it: one that is gone is
// reported as Observed.Missing ("Ingress web").
const AnnotationIngress = "berth.dev/ingress"

// route is one host name a public port is served at.
type route struct {
	host string
	port int
}

// routes are the host names of a preview's public TCP ports (Desired.Preview.Hosts, key "workload/port"), in
// port order; a port without a host is not routed, nor is a workload of no preview (Owner.Preview 0). A host that
// is no DNS subdomain is an error (the Ingress would be refused).
func routes(d providers.Desired) ([]route, error) {
	if d.Owner.Preview == 0 || d.Preview == nil || len(d.Preview.Hosts) == 0 {
		return nil, nil
	}
	var out []route
	for _, pt := range d.Workload.Ports {
		if !pt.Public || strings.EqualFold(pt.Protocol, "udp") {
			continue
		}
		host, ok := d.Preview.Hosts[schema.HostKey(d.Workload.Name, pt.Port)]
		if !ok || slices.ContainsFunc(out, func(r route) bool { return r.port == pt.Port }) {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(host); len(errs) > 0 {
			return nil, fmt.Errorf("preview host %q of port %d: %s", host, pt.Port, strings.Join(errs, "; "))
		}
		out = append(out, route{host: host, port: pt.Port})
	}
	return out, nil
}

// ingress builds the apply configuration of d's Ingress (networking.k8s.io/v1): one rule per routed host, path
// "/" (Prefix) to the workload's ClusterIP Service at the container port; the target's ingressClass as its
// ingressClassName. Nil when no port is routed.
func ingress(d providers.Desired, ns, name, class string) (*networkingac.IngressApplyConfiguration, error) {
	rs, err := routes(d)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	spec := networkingac.IngressSpec()
	if class != "" {
		spec.WithIngressClassName(class)
	}
	for _, r := range rs {
		spec.WithRules(networkingac.IngressRule().WithHost(r.host).WithHTTP(networkingac.HTTPIngressRuleValue().WithPaths(
			networkingac.HTTPIngressPath().WithPath("/").WithPathType(networkingv1.PathTypePrefix).WithBackend(
				networkingac.IngressBackend().WithService(networkingac.IngressServiceBackend().WithName(name).WithPort(
					networkingac.ServiceBackendPort().WithNumber(int32(r.port)))))))) // #nosec G115: ports are 1-65535
	}
	return networkingac.Ingress(name, ns).WithLabels(ownerLabels(d)).WithSpec(spec), nil
}

// ingressState is a workload's Ingress: the apply configuration berth wants (nil for none) and the live object
// (nil when absent).
type ingressState struct {
	name string
	want *networkingac.IngressApplyConfiguration
	cur  *networkingv1.Ingress
}

func (p *Provider) getIngress(ctx context.Context, ns, name string) (*networkingv1.Ingress, error) {
	ing, err := call(ctx, p, "get ingress "+ns+"/"+name, func(ctx context.Context) (*networkingv1.Ingress, error) {
		return p.client.NetworkingV1().Ingresses(ns).Get(ctx, name, metav1.GetOptions{})
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return ing, err
}

// convergeIngress applies s.want when it is missing or berth's fields differ (a rule edited or removed by hand),
// and deletes an owned Ingress that is not wanted.
func (p *Provider) convergeIngress(ctx context.Context, ns string, s *ingressState, log *slog.Logger) error {
	switch {
	case s.want != nil:
		if s.cur != nil {
			if got, err := networkingac.ExtractIngress(s.cur, FieldManager); err == nil && jsonEqual(got, s.want) {
				return nil
			}
			log.Info("ingress differs from the desired routes; applying", "ingress", ns+"/"+s.name)
		}
		_, err := call(ctx, p, "apply ingress "+ns+"/"+s.name, func(ctx context.Context) (*networkingv1.Ingress, error) {
			return p.client.NetworkingV1().Ingresses(ns).Apply(ctx, s.want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		})
		return err
	case s.cur != nil:
		return p.deleteObject(ctx, "ingress", ns, s.name, s.cur.UID, func(ctx context.Context, o metav1.DeleteOptions) error {
			return p.client.NetworkingV1().Ingresses(ns).Delete(ctx, s.name, o)
		})
	}
	return nil
}

// endpoints reads where the public ports of a workload (read back as ports) answer: Address from the
// LoadBalancer Service's status (its first ingress IP or hostname, a wildcard read as 127.0.0.1, at the
// Service's port), URL http://<host>/ from the first Ingress rule routing the port to the workload's ClusterIP
// Service (svc). A port with neither is left out: the load balancer has no address yet and no rule routes it.
func endpoints(ports []schema.Port, public *corev1.Service, ing *networkingv1.Ingress, svc string) []providers.Endpoint {
	lb := ""
	if public != nil && public.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range public.Status.LoadBalancer.Ingress {
			if lb = in.IP; lb == "" {
				lb = in.Hostname
			}
			if ip := net.ParseIP(lb); ip != nil && ip.IsUnspecified() {
				lb = "127.0.0.1"
			}
			if lb != "" {
				break
			}
		}
	}
	var out []providers.Endpoint
	for _, pt := range ports {
		if !pt.Public || slices.ContainsFunc(out, func(e providers.Endpoint) bool { return e.Port == pt.Port }) {
			continue
		}
		e := providers.Endpoint{Port: pt.Port}
		if lb != "" && pt.HostPort > 0 {
			e.Address = net.JoinHostPort(lb, strconv.Itoa(pt.HostPort))
		}
		if host := routedHost(ing, svc, pt); host != "" {
			e.URL = "http://" + host + "/"
		}
		if e.Address != "" || e.URL != "" {
			out = append(out, e)
		}
	}
	return out
}

// routedHost is the host of the first rule of ing whose "/" path goes to Service svc at pt's port (by number or
// by its name), "" for none.
func routedHost(ing *networkingv1.Ingress, svc string, pt schema.Port) string {
	if ing == nil {
		return ""
	}
	name := pt.Name
	if name == "" {
		name = defaultPortName(pt.Protocol, pt.Port)
	}
	for _, r := range ing.Spec.Rules {
		if r.Host == "" || r.HTTP == nil {
			continue
		}
		for _, path := range r.HTTP.Paths {
			b := path.Backend.Service
			if b == nil || b.Name != svc || (path.Path != "/" && path.Path != "") {
				continue
			}
			if int(b.Port.Number) == pt.Port || (b.Port.Number == 0 && b.Port.Name == name) {
				return r.Host
			}
		}
	}
	return ""
}
