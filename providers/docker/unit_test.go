package docker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

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
		{Port: 80, Protocol: "TCP"},
	}}
	got := p.Validate(w)
	if len(got) != 3 || got[0].Field != "ports[0].public" || got[1].Field != "ports[2].hostPort" || got[2].Field != "ports[4].port" {
		t.Fatalf("problems: %+v", got)
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	w := schema.Workload{Name: "web", Image: "img", Replicas: 2, Env: map[string]string{"A": "1"},
		Ports:  []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 80}, {Port: 9090, Protocol: "tcp"}},
		Health: &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}},
		Pos:    map[string]schema.Pos{"": {File: "x.cue"}}}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: w,
		SpecHash: providers.SpecHash(w)}
	k := wkey{"i", "e", "t", "web"}
	l, err := containerLabels(k, d, 1, readBack(w, imageDefaults{}))
	if err != nil {
		t.Fatal(err)
	}
	if !k.owns(l) || replicaIndex(l) != 1 || l[providers.LabelSpecHash] != d.SpecHash || l[LabelPublicPorts] != "80:8080" {
		t.Fatalf("labels %v", l)
	}
	if l[LabelHealth] != `{"http":{"path":"/healthz","port":8080},"interval":"2s","timeout":"2s","retries":3}` {
		t.Fatalf("health label %s", l[LabelHealth])
	}
	for key, v := range l {
		if strings.Contains(v, `"A"`) || key == "berth.dev/spec" {
			t.Fatalf("label %s copies the spec: %s", key, v)
		}
	}
	if _, err := parsePublicPorts("80:x"); err == nil {
		t.Fatal("bad public-ports label accepted")
	}
	if got := containerName(wkey{"a b", "e", "t", "w/x"}, "abc", 2); got != "berth-a_b-e-w_x-abc-2" {
		t.Fatalf("name %q", got)
	}
}

// created is what the engine makes of a create request from an image with these defaults (the merge of the
// daemon's create: the image's env under the container's, its entrypoint and cmd when the container sets none,
// its health check when the container sets none).
func created(cfg *container.Config, hc *container.HostConfig, img imageDefaults) container.InspectResponse {
	c := *cfg
	env := append([]string(nil), c.Env...)
	have := envMap(c.Env)
	for k, v := range img.env {
		if _, ok := have[k]; !ok {
			env = append(env, k+"="+v)
		}
	}
	c.Env = env
	if len(c.Entrypoint) == 0 {
		if len(c.Cmd) == 0 {
			c.Cmd = img.cmd
		}
		c.Entrypoint = img.entrypoint
	}
	if c.Healthcheck == nil {
		c.Healthcheck = img.health
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{HostConfig: hc, Image: "sha256:x"},
		Config: &c}
}

// TestReadBack: a container made for a workload reads back, field by field, as Normalize says, whatever the image
// brings; a field changed on the container shows.
func TestReadBack(t *testing.T) {
	img := imageDefaults{entrypoint: []string{"/app"}, cmd: []string{"serve"},
		env:    map[string]string{"PATH": "/bin", "MODE": "prod"},
		health: &container.HealthConfig{Test: []string{"CMD", "/app", "healthcheck"}, Interval: time.Minute}}
	k := wkey{"i", "e", "t", "web"}
	for _, w := range []schema.Workload{
		{Name: "web", Image: "app:1", Env: map[string]string{"GREETING": "hi", "MODE": "prod"},
			Ports: []schema.Port{{Name: "http", Port: 9090, Protocol: "TCP", Public: true},
				{Port: 53, Protocol: "udp"}, {Port: 8080}},
			Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}, Retries: 5}},
		{Name: "web", Image: "app:1", Command: []string{"/app"}, Args: []string{"serve"},
			Resources: schema.Resources{CPUMillis: 1500, MemoryBytes: 64 << 20},
			Health:    &schema.HealthCheck{Command: []string{"/app", "healthcheck"}, Interval: schema.Duration(time.Second)}},
		{Name: "web", Image: "app:1", Command: []string{"/bin/other"}, Env: map[string]string{"MODE": "dev"}},
		{Name: "web", Image: "app:1", Args: []string{"work"}},
	} {
		d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: w,
			SpecHash: providers.SpecHash(w)}
		want := readBack(w, img)
		cfg, hc, _, err := containerConfig(k, d, want, healthOf(w.Health), 0)
		if err != nil {
			t.Fatal(err)
		}
		ci := created(cfg, hc, img)
		got := live(ci, img)
		if liveHash(got) != liveHash(want) || ci.Config.Labels[LabelLiveHash] != liveHash(got) {
			t.Errorf("workload %+v\nreads back %+v\nwant       %+v", w, got, want)
		}
		ci.Config.Env = append(ci.Config.Env, "EXTRA=1")
		if got := live(ci, img); got.Env["EXTRA"] != "1" || liveHash(got) == ci.Config.Labels[LabelLiveHash] {
			t.Errorf("an env var added by hand does not read back: %+v", got)
		}
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

// TestObserveShowsTheEditedReplica: of two replicas of one spec, the one changed by hand is the one read back,
// whatever its index.
func TestObserveShowsTheEditedReplica(t *testing.T) {
	img := imageDefaults{entrypoint: []string{"/app"}, env: map[string]string{"PATH": "/bin"}}
	p := &Provider{images: map[string]imageDefaults{"sha256:x": img}, refs: map[string]string{}}
	k := wkey{"i", "e", "t", "web"}
	w := schema.Workload{Name: "web", Image: "app:1", Args: []string{"serve"}, Env: map[string]string{"GREETING": "hi"}, Replicas: 2}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: w,
		SpecHash: providers.SpecHash(w)}
	want := readBack(w, img)
	replica := func(i int) container.InspectResponse {
		cfg, hc, _, err := containerConfig(k, d, want, healthOf(nil), i)
		if err != nil {
			t.Fatal(err)
		}
		ci := created(cfg, hc, img)
		ci.ID, ci.Name, ci.State = fmt.Sprintf("c%d", i), fmt.Sprintf("web-%d", i), &container.State{Status: "exited"}
		return ci
	}
	r0, r1 := replica(0), replica(1)
	o, err := p.observe(t.Context(), "web", "t", []container.InspectResponse{r1, r0})
	if err != nil {
		t.Fatal(err)
	}
	if o.Spec.Env["GREETING"] != "hi" || o.Spec.Replicas != 2 || o.Replicas[0].ID != "c0" {
		t.Fatalf("intact replicas: %+v", o)
	}
	r1.Config.Env = []string{"GREETING=by hand", "PATH=/bin"}
	if o, err = p.observe(t.Context(), "web", "t", []container.InspectResponse{r0, r1}); err != nil {
		t.Fatal(err)
	}
	if o.Spec.Env["GREETING"] != "by hand" || o.Spec.Replicas != 2 || o.SpecHash != d.SpecHash {
		t.Fatalf("replica 1 edited by hand: read back %+v", o.Spec)
	}
	if p.Normalize(w).Env == nil || len(p.Normalize(w).Env) != 1 {
		t.Fatalf("Normalize with the image known: %+v", p.Normalize(w))
	}
}
