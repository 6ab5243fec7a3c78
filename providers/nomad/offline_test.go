package nomad_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
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
		{"command check", bad(func(w *schema.Workload) { w.Health.HTTP, w.Health.Command = nil, []string{"/app", "check"} }), []string{"health.command"}},
		{"short interval", bad(func(w *schema.Workload) { w.Health.Interval = schema.Duration(100 * time.Millisecond) }), []string{"health.interval"}},
		{"tiny memory", bad(func(w *schema.Workload) { w.Resources.MemoryBytes = 4 << 20 }), []string{"resources.memory"}},
		{"secret file outside the task dir", bad(func(w *schema.Workload) { w.Files = map[string]schema.File{"/run/secrets/db": {Secret: "db"}} }), []string{"files./run/secrets/db"}},
	}
	target := schema.Target{Name: "n", Type: "nomad", Settings: map[string]any{"address": "http://127.0.0.1:1", "namespace": "berth"}}
	p, err := providers.New(target, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.(providers.Closer).Close()
	caps, v, err := providers.OfflineFor(target)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(caps, p.Capabilities()) {
		t.Errorf("offline capabilities\n%+v\nprovider's\n%+v", caps, p.Capabilities())
	}
	checkHow(t, caps)
	if caps.HealthCommand || caps.How[providers.FeatureHealthCommand] != "" {
		t.Errorf("command checks claimed, but Validate refuses every one: %+v", caps)
	}
	pv := p.(providers.Validator)
	for _, c := range workloads {
		got, want := v.Validate(c.w), pv.Validate(c.w)
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

	// Offline reads no environment: a token variable that is unset fails the factory only.
	withToken := schema.Target{Name: "n", Type: "nomad", Settings: map[string]any{"address": "http://127.0.0.1:1",
		"tokenEnv": "BERTH_TEST_NOMAD_TOKEN_NEVER_SET"}}
	if _, err := providers.New(withToken, providers.Options{}); err == nil || !strings.Contains(err.Error(), "BERTH_TEST_NOMAD_TOKEN_NEVER_SET") {
		t.Errorf("factory without the token: %v", err)
	}
	if c, _, err := providers.OfflineFor(withToken); err != nil || !reflect.DeepEqual(c, caps) {
		t.Errorf("offline without the token: %v, %+v", err, c)
	}
	// Bad settings are the factory's error.
	badAddr := schema.Target{Name: "n", Type: "nomad", Settings: map[string]any{"address": "nomad:4646"}}
	_, _, err = providers.OfflineFor(badAddr)
	_, perr := providers.New(badAddr, providers.Options{})
	if err == nil || perr == nil || err.Error() != perr.Error() {
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
