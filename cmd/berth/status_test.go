package main

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler"
)

// TestWriteStatusEndpoints: `berth status` shows where each public port answers, the address and the URL.
func TestWriteStatusEndpoints(t *testing.T) {
	st := &ServerStatus{Sources: []reconciler.Status{{Name: "app", Environments: []reconciler.EnvironmentStatus{{
		Name: "prod", Phase: "ready",
		Workloads: []reconciler.WorkloadStatus{{Name: "web", Target: "k8s", SpecHash: "abc", DesiredReplicas: 1, ReadyReplicas: 1,
			Endpoints: []providers.Endpoint{{Port: 8080, Address: "203.0.113.7:80"}, {Port: 9090, Address: "lb.example:9090", URL: "http://web.example/"}}}},
	}}}}}
	var b strings.Builder
	writeStatus(&b, st)
	for _, want := range []string{"      port 8080: 203.0.113.7:80\n", "      port 9090: lb.example:9090 http://web.example/\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
