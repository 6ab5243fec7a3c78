package nomad_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/schema"
)

const testHead = "0123456789abcdef0123456789abcdef01234567"

func previewDesired(owner providers.Owner, tgt string, w schema.Workload) providers.Desired {
	d := desired(owner, tgt, w)
	d.Preview = &schema.Preview{Number: owner.Preview, Head: testHead, Base: "prod"}
	return d
}

// TestPreviewMeta: a preview's job carries berth.dev/preview and berth.dev/head beside the ownership meta; a base
// job carries neither, and each environment's List shows only its own job.
func TestPreviewMeta(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := providers.Owner{Instance: "berth", Environment: "prod"}
	pr := providers.Owner{Instance: "berth", Environment: schema.PreviewName(42), Preview: 42}
	w := referenceWorkload("web")
	w.Replicas = 1
	if err := p.Apply(ctx, desired(base, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	wp := w
	wp.Ports = []schema.Port{{Name: "http", Port: 8080, Protocol: "tcp", Public: true, HostPort: 18080}}
	if err := p.Apply(ctx, previewDesired(pr, "nomad", wp)); err != nil {
		t.Fatal(err)
	}
	jobs := operator(t, emu).Jobs()
	pj, _, err := jobs.Info("berth-berth-pr-42-web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pj.Meta[providers.LabelPreview] != "42" || pj.Meta[providers.LabelHead] != testHead ||
		pj.Meta[providers.LabelEnvironment] != "pr-42" {
		t.Errorf("preview job meta = %v", pj.Meta)
	}
	bj, _, err := jobs.Info("berth-berth-prod-web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bj.Meta[providers.LabelPreview]; ok {
		t.Errorf("base job meta = %v", bj.Meta)
	}
	for _, o := range []providers.Owner{base, pr} {
		obs, err := p.List(ctx, o, "nomad")
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) != 1 {
			t.Fatalf("List %s = %d workloads", o.Environment, len(obs))
		}
	}
}

// TestEndpoints: one endpoint per public port, from the running allocation's allocated port on the node's address
// (a wildcard as 127.0.0.1); internal ports have none.
func TestEndpoints(t *testing.T) {
	for _, c := range []struct{ node, want string }{
		{"", "127.0.0.1:8080"},
		{"10.1.2.3", "10.1.2.3:8080"},
		{"0.0.0.0", "127.0.0.1:8080"},
	} {
		t.Run(c.want+"/"+c.node, func(t *testing.T) {
			hermetic(t)
			emu := nomademu.New(nomademu.Options{Token: testToken, NodeAddress: c.node})
			t.Cleanup(emu.Close)
			p := newProvider(t, emu, "nomad")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			owner := providers.Owner{Instance: "berth", Environment: "prod"}
			w := referenceWorkload("web")
			w.Ports = append(w.Ports, schema.Port{Name: "admin", Port: 9000, Protocol: "tcp"})
			if err := p.Apply(ctx, desired(owner, "nomad", w)); err != nil {
				t.Fatal(err)
			}
			obs, err := p.List(ctx, owner, "nomad")
			if err != nil || len(obs) != 1 {
				t.Fatalf("List = %v, %v", obs, err)
			}
			want := []providers.Endpoint{{Port: 8080, Address: c.want}}
			if !slices.Equal(obs[0].Endpoints, want) {
				t.Errorf("Endpoints = %+v, want %+v", obs[0].Endpoints, want)
			}
		})
	}
}

// TestEnvironments: one job listing (prefix, meta and a filter on instance and target), each environment once
// with its preview number and head; other instances' and targets' jobs and look-alikes are not listed.
func TestEnvironments(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := referenceWorkload("web")
	w.Replicas = 1
	w2 := referenceWorkload("api")
	w2.Replicas = 1
	w2.Ports = nil
	w2.Health = nil
	for _, d := range []providers.Desired{
		desired(providers.Owner{Instance: "berth", Environment: "prod"}, "nomad", w),
		desired(providers.Owner{Instance: "berth", Environment: "prod"}, "nomad", w2),
		previewDesired(providers.Owner{Instance: "berth", Environment: "pr-7", Preview: 7}, "nomad", w2),
		desired(providers.Owner{Instance: "berth", Environment: "other-target"}, "nomad-2", w2),
		desired(providers.Owner{Instance: "berthx", Environment: "dev"}, "nomad", w2),
	} {
		if err := p.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	emu.CreateLookAlike(testNamespace, "berth-berth-staging-web", 1)
	emu.ResetRequests()
	refs, err := p.Environments(ctx, "berth", "nomad")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.EnvironmentRef{{Name: "pr-7", Preview: 7, Head: testHead}, {Name: "prod"}}
	if !slices.Equal(refs, want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}
	reqs := emu.Requests()
	if len(reqs) != 1 || !strings.HasPrefix(reqs[0].Path, "/v1/jobs?") || !strings.Contains(reqs[0].Path, "filter=") {
		t.Errorf("Environments made %d requests: %+v", len(reqs), reqs)
	}
}

// TestPreviewNumber: a malformed berth.dev/preview reads as 0.
func TestPreviewNumber(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := referenceWorkload("api")
	w.Replicas, w.Ports, w.Health = 1, nil, nil
	owner := providers.Owner{Instance: "berth", Environment: "pr-9", Preview: 9}
	if err := p.Apply(ctx, previewDesired(owner, "nomad", w)); err != nil {
		t.Fatal(err)
	}
	run(emu, func(string) string { return "berth-berth-pr-9-api" }, func(j *api.Job) {
		j.Meta[providers.LabelPreview] = "09x"
	})(ctx, t, "api")
	refs, err := p.Environments(ctx, "berth", "nomad")
	if err != nil {
		t.Fatal(err)
	}
	if want := []providers.EnvironmentRef{{Name: "pr-9", Head: testHead}}; !slices.Equal(refs, want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}
}
