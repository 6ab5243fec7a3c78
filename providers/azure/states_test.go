package azure_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/schema"
)

// TestBrokenStatesReplaced: a group the platform marks Unhealthy or NotAccessible (or that ended Failed or
// Canceled) reads as not running, and Apply replaces it instead of waiting for it as if an operation were running.
func TestBrokenStatesReplaced(t *testing.T) {
	for _, state := range []string{"Unhealthy", "NotAccessible", "Failed", "Canceled"} {
		t.Run(state, func(t *testing.T) {
			emu := aciemu.New(aciemu.Options{})
			t.Cleanup(emu.Close)
			p := newProvider(t, emu)
			p.ReadyTimeout = 5 * time.Second
			w := referenceWorkload("web")
			w.Replicas = 1
			owner := providers.Owner{Instance: "i", Environment: "e"}
			d := providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}
			ctx := context.Background()
			if err := p.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			name := azure.GroupName("i", "e", "web", 0, d.SpecHash)
			emu.SetState(testSub, testRG, name, state)
			obs, err := p.List(ctx, owner, testTarget)
			if err != nil || len(obs) != 1 || len(obs[0].Replicas) != 1 {
				t.Fatalf("List: %+v, %v", obs, err)
			}
			if r := obs[0].Replicas[0]; r.Running || r.Ready() || r.Health != "unhealthy" {
				t.Fatalf("a %s group reads as %+v, want not running and unhealthy", state, r)
			}
			emu.ResetRequests()
			if err := p.Apply(ctx, d); err != nil {
				t.Fatalf("Apply over a %s group: %v", state, err)
			}
			if n := count(emu.Requests(), "ContainerGroups_Delete"); n != 1 {
				t.Errorf("%d deletes, want 1: the %s group is replaced", n, state)
			}
			if g := emu.Groups(); len(g) != 1 || g[0].ProvisioningState != "Succeeded" || g[0].State != "Running" {
				t.Errorf("after Apply: %+v", g)
			}
		})
	}
}

// TestListCost: one List pass is one list call and one Get per owned group (lists carry no instance view), and
// the replicas read as ready from the Gets.
func TestListCost(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	owner := providers.Owner{Instance: "i", Environment: "e"}
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		w := referenceWorkload(n)
		if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.List(ctx, owner, testTarget); err != nil { // past the emulator's list lag
		t.Fatal(err)
	}
	emu.ResetRequests()
	obs, err := p.List(ctx, owner, testTarget)
	if err != nil {
		t.Fatal(err)
	}
	reqs := emu.Requests()
	if l, g := count(reqs, "ContainerGroups_ListByResourceGroup"), count(reqs, "ContainerGroups_Get"); l != 1 || g != 4 || len(reqs) != 5 {
		t.Errorf("one List pass: %d lists, %d gets, %d requests; want 1, 4, 5", l, g, len(reqs))
	}
	for _, o := range obs {
		for _, r := range o.Replicas {
			if !r.Ready() {
				t.Errorf("%s: replica %s not ready: %+v", o.Workload, r.Name, r)
			}
		}
	}
}

// TestWhatBerthSends: workloads of every shape berth maps are accepted by the strict emulator (enums from the SDK's
// own lists, required fields, ranges) and read back exactly in the provider's Normalize form.
func TestWhatBerthSends(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	owner := providers.Owner{Instance: "i", Environment: "e"}
	ctx := context.Background()
	variants := map[string]func(w *schema.Workload){
		"reference": func(*schema.Workload) {},
		"udp and secrets": func(w *schema.Workload) {
			w.Ports = append(w.Ports, schema.Port{Port: 53, Protocol: "udp", Public: true})
			w.Env["DB_PASSWORD"] = "pw"
		},
		"command check with start period": func(w *schema.Workload) {
			w.Health = &schema.HealthCheck{Command: []string{"/app", "check"}, Interval: schema.Duration(1500 * time.Millisecond),
				StartPeriod: schema.Duration(10 * time.Second)}
		},
		"defaults": func(w *schema.Workload) {
			w.Resources, w.Health, w.Ports, w.Env, w.Command, w.Args = schema.Resources{}, nil, nil, nil, nil, nil
		},
		"named port": func(w *schema.Workload) {
			w.Ports[0].Name = "http"
			w.Resources.MemoryBytes = 1536 << 20
		},
	}
	i := 0
	for name, change := range variants {
		w := referenceWorkload(fmt.Sprintf("w%d", i))
		i++
		w.Replicas = 1
		change(&w)
		if ps := p.Validate(w); len(ps) > 0 {
			t.Fatalf("%s: Validate: %v", name, ps)
		}
		if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
			t.Fatalf("%s: Apply: %v", name, err)
		}
		obs, err := p.List(ctx, owner, testTarget)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range obs {
			if o.Workload != w.Name {
				continue
			}
			got, want := providers.Normalize(o.Spec), providers.Normalize(p.Normalize(providers.Normalize(w)))
			got.Name, want.Name = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: read back\n got %+v\nwant %+v", name, got, want)
			}
		}
	}
}
