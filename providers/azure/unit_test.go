package azure

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/azure/azcred"
	"github.com/berth-dev/berth/schema"
)

func TestGroupName(t *testing.T) {
	long := strings.Repeat("very-long-workload-name", 4)
	for _, c := range []struct{ inst, env, wl, want string }{
		{"prod1", "dev", "web", "berth-prod1-dev-web-0-abcdef"},
		{"Prod_1", "DEV", "my..web", "berth-prod-1-dev-my-web-0-abcdef"},
	} {
		if got := GroupName(c.inst, c.env, c.wl, 0, "abcdef123456"); got != c.want {
			t.Errorf("GroupName(%q,%q,%q) = %q, want %q", c.inst, c.env, c.wl, got, c.want)
		}
	}
	a, b := GroupName("i", "e", long+"a", 3, "abcdef123456"), GroupName("i", "e", long+"b", 3, "abcdef123456")
	if len(a) > 63 || !strings.HasSuffix(a, "-3-abcdef") || a == b || strings.Contains(a, "--") {
		t.Errorf("long names: %q and %q (want distinct, <= 63, ending -3-abcdef, no double dash)", a, b)
	}
}

func TestTags(t *testing.T) {
	if TagInstance != "berth.dev-instance" || TagSpecHash != "berth.dev-spec-hash" || TagReplica != "berth.dev-replica" {
		t.Errorf("tag mapping: %s %s %s", TagInstance, TagSpecHash, TagReplica)
	}
	k := wkey{"i", "e", "t", "w"}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: schema.Workload{Name: "w", Image: "x"}, SpecHash: "h"}
	g := groupFor(k, d, nil, nil, 0, "westeurope", "")
	if !k.owns(g.Tags) || (wkey{"i", "e2", "t", "w"}).owns(g.Tags) {
		t.Error("ownership by tags")
	}
	for name := range g.Tags {
		if strings.ContainsAny(name, `<>%&\?/`) {
			t.Errorf("tag name %q has a character Azure refuses", name)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	w := schema.Workload{
		Name: "web", Provider: "aci", Image: "img:1", Command: []string{"/app"}, Args: []string{"serve", "-v"},
		Env:       map[string]string{"GREETING": "hi", "DB_PASSWORD": "pw"},
		Ports:     []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}, {Port: 53, Protocol: "udp", Public: true, HostPort: 53}},
		Replicas:  3,
		Resources: schema.Resources{CPUMillis: 1500, MemoryBytes: 1536 << 20},
		Health: &schema.HealthCheck{Command: []string{"/app", "check"}, Interval: schema.Duration(10 * time.Second),
			Timeout: schema.Duration(3 * time.Second), Retries: 4, StartPeriod: schema.Duration(20 * time.Second)},
	}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "aci", Workload: w, SpecHash: providers.SpecHash(w)}
	g := groupFor(wkey{"i", "e", "aci", "web"}, d, nil, nil, 1, "westeurope", "px")
	env := g.Properties.Containers[0].Properties.EnvironmentVariables
	for _, e := range env {
		if *e.Name == "DB_PASSWORD" && (e.SecureValue == nil || e.Value != nil) {
			t.Error("DB_PASSWORD not sent as a secureValue")
		}
	}
	b, _ := json.Marshal(g) // through the wire shape
	var back cg
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := live(&back, readiness)
	want := normalize(w)
	want.Replicas, want.Provider = 0, ""
	if want.Env["DB_PASSWORD"] != "" || len(want.Command) != 3 || want.Args != nil {
		t.Errorf("Normalize: secure values read back empty, args join the command: %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n got %+v\nwant %+v", got, want)
	}
	if l := *g.Properties.IPAddress.DNSNameLabel; !strings.HasPrefix(l, "px-e-web-1-") {
		t.Errorf("dns label %q", l)
	}
}

func TestValidate(t *testing.T) {
	base := func() schema.Workload {
		return schema.Workload{Name: "w", Image: "x", Command: []string{"/app"},
			Ports: []schema.Port{{Port: 80, Protocol: "tcp", Public: true}}, Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20}}
	}
	p := &Provider{}
	for _, c := range []struct {
		name   string
		change func(*schema.Workload)
		fields []string
	}{
		{"ok", func(*schema.Workload) {}, nil},
		{"tcp check", func(w *schema.Workload) { w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 80}} }, []string{"health.tcp"}},
		{"args only", func(w *schema.Workload) { w.Command, w.Args = nil, []string{"serve"} }, nil},
		{"args only, bad image", func(w *schema.Workload) { w.Command, w.Args, w.Image = nil, []string{"serve"}, "Bad Image" }, []string{"image"}},
		{"internal port", func(w *schema.Workload) { w.Ports[0].Public = false }, []string{"ports[0].public"}},
		{"host port", func(w *schema.Workload) { w.Ports[0].HostPort = 8080 }, []string{"ports[0].hostPort"}},
		{"cpu too big", func(w *schema.Workload) { w.Resources.CPUMillis = 8000 }, []string{"resources.cpu"}},
		{"cpu step", func(w *schema.Workload) { w.Resources.CPUMillis = 255 }, []string{"resources.cpu"}},
		{"memory step is rounded up", func(w *schema.Workload) { w.Resources.MemoryBytes = 100 << 20 }, nil},
		{"memory too big", func(w *schema.Workload) { w.Resources.MemoryBytes = 32 << 30 }, []string{"resources.memory"}},
		{"env name", func(w *schema.Workload) { w.Env = map[string]string{"OK_1": "", "my.var": "", "1ST": ""} }, []string{"env.1ST", "env.my.var"}},
	} {
		w := base()
		c.change(&w)
		var got []string
		for _, pr := range p.Validate(w) {
			got = append(got, pr.Field)
		}
		if !reflect.DeepEqual(got, c.fields) {
			t.Errorf("%s: problems %v, want %v", c.name, got, c.fields)
		}
	}
	if p.Capabilities().HealthTCP {
		t.Error("ACI has no TCP probes")
	}
}

func TestParseSettings(t *testing.T) {
	ok := map[string]any{"subscriptionId": "s", "resourceGroup": "rg", "location": "westeurope"}
	if _, err := ParseSettings(schema.Target{Name: "a", Settings: ok}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{
		{"subscriptionId": "s", "resourceGroup": "rg"},
		{"subscriptionId": "s", "resourceGroup": "rg", "location": "l", "credential": "password"},
		{"subscriptionId": "s", "resourceGroup": "rg", "location": "l", "dnsLabelPrefix": "Bad_Prefix"},
		{"subscriptionId": "s", "resourceGroup": "rg", "location": "l", "dnsLabelPrefix": "1abc"},
		{"subscriptionId": "s", "resourceGroup": "rg", "location": "l", "endpoint": "ftp://x"},
		{"subscriptionId": 3, "resourceGroup": "rg", "location": "l"},
	} {
		if _, err := ParseSettings(schema.Target{Name: "a", Settings: bad}); err == nil {
			t.Errorf("settings %v accepted", bad)
		}
	}
}

// TestStates: every provisioning state the specification defines is classified: Succeeded, in progress (waited
// for), or broken (replaced). Unhealthy and NotAccessible are broken, never an operation in progress.
func TestStates(t *testing.T) {
	for _, st := range aciemu.ProvisioningStates {
		g := &cg{Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{ProvisioningState: ptr(st)}}
		_, ready, broken := status(g)
		inFlight := transitioning(g)
		switch {
		case ready:
			t.Errorf("%s without an instance view reads as ready", st)
		case st == "Succeeded" && (inFlight || broken):
			t.Errorf("Succeeded: in flight %v, broken %v", inFlight, broken)
		case st != "Succeeded" && inFlight == broken:
			t.Errorf("%s: in flight %v, broken %v: want exactly one", st, inFlight, broken)
		case (st == "Unhealthy" || st == "NotAccessible") && !broken:
			t.Errorf("%s is not treated as broken", st)
		}
	}
	running := func(inst, container string) *cg {
		return &cg{Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{ProvisioningState: ptr("Succeeded"),
			InstanceView: &armcontainerinstance.ContainerGroupPropertiesInstanceView{State: ptr(inst)},
			Containers: []*armcontainerinstance.Container{{Properties: &armcontainerinstance.ContainerProperties{
				InstanceView: &armcontainerinstance.ContainerPropertiesInstanceView{CurrentState: &armcontainerinstance.ContainerState{State: ptr(container)}}}}}}}
	}
	for _, c := range []struct {
		inst, container string
		ready, broken   bool
	}{{"Running", "Running", true, false}, {"Pending", "Waiting", false, false}, {"Stopped", "Terminated", false, true},
		{"Failed", "Terminated", false, true}, {"Running", "Terminated", false, true}} {
		if _, ready, broken := status(running(c.inst, c.container)); ready != c.ready || broken != c.broken {
			t.Errorf("instance %s, container %s: ready %v broken %v, want %v %v", c.inst, c.container, ready, broken, c.ready, c.broken)
		}
	}
}

// TestRepair: a live group that drifted is updated in place, except for what ACI changes only by recreating
// (CPU, memory, restart policy, IP address type): that is never sent as an update, which the service refuses.
func TestRepair(t *testing.T) {
	w := schema.Workload{Name: "web", Image: "img:1", Command: []string{"/app"}, Env: map[string]string{"A": "1"},
		Ports: []schema.Port{{Port: 80, Protocol: "tcp", Public: true}}, Resources: schema.Resources{CPUMillis: 500, MemoryBytes: 1 << 30},
		Health: &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/", Port: 80}, Interval: schema.Duration(time.Second), Timeout: schema.Duration(time.Second), Retries: 2}}
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "e"}, Target: "t", Workload: w, SpecHash: "abcdef"}
	k := wkey{"i", "e", "t", "web"}
	for _, c := range []struct {
		name   string
		change func(g *cg)
		want   int
	}{
		{"untouched", func(*cg) {}, noRepair},
		{"foreign tag", func(g *cg) { g.Tags["owner"] = ptr("ops") }, noRepair},
		{"image", func(g *cg) { g.Properties.Containers[0].Properties.Image = ptr("img:2") }, update},
		{"env", func(g *cg) { g.Properties.Containers[0].Properties.EnvironmentVariables[0].Value = ptr("2") }, update},
		{"liveness only", func(g *cg) { g.Properties.Containers[0].Properties.LivenessProbe.PeriodSeconds = ptr[int32](9) }, update},
		{"dns label", func(g *cg) { g.Properties.IPAddress.DNSNameLabel = nil }, update},
		{"memory", func(g *cg) { g.Properties.Containers[0].Properties.Resources.Requests.MemoryInGB = ptr(2.0) }, recreate},
		{"cpu", func(g *cg) { g.Properties.Containers[0].Properties.Resources.Requests.CPU = ptr(1.0) }, recreate},
		{"ip address removed", func(g *cg) { g.Properties.IPAddress = nil }, recreate},
	} {
		want := groupFor(k, d, nil, nil, 0, "westeurope", "px")
		b, _ := json.Marshal(want)
		var g cg
		_ = json.Unmarshal(b, &g)
		c.change(&g)
		if got := repair(&g, &want); got != c.want {
			t.Errorf("%s: repair %d, want %d", c.name, got, c.want)
		}
	}
}

// A token failure is retried only when Entra ID or the managed identity endpoint answered with throttling or a 5xx.
func TestCredentialErrorsClassified(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: http.StatusServiceUnavailable}}, true},
		{&azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: http.StatusTooManyRequests}}, true},
		{&azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: http.StatusUnauthorized}}, false},
		{&azidentity.AuthenticationFailedError{}, false},
		{azidentity.NewCredentialUnavailableError("no credential"), false},
		{context.DeadlineExceeded, true},
	} {
		if got := retryable(fmt.Errorf("list: %w", &azcred.Error{Err: c.err})); got != c.want {
			t.Errorf("retryable(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

// TestLongestNames: a 40-character workload in preview pr-2147483647 gets a group name, DNS label and container
// name within ACI's 63 characters, cut with a hash, distinct from the base's; names that fit are unchanged.
func TestLongestNames(t *testing.T) {
	w := "cf-" + strings.Repeat("l", 36) + "x"
	prefix := strings.Repeat("p", 40) // the longest dnsLabelPrefix
	g, b := GroupName("conf", "pr-2147483647", w, 0, "abcdef123456"), GroupName("conf", "dev", w, 0, "abcdef123456")
	pr := providers.Owner{Instance: "conf", Environment: "pr-2147483647", Preview: 2147483647}
	l, bl := dnsLabel(prefix, dnsScope(pr), w, 0, "abcdef123456"), dnsLabel(prefix, "dev", w, 0, "abcdef123456")
	for _, n := range []string{g, l, containerName(w)} {
		if len(n) > 63 || strings.Contains(n, "--") || sanitize(n) != n {
			t.Errorf("name %q (%d) breaks ACI's rules", n, len(n))
		}
	}
	if g == b || l == bl || g != GroupName("conf", "pr-2147483647", w, 0, "abcdef123456") {
		t.Errorf("names not distinct from the base's or not deterministic: %q %q, %q %q", g, b, l, bl)
	}
	if got := dnsLabel("berthtest", dnsScope(providers.Owner{Instance: "i", Environment: "staging"}), "web", 0, "abcdef123456"); got != "berthtest-staging-web-0-abcdef" {
		t.Errorf("a DNS label that fits changed: %q", got)
	}
	// Two berths (two repositories) on one target each have a pull request 42: their previews' labels differ.
	la := dnsLabel("berthtest", dnsScope(providers.Owner{Instance: "a", Environment: "pr-42", Preview: 42}), "web", 0, "abcdef123456")
	lb := dnsLabel("berthtest", dnsScope(providers.Owner{Instance: "b", Environment: "pr-42", Preview: 42}), "web", 0, "abcdef123456")
	if la == lb || la != "berthtest-a-pr-42-web-0-abcdef" {
		t.Errorf("preview labels of two instances: %q, %q", la, lb)
	}
}

// TestPreviewTags: a preview's groups carry its number and head within Azure's tag limits; a base's carry neither.
func TestPreviewTags(t *testing.T) {
	w := schema.Workload{Name: "web", Image: "img:1", Replicas: 1}
	head := strings.Repeat("ab", 20)
	d := providers.Desired{Owner: providers.Owner{Instance: "i", Environment: "pr-2147483647", Preview: 2147483647}, Target: "aci",
		Workload: w, SpecHash: providers.SpecHash(w), Preview: &schema.Preview{Number: 2147483647, Head: head}}
	g := groupFor(wkey{"i", "pr-2147483647", "aci", "web"}, d, nil, nil, 0, "westeurope", "")
	if tag(g.Tags, TagPreview) != "2147483647" || tag(g.Tags, TagHead) != head {
		t.Errorf("preview tags %v", g.Tags)
	}
	if len(g.Tags) > maxTags || len(g.Tags) > ownTags {
		t.Errorf("%d tags: more than berth's own %d", len(g.Tags), ownTags)
	}
	for k, v := range g.Tags {
		if len(k) > maxTagName || len(*v) > maxTagValue {
			t.Errorf("tag %s=%s past Azure's limits", k, *v)
		}
	}
	d.Owner, d.Preview = providers.Owner{Instance: "i", Environment: "dev"}, nil
	g = groupFor(wkey{"i", "dev", "aci", "web"}, d, nil, nil, 0, "westeurope", "")
	if tag(g.Tags, TagPreview) != "" || tag(g.Tags, TagHead) != "" {
		t.Errorf("base tags %v", g.Tags)
	}
}
