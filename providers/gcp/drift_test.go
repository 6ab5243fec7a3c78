package gcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

// observed lists until ok holds for the one workload (each request advances the emulator), or fails.
func observed(t *testing.T, p *gcp.Provider, ok func(providers.Observed) bool) providers.Observed {
	t.Helper()
	var last []providers.Observed
	for range 200 {
		obs, err := p.List(ctx(t), owner, "gce")
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) == 1 && ok(obs[0]) {
			return obs[0]
		}
		last = obs
	}
	t.Fatalf("List never showed what was expected; last: %+v", last)
	return providers.Observed{}
}

func hashes(o providers.Observed) []string {
	var out []string
	for _, r := range o.Replicas {
		out = append(out, r.SpecHash)
	}
	return out
}

// TestListReadsLiveFields: a template written by another tool (its own YAML) and named ports set by hand read back
// field by field; nothing comes from a copy berth stored.
func TestListReadsLiveFields(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	o := observed(t, p, func(providers.Observed) bool { return true })
	want := p.Normalize(providers.Normalize(w))
	want.Provider = ""
	if got, _ := json.Marshal(o.Spec); string(got) != string(mustJSON(t, want)) {
		t.Fatalf("untouched workload reads back\n%s\nwant\n%s", got, mustJSON(t, want))
	}
	h := byHand(t, emu, owner, option.WithoutAuthentication())
	h.container(func(c map[string]any) {
		c["image"] = "europe-docker.pkg.dev/berth/app:hand"
		c["command"] = []any{"/bin/app", "--flag"}
		c["env"] = []any{map[string]any{"name": "ONLY", "value": "this"}}
	})(ctx(t), t, "web")
	h.namedPorts(&computepb.NamedPort{Name: proto.String("udp-53"), Port: proto.Int32(53)}, &computepb.NamedPort{Name: proto.String("http"), Port: proto.Int32(80)})(ctx(t), t, "web")
	h.resize(4)(ctx(t), t, "web")
	o = observed(t, p, func(o providers.Observed) bool { return o.Spec.Replicas == 4 && len(o.Spec.Ports) == 2 })
	s := o.Spec
	if s.Image != "europe-docker.pkg.dev/berth/app:hand" || strings.Join(s.Command, " ") != "/bin/app --flag" || strings.Join(s.Args, " ") != "serve" ||
		len(s.Env) != 1 || s.Env["ONLY"] != "this" || s.Ports[0] != (schema.Port{Port: 53, Protocol: "udp"}) || s.Ports[1] != (schema.Port{Port: 80, Protocol: "tcp"}) {
		t.Fatalf("hand edits read back as %+v", s)
	}
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	o = observed(t, p, func(o providers.Observed) bool { return o.Spec.Replicas == 2 })
	if got, _ := json.Marshal(o.Spec); string(got) != string(mustJSON(t, want)) {
		t.Fatalf("after the repair\n%s\nwant\n%s", got, mustJSON(t, want))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMachineTypeDrift: the group rolled by hand to a copy of berth's template on another machine type reads back
// that machine type's resources (drift at resources.cpu and resources.memory), and one Apply rolls the group back
// to berth's template.
func TestMachineTypeDrift(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	d := desired(w)
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	h := byHand(t, emu, owner, option.WithoutAuthentication())
	h.copyTemplate(ctx(t), t, "web", func(pr *computepb.InstanceProperties) { pr.MachineType = proto.String("e2-medium") })
	medium := schema.Resources{CPUMillis: 1000, MemoryBytes: 4 << 30}
	observed(t, p, func(o providers.Observed) bool {
		return len(o.Replicas) == 2 && o.Spec.Resources == medium
	})
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	o := observed(t, p, func(providers.Observed) bool { return true })
	if o.SpecHash != d.SpecHash || strings.Join(hashes(o), ",") != d.SpecHash+","+d.SpecHash || o.Spec.Resources != p.Normalize(w).Resources {
		t.Fatalf("after the repair: %+v", o)
	}
	if ts := emu.Templates(); len(ts) != 1 || ts[0] != gcp.TemplateName(owner, "web", d.SpecHash) {
		t.Errorf("templates after the repair: %v", ts)
	}
}

// TestTargetSettingsChanged: the target's machine type changes while the spec does not; the template of the spec's
// name holds the old one and is in use, so Apply makes the variant and rolls to it.
func TestTargetSettingsChanged(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	w := referenceWorkload("web")
	d := desired(w)
	if err := anonymous(t, emu).Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	p := anonymous(t, emu, "machineType", "e2-medium")
	o := observed(t, p, func(providers.Observed) bool { return true })
	if strings.Join(hashes(o), ",") != "," {
		t.Fatalf("replicas on the old machine type count as the spec: %+v", o)
	}
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	o = observed(t, p, func(providers.Observed) bool { return true })
	if strings.Join(hashes(o), ",") != d.SpecHash+","+d.SpecHash {
		t.Fatalf("after the apply: %+v", o)
	}
	ts := emu.Templates()
	if len(ts) != 1 || ts[0] == gcp.TemplateName(owner, "web", d.SpecHash) || !strings.HasPrefix(ts[0], gcp.GroupName(owner, "web")+"-") {
		t.Errorf("templates: %v, want the variant alone", ts)
	}
	if err := p.Apply(ctx(t), d); err != nil { // idempotent: the variant is found again
		t.Fatal(err)
	}
	if ts2 := emu.Templates(); strings.Join(ts2, ",") != strings.Join(ts, ",") {
		t.Errorf("a second apply changed the templates: %v → %v", ts, ts2)
	}
}

// TestRecreatedUnderBerthsName: the spec's template deleted by hand and made again under its name with another
// image; the names and labels say the spec, the live fields do not: List shows the image and Apply rolls to a
// template that holds the spec.
func TestRecreatedUnderBerthsName(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	d := desired(w)
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	h := byHand(t, emu, owner, option.WithoutAuthentication())
	berths := gcp.TemplateName(owner, "web", d.SpecHash)
	h.deleteTemplate(ctx(t), t, "web")
	cp, err := h.templates.Get(ctx(t), &computepb.GetInstanceTemplateRequest{Project: emu.Project(), InstanceTemplate: gcp.GroupName(owner, "web") + "-hand1"})
	if err != nil {
		t.Fatal(err)
	}
	cp.Name, cp.Id, cp.SelfLink, cp.CreationTimestamp, cp.Kind = proto.String(berths), nil, nil, nil, nil
	for _, it := range cp.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() == "gce-container-declaration" {
			it.Value = proto.String(strings.Replace(it.GetValue(), "app:1", "app:impostor", 1))
		}
	}
	op, err := h.templates.Insert(ctx(t), &computepb.InsertInstanceTemplateRequest{Project: emu.Project(), InstanceTemplateResource: cp})
	wait(ctx(t), t, op, err)
	op, err = h.groups.Patch(ctx(t), &computepb.PatchRegionInstanceGroupManagerRequest{Project: emu.Project(), Region: emu.Region(),
		InstanceGroupManager: gcp.GroupName(owner, "web"), InstanceGroupManagerResource: &computepb.InstanceGroupManager{
			Versions: []*computepb.InstanceGroupManagerVersion{{InstanceTemplate: proto.String("global/instanceTemplates/" + berths)}}}})
	wait(ctx(t), t, op, err)
	o := observed(t, p, func(o providers.Observed) bool { return strings.HasSuffix(o.Spec.Image, "app:impostor") })
	if o.SpecHash != d.SpecHash || len(o.Missing) != 0 {
		t.Logf("observed: %+v", o)
	}
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	o = observed(t, p, func(providers.Observed) bool { return true })
	if o.Spec.Image != w.Image || strings.Join(hashes(o), ",") != d.SpecHash+","+d.SpecHash {
		t.Fatalf("after the repair: %+v", o)
	}
}

// TestListCachesTemplates: a template made by hand is read once, then served from the cache on later passes; the
// requests of one pass are the group list, the template list and one listManagedInstances per group.
func TestListCachesTemplates(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	if err := p.Apply(ctx(t), desired(referenceWorkload("web"))); err != nil {
		t.Fatal(err)
	}
	h := byHand(t, emu, owner, option.WithoutAuthentication())
	op, err := h.groups.Get(ctx(t), &computepb.GetRegionInstanceGroupManagerRequest{Project: emu.Project(), Region: emu.Region(), InstanceGroupManager: gcp.GroupName(owner, "web")})
	if err != nil {
		t.Fatal(err)
	}
	cur := op.GetVersions()[0].GetInstanceTemplate()
	cp, err := h.templates.Get(ctx(t), &computepb.GetInstanceTemplateRequest{Project: emu.Project(), InstanceTemplate: cur[strings.LastIndex(cur, "/")+1:]})
	if err != nil {
		t.Fatal(err)
	}
	cp.Name, cp.Id, cp.SelfLink, cp.CreationTimestamp, cp.Kind = proto.String("handmade"), nil, nil, nil, nil
	iop, err := h.templates.Insert(ctx(t), &computepb.InsertInstanceTemplateRequest{Project: emu.Project(), InstanceTemplateResource: cp})
	wait(ctx(t), t, iop, err)
	pop, err := h.groups.Patch(ctx(t), &computepb.PatchRegionInstanceGroupManagerRequest{Project: emu.Project(), Region: emu.Region(),
		InstanceGroupManager: gcp.GroupName(owner, "web"), InstanceGroupManagerResource: &computepb.InstanceGroupManager{
			Versions: []*computepb.InstanceGroupManagerVersion{{InstanceTemplate: proto.String("global/instanceTemplates/handmade")}}}})
	wait(ctx(t), t, pop, err)
	emu.ResetRequests()
	observed(t, p, func(o providers.Observed) bool {
		return len(o.Replicas) == 2 && o.Replicas[0].Running && o.Replicas[1].Running && o.Spec.Image == referenceWorkload("web").Image
	})
	for range 3 {
		if _, err := p.List(ctx(t), owner, "gce"); err != nil {
			t.Fatal(err)
		}
	}
	reads := 0
	for _, r := range emu.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/instanceTemplates/handmade") {
			reads++
		}
	}
	if reads != 1 {
		t.Errorf("the hand-made template was read %d times over the passes, want once", reads)
	}
	emu.ResetRequests()
	if _, err := p.List(ctx(t), owner, "gce"); err != nil {
		t.Fatal(err)
	}
	if n := len(emu.Requests()); n != 8 {
		t.Errorf("one pass made %d requests, want 8 (groups, templates, managed instances, and one list of each side "+
			"collection: health checks, firewalls, addresses, backend services, forwarding rules): %s", n, normalise(emu.Requests()))
	}
}

// TestZones: in a region of four zones a fixed maxSurge of 3 is refused; berth reads the region's zones once
// (regions.get), names them in the distribution policy and surges by four. With the zones setting it spreads over
// those alone and surges by their number.
func TestZones(t *testing.T) {
	four := []string{"europe-west1-b", "europe-west1-c", "europe-west1-d", "europe-west1-e"}
	for _, c := range []struct {
		name    string
		setting []string
		want    []string
	}{{"region's", nil, four}, {"setting", []string{"europe-west1-c"}, []string{"europe-west1-c"}}} {
		t.Run(c.name, func(t *testing.T) {
			emu := computeemu.New(computeemu.Options{AllowAnonymous: true, Zones: four})
			t.Cleanup(emu.Close)
			p := anonymous(t, emu)
			if c.setting != nil {
				s := map[string]any{"project": emu.Project(), "region": emu.Region(), "endpoint": emu.URL(), "zones": []any{c.setting[0]}}
				var err error
				if p, err = gcp.NewWithClientOptions(schema.Target{Name: "gce", Type: "gcp", Settings: s}, providers.Options{}, option.WithoutAuthentication()); err != nil {
					t.Fatal(err)
				}
				p.PollInterval, p.RetryBase, p.RetryMax = time.Millisecond, time.Millisecond, 5*time.Millisecond
				t.Cleanup(func() { p.Close() })
			}
			for _, name := range []string{"web", "api"} {
				if err := p.Apply(ctx(t), desired(referenceWorkload(name))); err != nil {
					t.Fatal(err)
				}
			}
			regionReads := 0
			for _, r := range emu.Requests() {
				if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/regions/"+emu.Region()) {
					regionReads++
				}
				if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/instanceGroupManagers") {
					continue
				}
				var g struct {
					DistributionPolicy struct{ Zones []struct{ Zone string } }
					UpdatePolicy       struct{ MaxSurge, MaxUnavailable struct{ Fixed int } }
				}
				if err := json.Unmarshal(r.Body, &g); err != nil {
					t.Fatal(err)
				}
				var zones []string
				for _, z := range g.DistributionPolicy.Zones {
					zones = append(zones, strings.TrimPrefix(z.Zone, "zones/"))
				}
				if strings.Join(zones, ",") != strings.Join(c.want, ",") || g.UpdatePolicy.MaxSurge.Fixed != len(c.want) || g.UpdatePolicy.MaxUnavailable.Fixed != 0 {
					t.Errorf("group insert: zones %v, maxSurge %d, maxUnavailable %d; want %v, %d, 0", zones, g.UpdatePolicy.MaxSurge.Fixed, g.UpdatePolicy.MaxUnavailable.Fixed, c.want, len(c.want))
				}
			}
			if want := map[bool]int{true: 1, false: 0}[c.setting == nil]; regionReads != want {
				t.Errorf("regions.get read %d times, want %d", regionReads, want)
			}
		})
	}
}
