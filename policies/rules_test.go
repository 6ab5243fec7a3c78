package policies

import (
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/schema"
)

func cfgWith(ws ...schema.Workload) *schema.Config {
	return &schema.Config{
		Targets:      map[string]schema.Target{"local": {Name: "local", Type: "docker"}},
		Environments: map[string]schema.Environment{"prod": {Name: "prod", Branch: "main", Workloads: ws}},
	}
}

func good(name string) schema.Workload {
	return schema.Workload{
		Name: name, Provider: "local", Image: "example/app:v1", Replicas: 1,
		Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}},
		Pos: map[string]schema.Pos{
			"":         {File: "berth.cue", Line: 3, Column: 1},
			"image":    {File: "berth.cue", Line: 4, Column: 2},
			"replicas": {File: "berth.cue", Line: 5, Column: 2},
		},
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*schema.Workload)
		want   []string // "severity rule field line"
	}{
		{"clean", func(w *schema.Workload) {}, nil},
		{"no tag", func(w *schema.Workload) { w.Image = "example/app" }, []string{"deny image-tag image 4"}},
		{"latest", func(w *schema.Workload) { w.Image = "example/app:latest" }, []string{"deny image-tag image 4"}},
		{"registry port is not a tag", func(w *schema.Workload) { w.Image = "reg.local:5000/app" }, []string{"deny image-tag image 4"}},
		{"registry port and tag", func(w *schema.Workload) { w.Image = "reg.local:5000/app:1.2" }, nil},
		{"digest", func(w *schema.Workload) { w.Image = "example/app@sha256:abcd" }, nil},
		{"too many replicas", func(w *schema.Workload) { w.Replicas = 51 }, []string{"deny max-replicas replicas 5"}},
		{"at the cap", func(w *schema.Workload) { w.Replicas = 50 }, nil},
		{"no health", func(w *schema.Workload) { w.Health = nil }, []string{"warn health-check health 3"}},
		{"unknown provider", func(w *schema.Workload) { w.Provider = "aws" }, []string{"deny unknown-provider provider 3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := good("web")
			tc.mutate(&w)
			fs := Evaluate(cfgWith(w), "prod", Options{})
			var got []string
			for _, f := range fs {
				got = append(got, strings.Join([]string{string(f.Severity), f.Rule, f.Field, strconv.Itoa(f.Pos.Line)}, " "))
				if f.Environment != "prod" || f.Workload != "web" {
					t.Errorf("finding not attributed: %+v", f)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("findings = %q, want %q", got, tc.want)
			}
			wantDenied := len(tc.want) > 0 && strings.HasPrefix(tc.want[0], "deny")
			if Denied(fs) != wantDenied {
				t.Fatalf("Denied = %v, want %v", Denied(fs), wantDenied)
			}
		})
	}
}

func TestEvaluateCustomCapAndOrder(t *testing.T) {
	a, b := good("b"), good("a")
	a.Replicas, b.Replicas = 4, 4
	fs := Evaluate(cfgWith(a, b), "prod", Options{MaxReplicas: 3})
	if len(fs) != 2 || fs[0].Workload != "a" || fs[1].Workload != "b" {
		t.Fatalf("want both workloads denied in name order, got %v", fs)
	}
	want := "berth.cue:5:2: deny max-replicas: workloads.a.replicas: replicas 4 is above the cap of 3"
	if fs[0].String() != want {
		t.Fatalf("String() = %q, want %q", fs[0].String(), want)
	}
}

func TestEvaluateUnknownEnvironment(t *testing.T) {
	fs := Evaluate(cfgWith(good("web")), "staging", Options{})
	if !Denied(fs) || !strings.Contains(fs[0].Message, `"staging" is not declared (declared: prod)`) {
		t.Fatalf("got %v", fs)
	}
}
