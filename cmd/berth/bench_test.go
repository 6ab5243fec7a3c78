package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkCommitToRunning measures, for the quickstart's web workload (2 replicas, HTTP health check), the time
// from a change landing in the source to the first answer of the new version on the public address ("serving"), and
// to every replica running the new version ("rolled"). Run with:
//
//	go test ./cmd/berth -run '^$' -bench CommitToRunning -benchtime 5x
//
// The directory source is watched (fsnotify, debounced); the Git source (file://) is polled every 1 s.
func BenchmarkCommitToRunning(b *testing.B) {
	for _, kind := range []string{"dir", "git"} {
		b.Run(kind, func(b *testing.B) {
			eng := newEngine(b)
			instance := fmt.Sprintf("bench%d", time.Now().UnixNano()%1_000_000_000)
			b.Cleanup(func() { eng.cleanup(instance) })
			hostPort := freePort(b)
			spec := repoSpec{hostPort: hostPort, replicas: 2, greeting: "start", web: true}
			repo := newGitRepo(b)
			write := func() string {
				repo.write(map[string]string{"berth.cue": spec.cue()})
				if kind == "git" {
					return repo.commit(spec.greeting)
				}
				return ""
			}
			write()
			location := repo.dir
			if kind == "git" {
				location = repo.url()
			} else {
				// A plain directory: no .git inside, so the revision is the content hash.
				plain := filepath.Join(b.TempDir(), "repo")
				if err := os.Mkdir(plain, 0o755); err != nil {
					b.Fatal(err)
				}
				repo.dir = plain
				write()
				location = plain
			}
			startController(b, instance, location, b.TempDir(), "--interval", "1s")
			public := "http://127.0.0.1:" + hostPort + "/"
			waitServing := func(greeting string) {
				waitFor(b, settle, "serving "+greeting, func() (bool, string) {
					body, err := get(public)
					return err == nil && strings.Contains(body, greeting+" from"), body
				})
			}
			waitServing("start")
			var serving, rolled []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				spec.greeting = fmt.Sprintf("g%d", i)
				t0 := time.Now()
				write()
				waitServing(spec.greeting)
				serving = append(serving, time.Since(t0))
				// Exactly two running containers of one spec, which serves the new greeting: the roll is done.
				waitRunning(b, eng, instance, "web", 2)
				rolled = append(rolled, time.Since(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(median(serving).Milliseconds()), "ms-to-serving(median)")
			b.ReportMetric(float64(median(rolled).Milliseconds()), "ms-to-rolled(median)")
		})
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkWebhookToApply measures the time from a signed GitHub webhook for a pushed commit to the controller
// starting to apply it (the environment's attempted revision becomes the commit), with polling effectively off
// (interval 1h), so only the webhook makes the source look. Reports the median and p95. Run with:
//
//	go test ./cmd/berth -run '^$' -bench WebhookToApply -benchtime 20x
func BenchmarkWebhookToApply(b *testing.B) {
	eng := newEngine(b)
	instance := fmt.Sprintf("hook%d", time.Now().UnixNano()%1_000_000_000)
	b.Cleanup(func() { eng.cleanup(instance) })
	dir := b.TempDir()
	secret := []byte("bench-secret")
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), secret, 0o600); err != nil {
		b.Fatal(err)
	}
	repo := newGitRepo(b)
	workerRepo(repo, "production", "w", "0")
	repo.commit("0")
	config := filepath.Join(dir, "serve.cue")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`sources: app: {url: %q, interval: "1h"
	webhook: {kind: "github", secret: {file: "hook.secret"}, rate: 1000, burst: 1000}}
`, repo.url())), 0o644); err != nil {
		b.Fatal(err)
	}
	c := startController(b, instance, "", b.TempDir(), "--config", config)
	attemptedRev := func() string {
		st, err := c.sourceStatus("app")
		if err != nil {
			return ""
		}
		return attempted(st, "production")
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		workerRepo(repo, "production", "w", fmt.Sprint(i+1))
		rev := repo.commit(fmt.Sprint(i + 1))
		t0 := time.Now()
		if code := postHook(b, c.api, "app", body, githubSignature(secret, body)); code != http.StatusAccepted {
			b.Fatalf("webhook answered %d", code)
		}
		for attemptedRev() != rev {
			if time.Since(t0) > settle {
				b.Fatalf("revision %s not attempted after %s", rev, settle)
			}
			time.Sleep(2 * time.Millisecond) // polling the status API: the resolution of the measure
		}
		lat = append(lat, time.Since(t0))
		waitFor(b, settle, "applied", func() (bool, string) {
			st, err := c.sourceStatus("app")
			return err == nil && applied(st, "production") == rev, ""
		})
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(median(lat).Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(lat[(len(lat)*95)/100].Microseconds())/1000, "ms-p95")
}
