package kubernetes

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/berth-dev/berth/providers"
	bschema "github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func refWorkload() bschema.Workload {
	return bschema.Workload{
		Name: "web", Image: "registry.example/berth-app:1", Args: []string{"serve"},
		Env:      map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:    []bschema.Port{{Name: "http", Port: 8080, Protocol: "tcp", Public: true, HostPort: 80}, {Port: 9090, Protocol: "udp"}},
		Replicas: 2, Resources: bschema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20},
		Health: &bschema.HealthCheck{HTTP: &bschema.HTTPCheck{Path: "/healthz", Port: 8080},
			Interval: bschema.Duration(5 * time.Second), Timeout: bschema.Duration(1500 * time.Millisecond), Retries: 3,
			StartPeriod: bschema.Duration(10 * time.Second)},
	}
}

// TestGoldenObjects pins the apply configurations of the reference workload (go test -update rewrites).
func TestGoldenObjects(t *testing.T) {
	w := refWorkload()
	d := providers.Desired{Owner: providers.Owner{Instance: "prod-1", Environment: "dev"}, Target: "k8s", Workload: w,
		SpecHash: providers.SpecHash(w)}
	p, err := NewWithClient(nil, bschema.Target{Name: "k8s", Type: Type}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns, name := p.namespace(d.Owner), p.objectName(d.Owner, w.Name)
	dep, err := deployment(d, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	internal, public := services(d, ns, name)
	got, err := json.MarshalIndent(map[string]any{"deployment": dep, "service": internal, "publicService": public}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "reference.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("objects differ from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestLiveRoundTrip reads the apply configurations back (as objects without managed fields, so with
// takeOwnership every value counts) and gets the normalised workload; a changed image reads back changed.
func TestLiveRoundTrip(t *testing.T) {
	w := refWorkload()
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "dev"}, Target: "k8s", Workload: w,
		SpecHash: providers.SpecHash(w)}
	p, err := NewWithClient(nil, bschema.Target{Name: "k8s", Type: Type, Settings: map[string]any{"takeOwnership": true}}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := deployment(d, "berth-dev", "web")
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	roundTrip(t, ac, &dep)
	ia, pa := services(d, "berth-dev", "web")
	var internal, public corev1.Service
	roundTrip(t, ia, &internal)
	roundTrip(t, pa, &public)
	st := p.live(workloadObjects{dep: &dep, internal: &internal, public: &public})
	got := providers.Normalize(st.spec)
	want := providers.Normalize(p.Normalize(providers.Normalize(w)))
	if !jsonEqual(got, want) || len(st.missing) != 0 || len(st.kept) != 0 {
		t.Errorf("read back\n%+v\nwant\n%+v\n(missing %v, kept %v)", got, want, st.missing, st.kept)
	}
	if st := p.live(workloadObjects{dep: &dep, internal: &internal}); len(st.missing) != 1 || st.missing[0] != "Service web-public" {
		t.Errorf("without the public Service: missing %v", st.missing)
	}
	dep.Spec.Template.Spec.Containers[0].Image = "registry.example/drifted:0"
	if got := p.live(workloadObjects{dep: &dep}); got.spec.Image != "registry.example/drifted:0" {
		t.Errorf("out-of-band image not read back: %q", got.spec.Image)
	}
}

func roundTrip(t *testing.T, from, to any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err == nil {
		err = json.Unmarshal(b, to)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestRolloutState(t *testing.T) {
	three := int32(3)
	base := func(mut func(*appsv1.Deployment)) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 2},
			Spec: appsv1.DeploymentSpec{Replicas: &three},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3,
				AvailableReplicas: 3, Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}}
		if mut != nil {
			mut(d)
		}
		return d
	}
	for _, c := range []struct {
		name      string
		d         *appsv1.Deployment
		done      bool
		why       string
		permanent bool
	}{
		{"complete", base(nil), true, "", false},
		{"generation not observed", base(func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 1 }), false, "not yet observed", false},
		{"updating", base(func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 }), false, "1 of 3 replicas updated", false},
		{"old replicas left", base(func(d *appsv1.Deployment) { d.Status.Replicas = 4 }), false, "1 old replicas", false},
		{"not ready", base(func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 2 }), false, "2 of 3 replicas ready", false},
		{"not available", base(func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 2 }), false, "2 of 3 replicas available", false},
		{"available false", base(func(d *appsv1.Deployment) { d.Status.Conditions[0].Status = corev1.ConditionFalse }), false, "Available is False", false},
		{"deadline exceeded", base(func(d *appsv1.Deployment) {
			d.Status.Conditions[1] = appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded"}
		}), false, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			done, why, err := RolloutState(c.d)
			if done != c.done || !strings.Contains(why, c.why) || (err != nil) != c.permanent {
				t.Fatalf("RolloutState = %t, %q, %v; want %t, %q, error %t", done, why, err, c.done, c.why, c.permanent)
			}
			if err != nil && !errors.Is(err, providers.ErrPermanent) {
				t.Errorf("failed rollout not permanent: %v", err)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewConflict(gr, "web", errors.New("changed")), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New("boom")), true},
		{apierrors.NewServiceUnavailable("down"), true},
		{apierrors.NewServerTimeout(gr, "create", 1), true},
		{apierrors.NewTimeoutError("slow", 1), true},
		{errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), true},
		{apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", nil), false},
		{apierrors.NewBadRequest("bad"), false},
		{apierrors.NewForbidden(gr, "web", errors.New("rbac")), false},
		{apierrors.NewUnauthorized("who"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	p := &Provider{}
	ok := refWorkload()
	if probs := p.Validate(ok); len(probs) != 0 {
		t.Fatalf("reference workload: %v", probs)
	}
	bad := refWorkload()
	bad.Name = "Web_1"
	bad.Ports = append(bad.Ports, bschema.Port{Name: "a-very-long-port-name", Port: 81, Protocol: "tcp", Public: true, HostPort: 80})
	bad.Env = map[string]string{"1BAD=": "x"}
	var fields []string
	for _, pr := range p.Validate(bad) {
		fields = append(fields, pr.Field)
	}
	want := "name ports[2].name ports[2].hostPort env.1BAD="
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("problems at %q, want %q", got, want)
	}
}

func TestObjectName(t *testing.T) {
	def := &Provider{}
	shared := &Provider{set: settings{namespace: "apps"}}
	long := strings.Repeat("w", 40)
	for _, c := range []struct {
		p       *Provider
		env, w  string
		want    string
		wantLen int
	}{
		{def, "dev", "web", "web", 3},
		{shared, "dev", "web", "dev-web", 7},
		{shared, strings.Repeat("e", 40), long, "", maxNameLen},
	} {
		got := c.p.objectName(providers.Owner{Environment: c.env}, c.w)
		if (c.want != "" && got != c.want) || len(got) != c.wantLen || dnsLabel(got+PublicSuffix) != "" {
			t.Errorf("objectName(%q, %q) = %q", c.env, c.w, got)
		}
		if got != c.p.objectName(providers.Owner{Environment: c.env}, c.w) {
			t.Errorf("objectName not deterministic")
		}
	}
}

func TestParseSettings(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		err      string
	}{
		{map[string]any{"kubeconfig": "/k", "context": "c", "namespace": "apps", "allowExecPlugins": true}, ""},
		{map[string]any{"namespace": "Apps"}, "settings.namespace: not a DNS label"},
		{map[string]any{"kubeconfig": 3}, "settings.kubeconfig: want a non-empty string"},
		{map[string]any{"allowExecPlugins": "yes"}, "settings.allowExecPlugins: want a bool"},
		{map[string]any{"bogus": 1}, "settings.bogus: unknown setting"},
	} {
		tg := bschema.Target{Name: "k", Type: Type, Settings: c.settings, Pos: bschema.Pos{File: "berth.cue", Line: 3, Column: 2}}
		_, err := parseSettings(tg)
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseSettings(%v) = %v, want %q", c.settings, err, c.err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "berth.cue:3:2: ") {
			t.Errorf("error does not name the place: %v", err)
		}
	}
}

// TestExecPluginRefused checks that a kubeconfig whose user runs a credential plugin is refused unless the target
// allows it, and that the refusal names neither token nor plugin arguments.
func TestExecPluginRefused(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: plugin-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /usr/bin/get-token
      args: ["--secret", "s3cr3t"]
      interactiveMode: Never
contexts:
- name: ctx
  context: {cluster: c, user: plugin-user}
current-context: ctx
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := bschema.Target{Name: "k", Type: Type, Settings: map[string]any{"kubeconfig": path}}
	_, err := New(tg, providers.Options{})
	if !errors.Is(err, ErrExecPlugin) {
		t.Fatalf("New with an exec plugin = %v, want ErrExecPlugin", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error shows the plugin's arguments: %v", err)
	}
	tg.Settings["allowExecPlugins"] = true
	if _, err := New(tg, providers.Options{}); err != nil {
		t.Fatalf("New with allowExecPlugins: %v", err)
	}
	tg.Settings["context"] = "missing"
	if _, err := New(tg, providers.Options{}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("context %q", "missing")) {
		t.Fatalf("New with a missing context = %v", err)
	}
}

// TestPickChanged checks which of two places berth writes alike is read when they differ: the one berth's apply
// no longer holds (changed by hand).
func TestPickChanged(t *testing.T) {
	q := resource.MustParse
	var mine fieldSet
	if err := json.Unmarshal([]byte(`{"f:resources":{"f:limits":{"f:cpu":{}},"f:requests":{"f:cpu":{}}},
		"f:readinessProbe":{"f:periodSeconds":{},"f:timeoutSeconds":{},"f:failureThreshold":{},"f:httpGet":{"f:path":{},"f:port":{}}},
		"f:livenessProbe":{"f:periodSeconds":{},"f:timeoutSeconds":{},"f:failureThreshold":{},"f:httpGet":{"f:path":{},"f:port":{}}}}`), &mine); err != nil {
		t.Fatal(err)
	}
	without := func(path ...string) fieldSet {
		b, _ := json.Marshal(mine)
		var c fieldSet
		_ = json.Unmarshal(b, &c)
		parent, _ := c.at(path[:len(path)-1]...)
		delete(parent, path[len(path)-1])
		return c
	}
	res := func(l, r string) corev1.ResourceRequirements {
		out := corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
		if l != "" {
			out.Limits[corev1.ResourceCPU] = q(l)
		}
		if r != "" {
			out.Requests[corev1.ResourceCPU] = q(r)
		}
		return out
	}
	for _, c := range []struct {
		name string
		live corev1.ResourceRequirements
		mine fieldSet
		want int64
	}{
		{"both berth's", res("250m", "250m"), mine, 250},
		{"request changed", res("250m", "100m"), without("f:resources", "f:requests", "f:cpu"), 100},
		{"limit changed", res("500m", "250m"), without("f:resources", "f:limits", "f:cpu"), 500},
		{"limit removed", res("", "250m"), without("f:resources", "f:limits", "f:cpu"), 0},
		{"limit added by hand", res("1", ""), nil, 1000},
	} {
		got, _ := pickQuantity(c.live, c.mine, corev1.ResourceCPU)
		if got.MilliValue() != c.want {
			t.Errorf("%s: read %d millis, want %d", c.name, got.MilliValue(), c.want)
		}
	}
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(8080)}},
			PeriodSeconds: period, TimeoutSeconds: 2, FailureThreshold: 3}
	}
	for _, c := range []struct {
		name       string
		ready, liv *corev1.Probe
		mine       fieldSet
		want       string // the path read, "" for no health check
	}{
		{"alike", probe("/healthz", 5), probe("/healthz", 5), mine, "/healthz"},
		{"liveness changed", probe("/healthz", 5), probe("/edited", 5), without("f:livenessProbe", "f:httpGet", "f:path"), "/edited"},
		{"readiness changed", probe("/edited", 5), probe("/healthz", 5), without("f:readinessProbe", "f:httpGet", "f:path"), "/edited"},
		{"readiness removed", nil, probe("/healthz", 5), without("f:readinessProbe"), ""},
	} {
		h := pickHealth(&corev1.Container{ReadinessProbe: c.ready, LivenessProbe: c.liv}, c.mine)
		got := ""
		if h != nil {
			got = h.HTTP.Path
		}
		if got != c.want {
			t.Errorf("%s: read path %q, want %q", c.name, got, c.want)
		}
	}
}
