package marathon_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

const testHead = "0123456789abcdef0123456789abcdef01234567"

func previewDesired(o providers.Owner, tgt string, w schema.Workload, head string) providers.Desired {
	d := desired(o, tgt, w)
	d.Preview = &schema.Preview{Number: o.Preview, Head: head, Base: "dev"}
	return d
}

// appLabels reads an app's labels as Marathon answers them.
func appLabels(t *testing.T, emu *marathonemu.Server, id string) map[string]string {
	t.Helper()
	resp, err := http.Get(emu.URL() + "/v2/apps" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		App struct {
			Labels map[string]string `json:"labels"`
		} `json:"app"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.App.Labels
}

// TestPreviewLabels: a preview's app carries berth.dev/preview and berth.dev/head, a base app neither; each
// environment's List shows only its own app; a new head with the same spec changes nothing (no PUT, no restart).
func TestPreviewLabels(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "m", nil)
	base := providers.Owner{Instance: "i1", Environment: "dev"}
	pr := providers.Owner{Instance: "i1", Environment: schema.PreviewName(42), Preview: 42}
	w := referenceWorkload("web")
	w.Replicas = 1
	if err := p.Apply(ctx(t), desired(base, "m", w)); err != nil {
		t.Fatal(err)
	}
	wp := w
	wp.Ports = []schema.Port{{Name: "http", Port: 8080, Protocol: "tcp", Public: true, HostPort: 18080}}
	if err := p.Apply(ctx(t), previewDesired(pr, "m", wp, testHead)); err != nil {
		t.Fatal(err)
	}
	if l := appLabels(t, emu, "/berth/i1/pr-42/web"); l[providers.LabelPreview] != "42" || l[providers.LabelHead] != testHead {
		t.Errorf("preview labels = %v", l)
	}
	if l := appLabels(t, emu, "/berth/i1/dev/web"); l[providers.LabelPreview] != "" || l[providers.LabelHead] != "" {
		t.Errorf("base labels = %v", l)
	}
	for _, o := range []providers.Owner{base, pr} {
		obs, err := p.List(ctx(t), o, "m")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List %s = %+v, %v", o.Environment, obs, err)
		}
	}
	emu.ResetRequests()
	if err := p.Apply(ctx(t), previewDesired(pr, "m", wp, strings.Repeat("f", 40))); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests() {
		if r.Method == http.MethodPut {
			t.Errorf("a new head with the same spec made %s %s", r.Method, r.Path)
		}
	}
}

// TestEndpoints: one endpoint per public port, the task's host and its host port at the mapping's index (a
// wildcard host as 127.0.0.1); an internal port has none.
func TestEndpoints(t *testing.T) {
	for _, c := range []struct{ host, want string }{
		{"", "agent-1:8080"},
		{"10.0.0.7", "10.0.0.7:8080"},
		{"0.0.0.0", "127.0.0.1:8080"},
	} {
		t.Run(c.want, func(t *testing.T) {
			hermetic(t)
			emu := emulator(t, marathonemu.Options{AgentHost: c.host})
			p := newProvider(t, emu, "m", nil)
			o := providers.Owner{Instance: "i1", Environment: "dev"}
			w := referenceWorkload("web")
			w.Ports = append([]schema.Port{{Name: "admin", Port: 9000, Protocol: "tcp"}}, w.Ports...)
			if err := p.Apply(ctx(t), desired(o, "m", w)); err != nil {
				t.Fatal(err)
			}
			obs, err := p.List(ctx(t), o, "m")
			if err != nil || len(obs) != 1 {
				t.Fatalf("List = %+v, %v", obs, err)
			}
			want := []providers.Endpoint{{Port: 8080, Address: c.want}}
			if !slices.Equal(obs[0].Endpoints, want) {
				t.Errorf("Endpoints = %+v, want %+v", obs[0].Endpoints, want)
			}
		})
	}
}

// TestEnvironments: one /v2/apps listing with a label selector on instance and target, each environment once with
// its preview number and head; other instances, targets and look-alikes are not listed.
func TestEnvironments(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "m", nil)
	w := referenceWorkload("web")
	w.Replicas = 1
	w2 := referenceWorkload("api")
	w2.Replicas, w2.Ports, w2.Health = 1, nil, nil
	for _, d := range []providers.Desired{
		desired(providers.Owner{Instance: "i1", Environment: "dev"}, "m", w),
		desired(providers.Owner{Instance: "i1", Environment: "dev"}, "m", w2),
		previewDesired(providers.Owner{Instance: "i1", Environment: "pr-7", Preview: 7}, "m", w2, testHead),
		desired(providers.Owner{Instance: "i1", Environment: "other"}, "m2", w2),
		desired(providers.Owner{Instance: "i2", Environment: "dev"}, "m", w2),
	} {
		if err := p.Apply(ctx(t), d); err != nil {
			t.Fatal(err)
		}
	}
	emu.CreateLookAlike("/berth/i1/staging/web", 1)
	emu.ResetRequests()
	refs, err := p.Environments(ctx(t), "i1", "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.EnvironmentRef{{Name: "dev"}, {Name: "pr-7", Preview: 7, Head: testHead}}
	if !slices.Equal(refs, want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}
	reqs := emu.Requests()
	if len(reqs) != 1 || !strings.HasPrefix(reqs[0].Path, "/v2/apps?") || !strings.Contains(reqs[0].Path, "label=") {
		t.Errorf("Environments made %d requests: %+v", len(reqs), reqs)
	}
	var _ providers.EnvironmentLister = (*marathon.Provider)(nil)
}
