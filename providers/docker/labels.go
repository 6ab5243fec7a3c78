package docker

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Labels beyond the shared ownership labels of package providers.
const (
	// LabelPublicPorts lists the public ports as "hostPort:containerPort" pairs, comma separated: the proxy
	// configuration. The background sync serves the public ports from it, and List reads them back from it.
	LabelPublicPorts = "berth.dev/public-ports"
	// LabelHealth holds an HTTP or TCP health check as JSON (defaults filled in): the check berth's prober runs
	// against the container, and the one List reads back. Command checks are the engine's own Healthcheck.
	LabelHealth = "berth.dev/health"
	// LabelLiveHash is the fingerprint (providers.SpecHash) of the workload as the container reads back when berth
	// made it. It holds no value of its own: a container whose live fields no longer hash to it was changed by
	// hand, and List shows that replica's fields first.
	LabelLiveHash = "berth.dev/live-hash"
)

// wkey identifies one owned workload on one target.
type wkey struct {
	Instance, Environment, Target, Workload string
}

func (k wkey) String() string {
	return k.Instance + "/" + k.Environment + "/" + k.Target + "/" + k.Workload
}

// ownerFilterLabels are the labels that select the containers of one workload.
func (k wkey) labels() map[string]string {
	return map[string]string{
		providers.LabelInstance:    k.Instance,
		providers.LabelEnvironment: k.Environment,
		providers.LabelTarget:      k.Target,
		providers.LabelWorkload:    k.Workload,
	}
}

// keyOf reads the workload key from a container's labels.
func keyOf(labels map[string]string) wkey {
	return wkey{
		Instance:    labels[providers.LabelInstance],
		Environment: labels[providers.LabelEnvironment],
		Target:      labels[providers.LabelTarget],
		Workload:    labels[providers.LabelWorkload],
	}
}

// owns tells whether labels carry exactly this workload's ownership.
func (k wkey) owns(labels map[string]string) bool {
	return labels != nil && keyOf(labels) == k
}

// sanitize keeps a name component within Docker's [a-zA-Z0-9_.-] alphabet.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// containerName is deterministic, so a repeat after a crash finds what the first attempt made.
func containerName(k wkey, hash string, index int) string {
	return fmt.Sprintf("berth-%s-%s-%s-%s-%d", sanitize(k.Instance), sanitize(k.Environment), sanitize(k.Workload),
		sanitize(hash), index)
}

// networkName is the bridge network of one (instance, environment).
func networkName(instance, env string) string {
	return fmt.Sprintf("berth-%s-%s", sanitize(instance), sanitize(env))
}

// publicMapping is one public port: the stable host port and the container port behind it.
type publicMapping struct {
	HostPort, ContainerPort int
}

func publicPorts(w schema.Workload) []publicMapping {
	var out []publicMapping
	for _, p := range w.Ports {
		if !p.Public || p.Protocol == "udp" {
			continue
		}
		hp := p.HostPort
		if hp == 0 {
			hp = p.Port
		}
		out = append(out, publicMapping{HostPort: hp, ContainerPort: p.Port})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].HostPort < out[j].HostPort })
	return out
}

func formatPublicPorts(ms []publicMapping) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%d:%d", m.HostPort, m.ContainerPort)
	}
	return strings.Join(parts, ",")
}

func parsePublicPorts(s string) ([]publicMapping, error) {
	if s == "" {
		return nil, nil
	}
	var out []publicMapping
	for _, part := range strings.Split(s, ",") {
		h, c, ok := strings.Cut(part, ":")
		hp, err1 := strconv.Atoi(h)
		cp, err2 := strconv.Atoi(c)
		if !ok || err1 != nil || err2 != nil || hp <= 0 || cp <= 0 {
			return nil, fmt.Errorf("label %s: bad entry %q", LabelPublicPorts, part)
		}
		out = append(out, publicMapping{HostPort: hp, ContainerPort: cp})
	}
	return out, nil
}

// containerLabels are every label a replica carries; want is the workload as the container will read back.
func containerLabels(k wkey, d providers.Desired, index int, want schema.Workload) (map[string]string, error) {
	l := k.labels()
	l[providers.LabelSpecHash] = d.SpecHash
	l[providers.LabelReplica] = strconv.Itoa(index)
	l[LabelLiveHash] = liveHash(want)
	if s := providers.FormatSecretsRecord(d.Workload, d.Secrets); s != "" {
		l[LabelSecrets] = s
	}
	if pp := publicPorts(d.Workload); len(pp) > 0 {
		l[LabelPublicPorts] = formatPublicPorts(pp)
	}
	maps.Copy(l, providers.PreviewLabels(d.Owner, d.Preview))
	if h := withDefaults(d.Workload.Health); h != nil && h.Kind() != "command" {
		b, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("encode health check of workload %s: %w", k.Workload, err)
		}
		l[LabelHealth] = string(b)
	}
	return l, nil
}

// replicaIndex reads the replica label; -1 when missing or malformed.
func replicaIndex(labels map[string]string) int {
	i, err := strconv.Atoi(labels[providers.LabelReplica])
	if err != nil || i < 0 {
		return -1
	}
	return i
}
