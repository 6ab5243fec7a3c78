package kubernetes

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/providers"
	bschema "github.com/berth-dev/berth/schema"
)

func TestPreviewNamespace(t *testing.T) {
	long := strings.Repeat("n", 63)
	for _, c := range []struct {
		base string
		n    int
		want string
	}{
		{"berth", 42, "berth-pr-42"},
		{"apps", 2147483647, "apps-pr-2147483647"},
		{strings.Repeat("a", 49), 2147483647, strings.Repeat("a", 49) + "-pr-2147483647"}, // 63: fits
		{long, 1, ""},
		{long, 2147483647, ""},
	} {
		got := PreviewNamespace(c.base, c.n)
		if (c.want != "" && got != c.want) || dnsLabel(got) != "" {
			t.Errorf("PreviewNamespace(%q, %d) = %q, want %q (a DNS label)", c.base, c.n, got, c.want)
		}
		if got != PreviewNamespace(c.base, c.n) {
			t.Errorf("PreviewNamespace(%q, %d) is not deterministic", c.base, c.n)
		}
	}
	if a, b := PreviewNamespace(long, 1), PreviewNamespace(long, 2); a == b || len(a) != 63 {
		t.Errorf("long bases: %q and %q, want two different names of 63 characters", a, b)
	}
}

func TestPreviewNames(t *testing.T) {
	def := &Provider{}
	shared := &Provider{set: settings{namespace: "apps"}}
	pr := providers.Owner{Instance: "i", Environment: "pr-7", Preview: 7}
	base := providers.Owner{Instance: "i", Environment: "staging"}
	for _, c := range []struct {
		p          *Provider
		owner      providers.Owner
		ns, object string
	}{
		{def, base, "berth-staging", "web"},
		{def, pr, "berth-pr-7", "web"},
		{shared, base, "apps", "staging-web"}, // unchanged: existing deployments keep their names
		{shared, pr, "apps-pr-7", "web"},      // a namespace of its own: no prefix
	} {
		if ns, obj := c.p.namespace(c.owner), c.p.objectName(c.owner, "web"); ns != c.ns || obj != c.object {
			t.Errorf("namespace, objectName of %+v with namespace %q = %q, %q; want %q, %q",
				c.owner, c.p.set.namespace, ns, obj, c.ns, c.object)
		}
	}
}

func previewDesired() providers.Desired {
	w := refWorkload()
	w.Ports = append(w.Ports, bschema.Port{Port: 9000, Protocol: "tcp", Public: true, HostPort: 9000})
	return providers.Desired{Owner: providers.Owner{Instance: "prod-1", Environment: "pr-7", Preview: 7}, Target: "k8s",
		Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &bschema.Preview{Number: 7, Head: strings.Repeat("a", 40), Base: "dev", Hosts: map[string]string{
			bschema.HostKey("web", 8080): "pr-7-web.preview.example", // 9000 has no host: not routed
		}}}
}

func TestPreviewLabels(t *testing.T) {
	d := previewDesired()
	l := ownerLabels(d)
	if l[providers.LabelPreview] != "7" || l[providers.LabelHead] != d.Preview.Head {
		t.Errorf("ownerLabels = %v, want preview 7 and the head", l)
	}
	if err := checkLabels(l); err != nil {
		t.Error(err)
	}
	pl := podLabels(d)
	if _, ok := pl[providers.LabelHead]; ok || pl[providers.LabelPreview] != "7" {
		t.Errorf("podLabels = %v, want the preview number and no head (a new head alone rolls no pod)", pl)
	}
	if sl := secretLabels(d); sl[providers.LabelHead] != "" || sl[providers.LabelPreview] != "7" {
		t.Errorf("secretLabels = %v", sl)
	}
	d.Owner.Preview, d.Preview = 0, nil
	for _, k := range []string{providers.LabelPreview, providers.LabelHead} {
		if _, ok := ownerLabels(d)[k]; ok {
			t.Errorf("a base workload is labelled %s", k)
		}
	}
}

func TestPreviewIngress(t *testing.T) {
	d := previewDesired()
	ing, err := ingress(d, "berth-pr-7", "web", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ing)
	want := `{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"web","namespace":"berth-pr-7",` +
		`"labels":{"berth.dev/environment":"pr-7","berth.dev/head":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",` +
		`"berth.dev/instance":"prod-1","berth.dev/preview":"7","berth.dev/spec-hash":"` + d.SpecHash + `",` +
		`"berth.dev/target":"k8s","berth.dev/workload":"web"}},"spec":{"ingressClassName":"nginx","rules":[{` +
		`"host":"pr-7-web.preview.example","http":{"paths":[{"path":"/","pathType":"Prefix",` +
		`"backend":{"service":{"name":"web","port":{"number":8080}}}}]}}]}}`
	if string(b) != want {
		t.Errorf("ingress =\n%s\nwant\n%s", b, want)
	}
	dep, err := deployment(d, "berth-pr-7", "web")
	if err != nil || dep.Annotations[AnnotationIngress] != "web" {
		t.Errorf("deployment annotations %v, %v: want %s=web", dep.Annotations, err, AnnotationIngress)
	}

	none := d
	none.Preview = &bschema.Preview{Number: 7}
	if ing, err := ingress(none, "berth-pr-7", "web", ""); ing != nil || err != nil {
		t.Errorf("no hosts: ingress %v, %v; want none", ing, err)
	}
	if dep, _ := deployment(none, "berth-pr-7", "web"); dep.Annotations[AnnotationIngress] != "" {
		t.Errorf("no hosts: deployment names an Ingress")
	}
	bad := d
	bad.Preview = &bschema.Preview{Number: 7, Hosts: map[string]string{bschema.HostKey("web", 8080): "Not_A Host"}}
	if _, err := ingress(bad, "berth-pr-7", "web", ""); err == nil || !strings.Contains(err.Error(), "Not_A Host") {
		t.Errorf("a bad host: %v, want an error naming it", err)
	}
}

func TestEndpoints(t *testing.T) {
	ports := []bschema.Port{
		{Name: "http", Port: 8080, Protocol: "tcp", Public: true, HostPort: 80},
		{Port: 9000, Protocol: "tcp", Public: true, HostPort: 9000},
		{Port: 9090, Protocol: "udp"},
	}
	lb := func(ing ...corev1.LoadBalancerIngress) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ing}}}
	}
	rule := func(host, svc string, port networkingv1.ServiceBackendPort) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}}}}}}
	}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
		rule("other.example", "another", networkingv1.ServiceBackendPort{Number: 8080}),
		rule("web.example", "web", networkingv1.ServiceBackendPort{Name: "http"}),
	}}}
	for _, c := range []struct {
		name   string
		public *corev1.Service
		ing    *networkingv1.Ingress
		want   []providers.Endpoint
	}{
		{"no address yet", lb(), nil, nil},
		{"not a load balancer", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}}, nil, nil},
		{"ip", lb(corev1.LoadBalancerIngress{IP: "203.0.113.7"}), nil, []providers.Endpoint{
			{Port: 8080, Address: "203.0.113.7:80"}, {Port: 9000, Address: "203.0.113.7:9000"}}},
		{"hostname", lb(corev1.LoadBalancerIngress{Hostname: "lb.example"}), nil, []providers.Endpoint{
			{Port: 8080, Address: "lb.example:80"}, {Port: 9000, Address: "lb.example:9000"}}},
		{"wildcard", lb(corev1.LoadBalancerIngress{IP: "0.0.0.0"}), nil, []providers.Endpoint{
			{Port: 8080, Address: "127.0.0.1:80"}, {Port: 9000, Address: "127.0.0.1:9000"}}},
		{"ipv6", lb(corev1.LoadBalancerIngress{IP: "2001:db8::1"}), nil, []providers.Endpoint{
			{Port: 8080, Address: "[2001:db8::1]:80"}, {Port: 9000, Address: "[2001:db8::1]:9000"}}},
		{"routed, no address", lb(), ing, []providers.Endpoint{{Port: 8080, URL: "http://web.example/"}}},
		{"routed", lb(corev1.LoadBalancerIngress{IP: "203.0.113.7"}), ing, []providers.Endpoint{
			{Port: 8080, Address: "203.0.113.7:80", URL: "http://web.example/"}, {Port: 9000, Address: "203.0.113.7:9000"}}},
	} {
		if got := endpoints(ports, c.public, c.ing, "web"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: endpoints = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestPreviewNumber(t *testing.T) {
	for v, want := range map[string]int{"42": 42, "2147483647": 2147483647, "": 0, "0": 0, "-1": 0, "042": 0, "4x": 0, "+4": 0} {
		if got := previewNumber(v); got != want {
			t.Errorf("previewNumber(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestIngressClassSetting(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
		err  bool
	}{{"nginx", "nginx", false}, {"", "", false}, {"Bad_Class", "", true}, {3, "", true}} {
		s, err := parseSettings(bschema.Target{Name: "k", Type: Type, Settings: map[string]any{"ingressClass": c.v}})
		if (err != nil) != c.err || s.ingressClass != c.want {
			t.Errorf("ingressClass %v: %q, %v", c.v, s.ingressClass, err)
		}
	}
}
