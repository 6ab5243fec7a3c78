package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	nomadapi "github.com/hashicorp/nomad/api"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	berthdocker "github.com/berth-dev/berth/providers/docker"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	"github.com/berth-dev/berth/providers/marathon"
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
	"github.com/berth-dev/berth/providers/nomad"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/providers/registry/registrytest"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// The portability matrix (issue 11): the quickstart's web workload, one file, applied on a target of each of the
// eight types in turn by changing its provider alone. Each run checks, through the engine as `berth apply` runs it,
// that the plan has no problem, the workload gets ready with its public port's address in status, and the runtime
// received the health check, the resources, the args and the public port (read from the runtime's own record of
// its objects); the previous target's copy is gone after each move. The table of docs/providers.md is generated
// from the offline capability descriptions (providers.OfflineFor) and must agree with what the runs saw.

const (
	matrixEnv = "production"
	// matrixDocPath is the page holding the table, from this package's directory.
	matrixDocPath = "../../docs/providers.md"
	matrixBegin   = "<!-- portability-matrix:begin -->"
	matrixEnd     = "<!-- portability-matrix:end -->"
	// matrixLBAddress is the address the test, as Kubernetes' service controller, gives LoadBalancer Services.
	matrixLBAddress = "203.0.113.80"
	// matrixPort is the quickstart's public port (and host port).
	matrixPort     = 8080
	matrixTokenEnv = "BERTH_MATRIX_NOMAD_TOKEN"
	matrixToken    = "matrix-nomad-token"
)

// matrixOrder is the order of the runs: the matrix's rows, and the moves from one target to the next. Docker and
// Swarm both publish host port 8080 on this machine, so a target without a host port comes between them (a move is
// make-before-break: both copies serve at once).
var matrixOrder = []string{"docker", "nomad", "swarm", "marathon", "kubernetes", "aws", "gcp", "azure"}

// matrixColumns titles providers.Features.
var matrixColumns = map[string]string{
	providers.FeaturePublicPort: "Public port", providers.FeatureAddress: "Address",
	providers.FeatureHealthHTTP: "HTTP health", providers.FeatureHealthTCP: "TCP health",
	providers.FeatureHealthCommand: "Command health", providers.FeatureCPU: "CPU", providers.FeatureMemory: "Memory",
	providers.FeatureArgs: "Args", providers.FeatureRollout: "Rollout",
}

// matrixEndpoints are the addresses the targets' settings name: the emulators' in a run, placeholders for the doc
// check (offline descriptions never connect).
type matrixEndpoints struct {
	kubeconfig, nomad, marathon, ecs, aci, gce, gceProject, gceRegion, gceKey string
}

// matrixRepo is the repository: the targets of types (matrixOrder's, but those this machine lacks), the environment
// and the quickstart's web workload on provider. Between runs only the provider line changes.
func matrixRepo(e matrixEndpoints, provider string, types []string, health string) string {
	decl := map[string]string{
		"docker":     `{type: "docker", publicAddress: "127.0.0.1"}`,
		"swarm":      `{type: "swarm", publish: "host", publicAddress: "127.0.0.1"}`,
		"kubernetes": fmt.Sprintf(`{type: "kubernetes", kubeconfig: %q, context: "kubetest"}`, e.kubeconfig),
		"nomad": fmt.Sprintf(`{type: "nomad", address: %q, region: "global", namespace: "berth", datacenters: ["dc1"], tokenEnv: %q}`,
			e.nomad, matrixTokenEnv),
		"marathon": fmt.Sprintf(`{type: "marathon", address: %q}`, e.marathon),
		"aws": fmt.Sprintf(`{type: "aws", region: "eu-west-1", cluster: "berth-e2e", subnets: ["subnet-0e2e"], endpoint: %q}`,
			e.ecs),
		"gcp": fmt.Sprintf(`{type: "gcp", project: %q, region: %q, endpoint: %q, credentialsFile: %q}`,
			e.gceProject, e.gceRegion, e.gce, e.gceKey),
		"azure": fmt.Sprintf(`{type: "azure", subscriptionId: "00000000-0000-0000-0000-0000000000e2", resourceGroup: "berth-e2e", location: "westeurope", endpoint: %q}`,
			e.aci),
	}
	var b strings.Builder
	b.WriteString("package berth\n\ntargets: {\n")
	for _, typ := range types {
		fmt.Fprintf(&b, "\t%s: %s\n", typ, decl[typ])
	}
	fmt.Fprintf(&b, `}

environments: production: {branch: "main"}

workloads: web: {
	image:    %q
	args: ["serve"]
	provider: %q
	replicas: 2
	env: GREETING: "hello from berth"
	ports: [{name: "http", port: 8080, public: true, hostPort: 8080}]
	health: {%s, retries: 3}
	resources: {cpu: "250m", memory: "64Mi"}
}
`, exampleImage, provider, matrixHealth[health])
	return b.String()
}

// matrixHealth is the health check of web by kind: the quickstart's HTTP check, and the variants of the TCP and
// command columns.
var matrixHealth = map[string]string{
	"http": `http: {path: "/healthz", port: 8080}, interval: "2s", timeout: "1s"`,
	"tcp":  `tcp: {port: 8080}, interval: "2s", timeout: "1s"`,
	// ECS container health checks take 5 s intervals and 2 s timeouts at least.
	"command": `command: ["/app", "healthcheck"], interval: "5s", timeout: "2s"`,
}

// loadMatrixRepo writes the repository for provider into dir and loads it with the schema loader.
func loadMatrixRepo(t *testing.T, dir string, e matrixEndpoints, provider string, types []string, health ...string) (*schema.Config, schema.Workload) {
	t.Helper()
	kind := "http"
	if len(health) > 0 {
		kind = health[0]
	}
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(matrixRepo(e, provider, types, kind)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatalf("load the matrix repository: %v", err)
	}
	web, ok := cfg.Environments[matrixEnv].Workload("web")
	if !ok {
		t.Fatal("the matrix repository has no workload web")
	}
	return cfg, web
}

// TestPortabilityMatrixDoc checks the table of docs/providers.md against the offline capability descriptions
// (BERTH_UPDATE_MATRIX=1 rewrites it). It needs no runtime; TestPortabilityMatrix backs the table with runs.
func TestPortabilityMatrixDoc(t *testing.T) {
	cfg, web := loadMatrixRepo(t, t.TempDir(), placeholderEndpoints, "docker", matrixOrder)
	rows := matrixRows(t, cfg, web)
	checkMatrixDoc(t, renderMatrix(rows))
}

// placeholderEndpoints stand for the runtimes in offline descriptions, which never connect.
var placeholderEndpoints = matrixEndpoints{kubeconfig: "/nonexistent/kubeconfig", nomad: "http://127.0.0.1:1",
	marathon: "http://127.0.0.1:1", ecs: "http://127.0.0.1:1", aci: "http://127.0.0.1:1", gce: "http://127.0.0.1:1",
	gceProject: "berth-e2e", gceRegion: "europe-west1", gceKey: "/nonexistent/key.json"}

// matrixRow is one target type's cells, by feature, and what its offline description claims.
type matrixRow struct {
	typ   string
	cells map[string]string
	how   map[string]string
}

// matrixRows computes every row from providers.OfflineFor: "✓ <how>" for a feature How describes, "✗ <why>" for
// one it does not, why being the plan-time problem a workload using the feature gets (the provider's own Validate
// message, or the generic capability message). How and Validate must agree: a feature described as honoured whose
// workload the offline Validate rejects, or a workload field accepted while How does not describe it, fails t.
func matrixRows(t *testing.T, cfg *schema.Config, web schema.Workload) []matrixRow {
	t.Helper()
	var rows []matrixRow
	for _, typ := range matrixOrder {
		tgt := cfg.Targets[typ]
		if tgt.Name == "" {
			tgt.Name = typ
		}
		caps, v, err := providers.OfflineFor(tgt)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			rows = append(rows, matrixRow{typ: typ, cells: map[string]string{}})
			continue
		}
		row := matrixRow{typ: typ, cells: map[string]string{}, how: caps.How}
		for _, f := range providers.Features {
			why := featureProblems(caps, v, featureWorkload(web, f), f)
			how := caps.How[f]
			switch {
			case how != "" && len(why) > 0:
				t.Errorf("%s: How says %s is honoured (%q) but the offline Validate rejects it: %s", typ, f, how, why[0])
				row.cells[f] = "✓ " + how
			case how != "":
				row.cells[f] = "✓ " + how
			case len(why) > 0:
				row.cells[f] = "✗ " + why[0]
			case f == providers.FeatureAddress:
				row.cells[f] = "✗ no address in status"
			case f == providers.FeatureRollout:
				row.cells[f] = "✗ not described"
			default:
				t.Errorf("%s: How does not describe %s, yet the offline Validate accepts a workload using it", typ, f)
				row.cells[f] = "✗ not described"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// featureWorkload is web using feature f: web itself, or web with a TCP or command health check in place of HTTP.
func featureWorkload(web schema.Workload, f string) schema.Workload {
	w := web
	if web.Health != nil {
		h := *web.Health
		switch f {
		case providers.FeatureHealthTCP:
			h.HTTP, h.TCP, h.Command = nil, &schema.TCPCheck{Port: matrixPort}, nil
		case providers.FeatureHealthCommand:
			h.HTTP, h.TCP, h.Command = nil, nil, []string{"/app", "healthcheck"}
		}
		w.Health = &h
	}
	return w
}

// featureProblems are the plan-time problems of w about feature f, as the reconciler words them: the provider's
// own first, then the generic capability message.
func featureProblems(caps providers.Capabilities, v providers.Validator, w schema.Workload, f string) []string {
	var out []string
	if v != nil {
		for _, p := range v.Validate(w) {
			if featureOfField(p.Field) == f {
				out = append(out, p.Message)
			}
		}
	}
	switch {
	case f == providers.FeaturePublicPort && !caps.PublicPorts:
		out = append(out, "public ports are not supported")
	case f == providers.FeatureHealthHTTP && !caps.HealthHTTP:
		out = append(out, "HTTP health checks are not supported")
	case f == providers.FeatureHealthTCP && !caps.HealthTCP:
		out = append(out, "TCP health checks are not supported")
	case f == providers.FeatureHealthCommand && !caps.HealthCommand:
		out = append(out, "command health checks are not supported")
	case f == providers.FeatureCPU && !caps.CPULimit:
		out = append(out, "CPU limits are not supported")
	case f == providers.FeatureMemory && !caps.MemoryLimit:
		out = append(out, "memory limits are not supported")
	}
	return out
}

// featureOfField is the matrix feature a problem's field is about ("" for none).
func featureOfField(field string) string {
	switch {
	case strings.HasPrefix(field, "ports"):
		return providers.FeaturePublicPort
	case strings.HasPrefix(field, "health.http"):
		return providers.FeatureHealthHTTP
	case strings.HasPrefix(field, "health.tcp"):
		return providers.FeatureHealthTCP
	case strings.HasPrefix(field, "health.command"):
		return providers.FeatureHealthCommand
	case strings.HasPrefix(field, "resources.cpu"):
		return providers.FeatureCPU
	case strings.HasPrefix(field, "resources.memory"):
		return providers.FeatureMemory
	case field == "args" || field == "command" || strings.HasPrefix(field, "args[") || strings.HasPrefix(field, "command["):
		return providers.FeatureArgs
	}
	return ""
}

// renderMatrix is the Markdown block between the markers.
func renderMatrix(rows []matrixRow) string {
	var b strings.Builder
	b.WriteString("| Target type |")
	for _, f := range providers.Features {
		fmt.Fprintf(&b, " %s |", matrixColumns[f])
	}
	b.WriteString("\n| --- |")
	for range providers.Features {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` |", r.typ)
		for _, f := range providers.Features {
			fmt.Fprintf(&b, " %s |", markdownCell(r.cells[f]))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func markdownCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	// "<name>" would read as an HTML tag.
	return strings.NewReplacer("|", `\|`, "<", "&lt;").Replace(s)
}

// checkMatrixDoc compares table with the block of docs/providers.md, or rewrites the block with
// BERTH_UPDATE_MATRIX=1.
func checkMatrixDoc(t *testing.T, table string) {
	t.Helper()
	doc, err := os.ReadFile(matrixDocPath)
	if err != nil {
		t.Fatal(err)
	}
	begin := bytes.Index(doc, []byte(matrixBegin))
	end := bytes.Index(doc, []byte(matrixEnd))
	if begin < 0 || end < begin {
		t.Fatalf("%s: no block between %s and %s", matrixDocPath, matrixBegin, matrixEnd)
	}
	start := begin + len(matrixBegin)
	want := "\n" + table
	got := string(doc[start:end])
	if got == want {
		return
	}
	if os.Getenv("BERTH_UPDATE_MATRIX") == "1" {
		out := append(append(append([]byte{}, doc[:start]...), want...), doc[end:]...)
		if err := os.WriteFile(matrixDocPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the portability matrix of %s", matrixDocPath)
		return
	}
	t.Errorf("the portability matrix of %s is out of date (run hack/matrix.sh, or this test with BERTH_UPDATE_MATRIX=1):\n%s",
		matrixDocPath, lineDiff(got, want))
}

// lineDiff shows the lines of got and want that differ, position by position.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, gl, wl)
		}
	}
	return b.String()
}

// received is what a runtime's own record of a workload's objects says it was given.
type received struct {
	found bool
	// publicPort names what publishes container port 8080 ("" for nothing).
	publicPort string
	// http describes the HTTP health check on /healthz at 8080 ("" for none); tcp the TCP check of 8080, command
	// the command check running the app's healthcheck.
	http, tcp, command string
	// cpuMillis and memBytes are the CPU and memory the runtime reserves or limits the workload to (0 for none).
	cpuMillis, memBytes int64
	// args are the arguments the container runs with (after the entrypoint).
	args []string
}

// honoured tells, per exercised feature, whether rec shows it received as the quickstart asks.
func (rec received) honoured(w schema.Workload) map[string]string {
	out := map[string]string{}
	if rec.publicPort != "" {
		out[providers.FeaturePublicPort] = rec.publicPort
	}
	if rec.http != "" {
		out[providers.FeatureHealthHTTP] = rec.http
	}
	if rec.cpuMillis >= w.Resources.CPUMillis {
		out[providers.FeatureCPU] = fmt.Sprintf("%dm", rec.cpuMillis)
	}
	if rec.memBytes >= w.Resources.MemoryBytes {
		out[providers.FeatureMemory] = fmt.Sprintf("%d MiB", rec.memBytes>>20)
	}
	if len(rec.args) >= len(w.Args) && slices.Equal(rec.args[len(rec.args)-len(w.Args):], w.Args) {
		out[providers.FeatureArgs] = fmt.Sprint(rec.args)
	}
	return out
}

// matrixLab is the test's runtimes and the readers of their records.
type matrixLab struct {
	t        *testing.T
	instance string
	owner    providers.Owner
	eng      *engine
	clouds   *clouds
	nomad    *nomademu.Server
	marathon *marathonemu.Server
	kube     *kubetest.Cluster
	// made are the providers the engine's factory built, by target name, for List.
	made map[string]providers.Provider
	// hub stands in for the registry of exampleImage (Docker Hub, by its reference): ACI reads the image's
	// entrypoint from its registry (args without command), and no test may reach the real one.
	hub *registrytest.Server
}

// toServer sends every request to one server, whatever host its URL names: the registry stand-in.
type toServer struct{ host string }

func (r toServer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = "http", r.host, r.host
	return http.DefaultTransport.RoundTrip(req)
}

func (l *matrixLab) factory(t schema.Target, o providers.Options) (providers.Provider, error) {
	var p providers.Provider
	var err error
	switch t.Type {
	case "nomad":
		p, err = providers.New(t, o)
		if np, ok := p.(*nomad.Provider); ok {
			np.PollInterval, np.RetryBase, np.RetryMax = 5*time.Millisecond, time.Millisecond, 5*time.Millisecond
		}
	case "marathon":
		p, err = providers.New(t, o)
		if mp, ok := p.(*marathon.Provider); ok {
			mp.PollInterval, mp.RetryBase, mp.RetryMax = 2*time.Millisecond, time.Millisecond, 5*time.Millisecond
		}
	case "azure":
		p, err = l.clouds.factory(t, o)
		if ap, ok := p.(*azure.Provider); ok {
			ap.Registry = &registry.Client{HTTP: &http.Client{Transport: toServer{l.hub.Host()}},
				PlainHTTP: func(string) bool { return true }}
		}
	default:
		p, err = l.clouds.factory(t, o)
	}
	if err == nil {
		l.made[t.Name] = p
	}
	return p, err
}

// TestPortabilityMatrix applies the quickstart's web workload on each target type in turn (Docker, Swarm and a
// kube-apiserver for real; Nomad, Marathon, ECS with ELBv2, Compute Engine and ACI as wire-level emulators) and
// backs the matrix's cells for public port, address, HTTP health, CPU, memory and args with what each runtime
// received.
func TestPortabilityMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quickstart on every target type")
	}
	l := &matrixLab{t: t, eng: newEngine(t), made: map[string]providers.Provider{}, hub: registrytest.New(registrytest.Options{})}
	t.Cleanup(l.hub.Close)
	// The example image as its registry describes it (docker image inspect: Entrypoint ["/app"]).
	l.hub.Push(strings.TrimSuffix(exampleImage, ":v1"), "v1", registrytest.Image{Entrypoint: []string{"/app"}})
	l.instance = fmt.Sprintf("mx%d", time.Now().UnixNano()%1_000_000_000)
	l.owner = providers.Owner{Instance: l.instance, Environment: matrixEnv}
	t.Cleanup(func() { l.eng.cleanup(l.instance) })
	ctx := context.Background()

	order := slices.Clone(matrixOrder)
	drop := func(typ, why, require string) {
		if os.Getenv(require) != "" {
			t.Fatalf("%s required (%s) but %s", typ, require, why)
		}
		t.Logf("skipping target type %s: %s", typ, why)
		order = slices.DeleteFunc(order, func(s string) bool { return s == typ })
	}
	if info, err := l.eng.cli.Info(ctx); err != nil || info.Swarm.LocalNodeState != dockerswarm.LocalNodeStateActive {
		drop("swarm", "the engine is not in swarm mode (. hack/lib.sh; ensure_swarm)", "BERTH_REQUIRE_SWARM")
	}
	e := placeholderEndpoints
	if kubetest.BinDir() == "" {
		drop("kubernetes", "kube-apiserver and etcd not found (KUBE_BIN_DIR=$(hack/kube.sh))", "BERTH_REQUIRE_KUBE")
	} else {
		l.kube = kubetest.Start(t)
		kctx, kcancel := context.WithCancel(ctx)
		stopped := kubetest.RunDeploymentController(kctx, l.kube.Client)
		lbDone := runServiceController(kctx, l.kube.Client, l.instance)
		t.Cleanup(func() { kcancel(); <-stopped; <-lbDone })
		e.kubeconfig = l.kube.Kubeconfig
	}
	l.clouds = startClouds(t)
	// ELBv2 and EC2 (the public port's load balancer, the tasks' addresses) are the ECS emulator's too: no call
	// may leave loopback, whatever settings the aws target gains.
	t.Setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", l.clouds.ecs.URL())
	t.Setenv("AWS_ENDPOINT_URL_EC2", l.clouds.ecs.URL())
	t.Setenv(matrixTokenEnv, matrixToken)
	for _, v := range []string{"NOMAD_ADDR", "NOMAD_REGION", "NOMAD_NAMESPACE", "NOMAD_TOKEN"} {
		t.Setenv(v, "")
	}
	l.nomad = nomademu.New(nomademu.Options{Token: matrixToken})
	t.Cleanup(l.nomad.Close)
	l.marathon = marathonemu.New(marathonemu.Options{})
	t.Cleanup(l.marathon.Close)
	e.nomad, e.marathon = l.nomad.URL(), l.marathon.URL()
	e.ecs, e.aci, e.gce = l.clouds.ecs.URL(), l.clouds.aci.URL(), l.clouds.gce.URL()
	e.gceProject, e.gceRegion, e.gceKey = l.clouds.gce.Project(), l.clouds.gce.Region(), l.clouds.gceKey
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(matrixPort), time.Second); err == nil {
		c.Close()
		t.Fatalf("host port %d is taken on this machine: the quickstart publishes it", matrixPort)
	}

	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", logs.String())
		}
	})
	engine, err := reconciler.NewEngine(reconciler.Options{Instance: l.instance, Providers: l.factory, Background: true,
		StepTimeout: 90 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, web := loadMatrixRepo(t, dir, e, order[0], order)
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := engine.Destroy(dctx, cfg, matrixEnv); err != nil {
			t.Logf("destroy: %v", err)
		}
		engine.Close()
	})

	// The rows of every type, those this machine lacks included, from the targets as this run declares them.
	all, allWeb := loadMatrixRepo(t, t.TempDir(), e, order[0], matrixOrder)
	rows := matrixRows(t, all, allWeb)
	claims := map[string]map[string]string{}
	for _, r := range rows {
		claims[r.typ] = r.how
	}
	var figures, failed []string
	var visited []string
	for i, typ := range order {
		if !t.Run(typ, func(t *testing.T) {
			cfg, web = loadMatrixRepo(t, dir, e, typ, order)
			ready := l.run(t, engine, cfg, web, typ, fmt.Sprintf("matrix-%d", i), claims[typ])
			figures = append(figures, fmt.Sprintf("%s %s", typ, ready.Round(time.Millisecond)))
			// The move removed the copy it left, and no earlier copy is left anywhere.
			for _, v := range visited {
				l.gone(t, v)
			}
			// The TCP and command columns: web with that check instead, rolled on the same target.
			for _, kind := range []string{"tcp", "command"} {
				vcfg, vweb := loadMatrixRepo(t, dir, e, typ, order, kind)
				l.variant(t, engine, vcfg, vweb, typ, kind, fmt.Sprintf("matrix-%d-%s", i, kind), claims[typ])
			}
		}) {
			failed = append(failed, typ)
		}
		visited = append(visited, typ)
	}
	if len(failed) > 0 {
		t.Errorf("target types that failed: %v", failed)
	}
	t.Logf("time to ready (Apply of the move, then List showing 2 ready replicas and the endpoint): %s",
		strings.Join(figures, ", "))
	checkMatrixDoc(t, renderMatrix(rows))
}

// run plans and applies cfg (web on typ), waits until the target's provider lists web ready with its endpoint, and
// checks the runtime's record against the offline claims (how). It returns the time from Apply to ready.
func (l *matrixLab) run(t *testing.T, engine *reconciler.Engine, cfg *schema.Config, web schema.Workload, typ, rev string, how map[string]string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	plan, err := engine.Plan(ctx, cfg, matrixEnv, rev)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plan.Problems {
		t.Errorf("plan problem: %s", p)
	}
	if plan.Blocked() {
		t.Fatalf("the plan is blocked: %s", plan.BlockedReason())
	}
	// One step brings web to typ (after a target that failed, deletes of its copies may come beside it).
	moves := 0
	for _, s := range plan.Steps {
		switch {
		case s.Workload == "web" && s.Target == typ && s.Action != reconciler.ActionDelete:
			moves++
		case s.Workload == "web" && s.Action == reconciler.ActionDelete && s.Target != typ:
		default:
			t.Errorf("unexpected step %s %s on %s", s.Action, s.Workload, s.Target)
		}
	}
	if moves != 1 {
		t.Fatalf("want one step bringing web to %s, got %+v", typ, plan.Steps)
	}
	// The provider the engine uses reports the offline description.
	if caps, err := engine.Capabilities(cfg, typ); err != nil {
		t.Fatal(err)
	} else if !mapsEqual(caps.How, how) {
		t.Errorf("the provider's Capabilities.How %v differ from its offline description %v", caps.How, how)
	}
	start := time.Now()
	res, err := engine.Apply(ctx, cfg, plan)
	if err != nil {
		var b strings.Builder
		if res != nil {
			res.Write(&b)
		}
		t.Fatalf("apply: %v\n%s", err, b.String())
	}
	var obs providers.Observed
	waitFor(t, 60*time.Second, "web ready on "+typ+" with its endpoint", func() (bool, string) {
		p := l.made[typ]
		if p == nil {
			return false, "no provider built"
		}
		lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
		defer lcancel()
		os, err := p.List(lctx, l.owner, typ)
		if err != nil {
			return false, err.Error()
		}
		for _, o := range os {
			if o.Workload != "web" {
				continue
			}
			n := 0
			for _, r := range o.Replicas {
				if r.Ready() {
					n++
				}
			}
			obs = o
			return n == 2 && len(o.Endpoints) > 0, fmt.Sprintf("%d ready of %+v, endpoints %v", n, o.Replicas, o.Endpoints)
		}
		return false, "web not listed"
	})
	ready := time.Since(start)

	seen := map[string]string{}
	for _, ep := range obs.Endpoints {
		if ep.Port == matrixPort && ep.Address != "" {
			if _, port, err := net.SplitHostPort(ep.Address); err != nil || port != strconv.Itoa(matrixPort) {
				t.Errorf("endpoint %q is not host:%d", ep.Address, matrixPort)
			}
			seen[providers.FeatureAddress] = ep.Address
		}
	}
	if addr := seen[providers.FeatureAddress]; addr != "" {
		l.checkAddress(t, typ, addr)
	}
	rec, err := l.record(ctx, typ)
	if err != nil {
		t.Fatalf("read the runtime's record: %v", err)
	}
	if !rec.found {
		t.Fatalf("the runtime has no record of web")
	}
	for f, v := range rec.honoured(web) {
		seen[f] = v
	}
	t.Logf("%s received: %v", typ, seen)
	for _, f := range []string{providers.FeaturePublicPort, providers.FeatureAddress, providers.FeatureHealthHTTP,
		providers.FeatureCPU, providers.FeatureMemory, providers.FeatureArgs} {
		switch claimed, got := how[f], seen[f]; {
		case claimed != "" && got == "":
			t.Errorf("%s: How claims %s (%q) but the runtime's record does not show it honoured (%+v)", typ, f, claimed, rec)
		case claimed == "" && got != "":
			t.Errorf("%s: the runtime honoured %s (%s) but How does not describe it", typ, f, got)
		}
	}
	return ready
}

// variant applies web with a health check of kind (tcp, command) on typ when How claims the kind, and checks that
// it gets ready and that the runtime received the check; when How does not, that the plan refuses it, saying why.
func (l *matrixLab) variant(t *testing.T, engine *reconciler.Engine, cfg *schema.Config, web schema.Workload, typ, kind, rev string, how map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	feature := "health." + kind
	plan, err := engine.Plan(ctx, cfg, matrixEnv, rev)
	if err != nil {
		t.Fatal(err)
	}
	if how[feature] == "" {
		if !slices.ContainsFunc(plan.Problems, func(p reconciler.Problem) bool { return p.Field == feature }) {
			t.Errorf("How does not describe %s, yet the plan of web with it has no problem at %s: %v", feature, feature, plan.Problems)
		}
		return
	}
	for _, p := range plan.Problems {
		t.Errorf("%s: plan problem: %s", kind, p)
	}
	if plan.Blocked() {
		t.Fatalf("%s: the plan is blocked: %s", kind, plan.BlockedReason())
	}
	hash := ""
	for _, s := range plan.Steps {
		if s.Workload == "web" && s.Target == typ {
			hash = s.SpecHash
		}
	}
	if hash == "" {
		t.Fatalf("%s: no step rolls web on %s: %+v", kind, typ, plan.Steps)
	}
	if res, err := engine.Apply(ctx, cfg, plan); err != nil {
		var b strings.Builder
		if res != nil {
			res.Write(&b)
		}
		t.Fatalf("%s: apply: %v\n%s", kind, err, b.String())
	}
	waitFor(t, 60*time.Second, "web with a "+kind+" check ready on "+typ, func() (bool, string) {
		os, err := l.made[typ].List(ctx, l.owner, typ)
		if err != nil {
			return false, err.Error()
		}
		for _, o := range os {
			if o.Workload == "web" {
				n := 0
				for _, r := range o.Replicas {
					if r.Ready() && r.SpecHash == hash {
						n++
					}
				}
				return n == 2 && o.Spec.Health.Kind() == kind, fmt.Sprintf("%d ready of %+v, health %+v", n, o.Replicas, o.Spec.Health)
			}
		}
		return false, "web not listed"
	})
	rec, err := l.record(ctx, typ)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"tcp": rec.tcp, "command": rec.command}[kind]
	if got == "" {
		t.Errorf("How claims %s (%q) but the runtime's record does not show it (%+v)", feature, how[feature], rec)
	}
	t.Logf("%s received %s: %s", typ, feature, got)
}

// checkAddress checks a reported address against the runtime: Docker and Swarm's answer with the greeting, the
// Kubernetes one is the LoadBalancer's.
func (l *matrixLab) checkAddress(t *testing.T, typ, addr string) {
	switch typ {
	case "docker", "swarm":
		waitFor(t, 30*time.Second, "web answers at "+addr, func() (bool, string) {
			body, err := get("http://" + addr + "/")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, "hello from berth"), body
		})
	case "kubernetes":
		if want := net.JoinHostPort(matrixLBAddress, strconv.Itoa(matrixPort)); addr != want {
			t.Errorf("kubernetes endpoint %s, want the LoadBalancer's %s", addr, want)
		}
	}
}

// gone checks that typ's copy of web was removed by the move: the provider lists none and the runtime has no
// record of it.
func (l *matrixLab) gone(t *testing.T, typ string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(t, 60*time.Second, "web gone from "+typ, func() (bool, string) {
		os, err := l.made[typ].List(ctx, l.owner, typ)
		if err != nil {
			return false, err.Error()
		}
		for _, o := range os {
			if o.Workload == "web" {
				return false, fmt.Sprintf("listed: %d replicas", len(o.Replicas))
			}
		}
		rec, err := l.record(ctx, typ)
		if err != nil {
			return false, err.Error()
		}
		return !rec.found, fmt.Sprintf("the runtime still has %+v", rec)
	})
}

// runServiceController plays Kubernetes' service controller for the instance's LoadBalancer Services: it gives
// each one without an address matrixLBAddress. It runs until ctx ends.
func runServiceController(ctx context.Context, client k8s.Interface, instance string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			svcs, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{LabelSelector: providers.LabelInstance + "=" + instance})
			if err == nil {
				for _, s := range svcs.Items {
					if s.Spec.Type != corev1.ServiceTypeLoadBalancer || len(s.Status.LoadBalancer.Ingress) > 0 {
						continue
					}
					s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: matrixLBAddress}}
					_, _ = client.CoreV1().Services(s.Namespace).UpdateStatus(ctx, &s, metav1.UpdateOptions{FieldManager: "service-controller"})
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// record reads web's objects on typ from the runtime's (or emulator's) own record.
func (l *matrixLab) record(ctx context.Context, typ string) (received, error) {
	switch typ {
	case "docker":
		return l.dockerRecord(ctx)
	case "swarm":
		return l.swarmRecord(ctx)
	case "kubernetes":
		return l.kubeRecord(ctx)
	case "nomad":
		return l.nomadRecord(ctx)
	case "marathon":
		return l.marathonRecord(ctx)
	case "aws":
		return l.ecsRecord(ctx)
	case "gcp":
		return l.gceRecord(ctx)
	case "azure":
		return l.aciRecord(ctx)
	}
	return received{}, fmt.Errorf("no record reader for %s", typ)
}

// healthLabelOf reads a health check written as JSON (schema.HealthCheck): where, as http when it is a GET of
// /healthz on 8080, as tcp when it is a TCP check of 8080.
func healthLabelOf(label, where string) (http, tcp string) {
	var h schema.HealthCheck
	if json.Unmarshal([]byte(label), &h) != nil {
		return "", ""
	}
	if h.HTTP != nil && h.HTTP.Path == "/healthz" && h.HTTP.Port == matrixPort {
		http = where
	}
	if h.TCP != nil && h.TCP.Port == matrixPort {
		tcp = where
	}
	return http, tcp
}

// runsHealthcheck tells whether a command (or exec probe) runs the app's healthcheck mode.
func runsHealthcheck(cmd []string) bool {
	return slices.Contains(cmd, "healthcheck")
}

func (l *matrixLab) dockerRecord(ctx context.Context) (received, error) {
	var rec received
	for _, c := range l.eng.containers(l.instance, "web") {
		if c.Labels[providers.LabelTarget] != "docker" {
			continue
		}
		in, err := l.eng.cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			return rec, err
		}
		rec.found = true
		rec.cpuMillis, rec.memBytes = in.HostConfig.NanoCPUs/1_000_000, in.HostConfig.Memory
		rec.args = in.Config.Cmd
		rec.http, rec.tcp = healthLabelOf(in.Config.Labels[berthdocker.LabelHealth], "label "+berthdocker.LabelHealth)
		if h := in.Config.Healthcheck; h != nil && runsHealthcheck(h.Test) {
			rec.command = "Config.Healthcheck " + strings.Join(h.Test, " ")
		}
		for _, m := range strings.Split(in.Config.Labels[berthdocker.LabelPublicPorts], ",") {
			if strings.HasSuffix(m, ":"+strconv.Itoa(matrixPort)) {
				rec.publicPort = "label " + berthdocker.LabelPublicPorts + " " + m
			}
		}
		break
	}
	return rec, nil
}

func (l *matrixLab) swarmRecord(ctx context.Context) (received, error) {
	var rec received
	svcs, err := l.eng.cli.ServiceList(ctx, dockerswarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("name", berthswarm.ServiceName(l.owner, "web")))})
	if err != nil {
		return rec, err
	}
	for _, s := range svcs {
		if s.Spec.Name != berthswarm.ServiceName(l.owner, "web") {
			continue
		}
		rec.found = true
		cs := s.Spec.TaskTemplate.ContainerSpec
		if cs != nil {
			rec.args = cs.Args
		}
		if r := s.Spec.TaskTemplate.Resources; r != nil {
			for _, lim := range []*dockerswarm.Limit{r.Limits} {
				if lim != nil {
					rec.cpuMillis, rec.memBytes = lim.NanoCPUs/1_000_000, lim.MemoryBytes
				}
			}
			if rec.cpuMillis == 0 && r.Reservations != nil {
				rec.cpuMillis, rec.memBytes = r.Reservations.NanoCPUs/1_000_000, r.Reservations.MemoryBytes
			}
		}
		rec.http, rec.tcp = healthLabelOf(s.Spec.Labels[berthswarm.LabelHealth], "service label "+berthswarm.LabelHealth)
		if cs != nil && cs.Healthcheck != nil && runsHealthcheck(cs.Healthcheck.Test) {
			rec.command = "ContainerSpec.Healthcheck " + strings.Join(cs.Healthcheck.Test, " ")
		}
		if s.Spec.EndpointSpec != nil {
			for _, p := range s.Spec.EndpointSpec.Ports {
				if p.TargetPort == matrixPort {
					rec.publicPort = fmt.Sprintf("endpoint port %d→%d (%s mode)", p.PublishedPort, p.TargetPort, p.PublishMode)
				}
			}
		}
	}
	return rec, nil
}

func (l *matrixLab) kubeRecord(ctx context.Context) (received, error) {
	var rec received
	sel := metav1.ListOptions{LabelSelector: providers.LabelInstance + "=" + l.instance + "," + providers.LabelWorkload + "=web"}
	deps, err := l.kube.Client.AppsV1().Deployments("").List(ctx, sel)
	if err != nil {
		return rec, err
	}
	for _, d := range deps.Items {
		rec.found = true
		if len(d.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		rec.args = c.Args
		for _, q := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
			if v, ok := q[corev1.ResourceCPU]; ok && rec.cpuMillis == 0 {
				rec.cpuMillis = v.MilliValue()
			}
			if v, ok := q[corev1.ResourceMemory]; ok && rec.memBytes == 0 {
				rec.memBytes = v.Value()
			}
		}
		for what, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Path == "/healthz" &&
				(p.HTTPGet.Port.IntValue() == matrixPort || p.HTTPGet.Port.String() == "http") {
				rec.http = what + " httpGet /healthz"
			}
			if p != nil && p.TCPSocket != nil && p.TCPSocket.Port.IntValue() == matrixPort {
				rec.tcp = what + " tcpSocket 8080"
			}
			if p != nil && p.Exec != nil && runsHealthcheck(p.Exec.Command) {
				rec.command = what + " exec " + strings.Join(p.Exec.Command, " ")
			}
		}
	}
	svcs, err := l.kube.Client.CoreV1().Services("").List(ctx, sel)
	if err != nil {
		return rec, err
	}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		rec.found = true
		for _, p := range s.Spec.Ports {
			if p.Port == matrixPort {
				rec.publicPort = "Service " + s.Name + " type LoadBalancer port 8080"
			}
		}
	}
	return rec, nil
}

func (l *matrixLab) nomadRecord(ctx context.Context) (received, error) {
	var rec received
	c, err := nomadapi.NewClient(&nomadapi.Config{Address: l.nomad.URL(), SecretID: matrixToken, Namespace: "berth", Region: "global"})
	if err != nil {
		return rec, err
	}
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	stubs, _, err := c.Jobs().PrefixList("berth-" + l.instance + "-")
	if err != nil {
		return rec, err
	}
	for _, s := range stubs {
		if s.Status == "dead" || s.Stop {
			continue
		}
		j, _, err := c.Jobs().Info(s.ID, q)
		if err != nil {
			return rec, err
		}
		if j.Meta[providers.LabelWorkload] != "web" && !strings.HasSuffix(s.ID, "-web") {
			continue
		}
		for _, g := range j.TaskGroups {
			if len(g.Tasks) == 0 {
				continue
			}
			rec.found = true
			task := g.Tasks[0]
			if r := task.Resources; r != nil {
				if r.CPU != nil {
					rec.cpuMillis = int64(*r.CPU) * 1000 / nomad.MHzPerCPU
				}
				if r.MemoryMB != nil {
					rec.memBytes = int64(*r.MemoryMB) << 20
				}
			}
			if a, ok := task.Config["args"].([]any); ok {
				for _, x := range a {
					rec.args = append(rec.args, fmt.Sprint(x))
				}
			}
			for _, svcs := range [][]*nomadapi.Service{g.Services, task.Services} {
				for _, sv := range svcs {
					for _, ch := range sv.Checks {
						switch {
						case ch.Type == "http" && ch.Path == "/healthz":
							rec.http = "service " + sv.Name + " check http /healthz"
						case ch.Type == "tcp":
							rec.tcp = "service " + sv.Name + " check tcp " + ch.PortLabel
						case ch.Type == "script" && runsHealthcheck(append([]string{ch.Command}, ch.Args...)):
							rec.command = "service " + sv.Name + " check script " + ch.Command
						}
					}
				}
			}
			for _, n := range g.Networks {
				for _, p := range n.ReservedPorts {
					if p.To == matrixPort || (p.To == 0 && p.Value == matrixPort) {
						rec.publicPort = fmt.Sprintf("static port %s %d→%d", p.Label, p.Value, p.To)
					}
				}
			}
		}
	}
	return rec, nil
}

func (l *matrixLab) marathonRecord(ctx context.Context) (received, error) {
	var rec received
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.marathon.URL()+"/v2/apps", nil)
	if err != nil {
		return rec, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rec, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return rec, err
	}
	var list struct {
		Apps []struct {
			ID           string            `json:"id"`
			Labels       map[string]string `json:"labels"`
			Args         []string          `json:"args"`
			Cpus         float64           `json:"cpus"`
			Mem          float64           `json:"mem"`
			HealthChecks []struct {
				Protocol  string `json:"protocol"`
				Path      string `json:"path"`
				PortIndex *int   `json:"portIndex"`
				Port      int    `json:"port"`
				Command   *struct {
					Value string `json:"value"`
				} `json:"command"`
			} `json:"healthChecks"`
			Container *struct {
				PortMappings []struct {
					ContainerPort int `json:"containerPort"`
					HostPort      int `json:"hostPort"`
				} `json:"portMappings"`
				Docker *struct {
					PortMappings []struct {
						ContainerPort int `json:"containerPort"`
						HostPort      int `json:"hostPort"`
					} `json:"portMappings"`
				} `json:"docker"`
			} `json:"container"`
		} `json:"apps"`
	}
	if resp.StatusCode != 200 {
		return rec, fmt.Errorf("GET /v2/apps: %s: %s", resp.Status, b)
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return rec, err
	}
	for _, a := range list.Apps {
		if a.Labels[providers.LabelInstance] != l.instance || a.Labels[providers.LabelWorkload] != "web" {
			continue
		}
		rec.found = true
		rec.args = a.Args
		rec.cpuMillis, rec.memBytes = int64(a.Cpus*1000+0.5), int64(a.Mem)<<20
		for _, h := range a.HealthChecks {
			switch {
			case (strings.HasPrefix(h.Protocol, "HTTP") || strings.HasPrefix(h.Protocol, "MESOS_HTTP")) && h.Path == "/healthz":
				rec.http = "healthChecks " + h.Protocol + " /healthz"
			case h.Protocol == "TCP" || h.Protocol == "MESOS_TCP":
				rec.tcp = "healthChecks " + h.Protocol
			case h.Protocol == "COMMAND" && h.Command != nil && strings.Contains(h.Command.Value, "healthcheck"):
				rec.command = "healthChecks COMMAND " + h.Command.Value
			}
		}
		if a.Container != nil {
			pms := a.Container.PortMappings
			if a.Container.Docker != nil {
				pms = append(pms, a.Container.Docker.PortMappings...)
			}
			for _, pm := range pms {
				if pm.ContainerPort == matrixPort && pm.HostPort != 0 {
					rec.publicPort = fmt.Sprintf("portMappings %d→%d", pm.HostPort, pm.ContainerPort)
				}
			}
		}
	}
	return rec, nil
}

func (l *matrixLab) awsConfig() aws.Config {
	return aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(l.clouds.ecs.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")}
}

func (l *matrixLab) ecsRecord(ctx context.Context) (received, error) {
	var rec received
	cfg := l.awsConfig()
	client := ecs.NewFromConfig(cfg)
	name := "berth-" + l.instance + "-" + matrixEnv + "-web"
	out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("berth-e2e"), Services: []string{name}})
	if err != nil {
		return rec, err
	}
	for _, s := range out.Services {
		if aws.ToString(s.Status) != "ACTIVE" {
			continue
		}
		rec.found = true
		td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: s.TaskDefinition})
		if err != nil {
			return rec, err
		}
		d := td.TaskDefinition
		if cpu, err := strconv.ParseInt(aws.ToString(d.Cpu), 10, 64); err == nil {
			rec.cpuMillis = cpu * 1000 / 1024
		}
		if mem, err := strconv.ParseInt(aws.ToString(d.Memory), 10, 64); err == nil {
			rec.memBytes = mem << 20
		}
		if len(d.ContainerDefinitions) > 0 {
			c := d.ContainerDefinitions[0]
			rec.args = c.Command
			if hc := c.HealthCheck; hc != nil && runsHealthcheck(hc.Command) {
				rec.command = "container healthCheck " + strings.Join(hc.Command, " ")
			}
		}
		lb := elbv2.NewFromConfig(cfg)
		for _, b := range s.LoadBalancers {
			if aws.ToInt32(b.ContainerPort) != matrixPort || b.TargetGroupArn == nil {
				continue
			}
			rec.publicPort = "service load balancer, target group " + aws.ToString(b.TargetGroupArn)
			tgs, err := lb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{*b.TargetGroupArn}})
			if err != nil {
				return rec, fmt.Errorf("elbv2: %w", err)
			}
			for _, tg := range tgs.TargetGroups {
				switch {
				case string(tg.HealthCheckProtocol) == "HTTP" && aws.ToString(tg.HealthCheckPath) == "/healthz":
					rec.http = "target group health check HTTP /healthz"
				case string(tg.HealthCheckProtocol) == "TCP":
					rec.tcp = "target group health check TCP " + aws.ToString(tg.HealthCheckPort)
				}
			}
		}
		if nc := s.NetworkConfiguration; rec.publicPort == "" && nc != nil && nc.AwsvpcConfiguration != nil &&
			nc.AwsvpcConfiguration.AssignPublicIp == "ENABLED" {
			rec.publicPort = "task public IP, port 8080"
		}
	}
	return rec, nil
}

var customMachine = regexp.MustCompile(`^(?:[a-z0-9]+-)?custom-(\d+)-(\d+)$`)

// gceMachines are the sizes of predefined machine types (vCPU thousandths, MiB), as the gcp provider knows them.
var gceMachines = map[string][2]int64{
	"e2-micro": {2000, 1024}, "e2-small": {2000, 2048}, "e2-medium": {2000, 4096},
	"e2-standard-2": {2000, 8192}, "e2-standard-4": {4000, 16384}, "e2-standard-8": {8000, 32768},
	"n1-standard-1": {1000, 3840}, "n1-standard-2": {2000, 7680}, "n2-standard-2": {2000, 8192},
}

func (l *matrixLab) gceOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(l.clouds.gce.URL()),
		option.WithAuthCredentialsFile(option.ServiceAccount, l.clouds.gceKey)}
}

func (l *matrixLab) gceRecord(ctx context.Context) (received, error) {
	var rec received
	prefix := groupPrefix(l)
	templates, err := compute.NewInstanceTemplatesRESTClient(ctx, l.gceOptions()...)
	if err != nil {
		return rec, err
	}
	defer templates.Close()
	group := ""
	for _, g := range l.clouds.gce.Groups() {
		if strings.HasPrefix(g, prefix) {
			group = g
		}
	}
	if group == "" {
		return rec, nil
	}
	rec.found = true
	// The group's current template: the newest of the workload's templates.
	var newest *computepb.InstanceTemplate
	it := templates.List(ctx, &computepb.ListInstanceTemplatesRequest{Project: l.clouds.gce.Project()})
	for {
		tpl, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return rec, err
		}
		if tpl.GetProperties().GetLabels()[strings.ReplaceAll(providers.LabelInstance, "berth.dev/", "berth-")] == "" &&
			!strings.HasPrefix(tpl.GetName(), prefix) {
			continue
		}
		if newest == nil || tpl.GetCreationTimestamp() > newest.GetCreationTimestamp() {
			newest = tpl
		}
	}
	if newest == nil {
		return rec, nil
	}
	mt := newest.GetProperties().GetMachineType()
	if m := customMachine.FindStringSubmatch(mt); m != nil {
		cpus, _ := strconv.ParseInt(m[1], 10, 64)
		mb, _ := strconv.ParseInt(m[2], 10, 64)
		rec.cpuMillis, rec.memBytes = cpus*1000, mb<<20
	} else if s, ok := gceMachines[mt]; ok {
		rec.cpuMillis, rec.memBytes = s[0], s[1]<<20
	}
	for _, it := range newest.GetProperties().GetMetadata().GetItems() {
		if it.GetKey() != "gce-container-declaration" {
			continue
		}
		if m := regexp.MustCompile(`(?m)^\s*args: (\[.*\])$`).FindStringSubmatch(it.GetValue()); m != nil {
			_ = json.Unmarshal([]byte(m[1]), &rec.args)
		}
	}
	// Health checks and the public port: the (global) health checks and the forwarding rules made for the group.
	hcs, err := compute.NewHealthChecksRESTClient(ctx, l.gceOptions()...)
	if err != nil {
		return rec, err
	}
	defer hcs.Close()
	hit := hcs.List(ctx, &computepb.ListHealthChecksRequest{Project: l.clouds.gce.Project()})
	for {
		hc, err := hit.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return rec, err
		}
		if !strings.HasPrefix(hc.GetName(), prefix) {
			continue
		}
		if h := hc.GetHttpHealthCheck(); h != nil && h.GetRequestPath() == "/healthz" && h.GetPort() == matrixPort {
			rec.http = "health check " + hc.GetName() + " HTTP /healthz"
		}
		if h := hc.GetTcpHealthCheck(); h != nil && h.GetPort() == matrixPort {
			rec.tcp = "health check " + hc.GetName() + " TCP 8080"
		}
	}
	frs, err := compute.NewForwardingRulesRESTClient(ctx, l.gceOptions()...)
	if err == nil {
		defer frs.Close()
		fit := frs.List(ctx, &computepb.ListForwardingRulesRequest{Project: l.clouds.gce.Project(), Region: l.clouds.gce.Region()})
		for {
			fr, err := fit.Next()
			if err != nil {
				break
			}
			if strings.HasPrefix(fr.GetName(), prefix) && (fr.GetPortRange() == "8080" || fr.GetPortRange() == "8080-8080" ||
				slices.Contains(fr.GetPorts(), "8080")) {
				rec.publicPort = "forwarding rule " + fr.GetName() + " " + fr.GetIPAddress() + ":8080"
			}
		}
	}
	return rec, nil
}

// groupPrefix is the name the gcp provider gives web's instance group (its templates and side objects start with
// it too).
func groupPrefix(l *matrixLab) string {
	return gcp.GroupName(l.owner, "web")
}

func (l *matrixLab) aciRecord(ctx context.Context) (received, error) {
	var rec received
	for _, g := range l.clouds.aci.Groups() {
		if g.Tags[azure.TagInstance] != l.instance || g.Tags[azure.TagWorkload] != "web" {
			continue
		}
		cg, ok := l.clouds.aci.Stored(g.Subscription, g.ResourceGroup, g.Name)
		if !ok || cg.Properties == nil {
			continue
		}
		rec.found = true
		if ip := cg.Properties.IPAddress; ip != nil && ip.Type != nil && string(*ip.Type) == "Public" {
			for _, p := range ip.Ports {
				if p.Port != nil && *p.Port == matrixPort {
					rec.publicPort = "public IP address port 8080"
				}
			}
		}
		for _, c := range cg.Properties.Containers {
			if c.Properties == nil {
				continue
			}
			rec.args = nil
			for _, s := range c.Properties.Command {
				rec.args = append(rec.args, *s)
			}
			if r := c.Properties.Resources; r != nil && r.Requests != nil {
				if r.Requests.CPU != nil {
					rec.cpuMillis = int64(*r.Requests.CPU*1000 + 0.5)
				}
				if r.Requests.MemoryInGB != nil {
					rec.memBytes = int64(*r.Requests.MemoryInGB * (1 << 30))
				}
			}
			probes := map[string]*armcontainerinstance.ContainerProbe{"readinessProbe": c.Properties.ReadinessProbe,
				"livenessProbe": c.Properties.LivenessProbe}
			for what, p := range probes {
				if p == nil {
					continue
				}
				if p.HTTPGet != nil && p.HTTPGet.Path != nil && *p.HTTPGet.Path == "/healthz" {
					rec.http = what + " httpGet /healthz"
				}
				if p.Exec != nil {
					var cmd []string
					for _, c := range p.Exec.Command {
						cmd = append(cmd, *c)
					}
					if runsHealthcheck(cmd) {
						rec.command = what + " exec " + strings.Join(cmd, " ")
					}
				}
			}
		}
		break
	}
	return rec, nil
}
