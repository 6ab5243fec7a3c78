package marathonemu_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/marathon/marathonemu"
)

// TestValidation: each app definition Marathon's API refuses (its RAML types and validators) is refused here too,
// with Marathon's answer: 422 {"message": "Object is not valid", "details": [{"path", "errors"}]}.
func TestValidation(t *testing.T) {
	s := marathonemu.New(marathonemu.Options{})
	defer s.Close()
	c := client{t, s.URL()}
	check := func(d map[string]any) map[string]any { return d["healthChecks"].([]any)[0].(map[string]any) }
	docker := func(d map[string]any) map[string]any {
		return d["container"].(map[string]any)["docker"].(map[string]any)
	}
	for _, tc := range []struct {
		name, path string
		edit       func(map[string]any)
	}{
		{"health protocol outside the enum", "/healthChecks(0)/protocol", func(d map[string]any) { check(d)["protocol"] = "MARATHON_HTTP" }},
		{"portIndex out of range", "/healthChecks(0)/portIndex", func(d map[string]any) { check(d)["portIndex"] = 1 }},
		{"negative interval", "/healthChecks(0)/intervalSeconds", func(d map[string]any) { check(d)["intervalSeconds"] = -1 }},
		{"negative timeout", "/healthChecks(0)/timeoutSeconds", func(d map[string]any) { check(d)["timeoutSeconds"] = -5 }},
		{"negative failures", "/healthChecks(0)/maxConsecutiveFailures", func(d map[string]any) { check(d)["maxConsecutiveFailures"] = -1 }},
		{"negative grace", "/healthChecks(0)/gracePeriodSeconds", func(d map[string]any) { check(d)["gracePeriodSeconds"] = -1 }},
		{"command check without command", "/healthChecks(0)/command", func(d map[string]any) {
			d["healthChecks"] = []any{map[string]any{"protocol": "COMMAND"}}
		}},
		{"negative instances", "/instances", func(d map[string]any) { d["instances"] = -1 }},
		{"too few cpus", "/cpus", func(d map[string]any) { d["cpus"] = 0.0001 }},
		{"negative mem", "/mem", func(d map[string]any) { d["mem"] = -1 }},
		{"empty cmd", "/cmd", func(d map[string]any) { d["cmd"] = "" }},
		{"cmd with args", "/", func(d map[string]any) { d["cmd"], d["args"] = "serve", []any{"x"} }},
		{"backoff factor", "/backoffFactor", func(d map[string]any) { d["backoffFactor"] = 0.5 }},
		{"upgrade capacity", "/upgradeStrategy/maximumOverCapacity", func(d map[string]any) {
			d["upgradeStrategy"] = map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1.5}
		}},
		{"host port", "/container/docker/portMappings(0)/hostPort", func(d map[string]any) {
			docker(d)["portMappings"].([]any)[0].(map[string]any)["hostPort"] = 70000
		}},
		{"port protocol", "/container/docker/portMappings(0)/protocol", func(d map[string]any) {
			docker(d)["portMappings"].([]any)[0].(map[string]any)["protocol"] = "sctp"
		}},
		{"duplicate port names", "/container/docker/portMappings(1)/name", func(d map[string]any) {
			docker(d)["portMappings"] = []any{map[string]any{"containerPort": 80, "name": "web"},
				map[string]any{"containerPort": 81, "name": "web"}}
		}},
		{"network", "/container/docker/network", func(d map[string]any) { docker(d)["network"] = "OVERLAY" }},
		{"id", "/id", func(d map[string]any) { d["id"] = "/berth/Upper_Case" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := def("app:1", 1)
			tc.edit(d)
			id := "/berth/v/dev/web"
			if s, ok := d["id"].(string); ok {
				id = s
			}
			code, out := c.do("PUT", "/v2/apps"+id, d)
			if code != 422 || out["message"] != "Object is not valid" {
				t.Fatalf("PUT: %d %v; want a 422 Object is not valid", code, out)
			}
			var paths []string
			for _, dt := range out["details"].([]any) {
				m := dt.(map[string]any)
				if errs, _ := m["errors"].([]any); len(errs) == 0 {
					t.Fatalf("detail without errors: %v", m)
				}
				paths = append(paths, m["path"].(string))
			}
			if !strings.Contains(" "+strings.Join(paths, " ")+" ", " "+tc.path+" ") {
				t.Fatalf("details at %v, want one at %s", paths, tc.path)
			}
		})
	}
	// What berth sends is accepted, and read back with Marathon's defaults filled in.
	code, out := c.do("PUT", "/v2/apps/berth/v/dev/web", def("app:1", 1))
	if code/100 != 2 {
		t.Fatalf("the valid app: %d %v", code, out)
	}
	_, out = c.do("GET", "/v2/apps/berth/v/dev/web", nil)
	app := out["app"].(map[string]any)
	hc := app["healthChecks"].([]any)[0].(map[string]any)
	if app["backoffSeconds"] != 1.0 || hc["intervalSeconds"] != 60.0 || hc["delaySeconds"] != 15.0 {
		t.Fatalf("defaults not filled in: backoffSeconds %v, intervalSeconds %v, delaySeconds %v", app["backoffSeconds"],
			hc["intervalSeconds"], hc["delaySeconds"])
	}
}
