package marathon_test

import (
	"reflect"
	"slices"
	"testing"

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
		{"command check", bad(func(w *schema.Workload) { w.Health.HTTP, w.Health.Command = nil, []string{"/app", "check"} }), nil},
		{"check of an undeclared port", bad(func(w *schema.Workload) { w.Health.HTTP.Port = 9090 }), []string{"health.http.port"}},
		{"tcp check of an undeclared port", bad(func(w *schema.Workload) { w.Health.HTTP, w.Health.TCP = nil, &schema.TCPCheck{Port: 22} }), []string{"health.tcp.port"}},
	}
	for _, extra := range []map[string]any{nil, {"group": "/teams/a", "force": true}} {
		target := target("m", "http://127.0.0.1:1", extra)
		p, err := providers.New(target, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		caps, v, err := providers.OfflineFor(target)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(caps, p.Capabilities()) {
			t.Errorf("offline capabilities\n%+v\nprovider's\n%+v", caps, p.Capabilities())
		}
		checkHow(t, caps)
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
		p.(providers.Closer).Close()
	}
	// Bad settings are the factory's error.
	badGroup := target("m", "http://127.0.0.1:1", map[string]any{"group": "Berth"})
	_, _, err := providers.OfflineFor(badGroup)
	_, perr := providers.New(badGroup, providers.Options{})
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
