package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Annotations and names of the mapping.
const (
	// AnnotationSpec holds the applied workload as JSON, for people and tools; berth never reads it back (the
	// plan compares the live fields).
	AnnotationSpec = "berth.dev/spec"
	// AnnotationServices names the Services berth applies beside the Deployment (comma-separated): one that is
	// gone is reported as Observed.Missing.
	AnnotationServices = "berth.dev/services"
	// LabelManagedBy marks namespaces berth created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ContainerName is the name of the one container of every pod.
	ContainerName = "app"
	// PublicSuffix names the LoadBalancer Service of a workload's public ports.
	PublicSuffix = "-public"
	maxNameLen   = 63 - len(PublicSuffix)
)

// ErrNotOwned is returned (wrapped, permanent) when an object with berth's name exists without berth's labels.
var ErrNotOwned = errors.New("object exists and is not owned by this berth instance and environment")

// ErrExecPlugin is returned (wrapped) when a kubeconfig needs a credential plugin the target does not allow.
var ErrExecPlugin = errors.New("exec credential plugins are not allowed")

// namespace is the namespace of owner's workloads: a preview's own (PreviewNamespace of the target's namespace,
// or of "berth"), else the target's, or berth-<env>.
func (p *Provider) namespace(owner providers.Owner) string {
	if owner.Preview != 0 {
		return PreviewNamespace(p.baseNamespace(), owner.Preview)
	}
	if p.set.namespace != "" {
		return p.set.namespace
	}
	return "berth-" + owner.Environment
}

// baseNamespace is what preview namespaces are named after: the target's namespace, or "berth" (so that a
// preview of a target without one lives in berth-pr-<N>, as its environment's name says).
func (p *Provider) baseNamespace() string {
	if p.set.namespace != "" {
		return p.set.namespace
	}
	return "berth"
}

// PreviewNamespace is the namespace of pull request n's preview on a target whose namespace is base:
// <base>-pr-<n>, cut to a DNS label (63 characters) with a hash of the whole name when longer.
func PreviewNamespace(base string, n int) string {
	return shorten(base+"-pr-"+strconv.Itoa(n), 63)
}

// shorten cuts s to max characters deterministically: a prefix and 8 hex digits of a hash of s.
func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:max-9], "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

// objectName is the deterministic name of a workload's Deployment, Services and Ingress: the workload's name in
// a namespace of the environment's own (berth-<env>, a preview's), <env>-<workload> in a namespace the target
// shares between environments, shortened with a hash when it would not fit a DNS label with the public suffix.
func (p *Provider) objectName(owner providers.Owner, workload string) string {
	n := workload
	if p.set.namespace != "" && owner.Preview == 0 {
		n = owner.Environment + "-" + workload
	}
	return shorten(n, maxNameLen)
}

// selectorLabels select a workload's pods; a Deployment's selector is immutable, so they never hold the hash.
func selectorLabels(o providers.Owner, workload string) map[string]string {
	return map[string]string{
		providers.LabelInstance:    o.Instance,
		providers.LabelEnvironment: o.Environment,
		providers.LabelWorkload:    workload,
	}
}

// ownerLabels are the labels of every object of d: the selector's, the target and the spec hash, and for a
// preview its number and the head it was applied from (see podLabels).
func ownerLabels(d providers.Desired) map[string]string {
	l := selectorLabels(d.Owner, d.Workload.Name)
	l[providers.LabelTarget] = d.Target
	l[providers.LabelSpecHash] = d.SpecHash
	if d.Owner.Preview != 0 {
		l[providers.LabelPreview] = strconv.Itoa(d.Owner.Preview)
	}
	if d.Preview != nil && d.Preview.Head != "" {
		l[providers.LabelHead] = d.Preview.Head
	}
	return l
}

// podLabels are the labels of d's pod template: ownerLabels without the head, so that a new head with an
// unchanged workload relabels the Deployment and rolls no pod.
func podLabels(d providers.Desired) map[string]string {
	l := ownerLabels(d)
	delete(l, providers.LabelHead)
	return l
}

// owned tells whether labels l carry owner's instance and environment and the workload's name.
func owned(l map[string]string, o providers.Owner, workload string) bool {
	return l[providers.LabelInstance] == o.Instance && l[providers.LabelEnvironment] == o.Environment &&
		l[providers.LabelWorkload] == workload
}

// checkLabels reports label values Kubernetes would refuse, as a permanent error.
func checkLabels(l map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if errs := validation.IsValidLabelValue(l[k]); len(errs) > 0 {
			return providers.Permanent(fmt.Errorf("label %s=%q: %s", k, l[k], strings.Join(errs, "; ")))
		}
	}
	return nil
}

// deployment builds the apply configuration of d's Deployment, the existing Secrets it references at no
// particular version.
func deployment(d providers.Desired, ns, name string) (*appsac.DeploymentApplyConfiguration, error) {
	sp, err := planSecrets(d, ns, name, nil)
	if err != nil {
		return nil, err
	}
	return deploymentWith(d, ns, name, sp)
}

// deploymentWith builds the apply configuration of d's Deployment, its secrets delivered as sp says.
func deploymentWith(d providers.Desired, ns, name string, sp secretPlan) (*appsac.DeploymentApplyConfiguration, error) {
	w := d.Workload
	spec, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding the spec of %s: %w", w.Name, err)
	}
	labels := ownerLabels(d)
	var svcs []string
	for i, pt := range w.Ports {
		if i == 0 {
			svcs = append(svcs, name)
		}
		if pt.Public {
			svcs = append(svcs, name+PublicSuffix)
			break
		}
	}
	annotations := map[string]string{AnnotationSpec: string(spec), AnnotationServices: strings.Join(svcs, ",")}
	if rs, err := routes(d); err != nil {
		return nil, err
	} else if len(rs) > 0 {
		annotations[AnnotationIngress] = name
	}

	c := coreac.Container().WithName(ContainerName).WithImage(w.Image)
	if len(w.Command) > 0 {
		c.WithCommand(w.Command...)
	}
	if len(w.Args) > 0 {
		c.WithArgs(w.Args...)
	}
	for _, k := range slices.Sorted(maps.Keys(envNames(w))) {
		if n, ok := w.SecretEnv[k]; ok {
			c.WithEnv(coreac.EnvVar().WithName(k).WithValueFrom(sp.envSource(n)))
		} else {
			c.WithEnv(coreac.EnvVar().WithName(k).WithValue(w.Env[k]))
		}
	}
	for _, pt := range w.Ports {
		c.WithPorts(coreac.ContainerPort().WithContainerPort(int32(pt.Port)).WithProtocol(protocol(pt.Protocol)))
	}
	if r := resources(w.Resources); r != nil {
		c.WithResources(r)
	}
	if w.Health != nil {
		c.WithReadinessProbe(probe(w.Health, false)).WithLivenessProbe(probe(w.Health, true))
	}

	pod := coreac.PodSpec()
	sp.withFiles(w, pod, c)
	pod.WithContainers(c)
	template := coreac.PodTemplateSpec().WithLabels(podLabels(d)) // the spec annotation stays off pods: it holds the replica count
	if len(sp.refs) > 0 {
		template.WithAnnotations(map[string]string{AnnotationSecrets: sp.annotation()})
	}

	replicas := int32(w.Replicas)
	dep := appsac.Deployment(name, ns).
		WithLabels(labels).
		WithAnnotations(annotations).
		WithSpec(appsac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metaac.LabelSelector().WithMatchLabels(selectorLabels(d.Owner, w.Name))).
			// Make-before-break: a new pod must be available before an old one goes.
			WithStrategy(appsac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsac.RollingUpdateDeployment().
					WithMaxUnavailable(intstr.FromInt32(0)).
					WithMaxSurge(intstr.FromInt32(1)))).
			WithTemplate(template.WithSpec(pod)))
	return dep, nil
}

// envNames are the names of w's env vars, plain and from secrets.
func envNames(w schema.Workload) map[string]bool {
	out := make(map[string]bool, len(w.Env)+len(w.SecretEnv))
	for k := range w.Env {
		out[k] = true
	}
	for k := range w.SecretEnv {
		out[k] = true
	}
	return out
}

// services builds the apply configurations of d's Services: a ClusterIP Service with every port for the
// environment's other workloads, and a LoadBalancer Service <name>-public with the public ports at their host
// ports. Either is nil when it has no port.
func services(d providers.Desired, ns, name string) (internal, public *coreac.ServiceApplyConfiguration) {
	w := d.Workload
	labels := ownerLabels(d)
	sel := selectorLabels(d.Owner, w.Name)
	for _, pt := range w.Ports {
		pname := pt.Name
		if pname == "" {
			pname = defaultPortName(pt.Protocol, pt.Port)
		}
		sp := coreac.ServicePort().WithName(pname).WithPort(int32(pt.Port)).
			WithTargetPort(intstr.FromInt32(int32(pt.Port))).WithProtocol(protocol(pt.Protocol))
		if internal == nil {
			internal = coreac.Service(name, ns).WithLabels(labels).
				WithSpec(coreac.ServiceSpec().WithType(corev1.ServiceTypeClusterIP).WithSelector(sel))
		}
		internal.Spec.WithPorts(sp)
		if !pt.Public {
			continue
		}
		host := pt.HostPort
		if host == 0 {
			host = pt.Port
		}
		if public == nil {
			public = coreac.Service(name+PublicSuffix, ns).WithLabels(labels).
				WithSpec(coreac.ServiceSpec().WithType(corev1.ServiceTypeLoadBalancer).WithSelector(sel).
					WithExternalTrafficPolicy(corev1.ServiceExternalTrafficPolicyCluster))
		}
		public.Spec.WithPorts(coreac.ServicePort().WithName(pname).WithPort(int32(host)).
			WithTargetPort(intstr.FromInt32(int32(pt.Port))).WithProtocol(protocol(pt.Protocol)))
	}
	return internal, public
}

func protocol(p string) corev1.Protocol {
	if strings.EqualFold(p, "udp") {
		return corev1.ProtocolUDP
	}
	return corev1.ProtocolTCP
}

// resources maps berth's per-replica CPU and memory to equal requests and limits (guaranteed QoS when both are set).
func resources(r schema.Resources) *coreac.ResourceRequirementsApplyConfiguration {
	l := corev1.ResourceList{}
	if r.CPUMillis > 0 {
		l[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.CPUMillis, resource.DecimalSI)
	}
	if r.MemoryBytes > 0 {
		l[corev1.ResourceMemory] = *resource.NewQuantity(r.MemoryBytes, resource.BinarySI)
	}
	if len(l) == 0 {
		return nil
	}
	return coreac.ResourceRequirements().WithRequests(l).WithLimits(maps.Clone(l))
}

// probe maps a health check: HTTP → httpGet, TCP → tcpSocket, command → exec. The liveness probe waits the start
// period; the readiness probe gates traffic from the start.
func probe(h *schema.HealthCheck, liveness bool) *coreac.ProbeApplyConfiguration {
	pr := coreac.Probe()
	switch h.Kind() {
	case "http":
		pr.WithHTTPGet(coreac.HTTPGetAction().WithPath(h.HTTP.Path).WithPort(intstr.FromInt32(int32(h.HTTP.Port))))
	case "tcp":
		pr.WithTCPSocket(coreac.TCPSocketAction().WithPort(intstr.FromInt32(int32(h.TCP.Port))))
	default:
		pr.WithExec(coreac.ExecAction().WithCommand(h.Command...))
	}
	if s := seconds(h.Interval); s > 0 {
		pr.WithPeriodSeconds(s)
	}
	if s := seconds(h.Timeout); s > 0 {
		pr.WithTimeoutSeconds(s)
	}
	if h.Retries > 0 {
		pr.WithFailureThreshold(int32(h.Retries))
	}
	if s := seconds(h.StartPeriod); liveness && s > 0 {
		pr.WithInitialDelaySeconds(s)
	}
	return pr
}

// seconds rounds a duration up to whole seconds, the unit of probes.
func seconds(d schema.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32(math.Ceil(d.D().Seconds()))
}

var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// dnsLabel says why s is not a DNS-1035 label ("" when it is).
func dnsLabel(s string) string {
	switch {
	case len(s) > 63:
		return "longer than 63 characters"
	case !dns1035.MatchString(s):
		return "not a DNS label (lower-case letters, digits and '-', starting with a letter)"
	}
	return ""
}

// Validate implements providers.Validator: validate, which Offline's Validator runs too.
func (p *Provider) Validate(w schema.Workload) []providers.Problem { return validate(w) }

// validate says what a Deployment and its Services cannot take; it needs no cluster and no setting.
func validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	if msg := dnsLabel(w.Name); msg != "" {
		out = append(out, providers.Problem{Field: "name", Message: "a Kubernetes object name must be a DNS label: " + msg})
	}
	hosts := map[string]int{}
	names := map[string]int{}
	for i, pt := range w.Ports {
		if pt.Name != "" {
			if msg := dnsLabel(pt.Name); msg != "" || len(pt.Name) > 15 {
				out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].name", i),
					Message: "a Kubernetes port name must be a DNS label of at most 15 characters"})
			}
			if j, dup := names[pt.Name]; dup {
				out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].name", i),
					Message: fmt.Sprintf("same name as ports[%d]", j)})
			}
			names[pt.Name] = i
		}
		if !pt.Public {
			continue
		}
		host := pt.HostPort
		if host == 0 {
			host = pt.Port
		}
		key := fmt.Sprintf("%d/%s", host, strings.ToLower(pt.Protocol))
		if j, dup := hosts[key]; dup {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].hostPort", i),
				Message: fmt.Sprintf("public port %s is also ports[%d]'s: one LoadBalancer port each", key, j)})
		}
		hosts[key] = i
	}
	for _, k := range slices.Sorted(maps.Keys(envNames(w))) {
		if errs := validation.IsEnvVarName(k); len(errs) > 0 {
			out = append(out, providers.Problem{Field: "env." + k, Message: strings.Join(errs, "; ")})
		}
	}
	// Each file is a mount of its own: one cannot sit inside another.
	paths := slices.Sorted(maps.Keys(w.Files))
	for i, a := range paths {
		for _, b := range paths[i+1:] {
			if strings.HasPrefix(b, a+"/") {
				out = append(out, providers.Problem{Field: "files." + b,
					Message: fmt.Sprintf("inside the secret file %s: a secret file cannot be a directory of others", a)})
			}
		}
	}
	return out
}
