package azure_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/schema"
)

// The offline description is what the provider reports, from the settings alone.
func TestOfflineMatchesProvider(t *testing.T) {
	bad := func(f func(*schema.Workload)) schema.Workload {
		w := referenceWorkload("web")
		f(&w)
		return w
	}
	workloads := []struct {
		name   string
		w      schema.Workload
		fields []string // the problems Validate reports
	}{
		{"reference", referenceWorkload("web"), nil},
		{"tcp check", bad(func(w *schema.Workload) { w.Health.HTTP, w.Health.TCP = nil, &schema.TCPCheck{Port: 8080} }), []string{"health.tcp"}},
		{"internal port", bad(func(w *schema.Workload) { w.Ports[0].Public = false }), []string{"ports[0].public"}},
		{"memory too big", bad(func(w *schema.Workload) { w.Resources.MemoryBytes = 17 << 30 }), []string{"resources.memory"}},
		{"args only, bad image", bad(func(w *schema.Workload) { w.Command, w.Image = nil, "Not An Image" }), []string{"image"}},
	}
	for _, settings := range []map[string]any{
		{"subscriptionId": "s", "resourceGroup": "rg", "location": "westeurope", "endpoint": "http://127.0.0.1:1"},
		{"subscriptionId": "s", "resourceGroup": "rg", "location": "westeurope", "dnsLabelPrefix": "berthtest"},
	} {
		target := schema.Target{Name: "aci", Type: "azure", Settings: settings}
		p, err := azure.NewWithCredential(target, providers.Options{}, staticToken{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		caps, v, err := providers.OfflineFor(target)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(caps, p.Capabilities()) {
			t.Errorf("settings %v: offline capabilities\n%+v\nprovider's\n%+v", settings, caps, p.Capabilities())
		}
		checkHow(t, caps)
		if got := caps.How[providers.FeatureAddress]; strings.Contains(got, "DNS") != (settings["dnsLabelPrefix"] != nil) {
			t.Errorf("settings %v: address %q", settings, got)
		}
		for _, c := range workloads {
			got, want := v.Validate(c.w), p.Validate(c.w)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: offline problems %v, provider's %v", c.name, got, want)
			}
			var fields []string
			for _, pr := range got {
				fields = append(fields, pr.Field)
			}
			if !slices.Equal(fields, c.fields) {
				t.Errorf("%s: problems on %v, want %v", c.name, fields, c.fields)
			}
		}
	}

	// Bad settings are the factory's error, and nothing is reached to find it.
	target := schema.Target{Name: "aci", Type: "azure", Settings: map[string]any{"subscriptionId": "s", "location": "westeurope"}}
	_, _, err := providers.OfflineFor(target)
	_, perr := azure.NewWithCredential(target, providers.Options{}, staticToken{}, nil)
	if err == nil || perr == nil || err.Error() != perr.Error() || !strings.Contains(err.Error(), "settings.resourceGroup is required") {
		t.Errorf("offline error %v, provider's %v", err, perr)
	}
}

// checkHow: a feature has a How exactly when the capabilities honour it.
func checkHow(t *testing.T, c providers.Capabilities) {
	t.Helper()
	for _, p := range providers.HowProblems(c) {
		t.Error(p)
	}
}
