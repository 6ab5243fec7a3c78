package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
)

// staticToken is the credential for the Azure emulator, which only checks that a bearer token is present.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "emulator-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// clouds are the emulated clouds of one test and a provider factory that points the real SDKs at them.
type clouds struct {
	ecs *ecsemu.Server
	aci *aciemu.Server
	gce *computeemu.Server
	// gceKey is a service-account key file the GCE emulator issues tokens for: the SDK authenticates for real.
	gceKey string
}

func startClouds(t *testing.T) *clouds {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_ECS": "",
	} {
		t.Setenv(k, v)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	c := &clouds{
		ecs: ecsemu.New(ecsemu.Options{Region: "eu-west-1", Clusters: []string{"berth-e2e"}}),
		aci: aciemu.New(aciemu.Options{}),
		gce: computeemu.New(computeemu.Options{}),
	}
	t.Cleanup(c.ecs.Close)
	t.Cleanup(c.aci.Close)
	t.Cleanup(c.gce.Close)
	key, err := c.gce.ServiceAccountKey("berth@berth-e2e.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	c.gceKey = filepath.Join(t.TempDir(), "gce-key.json")
	if err := os.WriteFile(c.gceKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// targets is the CUE of the emulated targets.
func (c *clouds) targets() string {
	return fmt.Sprintf(`targets: {
	local: {type: "docker", publicAddress: "127.0.0.1"}
	aws: {type: "aws", region: "eu-west-1", cluster: "berth-e2e", subnets: ["subnet-0e2e"], endpoint: %q}
	azure: {type: "azure", subscriptionId: "00000000-0000-0000-0000-0000000000e2", resourceGroup: "berth-e2e",
		location: "westeurope", endpoint: %q}
	gcp: {type: "gcp", project: %q, region: %q, endpoint: %q, credentialsFile: %q}
}
`, c.ecs.URL(), c.aci.URL(), c.gce.Project(), c.gce.Region(), c.gce.URL(), c.gceKey)
}

// factory builds providers as the controller does, with the clouds' SDK clients on the emulators and short polls.
func (c *clouds) factory(t schema.Target, o providers.Options) (providers.Provider, error) {
	switch t.Type {
	case "aws":
		p, err := providers.New(t, o)
		if err != nil {
			return nil, err
		}
		ap := p.(*berthaws.Provider)
		ap.PollInterval, ap.RetryBase, ap.RetryMax = 5*time.Millisecond, time.Millisecond, 20*time.Millisecond
		return ap, nil
	case "azure":
		p, err := azure.NewWithCredential(t, o, staticToken{}, &arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Transport: c.aci.Client(),
			Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}})
		if err != nil {
			return nil, err
		}
		p.PollInterval = 5 * time.Millisecond
		p.RetryBase, p.RetryMax = time.Millisecond, 20*time.Millisecond
		return p, nil
	case "gcp":
		p, err := providers.New(t, o)
		if err != nil {
			return nil, err
		}
		gp := p.(*gcp.Provider)
		gp.PollInterval, gp.RetryBase, gp.RetryMax = 5*time.Millisecond, time.Millisecond, 20*time.Millisecond
		return gp, nil
	}
	return providers.New(t, o)
}

// cloudWorkload is a worker that every cloud can run: an explicit command (ACI replaces the entrypoint), no ports,
// no health check kind a cloud lacks (so its moves must be allowed), and no resource limits (GCE sizes by machine
// type; the others default).
func cloudWorkload(name, provider, tag string) string {
	return fmt.Sprintf(`workloads: %s: {
	image: %q
	command: ["/app"]
	args: ["work"]
	provider: %q
	replicas: 2
	env: TAG: %q
	migration: allowUnsafe: true // no health check: moved as soon as the new copy runs
}
`, name, exampleImage, provider, tag)
}

// observed reports how many ready replicas of workload each target shows, through providers of its own.
func observed(t *testing.T, c *clouds, cfg map[string]schema.Target, instance, workload string) map[string]int {
	out := map[string]int{}
	for name, tgt := range cfg {
		p, err := c.factory(tgt, providers.Options{Instance: instance})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		obs, err := p.List(ctx, providers.Owner{Instance: instance, Environment: "production"}, name)
		cancel()
		if cl, ok := p.(providers.Closer); ok {
			cl.Close()
		}
		if err != nil {
			out[name] = -1
			continue
		}
		for _, o := range obs {
			if o.Workload != workload {
				continue
			}
			for _, r := range o.Replicas {
				if r.Ready() {
					out[name]++
				}
			}
		}
	}
	return out
}

// The controller deploys one repository with a workload on each emulated cloud and one on Docker; changing a
// workload's provider from aws to gcp creates it there, waits until it is ready, then removes it from AWS: at
// every moment at least one ready copy exists.
func TestCloudsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine and the cloud emulators")
	}
	eng := newEngine(t)
	instance := fmt.Sprintf("cl%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })
	c := startClouds(t)
	repo := newGitRepo(t)
	hostPort := freePort(t)
	write := func(apiProvider string) {
		repo.write(map[string]string{"berth.cue": c.targets() + `environments: production: {branch: "main"}
` + fmt.Sprintf(`workloads: web: {
	image: %q
	args: ["serve"]
	provider: "local"
	ports: [{port: 8080, public: true, hostPort: %s}]
	health: http: {path: "/healthz", port: 8080}
}
`, exampleImage, hostPort) + cloudWorkload("api", apiProvider, "1") + cloudWorkload("jobs", "azure", "1") +
			cloudWorkload("batch", "gcp", "1")})
	}
	write("aws")
	repo.commit("everywhere")

	src, err := repos.Open(context.Background(), repo.url(), repos.Options{Branch: "main", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	engine, err := reconciler.NewEngine(reconciler.Options{Instance: instance, Providers: c.factory, Background: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	ctrl, err := reconciler.NewController(reconciler.ControllerOptions{Source: src, Engine: engine,
		Interval: 300 * time.Millisecond, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	cfg, err := schema.Load(repo.dir)
	if err != nil {
		t.Fatal(err)
	}
	cloudTargets := map[string]schema.Target{"aws": cfg.Targets["aws"], "azure": cfg.Targets["azure"], "gcp": cfg.Targets["gcp"]}
	waitFor(t, settle, "every workload ready on its target", func() (bool, string) {
		// Lists lag on purpose in the emulators: a miss here is retried by waitFor.
		st := ctrl.Status()
		e := envOf(&st, "production")
		if e == nil || e.Phase != reconciler.PhaseReady {
			return false, fmt.Sprintf("%+v", e)
		}
		api := observed(t, c, cloudTargets, instance, "api")
		jobs := observed(t, c, cloudTargets, instance, "jobs")
		batch := observed(t, c, cloudTargets, instance, "batch")
		_, err := get("http://127.0.0.1:" + hostPort + "/")
		return api["aws"] == 2 && jobs["azure"] == 2 && batch["gcp"] == 2 && err == nil,
			fmt.Sprintf("api %v, jobs %v, batch %v, web %v", api, jobs, batch, err)
	})

	// Move api from AWS to GCP, watching both clouds throughout through the emulators' own state (their list APIs
	// are eventually consistent on purpose, as the clouds' are).
	ecsService := "berth-" + instance + "-production-api"
	gceGroup := gcp.GroupName(providers.Owner{Instance: instance, Environment: "production"}, "api")
	var mu sync.Mutex
	var gaps []string
	looks := 0
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, onAWS := c.ecs.ServiceRunning("berth-e2e", ecsService)
			onGCP := c.gce.RunningInstances(gceGroup)
			mu.Lock()
			looks++
			mu.Unlock()
			if onAWS < 1 && onGCP < 1 {
				mu.Lock()
				gaps = append(gaps, fmt.Sprintf("aws %d, gcp %d", onAWS, onGCP))
				mu.Unlock()
			}
		}
	}()
	write("gcp")
	rev := repo.commit("move api to gcp")
	waitFor(t, settle, "api on gcp only", func() (bool, string) {
		st := ctrl.Status()
		got := observed(t, c, cloudTargets, instance, "api")
		return applied(&st, "production") == rev && got["gcp"] == 2 && got["aws"] == 0, fmt.Sprint(got)
	})
	close(stop)
	<-watched
	if looks < 10 {
		t.Fatalf("the watcher looked only %d times during the move", looks)
	}
	if len(gaps) > 0 {
		t.Fatalf("during the move no ready copy of api existed %d times: %v", len(gaps), gaps[0])
	}
	st := ctrl.Status()
	if e := envOf(&st, "production"); e.LastApply == nil || !strings.Contains(fmt.Sprint(stepKeys(lastApplySteps(&st, "production"))), "migrate api on gcp") {
		t.Fatalf("the move was not a migrate step: %v", stepKeys(lastApplySteps(&st, "production")))
	}
	if ecsActive, _ := c.ecs.ServiceRunning("berth-e2e", ecsService); ecsActive {
		t.Fatal("the ECS service is still active after the move")
	}
}
