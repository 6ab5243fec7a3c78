package docker

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func TestSettings(t *testing.T) {
	tgt := schema.Target{Name: "local", Type: "docker", Pos: schema.Pos{File: "targets.cue", Line: 3, Column: 2},
		Settings: map[string]any{"hots": "unix:///x"}}
	_, err := parseSettings(tgt)
	if err == nil || !strings.Contains(err.Error(), "targets.cue:3:2") || !strings.Contains(err.Error(), "settings.hots") {
		t.Fatalf("unknown setting: %v", err)
	}
	tgt.Settings = map[string]any{"publicAddress": 7}
	if _, err := parseSettings(tgt); err == nil || !strings.Contains(err.Error(), "settings.publicAddress") {
		t.Fatalf("bad type: %v", err)
	}
	tgt.Settings = map[string]any{"publicAddress": "127.0.0.1", "host": "unix:///var/run/docker.sock"}
	s, err := parseSettings(tgt)
	if err != nil || s.publicAddress != "127.0.0.1" || s.host != "unix:///var/run/docker.sock" {
		t.Fatalf("settings %+v, %v", s, err)
	}
	tgt.Settings = nil
	if s, _ := parseSettings(tgt); s.publicAddress != DefaultPublicAddress {
		t.Fatalf("default public address %q", s.publicAddress)
	}
}

func TestValidate(t *testing.T) {
	p := &Provider{}
	w := schema.Workload{Ports: []schema.Port{
		{Port: 53, Protocol: "udp", Public: true},
		{Port: 80, Protocol: "tcp", Public: true},
		{Port: 81, Protocol: "tcp", Public: true, HostPort: 80},
		{Port: 54, Protocol: "udp"},
	}}
	got := p.Validate(w)
	if len(got) != 2 || got[0].Field != "ports[0].public" || got[1].Field != "ports[2].hostPort" {
		t.Fatalf("problems: %+v", got)
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	w := schema.Workload{Name: "web", Image: "img", Replicas: 2, Env: map[string]string{"A": "1"},
		Ports: []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 80}, {Port: 9090, Protocol: "tcp"}},
		Pos:   map[string]schema.Pos{"": {File: "x.cue"}}}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: w,
		SpecHash: providers.SpecHash(w)}
	k := wkey{"i", "e", "t", "web"}
	l, err := containerLabels(k, d, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !k.owns(l) || replicaIndex(l) != 1 || l[providers.LabelSpecHash] != d.SpecHash || l[LabelPublicPorts] != "80:8080" {
		t.Fatalf("labels %v", l)
	}
	back, err := specOf(l)
	if err != nil {
		t.Fatal(err)
	}
	if providers.SpecHash(back) != d.SpecHash {
		t.Fatalf("spec read back hashes to %s, want %s", providers.SpecHash(back), d.SpecHash)
	}
	if _, err := parsePublicPorts("80:x"); err == nil {
		t.Fatal("bad public-ports label accepted")
	}
	if got := containerName(wkey{"a b", "e", "t", "w/x"}, "abc", 2); got != "berth-a_b-e-w_x-abc-2" {
		t.Fatalf("name %q", got)
	}
}

func TestRegistered(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	_, err := providers.New(schema.Target{Name: "local", Type: "docker", Settings: map[string]any{"bogus": "x"}}, providers.Options{})
	if err == nil || !strings.Contains(err.Error(), "settings.bogus") {
		t.Fatalf("registered factory with an unknown setting: %v", err)
	}
	p, err := providers.New(schema.Target{Name: "local", Type: "docker", Settings: map[string]any{"host": "unix:///nonexistent/docker.sock"}}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.(providers.Closer).Close()
	if p.Type() != "docker" || !p.Capabilities().HealthCommand {
		t.Fatalf("provider %T: type %q caps %+v", p, p.Type(), p.Capabilities())
	}
	// An engine that does not answer is an error, not a hang or an empty list.
	if _, err := p.List(t.Context(), providers.Owner{Instance: "i", Environment: "e"}, "local"); err == nil {
		t.Fatal("List against a missing engine: want an error")
	}
}
