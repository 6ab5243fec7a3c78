package marathon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/schema"
)

// interruptedApply starts the rollout of w and leaves it running: the Apply is cancelled as soon as its PUT is
// answered.
func interruptedApply(t *testing.T, emu *marathonemu.Server, o providers.Owner, w schema.Workload) {
	t.Helper()
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if r.Method == http.MethodPut {
			cancel()
		}
		return resp, err
	})}
	p, err := marathon.NewWithHTTPClient(target("m", emu.URL(), nil), hc, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval = time.Millisecond
	if err := p.Apply(c, desired(o, "m", w)); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Apply: %v", err)
	}
	if len(emu.Deployments()) != 1 {
		t.Fatalf("deployments in progress: %v", emu.Deployments())
	}
}

// requests are the calls of method whose path contains part.
func requests(emu *marathonemu.Server, method, part string) []marathonemu.Request {
	var out []marathonemu.Request
	for _, r := range emu.Requests() {
		if r.Method == method && strings.Contains(r.Path, part) {
			out = append(out, r)
		}
	}
	return out
}

// calls shows rs as "METHOD path → status" lines.
func calls(rs []marathonemu.Request) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n%s %s → %d", r.Method, r.Path, r.Status)
	}
	return b.String()
}

// converged fails t unless List shows w's app with exactly its replicas, all ready on w's spec hash.
func converged(t *testing.T, p *marathon.Provider, o providers.Owner, w schema.Workload) providers.Observed {
	t.Helper()
	obs, err := p.List(ctx(t), o, "m")
	if err != nil || len(obs) != 1 {
		t.Fatalf("List = %+v, %v", obs, err)
	}
	ob, h := obs[0], providers.SpecHash(w)
	ready := 0
	for _, r := range ob.Replicas {
		if r.SpecHash == h && r.Ready() {
			ready++
		}
	}
	if ob.SpecHash != h || ob.Spec.Image != w.Image || len(ob.Replicas) != w.Replicas || ready != w.Replicas {
		t.Fatalf("want %d ready replicas of %s (%s), got %+v", w.Replicas, h, w.Image, ob)
	}
	return ob
}

// TestLockedBySupersededRollout: an app locked by the rollout of a spec berth no longer wants is taken over at once
// (force=true after the 409, without waiting for the deployment), with or without the force setting.
func TestLockedBySupersededRollout(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "force"}[force], func(t *testing.T) {
			hermetic(t)
			emu := emulator(t, marathonemu.Options{StepsPerState: 5})
			p := newProvider(t, emu, "m", map[string]any{"force": force})
			o := providers.Owner{Instance: "i1", Environment: "dev"}
			w := referenceWorkload("web")
			if err := p.Apply(ctx(t), desired(o, "m", w)); err != nil {
				t.Fatal(err)
			}
			w2 := w
			w2.Image = "registry.example/berth-app:2"
			interruptedApply(t, emu, o, w2)
			emu.ResetRequests()
			w3 := w
			w3.Image = "registry.example/berth-app:3"
			if err := p.Apply(ctx(t), desired(o, "m", w3)); err != nil {
				t.Fatalf("Apply over a running deployment: %v", err)
			}
			puts := requests(emu, http.MethodPut, "")
			switch {
			case force && (len(puts) != 1 || puts[0].Status != 200 || !strings.Contains(puts[0].Path, "force=true")):
				t.Fatalf("with force: PUTs %s", calls(puts))
			case !force && (len(puts) != 2 || puts[0].Status != 409 || strings.Contains(puts[0].Path, "force") ||
				puts[1].Status != 200 || !strings.Contains(puts[1].Path, "force=true")):
				t.Fatalf("without force: PUTs %s", calls(puts))
			}
			if n := len(requests(emu, http.MethodGet, "/v2/deployments")); n != 0 {
				t.Fatalf("%d GET /v2/deployments: the superseded rollout was waited for", n)
			}
			converged(t, p, o, w3)
		})
	}
}

// TestLockedByHandEdit: an app locked by someone else's change to the spec berth wants now (an edit in the UI) is
// waited for, then repaired; with the force setting the deployment is overridden instead.
func TestLockedByHandEdit(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "wait", true: "force"}[force], func(t *testing.T) {
			hermetic(t)
			emu := emulator(t, marathonemu.Options{StepsPerState: 5})
			p := newProvider(t, emu, "m", map[string]any{"force": force})
			o := providers.Owner{Instance: "i1", Environment: "dev"}
			w := referenceWorkload("web")
			if err := p.Apply(ctx(t), desired(o, "m", w)); err != nil {
				t.Fatal(err)
			}
			const id = "/berth/i1/dev/web"
			a := getApp(t, emu, id)
			for _, k := range readOnly {
				delete(a, k)
			}
			a["env"].(map[string]any)["GREETING"] = "by hand"
			putApp(t, emu, id, a) // its labels still say berth's spec hash
			if len(emu.Deployments()) != 1 {
				t.Fatalf("deployments in progress: %v", emu.Deployments())
			}
			running := emu.Deployments()[0]
			emu.ResetRequests()
			if err := p.Apply(ctx(t), desired(o, "m", w)); err != nil {
				t.Fatalf("Apply over a running deployment: %v", err)
			}
			puts := requests(emu, http.MethodPut, "")
			switch {
			case force && (len(puts) != 1 || puts[0].Status != 200 || !strings.Contains(puts[0].Path, "force=true")):
				t.Fatalf("with force: PUTs %s", calls(puts))
			case !force && (len(puts) != 2 || puts[0].Status != 409 || puts[1].Status != 200 || strings.Contains(puts[1].Path, "force")):
				t.Fatalf("without force: PUTs %s", calls(puts))
			}
			if waited := len(requests(emu, http.MethodGet, "/v2/deployments")) > 0; waited == force {
				t.Fatalf("force %v: waited on GET /v2/deployments %v (deployment %s)", force, waited, running)
			}
			if ob := converged(t, p, o, w); ob.Spec.Env["GREETING"] != "hello" {
				t.Fatalf("the hand edit was not repaired: %+v", ob.Spec.Env)
			}
		})
	}
}

// TestStuckRollout: a rollout to a version whose health check fails never completes (Marathon keeps the old tasks,
// minimumHealthCapacity 1); List counts the old tasks as replicas of the old spec, read from the version they run;
// applying the old spec again overrides the stuck deployment and converges; Delete does not wait for it either.
func TestStuckRollout(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	emu.FailHealthPath("/broken")
	p := newProvider(t, emu, "m", nil)
	o := providers.Owner{Instance: "i1", Environment: "dev"}
	v1 := referenceWorkload("web")
	if err := p.Apply(ctx(t), desired(o, "m", v1)); err != nil {
		t.Fatal(err)
	}
	v2 := unhealthyAt(v1, "/broken")
	h1, h2 := providers.SpecHash(v1), providers.SpecHash(v2)

	stuck := func() {
		t.Helper()
		interruptedApply(t, emu, o, v2)
		emu.Step(20) // long past the start of v2's tasks: they run, unhealthy, and the old ones stay
		if len(emu.Deployments()) != 1 {
			t.Fatalf("deployments in progress: %v", emu.Deployments())
		}
		emu.ResetRequests()
		for range 2 {
			obs, err := p.List(ctx(t), o, "m")
			if err != nil || len(obs) != 1 {
				t.Fatalf("List = %+v, %v", obs, err)
			}
			by := map[string]int{}
			for _, r := range obs[0].Replicas {
				by[r.SpecHash+map[bool]string{true: " ready", false: " not ready"}[r.Ready()]]++
			}
			if obs[0].SpecHash != h2 || by[h1+" ready"] != 2 || by[h2+" not ready"] != 2 || len(obs[0].Replicas) != 4 {
				t.Fatalf("mid-rollout: replicas by hash %v, want 2 ready of %s and 2 not ready of %s: %+v", by, h1, h2, obs[0].Replicas)
			}
		}
		if n := len(requests(emu, http.MethodGet, "/versions/")); n != 1 {
			t.Fatalf("%d reads of app versions for two Lists, want 1 (versions are immutable: cached)", n)
		}
	}

	stuck()
	if err := p.Apply(ctx(t), desired(o, "m", v1)); err != nil {
		t.Fatalf("Apply of the old spec over the stuck rollout: %v", err)
	}
	converged(t, p, o, v1)
	if d := emu.Deployments(); len(d) != 0 {
		t.Fatalf("deployments left: %v", d)
	}

	stuck()
	if err := p.Delete(ctx(t), o, "m", "web"); err != nil {
		t.Fatalf("Delete over the stuck rollout: %v", err)
	}
	dels := requests(emu, http.MethodDelete, "/v2/apps/")
	if len(dels) != 2 || dels[0].Status != 409 || dels[1].Status != 200 || !strings.Contains(dels[1].Path, "force=true") {
		t.Fatalf("DELETEs %s", calls(dels))
	}
	if emu.AppExists("/berth/i1/dev/web") || len(emu.Deployments()) != 0 {
		t.Fatalf("after Delete: app exists %v, deployments %v", emu.AppExists("/berth/i1/dev/web"), emu.Deployments())
	}
}

// unhealthyAt is w with its HTTP check on path.
func unhealthyAt(w schema.Workload, path string) schema.Workload {
	h := *w.Health
	check := *h.HTTP
	check.Path = path
	h.HTTP = &check
	w.Health = &h
	return w
}
