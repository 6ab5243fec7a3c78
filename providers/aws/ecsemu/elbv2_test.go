package ecsemu

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

// elbClient is the real ELBv2 SDK client on the emulator, with static test credentials and no retries.
func elbClient(s *Server) *elb.Client {
	return elb.NewFromConfig(aws.Config{Region: "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}, func(o *elb.Options) {
		o.BaseEndpoint = aws.String(s.URL())
		o.Retryer = aws.NopRetryer{}
	})
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func newLB(ctx context.Context, t *testing.T, c *elb.Client, name string) *elbtypes.LoadBalancer {
	t.Helper()
	out, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Subnets: []string{"subnet-1"}})
	if err != nil {
		t.Fatal(err)
	}
	return &out.LoadBalancers[0]
}

func newTG(ctx context.Context, t *testing.T, c *elb.Client, name string, port int32) *elbtypes.TargetGroup {
	t.Helper()
	out, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(port), VpcId: aws.String(DefaultVpcID), TargetType: elbtypes.TargetTypeEnumIp,
		HealthCheckProtocol: elbtypes.ProtocolEnumHttp, HealthCheckPath: aws.String("/healthz"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	return &out.TargetGroups[0]
}

// The ELBv2 answers parse with the real SDK: creates are idempotent for the same settings, names are checked as
// ELBv2 documents them, duplicates and unknown objects get ELBv2's error codes, describes page with Marker.
func TestELBv2Objects(t *testing.T) {
	s := New(Options{Region: "eu-west-1"})
	defer s.Close()
	c := elbClient(s)
	ctx := context.Background()
	lb := newLB(ctx, t, c, "lb-a")
	if !strings.HasSuffix(aws.ToString(lb.DNSName), ".elb.eu-west-1.amazonaws.com") || lb.Type != elbtypes.LoadBalancerTypeEnumNetwork ||
		lb.Scheme != elbtypes.LoadBalancerSchemeEnumInternetFacing || aws.ToString(lb.VpcId) != DefaultVpcID {
		t.Errorf("load balancer %+v", lb)
	}
	if again := newLB(ctx, t, c, "lb-a"); aws.ToString(again.LoadBalancerArn) != aws.ToString(lb.LoadBalancerArn) {
		t.Errorf("the same create twice made %s and %s", aws.ToString(lb.LoadBalancerArn), aws.ToString(again.LoadBalancerArn))
	}
	_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("lb-a"), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Subnets: []string{"subnet-2"}})
	if errCode(err) != "DuplicateLoadBalancerName" {
		t.Errorf("another create of the name: %v", err)
	}
	for _, name := range []string{strings.Repeat("a", 33), "-a", "a-", "a_b", "internal-a", ""} {
		_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Type: elbtypes.LoadBalancerTypeEnumNetwork,
			Subnets: []string{"subnet-1"}})
		if errCode(err) != "ValidationError" {
			t.Errorf("load balancer name %q: %v", name, err)
		}
	}
	newLB(ctx, t, c, strings.Repeat("b", 32))
	newLB(ctx, t, c, "lb-c")

	// Pages of one, by Marker.
	var names []string
	var marker *string
	for range 5 {
		out, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(1), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range out.LoadBalancers {
			names = append(names, aws.ToString(l.LoadBalancerName))
		}
		if marker = out.NextMarker; aws.ToString(marker) == "" {
			break
		}
	}
	if strings.Join(names, ",") != "lb-a,"+strings.Repeat("b", 32)+",lb-c" {
		t.Errorf("paged names %v", names)
	}
	if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"nope"}}); errCode(err) != "LoadBalancerNotFound" {
		t.Errorf("an unknown name: %v", err)
	}

	tg := newTG(ctx, t, c, "tg-a", 8080)
	if again := newTG(ctx, t, c, "tg-a", 8080); aws.ToString(again.TargetGroupArn) != aws.ToString(tg.TargetGroupArn) {
		t.Error("the same target group create twice made two")
	}
	if _, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("tg-a"), Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(9090), VpcId: aws.String(DefaultVpcID), TargetType: elbtypes.TargetTypeEnumIp}); errCode(err) != "DuplicateTargetGroupName" {
		t.Errorf("another create of the name: %v", err)
	}
	for _, in := range []*elb.CreateTargetGroupInput{
		{HealthCheckIntervalSeconds: aws.Int32(4)}, {HealthCheckTimeoutSeconds: aws.Int32(121)}, {HealthyThresholdCount: aws.Int32(1)},
		{UnhealthyThresholdCount: aws.Int32(11)}, {HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(6)},
		{HealthCheckPath: aws.String("/x")}, // a path with a TCP check
	} {
		in.Name, in.Protocol, in.Port, in.VpcId, in.TargetType = aws.String("tg-bad"), elbtypes.ProtocolEnumTcp, aws.Int32(1), aws.String(DefaultVpcID), elbtypes.TargetTypeEnumIp
		if _, err := c.CreateTargetGroup(ctx, in); errCode(err) != "ValidationError" {
			t.Errorf("target group %+v: %v", in, err)
		}
	}
	if _, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{"nope"}}); errCode(err) != "TargetGroupNotFound" {
		t.Errorf("an unknown target group: %v", err)
	}

	// A listener per port; the group in use cannot be deleted; deleting the load balancer deletes its listeners.
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(8080), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}})
	if err != nil {
		t.Fatal(err)
	}
	other := newTG(ctx, t, c, "tg-b", 8080)
	if _, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(8080), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: other.TargetGroupArn}}}); errCode(err) != "DuplicateListener" {
		t.Errorf("a second listener on the port: %v", err)
	}
	if _, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn}); errCode(err) != "ResourceInUse" {
		t.Errorf("deleting a group a listener forwards to: %v", err)
	}
	d, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil || len(d.TargetGroups) != 1 || len(d.TargetGroups[0].LoadBalancerArns) != 1 {
		t.Errorf("the load balancer's groups: %+v %v", d, err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{aws.ToString(l.Listeners[0].ListenerArn)}}); errCode(err) != "ListenerNotFound" {
		t.Errorf("a deleted load balancer's listener: %v", err)
	}
	if _, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn}); err != nil {
		t.Errorf("deleting a group nothing uses: %v", err)
	}

	// Tags: add, overwrite, remove, describe.
	arn := aws.ToString(other.TargetGroupArn)
	if _, err := c.AddTags(ctx, &elb.AddTagsInput{ResourceArns: []string{arn}, Tags: []elbtypes.Tag{{Key: aws.String("a"), Value: aws.String("1")},
		{Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	c.AddTags(ctx, &elb.AddTagsInput{ResourceArns: []string{arn}, Tags: []elbtypes.Tag{{Key: aws.String("a"), Value: aws.String("3")}}})
	c.RemoveTags(ctx, &elb.RemoveTagsInput{ResourceArns: []string{arn}, TagKeys: []string{"b"}})
	tags, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil || len(tags.TagDescriptions) != 1 || len(tags.TagDescriptions[0].Tags) != 1 || aws.ToString(tags.TagDescriptions[0].Tags[0].Value) != "3" {
		t.Errorf("tags %+v %v", tags, err)
	}
	if _, err := c.AddTags(ctx, &elb.AddTagsInput{ResourceArns: []string{arn}, Tags: []elbtypes.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}}); errCode(err) != "ValidationError" {
		t.Errorf("an aws: key: %v", err)
	}
}

// Faults: throttling is ELBv2's Throttling (400), a server error 500 InternalFailure, both with a request id in
// the XML error body; a request without a signature is refused.
func TestELBv2Faults(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	c := elbClient(s)
	ctx := context.Background()
	s.FailOp(ELBv2Op+"DescribeLoadBalancers", 1, Throttle)
	s.Fail(1, ServerError)
	_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
	var re *awshttp.ResponseError
	if errCode(err) != "Throttling" || !errors.As(err, &re) || re.HTTPStatusCode() != 400 || re.ServiceRequestID() == "" {
		t.Errorf("throttled: %v", err)
	}
	_, err = c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
	if errCode(err) != "InternalFailure" || !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Errorf("server error: %v", err)
	}
	if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	resp, err := http.PostForm(s.URL()+"/", url.Values{"Action": {"DescribeLoadBalancers"}, "Version": {ELBv2Version}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>InvalidClientTokenId</Code>") || !strings.Contains(string(body), "<RequestId>") {
		t.Errorf("unsigned: %d %s", resp.StatusCode, body)
	}
}

// An ECS service with a load balancer: its running tasks are registered in the target group, its deployment
// completes only when they are healthy there, a task the group finds unhealthy is stopped (failed ELB health
// checks) and the circuit breaker fails the deployment; a stopped task's target drains, then goes.
func TestServiceTargets(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	c := elbClient(s)
	ctx := context.Background()
	lb := newLB(ctx, t, c, "lb")
	tg := newTG(ctx, t, c, "tg", 8080)
	td := map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"}, "networkMode": "awsvpc", "cpu": "256", "memory": "512",
		"containerDefinitions": []any{map[string]any{"name": "app", "image": "img:1", "portMappings": []any{map[string]any{"containerPort": 8080}}}}}
	if code, out := call(t, s, "RegisterTaskDefinition", td); code != 200 {
		t.Fatal(out)
	}
	svc := map[string]any{"serviceName": "svc", "taskDefinition": "f", "desiredCount": 1, "launchType": "FARGATE",
		"networkConfiguration":          map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"s"}}},
		"deploymentConfiguration":       map[string]any{"deploymentCircuitBreaker": map[string]any{"enable": true, "rollback": true}},
		"loadBalancers":                 []any{map[string]any{"targetGroupArn": aws.ToString(tg.TargetGroupArn), "containerName": "app", "containerPort": 8080}},
		"healthCheckGracePeriodSeconds": 10}
	if code, out := call(t, s, "CreateService", svc); code != 400 || !strings.Contains(out["message"].(string), "does not have an associated load balancer") {
		t.Fatalf("a group without a load balancer: %d %v", code, out)
	}
	if _, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}}); err != nil {
		t.Fatal(err)
	}
	if code, out := call(t, s, "CreateService", svc); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	rollout := func() string {
		_, out := call(t, s, "DescribeServices", map[string]any{"services": []string{"svc"}})
		return out["services"].([]any)[0].(map[string]any)["deployments"].([]any)[0].(map[string]any)["rolloutState"].(string)
	}
	s.Step(3) // provisioning, pending, running: registered
	states := s.TargetStates("tg")
	if len(states) != 1 || rollout() != "IN_PROGRESS" {
		t.Fatalf("a running task: targets %v, rollout %s", states, rollout())
	}
	s.Step(2) // two checks pass: healthy
	for _, st := range s.TargetStates("tg") {
		if st != "healthy" {
			t.Fatalf("after two good checks: %v", s.TargetStates("tg"))
		}
	}
	s.Step(1)
	if r := rollout(); r != "COMPLETED" {
		t.Fatalf("healthy targets: rollout %s", r)
	}

	// A new version the load balancer finds unhealthy.
	s.SetTargetHealth(func(p HealthProbe) bool { return p.Image == "img:1" && p.Path == "/healthz" && p.Port == 8080 })
	td["containerDefinitions"] = []any{map[string]any{"name": "app", "image": "img:2", "portMappings": []any{map[string]any{"containerPort": 8080}}}}
	call(t, s, "RegisterTaskDefinition", td)
	if code, out := call(t, s, "UpdateService", map[string]any{"service": "svc", "taskDefinition": "f:2"}); code != 200 {
		t.Fatal(out)
	}
	s.Step(40)
	_, out := call(t, s, "DescribeServices", map[string]any{"services": []string{"svc"}})
	deps := out["services"].([]any)[0].(map[string]any)["deployments"].([]any)
	primary := deps[0].(map[string]any)
	if len(deps) != 1 || primary["taskDefinition"] != s.arn("task-definition", "f:1") ||
		!strings.Contains(primary["rolloutStateReason"].(string), "circuit breaker: rolling back") {
		t.Fatalf("an unhealthy version: deployments %v, want f:1 again, rolled back by the circuit breaker", deps)
	}
	_, out = call(t, s, "ListTasks", map[string]any{"serviceName": "svc", "desiredStatus": "STOPPED"})
	_, desc := call(t, s, "DescribeTasks", map[string]any{"tasks": out["taskArns"]})
	reason := false
	for _, tk := range desc["tasks"].([]any) {
		if strings.Contains(tk.(map[string]any)["stoppedReason"].(string), "failed ELB health checks") {
			reason = true
		}
	}
	if !reason {
		t.Errorf("stopped tasks %v: none says it failed ELB health checks", desc["tasks"])
	}
	healthy := 0
	for _, st := range s.TargetStates("tg") {
		if st == "healthy" {
			healthy++
		}
	}
	if healthy != 1 {
		t.Errorf("the old task's target: %v", s.TargetStates("tg"))
	}
	// Scaled to 0, the old task's target drains and then goes.
	call(t, s, "UpdateService", map[string]any{"service": "svc", "desiredCount": 0})
	s.Step(1)
	drained := false
	for _, st := range s.TargetStates("tg") {
		drained = drained || st == "draining"
	}
	s.Step(3)
	if !drained || len(s.TargetStates("tg")) != 0 {
		t.Errorf("after scaling in: drained %t, targets %v", drained, s.TargetStates("tg"))
	}
}
