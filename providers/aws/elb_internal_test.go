package aws

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/schema"
)

// elbNameOK is ELBv2's rule for load balancer and target group names.
var elbNameOK = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$`)

// Names fit ELBv2 (at most 32 letters, digits and hyphens, none first or last) for any workload name, are
// deterministic, and differ for workloads whose names cut alike and for each port and protocol.
func TestELBNames(t *testing.T) {
	long := strings.Repeat("a", 60)
	keys := []wkey{
		{"berth", "prod", "aws", "web"},
		{"berth", "prod", "aws", "web_api.v2"},
		{"berth", "prod", "aws", long + "-1"},
		{"berth", "prod", "aws", long + "-2"},
		{"berth", "pr-42", "aws", "web"},
		{"other", "prod", "aws", "web"},
		{"berth", "prod", "aws", "---"},
	}
	seen := map[string]bool{}
	for _, k := range keys {
		for _, n := range []string{lbName(k), tgName(k, 8080, "TCP"), tgName(k, 8080, "UDP"), tgName(k, 65535, "TCP")} {
			if !elbNameOK.MatchString(n) || len(n) > 32 {
				t.Errorf("%+v: name %q does not fit ELBv2", k, n)
			}
			if seen[n] {
				t.Errorf("%+v: name %q given twice", k, n)
			}
			seen[n] = true
		}
		if lbName(k) != lbName(k) || tgName(k, 80, "TCP") != tgName(k, 80, "TCP") {
			t.Errorf("%+v: names are not deterministic", k)
		}
	}
}

// A workload's HTTP check maps to the target group's within ELBv2's bounds and reads back as Normalize gives it.
func TestHealthMapping(t *testing.T) {
	h := &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}, Interval: schema.Duration(2 * time.Second),
		Timeout: schema.Duration(1500 * time.Millisecond), Retries: 1, StartPeriod: schema.Duration(30 * time.Second)}
	e := healthOf(h)
	if e.protocol != "HTTP" || e.path != "/healthz" || e.port != "8080" || e.interval != 5 || e.timeout != 2 ||
		e.healthyCount != 2 || e.unhealthyCount != 2 || !e.spec {
		t.Errorf("healthOf %+v", e)
	}
	back := e.check(30)
	if back.HTTP == nil || back.HTTP.Path != "/healthz" || back.Interval.D() != 5*time.Second || back.Retries != 2 ||
		back.StartPeriod.D() != 30*time.Second {
		t.Errorf("read back %+v", back)
	}
	if d := healthOf(nil); d.spec || d.protocol != "TCP" || d.port != "traffic-port" || d.check(0) != nil {
		t.Errorf("the default check %+v", d)
	}
	tcp := healthOf(&schema.HealthCheck{TCP: &schema.TCPCheck{Port: 9000}, Interval: schema.Duration(10 * time.Second),
		Timeout: schema.Duration(3 * time.Second), Retries: 4})
	if tcp.protocol != "TCP" || tcp.port != "9000" || tcp.path != "" || tcp.check(0).TCP.Port != 9000 {
		t.Errorf("a TCP check %+v", tcp)
	}
}
