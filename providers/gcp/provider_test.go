package gcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var owner = providers.Owner{Instance: "main", Environment: "prod"}

func desired(w schema.Workload) providers.Desired {
	return providers.Desired{Owner: owner, Target: "gce", Workload: w, SpecHash: providers.SpecHash(w)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

var (
	opRE          = regexp.MustCompile(`operation-\d+-[0-9a-f]+`)
	fingerprintRE = regexp.MustCompile(`"fingerprint": "[^"]*"`)
)

// normalise renders the request log: one entry per request (consecutive identical polls collapsed), JSON bodies
// with sorted keys, operation names and the requestId value replaced.
func normalise(reqs []computeemu.Request) string {
	var b strings.Builder
	last := ""
	for _, r := range reqs {
		line := r.Method + " " + opRE.ReplaceAllString(r.Path, "operation-N")
		if r.Query != "" {
			line += "?" + r.Query
		}
		if r.RequestID != "" {
			line += " requestId=<uuid>"
		}
		entry := line + "\n"
		if len(r.Body) > 0 {
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				entry += string(r.Body) + "\n"
			} else {
				out, _ := json.MarshalIndent(v, "", "  ")
				entry += fingerprintRE.ReplaceAllString(string(out), `"fingerprint": "<fingerprint>"`) + "\n"
			}
		}
		if entry == last {
			continue
		}
		last = entry
		b.WriteString(entry)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Errorf("requests differ from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestGoldenCreate records what berth asks of Compute Engine to create the reference workload.
func TestGoldenCreate(t *testing.T) {
	emu, target := emulated(t)
	p := newProvider(t, target)
	w := referenceWorkload("web")
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	golden(t, "create", normalise(emu.Requests()))

	emu.ResetRequests()
	w.Env = map[string]string{"GREETING": "bonjour", "PORT": "8080"}
	w.Replicas = 3
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	golden(t, "update", normalise(emu.Requests()))

	emu.ResetRequests()
	if err := p.Delete(ctx(t), owner, "gce", "web"); err != nil {
		t.Fatal(err)
	}
	golden(t, "delete", normalise(emu.Requests()))
	if g, ts := emu.Groups(), emu.Templates(); len(g)+len(ts) != 0 {
		t.Errorf("left behind: groups %v, templates %v", g, ts)
	}
}

// TestMakeBeforeBreak checks that a rollout never has fewer RUNNING instances than replicas, and surges by one.
func TestMakeBeforeBreak(t *testing.T) {
	var mu sync.Mutex
	watching := false
	low, high := 1<<30, 0
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true, OnStep: func(_ string, running, _ int) {
		mu.Lock()
		defer mu.Unlock()
		if watching {
			low, high = min(low, running), max(high, running)
		}
	}})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	w.Replicas = 3
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	watching = true
	mu.Unlock()
	w.Image = "europe-docker.pkg.dev/berth/app:2"
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	watching = false
	mu.Unlock()
	if low < 3 || high > 3+computeemu.Zones {
		t.Errorf("during the rollout RUNNING instances went from %d to %d, want within [3, %d]", low, high, 3+computeemu.Zones)
	}
	obs, err := p.List(ctx(t), owner, "gce")
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) == 1 && obs[0].SpecHash != providers.SpecHash(w) {
		t.Errorf("after the rollout: %+v", obs[0])
	}
	if ts := emu.Templates(); len(ts) != 1 || ts[0] != gcp.TemplateName(owner, "web", providers.SpecHash(w)) {
		t.Errorf("old templates not pruned: %v", ts)
	}
}

func anonymous(t testing.TB, emu *computeemu.Server, settings ...string) *gcp.Provider {
	t.Helper()
	s := map[string]any{"project": emu.Project(), "region": emu.Region(), "endpoint": emu.URL()}
	for i := 0; i+1 < len(settings); i += 2 {
		s[settings[i]] = settings[i+1]
	}
	p, err := gcp.NewWithClientOptions(schema.Target{Name: "gce", Type: "gcp", Settings: s}, providers.Options{}, option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval, p.RetryBase, p.RetryMax = time.Millisecond, time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { p.Close() })
	return p
}

// TestTransientFaultsRetried: throttling (429 and 403 rateLimitExceeded), 503, 409 and slow operations are
// retried inside one Apply.
func TestTransientFaultsRetried(t *testing.T) {
	for _, kind := range []string{computeemu.FaultThrottle, computeemu.FaultQuota, computeemu.FaultServer, computeemu.FaultConflict, computeemu.FaultSlow} {
		t.Run(kind, func(t *testing.T) {
			emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
			t.Cleanup(emu.Close)
			p := anonymous(t, emu)
			emu.Fail(4, kind)
			if err := p.Apply(ctx(t), desired(referenceWorkload("web"))); err != nil {
				t.Fatalf("Apply with %d %s faults: %v", 4, kind, err)
			}
			if kind == computeemu.FaultSlow {
				return
			}
			// The first read (of the health check) failed four times and was retried: five identical requests.
			reqs := emu.Requests()
			failed := 0
			for _, r := range reqs[:5] {
				if r.Method == http.MethodGet && r.Path == reqs[0].Path && strings.Contains(r.Path, "/healthChecks/") {
					failed++
				}
			}
			if failed != 5 {
				t.Errorf("the first 4 requests were not retries of the health check read: %s", normalise(reqs[:5]))
			}
		})
	}
}

// TestRetryBudget: an endless transient failure gives up after RetryAttempts, not permanent.
func TestRetryBudget(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	p.RetryAttempts = 3
	emu.Fail(100, computeemu.FaultServer)
	err := p.Apply(ctx(t), desired(referenceWorkload("web")))
	if err == nil || errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "still failing after 3 tries") {
		t.Fatalf("Apply = %v, want a transient error after 3 attempts", err)
	}
	if n := len(emu.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestPermanentErrors: invalid requests are not retried and come back as providers.Permanent.
func TestPermanentErrors(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)

	p := anonymous(t, emu, "machineType", "e2-giant")
	err := p.Apply(ctx(t), desired(referenceWorkload("web")))
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "machineType") {
		t.Fatalf("Apply with a bad machine type = %v, want a permanent error naming machineType", err)
	}
	inserts := 0
	for _, r := range emu.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/instanceTemplates") {
			inserts++
		}
	}
	if inserts != 1 {
		t.Errorf("%d inserts, want 1 (no retry of an invalid request)", inserts)
	}

	w := referenceWorkload("noimage")
	w.Image = ""
	if err := anonymous(t, emu).Apply(ctx(t), desired(w)); !errors.Is(err, providers.ErrPermanent) {
		t.Errorf("Apply without image = %v, want permanent", err)
	}

	// An access token is required: without one the emulator answers 401, which retrying does not fix.
	strict := computeemu.New(computeemu.Options{})
	t.Cleanup(strict.Close)
	if err := anonymous(t, strict).Apply(ctx(t), desired(referenceWorkload("web"))); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "401") {
		t.Errorf("Apply without credentials = %v, want a permanent 401", err)
	}
}

// TestRejectedCredentials: a key the token endpoint refuses is a permanent error, found without a retry loop.
func TestRejectedCredentials(t *testing.T) {
	emu, target := emulated(t)
	path := target.Settings["credentialsFile"].(string)
	key, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(key, []byte("berth@berth-test"), []byte("intruder@berth-test"), 1)
	if err := os.WriteFile(path, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	err = newProvider(t, target).Apply(ctx(t), desired(referenceWorkload("web")))
	if !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("Apply with a refused key = %v, want permanent", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatal("the error shows the key")
	}
	if n := len(emu.Requests()); n != 0 {
		t.Errorf("%d API requests reached the emulator without a token", n)
	}
}

// TestNotOurs: a group with berth's name but no marker is neither adopted nor deleted.
func TestNotOurs(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	name := gcp.GroupName(owner, "web")
	emu.CreateUnowned(name, 1)
	if err := p.Apply(ctx(t), desired(referenceWorkload("web"))); !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "not berth's") {
		t.Fatalf("Apply over a foreign group = %v", err)
	}
	if err := p.Delete(ctx(t), owner, "gce", "web"); err != nil {
		t.Fatal(err)
	}
	if !emu.GroupExists(name) {
		t.Fatal("Delete removed a foreign group")
	}
	obs, err := p.List(ctx(t), owner, "gce")
	if err != nil || len(obs) != 0 {
		t.Fatalf("List = %v, %v; want nothing", obs, err)
	}
}

// TestEventualConsistency: a just-created group is missing from the first List, as GCE's lists can lag.
func TestEventualConsistency(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	p := anonymous(t, emu)
	w := referenceWorkload("web")
	if err := p.Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{0, 1} {
		obs, err := p.List(ctx(t), owner, "gce")
		if err != nil || len(obs) != want {
			t.Fatalf("List %d: %d workloads (%v), want %d", i, len(obs), err, want)
		}
	}
}

// TestRequestIDs checks the emulator's requestId handling on the wire: a replay returns the same operation and
// creates nothing more; the same id with another request is refused.
func TestRequestIDs(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	url := fmt.Sprintf("%s/compute/v1/projects/%s/global/instanceTemplates?requestId=6d1f3b1e-0000-5000-8000-000000000001", emu.URL(), emu.Project())
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	body := `{"name":"t1","properties":{"machineType":"e2-small","disks":[{"boot":true,"initializeParams":{"sourceImage":"projects/cos-cloud/global/images/family/cos-stable"}}],"networkInterfaces":[{"network":"global/networks/default"}]}}`
	c1, op1 := post(body)
	c2, op2 := post(body)
	if c1 != 200 || c2 != 200 || op1["name"] != op2["name"] {
		t.Fatalf("replay: %d %v, then %d %v", c1, op1["name"], c2, op2["name"])
	}
	c3, e3 := post(strings.Replace(body, "e2-small", "e2-medium", 1))
	if c3 != 400 || !strings.Contains(fmt.Sprint(e3["error"]), "requestId") {
		t.Fatalf("same id, other request: %d %v", c3, e3)
	}
	emu.Step(5)
	if ts := emu.Templates(); len(ts) != 1 {
		t.Fatalf("templates %v, want one", ts)
	}
	resp, err := http.Post(strings.Replace(url, "0001", "0002", 1), "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Errorf("insert of an existing template: %d, want 409", resp.StatusCode)
	}
}

// TestCrashReplaysRequestID: berth dies after sending the group insert; the restarted provider sends the same
// requestId, the API returns the same operation, and one group results.
func TestCrashReplaysRequestID(t *testing.T) {
	emu := computeemu.New(computeemu.Options{AllowAnonymous: true})
	t.Cleanup(emu.Close)
	w := referenceWorkload("web")
	groupInserts := func() []computeemu.Request {
		var out []computeemu.Request
		for _, r := range emu.Requests() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/instanceGroupManagers") {
				out = append(out, r)
			}
		}
		return out
	}
	first := anonymous(t, emu)
	c, cancel := context.WithCancel(ctx(t))
	done := make(chan error, 1)
	go func() { done <- first.Apply(c, desired(w)) }()
	deadline := time.Now().Add(60 * time.Second)
	for len(groupInserts()) == 0 && time.Now().Before(deadline) {
		emu.Fail(1, computeemu.FaultSlow) // keep operations running while we wait for the insert
		<-time.After(time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Log("the first Apply finished before the cancel")
	}
	if err := anonymous(t, emu).Apply(ctx(t), desired(w)); err != nil {
		t.Fatal(err)
	}
	ins := groupInserts()
	t.Logf("%d group inserts, one group", len(ins))
	if len(ins) == 0 || len(emu.Groups()) != 1 {
		t.Fatalf("inserts %d, groups %v", len(ins), emu.Groups())
	}
	for _, r := range ins[1:] {
		if r.RequestID != ins[0].RequestID {
			t.Errorf("the restarted provider sent requestId %s, the first %s", r.RequestID, ins[0].RequestID)
		}
	}
}
