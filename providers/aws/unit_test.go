package aws

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func TestResourceName(t *testing.T) {
	long := strings.Repeat("w", 300)
	for _, c := range []struct {
		k    wkey
		want string
	}{
		{wkey{"berth", "prod", "aws", "web"}, "berth-berth-prod-web"},
		{wkey{"berth", "prod", "aws", "web.v2"}, "berth-berth-prod-web-v2-"},
		{wkey{"berth", "prod", "aws", long}, "berth-berth-prod-www"},
	} {
		got := resourceName(c.k)
		if !strings.HasPrefix(got, c.want) || len(got) > maxNameLen {
			t.Errorf("resourceName(%v) = %q, want prefix %q, at most %d chars", c.k, got, c.want, maxNameLen)
		}
	}
	if a, b := resourceName(wkey{"i", "e", "t", "a.b"}), resourceName(wkey{"i", "e", "t", "a_b"}); a == b {
		t.Errorf("distinct workloads share the name %q", a)
	}
	if a := resourceName(wkey{"i", "e", "t", long}); a != resourceName(wkey{"i", "e", "t", long}) || len(a) != maxNameLen {
		t.Errorf("long name %q not deterministic or not cut to %d", a, maxNameLen)
	}
}

func TestClientToken(t *testing.T) {
	k := wkey{"berth", "prod", "aws", "web"}
	a := clientToken(k, "abc", 2, nil)
	if len(a) > 36 || a != clientToken(k, "abc", 2, nil) {
		t.Fatalf("token %q: longer than 36 or not deterministic", a)
	}
	if a == clientToken(k, "abd", 2, nil) || a == clientToken(k, "abc", 3, nil) || a == clientToken(wkey{"x", "prod", "aws", "web"}, "abc", 2, nil) {
		t.Error("different creates share a token")
	}
	pr := providers.Owner{Instance: "berth", Environment: "pr-7", Preview: 7}
	v1 := clientToken(k, "abc", 2, previewTags(pr, &schema.Preview{Number: 7, Head: strings.Repeat("1", 40)}))
	v2 := clientToken(k, "abc", 2, previewTags(pr, &schema.Preview{Number: 7, Head: strings.Repeat("2", 40)}))
	if v1 == v2 || v1 == a || len(v1) > 36 {
		t.Errorf("a preview's tags are not part of its token: %q %q %q", a, v1, v2)
	}
}

func TestFargateSize(t *testing.T) {
	const mi = 1 << 20
	for _, c := range []struct {
		r        schema.Resources
		cpu, mem int
		field    string
	}{
		{schema.Resources{}, 256, 512, ""},
		{schema.Resources{CPUMillis: 250, MemoryBytes: 512 * mi}, 256, 512, ""},
		{schema.Resources{CPUMillis: 250, MemoryBytes: 600 * mi}, 256, 1024, ""},
		{schema.Resources{CPUMillis: 251}, 512, 1024, ""},
		{schema.Resources{CPUMillis: 1500, MemoryBytes: 3 << 30}, 2048, 4096, ""},
		{schema.Resources{CPUMillis: 4000, MemoryBytes: 31 << 30}, 8192, 0, "resources.memory"}, // 4096 units hold 30 GiB
		{schema.Resources{CPUMillis: 8000, MemoryBytes: 17 << 30}, 8192, 20480, ""},
		{schema.Resources{CPUMillis: 250, MemoryBytes: 3 << 30}, 256, 0, "resources.memory"},
		{schema.Resources{CPUMillis: 17000}, 0, 0, "resources.cpu"},
	} {
		cpu, mem, problems := fargateSize(c.r)
		field := ""
		if len(problems) > 0 {
			field = problems[0].Field
		}
		if field != c.field || (c.field == "" && (cpu != c.cpu || mem != c.mem)) {
			t.Errorf("fargateSize(%+v) = %d, %d, %v; want %d, %d, %q", c.r, cpu, mem, problems, c.cpu, c.mem, c.field)
		}
	}
}

func TestValidate(t *testing.T) {
	p := &Provider{}
	base := schema.Workload{Name: "w", Image: "i", Replicas: 1, Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20}}
	cmd := &schema.HealthCheck{Command: []string{"/app", "healthcheck"}, Interval: schema.Duration(10 * time.Second),
		Timeout: schema.Duration(2 * time.Second), Retries: 3}
	for _, c := range []struct {
		name   string
		mod    func(*schema.Workload)
		fields []string
	}{
		{"plain", func(*schema.Workload) {}, nil},
		{"command check", func(w *schema.Workload) { w.Health = cmd }, nil},
		{"http check of an internal port", func(w *schema.Workload) {
			w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/", Port: 80}}
		}, []string{"health.http.port"}},
		{"tcp check of no port", func(w *schema.Workload) { w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}} }, []string{"health.tcp.port"}},
		{"http check of a public port, faster than ELBv2 (raised to its minima)", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}}
			w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}, Interval: schema.Duration(2 * time.Second),
				Timeout: schema.Duration(time.Second), Retries: 1}
		}, nil},
		{"tcp check beyond ELBv2's maxima", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}}
			w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}, Interval: schema.Duration(301 * time.Second),
				Timeout: schema.Duration(121 * time.Second), Retries: 11}
		}, []string{"health.interval", "health.timeout", "health.retries"}},
		{"timeout longer than the interval", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}}
			w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}, Interval: schema.Duration(10 * time.Second),
				Timeout: schema.Duration(20 * time.Second), Retries: 3}
		}, []string{"health.timeout"}},
		{"http check of a public udp port", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 53, Protocol: "udp", Public: true}}
			w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/", Port: 53}, Interval: schema.Duration(10 * time.Second),
				Timeout: schema.Duration(5 * time.Second), Retries: 3}
		}, []string{"health.http.port"}},
		{"fast interval", func(w *schema.Workload) { h := *cmd; h.Interval = schema.Duration(time.Second); w.Health = &h }, []string{"health.interval"}},
		{"public udp port without a check ELBv2 can make", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 80, Protocol: "tcp"}, {Port: 53, Protocol: "udp", Public: true, HostPort: 20053}}
		}, []string{"ports[1].protocol"}},
		{"public udp port with a tcp check", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 80, Protocol: "tcp", Public: true}, {Port: 53, Protocol: "udp", Public: true, HostPort: 20053}}
			w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}, Interval: schema.Duration(10 * time.Second),
				Timeout: schema.Duration(5 * time.Second), Retries: 3}
		}, nil},
		{"too big", func(w *schema.Workload) { w.Resources.CPUMillis = 32000 }, []string{"resources.cpu"}},
		{"timeout over 60 s", func(w *schema.Workload) { h := *cmd; h.Timeout = schema.Duration(61 * time.Second); w.Health = &h }, []string{"health.timeout"}},
		{"timeout of 60.5 s (sent as 61)", func(w *schema.Workload) {
			h := *cmd
			h.Timeout = schema.Duration(60500 * time.Millisecond)
			w.Health = &h
		}, []string{"health.timeout"}},
		{"timeout of 60 s", func(w *schema.Workload) { h := *cmd; h.Timeout = schema.Duration(60 * time.Second); w.Health = &h }, nil},
		{"tcp and udp on one port", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 53, Protocol: "tcp"}, {Port: 53, Protocol: "udp"}}
		}, []string{"ports[1].port"}},
	} {
		w := base
		c.mod(&w)
		var got []string
		for _, pr := range p.Validate(w) {
			got = append(got, pr.Field)
		}
		if strings.Join(got, ",") != strings.Join(c.fields, ",") {
			t.Errorf("%s: problems on %v, want %v", c.name, got, c.fields)
		}
	}
}

func TestParseSettings(t *testing.T) {
	ok := map[string]any{"region": "eu-west-1", "cluster": "c", "subnets": []any{"s"}}
	if _, err := parseSettings(schema.Target{Name: "t", Settings: ok}); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	ok["secretsEndpoint"] = "https://vpce-0a1b.secretsmanager.eu-west-1.vpce.amazonaws.com"
	if s, err := parseSettings(schema.Target{Name: "t", Settings: ok}); err != nil || s.secretsEndpoint != ok["secretsEndpoint"] {
		t.Fatalf("secretsEndpoint: %v, %q", err, s.secretsEndpoint)
	}
	delete(ok, "secretsEndpoint")
	for _, c := range []struct {
		set  map[string]any
		want string
	}{
		{map[string]any{"cluster": "c", "subnets": []any{"s"}}, "settings.region: required"},
		{map[string]any{"region": "r", "cluster": "c", "subnets": []any{}}, "settings.subnets"},
		{map[string]any{"region": "r", "cluster": "c", "subnets": []any{1}}, "settings.subnets: element 0"},
		{map[string]any{"region": "r", "cluster": "c", "subnets": []any{"s"}, "endpoint": "localhost:1"}, "settings.endpoint"},
		{map[string]any{"region": "r", "cluster": "c", "subnets": []any{"s"}, "secretsEndpoint": "localhost:1"}, "settings.secretsEndpoint: want an http"},
		{map[string]any{"region": "r", "cluster": "c", "subnets": []any{"s"}, "taskRoleArn": "role"}, "settings.taskRoleArn"},
		{map[string]any{"region": "r", "cluster": "c", "subnets": []any{"s"}, "assignPublicIp": "yes"}, "settings.assignPublicIp"},
	} {
		_, err := parseSettings(schema.Target{Name: "t", Settings: c.set, Pos: schema.Pos{File: "targets.cue", Line: 3, Column: 2}})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "targets.cue:3:2") {
			t.Errorf("parseSettings(%v) = %v, want an error with %q and the position", c.set, err, c.want)
		}
	}
}

// What Apply registers reads back, through Normalize, as the workload asked: also where ECS cannot store it as it
// is (public ports, port names, HTTP checks, sub-second durations, task sizes between Fargate's steps).
func TestSpecReadBack(t *testing.T) {
	p := &Provider{set: settings{cluster: "c", subnets: []string{"s"}}}
	base := schema.Workload{Name: "web", Image: "img:1", Command: []string{"/app"}, Args: []string{"serve"},
		Env: map[string]string{"A": "1"}, Ports: []schema.Port{{Name: "http", Port: 8080, Protocol: "tcp"}},
		Replicas: 2, Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20},
		Health: &schema.HealthCheck{Command: []string{"/app", "healthcheck"}, Interval: schema.Duration(5 * time.Second),
			Timeout: schema.Duration(2 * time.Second), Retries: 3}}
	k := wkey{"i", "e", "t", "web"}
	for _, c := range []struct {
		name string
		mod  func(*schema.Workload)
	}{
		{"exact", func(*schema.Workload) {}},
		{"public port", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 80, Protocol: "tcp", Public: true, HostPort: 8080}}
		}},
		{"port name ECS cannot store", func(w *schema.Workload) { w.Ports[0].Name = "HTTP" }},
		{"port name taken", func(w *schema.Workload) { w.Ports = append(w.Ports, schema.Port{Name: "http", Port: 8081}) }},
		{"udp", func(w *schema.Workload) { w.Ports = append(w.Ports, schema.Port{Port: 53, Protocol: "udp"}) }},
		{"http check", func(w *schema.Workload) { w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/", Port: 80}} }},
		{"sub-second durations", func(w *schema.Workload) {
			w.Health.Interval, w.Health.Timeout = schema.Duration(5500*time.Millisecond), schema.Duration(1500*time.Millisecond)
		}},
		{"start period", func(w *schema.Workload) { w.Health.StartPeriod = schema.Duration(30 * time.Second) }},
		{"between sizes", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 300, MemoryBytes: 700 << 20} }},
		{"no resources", func(w *schema.Workload) { w.Resources = schema.Resources{} }},
		{"no env, no ports, no check", func(w *schema.Workload) { w.Env, w.Ports, w.Health = nil, nil, nil }},
	} {
		w := base
		w.Ports = append([]schema.Port(nil), base.Ports...)
		h := *base.Health
		w.Health = &h
		c.mod(&w)
		in, err := p.taskDefinitionInput(k, providers.Desired{Workload: w, SpecHash: "h1"}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		info := readTaskDefinition(taskDefinitionOf(in), in.Tags)
		if info.owned != k || info.hash != "h1" || info.hasHealth != (w.Health.Kind() == "command") {
			t.Fatalf("%s: read back %+v", c.name, info)
		}
		if !p.sameTask(info.spec, w) {
			t.Errorf("%s: read back %+v\nwant      %+v", c.name, info.spec, p.Normalize(providers.Normalize(w)))
		}
	}
	in, _ := p.taskDefinitionInput(k, providers.Desired{Workload: base, SpecHash: "h1"}, nil)
	if hc := in.ContainerDefinitions[0].HealthCheck; hc == nil || strings.Join(hc.Command, " ") != "CMD /app healthcheck" {
		t.Fatalf("health check %+v, want the CMD exec form", hc)
	}
}

// A hand-made revision reads back as what it runs: ECS's health check defaults, a CMD-SHELL check as it is, a
// container memory limit below the task's, the first container when none is called "app".
func TestLiveSpecHandMade(t *testing.T) {
	td := &types.TaskDefinition{Cpu: aws.String("512"), Memory: aws.String("2048"), ContainerDefinitions: []types.ContainerDefinition{{
		Name: aws.String("web"), Image: aws.String("nginx"), Memory: aws.Int32(1024),
		PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}},
		HealthCheck:  &types.HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost"}},
	}}}
	got := liveSpec(td)
	want := schema.Workload{Image: "nginx", Ports: []schema.Port{{Port: 80, Protocol: "tcp"}},
		Resources: schema.Resources{CPUMillis: 500, MemoryBytes: 1 << 30},
		Health: &schema.HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost"}, Interval: schema.Duration(30 * time.Second),
			Timeout: schema.Duration(5 * time.Second), Retries: 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("liveSpec = %+v\nwant      %+v", got, want)
	}
}

// A failure of the credential chain is retried only when an endpoint answered with throttling or a 5xx, or had
// not answered when the attempt's timeout ended.
func TestCredentialsErrorsClassified(t *testing.T) {
	for _, c := range []struct {
		name string
		err  *credentialsError
		want providers.Class
	}{
		{"no source", &credentialsError{err: errors.New("failed to refresh cached credentials, no EC2 IMDS role found")}, providers.Invalid},
		{"attempt timeout", &credentialsError{err: context.DeadlineExceeded, attemptExpired: true}, providers.Transient},
		{"instance metadata timeout", &credentialsError{err: context.DeadlineExceeded}, providers.Invalid},
		{"sts throttled", &credentialsError{err: &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}}, providers.Transient},
		{"sts refused", &credentialsError{err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}}, providers.Invalid},
	} {
		if got := classify(fmt.Errorf("operation error ECS: ListServices, get identity: %w", c.err)); got != c.want {
			t.Errorf("%s: classify = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSecretNamesAndRefs(t *testing.T) {
	k := wkey{"berth", "prod", "aws", "web"}
	if got := smName(k, "db"); got != "berth/berth/prod/web/db" {
		t.Errorf("smName = %q", got)
	}
	if got := smName(wkey{"b", "p", "a", "w.x"}, "db pass/1"); got != "berth/b/p/w-x/db-pass-1" {
		t.Errorf("smName with odd characters = %q", got)
	}
	if long := smName(k, strings.Repeat("s", 600)); len(long) != maxSecretNameLen || long != smName(k, strings.Repeat("s", 600)) {
		t.Errorf("a long name is %d characters or not deterministic", len(long))
	}
	v := smVersion("berth/berth/prod/web/db", "fp1")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(v) || v == smVersion("berth/berth/prod/web/db", "fp2") || v != smVersion("berth/berth/prod/web/db", "fp1") {
		t.Errorf("smVersion %q: not a name-based UUID, or not one per fingerprint", v)
	}
	arn := "arn:aws:secretsmanager:eu-west-1:123456789012:secret:berth/berth/prod/web/db-AbCdEf"
	for from, want := range map[string]string{
		arn + ":::" + v: arn,
		arn:             arn,
		arn + ":key::":  arn,
		"arn:aws:ssm:eu-west-1:123456789012:parameter/x": "",
		"/plain/param": "",
	} {
		if got := secretARN(from); got != want {
			t.Errorf("secretARN(%q) = %q, want %q", from, got, want)
		}
	}
	if !ownedSecret(k, arn+":::"+v) || ownedSecret(wkey{"berth", "prod", "aws", "we"}, arn) ||
		ownedSecret(k, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf") {
		t.Error("ownedSecret tells berth's secrets of a workload wrong")
	}
}

// A container's secrets[] read back: names from berth's label where its valueFrom still matches; a valueFrom
// edited by hand, or a secret added by hand, reads back as the valueFrom itself (a change of that variable).
func TestReadSecrets(t *testing.T) {
	d := providers.Desired{Workload: schema.Workload{Name: "web", SecretEnv: map[string]string{"A": "a", "B": "b"}},
		Secrets: map[string]providers.Secret{"a": {Name: "a", Fingerprint: "fa"}, "b": {Name: "b", Fingerprint: "fb"}}}
	secrets, labels, err := containerSecrets(d, map[string]string{"a": "arn:a", "b": "arn:b"})
	if err != nil {
		t.Fatal(err)
	}
	c := &types.ContainerDefinition{Secrets: secrets, DockerLabels: labels}
	env, fps := readSecrets(c)
	if !reflect.DeepEqual(env, d.Workload.SecretEnv) || !reflect.DeepEqual(fps, map[string]string{"a": "fa", "b": "fb"}) {
		t.Fatalf("read back %v %v", env, fps)
	}
	c.Secrets[1].ValueFrom = aws.String("arn:by-hand")
	c.Secrets = append(c.Secrets, types.Secret{Name: aws.String("C"), ValueFrom: aws.String("arn:c")})
	env, fps = readSecrets(c)
	if want := map[string]string{"A": "a", "B": "arn:by-hand", "C": "arn:c"}; !reflect.DeepEqual(env, want) ||
		!reflect.DeepEqual(fps, map[string]string{"a": "fa"}) {
		t.Errorf("after hand edits: %v %v", env, fps)
	}
	if _, _, err := containerSecrets(d, map[string]string{"a": "arn:a"}); !errors.Is(err, providers.ErrPermanent) {
		t.Errorf("an unresolved secret: %v", err)
	}
}
