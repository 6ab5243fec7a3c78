package gcp

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/compute/apiv1/computepb"
	"cloud.google.com/go/compute/metadata"
	"google.golang.org/api/googleapi"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

var (
	gceName  = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	labelKey = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelVal = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
)

func TestNames(t *testing.T) {
	long := strings.Repeat("w", 80)
	for _, c := range []struct {
		owner    providers.Owner
		workload string
		want     string // "" when truncated
	}{
		{providers.Owner{Instance: "prod1", Environment: "dev"}, "web", "berth-prod1-dev-web"},
		{providers.Owner{Instance: "Prod_1", Environment: "Staging.EU"}, "api_v2", "berth-prod-1-staging-eu-api-v2"},
		{providers.Owner{Instance: "i", Environment: "e"}, long, ""},
		{providers.Owner{Instance: "i", Environment: "e"}, long + "x", ""},
	} {
		g := GroupName(c.owner, c.workload)
		tn := TemplateName(c.owner, c.workload, "0123456789ab")
		if c.want != "" && g != c.want {
			t.Errorf("GroupName(%v, %q) = %q, want %q", c.owner, c.workload, g, c.want)
		}
		if len(g) > maxBase || !gceName.MatchString(g) {
			t.Errorf("GroupName(%v, %q) = %q: not a valid base name (≤%d)", c.owner, c.workload, g, maxBase)
		}
		if len(tn) > 63 || !gceName.MatchString(tn) || !strings.HasPrefix(tn, g+"-") {
			t.Errorf("TemplateName = %q: invalid or not prefixed by %q", tn, g)
		}
	}
	a := GroupName(providers.Owner{Instance: "i", Environment: "e"}, long)
	b := GroupName(providers.Owner{Instance: "i", Environment: "e"}, long+"x")
	if a == b {
		t.Errorf("truncated names collide: %q", a)
	}
}

func TestLabels(t *testing.T) {
	d := providers.Desired{Owner: providers.Owner{Instance: "Berth.Main", Environment: "dev"}, Target: "gce-EU",
		Workload: schema.Workload{Name: strings.Repeat("Long.Name/", 10)}, SpecHash: "abc123"}
	ls := labels(d)
	want := map[string]string{"berth-instance": "berth_main", "berth-environment": "dev", "berth-target": "gce-eu", "berth-spec-hash": "abc123"}
	for k, v := range want {
		if ls[k] != v {
			t.Errorf("label %s = %q, want %q", k, ls[k], v)
		}
	}
	for k, v := range ls {
		if !labelKey.MatchString(k) || !labelVal.MatchString(v) {
			t.Errorf("label %q=%q breaks GCP's label rules", k, v)
		}
	}
	if got := LabelKey(providers.LabelInstance); got != "berth-instance" {
		t.Errorf("LabelKey = %q", got)
	}
}

func TestMarker(t *testing.T) {
	m := marker{Instance: "a;b", Env: "x=y", Workload: "w 1", Target: "t%", Spec: "0123"}
	got, ok := parseMarker(m.String())
	if !ok || got != m {
		t.Fatalf("round trip of %+v: %+v, %t (%q)", m, got, ok, m.String())
	}
	for _, bad := range []string{"", "created by hand", "berth: instance=a", "berth: instance=; env=e; workload=w; target=t; spec=s"} {
		if _, ok := parseMarker(bad); ok {
			t.Errorf("parseMarker(%q) accepted", bad)
		}
	}
	owner := providers.Owner{Instance: "a;b", Environment: "x=y"}
	if !got.owns(owner, "t%", "w 1") || got.owns(owner, "t%", "other") || got.owns(providers.Owner{Instance: "a", Environment: "x=y"}, "t%", "") {
		t.Error("owns answers wrongly")
	}
}

func TestRequestID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: schema.Workload{Name: "w"}, SpecHash: "h"}
	a, b := requestID(d, "resize", "3", "fp1"), requestID(d, "resize", "3", "fp1")
	if a != b || !uuid.MatchString(a) {
		t.Fatalf("requestID not a stable UUID: %q, %q", a, b)
	}
	for _, other := range []string{requestID(d, "resize", "3", "fp2"), requestID(d, "resize", "2", "fp1"), requestID(d, "patch", "3", "fp1")} {
		if other == a {
			t.Errorf("different changes share the requestId %s", a)
		}
	}
}

func TestContainerDeclaration(t *testing.T) {
	w := schema.Workload{Name: "Web_App", Image: "ghcr.io/x/app:1", Command: []string{"/app"}, Args: []string{"serve", "--greeting=\"hi\""},
		Env: map[string]string{"B": "two words", "A": "1"}}
	want := `spec:
  containers:
  - name: "web-app"
    image: "ghcr.io/x/app:1"
    command: ["/app"]
    args: ["serve", "--greeting=\"hi\""]
    env:
    - name: "A"
      value: "1"
    - name: "B"
      value: "two words"
    stdin: false
    tty: false
  restartPolicy: Always
`
	if got := ContainerDeclaration(w); got != want {
		t.Errorf("ContainerDeclaration:\n%s\nwant:\n%s", got, want)
	}
}

func TestValidate(t *testing.T) {
	p := &Provider{settings: Settings{MachineType: "e2-small"}}
	auto := &Provider{}
	base := schema.Workload{Name: "w", Image: "i", Replicas: 1, Ports: []schema.Port{{Port: 53, Protocol: "udp"}}}
	for _, c := range []struct {
		name   string
		mod    func(w *schema.Workload)
		fields []string
	}{
		{"plain", func(*schema.Workload) {}, nil},
		{"http health", func(w *schema.Workload) { w.Health = &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/", Port: 80}} }, nil},
		{"command health", func(w *schema.Workload) { w.Health = &schema.HealthCheck{Command: []string{"true"}} }, []string{"health.command"}},
		{"health bounds", func(w *schema.Workload) {
			w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}, Interval: schema.Duration(10 * time.Minute),
				Timeout: schema.Duration(11 * time.Minute), Retries: 11, StartPeriod: schema.Duration(2 * time.Hour)}
		}, []string{"health.interval", "health.timeout", "health.retries", "health.startPeriod"}},
		{"public port", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 80, Protocol: "tcp", Public: true, HostPort: 80}}
		}, nil},
		{"public udp without a health check", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 53, Protocol: "udp", Public: true}}
		}, []string{"ports[0].public"}},
		{"public udp with a tcp check", func(w *schema.Workload) {
			w.Ports = []schema.Port{{Port: 53, Protocol: "udp", Public: true}}
			w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8053}}
		}, nil},
		{"host port remap", func(w *schema.Workload) { w.Ports = []schema.Port{{Port: 80, Protocol: "tcp", HostPort: 8080}} }, []string{"ports[0].hostPort"}},
		{"fits", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20} }, nil},
		{"too big", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30} }, []string{"resources.cpu", "resources.memory"}},
		{"too many", func(w *schema.Workload) { w.Replicas = 1001 }, []string{"replicas"}},
		{"auto: big", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30} }, nil},
		{"auto: no E2 fits", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 4000, MemoryBytes: 200 << 30} }, []string{"resources.memory"}},
		{"auto: too many vCPU", func(w *schema.Workload) { w.Resources = schema.Resources{CPUMillis: 64000} }, []string{"resources.cpu"}},
	} {
		w := base
		c.mod(&w)
		var got []string
		v := p
		if strings.HasPrefix(c.name, "auto") {
			v = auto
		}
		for _, pr := range v.Validate(w) {
			got = append(got, pr.Field)
			if pr.Message == "" {
				t.Errorf("%s: problem %s without a message", c.name, pr.Field)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.fields) {
			t.Errorf("%s: problems at %v, want %v", c.name, got, c.fields)
		}
	}
}

func TestRetryable(t *testing.T) {
	api := func(code int, reason string) error {
		return fmt.Errorf("wrapped: %w", &googleapi.Error{Code: code, Errors: []googleapi.ErrorItem{{Reason: reason}}})
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{api(http.StatusTooManyRequests, "rateLimitExceeded"), true},
		{api(http.StatusForbidden, "rateLimitExceeded"), true},
		{api(http.StatusForbidden, "quotaExceeded"), true},
		{api(http.StatusForbidden, "forbidden"), false},
		{api(http.StatusServiceUnavailable, "backendError"), true},
		{api(http.StatusInternalServerError, "internalError"), true},
		{api(http.StatusConflict, "conflict"), true},
		{api(http.StatusConflict, "alreadyExists"), false},
		{api(http.StatusBadRequest, "resourceNotReady"), true},
		{api(http.StatusBadRequest, "invalid"), false},
		{api(http.StatusUnauthorized, "authError"), false},
		{errors.New("connection reset by peer"), true},
		{fmt.Errorf("get: %w", &auth.Error{Response: &http.Response{StatusCode: 400}, Err: errors.New("invalid_grant")}), false},
		{fmt.Errorf("get: %w", &auth.Error{Response: &http.Response{StatusCode: 503}, Err: errors.New("unavailable")}), true},
		// the metadata server of a VM without a service account, and its other answers
		{fmt.Errorf("credentials: cannot fetch token: %w", metadata.NotDefinedError("instance/service-accounts/default/token")), false},
		{fmt.Errorf("credentials: cannot fetch token: %w", &metadata.Error{Code: 403, Message: "scope"}), false},
		{fmt.Errorf("credentials: cannot fetch token: %w", &metadata.Error{Code: 503, Message: "busy"}), true},
	} {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

func TestReasonOf(t *testing.T) {
	for in, want := range map[string]string{"RESOURCE_ALREADY_EXISTS": "alreadyExists", "ALREADY_EXISTS": "alreadyExists",
		"RESOURCE_NOT_READY": "resourceNotReady", "QUOTA_EXCEEDED": "quotaExceeded"} {
		if got := reasonOf(in); got != want {
			t.Errorf("reasonOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSettings(t *testing.T) {
	tg := func(s map[string]any) schema.Target {
		return schema.Target{Name: "gce", Type: "gcp", Settings: s, Pos: schema.Pos{File: "berth.cue", Line: 3, Column: 2}}
	}
	s, err := ParseSettings(tg(map[string]any{"project": "p", "region": "r"}))
	if err != nil || s.MachineType != "" {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"region": "r"}, `setting "project" is required`},
		{map[string]any{"project": "p", "region": 3}, `setting "region" must be a non-empty string`},
		{map[string]any{"project": "p", "region": "r", "machineType": ""}, `"machineType"`},
	} {
		_, err := ParseSettings(tg(c.settings))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "berth.cue:3:2") {
			t.Errorf("ParseSettings(%v) = %v, want an error with %q and the position", c.settings, err, c.want)
		}
	}
}

func TestParseSettingsZones(t *testing.T) {
	tg := func(zones any) schema.Target {
		return schema.Target{Name: "gce", Type: "gcp", Settings: map[string]any{"project": "p", "region": "europe-west1", "zones": zones}}
	}
	s, err := ParseSettings(tg([]any{"europe-west1-b", "europe-west1-d"}))
	if err != nil || strings.Join(s.Zones, ",") != "europe-west1-b,europe-west1-d" {
		t.Fatalf("zones: %+v, %v", s, err)
	}
	for _, bad := range []any{[]any{"us-east1-b"}, []any{"europe-west1-"}, []any{3}, "europe-west1-b"} {
		if _, err := ParseSettings(tg(bad)); err == nil || !strings.Contains(err.Error(), `"zones"`) {
			t.Errorf("zones %v: %v, want an error naming the setting", bad, err)
		}
	}
}

// TestUpdatePolicyFitsZones: the fixed maxSurge berth sends is the group's zone count (at least 1), never a
// constant, with maxUnavailable 0; and the zones are explicit.
func TestUpdatePolicyFitsZones(t *testing.T) {
	p := &Provider{project: "p", machineType: "e2-small"}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: schema.Workload{Name: "w", Replicas: 2}, SpecHash: "h"}
	for _, zones := range [][]string{nil, {"r-b"}, {"r-b", "r-c"}, {"r-b", "r-c", "r-d", "r-e"}} {
		g := p.groupManager(d, "projects/p/global/instanceTemplates/x", zones)
		up := g.GetUpdatePolicy()
		if up.GetMaxSurge().GetFixed() != int32(max(1, len(zones))) || up.GetMaxUnavailable().GetFixed() != 0 || up.MaxUnavailable.Fixed == nil {
			t.Errorf("%d zones: maxSurge %v, maxUnavailable %v", len(zones), up.GetMaxSurge(), up.GetMaxUnavailable())
		}
		if len(g.GetDistributionPolicy().GetZones()) != len(zones) {
			t.Errorf("%d zones: distribution %v", len(zones), g.GetDistributionPolicy())
		}
		if up.GetType() != "PROACTIVE" || up.GetMinimalAction() != "REPLACE" || up.GetReplacementMethod() != "SUBSTITUTE" {
			t.Errorf("policy %v", up)
		}
	}
}

// TestContainerOf reads back declarations as other tools write them (gcloud create-with-container's plain YAML).
func TestContainerOf(t *testing.T) {
	gcloud := `spec:
  containers:
  - args:
    - serve
    - --port=8080
    command:
    - /app
    env:
    - name: GREETING
      value: hello world
    - name: EMPTY
      value: ''
    - name: PORT
      value: 8080
    image: gcr.io/p/app:2
    name: app
    securityContext:
      privileged: false
    stdin: false
    tty: false
  restartPolicy: OnFailure
# DISCLAIMER: a comment gcloud adds
`
	tp := &computepb.InstanceTemplate{Properties: &computepb.InstanceProperties{Metadata: &computepb.Metadata{Items: []*computepb.Items{
		{Key: proto.String(metaContainer), Value: proto.String(gcloud)}}}}}
	c, ok := containerOf(tp)
	if !ok || c.Image != "gcr.io/p/app:2" || strings.Join(strs(c.Command), " ") != "/app" || strings.Join(strs(c.Args), " ") != "serve --port=8080" ||
		len(c.Env) != 3 || c.Env[0].Value != "hello world" || c.Env[1].Name != "EMPTY" || c.Env[2].Value != "8080" {
		t.Fatalf("containerOf = %+v, %t", c, ok)
	}
	w := schema.Workload{Name: "web", Image: "i:1", Command: []string{"a b"}, Args: []string{`"q"`}, Env: map[string]string{"K": "v: w"}}
	tp.Properties.Metadata.Items[0].Value = proto.String(ContainerDeclaration(w))
	if c, ok := containerOf(tp); !ok || c.Image != "i:1" || c.Command[0] != "a b" || c.Args[0] != `"q"` || c.Env[0].Value != "v: w" {
		t.Fatalf("round trip of berth's own declaration: %+v", c)
	}
	tp.Properties.Metadata.Items[0].Value = proto.String("spec:\n  containers:\n  - image: i\n    args: [1, true, 2.5]\n")
	if c, ok := containerOf(tp); !ok || strings.Join(strs(c.Args), ",") != "1,true,2.5" {
		t.Fatalf("unquoted scalars: %+v", c)
	}
}

func TestNormalize(t *testing.T) {
	p := &Provider{}
	w := p.Normalize(schema.Workload{Name: "w", Resources: schema.Resources{CPUMillis: 250},
		Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}},
		Ports:  []schema.Port{{Name: "http", Port: 80, Protocol: "tcp", Public: true}, {Port: 53, Protocol: "udp"}}})
	if h := w.Health; h == nil || h.TCP.Port != 80 || h.Interval != schema.Duration(5*time.Second) || h.Timeout != schema.Duration(5*time.Second) || h.Retries != 2 {
		t.Errorf("health in Compute Engine's form: %+v", w.Health)
	}
	if w.Resources != (schema.Resources{CPUMillis: 250, MemoryBytes: 1 << 30}) {
		t.Errorf("resources are e2-micro's: %+v", w.Resources)
	}
	if w.Ports[0] != (schema.Port{Port: 80, Protocol: "tcp", Public: true, HostPort: 80}) || w.Ports[1] != (schema.Port{Port: 53, Protocol: "udp"}) {
		t.Errorf("ports %+v: names dropped, public ones with their host port", w.Ports)
	}
	if w := (&Provider{machineType: "n2-standard-4"}).Normalize(schema.Workload{}); w.Resources != (schema.Resources{CPUMillis: 4000, MemoryBytes: 16 << 30}) {
		t.Errorf("resources of the target's machine type: %+v", w.Resources)
	}
}

// TestLongestNames: the longest names there are (a 40-character workload in preview pr-2147483647) are cut with a
// hash within GCE's limits (63 for groups and templates, 58 for base instance names), deterministically, and
// distinct from the base's; names that fit are what they always were.
func TestLongestNames(t *testing.T) {
	w := "cf-" + strings.Repeat("l", 36) + "x"
	pr := providers.Owner{Instance: "conformance", Environment: "pr-2147483647", Preview: 2147483647}
	g := GroupName(pr, w)
	if len(g) > 58 || !gceName.MatchString(g) || g != GroupName(pr, w) {
		t.Errorf("GroupName = %q (%d): not a valid base instance name", g, len(g))
	}
	if tn := TemplateName(pr, w, "0123456789ab"); len(tn) > 63 || !gceName.MatchString(tn) {
		t.Errorf("TemplateName = %q (%d)", tn, len(tn))
	}
	if b := GroupName(providers.Owner{Instance: "conformance", Environment: "dev"}, w); b == g {
		t.Errorf("the preview's group name is the base's: %q", g)
	}
	if got := GroupName(providers.Owner{Instance: "main", Environment: "pr-42", Preview: 42}, "web"); got != "berth-main-pr-42-web" {
		t.Errorf("a preview name that fits is %q", got)
	}
	if got := GroupName(providers.Owner{Instance: "main", Environment: "prod"}, "web"); got != "berth-main-prod-web" {
		t.Errorf("an existing name changed: %q", got)
	}
}

func TestPreviewLabelsAndMarker(t *testing.T) {
	head := strings.Repeat("ab", 20)
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "pr-2147483647", Preview: 2147483647}, Target: "t",
		Workload: schema.Workload{Name: "w"}, SpecHash: "h", Preview: &schema.Preview{Number: 2147483647, Head: head}}
	ls := labels(d)
	if ls["berth-preview"] != "2147483647" || ls["berth-head"] != head {
		t.Errorf("preview labels %v", ls)
	}
	for k, v := range ls {
		if !labelKey.MatchString(k) || !labelVal.MatchString(v) {
			t.Errorf("label %q=%q breaks GCP's label rules", k, v)
		}
	}
	m := markerOf(d)
	got, ok := parseMarker(m.String())
	if !ok || got != m {
		t.Fatalf("round trip of %+v: %+v, %t (%q)", m, got, ok, m.String())
	}
	base := d
	base.Owner, base.Preview = providers.Owner{Instance: "i", Environment: "dev"}, nil
	if _, ok := labels(base)["berth-preview"]; ok || strings.Contains(markerOf(base).String(), "preview") {
		t.Errorf("a base workload carries preview labels: %v %q", labels(base), markerOf(base).String())
	}
	if requestID(d, "insert") == requestID(providers.Desired{Owner: d.Owner, Target: "t", Workload: d.Workload, SpecHash: "h",
		Preview: &schema.Preview{Number: 2147483647, Head: strings.Repeat("cd", 20)}}, "insert") {
		t.Error("another head reuses the requestId")
	}
	for _, desc := range []string{
		"berth: instance=i; env=e; workload=w; target=t; spec=s; preview=x",
		"berth: instance=i; env=e; workload=w; target=t; spec=s; preview=-4",
		"berth: instance=i; env=e; workload=w; target=t; spec=s",
	} {
		if m, ok := parseMarker(desc); !ok || m.Preview != 0 {
			t.Errorf("parseMarker(%q) = %+v, %t: want preview 0", desc, m, ok)
		}
	}
}

// TestPickMachineType: the smallest E2 type that fits, by the documented rule.
func TestPickMachineType(t *testing.T) {
	const mi = 1 << 20
	for _, c := range []struct {
		cpu, mem int64
		want     string
	}{
		{0, 0, "e2-small"},
		{250, 64 * mi, "e2-micro"}, // the quickstart web workload
		{250, 1024 * mi, "e2-micro"},
		{251, 64 * mi, "e2-small"},
		{100, 1025 * mi, "e2-small"},
		{1000, 4096 * mi, "e2-medium"},
		{1001, 0, "e2-custom-2-1024"},
		{2000, 2048 * mi, "e2-highcpu-2"},
		{2000, 8192 * mi, "e2-standard-2"},
		{2000, 3 << 30, "e2-custom-2-3072"},
		{1500, 3000 * mi, "e2-custom-2-3072"}, // 256 MiB steps
		{3000, 0, "e2-custom-4-2048"},         // even vCPU, 0.5 GiB per vCPU at least
		{500, 20 << 30, "e2-custom-4-20480"},  // 8 GiB per vCPU at most: more vCPU
		{4000, 32 << 30, "e2-highmem-4"},
		{32000, 128 << 30, "e2-standard-32"},
		{16000, 128 << 30, "e2-highmem-16"},
	} {
		got, err := pickMachineType(schema.Resources{CPUMillis: c.cpu, MemoryBytes: c.mem})
		if err != nil || got != c.want {
			t.Errorf("%dm %d MiB: %q, %v; want %s", c.cpu, c.mem/mi, got, err, c.want)
		}
		if err == nil {
			s, ok := machineSizeOf(got)
			if !ok || s.cpu < c.cpu || s.mem<<20 < c.mem {
				t.Errorf("%s (%v, %t) does not hold %dm %d MiB", got, s, ok, c.cpu, c.mem/mi)
			}
		}
	}
	for _, r := range []schema.Resources{{CPUMillis: 33000}, {MemoryBytes: 129 << 30}} {
		if mt, err := pickMachineType(r); err == nil {
			t.Errorf("%+v: %s, want an error", r, mt)
		}
	}
}

// TestMachineTypeSetting: a machineType setting wins and must hold the resources; a type of unknown size is not
// checked.
func TestMachineTypeSetting(t *testing.T) {
	w := schema.Workload{Resources: schema.Resources{CPUMillis: 2000, MemoryBytes: 3 << 30}}
	if mt, probs := machineTypeFor("e2-standard-2", w); mt != "e2-standard-2" || len(probs) != 0 {
		t.Errorf("fits: %s %v", mt, probs)
	}
	mt, probs := machineTypeFor("e2-micro", w)
	if mt != "e2-micro" || len(probs) != 2 || probs[0].field != "resources.cpu" || probs[1].field != "resources.memory" ||
		!strings.Contains(probs[0].message, "e2-micro") || !strings.Contains(probs[1].message, "e2-micro") {
		t.Errorf("too small: %s %+v", mt, probs)
	}
	if _, probs := machineTypeFor("n2-custom-4-6144", w); len(probs) != 0 {
		t.Errorf("custom type that fits: %+v", probs)
	}
	if _, probs := machineTypeFor("custom-1-1024", w); len(probs) != 2 {
		t.Errorf("custom type too small: %+v", probs)
	}
	if _, probs := machineTypeFor("a3-megagpu-8g", w); len(probs) != 0 {
		t.Errorf("unknown type: %+v", probs)
	}
}

// TestHealthMapping: a workload health check as a Compute Engine health check, and back in Normalize's form.
func TestHealthMapping(t *testing.T) {
	w := schema.Workload{Health: &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080},
		Interval: schema.Duration(2500 * time.Millisecond), Timeout: schema.Duration(10 * time.Second), Retries: 3,
		StartPeriod: schema.Duration(30 * time.Second)}}
	hc := healthCheck(w, "hc", "desc")
	if hc.GetType() != "HTTP" || hc.GetHttpHealthCheck().GetRequestPath() != "/healthz" || hc.GetHttpHealthCheck().GetPort() != 8080 ||
		hc.GetCheckIntervalSec() != 3 || hc.GetTimeoutSec() != 3 || hc.GetUnhealthyThreshold() != 3 {
		t.Errorf("health check: %v", hc)
	}
	n := normalHealth(w)
	if n.HTTP.Path != "/healthz" || n.Interval != schema.Duration(3*time.Second) || n.Timeout != schema.Duration(3*time.Second) ||
		n.Retries != 3 || n.StartPeriod != schema.Duration(30*time.Second) {
		t.Errorf("normal form: %+v", n)
	}
	tcp := healthCheck(schema.Workload{Health: &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 5432}}}, "hc", "")
	if tcp.GetType() != "TCP" || tcp.GetTcpHealthCheck().GetPort() != 5432 || tcp.GetCheckIntervalSec() != 5 || tcp.GetUnhealthyThreshold() != 2 {
		t.Errorf("tcp: %v", tcp)
	}
	if healthCheck(schema.Workload{Health: &schema.HealthCheck{Command: []string{"true"}}}, "hc", "") != nil {
		t.Error("a command check maps to a health check")
	}
}
