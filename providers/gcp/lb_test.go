package gcp_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

// TestOfflineMatchesProvider: what `berth validate` is told from a target's settings alone equals what the provider
// built for the target reports, Capabilities and Validate problems alike; the offline description reads no file,
// no environment and no credentials (the credentials file named does not exist).
func TestOfflineMatchesProvider(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	big := referenceWorkload("big")
	big.Resources = schema.Resources{CPUMillis: 4000, MemoryBytes: 200 << 30}
	cmd := referenceWorkload("cmd")
	cmd.Health = &schema.HealthCheck{Command: []string{"true"}}
	udp := referenceWorkload("udp")
	udp.Health = nil
	udp.Ports = []schema.Port{{Port: 53, Protocol: "udp", Public: true}}
	workloads := []schema.Workload{referenceWorkload("web"), big, cmd, udp}
	for _, settings := range [][]string{nil, {"machineType", "e2-micro"}, {"machineType", "custom-4-8192"}} {
		p := anonymous(t, emu, settings...)
		s := map[string]any{"project": emu.Project(), "region": emu.Region(), "endpoint": emu.URL(), "credentialsFile": "/nonexistent/key.json"}
		for i := 0; i+1 < len(settings); i += 2 {
			s[settings[i]] = settings[i+1]
		}
		caps, v, err := providers.OfflineFor(schema.Target{Name: "gce", Type: gcp.Type, Settings: s})
		if err != nil {
			t.Fatalf("%v: OfflineFor: %v", settings, err)
		}
		if !reflect.DeepEqual(caps, p.Capabilities()) {
			t.Errorf("%v: offline capabilities\n%+v\nprovider's\n%+v", settings, caps, p.Capabilities())
		}
		for _, f := range providers.Features {
			if f == providers.FeatureHealthCommand {
				if caps.How[f] != "" {
					t.Errorf("%v: %s is not honoured but has How %q", settings, f, caps.How[f])
				}
			} else if caps.How[f] == "" {
				t.Errorf("%v: no How for %s", settings, f)
			}
		}
		for _, w := range workloads {
			if got, want := v.Validate(w), p.Validate(w); !reflect.DeepEqual(got, want) {
				t.Errorf("%v %s: offline problems %+v, provider's %+v", settings, w.Name, got, want)
			}
		}
		if pr := p.Validate(cmd); len(pr) != 1 || pr[0].Field != "health.command" || !strings.Contains(pr[0].Message, "Container-Optimized OS") {
			t.Errorf("%v: command health check: %+v", settings, pr)
		}
	}
	if pr := anonymous(t, emu, "machineType", "e2-micro").Validate(big); len(pr) != 2 || !strings.Contains(pr[0].Message, "e2-micro") {
		t.Errorf("resources over the target's machine type: %+v", pr)
	}
	if pr := anonymous(t, emu).Validate(referenceWorkload("web")); len(pr) != 0 {
		t.Errorf("the quickstart web workload has problems: %+v", pr)
	}
}

func resource[T proto.Message](t *testing.T, emu *computeemu.Server, coll, name string) T {
	t.Helper()
	m, _ := emu.Resource(coll, name).(T)
	if reflect.ValueOf(m).IsNil() {
		t.Fatalf("no %s %s (have %v)", coll, name, emu.Resources(coll))
	}
	return m
}

// TestLoadBalancer: the quickstart web workload gets its health check (HTTP GET /healthz on 8080, autohealing with
// the start period), the firewall rules, a reserved address, a backend service of its group and a forwarding rule
// at the address; Endpoints is the address with the port, the same across a rollout; Delete removes every one.
func TestLoadBalancer(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	w.Health.StartPeriod = schema.Duration(45 * time.Second)
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	name := gcp.GroupName(owner, "web")
	hc := resource[*computepb.HealthCheck](t, emu, "healthChecks", name)
	if hc.GetType() != "HTTP" || hc.GetHttpHealthCheck().GetRequestPath() != "/healthz" || hc.GetHttpHealthCheck().GetPort() != 8080 ||
		!strings.HasPrefix(hc.GetDescription(), "berth: instance=main; env=prod; workload=web; target=gce; spec=") {
		t.Errorf("health check %v", hc)
	}
	var g struct {
		AutoHealingPolicies []struct {
			HealthCheck     string
			InitialDelaySec int
		}
	}
	get(t, emu, "regions/"+emu.Region()+"/instanceGroupManagers/"+name, &g)
	if len(g.AutoHealingPolicies) != 1 || !strings.HasSuffix(g.AutoHealingPolicies[0].HealthCheck, "/healthChecks/"+name) || g.AutoHealingPolicies[0].InitialDelaySec != 45 {
		t.Errorf("autohealing %+v", g.AutoHealingPolicies)
	}
	fw := resource[*computepb.Firewall](t, emu, "firewalls", name+"-hc")
	if !slices.Equal(fw.GetSourceRanges(), []string{"35.191.0.0/16", "130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22"}) ||
		fw.GetAllowed()[0].GetPorts()[0] != "8080" || fw.GetTargetTags()[0] != name {
		t.Errorf("health checkers' firewall %v", fw)
	}
	pub := resource[*computepb.Firewall](t, emu, "firewalls", name+"-public")
	if !slices.Equal(pub.GetSourceRanges(), []string{"0.0.0.0/0"}) || pub.GetAllowed()[0].GetIPProtocol() != "tcp" || pub.GetAllowed()[0].GetPorts()[0] != "8080" {
		t.Errorf("public firewall %v", pub)
	}
	addr := resource[*computepb.Address](t, emu, "addresses", name)
	if addr.GetAddressType() != "EXTERNAL" || addr.GetLabels()["berth-instance"] != "main" || addr.GetLabels()["berth-workload"] != "web" {
		t.Errorf("address %v", addr)
	}
	be := resource[*computepb.BackendService](t, emu, "backendServices", name+"-tcp")
	if be.GetLoadBalancingScheme() != "EXTERNAL" || be.GetProtocol() != "TCP" || !strings.HasSuffix(be.GetBackends()[0].GetGroup(), "/instanceGroups/"+name) ||
		!strings.HasSuffix(be.GetHealthChecks()[0], "/healthChecks/"+name) {
		t.Errorf("backend service %v", be)
	}
	fr := resource[*computepb.ForwardingRule](t, emu, "forwardingRules", name+"-tcp")
	if fr.GetIPAddress() != addr.GetAddress() || !slices.Equal(fr.GetPorts(), []string{"8080"}) || fr.GetLabels()["berth-environment"] != "prod" ||
		!strings.HasSuffix(fr.GetBackendService(), "/backendServices/"+name+"-tcp") {
		t.Errorf("forwarding rule %v", fr)
	}
	want := []providers.Endpoint{{Port: 8080, Address: addr.GetAddress() + ":8080"}}
	o := observed(t, p, func(o providers.Observed) bool { return len(o.Endpoints) == 1 })
	if !reflect.DeepEqual(o.Endpoints, want) || len(o.Missing) != 0 || o.Spec.Health == nil || o.Spec.Health.StartPeriod != schema.Duration(45*time.Second) {
		t.Errorf("observed %+v, want endpoints %+v", o, want)
	}
	for _, r := range o.Replicas {
		if r.Health != "healthy" || !r.Ready() {
			t.Errorf("replica %+v not healthy after Apply", r)
		}
	}

	w.Env = map[string]string{"GREETING": "bonjour", "PORT": "8080"}
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	o = observed(t, p, func(o providers.Observed) bool { return o.Spec.Env["GREETING"] == "bonjour" })
	if !reflect.DeepEqual(o.Endpoints, want) {
		t.Errorf("after a rollout: endpoints %+v, want the same %+v", o.Endpoints, want)
	}

	if err := p.Delete(ctx(t), owner, "gce", "web"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"healthChecks", "firewalls", "addresses", "backendServices", "forwardingRules"} {
		if r := emu.Resources(c); len(r) != 0 {
			t.Errorf("left behind: %s %v", c, r)
		}
	}
}

// TestPortsChange: a TCP and a UDP public port get a backend service and forwarding rule each, both at the one
// address; dropping the public ports deletes the load balancer and the address, and the health check stays.
func TestPortsChange(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("dns")
	w.Ports = append(w.Ports, schema.Port{Port: 53, Protocol: "udp", Public: true}, schema.Port{Port: 9090, Protocol: "tcp"})
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	name := gcp.GroupName(owner, "dns")
	if got := strings.Join(emu.Resources("forwardingRules"), ","); got != name+"-tcp,"+name+"-udp" {
		t.Errorf("forwarding rules %s", got)
	}
	o := observed(t, p, func(o providers.Observed) bool { return len(o.Endpoints) == 2 })
	ip := resource[*computepb.Address](t, emu, "addresses", name).GetAddress()
	if want := []providers.Endpoint{{Port: 8080, Address: ip + ":8080"}, {Port: 53, Address: ip + ":53"}}; !reflect.DeepEqual(o.Endpoints, want) {
		t.Errorf("endpoints %+v, want %+v", o.Endpoints, want)
	}
	if got, want := o.Spec.Ports, p.Normalize(providers.Normalize(w)).Ports; !reflect.DeepEqual(got, want) {
		t.Errorf("ports read back %+v, want %+v (9090 is not public)", got, want)
	}
	w.Ports = []schema.Port{{Port: 8080, Protocol: "tcp"}}
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"addresses", "backendServices", "forwardingRules"} {
		if r := emu.Resources(c); len(r) != 0 {
			t.Errorf("%s left after the public ports went: %v", c, r)
		}
	}
	if got := strings.Join(emu.Resources("firewalls"), ","); got != name+"-hc" {
		t.Errorf("firewalls %s, want the health checkers' alone", got)
	}
	if len(emu.Resources("healthChecks")) != 1 {
		t.Errorf("health checks %v", emu.Resources("healthChecks"))
	}
	o = observed(t, p, func(providers.Observed) bool { return true })
	if len(o.Endpoints) != 0 || len(o.Missing) != 0 {
		t.Errorf("without public ports: %+v", o)
	}
}

// TestNotBerths: a health check of berth's name that berth did not make fails the Apply at once (permanent, naming
// it) and survives Delete.
func TestNotBerths(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	h := byHand(t, emu, owner, option.WithoutAuthentication())
	name := gcp.GroupName(owner, "web")
	op, err := h.hcs.Insert(ctx(t), &computepb.InsertHealthCheckRequest{Project: emu.Project(), HealthCheckResource: &computepb.HealthCheck{
		Name: proto.String(name), Type: proto.String("TCP"), TcpHealthCheck: &computepb.TCPHealthCheck{Port: proto.Int32(22)}}})
	wait(ctx(t), t, op, err)
	p := anonymous(t, emu)
	err = p.Apply(ctx(t), desired(referenceWorkload("web")))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "health check "+name) || !strings.Contains(err.Error(), "not berth's") {
		t.Fatalf("Apply = %v, want a permanent error naming the health check", err)
	}
	if err := p.Delete(ctx(t), owner, "gce", "web"); err != nil {
		t.Fatal(err)
	}
	if hc := resource[*computepb.HealthCheck](t, emu, "healthChecks", name); hc.GetTcpHealthCheck().GetPort() != 22 {
		t.Errorf("someone else's health check changed: %v", hc)
	}
}

// TestUnhealthyNeverReady: instances whose health check fails are never ready: Apply waits (and says why when its
// context ends), autohealing recreates them, List shows them unhealthy or starting.
func TestUnhealthyNeverReady(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true, HealSteps: 2})
	t.Cleanup(emu.Close)
	var failed atomic.Int32
	emu.SetHealth(func(pr computeemu.HealthProbe) bool {
		ok := pr.Check.GetHttpHealthCheck().GetRequestPath() != "/broken"
		if !ok {
			failed.Add(1)
		}
		return ok
	})
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	w.Health.HTTP.Path = "/broken"
	// Apply waits while the new instances fail their check; it is stopped once berth has read them failing (two
	// instance listings after the first failed probe), not after a fixed time.
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	listings := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if strings.HasSuffix(r.Path, "/listManagedInstances") {
				n++
			}
		}
		return n
	}
	go func() {
		for failed.Load() == 0 && c.Err() == nil {
			time.Sleep(5 * time.Millisecond) // polling the condition
		}
		seen := listings()
		for listings() < seen+2 && c.Err() == nil {
			time.Sleep(5 * time.Millisecond) // polling the condition
		}
		cancel()
	}()
	err := p.Apply(c, desired(w))
	if err == nil || !strings.Contains(err.Error(), "health check") {
		t.Fatalf("Apply = %v, want it to wait on the health check", err)
	}
	o := observed(t, p, func(o providers.Observed) bool { return len(o.Replicas) == 2 })
	for _, r := range o.Replicas {
		if r.Ready() || r.Health == "healthy" || r.Health == "" {
			t.Errorf("replica %+v counts as ready", r)
		}
	}
	// The fix: a path that answers. Apply patches the health check and converges.
	w.Health.HTTP.Path = "/healthz"
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
}

// TestFaultsMidRollout: throttling and server errors injected while a rollout is under way (once the new template
// exists) are retried, and the rollout converges with its load balancer intact.
func TestFaultsMidRollout(t *testing.T) {
	for _, kind := range []string{computeemu.FaultThrottle, computeemu.FaultServer, computeemu.FaultQuota} {
		t.Run(kind, func(t *testing.T) {
			emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
			t.Cleanup(emu.Close)
			p := anonymous(t, emu)
			w := referenceWorkload("web")
			if err := p.Apply(ctx(t), desired(w)); err != nil {
				t.Fatal(err)
			}
			w.Image = "europe-docker.pkg.dev/berth/app:2"
			d := desired(w)
			v2 := gcp.TemplateName(owner, "web", d.SpecHash)
			done := make(chan struct{})
			injected := make(chan bool, 1)
			go func() { // inject as soon as the rollout's template exists
				defer close(injected)
				for {
					select {
					case <-done:
						injected <- false
						return
					default:
					}
					if slices.Contains(emu.Templates(), v2) {
						emu.Fail(3, kind)
						injected <- true
						return
					}
					time.Sleep(time.Millisecond) // poll the condition
				}
			}()
			err := p.Apply(ctx(t), d)
			close(done)
			if !<-injected {
				t.Fatal("the faults were never injected")
			}
			if err != nil {
				t.Fatalf("Apply with %s faults mid-rollout: %v", kind, err)
			}
			o := observed(t, p, func(o providers.Observed) bool { return o.SpecHash == d.SpecHash })
			if len(o.Replicas) != 2 || len(o.Endpoints) != 1 || len(o.Missing) != 0 {
				t.Errorf("after the rollout: %+v", o)
			}
		})
	}
}

// TestQuotaExceeded: an address insert refused by the region's quota fails the Apply with GCE's words, before any
// instance is made.
func TestQuotaExceeded(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	emu.SetQuota("addresses", 0)
	p := anonymous(t, emu)
	p.RetryAttempts = 2
	err := p.Apply(ctx(t), desired(referenceWorkload("web")))
	if err == nil || !strings.Contains(err.Error(), "STATIC_ADDRESSES") {
		t.Fatalf("Apply = %v, want the quota error", err)
	}
	if g := emu.Groups(); len(g) != 0 {
		t.Errorf("groups made despite the quota: %v", g)
	}
}

// TestHealthRemoved: a workload that drops its health check loses the group's autohealing policy (a PATCH of
// autoHealingPolicies: [], which the SDK cannot send) and reads back without one; its public port keeps a TCP check
// for the load balancer alone.
func TestHealthRemoved(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	w.Health = nil
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	var g struct{ AutoHealingPolicies []any }
	get(t, emu, "regions/"+emu.Region()+"/instanceGroupManagers/"+gcp.GroupName(owner, "web"), &g)
	if len(g.AutoHealingPolicies) != 0 {
		t.Errorf("autohealing left: %+v", g.AutoHealingPolicies)
	}
	hc := resource[*computepb.HealthCheck](t, emu, "healthChecks", gcp.GroupName(owner, "web"))
	if hc.GetType() != "TCP" || hc.GetTcpHealthCheck().GetPort() != 8080 {
		t.Errorf("the load balancer's health check: %v", hc)
	}
	o := observed(t, p, func(providers.Observed) bool { return true })
	if o.Spec.Health != nil || len(o.Missing) != 0 || len(o.Endpoints) != 1 || o.Replicas[0].Health != "" {
		t.Errorf("after removing the health check: %+v", o)
	}
}
