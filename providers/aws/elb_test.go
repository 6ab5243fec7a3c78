package aws_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/schema"
)

func quickstartDesired(name string) providers.Desired {
	w := quickstartWorkload(name)
	return providers.Desired{Owner: providers.Owner{Instance: "berth", Environment: "dev"}, Target: "aws-test",
		Workload: w, SpecHash: providers.SpecHash(w)}
}

// theOnly returns the one name of names that starts with prefix.
func theOnly(t *testing.T, names []string, prefix string) string {
	t.Helper()
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	if len(out) != 1 {
		t.Fatalf("names %v: want one starting with %q", names, prefix)
	}
	return out[0]
}

// The quickstart's web workload runs unchanged on ECS: Validate finds nothing, Apply makes a network load
// balancer, a target group checking GET /healthz on 8080 (at ELBv2's fastest: every 5 s, 2 s timeout) and a
// listener on 8080, attaches the group to the service and waits until both tasks are healthy in it; List reports
// the load balancer's DNS name as the endpoint, reads the check back as Normalize gives it (no plan change) and
// the replicas healthy; Delete removes the load balancer and the target group.
func TestQuickstartOnECS(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	emu.SetTargetHealth(targetHealth)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	d := quickstartDesired("web")
	if prs := p.Validate(d.Workload); len(prs) > 0 {
		t.Fatalf("Validate: %+v", prs)
	}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	lbName := theOnly(t, emu.LoadBalancerNames(), "b-web-")
	tgName := theOnly(t, emu.TargetGroupNames(), "b-web-8080t-")
	proto, path, port, interval, timeout, healthy, unhealthy, ok := emu.TargetGroupHealth(tgName)
	if !ok || proto != "HTTP" || path != "/healthz" || port != "8080" || interval != 5 || timeout != 2 || healthy != 3 || unhealthy != 3 {
		t.Errorf("target group health check %s %s %s %d %d %d %d", proto, path, port, interval, timeout, healthy, unhealthy)
	}
	states := emu.TargetStates(tgName)
	if len(states) != 2 {
		t.Fatalf("targets %v, want the two tasks", states)
	}
	for k, s := range states {
		if s != "healthy" || !strings.HasSuffix(k, ":8080") {
			t.Errorf("target %s %s", k, s)
		}
	}
	// The service names the group, with the start period as grace, and ECS's make-before-break settings.
	svcs, err := sdkClient(ctx, t, emu).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(testCluster),
		Services: []string{"berth-berth-dev-web"}})
	if err != nil || len(svcs.Services) != 1 {
		t.Fatal(svcs, err)
	}
	svc := svcs.Services[0]
	if len(svc.LoadBalancers) != 1 || aws.ToInt32(svc.LoadBalancers[0].ContainerPort) != 8080 ||
		aws.ToString(svc.LoadBalancers[0].ContainerName) != berthaws.ContainerName ||
		svc.HealthCheckGracePeriodSeconds == nil || aws.ToInt32(svc.DeploymentConfiguration.MinimumHealthyPercent) != 100 ||
		aws.ToInt32(svc.DeploymentConfiguration.MaximumPercent) != 200 {
		t.Errorf("service %+v %+v", svc.LoadBalancers, svc.DeploymentConfiguration)
	}

	obs := listed(ctx, t, p, d.Owner)
	if len(obs) != 1 {
		t.Fatalf("List: %+v", obs)
	}
	o := obs[0]
	want := []providers.Endpoint{{Port: 8080, Address: emu.LoadBalancerDNS(lbName) + ":8080"}}
	if !reflect.DeepEqual(o.Endpoints, want) || emu.LoadBalancerDNS(lbName) == "" {
		t.Errorf("endpoints %+v, want %+v", o.Endpoints, want)
	}
	if len(o.Missing) > 0 {
		t.Errorf("missing %v", o.Missing)
	}
	norm := p.Normalize(providers.Normalize(d.Workload))
	if !reflect.DeepEqual(o.Spec.Health, norm.Health) || o.Spec.Health.Interval.D() != 5*time.Second {
		t.Errorf("health reads back %+v, want %+v", o.Spec.Health, norm.Health)
	}
	got := providers.Normalize(o.Spec)
	got.Name, norm.Name = "", ""
	if !reflect.DeepEqual(got, norm) {
		t.Errorf("spec reads back\n%+v\nwant\n%+v", got, norm)
	}
	if len(o.Replicas) != 2 {
		t.Fatalf("replicas %+v", o.Replicas)
	}
	for _, r := range o.Replicas {
		if r.Health != "healthy" || !r.Ready() {
			t.Errorf("replica %+v", r)
		}
	}

	// Applying again changes nothing: no ELBv2 create or modify.
	emu.ResetRequests()
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests() {
		if strings.HasPrefix(r.Op, ecsemu.ELBv2Op+"Create") || strings.HasPrefix(r.Op, ecsemu.ELBv2Op+"Modify") || r.Op == "UpdateService" {
			t.Errorf("a repeated Apply sent %s", r.Op)
		}
	}

	if err := p.Delete(ctx, d.Owner, "aws-test", "web"); err != nil {
		t.Fatal(err)
	}
	if n, g := emu.LoadBalancerNames(), emu.TargetGroupNames(); len(n) != 0 || len(g) != 0 {
		t.Errorf("after Delete: load balancers %v, target groups %v", n, g)
	}
}

// A version whose health check the target group finds failing never becomes ready: ECS stops its tasks (failed
// ELB health checks), the circuit breaker fails the deployment and rolls back, Apply fails saying so, and the old
// version keeps its healthy targets all along. Applying the old version again converges.
func TestHealthHold(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	emu.SetTargetHealth(targetHealth)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	v1 := quickstartDesired("web")
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatal(err)
	}
	tgName := theOnly(t, emu.TargetGroupNames(), "b-web-")
	v2 := v1
	v2.Workload.Image = unhealthyImage
	v2.SpecHash = providers.SpecHash(v2.Workload)
	err := p.Apply(ctx, v2)
	if err == nil || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "ELB health checks") {
		t.Fatalf("Apply of an unhealthy version: %v, want a permanent error naming the failed ELB health checks", err)
	}
	healthy := 0
	for _, s := range emu.TargetStates(tgName) {
		if s == "healthy" {
			healthy++
		}
	}
	if healthy != 2 {
		t.Errorf("after the failed rollout: targets %v, want the old version's two healthy", emu.TargetStates(tgName))
	}
	if err := p.Apply(ctx, v1); err != nil {
		t.Fatalf("applying the old version again: %v", err)
	}
	obs := listed(ctx, t, p, v1.Owner)
	if len(obs) != 1 || obs[0].SpecHash != v1.SpecHash || len(obs[0].Replicas) != 2 {
		t.Fatalf("after re-applying v1: %+v", obs)
	}
}

// A target group or listener deleted by hand shows in Observed.Missing (and the endpoint of a port without its
// listener is left out), and one Apply makes it again: a new target group is attached to the service (a new
// deployment, make-before-break).
func TestLoadBalancingDrift(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	emu.SetTargetHealth(targetHealth)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	d := quickstartDesired("web")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	lbName := theOnly(t, emu.LoadBalancerNames(), "b-web-")
	tgName := theOnly(t, emu.TargetGroupNames(), "b-web-")
	for _, c := range []struct {
		name    string
		tamper  func() bool
		missing string
	}{
		{"listener", func() bool { return emu.DeleteListenerByHand(lbName, 8080) }, "listener " + lbName + ":8080"},
		{"target group", func() bool { return emu.DeleteTargetGroupByHand(tgName) }, "target group " + tgName},
	} {
		if !c.tamper() {
			t.Fatalf("%s: nothing to delete", c.name)
		}
		obs := listed(ctx, t, p, d.Owner)
		if len(obs) != 1 || !slices.Contains(obs[0].Missing, c.missing) || len(obs[0].Endpoints) != 0 {
			t.Fatalf("%s deleted: %+v, want %q missing and no endpoint", c.name, obs, c.missing)
		}
		if err := p.Apply(ctx, d); err != nil {
			t.Fatalf("%s: Apply: %v", c.name, err)
		}
		obs = listed(ctx, t, p, d.Owner)
		if len(obs) != 1 || len(obs[0].Missing) != 0 || len(obs[0].Endpoints) != 1 {
			t.Fatalf("%s repaired: %+v", c.name, obs)
		}
	}
}

// A load balancer or target group of berth's name that is not the workload's (no tags, or another's) is never
// used: Apply fails permanently naming it.
func TestLoadBalancerNameTaken(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	d := quickstartDesired("web")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	name := theOnly(t, emu.LoadBalancerNames(), "b-web-")
	if err := p.Delete(ctx, d.Owner, "aws-test", "web"); err != nil {
		t.Fatal(err)
	}
	c := elbClient(ctx, t, emu)
	if _, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Subnets: []string{"subnet-0a1b2c3d"}}); err != nil {
		t.Fatal(err)
	}
	err := p.Apply(ctx, d)
	if err == nil || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "not owned") {
		t.Fatalf("Apply onto someone else's load balancer: %v", err)
	}
}

// With settings.loadBalancer, berth adds its listeners to the target's network load balancer and never takes a
// port that another listener holds; Delete removes only its own listener and target group.
func TestSharedLoadBalancer(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	ctx := testCtx(t)
	c := elbClient(ctx, t, emu)
	lb, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("shared"), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Subnets: []string{"subnet-0a1b2c3d"}})
	if err != nil {
		t.Fatal(err)
	}
	lbArn := lb.LoadBalancers[0].LoadBalancerArn
	theirs, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("theirs"), Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(80), VpcId: aws.String(ecsemu.DefaultVpcID), TargetType: elbtypes.TargetTypeEnumIp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(8080), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward,
			TargetGroupArn: theirs.TargetGroups[0].TargetGroupArn}}}); err != nil {
		t.Fatal(err)
	}
	tg := target("aws-test", emu.URL())
	tg.Settings["loadBalancer"] = "shared"
	t.Setenv("AWS_ENDPOINT_URL_EC2", emu.URL())
	pr, err := providers.New(tg, providers.Options{Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*berthaws.Provider)
	p.PollInterval, p.RetryBase, p.RetryMax = 2*time.Millisecond, time.Millisecond, 5*time.Millisecond
	if how := p.Capabilities().How[providers.FeaturePublicPort]; !strings.Contains(how, "shared") {
		t.Errorf("How of public ports: %q", how)
	}

	d := quickstartDesired("web")
	err = p.Apply(ctx, d)
	if err == nil || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "does not own") {
		t.Fatalf("Apply onto a taken port: %v", err)
	}
	d.Workload.Ports[0].Port, d.Workload.Health.HTTP.Port = 9090, 9090
	d.SpecHash = providers.SpecHash(d.Workload)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	obs := listed(ctx, t, p, d.Owner)
	if len(obs) != 1 || fmt.Sprint(obs[0].Endpoints) != fmt.Sprint([]providers.Endpoint{{Port: 9090, Address: emu.LoadBalancerDNS("shared") + ":9090"}}) {
		t.Fatalf("List: %+v", obs)
	}
	if err := p.Delete(ctx, d.Owner, "aws-test", "web"); err != nil {
		t.Fatal(err)
	}
	ls, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: lbArn})
	if err != nil || len(ls.Listeners) != 1 || aws.ToInt32(ls.Listeners[0].Port) != 8080 {
		t.Errorf("after Delete: listeners %+v %v, want only theirs", ls, err)
	}
	if g := emu.TargetGroupNames(); !reflect.DeepEqual(g, []string{"theirs"}) || !reflect.DeepEqual(emu.LoadBalancerNames(), []string{"shared"}) {
		t.Errorf("after Delete: target groups %v, load balancers %v", g, emu.LoadBalancerNames())
	}
}

// Throttling and 5xx answers of ELBv2 are retried: Apply converges and makes each object once.
func TestELBv2FaultsConverge(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	for _, op := range []string{"CreateLoadBalancer", "CreateTargetGroup", "CreateListener", "DescribeTargetHealth", "DescribeTags"} {
		emu.FailOp(ecsemu.ELBv2Op+op, 1, ecsemu.Throttle)
		emu.FailOp(ecsemu.ELBv2Op+op, 1, ecsemu.ServerError)
		emu.FailOp(ecsemu.ELBv2Op+op, 1, ecsemu.Unavailable)
	}
	d := quickstartDesired("web")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := len(emu.LoadBalancerNames()); n != 1 {
		t.Errorf("%d load balancers", n)
	}
	if n := len(emu.TargetGroupNames()); n != 1 {
		t.Errorf("%d target groups", n)
	}
	// A denial is permanent at once, with the action named.
	emu.FailOp(ecsemu.ELBv2Op+"DescribeLoadBalancers", 1, ecsemu.Denied)
	err := p.Apply(ctx, d)
	if err == nil || !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "elasticloadbalancing:DescribeLoadBalancers, CreateLoadBalancer") {
		t.Errorf("denied: %v, want a permanent error naming the ELBv2 permissions", err)
	}
}

// What berth validates offline (no connection, no credentials) is what the provider reports for the same target.
func TestOfflineEqualsOnline(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	for _, settings := range []map[string]any{{}, {"loadBalancer": "shared"}} {
		tg := target("aws-test", emu.URL())
		for k, v := range settings {
			tg.Settings[k] = v
		}
		caps, v, err := providers.OfflineFor(tg)
		if err != nil || v == nil {
			t.Fatal(err)
		}
		pr, err := providers.New(tg, providers.Options{Instance: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(caps, pr.Capabilities()) {
			t.Errorf("offline %+v\nonline  %+v", caps, pr.Capabilities())
		}
		for _, f := range []string{providers.FeaturePublicPort, providers.FeatureAddress, providers.FeatureHealthHTTP,
			providers.FeatureHealthTCP, providers.FeatureHealthCommand, providers.FeatureCPU, providers.FeatureMemory,
			providers.FeatureArgs, providers.FeatureRollout} {
			if caps.How[f] == "" {
				t.Errorf("no How for %s", f)
			}
		}
		bad := quickstartWorkload("bad")
		bad.Ports[0].Public = false
		big := quickstartWorkload("big")
		big.Resources.CPUMillis = 64000
		big.Health.Retries = 20
		for _, w := range []schema.Workload{quickstartWorkload("web"), referenceWorkload("ref"), bad, big} {
			off, on := v.Validate(w), pr.(providers.Validator).Validate(w)
			if !reflect.DeepEqual(off, on) {
				t.Errorf("%s: offline problems %+v, online %+v", w.Name, off, on)
			}
			if (w.Name == "bad" || w.Name == "big") && len(on) == 0 {
				t.Errorf("%s: no problems", w.Name)
			}
		}
	}
	// Offline needs no credentials: it works with none in the environment and reads no files.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, _, err := providers.OfflineFor(target("aws-test", "http://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	bad := target("aws-test", "http://127.0.0.1:1")
	bad.Settings["loadBalancer"] = "no spaces allowed"
	if _, _, err := providers.OfflineFor(bad); err == nil || !strings.Contains(err.Error(), "settings.loadBalancer") {
		t.Errorf("a bad loadBalancer setting: %v", err)
	}
}
