package nomademu_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers/nomad/nomademu"
)

// validJob is a job as berth sends it: one docker task, a network, a service with a check, an update block.
func validJob() *api.Job {
	j := testJob("web", "img:1", 1)
	g := j.TaskGroups[0]
	g.Networks = []*api.NetworkResource{{ReservedPorts: []api.Port{{Label: "http", Value: 8080, To: 8080}}}}
	g.Services = []*api.Service{{Name: "web", Provider: "nomad", PortLabel: "http", Checks: []api.ServiceCheck{{
		Name: "berth-health", Type: "http", Path: "/healthz", PortLabel: "http", Interval: 5 * time.Second,
		Timeout: 2 * time.Second, CheckRestart: &api.CheckRestart{Limit: 3, Grace: new(time.Duration(0))}}}}}
	g.Tasks[0].Resources = &api.Resources{CPU: new(250), MemoryMB: new(512)}
	j.Update.HealthCheck = new("checks")
	return j
}

// tmpl is the job's task's template, added when the job has none.
func tmpl(j *api.Job) *api.Template {
	task := j.TaskGroups[0].Tasks[0]
	if len(task.Templates) == 0 {
		task.Templates = []*api.Template{{DestPath: new("secrets/x"), EmbeddedTmpl: new("x")}}
	}
	return task.Templates[0]
}

// TestValidation: each request Nomad's job validation refuses is refused here too, with Nomad's answer: HTTP 500
// and the multi-error text as a plain body, on register and on plan.
func TestValidation(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.Register(validJob(), nil); err != nil {
		t.Fatalf("the valid job: %v", err)
	}
	check := func(j *api.Job) *api.ServiceCheck { return &j.TaskGroups[0].Services[0].Checks[0] }
	for _, c := range []struct {
		name string
		edit func(*api.Job)
		want string
	}{
		{"job type", func(j *api.Job) { j.Type = new("daemon") }, `Invalid job type: "daemon"`},
		{"negative count", func(j *api.Job) { j.TaskGroups[0].Count = new(-1) }, "Task group count can't be negative"},
		{"no driver", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Driver = "" }, "Missing task driver"},
		{"no image", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Config = map[string]any{} }, "image is required"},
		{"memory", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Resources.MemoryMB = new(4) }, "minimum MemoryMB value is 10; got 4"},
		{"cpu", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Resources.CPU = new(0) }, "minimum CPU value is 1; got 0"},
		{"cpu and cores", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Resources.Cores = new(1) }, "not both"},
		{"check type", func(j *api.Job) { check(j).Type = "grpc" }, `invalid check type ("grpc"), must be one of http, tcp`},
		{"script on nomad", func(j *api.Job) { check(j).Type, check(j).Command = "script", "/bin/true" },
			`invalid check type ("script")`},
		{"interval", func(j *api.Job) { check(j).Interval = 500 * time.Millisecond }, "interval (500ms) cannot be lower than 1s"},
		{"no timeout", func(j *api.Job) { check(j).Timeout = 0 }, "missing required value timeout"},
		{"http path", func(j *api.Job) { check(j).Path = "" }, "http type must have http path"},
		{"absolute path", func(j *api.Job) { check(j).Path = "http://x/healthz" }, "relative http path"},
		{"check_restart", func(j *api.Job) { check(j).CheckRestart.Limit = -1 }, "limit must be greater than or equal to 0"},
		{"check port", func(j *api.Job) { check(j).PortLabel = "nope" }, "non-existent port label nope"},
		{"service name", func(j *api.Job) { j.TaskGroups[0].Services[0].Name = "web_app" }, "RFC 1123"},
		{"provider", func(j *api.Job) { j.TaskGroups[0].Services[0].Provider = "etcd" }, "Service provider must be"},
		{"static port", func(j *api.Job) { j.TaskGroups[0].Networks[0].ReservedPorts[0].Value = 70000 }, "invalid port value 70000"},
		{"update health check", func(j *api.Job) { j.Update.HealthCheck = new("always") }, `Invalid health check given: "always"`},
		{"update deadlines", func(j *api.Job) { j.Update.MinHealthyTime = new(10 * time.Minute) },
			"Minimum healthy time must be less than healthy deadline"},
		{"template without data", func(j *api.Job) { tmpl(j).EmbeddedTmpl = nil }, "Must specify a source path or have an embedded template"},
		{"template without destination", func(j *api.Job) { tmpl(j).DestPath = nil }, "Must specify a destination for the template"},
		{"template outside", func(j *api.Job) { tmpl(j).DestPath = new("../../../etc/passwd") }, "destination escapes allocation directory"},
		{"template change mode", func(j *api.Job) { tmpl(j).ChangeMode = new("reload") }, `Invalid change mode "reload"`},
		{"template signal env", func(j *api.Job) {
			tmpl(j).ChangeMode, tmpl(j).ChangeSignal, tmpl(j).Envvars = new("signal"), new("SIGHUP"), new(true)
		}, "cannot use signals with env var templates"},
		{"template perms", func(j *api.Job) { tmpl(j).Perms = new("rw-------") }, `Failed to parse "rw-------" as octal`},
		{"progress deadline", func(j *api.Job) {
			j.Update.HealthyDeadline, j.Update.ProgressDeadline = new(20*time.Minute), new(10*time.Minute)
		}, "Healthy deadline must be less than progress deadline"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := validJob()
			c.edit(j)
			for op, call := range map[string]func() error{
				"register": func() error { _, _, err := jobs.Register(j, nil); return err },
				"plan":     func() error { _, _, err := jobs.Plan(j, true, nil); return err },
			} {
				err := call()
				var ue api.UnexpectedResponseError
				if !errors.As(err, &ue) || ue.StatusCode() != 500 || !strings.Contains(ue.Body(), c.want) ||
					!strings.Contains(ue.Body(), "error occurred:\n\t* ") && !strings.Contains(ue.Body(), "errors occurred:\n\t* ") {
					t.Fatalf("%s: %v; want a 500 with a multi-error body naming %q", op, err, c.want)
				}
			}
		})
	}
}

// TestScale: `nomad job scale` makes a new version with the count changed and keeps the allocations; it is
// refused while a deployment runs and for a negative count.
func TestScale(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.Register(validJob(), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := jobs.Scale("web", "app", new(2), "by hand", false, nil, nil); statusCode(err) != 400 ||
		!strings.Contains(err.Error(), "blocked due to active deployment") {
		t.Fatalf("scale during the first deployment: %v, want a 400", err)
	}
	s.Step(10)
	before := s.LiveAllocs("", "web")
	if _, _, err := jobs.Scale("web", "app", new(-1), "", false, nil, nil); statusCode(err) != 400 {
		t.Fatalf("scale to -1: %v, want a 400", err)
	}
	if _, _, err := jobs.Scale("web", "app", new(2), "by hand", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	job, _, err := jobs.Info("web", nil)
	if err != nil || *job.TaskGroups[0].Count != 2 || *job.Version != 1 {
		t.Fatalf("after the scale: %v; want count 2 in version 1", err)
	}
	if after := s.LiveAllocs("", "web"); len(after) != 2 || !contains(after, before[0]) {
		t.Fatalf("allocations %v, then %v: want the first kept and one more", before, after)
	}
}

// TestCanonicalize: the job read back carries the defaults the agent fills in (resources, update, service).
func TestCanonicalize(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	jobs := client(t, s).Jobs()
	j := validJob()
	j.TaskGroups[0].Tasks[0].Resources = nil
	if _, _, err := jobs.Register(j, nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := jobs.Info("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := got.TaskGroups[0].Tasks[0].Resources
	if *r.CPU != *api.DefaultResources().CPU || *r.MemoryMB != *api.DefaultResources().MemoryMB || *got.Priority != 50 ||
		got.TaskGroups[0].Update == nil || got.TaskGroups[0].Services[0].AddressMode != "auto" {
		t.Fatalf("read back: resources %d MHz %d MB, priority %d, group update %v, address mode %q", *r.CPU, *r.MemoryMB,
			*got.Priority, got.TaskGroups[0].Update, got.TaskGroups[0].Services[0].AddressMode)
	}
}
