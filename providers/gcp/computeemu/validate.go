package computeemu

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
)

// Enum values as the Compute v1 discovery document lists them. The SDK's generated enums (computepb's *_name maps)
// are the starting point, but they drop a value that a sibling enum of the same message already declares (protobuf
// enum values share their enclosing scope): InstanceGroupManagerUpdatePolicy_Type has OPPORTUNISTIC but not
// PROACTIVE, MinimalAction and MostDisruptiveAllowedAction have no value at all. The lists below are the SDK's
// values plus the ones the discovery document adds; TestEnumsCoverSDK checks that no SDK value is missing.
var (
	enumUpdateType       = sdkEnum(computepb.InstanceGroupManagerUpdatePolicy_Type_name, "PROACTIVE")
	enumAction           = sdkEnum(computepb.InstanceGroupManagerUpdatePolicy_MinimalAction_name, "NONE", "REFRESH", "REPLACE", "RESTART")
	enumMostDisruptive   = sdkEnum(computepb.InstanceGroupManagerUpdatePolicy_MostDisruptiveAllowedAction_name, "NONE", "REFRESH", "REPLACE", "RESTART")
	enumReplacement      = sdkEnum(computepb.InstanceGroupManagerUpdatePolicy_ReplacementMethod_name)
	enumRedistribution   = sdkEnum(computepb.InstanceGroupManagerUpdatePolicy_InstanceRedistributionType_name, "NONE", "PROACTIVE")
	enumTargetShape      = sdkEnum(computepb.DistributionPolicy_TargetShape_name)
	enumListResults      = sdkEnum(computepb.InstanceGroupManager_ListManagedInstancesResults_name)
	enumDiskType         = sdkEnum(computepb.AttachedDisk_Type_name)
	enumAccessConfigType = sdkEnum(computepb.AccessConfig_Type_name)
)

// sdkEnum is the values of an SDK enum (without its UNDEFINED_ placeholder) and extra, sorted.
func sdkEnum(names map[int32]string, extra ...string) []string {
	out := append([]string(nil), extra...)
	for _, n := range names {
		if !strings.HasPrefix(n, "UNDEFINED_") && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// checkEnum refuses a set value outside values, as Compute refuses an unknown enum value (400 invalid).
func checkEnum(field string, v *string, values []string) *apiError {
	if v == nil || slices.Contains(values, *v) {
		return nil
	}
	return errorf(400, "invalid", "Invalid value for field '%s': '%s'. Must be one of [%s].", field, *v, strings.Join(values, ", "))
}

// zonesOf is the number of zones a group spreads over: its distribution policy's, else every zone of the region.
func (s *Server) zonesOf(g *computepb.InstanceGroupManager) int {
	if n := len(g.GetDistributionPolicy().GetZones()); n > 0 {
		return n
	}
	return len(s.opts.Zones)
}

// checkPolicies validates a group's distribution and update policies as GCE does for a regional group.
func (s *Server) checkPolicies(g *computepb.InstanceGroupManager) *apiError {
	dp := g.GetDistributionPolicy()
	if dp != nil {
		if e := checkEnum("resource.distributionPolicy.targetShape", dp.TargetShape, enumTargetShape); e != nil {
			return e
		}
	}
	seen := map[string]bool{}
	for i, z := range dp.GetZones() {
		name := templateName(z.GetZone())
		switch {
		case z.GetZone() == "":
			return errorf(400, "required", "Required field 'resource.distributionPolicy.zones[%d].zone' not specified", i)
		case !slices.Contains(s.opts.Zones, name):
			return errorf(400, "invalid", "Invalid value for field 'resource.distributionPolicy.zones[%d].zone': '%s'. Zone must be in the region %s.", i, z.GetZone(), s.opts.Region)
		case seen[name]:
			return errorf(400, "invalid", "Invalid value for field 'resource.distributionPolicy.zones[%d].zone': '%s'. Duplicate zone.", i, z.GetZone())
		}
		seen[name] = true
	}
	p := g.GetUpdatePolicy()
	if p == nil {
		return nil
	}
	for _, c := range []struct {
		field  string
		v      *string
		values []string
	}{
		{"resource.updatePolicy.type", p.Type, enumUpdateType},
		{"resource.updatePolicy.minimalAction", p.MinimalAction, enumAction},
		{"resource.updatePolicy.mostDisruptiveAllowedAction", p.MostDisruptiveAllowedAction, enumMostDisruptive},
		{"resource.updatePolicy.replacementMethod", p.ReplacementMethod, enumReplacement},
		{"resource.updatePolicy.instanceRedistributionType", p.InstanceRedistributionType, enumRedistribution},
	} {
		if e := checkEnum(c.field, c.v, c.values); e != nil {
			return e
		}
	}
	zones := s.zonesOf(g)
	surge, unavailable := p.GetMaxSurge(), p.GetMaxUnavailable()
	for _, f := range []struct {
		name string
		v    *computepb.FixedOrPercent
	}{{"maxSurge", surge}, {"maxUnavailable", unavailable}} {
		if f.v == nil {
			continue
		}
		switch {
		case f.v.Fixed != nil && f.v.Percent != nil:
			return errorf(400, "invalid", "Invalid value for field 'resource.updatePolicy.%s': '%s'. Only one of fixed or percent can be set.", f.name, jsonOf(f.v))
		case f.v.GetFixed() < 0 || f.v.GetPercent() < 0 || f.v.GetPercent() > 100:
			return errorf(400, "invalid", "Invalid value for field 'resource.updatePolicy.%s': '%s'. Must be greater than or equal to 0.", f.name, jsonOf(f.v))
		case f.v.Fixed != nil && f.v.GetFixed() != 0 && int(f.v.GetFixed()) < zones:
			// The message as GCE gives it (captured in terraform-example-foundation#427 for maxUnavailable).
			return errorf(400, "invalid", "Invalid value for field 'resource.updatePolicy.%s.fixed': '%d'. Fixed updatePolicy.%s for regional managed instance group has to be either 0 or at least equal to the number of zones.", f.name, f.v.GetFixed(), f.name)
		}
	}
	// An unset maxSurge or maxUnavailable defaults to the number of zones.
	if surge != nil && unavailable != nil && surge.GetFixed() == 0 && surge.Percent == nil && unavailable.GetFixed() == 0 && unavailable.Percent == nil {
		return errorf(400, "invalid", "Invalid value for field 'resource.updatePolicy.maxUnavailable': '0'. Fixed updatePolicy.maxSurge and updatePolicy.maxUnavailable cannot both be 0.")
	}
	if p.GetReplacementMethod() == "RECREATE" && (surge == nil || surge.GetFixed() != 0 || surge.GetPercent() != 0) {
		// As GCE gives it for a percent (magic-modules#8210); an unset maxSurge defaults to the zone count, not 0.
		return errorf(400, "invalid", "Invalid value for field 'resource.updatePolicy.maxSurge': '%s'. maxSurge must be equal to 0 when replacement method is set to RECREATE", jsonOf(surge))
	}
	return nil
}

func jsonOf(v *computepb.FixedOrPercent) string {
	if v == nil {
		return fmt.Sprintf("{  \"fixed\": %d}", 0)
	}
	b, _ := protojson.Marshal(v)
	return strings.Replace(string(b), "{", "{  ", 1)
}

// checkTemplateProperties validates what berth sends in an instance template's properties: the boot disk, the
// network interfaces, their access configs, metadata keys and network tags.
func checkTemplateProperties(pr *computepb.InstanceProperties) *apiError {
	disks := pr.GetDisks()
	if len(disks) == 0 {
		return errorf(400, "required", "Required field 'resource.properties.disks' not specified")
	}
	boots := 0
	for i, d := range disks {
		if e := checkEnum(fmt.Sprintf("resource.properties.disks[%d].type", i), d.Type, enumDiskType); e != nil {
			return e
		}
		if d.GetBoot() {
			boots++
			if d.GetInitializeParams().GetSourceImage() == "" && d.GetSource() == "" {
				return errorf(400, "required", "Required field 'resource.properties.disks[%d].initializeParams.sourceImage' not specified", i)
			}
		}
	}
	if boots != 1 || !disks[0].GetBoot() {
		return errorf(400, "invalid", "Invalid value for field 'resource.properties.disks': ''. Boot disk must be the first disk attached to the instance.")
	}
	if len(pr.GetNetworkInterfaces()) == 0 {
		return errorf(400, "required", "Required field 'resource.properties.networkInterfaces' not specified")
	}
	for i, nic := range pr.GetNetworkInterfaces() {
		for j, ac := range nic.GetAccessConfigs() {
			if e := checkEnum(fmt.Sprintf("resource.properties.networkInterfaces[%d].accessConfigs[%d].type", i, j), ac.Type, enumAccessConfigType); e != nil {
				return e
			}
		}
	}
	size := 0
	for i, it := range pr.GetMetadata().GetItems() {
		if !metaKey.MatchString(it.GetKey()) {
			return errorf(400, "invalid", "Invalid value for field 'resource.properties.metadata.items[%d].key': '%s'. Must be a match of regex '[a-zA-Z0-9-_]{1,128}'", i, it.GetKey())
		}
		size += len(it.GetKey()) + len(it.GetValue())
	}
	if size > 512<<10 {
		return errorf(400, "invalid", "Invalid value for field 'resource.properties.metadata': ''. Metadata total size exceeds 512 KB.")
	}
	for i, tag := range pr.GetTags().GetItems() {
		if !nameRE.MatchString(tag) {
			return errorf(400, "invalid", "Invalid value for field 'resource.properties.tags.items[%d]': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", i, tag)
		}
	}
	return nil
}

// checkNamedPorts validates a setNamedPorts request.
func checkNamedPorts(ps []*computepb.NamedPort) *apiError {
	for i, np := range ps {
		switch {
		case !nameRE.MatchString(np.GetName()):
			return errorf(400, "invalid", "Invalid value for field 'resource.namedPorts[%d].name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", i, np.GetName())
		case np.GetPort() < 1 || np.GetPort() > 65535:
			return errorf(400, "invalid", "Invalid value for field 'resource.namedPorts[%d].port': '%d'. Must be greater than or equal to 1 and less than or equal to 65535", i, np.GetPort())
		}
	}
	return nil
}
