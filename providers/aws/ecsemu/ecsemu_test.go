package ecsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// call posts one operation as the SDK would (signature header present, not verified).
func call(t *testing.T, s *Server, op string, in any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", bytes.NewReader(b))
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

// Tasks start over steps, the deployment completes only when they run, and a stopped task is replaced.
func TestSchedulerSteps(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	fam := map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"}, "networkMode": "awsvpc",
		"cpu": "256", "memory": "512", "containerDefinitions": []any{map[string]any{"name": "app", "image": "img"}}}
	if code, out := call(t, s, "RegisterTaskDefinition", fam); code != 200 {
		t.Fatalf("register: %d %v", code, out)
	}
	code, out := call(t, s, "CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "f", "desiredCount": 2,
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"s"}}}})
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	rollout := func() (string, float64) {
		_, out := call(t, s, "DescribeServices", map[string]any{"services": []string{"svc"}})
		svc := out["services"].([]any)[0].(map[string]any)
		dep := svc["deployments"].([]any)[0].(map[string]any)
		return dep["rolloutState"].(string), svc["runningCount"].(float64)
	}
	if st, n := rollout(); st != "IN_PROGRESS" || n != 0 {
		t.Fatalf("before any step: %s running %v", st, n)
	}
	s.Step(3) // schedule + PROVISIONING → PENDING → RUNNING
	if st, n := rollout(); st != "COMPLETED" || n != 2 {
		t.Fatalf("after 3 steps: %s running %v, want COMPLETED 2", st, n)
	}
	if _, err := s.KillTask("default", "svc", 0); err != nil {
		t.Fatal(err)
	}
	if _, n := rollout(); n != 1 {
		t.Fatalf("after a kill: running %v, want 1", n)
	}
	s.Step(3)
	if st, n := rollout(); st != "COMPLETED" || n != 2 {
		t.Fatalf("the scheduler did not replace the task: %s running %v", st, n)
	}
	s.Fail(1, Throttle)
	if code, out := call(t, s, "ListServices", map[string]any{}); code != 400 || out["__type"] != "com.amazonaws.ecs#ThrottlingException" {
		t.Fatalf("throttled call: %d %v", code, out)
	}
	if code, out := call(t, s, "RegisterTaskDefinition", map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"},
		"networkMode": "awsvpc", "cpu": "512", "memory": "512", "containerDefinitions": fam["containerDefinitions"]}); code != 400 || out["__type"] != "com.amazonaws.ecs#ClientException" {
		t.Fatalf("invalid Fargate pair: %d %v", code, out)
	}
}

// Required fields the SDK checks before sending are refused by the emulator too, for clients that do not.
func TestRequiredFields(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	container := []any{map[string]any{"name": "app", "image": "img"}}
	for _, c := range []struct {
		op   string
		in   map[string]any
		typ  string
		want string
	}{
		{"RegisterTaskDefinition", map[string]any{"containerDefinitions": container}, "ClientException", "Family"},
		{"RegisterTaskDefinition", map[string]any{"family": "f"}, "ClientException", "Container list cannot be empty"},
		{"DescribeTaskDefinition", map[string]any{}, "ClientException", "taskDefinition"},
		{"CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "nope"}, "ClientException", "TaskDefinition not found"},
	} {
		code, out := call(t, s, c.op, c.in)
		msg, _ := out["message"].(string)
		if code != 400 || out["__type"] != "com.amazonaws.ecs#"+c.typ || !strings.Contains(msg, c.want) {
			t.Errorf("%s %v: %d %v, want 400 %s containing %q", c.op, c.in, code, out, c.typ, c.want)
		}
	}
	if code, out := call(t, s, "RegisterTaskDefinition", map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"},
		"networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": container}); code != 200 {
		t.Fatalf("register: %d %v", code, out)
	}
	code, out := call(t, s, "CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "f", "launchType": "FARGATE",
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{}}}})
	if code != 400 || out["__type"] != "com.amazonaws.ecs#InvalidParameterException" {
		t.Errorf("CreateService without subnets: %d %v", code, out)
	}
}

// ListTaskDefinitions takes the full family name in familyPrefix; ListTaskDefinitionFamilies a real prefix, and
// lists a family as ACTIVE while one of its revisions is.
func TestTaskDefinitionLists(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	for _, f := range []string{"web", "web-2"} {
		if code, out := call(t, s, "RegisterTaskDefinition", map[string]any{"family": f,
			"containerDefinitions": []any{map[string]any{"name": "app", "image": "img"}}}); code != 200 {
			t.Fatalf("register %s: %d %v", f, code, out)
		}
	}
	_, out := call(t, s, "ListTaskDefinitions", map[string]any{"familyPrefix": "web"})
	if arns := out["taskDefinitionArns"].([]any); len(arns) != 1 || !strings.HasSuffix(arns[0].(string), "/web:1") {
		t.Errorf("ListTaskDefinitions familyPrefix web = %v, want web:1 only", arns)
	}
	call(t, s, "DeregisterTaskDefinition", map[string]any{"taskDefinition": "web-2:1"})
	_, out = call(t, s, "ListTaskDefinitionFamilies", map[string]any{"familyPrefix": "web"})
	if fs := out["families"].([]any); len(fs) != 1 || fs[0] != "web" {
		t.Errorf("ACTIVE families = %v, want [web]", fs)
	}
	_, out = call(t, s, "ListTaskDefinitionFamilies", map[string]any{"familyPrefix": "web", "status": "INACTIVE"})
	if fs := out["families"].([]any); len(fs) != 1 || fs[0] != "web-2" {
		t.Errorf("INACTIVE families = %v, want [web-2]", fs)
	}
}

// With ResolveSecret, a task resolves its container's secrets[] when it starts and TaskEnvironment shows what the
// container sees; a secret that cannot be resolved stops the task with ResourceInitializationError. The API's
// answers hold only the valueFrom.
func TestSecretsResolvedAtStart(t *testing.T) {
	values := map[string]string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:::v1": "s3cr3t-db"}
	s := New(Options{Manual: true, ResolveSecret: func(from string) (string, error) {
		if v, ok := values[from]; ok {
			return v, nil
		}
		return "", errors.New("AccessDeniedException: not authorized")
	}})
	defer s.Close()
	register := func(from string) {
		t.Helper()
		td := map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"}, "networkMode": "awsvpc",
			"cpu": "256", "memory": "512", "containerDefinitions": []any{map[string]any{"name": "app", "image": "img",
				"environment": []any{map[string]any{"name": "PLAIN", "value": "p"}},
				"secrets":     []any{map[string]any{"name": "DB", "valueFrom": from}}}}}
		if code, out := call(t, s, "RegisterTaskDefinition", td); code != 200 {
			t.Fatalf("register: %d %v", code, out)
		}
	}
	register("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:::v1")
	if code, out := call(t, s, "CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "f", "desiredCount": 1,
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"s"}}}}); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	s.Step(3)
	envs := s.TaskEnvironment("default", "svc")
	if len(envs) != 1 || envs[0]["DB"] != "s3cr3t-db" || envs[0]["PLAIN"] != "p" {
		t.Fatalf("TaskEnvironment = %v", envs)
	}
	_, out := call(t, s, "DescribeTaskDefinition", map[string]any{"taskDefinition": "f"})
	if b, _ := json.Marshal(out); strings.Contains(string(b), "s3cr3t-db") {
		t.Fatal("the task definition holds the resolved value")
	}
	register("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:::v2")
	call(t, s, "UpdateService", map[string]any{"service": "svc", "taskDefinition": "f:2"})
	s.Step(3)
	_, out = call(t, s, "ListTasks", map[string]any{"serviceName": "svc", "desiredStatus": "STOPPED"})
	arns, _ := out["taskArns"].([]any)
	if len(arns) == 0 {
		t.Fatal("the task with an unresolvable secret did not stop")
	}
	_, out = call(t, s, "DescribeTasks", map[string]any{"tasks": arns})
	reason, _ := out["tasks"].([]any)[0].(map[string]any)["stoppedReason"].(string)
	if !strings.HasPrefix(reason, "ResourceInitializationError: unable to pull secrets") {
		t.Errorf("stoppedReason = %q", reason)
	}
	if envs := s.TaskEnvironment("default", "svc"); len(envs) != 1 || envs[0]["DB"] != "s3cr3t-db" {
		t.Errorf("the old task stopped serving: %v", envs)
	}
}

// Tags are held to ECS's limits on every call that takes them: 50, keys 1–128 and values 0–256 of the allowed
// characters, no aws: prefix, no key twice; a TagResource over 50 changes nothing.
func TestTagLimits(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	td := func(tags []Tag) map[string]any {
		return map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"}, "networkMode": "awsvpc",
			"cpu": "256", "memory": "512", "containerDefinitions": []any{map[string]any{"name": "app", "image": "img"}},
			"tags": tags}
	}
	many := func(n int) []Tag {
		var out []Tag
		for i := range n {
			out = append(out, Tag{Key: "k" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Value: "v"})
		}
		return out
	}
	for name, c := range map[string]struct {
		tags []Tag
		ok   bool
	}{
		"50 tags":            {many(50), true},
		"51 tags":            {many(51), false},
		"key of 128":         {[]Tag{{Key: strings.Repeat("k", 128), Value: "v"}}, true},
		"key of 129":         {[]Tag{{Key: strings.Repeat("k", 129), Value: "v"}}, false},
		"value of 256":       {[]Tag{{Key: "k", Value: strings.Repeat("v", 256)}}, true},
		"value of 257":       {[]Tag{{Key: "k", Value: strings.Repeat("v", 257)}}, false},
		"empty key":          {[]Tag{{Key: "", Value: "v"}}, false},
		"berth's keys":       {[]Tag{{Key: "berth.dev/preview", Value: "2147483647"}, {Key: "berth.dev/head", Value: strings.Repeat("a", 40)}}, true},
		"reserved prefix":    {[]Tag{{Key: "AWS:thing", Value: "v"}}, false},
		"a character":        {[]Tag{{Key: "k", Value: "a;b"}}, false},
		"the same key twice": {[]Tag{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}, false},
	} {
		code, out := call(t, s, "RegisterTaskDefinition", td(c.tags))
		if (code == 200) != c.ok || !c.ok && out["__type"] != "com.amazonaws.ecs#InvalidParameterException" {
			t.Errorf("%s: %d %v", name, code, out)
		}
	}
	code, out := call(t, s, "RegisterTaskDefinition", td(many(49)))
	if code != 200 {
		t.Fatal(code, out)
	}
	arn := out["taskDefinition"].(map[string]any)["taskDefinitionArn"].(string)
	if code, out := call(t, s, "TagResource", map[string]any{"resourceArn": arn, "tags": []Tag{{Key: "n1", Value: "1"}, {Key: "n2", Value: "2"}}}); code != 400 {
		t.Fatalf("TagResource to 51 tags: %d %v", code, out)
	}
	_, out = call(t, s, "ListTagsForResource", map[string]any{"resourceArn": arn})
	if n := len(out["tags"].([]any)); n != 49 {
		t.Errorf("a refused TagResource left %d tags, want 49", n)
	}
	if code, out := call(t, s, "TagResource", map[string]any{"resourceArn": arn, "tags": []Tag{{Key: "n1", Value: "1"}}}); code != 200 {
		t.Fatalf("TagResource to 50 tags: %d %v", code, out)
	}
}

// An awsvpc task's interface shows as ECS shows it: PRECREATED with its subnet while provisioning, ATTACHED with
// its id and private address from PENDING on, DELETED once the task stopped.
func TestTaskNetworkInterface(t *testing.T) {
	s := New(Options{Manual: true})
	defer s.Close()
	call(t, s, "RegisterTaskDefinition", map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"},
		"networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": []any{map[string]any{"name": "app", "image": "img"}}})
	if code, out := call(t, s, "CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "f", "desiredCount": 1,
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"subnet-1"}}}}); code != 200 {
		t.Fatal(code, out)
	}
	s.Step(1)
	eni := func() (status string, details map[string]string) {
		t.Helper()
		arns := s.LiveTasks("default", "svc")
		if len(arns) != 1 {
			t.Fatalf("live tasks %v", arns)
		}
		_, out := call(t, s, "DescribeTasks", map[string]any{"tasks": arns})
		task := out["tasks"].([]any)[0].(map[string]any)
		a := task["attachments"].([]any)[0].(map[string]any)
		if a["type"] != "ElasticNetworkInterface" {
			t.Fatalf("attachment %v", a)
		}
		details = map[string]string{}
		for _, d := range a["details"].([]any) {
			kv := d.(map[string]any)
			details[kv["name"].(string)] = kv["value"].(string)
		}
		return a["status"].(string), details
	}
	if st, d := eni(); st != "PRECREATED" || d["subnetId"] != "subnet-1" || d["privateIPv4Address"] != "" {
		t.Fatalf("provisioning: %s %v", st, d)
	}
	s.Step(1)
	st, d := eni()
	if st != "ATTACHED" || d["privateIPv4Address"] == "" || !strings.HasPrefix(d["networkInterfaceId"], "eni-") {
		t.Fatalf("pending: %s %v", st, d)
	}
	if got := s.TaskAddress("default", s.LiveTasks("default", "svc")[0]); got != d["privateIPv4Address"] {
		t.Errorf("TaskAddress %q, DescribeTasks %q", got, d["privateIPv4Address"])
	}
}

// The real EC2 client reads a task's interface from the same server: its private address and, with
// assignPublicIp, its public IP; an id of no attached interface fails the call as EC2 does.
func TestDescribeNetworkInterfaces(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s := New(Options{Manual: true})
	defer s.Close()
	call(t, s, "RegisterTaskDefinition", map[string]any{"family": "f", "requiresCompatibilities": []string{"FARGATE"},
		"networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": []any{map[string]any{"name": "app", "image": "img"}}})
	if code, out := call(t, s, "CreateService", map[string]any{"serviceName": "svc", "taskDefinition": "f", "desiredCount": 1,
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"subnet-1"}, "assignPublicIp": "ENABLED"}}}); code != 200 {
		t.Fatal(code, out)
	}
	s.Step(3)
	arns := s.LiveTasks("default", "svc")
	_, out := call(t, s, "DescribeTasks", map[string]any{"tasks": arns})
	var eni string
	for _, d := range out["tasks"].([]any)[0].(map[string]any)["attachments"].([]any)[0].(map[string]any)["details"].([]any) {
		if kv := d.(map[string]any); kv["name"] == "networkInterfaceId" {
			eni = kv["value"].(string)
		}
	}
	client := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	ctx := context.Background()
	got, err := client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.NetworkInterfaces) != 1 {
		t.Fatalf("interfaces %+v", got.NetworkInterfaces)
	}
	ni := got.NetworkInterfaces[0]
	if aws.ToString(ni.NetworkInterfaceId) != eni || aws.ToString(ni.PrivateIpAddress) != s.TaskAddress("default", arns[0]) ||
		ni.Association == nil || aws.ToString(ni.Association.PublicIp) != s.TaskPublicIP("default", arns[0]) ||
		!strings.HasPrefix(s.TaskPublicIP("default", arns[0]), "203.0.113.") || aws.ToString(ni.SubnetId) != "subnet-1" {
		t.Errorf("interface %+v (association %+v)", ni, ni.Association)
	}
	_, err = client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni, "eni-0000"}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidNetworkInterfaceID.NotFound" || !strings.Contains(ae.ErrorMessage(), "eni-0000") {
		t.Errorf("an unknown interface: %v", err)
	}
	s.FailOp(EC2Op+"DescribeNetworkInterfaces", 1, Throttle)
	if _, err := client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}}); !errors.As(err, &ae) || ae.ErrorCode() != "RequestLimitExceeded" {
		t.Errorf("a throttled call: %v", err)
	}
}
