package kubernetes

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	bschema "github.com/berth-dev/berth/schema"
)

// TestOfflineMatchesProvider checks that what `berth validate` is told about a target (providers.OfflineFor,
// settings alone) is what the provider built for it reports: the same Capabilities, and the same problems for a
// few workloads, good and bad.
func TestOfflineMatchesProvider(t *testing.T) {
	bad := refWorkload()
	bad.Name = "Web_1"
	bad.Ports = append(bad.Ports, bschema.Port{Name: "a-very-long-port-name", Port: 81, Protocol: "tcp", Public: true, HostPort: 80})
	bad.Env = map[string]string{"1BAD=": "x"}
	files := refWorkload()
	files.Files = map[string]bschema.File{"/etc/app": {Secret: "a"}, "/etc/app/key": {Secret: "b"}}
	workloads := []bschema.Workload{refWorkload(), bad, files, {Name: "bare", Image: "x", Replicas: 1}}
	for _, tgt := range []bschema.Target{
		{Name: "k", Type: Type},
		{Name: "k", Type: Type, Settings: map[string]any{"namespace": "apps", "ingressClass": "nginx", "takeOwnership": true}},
		{Name: "k", Type: Type, Settings: map[string]any{"kubeconfig": "/nonexistent/kubeconfig", "context": "prod"}},
	} {
		caps, v, err := providers.OfflineFor(tgt)
		if err != nil {
			t.Fatalf("OfflineFor(%v): %v", tgt.Settings, err)
		}
		p, err := NewWithClient(nil, tgt, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Capabilities(); !reflect.DeepEqual(got, caps) {
			t.Errorf("settings %v: provider capabilities %+v, offline %+v", tgt.Settings, got, caps)
		}
		if v == nil {
			t.Fatal("OfflineFor gave no Validator")
		}
		for _, w := range workloads {
			if got, off := p.Validate(w), v.Validate(w); !reflect.DeepEqual(got, off) {
				t.Errorf("workload %s: provider problems %v, offline %v", w.Name, got, off)
			}
		}
	}
	if probs := validate(bad); len(probs) != 4 {
		t.Errorf("the bad workload has %d problems, want 4: %v", len(probs), probs)
	}
}

// TestOfflineHow checks that every feature the capabilities honour says how, and that bad settings are refused
// offline as the provider refuses them, naming the setting.
func TestOfflineHow(t *testing.T) {
	caps, _, err := providers.OfflineFor(bschema.Target{Name: "k", Type: Type})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range providers.Features {
		if caps.How[f] == "" {
			t.Errorf("Capabilities.How[%q] is empty: a Deployment honours it", f)
		}
	}
	if !strings.Contains(caps.How[providers.FeatureAddress], "status.loadBalancer.ingress") {
		t.Errorf("How[address] = %q", caps.How[providers.FeatureAddress])
	}
	caps.How[providers.FeatureRollout] = "changed"
	if again := capabilities(); again.How[providers.FeatureRollout] == "changed" {
		t.Error("Capabilities.How is shared between calls: a caller's change leaks")
	}
	_, _, err = providers.OfflineFor(bschema.Target{Name: "k", Type: Type, Settings: map[string]any{"namespace": "Not_A_Label"}})
	if err == nil || !strings.Contains(err.Error(), "settings.namespace") {
		t.Errorf("bad namespace offline: %v", err)
	}
}
