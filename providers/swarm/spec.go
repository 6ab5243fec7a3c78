package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/schema"
)

// maxNameLen is swarm's limit on service and network names (a DNS label: "name must be 63 characters or fewer").
const maxNameLen = 63

// validName is swarm's service name rule.
var validName = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)

// wkey identifies one owned workload on one target.
type wkey struct {
	Instance, Environment, Target, Workload string
}

func keyOf(d providers.Desired) wkey {
	return wkey{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name}
}

// labels are the ownership labels of the workload's service and containers, without the spec hash.
func (k wkey) labels() map[string]string {
	return map[string]string{
		providers.LabelInstance:    k.Instance,
		providers.LabelEnvironment: k.Environment,
		providers.LabelTarget:      k.Target,
		providers.LabelWorkload:    k.Workload,
	}
}

// owns tells whether labels carry exactly this workload's ownership.
func (k wkey) owns(labels map[string]string) bool {
	for l, v := range k.labels() {
		if labels[l] != v {
			return false
		}
	}
	return true
}

// sanitize keeps a name component within swarm's [a-zA-Z0-9-] alphabet.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// ServiceName is the deterministic name of a workload's service: berth-<instance>-<env>-<workload>. A name over
// swarm's 63 characters (a long workload in a preview environment, "pr-2147483647") keeps its first characters
// and ends with a hash of the instance, environment and workload (see cutName); shorter names are never cut.
func ServiceName(o providers.Owner, workload string) string {
	name := fmt.Sprintf("berth-%s-%s-%s", sanitize(o.Instance), sanitize(o.Environment), sanitize(workload))
	if len(name) <= maxNameLen {
		return name
	}
	return cutName(name, o.Instance+"\x00"+o.Environment+"\x00"+workload, maxNameLen)
}

// nameHashLen is the length of the hash that ends a cut name.
const nameHashLen = 12

// cutName is name cut to limit characters, deterministically: its first limit-13 characters (without a trailing
// dash) and a hash of key, which holds the unsanitised parts, so two owners whose names sanitise alike stay apart.
func cutName(name, key string, limit int) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])[:nameHashLen]
	return strings.TrimRight(name[:limit-nameHashLen-1], "-_") + "-" + h
}

// NetworkName is the overlay network of one (instance, environment): berth-<instance>-<env>-overlay, cut like a
// service name (cutName) when over swarm's 63 characters, which limit network names too.
func NetworkName(o providers.Owner) string {
	// "-overlay": the Docker provider's per-environment bridge network is berth-<instance>-<env> on the same
	// engine, and a workload moving between the two must find each provider's own network.
	name := fmt.Sprintf("berth-%s-%s-overlay", sanitize(o.Instance), sanitize(o.Environment))
	if len(name) <= maxNameLen {
		return name
	}
	return cutName(name, o.Instance+"\x00"+o.Environment+"\x00overlay", maxNameLen)
}

// checkName says why name cannot be a service name, or nil.
func checkName(name string) error {
	if len(name) > maxNameLen || !validName.MatchString(name) {
		return providers.Permanent(fmt.Errorf("service name %q is not valid in swarm (a DNS label of at most %d "+
			"characters): shorten the instance, environment or workload name", name, maxNameLen))
	}
	return nil
}

// publishedPort is the port a public port is published at.
func publishedPort(p schema.Port) int {
	if p.HostPort != 0 {
		return p.HostPort
	}
	return p.Port
}

// serviceSpec maps a desired workload to its service spec with public ports published in ingress mode (see
// publishSpec). network is the environment network (ID or name).
func serviceSpec(d providers.Desired, network string, monitor time.Duration) (swarm.ServiceSpec, error) {
	return publishSpec(d, network, monitor, PublishIngress)
}

// publishSpec maps a desired workload to its service spec, its public ports published as publish says:
// PublishIngress at HostPort through the routing mesh, PublishHost in host mode at ports the engine picks (with
// LabelPublicPorts naming the host ports berth's proxy serves).
func publishSpec(d providers.Desired, network string, monitor time.Duration, publish string) (swarm.ServiceSpec, error) {
	w := d.Workload
	k := keyOf(d)
	labels := k.labels()
	labels[providers.LabelSpecHash] = d.SpecHash
	maps.Copy(labels, providers.PreviewLabels(d.Owner, d.Preview))
	svcLabels := maps.Clone(labels)
	svcLabels[LabelImage] = w.Image
	if s := providers.FormatSecretsRecord(w, d.Secrets); s != "" {
		svcLabels[LabelSecrets] = s
	}

	env := make([]string, 0, len(w.Env)+len(w.SecretEnv))
	for _, name := range slices.Sorted(maps.Keys(w.Env)) {
		env = append(env, name+"="+w.Env[name])
	}
	// Swarm secrets are files only: a secret set in the environment is a value of the container spec.
	for _, name := range slices.Sorted(maps.Keys(w.SecretEnv)) {
		env = append(env, name+"="+string(d.Secrets[w.SecretEnv[name]].Value))
	}
	grace := StopGrace
	cs := &swarm.ContainerSpec{
		Image:           w.Image,
		Labels:          labels,
		Command:         slices.Clone(w.Command),
		Args:            slices.Clone(w.Args),
		Env:             env,
		StopGracePeriod: &grace,
		Secrets:         secretRefs(d, "0", "0"),
	}
	if probed(w.Health) {
		l, err := healthLabel(w.Health)
		if err != nil {
			return swarm.ServiceSpec{}, err
		}
		svcLabels[LabelHealth] = l
	}
	if h := w.Health; h != nil && h.Kind() == "command" {
		cs.Healthcheck = &container.HealthConfig{
			Test:        append([]string{"CMD"}, h.Command...),
			Interval:    h.Interval.D(),
			Timeout:     h.Timeout.D(),
			Retries:     h.Retries,
			StartPeriod: h.StartPeriod.D(),
		}
	}
	var res *swarm.ResourceRequirements
	if w.Resources.CPUMillis > 0 || w.Resources.MemoryBytes > 0 {
		res = &swarm.ResourceRequirements{Limits: &swarm.Limit{
			NanoCPUs: w.Resources.CPUMillis * 1_000_000, MemoryBytes: w.Resources.MemoryBytes}}
	}
	delay := RestartDelay
	replicas := uint64(max(w.Replicas, 0))
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: ServiceName(d.Owner, w.Name), Labels: svcLabels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources:     res,
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: network, Aliases: []string{w.Name}}},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{
			Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionRollback,
			Monitor: monitor,
		},
		RollbackConfig: &swarm.UpdateConfig{
			Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionPause,
			Monitor: monitor,
		},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP},
	}
	if publish == PublishHost {
		ms := publicMappings(w)
		if len(ms) > 0 {
			svcLabels[LabelPublicPorts] = formatPublicPorts(ms)
		}
		for _, m := range ms {
			spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, swarm.PortConfig{
				Name: portName(w, m), Protocol: swarm.PortConfigProtocol(m.Protocol), TargetPort: uint32(m.Port),
				PublishMode: swarm.PortConfigPublishModeHost,
			})
		}
	} else {
		for _, p := range w.Ports {
			if !p.Public {
				continue // reachable on the environment network under the workload's name
			}
			proto := swarm.PortConfigProtocolTCP
			if p.Protocol == "udp" {
				proto = swarm.PortConfigProtocolUDP
			}
			spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, swarm.PortConfig{
				Name: p.Name, Protocol: proto, TargetPort: uint32(p.Port), PublishedPort: uint32(publishedPort(p)),
				PublishMode: swarm.PortConfigPublishModeIngress,
			})
		}
		sort.SliceStable(spec.EndpointSpec.Ports, func(i, j int) bool {
			return spec.EndpointSpec.Ports[i].PublishedPort < spec.EndpointSpec.Ports[j].PublishedPort
		})
	}
	if probed(w.Health) && !hostPublished(spec, checkPort(w.Health)) {
		// berth probes each task on its own node, at a port the engine publishes in host mode: the routing mesh
		// would pick any task, and needs IPVS.
		spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, swarm.PortConfig{Name: healthPortName,
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(checkPort(w.Health)),
			PublishMode: swarm.PortConfigPublishModeHost})
	}
	return spec, nil
}

// portName is the name of the public port of m in w.
func portName(w schema.Workload, m hostMapping) string {
	for _, p := range w.Ports {
		if p.Public && p.Port == m.Port && publishedPort(p) == m.HostPort && protocolOf(p) == m.Protocol {
			return p.Name
		}
	}
	return ""
}

// hostPublished tells whether spec publishes the TCP container port in host mode already.
func hostPublished(spec swarm.ServiceSpec, port int) bool {
	for _, pc := range spec.EndpointSpec.Ports {
		if pc.PublishMode == swarm.PortConfigPublishModeHost && int(pc.TargetPort) == port && pc.Protocol == swarm.PortConfigProtocolTCP {
			return true
		}
	}
	return false
}

// publishingOf says how a service publishes its public ports: PublishHost when it has LabelPublicPorts, else
// PublishIngress.
func publishingOf(s swarm.ServiceSpec) string {
	if s.Labels[LabelPublicPorts] != "" {
		return PublishHost
	}
	return PublishIngress
}

// readBack is the workload as the service's own spec says it, in Normalize form: the container spec's image (as
// berth wrote it when the engine only respelled or pinned it, see imageOf), command, args and env (without the variables LabelSecrets
// names: those read back as SecretEnv names), the files of its secret references that LabelSecrets names (by
// secret name), its command health check (else the HTTP or TCP check of LabelHealth, which berth probes), the
// task limits, the published ports (EndpointSpec: an ingress port is public at its PublishedPort; a port published
// in host mode at an engine-chosen port is public at the host port LabelPublicPorts names for it, else internal, as
// is one published in host mode by hand; the health port berth publishes for its probes is left out) and the
// replica count.
func readBack(svc swarm.Service) schema.Workload {
	s := svc.Spec
	w := schema.Workload{Name: s.Labels[providers.LabelWorkload], Replicas: replicasOf(s)}
	if w.Replicas < 0 {
		w.Replicas = 0 // global mode: not berth's
	}
	sl := providers.ParseSecretsRecord(s.Labels[LabelSecrets])
	if cs := s.TaskTemplate.ContainerSpec; cs != nil {
		w.Image = imageOf(cs.Image, s.Labels[LabelImage])
		w.Command = slices.Clone(cs.Command)
		w.Args = slices.Clone(cs.Args)
		for _, kv := range cs.Env {
			k, v, _ := strings.Cut(kv, "=")
			if n, secret := sl.Env[k]; secret {
				// A secret's value: read back as its name (a variable removed by hand reads as gone).
				if w.SecretEnv == nil {
					w.SecretEnv = map[string]string{}
				}
				w.SecretEnv[k] = n
				continue
			}
			if w.Env == nil {
				w.Env = map[string]string{}
			}
			w.Env[k] = v
		}
		for _, r := range cs.Secrets {
			if r.File == nil {
				continue
			}
			if n, ours := sl.Files[r.File.Name]; ours {
				if w.Files == nil {
					w.Files = map[string]schema.File{}
				}
				w.Files[r.File.Name] = schema.File{Secret: n}
			}
		}
		if h := cs.Healthcheck; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" {
			hc := &schema.HealthCheck{Interval: schema.Duration(h.Interval), Timeout: schema.Duration(h.Timeout),
				Retries: h.Retries, StartPeriod: schema.Duration(h.StartPeriod)}
			switch h.Test[0] {
			case "CMD":
				hc.Command = slices.Clone(h.Test[1:])
			case "CMD-SHELL":
				hc.Command = append([]string{"/bin/sh", "-c"}, h.Test[1:]...)
			}
			w.Health = hc
		}
	}
	if w.Health == nil {
		w.Health = labelHealth(s.Labels)
	}
	if r := s.TaskTemplate.Resources; r != nil && r.Limits != nil {
		w.Resources = schema.Resources{CPUMillis: r.Limits.NanoCPUs / 1_000_000, MemoryBytes: r.Limits.MemoryBytes}
	}
	if e := s.EndpointSpec; e != nil {
		hostPorts := parsePublicPorts(s.Labels[LabelPublicPorts])
		for _, pc := range e.Ports {
			if pc.Name == healthPortName && pc.PublishMode == swarm.PortConfigPublishModeHost {
				continue // berth's own way to the checked port, not a port of the workload
			}
			port := schema.Port{Name: pc.Name, Port: int(pc.TargetPort), Protocol: string(pc.Protocol)}
			switch {
			case pc.PublishMode == "" || pc.PublishMode == swarm.PortConfigPublishModeIngress:
				port.Public, port.HostPort = true, int(pc.PublishedPort)
			case pc.PublishedPort == 0:
				// Host mode at a port of the engine's choosing: public where LabelPublicPorts says berth's proxy
				// serves it (each entry once).
				i := slices.IndexFunc(hostPorts, func(m hostMapping) bool {
					return m.Port == port.Port && m.Protocol == port.Protocol
				})
				if i >= 0 {
					port.Public, port.HostPort = true, hostPorts[i].HostPort
					hostPorts = slices.Delete(hostPorts, i, i+1)
				}
			}
			w.Ports = append(w.Ports, port)
		}
	}
	w = providers.Normalize(w)
	sortPorts(w.Ports)
	return w
}

// LabelImage is the image reference as berth wrote it in the service's container spec. The engine's client
// rewrites a reference in its familiar form with a tag ("docker.io/library/app" becomes "app:latest"), and a
// service made with QueryRegistry has the digest of the tag appended ("app:1@sha256:..."): the label tells those
// rewritings of berth's own reference from an image changed by hand (see imageOf).
const LabelImage = "berth.dev/image"

// imageOf is a service's image as read back: wrote (LabelImage) when the live reference names the same image, or
// wrote's tag pinned to a digest where wrote has none (swarm's own pin); else the live reference as it is, a
// digest included. The live field decides; the label only says which spelling berth used.
func imageOf(live, wrote string) string {
	if wrote == "" || live == wrote {
		return live
	}
	l, err := registry.ParseReference(live)
	if err != nil {
		return live
	}
	w, err := registry.ParseReference(wrote)
	if err != nil {
		return live
	}
	if w.Digest == "" {
		l.Digest = "" // the manager pinned the tag berth gave
	}
	if l == w {
		return wrote
	}
	return live
}

// sortPorts orders ports as the service publishes them: by published port, then container port and protocol.
func sortPorts(ps []schema.Port) {
	slices.SortStableFunc(ps, func(a, b schema.Port) int {
		switch {
		case a.HostPort != b.HostPort:
			return a.HostPort - b.HostPort
		case a.Port != b.Port:
			return a.Port - b.Port
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
}

// Normalize is the form in which a service reads a workload back: internal ports left out (they are reached over
// the environment network at any port, and the service spec holds none) and public ports in publishing order.
// The image reads back as written (see imageOf).
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	return normalize(w)
}

func normalize(w schema.Workload) schema.Workload {
	w = providers.Normalize(w)
	var ps []schema.Port
	for _, port := range w.Ports {
		if port.Public {
			ps = append(ps, port)
		}
	}
	sortPorts(ps)
	w.Ports = ps
	return providers.Normalize(w)
}

// liveHash fingerprints the fields berth manages, replicas aside: equal for a service and a desired workload
// exactly when the service runs what is desired.
func liveHash(w schema.Workload) string { return providers.SpecHash(w) }

// replicasOf is the replica count of a service spec.
func replicasOf(s swarm.ServiceSpec) int {
	if m := s.Mode.Replicated; m != nil && m.Replicas != nil {
		return int(*m.Replicas)
	}
	return -1
}
