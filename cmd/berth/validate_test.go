package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// berth validate checks what each target's type can honour from the files alone: no provider is built, nothing is
// connected to, no credential is read.

// accepts is a loopback listener that counts the connections made to it: every endpoint of the test's targets.
func accepts(t *testing.T) (addr string, n *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), n
}

// validateRepo writes src as berth.cue of a new directory and runs berth validate on it with args; it returns
// stdout, stderr and the exit status.
func validateRepo(t *testing.T, src string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), append([]string{"validate", dir}, args...)...)
	cmd.Env = hermeticEnv(t)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// lineOf is the 1-based line of src where s first occurs.
func lineOf(t *testing.T, src, s string) int {
	t.Helper()
	i := strings.Index(src, s)
	if i < 0 {
		t.Fatalf("%q is not in the source", s)
	}
	return strings.Count(src[:i], "\n") + 1
}

// An ACI workload with a TCP check and a Nomad workload with a command check are problems at their fields; the
// clouds' targets point at a listener that must never be called, with credentials that do not exist.
func TestValidateOffline(t *testing.T) {
	addr, calls := accepts(t)
	targets := fmt.Sprintf(`package berth

targets: {
	aci: {type: "azure", subscriptionId: "s", resourceGroup: "rg", location: "westeurope", credential: "environment", endpoint: "http://%[1]s"}
	cluster: {type: "nomad", address: "http://%[1]s", tokenEnv: "BERTH_TEST_TOKEN_NEVER_SET"}
	dcos: {type: "marathon", address: "http://%[1]s", tokenEnv: "BERTH_TEST_TOKEN_NEVER_SET"}
	ecs: {type: "aws", region: "eu-west-1", cluster: "c", subnets: ["subnet-1"], profile: "never-configured", endpoint: "http://%[1]s"}
	gce: {type: "gcp", project: "p", region: "europe-west1", credentialsFile: "/nonexistent/credentials.json", endpoint: "http://%[1]s"}
}
environments: production: {branch: "main"}
workloads: api: {
	image:    "app:v1"
	provider: "ecs"
	ports: [{port: 8080, public: true}]
	health: http: {path: "/healthz", port: 8080}
}
workloads: site: {
	image:    "app:v1"
	provider: "gce"
	ports: [{port: 8080, public: true}]
	health: http: {path: "/healthz", port: 8080}
}
`, addr)
	bad := targets + `workloads: web: {
	image:    "app:v1"
	provider: "aci"
	ports: [{port: 8080, public: true}]
	health: tcp: port: 8080
}
workloads: job: {
	image:    "app:v1"
	provider: "cluster"
	health: command: ["/app", "check"]
}
`
	// What the clouds' types truly cannot honour of api and site (read from their offline descriptions, which
	// their providers share) is a problem too; none is expected here, but the test says so rather than assumes.
	cfg := loadSource(t, bad)
	var cloud []string
	for _, p := range reconciler.CheckOffline(cfg) {
		if p.Target == "ecs" || p.Target == "gce" {
			cloud = append(cloud, p.String())
		}
	}

	stdout, stderr, code := validateRepo(t, bad)
	want := append(slices.Clone(cloud),
		fmt.Sprintf("berth.cue:%d:10: workload web on target aci: field health.tcp: Azure Container Instances probes are exec or httpGet only, with no TCP check", lineOf(t, bad, "health: tcp")),
		fmt.Sprintf("berth.cue:%d:10: workload job on target cluster: field health.command: Nomad runs command checks as Consul script checks: the cluster needs the Consul integration (Nomad's own service provider has only http and tcp checks)", lineOf(t, bad, "health: command")),
	)
	got := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || stdout != "" || len(got) != len(want)+1 {
		t.Fatalf("validate: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %d problem lines", code, stdout, stderr, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("line %d:\n%s\nwant it to start\n%s", i+1, got[i], w)
		}
	}
	if last := got[len(got)-1]; last != fmt.Sprintf("berth: %d problem(s) the targets cannot honour", len(want)) {
		t.Errorf("last line %q", last)
	}

	// -o json: the same problems, with their fields and positions, on stdout.
	stdout, _, code = validateRepo(t, bad, "-o", "json")
	var res validation
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 1 {
		t.Fatalf("validate -o json: exit %d, %v:\n%s", code, err, stdout)
	}
	if res.OK || res.Environments != 1 || res.Targets != 5 || len(res.Problems) != len(want) {
		t.Fatalf("validate -o json: %+v", res)
	}
	web := res.Problems[len(res.Problems)-2]
	if web.Workload != "web" || web.Target != "aci" || web.Field != "health.tcp" ||
		web.Pos != (schema.Pos{File: "berth.cue", Line: lineOf(t, bad, "health: tcp"), Column: 10}) ||
		!slices.Equal(web.Environments, []string{"production"}) {
		t.Errorf("the ACI problem in JSON: %+v", web)
	}

	// Without them, the same targets validate: nothing was reached, either time.
	if len(cloud) == 0 {
		stdout, stderr, code = validateRepo(t, targets)
		if code != 0 || stdout != "ok: 1 environment(s), 5 target(s)\n" {
			t.Errorf("validate of the clean repository: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("validate connected to the targets' endpoint %d time(s)", n)
	}
}

// loadSource loads src as a repository in this process, as the evaluation child of berth validate does.
func loadSource(t *testing.T, src string) *schema.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The quickstart's web workload on a target of each of the eight types: a problem exactly where the type's
// offline description says it cannot honour a field (no How for a feature the workload uses, or its own Validate),
// at the field's line and column, and none elsewhere.
func TestValidateEveryType(t *testing.T) {
	addr, calls := accepts(t)
	settings := map[string]string{
		"docker":     `publicAddress: "127.0.0.1"`,
		"swarm":      `publish: "host"`,
		"kubernetes": `kubeconfig: "/nonexistent/kubeconfig", namespace: "berth"`,
		"nomad":      fmt.Sprintf(`address: "http://%s"`, addr),
		"marathon":   fmt.Sprintf(`address: "http://%s"`, addr),
		"aws":        fmt.Sprintf(`region: "eu-west-1", cluster: "c", subnets: ["subnet-1"], assignPublicIp: true, endpoint: "http://%s"`, addr),
		"gcp":        fmt.Sprintf(`project: "p", region: "europe-west1", endpoint: "http://%s"`, addr),
		"azure":      fmt.Sprintf(`subscriptionId: "s", resourceGroup: "rg", location: "westeurope", dnsLabelPrefix: "berthtest", endpoint: "http://%s"`, addr),
	}
	types := []string{"docker", "swarm", "kubernetes", "nomad", "marathon", "aws", "gcp", "azure"}
	var b strings.Builder
	b.WriteString("package berth\n\ntargets: {\n")
	for _, typ := range types {
		fmt.Fprintf(&b, "\t%q: {type: %q, %s}\n", "t-"+typ, typ, settings[typ])
	}
	b.WriteString("}\nenvironments: production: {branch: \"main\"}\n")
	for _, typ := range types {
		fmt.Fprintf(&b, `workloads: "web-%s": {
	image:    "ghcr.io/berth-dev/quickstart:v1"
	args: ["serve"]
	provider: "t-%s"
	replicas: 2
	env: GREETING: "hello from berth"
	ports: [{name: "http", port: 8080, public: true, hostPort: 8080}]
	health: {http: {path: "/healthz", port: 8080}, interval: "2s", timeout: "1s", retries: 3}
	resources: {cpu: "250m", memory: "512Mi"}
}
`, typ, typ)
	}
	src := b.String()
	cfg := loadSource(t, src)

	// The fields the capability check looks at, in the workload, with the feature that honours each.
	features := []struct{ field, feature string }{
		{"health.http", providers.FeatureHealthHTTP},
		{"ports[0].public", providers.FeaturePublicPort},
		{"resources.cpu", providers.FeatureCPU},
		{"resources.memory", providers.FeatureMemory},
	}
	var want []string
	for _, typ := range types {
		target := cfg.Targets["t-"+typ]
		caps, v, err := providers.OfflineFor(target)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		for k, honoured := range map[string]bool{providers.FeatureHealthHTTP: caps.HealthHTTP, providers.FeatureHealthTCP: caps.HealthTCP,
			providers.FeatureHealthCommand: caps.HealthCommand, providers.FeaturePublicPort: caps.PublicPorts,
			providers.FeatureCPU: caps.CPULimit, providers.FeatureMemory: caps.MemoryLimit} {
			if (caps.How[k] != "") != honoured {
				t.Errorf("%s: How[%q] = %q, but the capability says %v", typ, k, caps.How[k], honoured)
			}
		}
		ws := cfg.Environments["production"].Workloads
		w := ws[slices.IndexFunc(ws, func(w schema.Workload) bool { return w.Name == "web-"+typ })]
		own := map[string]string{}
		var vps []providers.Problem
		if v != nil {
			vps = v.Validate(w)
		}
		for _, vp := range vps {
			own[vp.Field] = vp.Message
		}
		line := func(field string) string {
			pos := w.Position(field)
			return fmt.Sprintf("%s: workload %s on target %s: field %s: ", pos, w.Name, target.Name, field)
		}
		for _, f := range features {
			if _, ok := own[f.field]; caps.How[f.feature] == "" && !ok {
				want = append(want, line(f.field))
				// The position is the field's own line in the file ("ports: [...", "health: {http: ..."), not the
				// workload's.
				top := strings.FieldsFunc(f.field, func(r rune) bool { return r == '.' || r == '[' })[0]
				if l := w.Position(f.field).Line; l < 1 || !strings.HasPrefix(strings.TrimSpace(strings.Split(src, "\n")[l-1]), top+":") {
					t.Errorf("%s: %s is at %v, not on its own line", typ, f.field, w.Position(f.field))
				}
			}
		}
		for _, vp := range vps {
			want = append(want, line(vp.Field)+vp.Message)
		}
	}

	stdout, stderr, code := validateRepo(t, src, "-o", "json")
	var res validation
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("validate -o json: exit %d, %v:\n%s\n%s", code, err, stdout, stderr)
	}
	var got []string
	for _, p := range res.Problems {
		got = append(got, p.String())
	}
	slices.Sort(want)
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant lines starting\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	for i := range want {
		if !strings.HasPrefix(sorted[i], want[i]) {
			t.Errorf("problem:\n%s\nwant it to start\n%s", sorted[i], want[i])
		}
	}
	if (code == 0) != (len(want) == 0) || res.OK != (len(want) == 0) {
		t.Errorf("exit %d, ok %v with %d problems", code, res.OK, len(want))
	}
	t.Logf("%d problem(s) on the quickstart's web workload across the eight types:\n%s", len(got), strings.Join(got, "\n"))

	// The text output says the same, one problem a line on stderr, in the same order.
	_, stderr, _ = validateRepo(t, src)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var text []string
	for _, l := range lines {
		if strings.HasPrefix(l, "berth.cue:") && strings.Contains(l, " on target ") {
			text = append(text, l)
		}
	}
	if !slices.Equal(text, got) {
		t.Errorf("text output:\n%s\nJSON's problems:\n%s", stderr, strings.Join(got, "\n"))
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("validate connected to the targets' endpoint %d time(s)", n)
	}
}
