package azure_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/schema"
)

func count(reqs []aciemu.Request, op string) int {
	n := 0
	for _, r := range reqs {
		if r.Op == op {
			n++
		}
	}
	return n
}

// TestTransientRetried: throttling, 5xx, timeouts, conflicts and failed or slow operations are retried to success.
func TestTransientRetried(t *testing.T) {
	for _, kind := range []aciemu.Kind{aciemu.Throttle, aciemu.ServerError, aciemu.Unavailable, aciemu.Timeout, aciemu.Conflict, aciemu.Failed, aciemu.Canceled, aciemu.Slow} {
		t.Run(string(kind), func(t *testing.T) {
			emu := aciemu.New(aciemu.Options{})
			t.Cleanup(emu.Close)
			p := newProvider(t, emu)
			w := referenceWorkload("web")
			w.Replicas = 1
			emu.Fail(5, kind)
			d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}
			if err := p.Apply(context.Background(), d); err != nil {
				t.Fatalf("Apply with %d %s faults: %v", 5, kind, err)
			}
			if n := len(emu.Groups()); n != 1 {
				t.Fatalf("%d groups after Apply, want 1", n)
			}
		})
	}
}

// TestPermanentNotRetried: an invalid request is sent once and surfaces as providers.Permanent with the API's code.
func TestPermanentNotRetried(t *testing.T) {
	for _, c := range []struct {
		name, code string
		change     func(w *schema.Workload)
	}{
		{"missing image", "InaccessibleImage", func(w *schema.Workload) { w.Image = "ghcr.io/nope/missing:1" }},
		{"unsupported cpu", "ResourceRequestsNotSupported", func(w *schema.Workload) { w.Resources.CPUMillis = 8000 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			emu := aciemu.New(aciemu.Options{Images: []string{"ghcr.io/berth-dev/quickstart:1"}})
			t.Cleanup(emu.Close)
			p := newProvider(t, emu)
			w := referenceWorkload("web")
			w.Replicas = 1
			c.change(&w)
			w.Env["SECRET_TOKEN"] = "do-not-leak"
			d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}
			err := p.Apply(context.Background(), d)
			if !errors.Is(err, providers.ErrPermanent) {
				t.Fatalf("Apply: %v, want a permanent error", err)
			}
			if !strings.Contains(err.Error(), c.code) || strings.Contains(err.Error(), "do-not-leak") {
				t.Errorf("error %q: want the code %s and no secret", err, c.code)
			}
			if n := count(emu.Requests(), "ContainerGroups_CreateOrUpdate"); n != 1 {
				t.Errorf("%d PUTs, want 1 (no retry of a permanent error)", n)
			}
		})
	}
}

// TestNotOwnedName: a group berth does not own under the deterministic name is left alone.
func TestNotOwnedName(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	w := referenceWorkload("web")
	w.Replicas = 1
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	other := d
	other.Target = "other-target" // names leave the target out: same name, other owner tags
	if err := p.Apply(context.Background(), other); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply onto a name owned by another target: %v, want permanent", err)
	}
	if n := count(emu.Requests(), "ContainerGroups_CreateOrUpdate"); n != 1 {
		t.Errorf("%d PUTs, want 1: the foreign group must not be overwritten", n)
	}
}
