package schema

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const endpointsRepo = `targets: a: {type: "aws", region: "eu-west-1", cluster: "c", subnets: ["s"]}
targets: g: {type: "gcp", project: "p", region: "europe-west1"}
dns: r53: {type: "route53", zoneId: "Z1"}
dns: edge: {type: "edge", admin: "unix:///run/berth/edge.sock"}
environments: production: branch: "main"
workloads: web: {
	image:    "app:v1"
	provider: "a"
	health: http: port: 8080
	ports: [{
		port:   8080
		public: true
		endpoint: {name: "web.example.com", dns: "r53", ttl: "30s"}
	}, {
		port:   9090
		public: true
		endpoint: {name: "127.0.0.1:9090", dns: "edge"}
	}]
	migration: {steps: [25, 100], interval: "1m"}
}
workloads: db: {image: "db:1", provider: "g", stateful: true}
`

func TestLoadEndpoints(t *testing.T) {
	cfg := loadText(t, "berth.cue", endpointsRepo)
	if got := cfg.DNS["r53"]; got.Type != "route53" || got.Settings["zoneId"] != "Z1" || got.Pos.Line != 3 {
		t.Errorf("dns r53 = %+v", got)
	}
	if got := cfg.DNS["edge"]; got.Type != EdgeType || got.Settings["admin"] != "unix:///run/berth/edge.sock" {
		t.Errorf("dns edge = %+v", got)
	}
	web, _ := cfg.Environments["production"].Workload("web")
	want := []*Endpoint{
		{Name: "web.example.com", DNS: "r53", TTL: Duration(30 * time.Second), Drain: DefaultEndpointDrain},
		{Name: "127.0.0.1:9090", DNS: "edge", TTL: DefaultEndpointTTL, Drain: DefaultEndpointDrain},
	}
	for i, p := range web.Endpoints() {
		if !reflect.DeepEqual(p.Endpoint, want[i]) {
			t.Errorf("port %d endpoint = %+v, want %+v", p.Port, p.Endpoint, want[i])
		}
	}
	if m := web.Migration; !reflect.DeepEqual(m.Steps, []int{25, 100}) || m.Interval.D() != time.Minute || m.AllowUnsafe {
		t.Errorf("web migration = %+v", m)
	}
	db, _ := cfg.Environments["production"].Workload("db")
	if m := db.Moves(); !db.Stateful || !reflect.DeepEqual(m.Steps, DefaultMigrationSteps) || m.Interval != DefaultMigrationInterval {
		t.Errorf("db = stateful %v, migration %+v", db.Stateful, db.Migration)
	}
	// A clone does not share the endpoint or the steps.
	c := web.clone()
	c.Ports[0].Endpoint.Name = "x"
	c.Migration.Steps[0] = 1
	if web.Ports[0].Endpoint.Name != "web.example.com" || web.Migration.Steps[0] != 25 {
		t.Error("clone shares the endpoint or the steps")
	}
}

func TestEndpointErrors(t *testing.T) {
	base := `targets: a: {type: "docker"}
dns: r53: {type: "route53", zoneId: "Z1"}
dns: edge: {type: "edge", admin: "127.0.0.1:7070"}
environments: production: branch: "main"
environments: staging: branch: "staging"
`
	for _, tc := range []struct{ name, text, want string }{
		{"undeclared", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, public: true, endpoint: {name: "web.example.com", dns: "nope"}}]}`,
			`berth.cue:6:114: workloads.web.ports[0].endpoint.dns: dns router "nope" is not declared (declared: edge, r53)`},
		{"internal port", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, endpoint: {name: "web.example.com", dns: "r53"}}]}`,
			`workloads.web.ports[0].endpoint: an endpoint is only allowed on a public port`},
		{"bad dns name", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, public: true, endpoint: {name: "Web_1", dns: "r53"}}]}`,
			`endpoint name "Web_1" is not a DNS name`},
		{"edge name", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, public: true, endpoint: {name: "web.example.com", dns: "edge"}}]}`,
			`must be the host:port it listens at`},
		{"twice", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, public: true, endpoint: {name: "web.example.com", dns: "r53"}}]}
workloads: api: {image: "x", provider: "a", ports: [{port: 81, public: true, endpoint: {name: "web.example.com.", dns: "r53"}}]}`,
			`is already the endpoint of port`},
		{"two environments", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, public: true, endpoint: {name: "web.example.com", dns: "r53"}}]}`,
			`is the endpoint of this port in environments production and staging: each environment needs a name of its own`},
		{"steps", `workloads: web: {image: "x", provider: "a", migration: steps: [50, 20, 100]}`,
			`workloads.web.migration.steps: steps must ascend`},
		{"last step", `workloads: web: {image: "x", provider: "a", migration: steps: [50]}`,
			`the last step must be 100`},
		{"bad ttl", `workloads: web: {image: "x", provider: "a", ports: [{port: 80, public: true, endpoint: {name: "web.example.com", dns: "r53", ttl: "soon"}}]}`,
			`workloads.web.ports[0].endpoint.ttl: invalid duration "soon"`},
		{"dns type", `dns: x: {type: "bind"}
workloads: web: {image: "x", provider: "a"}`, `dns.x.type: unknown dns type "bind" (known: azuredns, clouddns, edge, route53)`},
		{"dns field", `dns: y: {type: "route53", zoneId: "Z", zone: "z"}
workloads: web: {image: "x", provider: "a"}`, `dns.y.zone`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(base+tc.text+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v\nwant an error containing %q", err, tc.want)
			}
			if n := strings.Count(err.Error(), tc.want); n > 1 && tc.name != "twice" {
				t.Errorf("the error is reported %d times (once per environment?):\n%v", n, err)
			}
		})
	}
}
