package azure

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Azure tag names cannot contain < > % & \ ? /, so each providers.Label* maps to a tag with "/" replaced by "-":
// berth.dev/instance → berth.dev-instance. Tag names are case-insensitive and values at most 256 characters.
var (
	TagInstance    = Tag(providers.LabelInstance)
	TagEnvironment = Tag(providers.LabelEnvironment)
	TagWorkload    = Tag(providers.LabelWorkload)
	TagTarget      = Tag(providers.LabelTarget)
	TagSpecHash    = Tag(providers.LabelSpecHash)
	TagReplica     = Tag(providers.LabelReplica)
	// TagArgs is how many trailing elements of the container's command are the workload's args (ACI has one
	// command list), for the read-back.
	TagArgs = "berth.dev-args"
)

// Tag maps a berth label to an Azure tag name.
func Tag(label string) string { return strings.ReplaceAll(label, "/", "-") }

const (
	maxNameLen = 63
	gib        = 1 << 30
)

// wkey identifies one owned workload on one target.
type wkey struct{ Instance, Environment, Target, Workload string }

func (k wkey) owns(tags map[string]*string) bool {
	return tag(tags, TagInstance) == k.Instance && tag(tags, TagEnvironment) == k.Environment &&
		tag(tags, TagTarget) == k.Target && tag(tags, TagWorkload) == k.Workload
}

func tag(tags map[string]*string, name string) string {
	for k, v := range tags { // tag names are case-insensitive
		if strings.EqualFold(k, name) && v != nil {
			return *v
		}
	}
	return ""
}

var dashes = regexp.MustCompile(`-+`)

// sanitize keeps a name part within ACI's alphabet: lower-case letters, digits, single dashes, no dash at the ends.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(dashes.ReplaceAllString(b.String(), "-"), "-")
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// fit joins a base and a suffix within max characters; a base that does not fit is cut and given a hash of the
// whole, so distinct bases stay distinct.
func fit(base, suffix string, max int) string {
	if len(base)+len(suffix) <= max {
		return base + suffix
	}
	h := shortHash(base, 8)
	cut := strings.TrimRight(base[:max-len(suffix)-len(h)-1], "-")
	return cut + "-" + h + suffix
}

// GroupName is the deterministic name of replica i of spec hash: berth-<instance>-<env>-<workload>-<i>-<hash6>,
// sanitised and cut to 63 characters with a hash when longer. A new spec gets a new name, so the new group runs
// beside the old one until it is ready.
func GroupName(instance, env, workload string, i int, hash string) string {
	base := sanitize(fmt.Sprintf("berth-%s-%s-%s", instance, env, workload))
	return fit(base, fmt.Sprintf("-%d-%s", i, sanitize(hash[:min(6, len(hash))])), maxNameLen)
}

// dnsLabel is a group's DNS name label (unique per region, so it carries the index and hash as well).
func dnsLabel(prefix, env, workload string, i int, hash string) string {
	return fit(sanitize(prefix+"-"+env+"-"+workload), fmt.Sprintf("-%d-%s", i, sanitize(hash[:min(6, len(hash))])), maxNameLen)
}

var secretName = regexp.MustCompile(`(?i)(secret|passw|token|credential|private|api_?key|access_?key|_key$|^key$)`)

// isSecret tells whether an env variable goes as a secureValue (never returned by the API).
func isSecret(name string) bool { return secretName.MatchString(name) }

func memoryGB(b int64) float64 { return math.Ceil(float64(b)*10/gib) / 10 }

func seconds(d schema.Duration) *int32 {
	s := int32(math.Ceil(d.D().Seconds()))
	if s < 1 {
		s = 1
	}
	return &s
}

func ptr[T any](v T) *T { return &v }

// groupFor is the container group of replica i of d.
func groupFor(k wkey, d providers.Desired, i int, location, dnsPrefix string) armcontainerinstance.ContainerGroup {
	w := d.Workload
	c := &armcontainerinstance.ContainerProperties{
		Image: ptr(w.Image),
		Resources: &armcontainerinstance.ResourceRequirements{Requests: &armcontainerinstance.ResourceRequests{
			CPU: ptr(DefaultCPU), MemoryInGB: ptr(DefaultMemoryGB)}},
	}
	if w.Resources.CPUMillis > 0 {
		c.Resources.Requests.CPU = ptr(float64(w.Resources.CPUMillis) / 1000)
	}
	if w.Resources.MemoryBytes > 0 {
		c.Resources.Requests.MemoryInGB = ptr(memoryGB(w.Resources.MemoryBytes))
	}
	for _, s := range append(append([]string{}, w.Command...), w.Args...) {
		c.Command = append(c.Command, ptr(s))
	}
	for _, name := range sortedKeys(w.Env) {
		e := &armcontainerinstance.EnvironmentVariable{Name: ptr(name)}
		if isSecret(name) {
			e.SecureValue = ptr(w.Env[name])
		} else {
			e.Value = ptr(w.Env[name])
		}
		c.EnvironmentVariables = append(c.EnvironmentVariables, e)
	}
	var public []*armcontainerinstance.Port
	for _, port := range w.Ports {
		cp := armcontainerinstance.ContainerNetworkProtocolTCP
		gp := armcontainerinstance.ContainerGroupNetworkProtocolTCP
		if port.Protocol == "udp" {
			cp, gp = armcontainerinstance.ContainerNetworkProtocolUDP, armcontainerinstance.ContainerGroupNetworkProtocolUDP
		}
		c.Ports = append(c.Ports, &armcontainerinstance.ContainerPort{Port: ptr(int32(port.Port)), Protocol: &cp})
		if port.Public {
			public = append(public, &armcontainerinstance.Port{Port: ptr(int32(port.Port)), Protocol: &gp})
		}
	}
	if h := w.Health; h != nil && h.Kind() != "tcp" {
		probe := func() *armcontainerinstance.ContainerProbe {
			p := &armcontainerinstance.ContainerProbe{PeriodSeconds: seconds(h.Interval), TimeoutSeconds: seconds(h.Timeout),
				FailureThreshold: ptr(int32(max(h.Retries, 1))), SuccessThreshold: ptr(int32(1))}
			if h.StartPeriod > 0 {
				p.InitialDelaySeconds = seconds(h.StartPeriod)
			}
			if h.HTTP != nil {
				p.HTTPGet = &armcontainerinstance.ContainerHTTPGet{Path: ptr(h.HTTP.Path), Port: ptr(int32(h.HTTP.Port)),
					Scheme: ptr(armcontainerinstance.SchemeHTTP)}
			} else {
				p.Exec = &armcontainerinstance.ContainerExec{}
				for _, s := range h.Command {
					p.Exec.Command = append(p.Exec.Command, ptr(s))
				}
			}
			return p
		}
		c.ReadinessProbe, c.LivenessProbe = probe(), probe()
	}
	props := &armcontainerinstance.ContainerGroupPropertiesProperties{
		OSType:        ptr(armcontainerinstance.OperatingSystemTypesLinux),
		RestartPolicy: ptr(armcontainerinstance.ContainerGroupRestartPolicyAlways),
		Containers:    []*armcontainerinstance.Container{{Name: ptr(containerName(w.Name)), Properties: c}},
	}
	if len(public) > 0 {
		props.IPAddress = &armcontainerinstance.IPAddress{Type: ptr(armcontainerinstance.ContainerGroupIPAddressTypePublic), Ports: public}
		if dnsPrefix != "" {
			props.IPAddress.DNSNameLabel = ptr(dnsLabel(dnsPrefix, k.Environment, k.Workload, i, d.SpecHash))
		}
	}
	tags := map[string]*string{
		TagInstance: ptr(k.Instance), TagEnvironment: ptr(k.Environment), TagTarget: ptr(k.Target),
		TagWorkload: ptr(k.Workload), TagSpecHash: ptr(d.SpecHash), TagReplica: ptr(strconv.Itoa(i)),
		TagArgs: ptr(strconv.Itoa(len(w.Args))),
	}
	return armcontainerinstance.ContainerGroup{Location: ptr(location), Tags: tags, Properties: props}
}

func containerName(workload string) string {
	if n := sanitize(workload); n != "" {
		return fit(n, "", maxNameLen)
	}
	return "app"
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// specOf reads the workload back from a group. Secure values are not returned by the API: they read back empty.
// Resources read back as requested (the defaults when the workload set none); probe durations in whole seconds.
func specOf(cg *armcontainerinstance.ContainerGroup, target string) schema.Workload {
	w := schema.Workload{Name: tag(cg.Tags, TagWorkload), Provider: target}
	if cg.Properties == nil || len(cg.Properties.Containers) == 0 || cg.Properties.Containers[0].Properties == nil {
		return w
	}
	c := cg.Properties.Containers[0].Properties
	w.Image = deref(c.Image)
	var cmd []string
	for _, s := range c.Command {
		cmd = append(cmd, deref(s))
	}
	nargs, _ := strconv.Atoi(tag(cg.Tags, TagArgs))
	nargs = min(max(nargs, 0), len(cmd))
	if n := len(cmd) - nargs; n > 0 {
		w.Command = cmd[:n]
	}
	if nargs > 0 {
		w.Args = cmd[len(cmd)-nargs:]
	}
	for _, e := range c.EnvironmentVariables {
		if e == nil || e.Name == nil {
			continue
		}
		if w.Env == nil {
			w.Env = map[string]string{}
		}
		w.Env[*e.Name] = deref(e.Value)
		if e.SecureValue != nil {
			w.Env[*e.Name] = *e.SecureValue
		}
	}
	public := map[int32]bool{}
	if ip := cg.Properties.IPAddress; ip != nil && ip.Type != nil && *ip.Type == armcontainerinstance.ContainerGroupIPAddressTypePublic {
		for _, p := range ip.Ports {
			if p != nil && p.Port != nil {
				public[*p.Port] = true
			}
		}
	}
	for _, p := range c.Ports {
		if p == nil || p.Port == nil {
			continue
		}
		port := schema.Port{Port: int(*p.Port), Protocol: "tcp", Public: public[*p.Port]}
		if p.Protocol != nil && *p.Protocol == armcontainerinstance.ContainerNetworkProtocolUDP {
			port.Protocol = "udp"
		}
		if port.Public {
			port.HostPort = port.Port
		}
		w.Ports = append(w.Ports, port)
	}
	if r := c.Resources; r != nil && r.Requests != nil {
		if r.Requests.CPU != nil {
			w.Resources.CPUMillis = int64(math.Round(*r.Requests.CPU * 1000))
		}
		if r.Requests.MemoryInGB != nil {
			w.Resources.MemoryBytes = int64(math.Round(*r.Requests.MemoryInGB * gib))
		}
	}
	if p := c.ReadinessProbe; p != nil {
		h := &schema.HealthCheck{Interval: dur(p.PeriodSeconds), Timeout: dur(p.TimeoutSeconds), StartPeriod: dur(p.InitialDelaySeconds)}
		if p.FailureThreshold != nil {
			h.Retries = int(*p.FailureThreshold)
		}
		switch {
		case p.HTTPGet != nil:
			h.HTTP = &schema.HTTPCheck{Path: deref(p.HTTPGet.Path)}
			if p.HTTPGet.Port != nil {
				h.HTTP.Port = int(*p.HTTPGet.Port)
			}
		case p.Exec != nil:
			for _, s := range p.Exec.Command {
				h.Command = append(h.Command, deref(s))
			}
		}
		w.Health = h
	}
	return w
}

func dur(s *int32) schema.Duration {
	if s == nil {
		return 0
	}
	return schema.Duration(time.Duration(*s) * time.Second)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// status sums up a group: ready (provisioned, running, every container running), broken (failed, stopped or a
// terminated container: it must be recreated), or neither (still coming up). state is the runtime's word.
func status(cg *armcontainerinstance.ContainerGroup) (state string, ready, broken bool) {
	p := cg.Properties
	if p == nil {
		return "unknown", false, false
	}
	prov := deref(p.ProvisioningState)
	inst := ""
	if p.InstanceView != nil {
		inst = deref(p.InstanceView.State)
	}
	running := prov == "Succeeded" && inst == "Running" && len(p.Containers) > 0
	cstate := ""
	for _, c := range p.Containers {
		s := ""
		if c != nil && c.Properties != nil && c.Properties.InstanceView != nil && c.Properties.InstanceView.CurrentState != nil {
			s = deref(c.Properties.InstanceView.CurrentState.State)
		}
		if s != "Running" {
			running = false
		}
		if cstate == "" || s != "Running" {
			cstate = s
		}
		if s == "Terminated" {
			broken = true
		}
	}
	switch {
	case prov == "Failed" || prov == "Canceled" || inst == "Stopped" || inst == "Failed":
		broken = true
	case prov == "Deleting":
		broken = false
	}
	state = strings.ToLower(cstate)
	if state == "" {
		state = strings.ToLower(prov)
	}
	if prov != "Succeeded" && prov != "" {
		state = strings.ToLower(prov)
	}
	return state, running && !broken, broken
}

// transitioning tells whether an operation is in flight on the group.
func transitioning(cg *armcontainerinstance.ContainerGroup) bool {
	if cg.Properties == nil {
		return false
	}
	switch deref(cg.Properties.ProvisioningState) {
	case "Succeeded", "Failed", "Canceled", "":
		return false
	}
	return true
}

// errorBody reads the ARM error code and message of a failed response (an error response or a failed operation).
func errorBody(re *azcore.ResponseError) (code, msg string) {
	if re.RawResponse == nil {
		return "", ""
	}
	b, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return "", ""
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil {
		return "", ""
	}
	return body.Error.Code, body.Error.Message
}
