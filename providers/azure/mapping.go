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
	// TagPreview is a preview's pull-request number (decimal) and TagHead the head commit a group was created from
	// (40 hex digits), on every group of a preview environment only.
	TagPreview = Tag(providers.LabelPreview)
	TagHead    = Tag(providers.LabelHead)
	// TagFields is a hash of the managed fields as berth wrote them (the fingerprint of the group's read-back): List
	// reads every field from the group itself, and uses this tag only to pick, among replicas of one spec, the one
	// edited by hand as the workload's observed spec.
	TagFields = "berth.dev-fields"
	// TagEntrypoint is set on the groups of a workload that gives args without a command: "<n>-<hash16>", the
	// number of leading elements of the container's command that are the image's entrypoint (read from its
	// registry) and a hash of them, so List reads the rest back as args, and a hand edit of the entrypoint part as
	// a command.
	TagEntrypoint = "berth.dev-entrypoint"
)

// Tag maps a berth label to an Azure tag name.
func Tag(label string) string { return strings.ReplaceAll(label, "/", "-") }

const (
	maxNameLen = 63
	gib        = 1 << 30
	// Azure's tag limits besides maxTags: names of at most 512 characters, values of at most 256.
	maxTagName, maxTagValue = 512, 256
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

// dnsScope is what a group's DNS name label names of its owner: the environment, and for a preview the berth
// instance before it, since every repository's berth has its pull request 42 ("<instance>-pr-42"; a base
// environment's label is what it always was).
func dnsScope(owner providers.Owner) string {
	if owner.Preview == 0 {
		return owner.Environment
	}
	return owner.Instance + "-" + owner.Environment
}

// dnsLabel is a group's DNS name label (unique per region, so it carries the index and hash as well); env is the
// owner's dnsScope.
func dnsLabel(prefix, env, workload string, i int, hash string) string {
	return fit(sanitize(prefix+"-"+env+"-"+workload), fmt.Sprintf("-%d-%s", i, sanitize(hash[:min(6, len(hash))])), maxNameLen)
}

// envName is the environment variable names ACI accepts (its InvalidEnvironmentVariable answer says so).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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

// argsOnly tells whether w gives args without a command: ACI's one command list replaces the image's entrypoint,
// so the group's command is the image's entrypoint (read from its registry) followed by the args.
func argsOnly(w schema.Workload) bool { return len(w.Command) == 0 && len(w.Args) > 0 }

// entrypointTag is the TagEntrypoint value for an entrypoint.
func entrypointTag(ep []string) string {
	return strconv.Itoa(len(ep)) + "-" + shortHash(strings.Join(ep, "\x00"), 16)
}

// splitEntrypoint reads a command back as args when the group's TagEntrypoint says its first n elements are the
// image's entrypoint as berth wrote it; otherwise (no tag, or the entrypoint part edited by hand) it is a command.
func splitEntrypoint(tags map[string]*string, cmd []string) (command, args []string) {
	v := tag(tags, TagEntrypoint)
	ns, _, ok := strings.Cut(v, "-")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 0 || n > len(cmd) || entrypointTag(cmd[:n]) != v {
		return cmd, nil
	}
	return nil, cmd[n:]
}

// groupFor is the container group of replica i of d; entrypoint is the image's entrypoint, used when the workload
// gives args without a command.
func groupFor(k wkey, d providers.Desired, vals map[string]resolvedSecret, entrypoint []string, i int, location, dnsPrefix string) armcontainerinstance.ContainerGroup {
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
	cmd := append([]string{}, w.Command...)
	if argsOnly(w) {
		cmd = append(cmd, entrypoint...)
	}
	for _, s := range append(cmd, w.Args...) {
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
			props.IPAddress.DNSNameLabel = ptr(dnsLabel(dnsPrefix, dnsScope(d.Owner), k.Workload, i, d.SpecHash))
		}
	}
	tags := map[string]*string{
		TagInstance: ptr(k.Instance), TagEnvironment: ptr(k.Environment), TagTarget: ptr(k.Target),
		TagWorkload: ptr(k.Workload), TagSpecHash: ptr(d.SpecHash), TagReplica: ptr(strconv.Itoa(i)),
	}
	if argsOnly(w) {
		tags[TagEntrypoint] = ptr(entrypointTag(entrypoint))
	}
	if d.Owner.Preview != 0 {
		tags[TagPreview] = ptr(strconv.Itoa(d.Owner.Preview))
		if d.Preview != nil && d.Preview.Head != "" && len(d.Preview.Head) <= maxTagValue {
			tags[TagHead] = ptr(d.Preview.Head)
		}
	}
	deliver(d, vals, props, tags)
	g := armcontainerinstance.ContainerGroup{Location: ptr(location), Tags: tags, Properties: props}
	tags[TagFields] = ptr(fingerprint(live(&g, readiness)))
	return g
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

// probeKind selects which of a container's probes a read-back takes the health check from. berth writes the same
// check as both; a hand edit of one of them shows as a change of the health check.
type probeKind int

const (
	readiness probeKind = iota
	liveness
)

// live reads the workload back from the group's own fields, never from a copy in tags: containers[0]'s image,
// command (ACI has one list: the workload's command and args together; or, after as many elements as
// TagEntrypoint counts when they hash to it, the args given without a command), environment variables (secure values are
// never returned: they read back empty), ports (public when the group's Public IP address lists them, with the
// host port equal to the port), resource requests and the probe's health check in whole seconds. Replicas is left
// zero: it is the number of groups.
func live(g *cg, probe probeKind) schema.Workload {
	w := schema.Workload{Name: tag(g.Tags, TagWorkload)}
	if g.Properties == nil || len(g.Properties.Containers) == 0 || g.Properties.Containers[0] == nil ||
		g.Properties.Containers[0].Properties == nil {
		return providers.Normalize(w)
	}
	c := g.Properties.Containers[0].Properties
	w.Image = deref(c.Image)
	var cmd []string
	for _, s := range c.Command {
		cmd = append(cmd, deref(s))
	}
	w.Command, w.Args = splitEntrypoint(g.Tags, cmd)
	for _, e := range c.EnvironmentVariables {
		if e == nil || e.Name == nil {
			continue
		}
		if w.Env == nil {
			w.Env = map[string]string{}
		}
		w.Env[*e.Name] = deref(e.Value)
	}
	readSecrets(g, c, &w)
	type pp struct {
		port  int32
		proto string
	}
	public := map[pp]bool{}
	if ip := g.Properties.IPAddress; ip != nil && deref(ip.Type) == armcontainerinstance.ContainerGroupIPAddressTypePublic {
		for _, p := range ip.Ports {
			if p != nil && p.Port != nil {
				public[pp{*p.Port, strings.ToLower(string(deref(p.Protocol)))}] = true
			}
		}
	}
	for _, p := range c.Ports {
		if p == nil || p.Port == nil {
			continue
		}
		proto := strings.ToLower(string(deref(p.Protocol)))
		if proto == "" {
			proto = "tcp"
		}
		pub := public[pp{*p.Port, proto}] || (proto == "tcp" && public[pp{*p.Port, ""}])
		port := schema.Port{Port: int(*p.Port), Protocol: proto, Public: pub}
		if pub {
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
	p := c.ReadinessProbe
	if probe == liveness {
		p = c.LivenessProbe
	}
	if p != nil {
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
	return providers.Normalize(w)
}

// Normalize is the form in which ACI reads a workload back: command and args as one command list (args without a
// command stay args: the entrypoint berth put before them is read back off), secure
// environment values empty (the API never returns them), the default requests (1 core, 1.5 GB) when none are set,
// memory rounded up to 0.1 GB, probe durations rounded up to whole seconds (at least 1; a zero start period stays
// unset), at least one retry, and port names dropped.
func (p *Provider) Normalize(w schema.Workload) schema.Workload { return normalize(w) }

func normalize(w schema.Workload) schema.Workload {
	if len(w.Args) > 0 && len(w.Command) > 0 {
		w.Command = append(append([]string{}, w.Command...), w.Args...)
		w.Args = nil
	}
	if len(w.Env) > 0 {
		env := make(map[string]string, len(w.Env))
		for k, v := range w.Env {
			if isSecret(k) {
				v = ""
			}
			env[k] = v
		}
		w.Env = env
	}
	if len(w.Ports) > 0 {
		ps := make([]schema.Port, len(w.Ports))
		for i, port := range w.Ports {
			port.Name = ""
			ps[i] = port
		}
		w.Ports = ps
	}
	cpu, mem := DefaultCPU, DefaultMemoryGB
	if w.Resources.CPUMillis > 0 {
		cpu = float64(w.Resources.CPUMillis) / 1000
	}
	if w.Resources.MemoryBytes > 0 {
		mem = memoryGB(w.Resources.MemoryBytes)
	}
	w.Resources.CPUMillis, w.Resources.MemoryBytes = int64(math.Round(cpu*1000)), int64(math.Round(mem*gib))
	if h := w.Health; h != nil && h.Kind() != "tcp" {
		n := *h
		n.Interval, n.Timeout = dur(seconds(h.Interval)), dur(seconds(h.Timeout))
		n.StartPeriod = 0
		if h.StartPeriod > 0 {
			n.StartPeriod = dur(seconds(h.StartPeriod))
		}
		n.Retries = max(h.Retries, 1)
		w.Health = &n
	}
	return providers.Normalize(w)
}

// fingerprint is a short hash of a read-back's managed fields (name and replicas left out).
func fingerprint(w schema.Workload) string {
	w.Name, w.Replicas, w.Provider = "", 0, ""
	b, _ := json.Marshal(providers.Normalize(w))
	return shortHash(string(b), 16)
}

// sameFields tells whether two read-backs agree on every managed field (name and replicas left out).
func sameFields(a, b schema.Workload) bool { return fingerprint(a) == fingerprint(b) }

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

// Provisioning states of a container group, as the ACI REST specification defines them
// (ContainerGroupProvisioningState): in progress, or settled.
var (
	// inProgress states end on their own: wait for them (bounded by ReadyTimeout).
	inProgress = []string{"Accepted", "Pending", "Creating", "Updating", "Deleting", "Repairing", "PreProvisioned"}
	// brokenStates are settled without the group running: it is replaced. Unhealthy and NotAccessible groups never
	// recover by themselves; NotSpecified is not a state an operation leaves a group in.
	brokenStates = []string{"Failed", "Canceled", "Unhealthy", "NotAccessible", "NotSpecified"}
)

// status sums up a group read with Get (list results carry no instance view): ready (provisioned, running, every
// container running), broken (in a failed or unhealthy provisioning state, stopped, failed or exited, or with a
// terminated container: it must be replaced), or neither (still coming up). state is the runtime's word.
func status(g *cg) (state string, ready, broken bool) {
	p := g.Properties
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
	case slices.Contains(brokenStates, prov):
		broken = true
	case prov == "Succeeded" && (inst == "Stopped" || inst == "Failed" || inst == "Succeeded"):
		broken = true // stopped by hand, or every container exited (with restartPolicy Always only a stop does that)
	case slices.Contains(inProgress, prov):
		broken = false
	}
	state = strings.ToLower(cstate)
	if state == "" {
		state = strings.ToLower(inst)
	}
	if prov != "Succeeded" && prov != "" {
		state = strings.ToLower(prov)
	}
	if state == "" {
		state = "unknown"
	}
	return state, running && !broken, broken
}

// transitioning tells whether an operation is in flight on the group (a state that ends on its own).
func transitioning(g *cg) bool {
	if g.Properties == nil {
		return false
	}
	prov := deref(g.Properties.ProvisioningState)
	return prov != "" && prov != "Succeeded" && !slices.Contains(brokenStates, prov)
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
