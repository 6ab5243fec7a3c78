package nomademu_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers/nomad/nomademu"
)

// TestRender: a placed allocation's task starts with its env and its env templates rendered from the variables
// (and Vault data); file templates are rendered at their destinations; a template reading a missing variable
// fails the allocation, and the replacement placed once the variable exists renders it.
func TestRender(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	c := client(t, s)
	s.SetVaultSecret("secret/data/tls", map[string]string{"pem": "PEM"})
	j := testJob("web", "img:1", 1)
	j.Update = nil
	task := j.TaskGroups[0].Tasks[0]
	task.Env = map[string]string{"PLAIN": "yes"}
	task.Templates = []*api.Template{
		{DestPath: new("secrets/env.env"), Envvars: new(true),
			EmbeddedTmpl: new(`DB={{ with nomadVar "nomad/jobs/web" }}{{ index . "db" }}{{ end }}` + "\n")},
		{DestPath: new("secrets/tls.pem"), EmbeddedTmpl: new(`{{ with secret "secret/data/tls" }}{{ .Data.data.pem }}{{ end }}`)},
	}
	if _, _, err := c.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	s.Step(2) // placed, then started
	allocs, _, err := c.Jobs().Allocations("web", true, nil)
	if err != nil || len(allocs) != 1 || allocs[0].ClientStatus != api.AllocClientStatusFailed ||
		!strings.Contains(allocs[0].ClientDescription, `nomadVar "nomad/jobs/web": variable not found`) {
		t.Fatalf("allocation before the variable: %+v, %v; want it failed by its template", allocs, err)
	}
	if _, _, err := c.Variables().Create(&api.Variable{Path: "nomad/jobs/web", Items: api.VariableItems{"db": "pw"}}, nil); err != nil {
		t.Fatal(err)
	}
	s.Step(5)
	live := s.LiveAllocs("", "web")
	if len(live) != 1 {
		t.Fatalf("live allocations %v", live)
	}
	env, ok := s.AllocEnv(live[0])
	if pem, _ := s.AllocFile(live[0], "secrets/tls.pem"); !ok || env["DB"] != "pw" || env["PLAIN"] != "yes" || pem != "PEM" {
		t.Fatalf("rendered env %v (%t), tls.pem %q", env, ok, pem)
	}
}
