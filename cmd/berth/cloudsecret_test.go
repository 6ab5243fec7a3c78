package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/keyvaultemu"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
)

// The canary test for a cloud secret: a Key Vault secret that berth itself resolves at apply (the Azure provider
// reads it with the target's credential and hands it to ACI as a secureValue) is a value that passes through
// berth. With the real SDKs on the emulators and the controller in this process, the outputs are searched RAW,
// before any redaction: the controller's debug log, the status as JSON, the plan as text and JSON, and every byte of
// the state store. The value must not even reach them (redaction is the second line, tested through the binary in
// TestCanaryEndToEnd). The emulator's own view of the container group proves the value was delivered.
func TestCloudSecretCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the cloud emulators")
	}
	const canary = "canary-keyvault-value-a87ff679a2f3e71d"
	c := startClouds(t)
	kv := keyvaultemu.New(keyvaultemu.Options{})
	t.Cleanup(kv.Close)
	kv.SetSecret("berthkv", "greeting", canary)
	instance := fmt.Sprintf("cs%d", time.Now().UnixNano()%1_000_000_000)

	repo := newGitRepo(t)
	repo.write(map[string]string{"berth.cue": c.targets() + `environments: production: {branch: "main"}
secrets: greeting: {azure: {vault: "berthkv", name: "greeting"}}
workloads: jobs: {
	image: "` + exampleImage + `"
	command: ["/app"]
	args: ["work"]
	provider: "azure"
	replicas: 1
	env: GREETING: secret: "greeting"
}
`})
	repo.commit("a Key Vault secret on ACI")

	factory := func(tg schema.Target, o providers.Options) (providers.Provider, error) {
		if tg.Type != "azure" {
			return c.factory(tg, o)
		}
		p, err := azure.NewWithCredential(tg, o, staticToken{}, &arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Transport: c.aci.Client(),
			Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}})
		if err != nil {
			return nil, err
		}
		p.PollInterval, p.RetryBase, p.RetryMax = 5*time.Millisecond, time.Millisecond, 20*time.Millisecond
		p.KeyVault = &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: kv.Client()}}
		return p, nil
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})) // raw: no redaction
	dataDir := t.TempDir()
	store, err := reconciler.OpenStore(filepath.Join(dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := repos.Open(context.Background(), repo.url(), repos.Options{Branch: "main", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	engine, err := reconciler.NewEngine(reconciler.Options{Instance: instance, Providers: factory, Logger: log, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := reconciler.NewController(reconciler.ControllerOptions{Source: src, Engine: engine, Logger: log,
		Store: store, Interval: 300 * time.Millisecond, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			engine.Close()
			store.Close()
		}
	}
	t.Cleanup(stop)

	cfg, err := schema.Load(repo.dir)
	if err != nil {
		t.Fatal(err)
	}
	group := ""
	waitFor(t, settle, "the group runs with the Key Vault value", func() (bool, string) {
		st := ctrl.Status()
		if e := envOf(&st, "production"); e == nil || e.Phase != reconciler.PhaseReady {
			return false, fmt.Sprintf("%+v", e)
		}
		for _, gi := range c.aci.Groups() {
			n := gi.Name
			g, ok := c.aci.Stored(gi.Subscription, gi.ResourceGroup, n)
			if !ok {
				continue
			}
			for _, ct := range g.Properties.Containers {
				for _, ev := range ct.Properties.EnvironmentVariables {
					if ev.Name != nil && *ev.Name == "GREETING" && ev.SecureValue != nil && *ev.SecureValue == canary && ev.Value == nil {
						group = n
						return true, ""
					}
				}
			}
		}
		return false, "no group holds the secure value yet"
	})
	t.Logf("container group %s got the Key Vault value as a secureValue", group)

	plan, err := engine.Plan(context.Background(), cfg, "production", "check")
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() {
		t.Errorf("the plan after the apply is not empty:\n%s", plan)
	}
	planJSON, _ := json.Marshal(plan)
	status, _ := json.Marshal(ctrl.Status())
	p, _ := factory(cfg.Targets["azure"], providers.Options{Instance: instance})
	obs, err := p.List(context.Background(), providers.Owner{Instance: instance, Environment: "production"}, "azure")
	if err != nil {
		t.Fatal(err)
	}
	observed, _ := json.Marshal(obs)
	stop()
	stored, err := os.ReadFile(filepath.Join(dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(stored, []byte(`"revision"`)) && !bytes.Contains(stored, []byte("production")) {
		t.Fatalf("the state store holds no record: the search proves nothing there")
	}
	forms := []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)), base64.RawURLEncoding.EncodeToString([]byte(canary)),
		url.QueryEscape(canary), hex.EncodeToString([]byte(canary))}
	for where, text := range map[string][]byte{"the debug log": []byte(logs.String()), "the status": status,
		"the plan (JSON)": planJSON, "the plan (text)": []byte(plan.String()), "the read-back": observed, "the state store": stored} {
		for _, f := range forms {
			if strings.Contains(string(text), f) {
				t.Errorf("%s holds the Key Vault value (%q)", where, f)
			}
		}
	}
}
