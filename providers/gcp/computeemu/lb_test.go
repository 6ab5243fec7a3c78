package computeemu

import (
	"context"
	"errors"
	"strings"
	"testing"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"
)

type lbClients struct {
	hcs   *compute.HealthChecksClient
	bes   *compute.RegionBackendServicesClient
	frs   *compute.ForwardingRulesClient
	addrs *compute.AddressesClient
	fws   *compute.FirewallsClient
}

func lbSDK(t *testing.T, s *Server) lbClients {
	t.Helper()
	ctx := context.Background()
	opts := []option.ClientOption{option.WithEndpoint(s.URL()), option.WithoutAuthentication()}
	var c lbClients
	var e [5]error
	c.hcs, e[0] = compute.NewHealthChecksRESTClient(ctx, opts...)
	c.bes, e[1] = compute.NewRegionBackendServicesRESTClient(ctx, opts...)
	c.frs, e[2] = compute.NewForwardingRulesRESTClient(ctx, opts...)
	c.addrs, e[3] = compute.NewAddressesRESTClient(ctx, opts...)
	c.fws, e[4] = compute.NewFirewallsRESTClient(ctx, opts...)
	if err := errors.Join(e[:]...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.hcs.Close(); c.bes.Close(); c.frs.Close(); c.addrs.Close(); c.fws.Close() })
	return c
}

// done polls an operation through the SDK (each poll is a request, which advances the world) and returns its
// error, as the SDK gives an operation that ended in error.
func done(ctx context.Context, t *testing.T, op *compute.Operation, err error) error {
	t.Helper()
	for err == nil && !op.Done() {
		err = op.Poll(ctx)
	}
	if err == nil && op.Proto().GetError() != nil {
		e := op.Proto().GetError().GetErrors()[0]
		return &googleapi.Error{Code: int(op.Proto().GetHttpErrorStatusCode()), Message: e.GetMessage(), Errors: []googleapi.ErrorItem{{Reason: e.GetCode()}}}
	}
	return err
}

// TestLoadBalancerResources: health checks, backend services, forwarding rules and addresses through the real SDK:
// inserted through operations, read back with what GCE fills in, refused where GCE refuses, deleted in GCE's order
// only (a resource in use is resourceInUseByAnotherResource); getHealth answers each running instance's state from
// the health hook.
func TestLoadBalancerResources(t *testing.T) {
	ctx := context.Background()
	s := New(Options{AllowAnonymous: true})
	t.Cleanup(s.Close)
	ts, gs, _, _ := sdk(t, s)
	c := lbSDK(t, s)
	p, r := s.Project(), s.Region()

	op, err := ts.Insert(ctx, &computepb.InsertInstanceTemplateRequest{Project: p, InstanceTemplateResource: sdkTemplate("t1")})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	hc := &computepb.HealthCheck{Name: proto.String("hc"), Type: proto.String("HTTP"),
		HttpHealthCheck: &computepb.HTTPHealthCheck{Port: proto.Int32(8080), RequestPath: proto.String("/healthz")}}
	op, err = c.hcs.Insert(ctx, &computepb.InsertHealthCheckRequest{Project: p, HealthCheckResource: hc})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	got, err := c.hcs.Get(ctx, &computepb.GetHealthCheckRequest{Project: p, HealthCheck: "hc"})
	if err != nil || got.GetCheckIntervalSec() != 5 || got.GetUnhealthyThreshold() != 2 || !strings.HasSuffix(got.GetSelfLink(), "/global/healthChecks/hc") {
		t.Fatalf("health check read back %v, %v", got, err)
	}
	_, err = c.hcs.Insert(ctx, &computepb.InsertHealthCheckRequest{Project: p, HealthCheckResource: hc})
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != 409 {
		t.Errorf("a second insert: %v, want 409 alreadyExists", err)
	}
	_, err = c.hcs.Insert(ctx, &computepb.InsertHealthCheckRequest{Project: p, HealthCheckResource: &computepb.HealthCheck{Name: proto.String("bad"),
		Type: proto.String("HTTP"), HttpHealthCheck: &computepb.HTTPHealthCheck{Port: proto.Int32(8080)}, CheckIntervalSec: proto.Int32(5), TimeoutSec: proto.Int32(10)}})
	refused(t, "timeout over interval", err, "invalid", "timeoutSec")

	group := &computepb.InstanceGroupManager{Name: proto.String("g"), BaseInstanceName: proto.String("g"), TargetSize: proto.Int32(2),
		InstanceTemplate:    proto.String("global/instanceTemplates/t1"),
		AutoHealingPolicies: []*computepb.InstanceGroupManagerAutoHealingPolicy{{HealthCheck: proto.String("global/healthChecks/hc"), InitialDelaySec: proto.Int32(30)}}}
	op, err = gs.Insert(ctx, &computepb.InsertRegionInstanceGroupManagerRequest{Project: p, Region: r, InstanceGroupManagerResource: group})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	_, err = gs.Insert(ctx, &computepb.InsertRegionInstanceGroupManagerRequest{Project: p, Region: r, InstanceGroupManagerResource: &computepb.InstanceGroupManager{
		Name: proto.String("g2"), BaseInstanceName: proto.String("g2"), TargetSize: proto.Int32(1), InstanceTemplate: proto.String("global/instanceTemplates/t1"),
		AutoHealingPolicies: []*computepb.InstanceGroupManagerAutoHealingPolicy{{HealthCheck: proto.String("global/healthChecks/nope")}}}})
	refused(t, "autohealing on a missing health check", err, "invalid", "autoHealingPolicies")

	be := &computepb.BackendService{Name: proto.String("be"), LoadBalancingScheme: proto.String("EXTERNAL"), Protocol: proto.String("TCP"),
		HealthChecks: []string{"global/healthChecks/hc"}, Backends: []*computepb.Backend{{Group: proto.String("regions/" + r + "/instanceGroups/g"), BalancingMode: proto.String("CONNECTION")}}}
	op, err = c.bes.Insert(ctx, &computepb.InsertRegionBackendServiceRequest{Project: p, Region: r, BackendServiceResource: be})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	_, err = c.bes.Insert(ctx, &computepb.InsertRegionBackendServiceRequest{Project: p, Region: r, BackendServiceResource: &computepb.BackendService{
		Name: proto.String("be2"), LoadBalancingScheme: proto.String("EXTERNAL"), Protocol: proto.String("HTTP"), HealthChecks: []string{"global/healthChecks/hc"}}})
	refused(t, "an HTTP external passthrough backend service", err, "invalid", "protocol")

	op, err = c.addrs.Insert(ctx, &computepb.InsertAddressRequest{Project: p, Region: r, AddressResource: &computepb.Address{Name: proto.String("ip"),
		Labels: map[string]string{"berth-instance": "i"}}})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	addr, err := c.addrs.Get(ctx, &computepb.GetAddressRequest{Project: p, Region: r, Address: "ip"})
	if err != nil || addr.GetAddress() == "" || addr.GetStatus() != "RESERVED" || addr.GetLabels()["berth-instance"] != "i" {
		t.Fatalf("address %v, %v", addr, err)
	}
	rule := func(name, protocol string, ports ...string) *computepb.ForwardingRule {
		return &computepb.ForwardingRule{Name: proto.String(name), IPAddress: addr.Address, IPProtocol: proto.String(protocol), Ports: ports,
			LoadBalancingScheme: proto.String("EXTERNAL"), BackendService: proto.String("regions/" + r + "/backendServices/be")}
	}
	_, err = c.frs.Insert(ctx, &computepb.InsertForwardingRuleRequest{Project: p, Region: r, ForwardingRuleResource: rule("udp", "UDP", "53")})
	refused(t, "a UDP rule to a TCP backend service", err, "invalid", "IPProtocol")
	_, err = c.frs.Insert(ctx, &computepb.InsertForwardingRuleRequest{Project: p, Region: r, ForwardingRuleResource: rule("many", "TCP", "1", "2", "3", "4", "5", "6")})
	refused(t, "six ports", err, "invalid", "ports")
	op, err = c.frs.Insert(ctx, &computepb.InsertForwardingRuleRequest{Project: p, Region: r, ForwardingRuleResource: rule("fr", "TCP", "8080")})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	if a, _ := c.addrs.Get(ctx, &computepb.GetAddressRequest{Project: p, Region: r, Address: "ip"}); a.GetStatus() != "IN_USE" || len(a.GetUsers()) != 1 {
		t.Errorf("address in use: %v", a)
	}

	// Health: the hook decides per instance; getHealth shows it once the instances run.
	s.SetHealth(func(pr HealthProbe) bool { return pr.Check.GetHttpHealthCheck().GetRequestPath() == "/healthz" })
	s.Step(5)
	gh, err := c.bes.GetHealth(ctx, &computepb.GetHealthRegionBackendServiceRequest{Project: p, Region: r, BackendService: "be",
		ResourceGroupReferenceResource: &computepb.ResourceGroupReference{Group: proto.String("regions/" + r + "/instanceGroups/g")}})
	if err != nil || len(gh.GetHealthStatus()) != 2 || gh.GetHealthStatus()[0].GetHealthState() != "HEALTHY" {
		t.Fatalf("getHealth %v, %v", gh, err)
	}
	mis := s.managedInstances(s.groups["g"]).GetManagedInstances()
	if len(mis) != 2 || mis[0].GetInstanceHealth()[0].GetDetailedHealthState() != "HEALTHY" {
		t.Errorf("managed instances' health %v", mis)
	}
	op, err = c.hcs.Patch(ctx, &computepb.PatchHealthCheckRequest{Project: p, HealthCheck: "hc", HealthCheckResource: &computepb.HealthCheck{
		Type: proto.String("HTTP"), HttpHealthCheck: &computepb.HTTPHealthCheck{Port: proto.Int32(8080), RequestPath: proto.String("/broken")}}})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	healed := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, in := range s.groups["g"].instances {
			n += in.healed
		}
		return n
	}
	for i := 0; healed() == 0; i++ {
		if i > 50 {
			t.Fatal("unhealthy instances were never recreated by autohealing")
		}
		s.Step(1)
	}

	// Deletion in GCE's order only.
	op, err = c.hcs.Delete(ctx, &computepb.DeleteHealthCheckRequest{Project: p, HealthCheck: "hc"})
	refused(t, "deleting a health check in use", err, "resourceInUseByAnotherResource", "backendServices/be")
	_, err = c.bes.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: p, Region: r, BackendService: "be"})
	refused(t, "deleting a backend service in use", err, "resourceInUseByAnotherResource", "forwardingRules/fr")
	_, err = c.addrs.Delete(ctx, &computepb.DeleteAddressRequest{Project: p, Region: r, Address: "ip"})
	refused(t, "deleting an address in use", err, "resourceInUseByAnotherResource", "forwardingRules/fr")
	_, err = gs.Delete(ctx, &computepb.DeleteRegionInstanceGroupManagerRequest{Project: p, Region: r, InstanceGroupManager: "g"})
	refused(t, "deleting a group that is a backend", err, "resourceInUseByAnotherResource", "backendServices/be")
	for _, del := range []func() (*compute.Operation, error){
		func() (*compute.Operation, error) {
			return c.frs.Delete(ctx, &computepb.DeleteForwardingRuleRequest{Project: p, Region: r, ForwardingRule: "fr"})
		},
		func() (*compute.Operation, error) {
			return c.bes.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: p, Region: r, BackendService: "be"})
		},
		func() (*compute.Operation, error) {
			return gs.Delete(ctx, &computepb.DeleteRegionInstanceGroupManagerRequest{Project: p, Region: r, InstanceGroupManager: "g"})
		},
		func() (*compute.Operation, error) {
			return c.hcs.Delete(ctx, &computepb.DeleteHealthCheckRequest{Project: p, HealthCheck: "hc"})
		},
		func() (*compute.Operation, error) {
			return c.addrs.Delete(ctx, &computepb.DeleteAddressRequest{Project: p, Region: r, Address: "ip"})
		},
	} {
		op, err := del()
		if err := done(ctx, t, op, err); err != nil {
			t.Fatal(err)
		}
	}
	for _, coll := range []string{"healthChecks", "backendServices", "forwardingRules", "addresses"} {
		if n := s.Resources(coll); len(n) != 0 {
			t.Errorf("%s left: %v", coll, n)
		}
	}
}

// TestQuotaAndFirewall: a firewall rule is checked and read back with GCE's defaults; an insert beyond a quota
// fails its operation with QUOTA_EXCEEDED.
func TestQuotaAndFirewall(t *testing.T) {
	ctx := context.Background()
	s := New(Options{AllowAnonymous: true})
	t.Cleanup(s.Close)
	c := lbSDK(t, s)
	fw := &computepb.Firewall{Name: proto.String("fw"), SourceRanges: []string{"0.0.0.0/0"}, TargetTags: []string{"web"},
		Allowed: []*computepb.Allowed{{IPProtocol: proto.String("tcp"), Ports: []string{"8080"}}}}
	op, err := c.fws.Insert(ctx, &computepb.InsertFirewallRequest{Project: s.Project(), FirewallResource: fw})
	if err := done(ctx, t, op, err); err != nil {
		t.Fatal(err)
	}
	got, err := c.fws.Get(ctx, &computepb.GetFirewallRequest{Project: s.Project(), Firewall: "fw"})
	if err != nil || got.GetDirection() != "INGRESS" || got.GetPriority() != 1000 || !strings.HasSuffix(got.GetNetwork(), "/global/networks/default") {
		t.Errorf("firewall %v, %v", got, err)
	}
	_, err = c.fws.Insert(ctx, &computepb.InsertFirewallRequest{Project: s.Project(), FirewallResource: &computepb.Firewall{Name: proto.String("bad"),
		SourceRanges: []string{"everywhere"}, Allowed: fw.Allowed}})
	refused(t, "a source range that is no CIDR", err, "invalid", "sourceRanges")

	s.SetQuota("addresses", 1)
	for i, name := range []string{"a1", "a2"} {
		op, err := c.addrs.Insert(ctx, &computepb.InsertAddressRequest{Project: s.Project(), Region: s.Region(), AddressResource: &computepb.Address{Name: proto.String(name)}})
		err = done(ctx, t, op, err)
		var ge *googleapi.Error
		switch {
		case i == 0 && err != nil:
			t.Fatal(err)
		case i == 1 && (!errors.As(err, &ge) || ge.Code != 403 || !strings.Contains(ge.Error(), "QUOTA_EXCEEDED") || !strings.Contains(ge.Message, "STATIC_ADDRESSES")):
			t.Errorf("beyond the quota: %v", err)
		}
	}
}

// TestMachineTypes: predefined and custom machine types as GCE's rules accept or refuse them.
func TestMachineTypes(t *testing.T) {
	for mt, ok := range map[string]bool{
		"e2-micro": true, "e2-standard-4": true, "e2-custom-2-1024": true, "e2-custom-4-20480": true, "custom-1-1024": true,
		"n2-custom-36-36864": true, "n1-custom-2-16384-ext": true, "e2-giant": false,
		"e2-custom-3-3072":   false, // odd vCPU
		"e2-custom-2-1000":   false, // not a multiple of 256
		"e2-custom-2-512":    false, // under 0.5 GiB per vCPU
		"e2-custom-2-20480":  false, // over 8 GiB per vCPU
		"custom-2-16384":     false, // N1: over 6.5 GiB per vCPU without -ext
		"n2-custom-34-34816": false,
	} {
		if why := checkMachineType(mt); (why == "") != ok {
			t.Errorf("%s: %q, want accepted=%t", mt, why, ok)
		}
	}
}
