package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Preview case constants: the pull-request numbers and head commits the case uses.
const (
	previewNumber   = 4242
	previewOrphan   = 4243
	previewLongest  = 2147483647 // the largest number a forge gives: the longest preview name, "pr-2147483647"
	previewHeadV1   = "1111111111111111111111111111111111111111"
	previewHeadV2   = "2222222222222222222222222222222222222222"
	previewHostBase = "pr-4242-k3x9.preview.test"
)

// previewOwner is the ownership of pull request n's preview beside the harness's environment.
func (s *suite) previewOwner(n int) providers.Owner {
	return providers.Owner{Instance: s.h.Owner.Instance, Environment: schema.PreviewName(n), Preview: n}
}

// previewWorkload is the harness's reference workload as a preview of it runs: the same name, with the public
// ports of another name's reference workload (a preview is given host ports of its own, so that it can run beside
// its base on runtimes where host ports are shared).
func (s *suite) previewWorkload(t *testing.T, name string, greeting string) schema.Workload {
	t.Helper()
	w := s.workload(t, name, 1, greeting)
	other := s.h.Workload(name + "-pr")
	if len(other.Ports) == len(w.Ports) {
		w.Ports = slices.Clone(other.Ports)
	}
	return w
}

func (s *suite) previewDesired(owner providers.Owner, w schema.Workload, head string) providers.Desired {
	hosts := map[string]string{}
	for _, p := range w.Ports {
		if p.Public {
			hosts[schema.HostKey(w.Name, p.Port)] = fmt.Sprintf("pr-%d-%d.preview.test", owner.Preview, p.Port)
		}
	}
	return providers.Desired{Owner: owner, Target: s.h.Target, Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &schema.Preview{Number: owner.Preview, Head: head, Base: s.h.Owner.Environment, Hosts: hosts}}
}

// convergedAs is converged for another owner.
func (s *suite) convergedAs(t *testing.T, p providers.Provider, owner providers.Owner, w schema.Workload) providers.Observed {
	t.Helper()
	hash := providers.SpecHash(w)
	var got providers.Observed
	s.waitFor(t, fmt.Sprintf("%s of %s: %d ready replicas of %s", w.Name, owner.Environment, w.Replicas, hash), func(ctx context.Context) string {
		o, ok, err := s.find(ctx, p, owner, w.Name)
		switch {
		case err != nil:
			return "List: " + err.Error()
		case !ok:
			return "workload not listed"
		}
		got = o
		return convergedWhy(o, hash, w.Replicas)
	})
	return got
}

// environments lists the environments of the harness's instance on the target.
func (s *suite) environments(ctx context.Context, p providers.Provider) ([]providers.EnvironmentRef, error) {
	l, ok := p.(providers.EnvironmentLister)
	if !ok {
		return nil, fmt.Errorf("%T does not implement providers.EnvironmentLister", p)
	}
	return l.Environments(ctx, s.h.Owner.Instance, s.h.Target)
}

func findEnv(refs []providers.EnvironmentRef, name string) (providers.EnvironmentRef, bool) {
	for _, r := range refs {
		if r.Name == name {
			return r, true
		}
	}
	return providers.EnvironmentRef{}, false
}

// waitEnv waits until the target's environments list name as want says (nil: not listed).
func (s *suite) waitEnv(t *testing.T, p providers.Provider, name string, want *providers.EnvironmentRef) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("environment %s listed as %+v", name, want), func(ctx context.Context) string {
		refs, err := s.environments(ctx, p)
		if err != nil {
			return "Environments: " + err.Error()
		}
		got, ok := findEnv(refs, name)
		switch {
		case want == nil && ok:
			return fmt.Sprintf("still listed: %+v", got)
		case want == nil:
			return ""
		case !ok:
			return fmt.Sprintf("not listed among %+v", refs)
		case got.Preview != want.Preview || want.Head != "" && got.Head != want.Head:
			return fmt.Sprintf("listed as %+v", got)
		}
		return ""
	})
}

// checkEndpoints checks that every public port of w has an endpoint, under its host name where the runtime routes
// by host.
func (s *suite) checkEndpoints(t *testing.T, p providers.Provider, o providers.Observed, d providers.Desired) {
	t.Helper()
	for _, port := range d.Workload.Ports {
		if !port.Public {
			continue
		}
		i := slices.IndexFunc(o.Endpoints, func(e providers.Endpoint) bool { return e.Port == port.Port })
		if i < 0 {
			t.Errorf("%s: no endpoint for public port %d among %+v", d.Owner.Environment, port.Port, o.Endpoints)
			continue
		}
		e := o.Endpoints[i]
		if e.Address == "" && e.URL == "" {
			t.Errorf("%s: endpoint of port %d has neither address nor URL: %+v", d.Owner.Environment, port.Port, e)
		}
		if d.Preview != nil && p.Capabilities().HostRoutes {
			host := d.Preview.Hosts[schema.HostKey(d.Workload.Name, port.Port)]
			if !strings.Contains(e.URL, "//"+host) {
				t.Errorf("%s: endpoint URL of port %d is %q, want one on host %s (the provider routes by host)",
					d.Owner.Environment, port.Port, e.URL, host)
			}
		}
	}
}

// preview runs a pull request's preview beside the harness's environment: created, updated to a new head, torn
// down, its orphan found and removed from the runtime alone, and a name at the length limit.
func (s *suite) preview(t *testing.T) {
	const name = "cf-preview"
	ctx := s.ctx(t)
	p := s.provider(t, name)
	pr := s.previewOwner(previewNumber)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		for _, o := range []providers.Owner{pr, s.previewOwner(previewOrphan)} {
			if err := p.Delete(ctx, o, s.h.Target, name); err != nil {
				t.Errorf("cleanup: Delete %s of %s: %v", name, o.Environment, err)
			}
			if d, ok := p.(providers.EnvironmentDeleter); ok {
				if err := d.DeleteEnvironment(ctx, o, s.h.Target); err != nil {
					t.Errorf("cleanup: DeleteEnvironment %s: %v", o.Environment, err)
				}
			}
		}
	})

	// The base, then its preview beside it.
	base := s.workload(t, name, 1, "conformance-base")
	s.apply(t, p, base)
	baseIDs := ids(s.converged(t, p, base))
	w1 := s.previewWorkload(t, name, "conformance-preview-v1")
	d1 := s.previewDesired(pr, w1, previewHeadV1)
	if err := p.Apply(ctx, d1); err != nil {
		t.Fatalf("Apply the preview: %v", err)
	}
	o := s.convergedAs(t, p, pr, w1)
	if slices.ContainsFunc(ids(o), func(id string) bool { return slices.Contains(baseIDs, id) }) {
		t.Fatalf("the preview's replicas %v include the base's %v", ids(o), baseIDs)
	}
	s.checkEndpoints(t, p, o, d1)
	if got := ids(s.converged(t, p, base)); !slices.Equal(got, baseIDs) {
		t.Fatalf("creating the preview touched the base: IDs %v, then %v", baseIDs, got)
	}
	s.waitEnv(t, p, pr.Environment, &providers.EnvironmentRef{Name: pr.Environment, Preview: previewNumber, Head: previewHeadV1})
	s.waitEnv(t, p, s.h.Owner.Environment, &providers.EnvironmentRef{Name: s.h.Owner.Environment})

	// A new head with a changed workload: the preview rolls, the base does not.
	w2 := s.previewWorkload(t, name, "conformance-preview-v2")
	d2 := s.previewDesired(pr, w2, previewHeadV2)
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatalf("Apply the preview's new head: %v", err)
	}
	o = s.convergedAs(t, p, pr, w2)
	if o.Spec.Env["GREETING"] != "conformance-preview-v2" {
		t.Errorf("preview reads back GREETING %q after the update", o.Spec.Env["GREETING"])
	}
	s.checkEndpoints(t, p, o, d2)
	s.waitEnv(t, p, pr.Environment, &providers.EnvironmentRef{Name: pr.Environment, Preview: previewNumber, Head: previewHeadV2})
	if got := ids(s.converged(t, p, base)); !slices.Equal(got, baseIDs) {
		t.Fatalf("updating the preview touched the base: IDs %v, then %v", baseIDs, got)
	}

	// Teardown through the engine, as the preview controller does it.
	cfg := &schema.Config{Targets: map[string]schema.Target{s.h.Target: {Name: s.h.Target, Type: p.Type()}},
		Environments: map[string]schema.Environment{pr.Environment: {Name: pr.Environment,
			Preview: &schema.Preview{Number: previewNumber}}}}
	teardown := time.Now()
	if err := s.engine(t, p).Destroy(ctx, cfg, pr.Environment); err != nil {
		t.Fatalf("Destroy the preview: %v", err)
	}
	destroyed := time.Since(teardown)
	s.waitFor(t, "the preview's workloads gone", func(ctx context.Context) string {
		if _, ok, err := s.find(ctx, p, pr, name); err != nil || ok {
			return fmt.Sprintf("still listed (err %v)", err)
		}
		return ""
	})
	s.waitEnv(t, p, pr.Environment, nil)
	// Timing for hack/preview-figures.sh only: nothing is asserted on it.
	t.Logf("preview teardown took %s (Destroy returned after %s)", time.Since(teardown).Round(time.Millisecond),
		destroyed.Round(time.Millisecond))
	if got := ids(s.converged(t, p, base)); !slices.Equal(got, baseIDs) {
		t.Fatalf("tearing the preview down touched the base: IDs %v, then %v", baseIDs, got)
	}

	// An orphan: a preview whose controller lost its state. A fresh provider finds it from the labels alone and
	// the engine removes it given only what the runtime said.
	orphan := s.previewOwner(previewOrphan)
	if err := p.Apply(ctx, s.previewDesired(orphan, w1, previewHeadV1)); err != nil {
		t.Fatalf("Apply the orphan preview: %v", err)
	}
	s.convergedAs(t, p, orphan, w1)
	fresh := s.provider(t)
	refs, err := s.environments(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := findEnv(refs, orphan.Environment)
	if !ok || ref.Preview != previewOrphan {
		t.Fatalf("a fresh provider lists %+v: the orphan %s is not found with its number", refs, orphan.Environment)
	}
	gc := &schema.Config{Targets: cfg.Targets, Environments: map[string]schema.Environment{ref.Name: {Name: ref.Name,
		Preview: &schema.Preview{Number: ref.Preview}}}}
	if err := s.engine(t, fresh).Destroy(ctx, gc, ref.Name); err != nil {
		t.Fatalf("Destroy the orphan: %v", err)
	}
	s.waitEnv(t, fresh, orphan.Environment, nil)
	if got := ids(s.converged(t, p, base)); !slices.Equal(got, baseIDs) {
		t.Fatalf("collecting the orphan touched the base: IDs %v, then %v", baseIDs, got)
	}
	s.longest(t, p)
}

// longest runs the longest names there are: a 40-character workload in the preview with the largest number, under
// the harness's instance. Every object name the runtime limits must be cut deterministically (with a hash), so
// the workload converges, is listed and is deleted like any other.
func (s *suite) longest(t *testing.T, p providers.Provider) {
	name := "cf-" + strings.Repeat("l", 36) + "x" // 40 characters, the schema's limit
	owner := s.previewOwner(previewLongest)
	ctx := s.ctx(t)
	w := s.previewWorkload(t, name, "conformance-longest")
	w.Name = name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := p.Delete(ctx, owner, s.h.Target, name); err != nil {
			t.Errorf("cleanup: Delete %s: %v", name, err)
		}
		if d, ok := p.(providers.EnvironmentDeleter); ok {
			if err := d.DeleteEnvironment(ctx, owner, s.h.Target); err != nil {
				t.Errorf("cleanup: DeleteEnvironment %s: %v", owner.Environment, err)
			}
		}
	})
	d := s.previewDesired(owner, w, previewHeadV1)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply %s in %s: %v", name, owner.Environment, err)
	}
	s.checkEndpoints(t, p, s.convergedAs(t, p, owner, w), d)
	s.waitEnv(t, p, owner.Environment, &providers.EnvironmentRef{Name: owner.Environment, Preview: previewLongest})
	cfg := &schema.Config{Targets: map[string]schema.Target{s.h.Target: {Name: s.h.Target, Type: p.Type()}},
		Environments: map[string]schema.Environment{owner.Environment: {Name: owner.Environment,
			Preview: &schema.Preview{Number: previewLongest}}}}
	if err := s.engine(t, p).Destroy(ctx, cfg, owner.Environment); err != nil {
		t.Fatalf("Destroy %s: %v", owner.Environment, err)
	}
	s.waitEnv(t, p, owner.Environment, nil)
}
