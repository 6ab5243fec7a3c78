package marathon_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

// TestReadBack: what List reads from the live app equals the desired workload in the provider's read-back form,
// for the mappings that lose something (defaults, the command split, whole seconds, a command check, internal
// ports): an untouched workload plans empty. Every health check berth sends uses a protocol of Marathon's enum.
func TestReadBack(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "marathon", nil)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	for _, c := range []struct {
		name string
		edit func(*schema.Workload)
	}{
		{"reference", func(*schema.Workload) {}},
		{"no resources", func(w *schema.Workload) { w.Resources = schema.Resources{} }},
		{"odd memory", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 1500, MemoryBytes: 128e6} }},
		{"command", func(w *schema.Workload) { w.Command = []string{"/bin/app", "-v"} }},
		{"internal and udp ports", func(w *schema.Workload) {
			w.Ports = append(w.Ports, schema.Port{Name: "dns", Port: 53, Protocol: "udp"}, schema.Port{Port: 9100})
		}},
		{"tcp check, fractional durations", func(w *schema.Workload) {
			w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}, Interval: schema.Duration(1500 * time.Millisecond),
				Timeout: schema.Duration(300 * time.Millisecond), Retries: 2, StartPeriod: schema.Duration(2500 * time.Millisecond)}
		}},
		{"command check", func(w *schema.Workload) {
			w.Health.HTTP, w.Health.Command = nil, []string{"/app", "check", "it's up"}
		}},
		{"no health", func(w *schema.Workload) { w.Health = nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := referenceWorkload(strings.ReplaceAll(strings.ReplaceAll(c.name, " ", "-"), ",", ""))
			c.edit(&w)
			if err := p.Apply(ctx(t), desired(owner, "marathon", w)); err != nil {
				t.Fatal(err)
			}
			obs, err := p.List(ctx(t), owner, "marathon")
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(obs, func(o providers.Observed) bool { return o.Workload == w.Name })
			if i < 0 {
				t.Fatalf("%s not listed", w.Name)
			}
			want := providers.Normalize(p.Normalize(providers.Normalize(w)))
			if got := providers.Normalize(obs[i].Spec); !reflect.DeepEqual(got, want) {
				t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	for _, r := range emu.Requests() {
		var body struct {
			HealthChecks []struct {
				Protocol string `json:"protocol"`
			} `json:"healthChecks"`
		}
		if r.Method != "PUT" || json.Unmarshal(r.Body, &body) != nil {
			continue
		}
		for _, hc := range body.HealthChecks {
			if !slices.Contains(marathonemu.HealthCheckProtocols, hc.Protocol) {
				t.Errorf("%s %s sends health check protocol %q, outside Marathon's enum", r.Method, r.Path, hc.Protocol)
			}
		}
	}
}

// TestRepairKeepsUnmanaged: a field edited by hand is put back by Apply although the labels still match, and what
// berth does not manage (a label of someone else's, a field berth never sets) survives the replacing PUT.
func TestRepairKeepsUnmanaged(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "marathon", nil)
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := referenceWorkload("web")
	if err := p.Apply(ctx(t), desired(owner, "marathon", w)); err != nil {
		t.Fatal(err)
	}
	const id = "/berth/berth/prod/web"
	a := getApp(t, emu, id)
	a["env"].(map[string]any)["GREETING"] = "by hand"
	a["labels"].(map[string]any)["team"] = "payments"
	a["backoffSeconds"] = 7
	docker(a)["parameters"] = []any{map[string]any{"key": "hostname", "value": "by-hand"}}
	for _, k := range readOnly {
		delete(a, k)
	}
	putApp(t, emu, id, a)
	if err := p.Apply(ctx(t), desired(owner, "marathon", w)); err != nil {
		t.Fatal(err)
	}
	a = getApp(t, emu, id)
	params, _ := json.Marshal(docker(a)["parameters"])
	if a["env"].(map[string]any)["GREETING"] != "hello" || a["labels"].(map[string]any)["team"] != "payments" ||
		a["backoffSeconds"] != 7.0 || string(params) != `[{"key":"hostname","value":"by-hand"}]` {
		t.Fatalf("after the repair: env %v, labels %v, backoffSeconds %v, docker parameters %s; want GREETING put back, "+
			"team, backoffSeconds and the hostname parameter kept", a["env"], a["labels"], a["backoffSeconds"], params)
	}
}
