package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/reconciler/preview"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

const benchHookSecret = "preview-bench-hook-secret"

// BenchmarkPreview measures, through the berth binary (Docker and the ECS emulator as runtimes, the GitHub emulator
// as forge), the time from a pull request opened with the preview label (its CI already green) to its preview URL
// answering with the head's greeting: with a webhook (a signed pull_request event; the forge polled every 5m) and
// with polling only (every 1s); "docker+ecs" has staging's second workload on the ECS emulator (the preview is ready
// once both are: the AWS provider polls ECS every 5s, as it does in production), "docker" has web alone. It reports the median and p95 over b.N, and the forge requests of an idle poll (a
// pass that finds nothing new, one preview running): all of them, and those counted against the rate limit. Run:
//
//	go test ./cmd/berth -run '^$' -bench BenchmarkPreview -benchtime 5x
func BenchmarkPreview(b *testing.B) {
	type mode struct {
		name     string
		interval string
		hook     bool
		cloud    bool
	}
	var modes []mode
	for _, rt := range []struct {
		name  string
		cloud bool
	}{{"docker", false}, {"docker+ecs", true}} {
		modes = append(modes, mode{rt.name + "/webhook", "5m", true, rt.cloud}, mode{rt.name + "/polling", "1s", false, rt.cloud})
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			w := newPreviewWorld(b, mode.interval, mode.hook, mode.cloud)
			waitFor(b, settle, "staging applied", func() (bool, string) {
				st, err := w.ctrl.status()
				if err != nil {
					return false, err.Error()
				}
				return applied(st, "staging") != "", envError(st, "staging")
			})
			if mode.hook { // the first pass runs at start; later ones only on a webhook (or 5m later)
				waitPass(b, w, time.Time{})
			}
			var took []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				greeting := fmt.Sprintf("bench-%d", i)
				sha := w.headCommit(fmt.Sprintf("bench%d", i), previewSpec{greeting: greeting, prodGreeting: "prod"}, 0)
				w.setCI(sha, forge.StatusSuccess)
				b.StartTimer()
				start := time.Now()
				n := w.emu.Open(githubemu.PR{Title: greeting, Author: fmt.Sprintf("dev%d", i), HeadRef: "bench", HeadSHA: sha,
					BaseRef: "main", Labels: []string{previewLabel}})
				w.pullRef(n, sha)
				if mode.hook {
					w.hook("opened", n)
				}
				waitTight(b, "the preview URL answers", func() (bool, string) {
					p, what := w.previewOf(n)
					if len(p.URLs) == 0 {
						return false, what
					}
					body, err := getHost(p.URLs[0])
					return err == nil && strings.Contains(body, greeting+" from"), fmt.Sprint(what, body, err)
				})
				took = append(took, time.Since(start))
				b.StopTimer()
				if i == b.N-1 && !mode.hook {
					idlePoll(b, w)
				}
				w.emu.ClosePR(n)
				if mode.hook {
					w.hook("closed", n)
				}
				waitFor(b, settle, "the preview gone", func() (bool, string) {
					p, what := w.previewOf(n)
					return p.State == preview.StateGone, what
				})
				b.StartTimer()
			}
			b.StopTimer()
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "ms-median")
			b.ReportMetric(float64(took[(len(took)*95+99)/100-1].Milliseconds()), "ms-p95")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// waitTight is waitFor with a 10ms tick: the figures' resolution (waitFor looks every 100ms).
func waitTight(b testing.TB, desc string, cond func() (bool, string)) {
	b.Helper()
	deadline := time.Now().Add(settle)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, what := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %s waiting for %s; last: %s", settle, desc, what)
		}
		<-tick.C
	}
}

// idlePoll reports the forge requests per pass while nothing changes (one preview ready, nothing new).
func idlePoll(b *testing.B, w *previewWorld) {
	b.Helper()
	last := waitPass(b, w, time.Time{}) // a pass after the preview became ready: what follows is idle
	last = waitPass(b, w, last)
	all0, counted0 := w.emu.Requests()
	const passes = 5
	for range passes {
		last = waitPass(b, w, last)
	}
	all1, counted1 := w.emu.Requests()
	b.ReportMetric(float64(all1-all0)/passes, "forge-req/idle-poll")
	b.ReportMetric(float64(counted1-counted0)/passes, "forge-quota/idle-poll")
}

// waitPass waits for a preview pass that ended after since (CheckedAt moves) and returns its time.
func waitPass(b testing.TB, w *previewWorld, since time.Time) time.Time {
	b.Helper()
	var at time.Time
	waitFor(b, settle, "a preview pass", func() (bool, string) {
		all, err := w.previews()
		if err != nil {
			return false, err.Error()
		}
		at = all.Sources[0].CheckedAt
		return at.After(since), at.String()
	})
	return at
}

// hook posts a signed GitHub pull_request event to the source's webhook, as GitHub does.
func (w *previewWorld) hook(action string, n int) {
	w.t.Helper()
	body := fmt.Sprintf(`{"action":%q,"number":%d,"pull_request":{"number":%d},"repository":{"full_name":%q}}`,
		action, n, n, previewRepo)
	mac := hmac.New(sha256.New, []byte(benchHookSecret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, w.ctrl.api+"/hooks/shop", bytes.NewBufferString(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d-%s", n, action))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.t.Fatalf("webhook: %s", resp.Status)
	}
}
