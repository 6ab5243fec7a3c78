package gcp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Metadata keys of berth's templates.
const (
	metaContainer = "gce-container-declaration" // read by Container-Optimized OS's konlet agent
	cosImage      = "projects/cos-cloud/global/images/family/cos-stable"
	natName       = "external-nat"
)

// ContainerDeclaration is the one place that turns a workload into what runs on the VM: today the YAML of
// Container-Optimized OS's gce-container-declaration metadata (containers[0] with image, command, args, env;
// restartPolicy Always). Strings are written as JSON strings, which YAML reads unchanged. Google is replacing
// that startup agent; only this function and containerOf would change.
func ContainerDeclaration(w schema.Workload) string {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	list := func(ss []string) string {
		parts := make([]string, len(ss))
		for i, s := range ss {
			parts[i] = q(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	var b strings.Builder
	b.WriteString("spec:\n  containers:\n")
	fmt.Fprintf(&b, "  - name: %s\n    image: %s\n", q(nameSafe(w.Name)), q(w.Image))
	if len(w.Command) > 0 {
		fmt.Fprintf(&b, "    command: %s\n", list(w.Command))
	}
	if len(w.Args) > 0 {
		fmt.Fprintf(&b, "    args: %s\n", list(w.Args))
	}
	if len(w.Env) > 0 {
		keys := make([]string, 0, len(w.Env))
		for k := range w.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("    env:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "    - name: %s\n      value: %s\n", q(k), q(w.Env[k]))
		}
	}
	b.WriteString("    stdin: false\n    tty: false\n  restartPolicy: Always\n")
	return b.String()
}

// container is what berth reads back of a gce-container-declaration: the first container's image, command, args
// and env, whoever wrote the YAML (berth, gcloud create-with-container, the console).
type container struct {
	Image   string   `json:"image"`
	Command []scalar `json:"command"`
	Args    []scalar `json:"args"`
	Env     []struct {
		Name  string `json:"name"`
		Value scalar `json:"value"`
	} `json:"env"`
}

// scalar is a YAML scalar read as the string the container gets: another tool may write `value: 8080` or
// `- true` unquoted.
type scalar string

func (s *scalar) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		*s = scalar(v)
	case nil:
		*s = ""
	default:
		*s = scalar(strings.TrimSpace(string(b)))
	}
	return nil
}

func strs(ss []scalar) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// containerOf parses a template's container declaration; ok is false when it has none or it does not parse.
func containerOf(t *computepb.InstanceTemplate) (container, bool) {
	for _, it := range t.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() != metaContainer {
			continue
		}
		var decl struct {
			Spec struct {
				Containers []container `json:"containers"`
			} `json:"spec"`
		}
		if yaml.Unmarshal([]byte(it.GetValue()), &decl) != nil || len(decl.Spec.Containers) == 0 {
			return container{}, false
		}
		return decl.Spec.Containers[0], true
	}
	return container{}, false
}

// public tells whether a template's instances get an external address (an access config on a network interface).
func public(t *computepb.InstanceTemplate) bool {
	for _, nic := range t.GetProperties().GetNetworkInterfaces() {
		if len(nic.GetAccessConfigs()) > 0 {
			return true
		}
	}
	return false
}

// liveSpec is the workload as the live objects run it: image, command, args and env from the container declaration
// of the group's current template, ports from the group's named ports (public when the template gives its instances
// an external address), replicas from the group's target size. Health and resources are never set: berth maps
// neither (see Normalize).
func liveSpec(name string, g *computepb.InstanceGroupManager, t *computepb.InstanceTemplate) schema.Workload {
	w := schema.Workload{Name: name, Replicas: int(g.GetTargetSize())}
	if t != nil {
		c, _ := containerOf(t)
		w.Image, w.Command, w.Args = c.Image, strs(c.Command), strs(c.Args)
		if m, ok := machineSizeOf(templateOf(t.GetProperties().GetMachineType())); ok {
			w.Resources = m.resources()
		}
		for _, e := range c.Env {
			if w.Env == nil {
				w.Env = map[string]string{}
			}
			w.Env[e.Name] = string(e.Value)
		}
		// Variables set from secrets read back as names: their values never leave this function.
		if sm, ok := secretsOf(t); ok {
			for v, n := range sm.Env {
				if _, ok := w.Env[v]; !ok {
					continue
				}
				delete(w.Env, v)
				if w.SecretEnv == nil {
					w.SecretEnv = map[string]string{}
				}
				w.SecretEnv[v] = n
			}
		}
	}
	for _, np := range g.GetNamedPorts() {
		pr, _, _ := strings.Cut(np.GetName(), "-")
		pt := schema.Port{Port: int(np.GetPort()), Protocol: pr}
		if pr != "tcp" && pr != "udp" { // a named port of someone else's naming: berth's own are "<proto>-<port>"
			pt.Protocol = "tcp"
		}
		if t != nil && public(t) {
			pt.Public, pt.HostPort = true, pt.Port
		}
		w.Ports = append(w.Ports, pt)
	}
	return providers.Normalize(w)
}

// Normalize implements providers.Normalizer: the form in which Compute Engine reads a workload back. Port names
// are not stored (named ports are "<protocol>-<port>"); resources are the size of the machine type chosen for them
// (machineTypeFor); the health check is in whole seconds with Compute Engine's defaults filled in (interval and
// timeout 5 s, the timeout at most the interval, retries 2).
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	orig := w
	w.Health = normalHealth(w)
	w.Resources = schema.Resources{}
	if m, ok := machineSizeOf(p.machineTypeOf(orig)); ok {
		w.Resources = m.resources()
	}
	if len(w.Ports) > 0 {
		ps := make([]schema.Port, len(w.Ports))
		for i, pt := range w.Ports {
			pt.Name = ""
			if pt.Public {
				pt.HostPort = pt.Port
			}
			ps[i] = pt
		}
		w.Ports = ps
	}
	return w
}

// namedPorts are the group's named ports for w: one "<protocol>-<port>" per port, in the workload's order.
func namedPorts(w schema.Workload) []*computepb.NamedPort {
	out := []*computepb.NamedPort{}
	for _, pt := range w.Ports {
		pr := strings.ToLower(pt.Protocol)
		if pr == "" {
			pr = "tcp"
		}
		out = append(out, &computepb.NamedPort{Name: proto.String(pr + "-" + strconv.Itoa(pt.Port)), Port: proto.Int32(int32(pt.Port))})
	}
	return out
}

func sameNamedPorts(a, b []*computepb.NamedPort) bool {
	return slices.EqualFunc(a, b, func(x, y *computepb.NamedPort) bool {
		return x.GetName() == y.GetName() && x.GetPort() == y.GetPort()
	})
}

// instanceTemplate maps a desired workload to its instance template, named name.
func (p *Provider) instanceTemplate(d providers.Desired, vals map[string]resolvedSecret, name string) *computepb.InstanceTemplate {
	nic := &computepb.NetworkInterface{Network: proto.String(p.network())}
	if sn := p.subnetwork(); sn != "" {
		nic.Subnetwork = proto.String(sn)
	}
	if slices.ContainsFunc(d.Workload.Ports, func(pt schema.Port) bool { return pt.Public }) {
		nic.AccessConfigs = []*computepb.AccessConfig{{Name: proto.String(natName), Type: proto.String("ONE_TO_ONE_NAT")}}
	}
	m := markerOf(d)
	items := []*computepb.Items{
		{Key: proto.String(metaContainer), Value: proto.String(ContainerDeclaration(withSecrets(d.Workload, vals)))},
		{Key: proto.String("google-logging-enabled"), Value: proto.String("true")},
	}
	if it := secretsItem(d, vals); it != nil {
		items = append(items, it)
	}
	return &computepb.InstanceTemplate{
		Name:        proto.String(name),
		Description: proto.String(m.String()),
		Properties: &computepb.InstanceProperties{
			MachineType: proto.String(p.machineTypeOf(d.Workload)),
			Labels:      labels(d),
			Tags:        &computepb.Tags{Items: []string{GroupName(d.Owner, d.Workload.Name)}},
			Disks: []*computepb.AttachedDisk{{
				Boot: proto.Bool(true), AutoDelete: proto.Bool(true), Type: proto.String("PERSISTENT"),
				InitializeParams: &computepb.AttachedDiskInitializeParams{SourceImage: proto.String(cosImage), DiskSizeGb: proto.Int64(10)},
			}},
			NetworkInterfaces: []*computepb.NetworkInterface{nic},
			Metadata:          &computepb.Metadata{Items: items},
			ServiceAccounts: []*computepb.ServiceAccount{{Email: proto.String("default"), Scopes: []string{
				"https://www.googleapis.com/auth/devstorage.read_only",
				"https://www.googleapis.com/auth/logging.write",
			}}},
		},
	}
}

// templateNames are the names the spec's template may have: TemplateName of the spec hash, and, when a template of
// that name exists with other settings (the target's machine type changed, or it was recreated by hand), a variant
// whose suffix hashes the spec hash with the target's template settings.
func (p *Provider) templateNames(owner providers.Owner, workload, specHash string) []string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"variant", specHash, p.machineType, p.network(), p.subnetwork(), cosImage}, "\x00")))
	return []string{TemplateName(owner, workload, specHash), TemplateName(owner, workload, hex.EncodeToString(sum[:])[:12])}
}

// machineTypeOf is the machine type of w's instances: the target's machineType, else chosen from w's resources
// (machineTypeFor; a workload no E2 type fits, refused by Validate, gets the default).
func (p *Provider) machineTypeOf(w schema.Workload) string {
	if mt, _ := machineTypeFor(p.machineType, w); mt != "" {
		return mt
	}
	return defaultMachineType
}

// settingsDiff names the first template field berth sets from the target's settings that t has otherwise ("" when
// none): the machine type (mt; "" to skip it: List, where the spec is not known, checks only the target's setting),
// the boot image, the network and subnetwork.
func (p *Provider) settingsDiff(t *computepb.InstanceTemplate, mt string) string {
	pr := t.GetProperties()
	switch {
	case mt != "" && templateOf(pr.GetMachineType()) != mt:
		return fmt.Sprintf("machine type %s, the spec's is %s", templateOf(pr.GetMachineType()), mt)
	case len(pr.GetDisks()) == 0 || pr.GetDisks()[0].GetInitializeParams().GetSourceImage() != cosImage:
		return "boot disk image"
	case len(pr.GetNetworkInterfaces()) != 1:
		return "network interfaces"
	case !sameRef(pr.GetNetworkInterfaces()[0].GetNetwork(), p.network()):
		return "network " + pr.GetNetworkInterfaces()[0].GetNetwork()
	case !sameRef(pr.GetNetworkInterfaces()[0].GetSubnetwork(), p.subnetwork()):
		return "subnetwork " + pr.GetNetworkInterfaces()[0].GetSubnetwork()
	}
	return ""
}

// sameRef compares resource references given as names, partial or full URLs ("global/networks/default").
func sameRef(live, want string) bool {
	if live == want {
		return true
	}
	if live == "" || want == "" {
		return false
	}
	return strings.HasSuffix(live, "/"+strings.TrimPrefix(want, "/"))
}

// templateDiff names the first managed field in which live differs from want ("" when none): the target's
// settings, the container (image, command, args, env), the external address, the spec-hash label.
func (p *Provider) templateDiff(live, want *computepb.InstanceTemplate) string {
	if s := p.settingsDiff(live, templateOf(want.GetProperties().GetMachineType())); s != "" {
		return s
	}
	lc, ok1 := containerOf(live)
	wc, _ := containerOf(want)
	env := func(c container) map[string]string {
		m := map[string]string{}
		for _, e := range c.Env {
			m[e.Name] = string(e.Value)
		}
		return m
	}
	switch {
	case !ok1:
		return "no container declaration"
	case lc.Image != wc.Image:
		return "image " + lc.Image
	case !slices.Equal(strs(lc.Command), strs(wc.Command)):
		return "command"
	case !slices.Equal(strs(lc.Args), strs(wc.Args)):
		return "args"
	case !maps.Equal(env(lc), env(wc)):
		return "env"
	case public(live) != public(want):
		return "external address"
	case specLabel(live) != specLabel(want):
		return "spec-hash label " + specLabel(live)
	case metaValue(live, metaSecrets) != metaValue(want, metaSecrets):
		return "secrets metadata"
	}
	return ""
}

// specLabel is the spec hash a template says it was made from.
func specLabel(t *computepb.InstanceTemplate) string {
	return t.GetProperties().GetLabels()[LabelKey(providers.LabelSpecHash)]
}

// groupManager maps a desired workload to its regional managed instance group, spread over zones.
func (p *Provider) groupManager(d providers.Desired, templateLink string, zones []string) *computepb.InstanceGroupManager {
	name := GroupName(d.Owner, d.Workload.Name)
	m := markerOf(d)
	dp := &computepb.DistributionPolicy{}
	for _, z := range zones {
		dp.Zones = append(dp.Zones, &computepb.DistributionPolicyZoneConfiguration{Zone: proto.String("zones/" + z)})
	}
	return &computepb.InstanceGroupManager{
		Name:                proto.String(name),
		Description:         proto.String(m.String()),
		BaseInstanceName:    proto.String(name),
		TargetSize:          proto.Int32(int32(d.Workload.Replicas)),
		Versions:            []*computepb.InstanceGroupManagerVersion{{Name: proto.String(d.SpecHash), InstanceTemplate: proto.String(templateLink)}},
		DistributionPolicy:  dp,
		UpdatePolicy:        updatePolicy(len(zones)),
		AutoHealingPolicies: p.autohealing(d),
	}
}

// updatePolicy makes rollouts make-before-break: new instances (up to maxSurge) are up before an old one goes, and
// none is taken away first (maxUnavailable 0). A regional group's fixed maxSurge must be 0 or at least its number of
// zones, so it is exactly that (at least 1).
func updatePolicy(zones int) *computepb.InstanceGroupManagerUpdatePolicy {
	return &computepb.InstanceGroupManagerUpdatePolicy{
		Type:              proto.String("PROACTIVE"),
		MinimalAction:     proto.String("REPLACE"),
		MaxSurge:          &computepb.FixedOrPercent{Fixed: proto.Int32(int32(max(1, zones)))},
		MaxUnavailable:    &computepb.FixedOrPercent{Fixed: proto.Int32(0)},
		ReplacementMethod: proto.String("SUBSTITUTE"),
	}
}

// samePolicy tells whether a group's live update policy is berth's in the fields berth sets.
func samePolicy(live, want *computepb.InstanceGroupManagerUpdatePolicy) bool {
	return live.GetType() == want.GetType() && live.GetMinimalAction() == want.GetMinimalAction() &&
		live.GetReplacementMethod() == want.GetReplacementMethod() &&
		live.GetMaxSurge().GetFixed() == want.GetMaxSurge().GetFixed() && live.GetMaxSurge().Percent == nil &&
		live.GetMaxUnavailable().GetFixed() == want.GetMaxUnavailable().GetFixed() && live.GetMaxUnavailable().Percent == nil
}

// groupZones are the zone names of a group's distribution policy.
func groupZones(g *computepb.InstanceGroupManager) []string {
	var out []string
	for _, z := range g.GetDistributionPolicy().GetZones() {
		out = append(out, templateOf(z.GetZone()))
	}
	return out
}

// templateOf returns a resource's name from its URL or name.
func templateOf(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

// metaValue is a template's metadata value of key ("" when absent).
func metaValue(t *computepb.InstanceTemplate, key string) string {
	for _, it := range t.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() == key {
			return it.GetValue()
		}
	}
	return ""
}
