package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler"
)

const settle = 120 * time.Second // generous: 2 loaded cores, image starts, health checks

// stepKey is what must match between `berth plan` and what the controller then applies.
func stepKeys(steps []reconciler.Step) []string {
	var ks []string
	for _, s := range steps {
		var cs []string
		for _, c := range s.Changes {
			cs = append(cs, c.Path+":"+c.Old+"->"+c.New)
		}
		ks = append(ks, fmt.Sprintf("%s %s on %s [%s]", s.Action, s.Workload, s.Target, strings.Join(cs, ", ")))
	}
	return ks
}

// planCLI runs `berth plan -o json` on the working tree of the repository, as a user would before pushing.
func planCLI(t testing.TB, instance, dir string) []reconciler.Step {
	t.Helper()
	cmd := exec.Command(binary(t), "plan", dir, "--env", "production", "-o", "json", "--instance", instance)
	cmd.Env = hermeticEnv(t)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("berth plan: %v\n%s", err, stderr)
	}
	var plans []reconciler.Plan
	if err := json.Unmarshal(out, &plans); err != nil {
		t.Fatalf("berth plan -o json does not parse: %v\n%s", err, out)
	}
	if len(plans) != 1 {
		t.Fatalf("want one plan, got %d", len(plans))
	}
	return plans[0].Steps
}

func TestControllerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine")
	}
	top := t // the controller outlives the subtests that restart it
	eng := newEngine(t)
	instance := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { eng.cleanup(instance) })
	repo := newGitRepo(t)
	hostPort := freePort(t)
	public := "http://127.0.0.1:" + hostPort + "/"
	spec := repoSpec{hostPort: hostPort, replicas: 1, greeting: "v1", web: true, worker: true}
	dataDir := t.TempDir()

	// commitPlanned plans the working tree with the CLI, commits it, waits for the controller to apply that
	// revision, and checks that the controller carried out exactly the planned steps.
	var ctrl *controller
	commitPlanned := func(msg string) string {
		t.Helper()
		planned := stepKeys(planCLI(t, instance, repo.dir))
		rev := repo.commit(msg)
		st := waitApplied(t, ctrl, rev)
		if e := envOf(st, "production"); len(planned) > 0 && (e.LastApply == nil || e.LastApply.Revision != rev) {
			t.Fatalf("the controller's last apply is not of %s: %+v", rev, e.LastApply)
		}
		if got := stepKeys(lastApplySteps(st, "production")); strings.Join(got, "\n") != strings.Join(planned, "\n") {
			t.Fatalf("controller applied\n  %s\nbut berth plan showed\n  %s", strings.Join(got, "\n  "), strings.Join(planned, "\n  "))
		}
		return rev
	}

	// 1. Two workloads start; the HTTP one answers on its public address.
	empty := spec
	empty.web, empty.worker = false, false
	repo.write(map[string]string{"berth.cue": empty.cue()})
	ctrl = startController(t, instance, repo.url(), dataDir)
	waitApplied(t, ctrl, repo.commit("nothing yet"))
	t.Run("deploy", func(t *testing.T) {
		repo.write(map[string]string{"berth.cue": spec.cue()})
		commitPlanned("web and worker")
		waitRunning(t, eng, instance, "web", 1)
		waitRunning(t, eng, instance, "worker", 1)
		waitFor(t, settle, "public address answers", func() (bool, string) {
			body, err := get(public)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, "v1 from"), body
		})
		if steps := planCLI(t, instance, repo.dir); len(steps) != 0 {
			t.Fatalf("after apply, plan should be empty, got %v", stepKeys(steps))
		}
		out, errOut, code := berthCmd(t, "status", "--server", ctrl.api)
		if code != 0 || !strings.Contains(out, "environment production: Ready") || !strings.Contains(out, "web") {
			t.Fatalf("berth status: exit %d\n%s%s", code, out, errOut)
		}
	})

	// 2. Scale to three, then roll an env change with a client looping requests: zero failures.
	t.Run("scale", func(t *testing.T) {
		spec.replicas = 3
		repo.write(map[string]string{"berth.cue": spec.cue()})
		commitPlanned("scale web to 3")
		waitRunning(t, eng, instance, "web", 3)
	})
	t.Run("rolling update without dropped requests", func(t *testing.T) {
		stop := requestLoop(t, public, "the roll")
		spec.greeting = "v2"
		repo.write(map[string]string{"berth.cue": spec.cue()})
		commitPlanned("greet v2")
		waitFor(t, settle, "every answer from v2", func() (bool, string) {
			body, err := get(public)
			return err == nil && strings.Contains(body, "v2 from"), body
		})
		stop()
		waitRunning(t, eng, instance, "web", 3)
	})

	// 3. Broken commits change nothing and are reported with file:line and field; the next good one converges.
	t.Run("broken commits", func(t *testing.T) {
		_, before := eng.running(instance, "", "")
		sort.Strings(before)
		cases := []struct{ name, extra, want string }{
			{"syntax", "workloads: web: {\n", "berth.cue:"},
			{"wrong type", "workloads: web: replicas: \"three\"\n", "workloads.web.replicas"},
			{"unknown field", "workloads: web: imagee: \"x\"\n", "workloads.web.imagee"},
			{"policy", "", "workloads.worker.image"},
		}
		for _, tc := range cases {
			broken := spec
			broken.extra = tc.extra
			if tc.name == "policy" {
				broken.workerImage = "berth-e2e/app" // no tag: denied
			}
			repo.write(map[string]string{"berth.cue": broken.cue()})
			rev := repo.commit("broken: " + tc.name)
			waitFor(t, settle, tc.name+" reported", func() (bool, string) {
				st, err := ctrl.status()
				if err != nil {
					return false, err.Error()
				}
				msg := envError(st, "production")
				return attempted(st, "production") == rev && strings.Contains(msg, tc.want) && strings.Contains(msg, "berth.cue:"), msg
			})
			if !strings.Contains(ctrl.logs.String(), tc.want) {
				t.Errorf("%s: the log does not report %q", tc.name, tc.want)
			}
			_, now := eng.running(instance, "", "")
			sort.Strings(now)
			if strings.Join(now, ",") != strings.Join(before, ",") {
				t.Fatalf("%s: running containers changed on a broken commit", tc.name)
			}
		}
		// While the newest revision does not load, the last good one keeps running: a replica lost meanwhile is
		// restored.
		broken := spec
		broken.extra = "workloads: web: {\n"
		repo.write(map[string]string{"berth.cue": broken.cue()})
		rev := repo.commit("broken again")
		waitFor(t, settle, "broken revision reported", func() (bool, string) {
			st, err := ctrl.status()
			if err != nil {
				return false, err.Error()
			}
			return attempted(st, "production") == rev && envError(st, "production") != "", envError(st, "production")
		})
		_, ids := eng.running(instance, "web", "")
		if err := eng.cli.ContainerRemove(context.Background(), ids[0], container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, eng, instance, "web", 3)

		repo.write(map[string]string{"berth.cue": spec.cue()})
		rev = repo.commit("fixed")
		waitApplied(t, ctrl, rev)
	})

	// 5. Drift: a replica removed and another stopped by hand are restored on the next pass.
	t.Run("drift", func(t *testing.T) {
		_, ids := eng.running(instance, "web", "")
		if len(ids) != 3 {
			t.Fatalf("want 3 web replicas before drift, got %d", len(ids))
		}
		ctx := context.Background()
		if err := eng.cli.ContainerRemove(ctx, ids[0], container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		timeout := 2
		if err := eng.cli.ContainerStop(ctx, ids[1], container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, eng, instance, "web", 3)
		waitFor(t, settle, "public address answers after drift", func() (bool, string) {
			_, err := get(public)
			return err == nil, fmt.Sprint(err)
		})
	})

	// 4. Removing one workload removes its containers only; removing all is refused.
	t.Run("prune", func(t *testing.T) {
		ctx := context.Background()
		look, err := eng.cli.ContainerCreate(ctx, &container.Config{Image: exampleImage, Cmd: []string{"work"}},
			nil, nil, nil, "berth-"+instance+"-production-worker-lookalike")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.cli.ContainerRemove(context.Background(), look.ID, container.RemoveOptions{Force: true}) })
		if err := eng.cli.ContainerStart(ctx, look.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		_, webBefore := eng.running(instance, "web", "")
		sort.Strings(webBefore)

		spec.worker = false
		repo.write(map[string]string{"berth.cue": spec.cue()})
		commitPlanned("remove worker")
		waitFor(t, settle, "worker containers gone", func() (bool, string) {
			n := len(eng.containers(instance, "worker"))
			return n == 0, fmt.Sprintf("%d left", n)
		})
		_, webAfter := eng.running(instance, "web", "")
		sort.Strings(webAfter)
		if strings.Join(webAfter, ",") != strings.Join(webBefore, ",") {
			t.Fatal("removing worker touched web")
		}
		li, err := eng.cli.ContainerInspect(ctx, look.ID)
		if err != nil || !li.State.Running {
			t.Fatalf("the look-alike container was touched: %v", err)
		}

		none := spec
		none.web = false
		repo.write(map[string]string{"berth.cue": none.cue()})
		rev := repo.commit("remove everything")
		waitFor(t, settle, "prune refused", func() (bool, string) {
			st, err := ctrl.status()
			if err != nil {
				return false, err.Error()
			}
			msg := envError(st, "production")
			return attempted(st, "production") == rev && strings.Contains(msg, "prune"), msg
		})
		if n, _ := eng.running(instance, "web", ""); n != 3 {
			t.Fatalf("refused prune deleted something: %d web replicas run", n)
		}
		repo.write(map[string]string{"berth.cue": spec.cue()})
		waitApplied(t, ctrl, repo.commit("restore"))
	})

	// 6. SIGKILL in the middle of a roll, restart: converges with no duplicate; also with the state store deleted.
	for i, wipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash mid-apply (wipe state %v)", wipe), func(t *testing.T) {
			spec.greeting = fmt.Sprintf("crash%d", i)
			repo.write(map[string]string{"berth.cue": spec.cue()})
			rev := repo.commit(spec.greeting)
			// Wait until the roll has started: a container of a new spec exists next to old ones.
			var oldHash string
			waitFor(t, settle, "roll in progress", func() (bool, string) {
				hashes := map[string]int{}
				for _, c := range eng.containers(instance, "web") {
					hashes[c.Labels[providers.LabelSpecHash]]++
				}
				if oldHash == "" && len(hashes) == 1 {
					for h := range hashes {
						oldHash = h
					}
				}
				return len(hashes) > 1, fmt.Sprint(hashes)
			})
			ctrl.kill()
			if wipe {
				matches, _ := filepath.Glob(filepath.Join(dataDir, "*.db"))
				for _, m := range matches {
					if err := os.Remove(m); err != nil {
						t.Fatal(err)
					}
				}
				if len(matches) == 0 {
					t.Fatal("no state store found to delete")
				}
			}
			ctrl = startOwnedController(t, top, instance, repo.url(), dataDir)
			waitApplied(t, ctrl, rev)
			waitFor(t, settle, "exactly 3 web containers of the new spec", func() (bool, string) {
				cs := eng.containers(instance, "web")
				running := 0
				for _, c := range cs {
					if c.State == "running" && c.Labels[providers.LabelSpecHash] != oldHash {
						running++
					}
				}
				return len(cs) == 3 && running == 3, fmt.Sprintf("%d containers, %d new running", len(cs), running)
			})
			body, err := get(public)
			if err != nil || !strings.Contains(body, spec.greeting) {
				t.Fatalf("after restart the public address says %q, %v", body, err)
			}
		})
	}
}

// waitApplied waits until the controller reports rev applied to production and returns that status.
func waitApplied(t testing.TB, c *controller, rev string) *reconciler.Status {
	t.Helper()
	var last *reconciler.Status
	waitFor(t, settle, "revision "+rev[:8]+" applied", func() (bool, string) {
		st, err := c.status()
		if err != nil {
			return false, err.Error()
		}
		last = st
		return applied(st, "production") == rev && envError(st, "production") == "", fmt.Sprintf("applied %s, error %q", applied(st, "production"), envError(st, "production"))
	})
	return last
}

// waitRunning waits until exactly n containers of the workload exist and run, all of one spec.
func waitRunning(t testing.TB, e *engine, instance, workload string, n int) {
	t.Helper()
	waitFor(t, settle, fmt.Sprintf("%d %s replicas", n, workload), func() (bool, string) {
		cs := e.containers(instance, workload)
		hashes := map[string]bool{}
		running := 0
		for _, c := range cs {
			hashes[c.Labels[providers.LabelSpecHash]] = true
			if c.State == "running" {
				running++
			}
		}
		return len(cs) == n && running == n && len(hashes) == 1, fmt.Sprintf("%d containers, %d running, %d specs", len(cs), running, len(hashes))
	})
}
