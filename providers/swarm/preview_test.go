package swarm_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

const testHead = "0123456789abcdef0123456789abcdef01234567"

// TestPreviewServiceSpec: a preview's service and its containers carry its number and head; a base's carry
// neither; a head that is not a commit ID is left out.
func TestPreviewServiceSpec(t *testing.T) {
	d := desiredOf(referenceWorkload("web"))
	d.Owner = providers.Owner{Instance: "berth", Environment: "pr-42", Preview: 42}
	d.Preview = &schema.Preview{Number: 42, Head: testHead, Base: "prod"}
	spec, err := berthswarm.ServiceSpecFor(d, "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for what, l := range map[string]map[string]string{"service": spec.Labels, "container": spec.TaskTemplate.ContainerSpec.Labels} {
		if l[providers.LabelPreview] != "42" || l[providers.LabelHead] != testHead || l[providers.LabelEnvironment] != "pr-42" {
			t.Errorf("%s labels %v", what, l)
		}
		if berthswarm.PreviewOf("pr-42", l) != 42 {
			t.Errorf("%s labels read back as preview %d", what, berthswarm.PreviewOf("pr-42", l))
		}
	}
	d.Preview.Head = "main; rm -rf /"
	if l := berthswarm.PreviewLabels(d.Owner, d.Preview); l[providers.LabelHead] != "" || l[providers.LabelPreview] != "42" {
		t.Errorf("a malformed head is labelled: %v", l)
	}
	base, err := berthswarm.ServiceSpecFor(desiredOf(referenceWorkload("web")), "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := base.Labels[providers.LabelPreview]; ok {
		t.Errorf("a base service is labelled as a preview: %v", base.Labels)
	}
	for _, c := range []struct {
		env, label string
		want       int
	}{
		{"pr-7", "7", 7}, {"pr-7", "07", 0}, {"pr-7", "+7", 0}, {"pr-7", "x", 0}, {"pr-7", "", 0},
		{"staging", "7", 0}, {"pr-8", "7", 0}, {"pr-2147483647", "2147483647", 2147483647},
	} {
		if got := berthswarm.PreviewOf(c.env, map[string]string{providers.LabelPreview: c.label}); got != c.want {
			t.Errorf("providers.PreviewOf(%q, %q) = %d, want %d", c.env, c.label, got, c.want)
		}
	}
}

// TestServiceNameCut: names within swarm's 63 characters are kept as they were; a longer one is cut
// deterministically to a valid name ending with a hash of its owner, distinct for distinct owners.
func TestServiceNameCut(t *testing.T) {
	if got := berthswarm.ServiceName(providers.Owner{Instance: "berth", Environment: "prod"}, "web"); got != "berth-berth-prod-web" {
		t.Fatalf("short name %q", got)
	}
	long := "cf-" + strings.Repeat("l", 36) + "x"
	o := providers.Owner{Instance: "cf0123abcd", Environment: schema.PreviewName(2147483647), Preview: 2147483647}
	got := berthswarm.ServiceName(o, long)
	valid := regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)
	if len(got) > 63 || !valid.MatchString(got) || !strings.HasPrefix(got, "berth-cf0123abcd-pr-2147483647-cf-lll") {
		t.Fatalf("cut name %q (%d characters)", got, len(got))
	}
	if again := berthswarm.ServiceName(o, long); again != got {
		t.Fatalf("cut name not deterministic: %q, then %q", got, again)
	}
	other := berthswarm.ServiceName(o, long[:39]+"y")
	if other == got || len(other) > 63 {
		t.Fatalf("two workloads cut to %q and %q", got, other)
	}
	long63 := providers.Owner{Instance: strings.Repeat("i", 40), Environment: schema.PreviewName(2147483647)}
	if n := berthswarm.NetworkName(long63); len(n) > 63 || !valid.MatchString(n) || n != berthswarm.NetworkName(long63) {
		t.Fatalf("cut network name %q (%d characters)", n, len(n))
	}
	if n := berthswarm.NetworkName(o); n != "berth-cf0123abcd-pr-2147483647-overlay" {
		t.Fatalf("network name %q cut under the limit", n)
	}
	// Names that sanitise alike are told apart by the hash of the raw parts.
	a := berthswarm.ServiceName(o, strings.Repeat("a", 30)+"_b"+strings.Repeat("c", 8))
	b := berthswarm.ServiceName(o, strings.Repeat("a", 30)+".b"+strings.Repeat("c", 8))
	if a == b {
		t.Fatalf("distinct workloads share the name %q", a)
	}
}

// TestEnvironments: each environment once, sorted, with its number and the head of its most recently updated
// service.
func TestEnvironments(t *testing.T) {
	const oldHead = "1111111111111111111111111111111111111111"
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	svc := func(minute int, env, preview, head string) swarm.Service {
		l := map[string]string{providers.LabelEnvironment: env}
		if preview != "" {
			l[providers.LabelPreview] = preview
		}
		if head != "" {
			l[providers.LabelHead] = head
		}
		s := swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Labels: l}}}
		s.UpdatedAt = at.Add(time.Duration(minute) * time.Minute)
		return s
	}
	// A canary (left by a crashed Apply) is no environment's service.
	canary := svc(6, "canary-only", "", "")
	canary.Spec.Labels[berthswarm.LabelCanary] = "berth-berth-canary-only-web"
	got := berthswarm.Environments([]swarm.Service{
		svc(3, "pr-42", "42", testHead), svc(1, "pr-42", "42", oldHead), svc(2, "staging", "", ""),
		svc(4, "pr-5", "5", "not-a-head"), svc(5, "dev", "9", ""), {}, canary,
	})
	want := []providers.EnvironmentRef{{Name: "dev"}, {Name: "pr-42", Preview: 42, Head: testHead},
		{Name: "pr-5", Preview: 5}, {Name: "staging"}}
	if !slices.Equal(got, want) {
		t.Fatalf("environments:\n got %+v\nwant %+v", got, want)
	}
}

// TestEndpoints: one endpoint per port swarm published in ingress mode, at the node address; a port not yet
// published, or published in host mode, has none.
func TestEndpoints(t *testing.T) {
	var svc swarm.Service
	svc.Endpoint.Ports = []swarm.PortConfig{
		{Protocol: "udp", TargetPort: 53, PublishedPort: 30053, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: "tcp", TargetPort: 8080, PublishedPort: 30080, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: "tcp", TargetPort: 9090, PublishedPort: 30090, PublishMode: swarm.PortConfigPublishModeHost},
		{Protocol: "tcp", TargetPort: 7070, PublishMode: swarm.PortConfigPublishModeIngress},
	}
	got := berthswarm.Endpoints(svc, "127.0.0.1")
	want := []providers.Endpoint{{Port: 53, Address: "127.0.0.1:30053"}, {Port: 8080, Address: "127.0.0.1:30080"}}
	if !slices.Equal(got, want) {
		t.Fatalf("endpoints %+v, want %+v", got, want)
	}
	if got := berthswarm.Endpoints(swarm.Service{}, "127.0.0.1"); got != nil {
		t.Fatalf("endpoints of a service swarm has not published yet: %+v", got)
	}
	for host, want := range map[string]string{
		"unix:///var/run/docker.sock": "127.0.0.1", "tcp://0.0.0.0:2375": "127.0.0.1", "tcp://[::]:2375": "127.0.0.1",
		"tcp://192.0.2.7:2376": "192.0.2.7", "tcp://manager.example:2376": "manager.example", "": "127.0.0.1",
		"npipe:////./pipe/docker_engine": "127.0.0.1",
	} {
		if got := berthswarm.NodeAddress(host); got != want {
			t.Errorf("nodeAddress(%q) = %q, want %q", host, got, want)
		}
	}
}
