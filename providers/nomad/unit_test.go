package nomad

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func TestParseSettings(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings map[string]any
		err      string // substring; "" for success
	}{
		{"minimal", map[string]any{"type": "nomad", "address": "http://127.0.0.1:4646"}, ""},
		{"full", map[string]any{"address": "https://nomad:4646", "region": "eu", "namespace": "apps",
			"datacenters": []any{"dc1", "dc2"}, "tokenEnv": "NOMAD_TOKEN"}, ""},
		{"no address", map[string]any{"region": "eu"}, "settings.address: required"},
		{"bad address", map[string]any{"address": "nomad:4646"}, "settings.address: want an http"},
		{"bad datacenters", map[string]any{"address": "http://n", "datacenters": "dc1"}, "settings.datacenters: want a list"},
		{"empty datacenter", map[string]any{"address": "http://n", "datacenters": []any{""}}, "element 0"},
		{"unknown", map[string]any{"address": "http://n", "host": "x"}, "settings.host: unknown setting"},
		{"number region", map[string]any{"address": "http://n", "region": 3}, "settings.region: want a non-empty string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := schema.Target{Name: "n", Type: "nomad", Settings: c.settings, Pos: schema.Pos{File: "berth.cue", Line: 3, Column: 2}}
			s, err := parseSettings(tg)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "berth.cue:3:2")):
				t.Fatalf("error %v, want one naming berth.cue:3:2 and %q", err, c.err)
			case c.name == "full" && (len(s.datacenters) != 2 || s.namespace != "apps" || s.tokenEnv != "NOMAD_TOKEN"):
				t.Fatalf("parsed %+v", s)
			}
		})
	}
}

func TestNewTokenEnv(t *testing.T) {
	t.Setenv("BERTH_TEST_EMPTY_TOKEN", "")
	_, err := New(schema.Target{Name: "n", Type: "nomad", Settings: map[string]any{"address": "http://127.0.0.1:1",
		"tokenEnv": "BERTH_TEST_EMPTY_TOKEN"}}, providers.Options{})
	if err == nil || !strings.Contains(err.Error(), "BERTH_TEST_EMPTY_TOKEN is unset or empty") {
		t.Fatalf("New with an empty token variable: %v", err)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("w", 300)
	for _, c := range []struct {
		k      wkey
		prefix string
	}{
		{wkey{"berth", "prod", "n", "web"}, "berth-berth-prod-web"},
		{wkey{"berth", "prod", "n", "web/v2"}, "berth-berth-prod-web-v2-"},
		{wkey{"berth", "prod", "n", long}, "berth-berth-prod-www"},
	} {
		got := jobID(c.k)
		if !strings.HasPrefix(got, c.prefix) || len(got) > maxIDLen || !strings.HasPrefix(got, jobPrefix("berth", "prod")) {
			t.Errorf("jobID(%v) = %q, want prefix %q, at most %d chars", c.k, got, c.prefix, maxIDLen)
		}
		if s := serviceName(got); len(s) > maxServiceLen || strings.ContainsAny(s, "_./") || s != strings.ToLower(s) {
			t.Errorf("serviceName(%q) = %q: not a DNS label", got, s)
		}
	}
	if jobID(wkey{"i", "e", "t", "a/b"}) == jobID(wkey{"i", "e", "t", "a-b"}) {
		t.Error("distinct workloads share a job ID")
	}
}

func TestConversions(t *testing.T) {
	for _, c := range []struct {
		millis int64
		mhz    int
	}{{1, 1}, {250, 250}, {1500, 1500}, {4000, 4000}} {
		if got := cpuMHz(c.millis); got != c.mhz {
			t.Errorf("cpuMHz(%d) = %d, want %d", c.millis, got, c.mhz)
		}
	}
	for _, c := range []struct {
		bytes int64
		mb    int
	}{{1, 1}, {512 << 20, 512}, {512<<20 + 1, 513}, {128e6, 123}} {
		if got := memoryMB(c.bytes); got != c.mb {
			t.Errorf("memoryMB(%d) = %d, want %d", c.bytes, got, c.mb)
		}
	}
}

func TestValidate(t *testing.T) {
	p := &Provider{}
	w := schema.Workload{Name: "w", Image: "i", Replicas: 1,
		Resources: schema.Resources{MemoryBytes: 4 << 20},
		Ports:     []schema.Port{{Port: 80, Public: true}, {Port: 8080, Public: true, HostPort: 80}},
		Health:    &schema.HealthCheck{Command: []string{"/app", "healthcheck"}}}
	got := map[string]bool{}
	for _, pr := range p.Validate(w) {
		got[pr.Field] = true
	}
	w2 := w
	w2.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}, Interval: schema.Duration(500 * time.Millisecond)}
	w2.Ports = append(w2.Ports, schema.Port{Port: 80, Protocol: "udp"})
	for _, pr := range p.Validate(w2) {
		got[pr.Field] = true
	}
	for _, f := range []string{"health.command", "resources.memory", "ports[1].hostPort", "health.interval",
		"health.timeout", "ports[2]"} {
		if !got[f] {
			t.Errorf("Validate did not report %s: %v", f, got)
		}
	}
	w.Health, w.Resources, w.Ports = nil, schema.Resources{}, nil
	if pr := p.Validate(w); len(pr) != 0 {
		t.Errorf("Validate of a plain workload: %v", pr)
	}
}

func TestClassifyVariables(t *testing.T) {
	cas := fmt.Errorf("write: %w", api.ErrCASConflict{CheckIndex: 3, Conflict: &api.Variable{ModifyIndex: 4}})
	if c := classify(cas); c != classConflict {
		t.Errorf("classify(a lost check-and-set) = %d, want a conflict", c)
	}
	for _, body := range []string{`invalid path "nomad/jobs/x.y"`, "variables are limited to 64KiB in total size",
		`"nomad" is a reserved top-level directory path, but you may write variables to "nomad/jobs", "nomad/job-templates", or below`} {
		if !variableRefusal.MatchString(body) {
			t.Errorf("%q is not taken for a variable refusal", body)
		}
	}
	if variableRefusal.MatchString("rpc error: No cluster leader") {
		t.Error("a leader election is taken for a variable refusal")
	}
}

func TestSecretTemplates(t *testing.T) {
	w := schema.Workload{Name: "web", SecretEnv: map[string]string{"A": "a", "B": "b"},
		Files: map[string]schema.File{"/secrets/c.pem": {Secret: "c"}, "/local/d": {Secret: "b"}}}
	d := providers.Desired{Workload: w, Secrets: map[string]providers.Secret{
		"a": {Source: schema.Secret{SOPS: &schema.SOPSSecret{File: "s.enc.yaml"}}, Fingerprint: "f1"},
		"b": {Source: schema.Secret{Nomad: &schema.NomadSecret{Path: "nomad/jobs/shared", Key: "k"}}, Fingerprint: "f2"},
		"c": {Source: schema.Secret{Vault: &schema.VaultSecret{Path: "secret/data/x", Key: "pem"}}, Fingerprint: "f3"},
	}}
	task := &api.Task{}
	meta, err := secretTask("job", d, task)
	if err != nil {
		t.Fatal(err)
	}
	if meta != "a=f1,b=f2,c=f3" || task.Vault == nil || len(task.Templates) != 3 {
		t.Fatalf("meta %q, vault %v, %d templates", meta, task.Vault, len(task.Templates))
	}
	var back schema.Workload
	readSecrets(task, &back)
	if !maps.Equal(back.SecretEnv, w.SecretEnv) || !maps.Equal(back.Files, w.Files) {
		t.Fatalf("read back %v %v", back.SecretEnv, back.Files)
	}
	if fps := fingerprints(map[string]string{MetaSecrets: meta}); !maps.Equal(fps, map[string]string{"a": "f1", "b": "f2", "c": "f3"}) {
		t.Fatalf("fingerprints %v", fps)
	}
	job := &api.Job{ID: new("job"), TaskGroups: []*api.TaskGroup{{Tasks: []*api.Task{task}}}}
	if !usesVariable(job) {
		t.Fatal("the job reads berth's variable")
	}
	d.Workload.SecretEnv = map[string]string{"B": "b"}
	d.Workload.Files = nil
	task = &api.Task{}
	if _, err := secretTask("job", d, task); err != nil {
		t.Fatal(err)
	}
	job.TaskGroups[0].Tasks = []*api.Task{task}
	if usesVariable(job) || task.Vault != nil {
		t.Fatal("a job with references only reads berth's variable, or has a vault block")
	}
	d.Secrets["b"] = providers.Secret{Source: schema.Secret{AWS: &schema.AWSSecret{ARN: "arn:aws:ssm:x"}}}
	if _, err := secretTask("job", d, &api.Task{}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("an aws secret on Nomad: %v", err)
	}
}
