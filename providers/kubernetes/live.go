package kubernetes

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Kubernetes' own defaults of a probe's fields, which a read-back finds where berth set none.
const (
	probePeriodDefault  = 10
	probeTimeoutDefault = 1
	probeRetriesDefault = 3
)

// workloadObjects are one workload's objects as the apiserver holds them; a Service is nil when absent.
type workloadObjects struct {
	dep              *appsv1.Deployment
	internal, public *corev1.Service
	ingress          *networkingv1.Ingress
}

// liveState is a workload read back from its live objects.
type liveState struct {
	spec    schema.Workload
	missing []string
	kept    []providers.Kept
	// secrets are the pod template's secret references (AnnotationSecrets), by secret name; fingerprints their
	// fingerprints as written.
	secrets      map[string]secretRef
	fingerprints map[string]string
	// endpoints are where the public ports answer (see endpoints).
	endpoints []providers.Endpoint
}

// live reads the workload back from the objects' own fields, never from berth's annotations: image, command,
// args, env, replicas and resources from the Deployment and its container "app", the health check from its
// probes, the ports from the container ports with their names from the ClusterIP Service and the public ones
// (host port = the Service's port) from the LoadBalancer Service. Both List and Apply use it, so what the plan
// shows as drift is what Apply repairs.
//
// Values someone else added inside a field berth manages are told apart by the managed fields: an env entry or
// a port whose key berth's server-side apply does not hold is foreign. Without takeOwnership a foreign value is
// Kept (left out of the spec, and left in place by Apply); with it, it is read like any other and Apply removes
// it. A container other than "app" is always Kept: berth never removes containers it did not make. Single values
// (image, command, args, the probes, CPU and memory) are berth's whoever set them last: another value is drift.
func (p *Provider) live(o workloadObjects) liveState {
	dep := o.dep
	var st liveState
	w := schema.Workload{Name: dep.Labels[providers.LabelWorkload], Replicas: 1}
	if dep.Spec.Replicas != nil {
		w.Replicas = int(*dep.Spec.Replicas)
	}
	mine := appFields(dep)
	var app *corev1.Container
	for i := range dep.Spec.Template.Spec.Containers {
		c := &dep.Spec.Template.Spec.Containers[i]
		if c.Name == ContainerName {
			app = c
			continue
		}
		who := owners(dep.ManagedFields, containerPath(c.Name))
		st.kept = append(st.kept, providers.Kept{Path: "containers." + c.Name,
			Reason: fmt.Sprintf("a container added by %s; berth runs the one container %q and never removes others", managers(who), ContainerName)})
	}
	if app == nil {
		st.spec = w
		return st
	}
	w.Image, w.Command, w.Args = app.Image, slices.Clone(app.Command), slices.Clone(app.Args)
	st.secrets, st.fingerprints = liveSecrets(dep)
	own := dep.Name + SecretSuffix
	for _, e := range app.Env {
		if !mine.has("f:env", keyOf("name", e.Name)) && !p.set.takeOwnership {
			st.keep(p, "env."+e.Name, owners(dep.ManagedFields, append(containerPath(ContainerName), "f:env", keyOf("name", e.Name))))
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil { // berth's own reference: a name, never a value
			if w.SecretEnv == nil {
				w.SecretEnv = map[string]string{}
			}
			r := e.ValueFrom.SecretKeyRef
			w.SecretEnv[e.Name] = refName(st.secrets, own, r.Name, r.Key, "")
			continue
		}
		if w.Env == nil {
			w.Env = map[string]string{}
		}
		w.Env[e.Name] = e.Value
	}
	w.Files = p.liveFiles(dep, app, mine, st.secrets)
	if q, ok := pickQuantity(app.Resources, mine, corev1.ResourceCPU); ok {
		w.Resources.CPUMillis = q.MilliValue()
	}
	if q, ok := pickQuantity(app.Resources, mine, corev1.ResourceMemory); ok {
		w.Resources.MemoryBytes = q.Value()
	}
	w.Health = pickHealth(app, mine)
	w.Ports = p.livePorts(o, app, mine, &st)
	for _, n := range strings.Split(dep.Annotations[AnnotationServices], ",") {
		switch {
		case n == "":
		case n == dep.Name && o.internal == nil, n == dep.Name+PublicSuffix && o.public == nil:
			st.missing = append(st.missing, "Service "+n)
		}
	}
	if n := dep.Annotations[AnnotationIngress]; n != "" && o.ingress == nil {
		st.missing = append(st.missing, "Ingress "+n)
	}
	st.endpoints = endpoints(w.Ports, o.public, o.ingress, dep.Name)
	st.spec = w
	return st
}

// liveFiles reads the secret files back from the container's mounts of berth's secret volumes: the mounts
// berth's apply holds (all, with takeOwnership) whose volume is a secret volume "secret-<name>" of one item.
// Other volumes and mounts are not berth's and are not read.
func (p *Provider) liveFiles(dep *appsv1.Deployment, app *corev1.Container, mine fieldSet, refs map[string]secretRef) map[string]schema.File {
	var out map[string]schema.File
	own := dep.Name + SecretSuffix
	for _, m := range app.VolumeMounts {
		if !mine.has("f:volumeMounts", keyOf("mountPath", m.MountPath)) && !p.set.takeOwnership {
			continue
		}
		i := slices.IndexFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			continue
		}
		v := dep.Spec.Template.Spec.Volumes[i]
		hint, ok := isSecretVolume(v)
		if !ok {
			continue
		}
		item := v.Secret.Items[0]
		n := refName(refs, own, v.Secret.SecretName, item.Key, hint)
		if m.SubPath != item.Path {
			n = fmt.Sprintf("Secret %s key %s (subPath %q)", v.Secret.SecretName, item.Key, m.SubPath)
		}
		if out == nil {
			out = map[string]schema.File{}
		}
		out[m.MountPath] = schema.File{Secret: n}
	}
	return out
}

// keep records a foreign value, naming who holds it and how to let berth take it.
func (st *liveState) keep(p *Provider, path string, who []string) {
	st.kept = append(st.kept, providers.Kept{Path: path, Reason: fmt.Sprintf(
		"owned by %s; set takeOwnership: true on target %q to let berth remove it", managers(who), p.target)})
}

func managers(who []string) string {
	if len(who) == 0 {
		return "no field manager"
	}
	q := make([]string, len(who))
	for i, m := range who {
		q[i] = strconv.Quote(m)
	}
	if len(q) == 1 {
		return "field manager " + q[0]
	}
	return "field managers " + strings.Join(q, ", ")
}

// livePorts reads the ports: one per container port, named after the ClusterIP Service's port that serves it,
// public at the port of the LoadBalancer Service's port that forwards to it. A Service port forwarding to no
// container port is read as a port of its own, so that the plan shows it.
func (p *Provider) livePorts(o workloadObjects, app *corev1.Container, mine fieldSet, st *liveState) []schema.Port {
	internal := p.servicePorts(o.internal, st)
	var public []corev1.ServicePort
	if o.public != nil && o.public.Spec.Type == corev1.ServiceTypeLoadBalancer { // else it publishes nothing
		public = p.servicePorts(o.public, st)
	}
	usedI, usedP := make([]bool, len(internal)), make([]bool, len(public))
	var out []schema.Port
	for _, cp := range app.Ports {
		proto := protoOf(cp.Protocol)
		if key := containerPortKey(cp); !mine.has("f:ports", key) && !p.set.takeOwnership {
			st.keep(p, fmt.Sprintf("ports[%d/%s]", cp.ContainerPort, proto),
				owners(o.dep.ManagedFields, append(containerPath(ContainerName), "f:ports", key)))
			continue
		}
		pt := schema.Port{Port: int(cp.ContainerPort), Protocol: proto}
		for i, sp := range internal {
			if !usedI[i] && serves(sp, cp.ContainerPort, proto) {
				usedI[i], pt.Name = true, sp.Name
				break
			}
		}
		found := false
		for i, sp := range public {
			if usedP[i] || !serves(sp, cp.ContainerPort, proto) {
				continue
			}
			usedP[i] = true
			q := pt
			if q.Name == "" {
				q.Name = sp.Name
			}
			q.Public, q.HostPort = true, int(sp.Port)
			out = append(out, q)
			found = true
		}
		if !found {
			out = append(out, pt)
		}
	}
	for i, sp := range internal {
		if !usedI[i] {
			out = append(out, schema.Port{Name: sp.Name, Port: sp.TargetPort.IntValue(), Protocol: protoOf(sp.Protocol)})
		}
	}
	for i, sp := range public {
		if !usedP[i] {
			out = append(out, schema.Port{Name: sp.Name, Port: sp.TargetPort.IntValue(), Protocol: protoOf(sp.Protocol),
				Public: true, HostPort: int(sp.Port)})
		}
	}
	for i := range out {
		if out[i].Name == defaultPortName(out[i].Protocol, out[i].Port) {
			out[i].Name = ""
		}
	}
	return out
}

// servicePorts are a Service's ports that the read-back counts: all of them with takeOwnership, else those whose
// key berth's apply holds (the others are Kept).
func (p *Provider) servicePorts(svc *corev1.Service, st *liveState) []corev1.ServicePort {
	if svc == nil {
		return nil
	}
	mine := berthFields(svc.ManagedFields)
	var out []corev1.ServicePort
	for _, sp := range svc.Spec.Ports {
		if key := servicePortKey(sp); !mine.has("f:spec", "f:ports", key) && !p.set.takeOwnership {
			st.keep(p, fmt.Sprintf("ports[%d/%s on Service %s]", sp.Port, protoOf(sp.Protocol), svc.Name),
				owners(svc.ManagedFields, []string{"f:spec", "f:ports", key}))
			continue
		}
		out = append(out, sp)
	}
	return out
}

// serves tells whether a Service port forwards to the container port.
func serves(sp corev1.ServicePort, port int32, proto string) bool {
	return sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal == port && protoOf(sp.Protocol) == proto
}

func protoOf(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

// defaultPortName names a Service port berth was given no name for.
func defaultPortName(proto string, port int) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(proto), port)
}

// pickQuantity reads one resource berth sets as equal request and limit. When both are there and differ, the
// one berth's apply no longer holds is the one changed by hand; when one is gone while berth holds the other, it
// was removed (read as zero); one berth does not hold at all was added by hand.
func pickQuantity(live corev1.ResourceRequirements, mine fieldSet, name corev1.ResourceName) (resource.Quantity, bool) {
	l, lok := live.Limits[name]
	r, rok := live.Requests[name]
	ol := lok && mine.has("f:resources", "f:limits", "f:"+string(name))
	or := rok && mine.has("f:resources", "f:requests", "f:"+string(name))
	switch {
	case lok && rok && ol && !or:
		return r, true
	case lok && rok:
		return l, true
	case lok && ol, rok && or:
		return resource.Quantity{}, true
	case lok:
		return l, true
	}
	return r, rok
}

// pickHealth reads the health check from the probes, which berth sets alike: when they differ, from the one
// changed by hand (the other still wholly berth's), else the readiness probe; the start period from the
// liveness probe's initial delay.
func pickHealth(app *corev1.Container, mine fieldSet) *schema.HealthCheck {
	hr, hl := healthOf(app.ReadinessProbe), healthOf(app.LivenessProbe)
	h := hr
	if !reflect.DeepEqual(hr, hl) && probeOwned(app.ReadinessProbe, mine, "f:readinessProbe") &&
		!probeOwned(app.LivenessProbe, mine, "f:livenessProbe") {
		h = hl
	}
	if h == nil {
		return nil
	}
	out := *h
	if app.LivenessProbe != nil {
		out.StartPeriod = schema.Duration(int64(app.LivenessProbe.InitialDelaySeconds) * 1e9)
	}
	return &out
}

// probeOwned tells whether berth's apply holds every field of the probe that berth sets.
func probeOwned(pr *corev1.Probe, mine fieldSet, field string) bool {
	if pr == nil {
		return false
	}
	paths := [][]string{{"f:periodSeconds"}, {"f:timeoutSeconds"}, {"f:failureThreshold"}}
	switch {
	case pr.HTTPGet != nil:
		paths = append(paths, []string{"f:httpGet", "f:path"}, []string{"f:httpGet", "f:port"})
	case pr.TCPSocket != nil:
		paths = append(paths, []string{"f:tcpSocket", "f:port"})
	case pr.Exec != nil:
		paths = append(paths, []string{"f:exec", "f:command"})
	default:
		return false
	}
	for _, path := range paths {
		if !mine.has(append([]string{field}, path...)...) {
			return false
		}
	}
	return true
}

// healthOf maps a probe back to a health check (its start period aside); nil for none.
func healthOf(pr *corev1.Probe) *schema.HealthCheck {
	if pr == nil {
		return nil
	}
	h := &schema.HealthCheck{
		Interval: schema.Duration(int64(pr.PeriodSeconds) * 1e9), Timeout: schema.Duration(int64(pr.TimeoutSeconds) * 1e9),
		Retries: int(pr.FailureThreshold),
	}
	switch {
	case pr.HTTPGet != nil:
		h.HTTP = &schema.HTTPCheck{Path: pr.HTTPGet.Path, Port: pr.HTTPGet.Port.IntValue()}
	case pr.TCPSocket != nil:
		h.TCP = &schema.TCPCheck{Port: pr.TCPSocket.Port.IntValue()}
	case pr.Exec != nil:
		h.Command = slices.Clone(pr.Exec.Command)
	case pr.GRPC != nil:
		h.Command = []string{"(grpc probe on port " + strconv.Itoa(int(pr.GRPC.Port)) + ")"} // not berth's: drift
	default:
		return nil
	}
	if len(h.Command) == 0 {
		h.Command = nil
	}
	return h
}

// probeKind is the handler of a probe, in health check kinds.
func probeKind(pr *corev1.Probe) string {
	switch {
	case pr == nil:
		return ""
	case pr.HTTPGet != nil:
		return "http"
	case pr.TCPSocket != nil:
		return "tcp"
	case pr.Exec != nil:
		return "command"
	}
	return "other"
}

// Normalize implements providers.Normalizer: the form in which a workload reads back from a Deployment, its
// probes and Services. Probe durations are whole seconds (rounded up, as applied), zero ones Kubernetes'
// defaults; a port named as berth names unnamed ones ("tcp-8080") reads back unnamed.
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	if len(w.Ports) > 0 {
		ps := slices.Clone(w.Ports)
		for i := range ps {
			if ps[i].Name == defaultPortName(ps[i].Protocol, ps[i].Port) {
				ps[i].Name = ""
			}
		}
		w.Ports = ps
	}
	if w.Health != nil {
		h := *w.Health
		h.Interval = roundSeconds(h.Interval, probePeriodDefault)
		h.Timeout = roundSeconds(h.Timeout, probeTimeoutDefault)
		h.StartPeriod = roundSeconds(h.StartPeriod, 0)
		if h.Retries <= 0 {
			h.Retries = probeRetriesDefault
		}
		if h.HTTP != nil {
			c := *h.HTTP
			h.HTTP = &c
		}
		w.Health = &h
	}
	return w
}

func roundSeconds(d schema.Duration, def int64) schema.Duration {
	s := int64(seconds(d))
	if s == 0 {
		s = def
	}
	return schema.Duration(s * 1e9)
}

// jsonOp is one JSON patch (RFC 6902) operation.
type jsonOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// stripDeployment lists the removals that the forced server-side apply of w cannot make, because berth's apply
// holds no field there: values someone else set in a single field that w leaves empty (command, args, a CPU or
// memory request or limit, a probe or its initial delay, a probe of another kind), and, with takeOwnership, the
// foreign env entries and container ports that w does not have.
func (p *Provider) stripDeployment(dep *appsv1.Deployment, w schema.Workload) []jsonOp {
	ci := slices.IndexFunc(dep.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == ContainerName })
	if ci < 0 {
		return nil
	}
	app := &dep.Spec.Template.Spec.Containers[ci]
	base := fmt.Sprintf("/spec/template/spec/containers/%d", ci)
	var ops []jsonOp
	rm := func(path string) { ops = append(ops, jsonOp{Op: "remove", Path: base + path}) }
	if p.set.takeOwnership {
		mine := appFields(dep)
		for i := len(app.Env) - 1; i >= 0; i-- {
			e := app.Env[i]
			_, plain := w.Env[e.Name]
			_, secret := w.SecretEnv[e.Name]
			if wanted := plain || secret; !wanted && !mine.has("f:env", keyOf("name", e.Name)) {
				rm(fmt.Sprintf("/env/%d", i))
			}
		}
		for i := len(app.Ports) - 1; i >= 0; i-- {
			cp := app.Ports[i]
			proto := protoOf(cp.Protocol)
			match := func(port int32, pr corev1.Protocol) bool { return port == cp.ContainerPort && protoOf(pr) == proto }
			wanted := slices.ContainsFunc(w.Ports, func(pt schema.Port) bool { return match(int32(pt.Port), protocol(pt.Protocol)) })
			ours := mine.has("f:ports", containerPortKey(cp))
			if !wanted && !ours {
				rm(fmt.Sprintf("/ports/%d", i))
			}
		}
	}
	if len(w.Command) == 0 && len(app.Command) > 0 {
		rm("/command")
	}
	if len(w.Args) == 0 && len(app.Args) > 0 {
		rm("/args")
	}
	for _, r := range []struct {
		kind string
		list corev1.ResourceList
	}{{"limits", app.Resources.Limits}, {"requests", app.Resources.Requests}} {
		if _, ok := r.list[corev1.ResourceCPU]; ok && w.Resources.CPUMillis <= 0 {
			rm("/resources/" + r.kind + "/cpu")
		}
		if _, ok := r.list[corev1.ResourceMemory]; ok && w.Resources.MemoryBytes <= 0 {
			rm("/resources/" + r.kind + "/memory")
		}
	}
	for _, pr := range []struct {
		field string
		probe *corev1.Probe
	}{{"readinessProbe", app.ReadinessProbe}, {"livenessProbe", app.LivenessProbe}} {
		switch {
		case pr.probe == nil:
		case w.Health == nil || probeKind(pr.probe) != w.Health.Kind():
			rm("/" + pr.field)
		case pr.field == "livenessProbe" && pr.probe.InitialDelaySeconds > 0 && seconds(w.Health.StartPeriod) == 0:
			rm("/livenessProbe/initialDelaySeconds")
		}
	}
	return ops
}

// stripService lists, with takeOwnership, the removals of a Service's foreign ports that ac does not have.
func (p *Provider) stripService(svc *corev1.Service, ac *coreac.ServiceApplyConfiguration) []jsonOp {
	if !p.set.takeOwnership || svc == nil {
		return nil
	}
	mine := berthFields(svc.ManagedFields)
	var want []coreac.ServicePortApplyConfiguration
	if ac != nil && ac.Spec != nil {
		want = ac.Spec.Ports
	}
	var ops []jsonOp
	for i := len(svc.Spec.Ports) - 1; i >= 0; i-- {
		sp := svc.Spec.Ports[i]
		match := func(m coreac.ServicePortApplyConfiguration) bool {
			return m.Port != nil && *m.Port == sp.Port && m.Protocol != nil && *m.Protocol == sp.Protocol
		}
		if !mine.has("f:spec", "f:ports", servicePortKey(sp)) && !slices.ContainsFunc(want, match) {
			ops = append(ops, jsonOp{Op: "remove", Path: fmt.Sprintf("/spec/ports/%d", i)})
		}
	}
	if len(ops) == len(svc.Spec.Ports) {
		return nil // a Service keeps at least one port; the apply of ac replaces the rest
	}
	return ops
}

// guarded prefixes ops with the object's resourceVersion: the patch applies to exactly the object the removals
// were computed from, or fails with a conflict.
func guarded(rv string, ops []jsonOp) ([]byte, error) {
	return json.Marshal(append([]jsonOp{{Op: "test", Path: "/metadata/resourceVersion", Value: rv}}, ops...))
}

// containerPath is the managed-fields path of a container of the pod template.
func containerPath(name string) []string {
	return []string{"f:spec", "f:template", "f:spec", "f:containers", keyOf("name", name)}
}

func keyOf(k string, v any) string { return keyJSON(map[string]any{k: v}) }

// keyJSON is a managed-fields key element, k:{...} (encoding/json sorts the keys).
func keyJSON(key map[string]any) string {
	b, _ := json.Marshal(key)
	return "k:" + string(b)
}

func containerPortKey(cp corev1.ContainerPort) string {
	return keyJSON(map[string]any{"containerPort": cp.ContainerPort, "protocol": string(protocol(protoOf(cp.Protocol)))})
}

func servicePortKey(sp corev1.ServicePort) string {
	return keyJSON(map[string]any{"port": sp.Port, "protocol": string(protocol(protoOf(sp.Protocol)))})
}

// fieldSet is a decoded managed-fields set (FieldsV1): nested objects keyed "f:<field>", "k:{<key>}", "v:<value>"
// or ".". Reading it directly is much cheaper than extracting an apply configuration.
type fieldSet map[string]any

// berthFields is the set berth's server-side apply holds (nil when none).
func berthFields(mfs []metav1.ManagedFieldsEntry) fieldSet {
	for _, mf := range mfs {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" &&
			mf.FieldsV1 != nil {
			var s fieldSet
			if json.Unmarshal(mf.FieldsV1.Raw, &s) == nil {
				return s
			}
		}
	}
	return nil
}

// appFields is the part of berth's set under container "app".
func appFields(dep *appsv1.Deployment) fieldSet {
	s, _ := berthFields(dep.ManagedFields).at(containerPath(ContainerName)...)
	return s
}

// has tells whether the set holds the element at path.
func (s fieldSet) has(path ...string) bool {
	_, ok := s.at(path...)
	return ok
}

func (s fieldSet) at(path ...string) (fieldSet, bool) {
	for _, el := range path {
		next, ok := s.child(el)
		if !ok {
			return nil, false
		}
		s = next
	}
	return s, s != nil
}

// child finds el under s; a key element matches by value, whatever the order or number formatting.
func (s fieldSet) child(el string) (fieldSet, bool) {
	if v, ok := s[el].(map[string]any); ok {
		return v, true
	}
	if !strings.HasPrefix(el, "k:") {
		return nil, false
	}
	var want map[string]any
	if json.Unmarshal([]byte(el[2:]), &want) != nil {
		return nil, false
	}
	for _, k := range slices.Sorted(maps.Keys(s)) {
		var got map[string]any
		if strings.HasPrefix(k, "k:") && json.Unmarshal([]byte(k[2:]), &got) == nil && reflect.DeepEqual(got, want) {
			v, ok := s[k].(map[string]any)
			return v, ok
		}
	}
	return nil, false
}

// owners lists the field managers other than berth's apply whose sets hold the element at path, sorted.
func owners(mfs []metav1.ManagedFieldsEntry, path []string) []string {
	var out []string
	for _, mf := range mfs {
		if mf.FieldsV1 == nil || (mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply) {
			continue
		}
		var s fieldSet
		if json.Unmarshal(mf.FieldsV1.Raw, &s) == nil && s.has(path...) && !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	slices.Sort(out)
	return out
}
