package gcp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

const previewHead = "0123456789abcdef0123456789abcdef01234567"

// get reads one resource of the emulator as JSON (anonymous calls are allowed).
func get(t *testing.T, emu *computeemu.Server, path string, v any) {
	t.Helper()
	resp, err := http.Get(emu.URL() + "/compute/v1/projects/" + emu.Project() + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// listed lists o's workloads until one shows (a group just made is missing from the first list that would show it).
func listed(t *testing.T, p *gcp.Provider, o providers.Owner) []providers.Observed {
	t.Helper()
	for range 20 {
		obs, err := p.List(ctx(t), o, "gce")
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) > 0 {
			return obs
		}
	}
	t.Fatalf("List %s shows nothing", o.Environment)
	return nil
}

// TestPreview: a preview beside its base carries its number and head on its template's labels (so its instances)
// and in its group's description; the base's objects are written as before; each List sees only its own
// environment; Endpoints are each workload's reserved address with the port; Environments is one list call.
func TestPreview(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := schema.Workload{Name: "web", Image: "europe-docker.pkg.dev/berth/app:1", Replicas: 1,
		Ports: []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}}}
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	pr := providers.Owner{Instance: owner.Instance, Environment: schema.PreviewName(42), Preview: 42}
	d := providers.Desired{Owner: pr, Target: "gce", Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &schema.Preview{Number: 42, Head: previewHead, Base: owner.Environment}}
	if err := p.Apply(ctx(t), d); err != nil {
		t.Fatal(err)
	}

	var tmpl struct {
		Description string
		Properties  struct{ Labels map[string]string }
	}
	get(t, emu, "global/instanceTemplates/"+gcp.TemplateName(pr, "web", d.SpecHash), &tmpl)
	if l := tmpl.Properties.Labels; l["berth-preview"] != "42" || l["berth-head"] != previewHead || l["berth-environment"] != "pr-42" {
		t.Errorf("preview template labels %v", l)
	}
	var g, bg struct{ Description string }
	get(t, emu, "regions/"+emu.Region()+"/instanceGroupManagers/"+gcp.GroupName(pr, "web"), &g)
	if !strings.HasSuffix(g.Description, "; preview=42; head="+previewHead) {
		t.Errorf("preview group description %q", g.Description)
	}
	get(t, emu, "regions/"+emu.Region()+"/instanceGroupManagers/"+gcp.GroupName(owner, "web"), &bg)
	if want := "berth: instance=main; env=prod; workload=web; target=gce; spec=" + providers.SpecHash(w); bg.Description != want {
		t.Errorf("base group description %q, want %q (unchanged)", bg.Description, want)
	}
	var btmpl struct {
		Properties struct{ Labels map[string]string }
	}
	get(t, emu, "global/instanceTemplates/"+gcp.TemplateName(owner, "web", providers.SpecHash(w)), &btmpl)
	if l := btmpl.Properties.Labels; l["berth-preview"] != "" || l["berth-head"] != "" {
		t.Errorf("base template labels %v", l)
	}

	addr := regexp.MustCompile(`^34\.140\.\d+\.\d+:8080$`) // the emulator's reserved regional addresses
	var seen []string
	for _, o := range []providers.Owner{owner, pr} {
		obs := listed(t, p, o)
		if len(obs) != 1 || len(obs[0].Replicas) != 1 {
			t.Fatalf("List %s: %+v", o.Environment, obs)
		}
		e := obs[0].Endpoints
		if len(e) != 1 || e[0].Port != 8080 || !addr.MatchString(e[0].Address) || e[0].URL != "" {
			t.Errorf("%s: endpoints %+v, want one external address with port 8080", o.Environment, e)
		} else if slices.Contains(seen, e[0].Address) {
			t.Errorf("%s: endpoint %s is the other environment's", o.Environment, e[0].Address)
		} else {
			seen = append(seen, e[0].Address)
		}
		if !strings.HasPrefix(obs[0].Replicas[0].Name, gcp.GroupName(o, "web")+"-") {
			t.Errorf("List %s shows replica %s of another environment", o.Environment, obs[0].Replicas[0].Name)
		}
	}

	emu.ResetRequests()
	refs, err := p.Environments(ctx(t), owner.Instance, "gce")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.EnvironmentRef{{Name: "pr-42", Preview: 42, Head: previewHead}, {Name: "prod"}}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}
	if n := len(emu.Requests()); n != 1 {
		t.Errorf("Environments made %d calls, want 1 list", n)
	}
	if refs, err := p.Environments(ctx(t), "other", "gce"); err != nil || len(refs) != 0 {
		t.Errorf("Environments of another instance: %+v, %v", refs, err)
	}

	if err := p.Delete(ctx(t), pr, "gce", "web"); err != nil {
		t.Fatal(err)
	}
	if obs, err := p.List(ctx(t), owner, "gce"); err != nil || len(obs) != 1 {
		t.Errorf("deleting the preview touched the base: %+v, %v", obs, err)
	}
}

// TestEndpointsInternal: a workload without public ports has no endpoints and costs no instance list.
func TestEndpointsInternal(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := schema.Workload{Name: "api", Image: "europe-docker.pkg.dev/berth/app:1", Replicas: 1,
		Ports: []schema.Port{{Port: 9000, Protocol: "tcp"}}}
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	listed(t, p, owner)
	emu.ResetRequests()
	obs, err := p.List(ctx(t), owner, "gce")
	if err != nil || len(obs) != 1 || len(obs[0].Endpoints) != 0 {
		t.Fatalf("List: %+v, %v", obs, err)
	}
	for _, r := range emu.Requests() {
		if strings.Contains(r.Path, "instances") && !strings.Contains(r.Path, "instanceGroup") && !strings.Contains(r.Path, "instanceTemplates") {
			t.Errorf("List read instances for a workload without public ports: %s %s", r.Method, r.Path)
		}
	}
}
