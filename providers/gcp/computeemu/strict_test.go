package computeemu

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"
)

// sdk returns the real SDK's clients on s.
func sdk(t *testing.T, s *Server) (*compute.InstanceTemplatesClient, *compute.RegionInstanceGroupManagersClient, *compute.RegionInstanceGroupsClient, *compute.RegionsClient) {
	t.Helper()
	ctx := context.Background()
	opts := []option.ClientOption{option.WithEndpoint(s.URL()), option.WithoutAuthentication()}
	ts, err1 := compute.NewInstanceTemplatesRESTClient(ctx, opts...)
	gs, err2 := compute.NewRegionInstanceGroupManagersRESTClient(ctx, opts...)
	igs, err3 := compute.NewRegionInstanceGroupsRESTClient(ctx, opts...)
	rs, err4 := compute.NewRegionsRESTClient(ctx, opts...)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close(); gs.Close(); igs.Close(); rs.Close() })
	return ts, gs, igs, rs
}

// refused checks that err is the Google JSON error a real Compute Engine gives: HTTP 400, one error item with
// reason, and a message naming field.
func refused(t *testing.T, what string, err error, reason, field string) {
	t.Helper()
	var ge *googleapi.Error
	switch {
	case err == nil:
		t.Errorf("%s: accepted, want a 400 %s", what, reason)
	case !errors.As(err, &ge):
		t.Errorf("%s: %v is not a *googleapi.Error", what, err)
	case ge.Code != 400 || len(ge.Errors) != 1 || ge.Errors[0].Reason != reason || !strings.Contains(ge.Message, field):
		t.Errorf("%s: %d %+v %q, want 400 %s naming %s", what, ge.Code, ge.Errors, ge.Message, reason, field)
	}
}

func sdkTemplate(name string) *computepb.InstanceTemplate {
	return &computepb.InstanceTemplate{Name: proto.String(name), Properties: &computepb.InstanceProperties{
		MachineType: proto.String("e2-small"),
		Disks: []*computepb.AttachedDisk{{Boot: proto.Bool(true), Type: proto.String("PERSISTENT"),
			InitializeParams: &computepb.AttachedDiskInitializeParams{SourceImage: proto.String("projects/cos-cloud/global/images/family/cos-stable")}}},
		NetworkInterfaces: []*computepb.NetworkInterface{{Network: proto.String("global/networks/default")}},
	}}
}

func fixed(n int32) *computepb.FixedOrPercent {
	return &computepb.FixedOrPercent{Fixed: proto.Int32(n)}
}

// TestRegionalGroupRefusals: what the real API refuses in a regional group's policies is refused, with its error.
func TestRegionalGroupRefusals(t *testing.T) {
	s := New(Options{AllowAnonymous: true})
	defer s.Close()
	ts, gs, _, _ := sdk(t, s)
	ctx := context.Background()
	if _, err := ts.Insert(ctx, &computepb.InsertInstanceTemplateRequest{Project: s.Project(), InstanceTemplateResource: sdkTemplate("t1")}); err != nil {
		t.Fatal(err)
	}
	s.Step(3)
	group := func(name string, edit func(g *computepb.InstanceGroupManager)) *computepb.InstanceGroupManager {
		g := &computepb.InstanceGroupManager{Name: proto.String(name), BaseInstanceName: proto.String(name), TargetSize: proto.Int32(1),
			Versions: []*computepb.InstanceGroupManagerVersion{{InstanceTemplate: proto.String("global/instanceTemplates/t1")}},
			UpdatePolicy: &computepb.InstanceGroupManagerUpdatePolicy{Type: proto.String("PROACTIVE"), MinimalAction: proto.String("REPLACE"),
				MaxSurge: fixed(3), MaxUnavailable: fixed(0), ReplacementMethod: proto.String("SUBSTITUTE")}}
		edit(g)
		return g
	}
	zones := func(zs ...string) *computepb.DistributionPolicy {
		dp := &computepb.DistributionPolicy{}
		for _, z := range zs {
			dp.Zones = append(dp.Zones, &computepb.DistributionPolicyZoneConfiguration{Zone: proto.String("zones/" + z)})
		}
		return dp
	}
	for _, c := range []struct {
		name   string
		edit   func(g *computepb.InstanceGroupManager)
		reason string
		field  string // "" when accepted
	}{
		{"berth's policy over the region's three zones", func(*computepb.InstanceGroupManager) {}, "", ""},
		{"maxSurge 1 over one zone", func(g *computepb.InstanceGroupManager) {
			g.DistributionPolicy, g.UpdatePolicy.MaxSurge = zones("europe-west1-b"), fixed(1)
		}, "", ""},
		{"maxSurge 2 over three zones", func(g *computepb.InstanceGroupManager) { g.UpdatePolicy.MaxSurge = fixed(2) },
			"invalid", "Fixed updatePolicy.maxSurge for regional managed instance group has to be either 0 or at least equal to the number of zones"},
		{"a zone the region lacks", func(g *computepb.InstanceGroupManager) {
			g.DistributionPolicy = zones("europe-west1-b", "europe-west1-c", "europe-west1-d")
			g.DistributionPolicy.Zones = append(g.DistributionPolicy.Zones, &computepb.DistributionPolicyZoneConfiguration{Zone: proto.String("zones/europe-west1-e")})
		}, "invalid", "resource.distributionPolicy.zones[3].zone"},
		{"maxUnavailable 1 over two zones", func(g *computepb.InstanceGroupManager) {
			g.DistributionPolicy, g.UpdatePolicy.MaxUnavailable = zones("europe-west1-b", "europe-west1-c"), fixed(1)
		}, "invalid", "resource.updatePolicy.maxUnavailable.fixed"},
		{"both 0", func(g *computepb.InstanceGroupManager) { g.UpdatePolicy.MaxSurge = fixed(0) }, "invalid", "cannot both be 0"},
		{"RECREATE with a surge", func(g *computepb.InstanceGroupManager) { g.UpdatePolicy.ReplacementMethod = proto.String("RECREATE") },
			"invalid", "maxSurge must be equal to 0 when replacement method is set to RECREATE"},
		{"RECREATE without surge", func(g *computepb.InstanceGroupManager) {
			g.UpdatePolicy.ReplacementMethod, g.UpdatePolicy.MaxSurge, g.UpdatePolicy.MaxUnavailable = proto.String("RECREATE"), fixed(0), fixed(3)
		}, "", ""},
		{"update type", func(g *computepb.InstanceGroupManager) { g.UpdatePolicy.Type = proto.String("ROLLING") }, "invalid", "resource.updatePolicy.type"},
		{"minimal action", func(g *computepb.InstanceGroupManager) { g.UpdatePolicy.MinimalAction = proto.String("RECREATE") }, "invalid", "resource.updatePolicy.minimalAction"},
		{"most disruptive action", func(g *computepb.InstanceGroupManager) {
			g.UpdatePolicy.MostDisruptiveAllowedAction = proto.String("DELETE")
		},
			"invalid", "resource.updatePolicy.mostDisruptiveAllowedAction"},
		{"replacement method", func(g *computepb.InstanceGroupManager) { g.UpdatePolicy.ReplacementMethod = proto.String("SWAP") },
			"invalid", "resource.updatePolicy.replacementMethod"},
		{"redistribution", func(g *computepb.InstanceGroupManager) {
			g.UpdatePolicy.InstanceRedistributionType = proto.String("EVEN")
		},
			"invalid", "resource.updatePolicy.instanceRedistributionType"},
		{"target shape", func(g *computepb.InstanceGroupManager) {
			g.DistributionPolicy = &computepb.DistributionPolicy{TargetShape: proto.String("SPREAD")}
		}, "invalid", "resource.distributionPolicy.targetShape"},
		{"a zone of another region", func(g *computepb.InstanceGroupManager) {
			g.DistributionPolicy = zones("us-east1-b", "us-east1-c", "us-east1-d")
		},
			"invalid", "resource.distributionPolicy.zones[0].zone"},
		{"list results", func(g *computepb.InstanceGroupManager) { g.ListManagedInstancesResults = proto.String("ALL") },
			"invalid", "resource.listManagedInstancesResults"},
		{"no template", func(g *computepb.InstanceGroupManager) { g.Versions = nil }, "required", "resource.instanceTemplate"},
	} {
		name := strings.ToLower(strings.NewReplacer(" ", "-", "'", "").Replace(c.name))
		_, err := gs.Insert(ctx, &computepb.InsertRegionInstanceGroupManagerRequest{Project: s.Project(), Region: s.Region(),
			InstanceGroupManagerResource: group(name, c.edit)})
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", c.name, err)
			}
			continue
		}
		refused(t, c.name, err, c.reason, c.field)
	}
}

// TestTemplateRefusals: the required fields and enum values of what berth sends in a template.
func TestTemplateRefusals(t *testing.T) {
	s := New(Options{AllowAnonymous: true})
	defer s.Close()
	ts, _, _, _ := sdk(t, s)
	for _, c := range []struct {
		name   string
		edit   func(pr *computepb.InstanceProperties)
		reason string
		field  string
	}{
		{"no machine type", func(pr *computepb.InstanceProperties) { pr.MachineType = nil }, "invalid", "resource.properties.machineType"},
		{"no disks", func(pr *computepb.InstanceProperties) { pr.Disks = nil }, "required", "resource.properties.disks"},
		{"no boot image", func(pr *computepb.InstanceProperties) { pr.Disks[0].InitializeParams = nil }, "required", "initializeParams.sourceImage"},
		{"disk type", func(pr *computepb.InstanceProperties) { pr.Disks[0].Type = proto.String("SSD") }, "invalid", "resource.properties.disks[0].type"},
		{"no network interface", func(pr *computepb.InstanceProperties) { pr.NetworkInterfaces = nil }, "required", "resource.properties.networkInterfaces"},
		{"access config type", func(pr *computepb.InstanceProperties) {
			pr.NetworkInterfaces[0].AccessConfigs = []*computepb.AccessConfig{{Type: proto.String("NAT")}}
		}, "invalid", "accessConfigs[0].type"},
		{"metadata key", func(pr *computepb.InstanceProperties) {
			pr.Metadata = &computepb.Metadata{Items: []*computepb.Items{{Key: proto.String("a key"), Value: proto.String("v")}}}
		}, "invalid", "resource.properties.metadata.items[0].key"},
		{"tag", func(pr *computepb.InstanceProperties) { pr.Tags = &computepb.Tags{Items: []string{"Web_Tag"}} }, "invalid", "resource.properties.tags.items[0]"},
	} {
		tp := sdkTemplate("t-" + strings.ToLower(strings.ReplaceAll(c.name, " ", "-")))
		c.edit(tp.Properties)
		_, err := ts.Insert(context.Background(), &computepb.InsertInstanceTemplateRequest{Project: s.Project(), InstanceTemplateResource: tp})
		refused(t, c.name, err, c.reason, c.field)
	}
}

// TestEnumsCoverSDK: the emulator's enum lists hold every value of the SDK's generated enums, and the values the
// discovery document adds that the generator dropped.
func TestEnumsCoverSDK(t *testing.T) {
	for _, c := range []struct {
		name  string
		sdk   map[int32]string
		ours  []string
		extra []string
	}{
		{"updatePolicy.type", computepb.InstanceGroupManagerUpdatePolicy_Type_name, enumUpdateType, []string{"OPPORTUNISTIC", "PROACTIVE"}},
		{"minimalAction", computepb.InstanceGroupManagerUpdatePolicy_MinimalAction_name, enumAction, []string{"NONE", "REFRESH", "REPLACE", "RESTART"}},
		{"mostDisruptiveAllowedAction", computepb.InstanceGroupManagerUpdatePolicy_MostDisruptiveAllowedAction_name, enumMostDisruptive, []string{"NONE", "REFRESH", "REPLACE", "RESTART"}},
		{"replacementMethod", computepb.InstanceGroupManagerUpdatePolicy_ReplacementMethod_name, enumReplacement, []string{"RECREATE", "SUBSTITUTE"}},
		{"instanceRedistributionType", computepb.InstanceGroupManagerUpdatePolicy_InstanceRedistributionType_name, enumRedistribution, []string{"NONE", "PROACTIVE"}},
		{"targetShape", computepb.DistributionPolicy_TargetShape_name, enumTargetShape, []string{"ANY", "ANY_SINGLE_ZONE", "BALANCED", "EVEN"}},
	} {
		for _, v := range c.sdk {
			if !strings.HasPrefix(v, "UNDEFINED_") && !slices.Contains(c.ours, v) {
				t.Errorf("%s: SDK value %s missing", c.name, v)
			}
		}
		if !slices.Equal(c.ours, c.extra) {
			t.Errorf("%s: %v, want the discovery document's %v", c.name, c.ours, c.extra)
		}
	}
}

// TestNamedPortsAndRegion: setNamedPorts shows in the group, the region lists its zones, and a bad named port is
// refused.
func TestNamedPortsAndRegion(t *testing.T) {
	s := New(Options{AllowAnonymous: true, Zones: []string{"europe-west1-b", "europe-west1-c", "europe-west1-d", "europe-west1-e"}})
	defer s.Close()
	ts, gs, igs, rs := sdk(t, s)
	ctx := context.Background()
	r, err := rs.Get(ctx, &computepb.GetRegionRequest{Project: s.Project(), Region: s.Region()})
	if err != nil || len(r.GetZones()) != 4 || !strings.HasSuffix(r.GetZones()[3], "/zones/europe-west1-e") {
		t.Fatalf("regions.get: %v, %v", r.GetZones(), err)
	}
	if _, err := ts.Insert(ctx, &computepb.InsertInstanceTemplateRequest{Project: s.Project(), InstanceTemplateResource: sdkTemplate("t1")}); err != nil {
		t.Fatal(err)
	}
	s.Step(3)
	g := &computepb.InstanceGroupManager{Name: proto.String("g"), BaseInstanceName: proto.String("g"), TargetSize: proto.Int32(1),
		InstanceTemplate: proto.String("global/instanceTemplates/t1"),
		UpdatePolicy:     &computepb.InstanceGroupManagerUpdatePolicy{MaxSurge: fixed(3), MaxUnavailable: fixed(0)}}
	_, err = gs.Insert(ctx, &computepb.InsertRegionInstanceGroupManagerRequest{Project: s.Project(), Region: s.Region(), InstanceGroupManagerResource: g})
	refused(t, "maxSurge 3 in a region of four zones", err, "invalid", "resource.updatePolicy.maxSurge.fixed")
	g.UpdatePolicy.MaxSurge = fixed(4)
	if _, err := gs.Insert(ctx, &computepb.InsertRegionInstanceGroupManagerRequest{Project: s.Project(), Region: s.Region(), InstanceGroupManagerResource: g}); err != nil {
		t.Fatal(err)
	}
	s.Step(3)
	set := func(ps ...*computepb.NamedPort) error {
		_, err := igs.SetNamedPorts(ctx, &computepb.SetNamedPortsRegionInstanceGroupRequest{Project: s.Project(), Region: s.Region(), InstanceGroup: "g",
			RegionInstanceGroupsSetNamedPortsRequestResource: &computepb.RegionInstanceGroupsSetNamedPortsRequest{NamedPorts: ps}})
		return err
	}
	if err := set(&computepb.NamedPort{Name: proto.String("tcp-8080"), Port: proto.Int32(8080)}); err != nil {
		t.Fatal(err)
	}
	s.Step(3)
	got, err := gs.Get(ctx, &computepb.GetRegionInstanceGroupManagerRequest{Project: s.Project(), Region: s.Region(), InstanceGroupManager: "g"})
	if err != nil || len(got.GetNamedPorts()) != 1 || got.GetNamedPorts()[0].GetPort() != 8080 || len(got.GetDistributionPolicy().GetZones()) != 4 ||
		got.GetDistributionPolicy().GetTargetShape() != "EVEN" {
		t.Fatalf("group after setNamedPorts: %v, %v", got, err)
	}
	refused(t, "named port name", set(&computepb.NamedPort{Name: proto.String("HTTP"), Port: proto.Int32(80)}), "invalid", "resource.namedPorts[0].name")
	refused(t, "named port number", set(&computepb.NamedPort{Name: proto.String("http"), Port: proto.Int32(0)}), "invalid", "resource.namedPorts[0].port")
}
