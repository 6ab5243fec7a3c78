package aws_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// A revision edited by hand that kept berth's tags (the spec hash included) and that the service was pointed at
// is seen by List from its own fields, and one Apply of the unchanged spec replaces it; a second Apply is a no-op.
// The List cache: a pass over known revisions describes none, a hand-made one is described once.
func TestApplyRepairsHandEditedRevision(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	d := desired("web")
	owner, svcName := d.Owner, "berth-berth-dev-web"
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	list := func() providers.Observed {
		t.Helper()
		obs, err := p.List(ctx, owner, "aws-test")
		if err != nil || len(obs) != 1 {
			t.Fatalf("List = %v, %v", obs, err)
		}
		return obs[0]
	}
	p.List(ctx, owner, "aws-test") // ECS lists a new service from the second ListServices on
	emu.ResetRequests()
	if o := list(); o.Spec.Image != d.Workload.Image || o.SpecHash != d.SpecHash || o.Spec.Replicas != 2 {
		t.Fatalf("before the edit: %+v", o)
	}
	if n := count(emu, "DescribeTaskDefinition"); n != 0 {
		t.Errorf("a List pass over known revisions described %d task definitions, want 0 (cached by ARN)", n)
	}

	editContainer(emu, func(string) string { return svcName }, func(c *types.ContainerDefinition) {
		c.Image = aws.String("registry.example/by-hand:1")
	})(ctx, t, "web")
	emu.ResetRequests()
	o := list()
	if o.Spec.Image != "registry.example/by-hand:1" || o.SpecHash != d.SpecHash {
		t.Fatalf("after the edit List reads image %q hash %s, want the hand-made image and berth's hash", o.Spec.Image, o.SpecHash)
	}
	if n := count(emu, "DescribeTaskDefinition"); n != 1 {
		t.Errorf("the hand-made revision was described %d times, want 1", n)
	}

	if err := p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if o := list(); o.Spec.Image != d.Workload.Image {
		t.Fatalf("after Apply the image is %q, want %q", o.Spec.Image, d.Workload.Image)
	}
	c := sdkClient(ctx, t, emu)
	active, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(svcName),
		Status: types.TaskDefinitionStatusActive})
	if err != nil || len(active.TaskDefinitionArns) != 1 {
		t.Errorf("ACTIVE revisions after the repair: %v, %v; want only the one the service runs", active.TaskDefinitionArns, err)
	}
	emu.ResetRequests()
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if r, u := count(emu, "RegisterTaskDefinition"), count(emu, "UpdateService"); r != 0 || u != 0 {
		t.Errorf("a repeated Apply registered %d revisions and updated the service %d times, want 0 and 0", r, u)
	}
}

// A desired count changed by hand is read back as replicas and repaired by an UpdateService of the count alone,
// on the same revision (no rollout).
func TestApplyRepairsDesiredCount(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	d := desired("web")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	scaleByHand(emu, func(string) string { return "berth-berth-dev-web" })(ctx, t, "web")
	p.List(ctx, d.Owner, "aws-test")
	obs, err := p.List(ctx, d.Owner, "aws-test")
	if err != nil || len(obs) != 1 || obs[0].Spec.Replicas != 3 {
		t.Fatalf("List after the hand scale = %+v, %v; want replicas 3", obs, err)
	}
	emu.ResetRequests()
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if r := count(emu, "RegisterTaskDefinition"); r != 0 {
		t.Errorf("repairing the count registered %d revisions, want 0", r)
	}
	if active, running := emu.ServiceRunning(testCluster, "berth-berth-dev-web"); !active || running != 2 {
		t.Errorf("service active %t running %d, want true 2", active, running)
	}
}

// What Apply sends reads back through the emulator (ECS's echo: defaults, host ports) as the planner compares it:
// List's spec equals the desired workload in providers.Normalize form after the provider's Normalize, also where
// ECS cannot store a field as it is.
func TestReadBackThroughEmulator(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	cases := map[string]func(*schema.Workload){
		"plain": func(*schema.Workload) {},
		"public": func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 80, Protocol: "tcp", Public: true, HostPort: 8080}}
		},
		"names": func(w *schema.Workload) {
			w.Ports = []schema.Port{{Name: "HTTP", Port: 80}, {Name: "dns", Port: 53, Protocol: "udp"}, {Name: "dns", Port: 54}}
		},
		"subsecond": func(w *schema.Workload) {
			w.Health.Interval, w.Health.Timeout = schema.Duration(5500*time.Millisecond), schema.Duration(1500*time.Millisecond)
		},
		"start": func(w *schema.Workload) { w.Health.StartPeriod = schema.Duration(30 * time.Second) },
		"sizes": func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 300, MemoryBytes: 700 << 20} },
		"none": func(w *schema.Workload) {
			w.Resources, w.Health, w.Env, w.Ports, w.Args = schema.Resources{}, nil, nil, nil, nil
		},
	}
	want := map[string]schema.Workload{}
	for name, mod := range cases {
		d := desired(name)
		h := *d.Workload.Health
		d.Workload.Health = &h
		d.Workload.Replicas = 1
		mod(&d.Workload)
		d.SpecHash = providers.SpecHash(d.Workload)
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("%s: Apply: %v", name, err)
		}
		want[name] = providers.Normalize(p.Normalize(providers.Normalize(d.Workload)))
	}
	p.List(ctx, providers.Owner{Instance: "berth", Environment: "dev"}, "aws-test")
	obs, err := p.List(ctx, providers.Owner{Instance: "berth", Environment: "dev"}, "aws-test")
	if err != nil || len(obs) != len(cases) {
		t.Fatalf("List = %d workloads, %v; want %d", len(obs), err, len(cases))
	}
	for _, o := range obs {
		got := providers.Normalize(o.Spec)
		if w := want[o.Workload]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s: read back %+v\nwant         %+v", o.Workload, got, w)
		}
		if len(o.Missing) > 0 {
			t.Errorf("%s: missing %v", o.Workload, o.Missing)
		}
	}
}
