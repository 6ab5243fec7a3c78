package swarm

import (
	"encoding/json"
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
	"github.com/berth-dev/berth/schema"
)

// LabelSpec holds the applied workload as JSON on the service: List reads it back for field-level diffs.
const LabelSpec = "berth.dev/spec"

// maxNameLen is swarm's limit on service names (a DNS label).
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

// ServiceName is the deterministic name of a workload's service: berth-<instance>-<env>-<workload>.
func ServiceName(o providers.Owner, workload string) string {
	return fmt.Sprintf("berth-%s-%s-%s", sanitize(o.Instance), sanitize(o.Environment), sanitize(workload))
}

// NetworkName is the overlay network of one (instance, environment): berth-<instance>-<env>.
func NetworkName(o providers.Owner) string {
	// "-overlay": the Docker provider's per-environment bridge network is berth-<instance>-<env> on the same
	// engine, and a workload moving between the two must find each provider's own network.
	return fmt.Sprintf("berth-%s-%s-overlay", sanitize(o.Instance), sanitize(o.Environment))
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

// serviceSpec maps a desired workload to its service spec. network is the environment network (ID or name).
func serviceSpec(d providers.Desired, network string, monitor time.Duration) (swarm.ServiceSpec, error) {
	w := d.Workload
	k := keyOf(d)
	specJSON, err := json.Marshal(w)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("encode workload %s: %w", w.Name, err)
	}
	labels := k.labels()
	labels[providers.LabelSpecHash] = d.SpecHash
	svcLabels := maps.Clone(labels)
	svcLabels[LabelSpec] = string(specJSON)

	env := make([]string, 0, len(w.Env))
	for _, name := range slices.Sorted(maps.Keys(w.Env)) {
		env = append(env, name+"="+w.Env[name])
	}
	grace := StopGrace
	cs := &swarm.ContainerSpec{
		Image:           w.Image,
		Labels:          labels,
		Command:         slices.Clone(w.Command),
		Args:            slices.Clone(w.Args),
		Env:             env,
		StopGracePeriod: &grace,
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
	return spec, nil
}

// readBack is the workload as the service tells it: the spec label, with the image and replica count the service
// actually has.
func readBack(svc swarm.Service) schema.Workload {
	var w schema.Workload
	if s := svc.Spec.Labels[LabelSpec]; s != "" {
		_ = json.Unmarshal([]byte(s), &w) // a damaged label leaves what the service fields say below
	}
	w.Name = svc.Spec.Labels[providers.LabelWorkload]
	if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
		w.Image, _, _ = strings.Cut(cs.Image, "@") // an engine that pinned the digest keeps the tag before it
		if len(cs.Env) > 0 {
			w.Env = map[string]string{}
			for _, kv := range cs.Env {
				k, v, _ := strings.Cut(kv, "=")
				w.Env[k] = v
			}
		}
	}
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		w.Replicas = int(*m.Replicas)
	}
	return w
}

// replicasOf is the replica count of a service spec.
func replicasOf(s swarm.ServiceSpec) int {
	if m := s.Mode.Replicated; m != nil && m.Replicas != nil {
		return int(*m.Replicas)
	}
	return -1
}
