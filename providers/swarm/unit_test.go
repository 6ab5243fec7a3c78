package swarm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func desiredOf(w schema.Workload) providers.Desired {
	return providers.Desired{Owner: providers.Owner{Instance: "berth", Environment: "prod"}, Target: "swarm-prod",
		Workload: w, SpecHash: providers.SpecHash(w)}
}

// TestGoldenServiceSpec records the service spec berth sends for the reference workload (2 replicas, env, a
// public and an internal port, a command health check, 250m / 128Mi), as the engine API receives it.
func TestGoldenServiceSpec(t *testing.T) {
	d := desiredOf(referenceWorkload("web"))
	spec, err := berthswarm.ServiceSpecFor(d, "<network-id>", berthswarm.DefaultUpdateMonitor)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(spec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "web.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("service spec differs from %s (run with -update after review):\n%s", path, buf.Bytes())
	}
}

func TestServiceSpecMapping(t *testing.T) {
	w := referenceWorkload("web")
	w.Command = []string{"/app"}
	w.Ports = append(w.Ports, schema.Port{Port: 53, Protocol: "udp", Public: true})
	d := desiredOf(w)
	spec, err := berthswarm.ServiceSpecFor(d, "net1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cs := spec.TaskTemplate.ContainerSpec
	switch {
	case spec.Name != "berth-berth-prod-web":
		t.Errorf("name %q", spec.Name)
	case cs.Image != w.Image || strings.Join(cs.Command, " ") != "/app" || strings.Join(cs.Args, " ") != "serve":
		t.Errorf("container spec %+v", cs)
	case strings.Join(cs.Env, ",") != "GREETING=hello,PORT=8080":
		t.Errorf("env %v", cs.Env)
	case cs.Labels[providers.LabelSpecHash] != d.SpecHash || spec.Labels[providers.LabelSpecHash] != d.SpecHash:
		t.Errorf("spec hash labels: container %v, service %v", cs.Labels, spec.Labels)
	case cs.Healthcheck == nil || strings.Join(cs.Healthcheck.Test, " ") != "CMD /app healthcheck" || cs.Healthcheck.Retries != 3:
		t.Errorf("health check %+v", cs.Healthcheck)
	case spec.TaskTemplate.Resources.Limits.NanoCPUs != 250_000_000 || spec.TaskTemplate.Resources.Limits.MemoryBytes != 128<<20:
		t.Errorf("limits %+v", spec.TaskTemplate.Resources.Limits)
	case *spec.Mode.Replicated.Replicas != 2:
		t.Errorf("replicas %d", *spec.Mode.Replicated.Replicas)
	case spec.UpdateConfig.Order != swarm.UpdateOrderStartFirst || spec.UpdateConfig.FailureAction != swarm.UpdateFailureActionRollback ||
		spec.UpdateConfig.Parallelism != 1 || spec.UpdateConfig.Monitor != time.Second:
		t.Errorf("update config %+v", spec.UpdateConfig)
	case spec.RollbackConfig.Order != swarm.UpdateOrderStartFirst:
		t.Errorf("rollback config %+v", spec.RollbackConfig)
	case spec.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionAny:
		t.Errorf("restart policy %+v", spec.TaskTemplate.RestartPolicy)
	case len(spec.TaskTemplate.Networks) != 1 || spec.TaskTemplate.Networks[0].Target != "net1" ||
		strings.Join(spec.TaskTemplate.Networks[0].Aliases, ",") != "web":
		t.Errorf("networks %+v", spec.TaskTemplate.Networks)
	}
	ports := spec.EndpointSpec.Ports
	if len(ports) != 2 || ports[0].PublishedPort != 53 || ports[0].Protocol != swarm.PortConfigProtocolUDP ||
		ports[1].PublishedPort != 8080 || ports[1].TargetPort != 8080 || ports[1].PublishMode != swarm.PortConfigPublishModeIngress {
		t.Errorf("published ports %+v (the internal port 9090 must not be published)", ports)
	}

	// Read back: from the service's own fields, a digest the manager pinned after the tag left out, the internal
	// port not there (Normalize leaves it out of the desired side too).
	svc := swarm.Service{Spec: spec}
	svc.Spec.TaskTemplate.ContainerSpec.Image = w.Image + "@sha256:" + strings.Repeat("0", 64)
	got := berthswarm.ReadBack(svc)
	p := newUnitProvider(t)
	if got.Name != "web" || got.Replicas != 2 || providers.SpecHash(got) != providers.SpecHash(p.Normalize(w)) {
		t.Errorf("read back %+v\nwant      %+v", got, p.Normalize(w))
	}
	// A field changed by hand reads back changed.
	svc.Spec.TaskTemplate.ContainerSpec.Env = append(svc.Spec.TaskTemplate.ContainerSpec.Env, "EXTRA=1")
	svc.Spec.EndpointSpec.Ports[1].PublishMode = swarm.PortConfigPublishModeHost
	if got := berthswarm.ReadBack(svc); got.Env["EXTRA"] != "1" || got.Ports[0].Port != 8080 || got.Ports[0].Public {
		t.Errorf("hand edits not read back: %+v", got)
	}
	for in, want := range map[string]string{
		"app:1@sha256:0123":                "app:1@sha256:0123",
		"app@sha256:0123":                  "app@sha256:0123",
		"reg.example:5000/app:2@sha256:01": "reg.example:5000/app:2@sha256:01",
		"app:1":                            "app:1",
	} {
		if got := p.Normalize(schema.Workload{Image: in}).Image; got != want {
			t.Errorf("image %q normalises to %q, want %q", in, got, want)
		}
	}
}

// TestImageReadBack: the engine's respellings of the reference berth wrote, and the manager's pin of its tag, read
// back as berth wrote it; any other image reads back as the service has it.
func TestImageReadBack(t *testing.T) {
	d1 := "@sha256:" + strings.Repeat("1", 64)
	d2 := "@sha256:" + strings.Repeat("2", 64)
	for _, c := range []struct{ live, wrote, want string }{
		{"reg.example:5000/app:1", "reg.example:5000/app:1", "reg.example:5000/app:1"},
		{"reg.example:5000/app:1" + d1, "reg.example:5000/app:1", "reg.example:5000/app:1"},           // swarm's pin
		{"reg.example:5000/app:1" + d1, "reg.example:5000/app:1" + d1, "reg.example:5000/app:1" + d1}, // berth's pin
		{"reg.example:5000/app:1" + d2, "reg.example:5000/app:1" + d1, "reg.example:5000/app:1" + d2}, // changed
		{"app:latest", "docker.io/library/app", "docker.io/library/app"},                              // familiar form
		{"nginx:1" + d1, "docker.io/library/nginx:1" + d1, "docker.io/library/nginx:1" + d1},
		{"app:2", "app:1", "app:2"},
		{"app:2" + d1, "app:1", "app:2" + d1},
		{"other/app:1", "app:1", "other/app:1"},
		{"app:1" + d1, "", "app:1" + d1}, // made before LabelImage: as it is
		{"Not A Ref", "app:1", "Not A Ref"},
	} {
		if got := berthswarm.ImageOf(c.live, c.wrote); got != c.want {
			t.Errorf("image %q written as %q reads back %q, want %q", c.live, c.wrote, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	p := newUnitProvider(t)
	p.Publish = berthswarm.PublishIngress
	for _, c := range []struct {
		name   string
		edit   func(*schema.Workload)
		fields []string
	}{
		{"command check", func(w *schema.Workload) {}, nil},
		{"http check", func(w *schema.Workload) {
			w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}}
		}, nil},
		{"tcp check", func(w *schema.Workload) { w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 9090}} }, nil},
		{"no check", func(w *schema.Workload) { w.Health = nil }, nil},
		{"same published port", func(w *schema.Workload) {
			w.Ports = append(w.Ports, schema.Port{Port: 8081, Protocol: "tcp", Public: true, HostPort: 8080})
		}, []string{"ports[2].hostPort"}},
		{"same port, tcp and udp", func(w *schema.Workload) {
			w.Ports = append(w.Ports, schema.Port{Port: 8080, Protocol: "udp", Public: true})
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := referenceWorkload("web")
			c.edit(&w)
			var got []string
			for _, pr := range p.Validate(w) {
				got = append(got, pr.Field)
			}
			if strings.Join(got, ",") != strings.Join(c.fields, ",") {
				t.Errorf("problems at %v, want %v", got, c.fields)
			}
		})
	}
}

// TestValidateHostMode: host-mode publishing serves public ports through berth's TCP proxy, so a public UDP port is
// a problem there (an internal one is not).
func TestValidateHostMode(t *testing.T) {
	p := newUnitProvider(t)
	p.Publish = berthswarm.PublishHost
	w := referenceWorkload("web")
	w.Ports = append(w.Ports, schema.Port{Port: 53, Protocol: "udp", Public: true}, schema.Port{Port: 54, Protocol: "udp"})
	probs := p.Validate(w)
	if len(probs) != 1 || probs[0].Field != "ports[2].protocol" || !strings.Contains(probs[0].Message, "TCP only") {
		t.Fatalf("problems %+v, want one at ports[2].protocol", probs)
	}
}

func newUnitProvider(t *testing.T) *berthswarm.Provider {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := berthswarm.NewWithClient(cli, schema.Target{Name: "s", Type: "swarm"}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSettings(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		err      string
	}{
		{nil, ""},
		{map[string]any{"host": "unix:///var/run/docker.sock"}, ""},
		{map[string]any{"host": "tcp://manager:2376"}, ""},
		{map[string]any{"host": ""}, "settings.host: want a non-empty string"},
		{map[string]any{"host": 3}, "settings.host: want a non-empty string"},
		{map[string]any{"host": "no-scheme"}, "settings.host"},
		{map[string]any{"namespace": "x"}, "settings.namespace: unknown setting"},
		{map[string]any{"publish": "mesh"}, `settings.publish: "mesh": want "ingress" or "host"`},
		{map[string]any{"publicAddress": "localhost"}, "settings.publicAddress"},
		{map[string]any{"publish": "host", "publicAddress": "127.0.0.1"}, ""},
	} {
		tgt := schema.Target{Name: "sw", Type: "swarm", Settings: c.settings, Pos: schema.Pos{File: "berth.cue", Line: 3, Column: 2}}
		p, err := providers.New(tgt, providers.Options{})
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.settings, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "berth.cue:3:2")):
			t.Errorf("%v: error %v, want one naming berth.cue:3:2 and %q", c.settings, err, c.err)
		}
		if p != nil {
			if p.Type() != "swarm" {
				t.Errorf("Type() = %q", p.Type())
			}
			if want := c.settings["publish"]; want != nil && p.(*berthswarm.Provider).Publish != want {
				t.Errorf("%v: Publish = %q", c.settings, p.(*berthswarm.Provider).Publish)
			}
			p.(providers.Closer).Close()
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", cerrdefs.ErrUnavailable), int(providers.Transient)},
		{fmt.Errorf("x: %w", cerrdefs.ErrInternal), int(providers.Transient)},
		{fmt.Errorf("x: %w", cerrdefs.ErrConflict), int(providers.Transient)},
		{context.DeadlineExceeded, int(providers.Transient)},
		{fmt.Errorf("x: %w", cerrdefs.ErrInvalidArgument), int(providers.Invalid)},
		{fmt.Errorf("x: %w", cerrdefs.ErrPermissionDenied), int(providers.Invalid)},
		{fmt.Errorf("x: %w", cerrdefs.ErrNotFound), int(providers.Final)},
		{fmt.Errorf("rpc error: code = Unknown desc = update out of sequence: %w", cerrdefs.ErrInternal), int(providers.Final)},
		{errors.New("something else"), int(providers.Final)},
	} {
		if got := int(berthswarm.Classify(c.err)); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// task is a task of the reference workload in state st, meant to run unless desired says otherwise.
func task(id string, slot int, hash string, st swarm.TaskState, desired swarm.TaskState) swarm.Task {
	return swarm.Task{ID: id, Slot: slot, DesiredState: desired,
		Spec:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Labels: map[string]string{providers.LabelSpecHash: hash}}},
		Status: swarm.TaskStatus{State: st, ContainerStatus: &swarm.ContainerStatus{ContainerID: "c" + id}}}
}

func TestProgress(t *testing.T) {
	d := desiredOf(referenceWorkload("web")) // 2 replicas
	h := d.SpecHash
	svc := func(hash string, us *swarm.UpdateStatus) swarm.Service {
		return swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "berth-berth-prod-web",
			Labels: map[string]string{providers.LabelSpecHash: hash}}}, UpdateStatus: us}
	}
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	edited := func(tk swarm.Task) swarm.Task {
		tk.Spec.ContainerSpec.Env = []string{"GREETING=set by hand"}
		return tk
	}
	failed := func(id string) swarm.Task {
		tk := task(id, 1, h, swarm.TaskStateFailed, shut)
		tk.Status.Err = "No such image: registry.example/berth-app:1"
		return tk
	}
	for _, c := range []struct {
		name      string
		svc       swarm.Service
		tasks     []swarm.Task
		done      bool
		err       string
		permanent bool
	}{
		{"converged", svc(h, nil), []swarm.Task{task("a", 1, h, run, run), task("b", 2, h, run, run)}, true, "", false},
		{"one starting", svc(h, nil), []swarm.Task{task("a", 1, h, run, run), task("b", 2, h, swarm.TaskStateStarting, run)}, false, "", false},
		{"old task still meant to run", svc(h, &swarm.UpdateStatus{State: swarm.UpdateStateCompleted}),
			[]swarm.Task{task("a", 1, h, run, run), task("b", 2, h, run, run), task("c", 2, "old", run, run)}, false, "", false},
		{"old task shut down", svc(h, &swarm.UpdateStatus{State: swarm.UpdateStateCompleted}),
			[]swarm.Task{task("a", 1, h, run, run), task("b", 2, h, run, run), task("c", 2, "old", run, shut)}, true, "", false},
		{"a task of the template edited by hand, same hash", svc(h, &swarm.UpdateStatus{State: swarm.UpdateStateCompleted}),
			[]swarm.Task{task("a", 1, h, run, run), edited(task("b", 2, h, run, run))}, false, "", false},
		{"updating", svc(h, &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}),
			[]swarm.Task{task("a", 1, h, run, run), task("b", 2, h, run, run)}, false, "", false},
		{"paused", svc(h, &swarm.UpdateStatus{State: swarm.UpdateStatePaused, Message: "update paused due to failure"}),
			nil, false, "is paused", false},
		{"rolled back", svc("old", &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"}),
			nil, false, "rolls the service back", false},
		{"changed by someone else", svc("other", nil), nil, false, "changed by someone else", false},
		{"image missing", svc(h, nil), []swarm.Task{failed("a"), failed("b"), failed("c"), failed("d"), failed("e"), failed("f")},
			false, "6 tasks of spec", true},
		{"some failed, one runs", svc(h, nil), []swarm.Task{failed("a"), failed("b"), failed("c"), failed("d"), failed("e"),
			failed("f"), task("g", 1, h, run, run)}, false, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			done, err := berthswarm.Progress(c.svc, c.tasks, d, berthswarm.DefaultFailedTasks, nil)
			if done != c.done {
				t.Errorf("done = %t, want %t", done, c.done)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want %q", err, c.err)
			case c.err != "" && errors.Is(err, providers.ErrPermanent) != c.permanent:
				t.Errorf("permanent = %t, want %t: %v", !c.permanent, c.permanent, err)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	w := referenceWorkload("web")
	d := desiredOf(w)
	spec, err := berthswarm.ServiceSpecFor(d, "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	svc := swarm.Service{ID: "s1", Spec: spec}
	withHealth := func(tk swarm.Task) swarm.Task {
		tk.Spec.ContainerSpec.Healthcheck = spec.TaskTemplate.ContainerSpec.Healthcheck
		return tk
	}
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	tasks := []swarm.Task{
		withHealth(task("b", 2, "old", run, run)),
		withHealth(task("a", 1, "old", swarm.TaskStateStarting, run)),
		withHealth(task("c", 1, d.SpecHash, run, run)),
		withHealth(task("z", 1, d.SpecHash, swarm.TaskStateFailed, shut)), // history: not a replica
	}
	o := berthswarm.Observe(svc, tasks, "swarm-prod", nil)
	if o.Workload != "web" || o.Target != "swarm-prod" || o.Spec.Image != w.Image || o.Spec.Replicas != 2 {
		t.Errorf("observed %+v", o)
	}
	if o.SpecHash != "old" {
		t.Errorf("SpecHash = %q, want the majority's %q", o.SpecHash, "old")
	}
	var got []string
	for _, r := range o.Replicas {
		got = append(got, fmt.Sprintf("%s:%s:%t:%s", r.ID, r.State, r.Running, r.Health))
	}
	if want := "a:starting:true:starting,c:running:true:healthy,b:running:true:healthy"; strings.Join(got, ",") != want {
		t.Errorf("replicas %v, want %s", got, want)
	}
	if o.Replicas[0].Name != "berth-berth-prod-web.1.a" {
		t.Errorf("replica name %q", o.Replicas[0].Name)
	}
	// Without replicas, or on a tie, the service's own hash.
	if o := berthswarm.Observe(svc, nil, "t", nil); o.SpecHash != d.SpecHash {
		t.Errorf("no replicas: SpecHash %q", o.SpecHash)
	}
	if o := berthswarm.Observe(svc, tasks[1:3], "t", nil); o.SpecHash != d.SpecHash {
		t.Errorf("tie: SpecHash %q", o.SpecHash)
	}
}

// TestPullRefused: the registry refusals the engine passes on as server errors are permanent for checkPull; what may
// pass is not.
func TestPullRefused(t *testing.T) {
	daemon := func(msg string) error { return errors.New("Error response from daemon: " + msg) }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{daemon(`Get "http://127.0.0.1:5000/v2/a/manifests/v1": unauthorized: bad credentials`), true},
		{daemon("errors:\ndenied: requested access to the resource is denied"), true},
		{daemon("manifest unknown: manifest unknown"), true},
		{cerrdefs.ErrNotFound.WithMessage("no such image"), true},
		{daemon(`Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused`), false},
		{cerrdefs.ErrUnavailable.WithMessage("manager busy"), false},
	} {
		if got := berthswarm.PullRefused(c.err); got != c.want {
			t.Errorf("pullRefused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if got := berthswarm.Classify(providers.Permanent(cerrdefs.ErrInternal.WithMessage("unauthorized"))); got != providers.Invalid {
		t.Errorf("a permanent server error classifies as %v, want Invalid (no retry)", got)
	}
	raw, err := base64.URLEncoding.DecodeString(berthswarm.AnonymousAuth)
	if err != nil || string(raw) != "{}" {
		t.Fatalf("anonymous credential %q decodes to %q, %v; want {}", berthswarm.AnonymousAuth, raw, err)
	}
}

// TestLastTaskError: the newest failed task of the spec says why a rollout failed.
func TestLastTaskError(t *testing.T) {
	task := func(hash string, state swarm.TaskState, msg string, at int64) swarm.Task {
		return swarm.Task{Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Labels: map[string]string{providers.LabelSpecHash: hash}}},
			Status: swarm.TaskStatus{State: state, Err: msg, Timestamp: time.Unix(at, 0)}}
	}
	ts := []swarm.Task{
		task("new", swarm.TaskStateFailed, "No such image: a:1", 10),
		task("new", swarm.TaskStateRejected, "No such image: a:2", 20),
		task("old", swarm.TaskStateFailed, "exit 1", 30),
		task("new", swarm.TaskStateRunning, "", 40),
	}
	if got := berthswarm.LastTaskError(ts, "new"); got != "No such image: a:2" {
		t.Fatalf("lastTaskError = %q", got)
	}
	if got := berthswarm.LastTaskError(ts, "none"); got != "" {
		t.Fatalf("lastTaskError of no task = %q", got)
	}
}
