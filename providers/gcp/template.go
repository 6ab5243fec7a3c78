package gcp

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Metadata keys of berth's templates.
const (
	metaContainer = "gce-container-declaration" // read by Container-Optimized OS's konlet agent
	metaSpec      = "berth-spec"                // the applied workload, JSON, for read-back
	cosImage      = "projects/cos-cloud/global/images/family/cos-stable"
)

// ContainerDeclaration is the one place that turns a workload into what runs on the VM: today the YAML of
// Container-Optimized OS's gce-container-declaration metadata (containers[0] with image, command, args, env;
// restartPolicy Always). Strings are written as JSON strings, which YAML reads unchanged. Google is replacing
// that startup agent; only this function would change.
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

// instanceTemplate maps a desired workload to its instance template.
func (p *Provider) instanceTemplate(d providers.Desired) (*computepb.InstanceTemplate, error) {
	spec := d.Workload
	spec.Pos = nil
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding the spec of %s: %w", d.Workload.Name, err)
	}
	nic := &computepb.NetworkInterface{Network: proto.String(p.network())}
	if sn := p.subnetwork(); sn != "" {
		nic.Subnetwork = proto.String(sn)
	}
	if slices.ContainsFunc(d.Workload.Ports, func(pt schema.Port) bool { return pt.Public }) {
		nic.AccessConfigs = []*computepb.AccessConfig{{Name: proto.String("external-nat"), Type: proto.String("ONE_TO_ONE_NAT")}}
	}
	m := marker{Instance: d.Owner.Instance, Env: d.Owner.Environment, Workload: d.Workload.Name, Target: d.Target, Spec: d.SpecHash}
	return &computepb.InstanceTemplate{
		Name:        proto.String(TemplateName(d.Owner, d.Workload.Name, d.SpecHash)),
		Description: proto.String(m.String()),
		Properties: &computepb.InstanceProperties{
			MachineType: proto.String(p.machineType),
			Labels:      labels(d),
			Tags:        &computepb.Tags{Items: []string{GroupName(d.Owner, d.Workload.Name)}},
			Disks: []*computepb.AttachedDisk{{
				Boot: proto.Bool(true), AutoDelete: proto.Bool(true), Type: proto.String("PERSISTENT"),
				InitializeParams: &computepb.AttachedDiskInitializeParams{SourceImage: proto.String(cosImage), DiskSizeGb: proto.Int64(10)},
			}},
			NetworkInterfaces: []*computepb.NetworkInterface{nic},
			Metadata: &computepb.Metadata{Items: []*computepb.Items{
				{Key: proto.String(metaContainer), Value: proto.String(ContainerDeclaration(d.Workload))},
				{Key: proto.String("google-logging-enabled"), Value: proto.String("true")},
				{Key: proto.String(metaSpec), Value: proto.String(string(specJSON))},
			}},
			ServiceAccounts: []*computepb.ServiceAccount{{Email: proto.String("default"), Scopes: []string{
				"https://www.googleapis.com/auth/devstorage.read_only",
				"https://www.googleapis.com/auth/logging.write",
			}}},
		},
	}, nil
}

// groupManager maps a desired workload to its regional managed instance group.
func (p *Provider) groupManager(d providers.Desired, templateLink string) *computepb.InstanceGroupManager {
	name := GroupName(d.Owner, d.Workload.Name)
	m := marker{Instance: d.Owner.Instance, Env: d.Owner.Environment, Workload: d.Workload.Name, Target: d.Target, Spec: d.SpecHash}
	return &computepb.InstanceGroupManager{
		Name:             proto.String(name),
		Description:      proto.String(m.String()),
		BaseInstanceName: proto.String(name),
		TargetSize:       proto.Int32(int32(d.Workload.Replicas)),
		Versions:         []*computepb.InstanceGroupManagerVersion{{Name: proto.String(d.SpecHash), InstanceTemplate: proto.String(templateLink)}},
		UpdatePolicy:     updatePolicy(),
	}
}

// zones is how many zones a regional group spreads over by default; GCE wants a regional group's fixed maxSurge to
// be 0 or at least that.
const zones = 3

// updatePolicy makes rollouts make-before-break: new instances (up to maxSurge) are up before an old one goes, and
// none is taken away first (maxUnavailable 0).
func updatePolicy() *computepb.InstanceGroupManagerUpdatePolicy {
	return &computepb.InstanceGroupManagerUpdatePolicy{
		Type:              proto.String("PROACTIVE"),
		MinimalAction:     proto.String("REPLACE"),
		MaxSurge:          &computepb.FixedOrPercent{Fixed: proto.Int32(zones)},
		MaxUnavailable:    &computepb.FixedOrPercent{Fixed: proto.Int32(0)},
		ReplacementMethod: proto.String("SUBSTITUTE"),
	}
}

// specOf reads back the workload stored in a template.
func specOf(t *computepb.InstanceTemplate) (schema.Workload, bool) {
	for _, it := range t.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() == metaSpec {
			var w schema.Workload
			if json.Unmarshal([]byte(it.GetValue()), &w) == nil {
				return w, true
			}
		}
	}
	return schema.Workload{}, false
}

// templateOf returns a template's name from its URL or name.
func templateOf(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }
