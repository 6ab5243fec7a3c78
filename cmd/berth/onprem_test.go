package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/kubernetes/kubetest"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
)

// The controller moves a workload Docker → Swarm → Kubernetes by two commits. A watcher observes all three
// runtimes throughout: at every look at least one ready copy exists, and the old copy is gone only after the new
// one is ready. Kubernetes is a real kube-apiserver; no controllers run there, so kubetest's simulated deployment
// controller plays that part.
func TestOnPremMoveEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine in swarm mode and a kube-apiserver")
	}
	eng := newEngine(t)
	ctx := context.Background()
	if info, err := eng.cli.Info(ctx); err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		t.Skip("the engine is not in swarm mode (hack/test.sh turns it on)")
	}
	cluster := kubetest.Start(t)
	kctx, kcancel := context.WithCancel(ctx)
	stopped := kubetest.RunDeploymentController(kctx, cluster.Client)
	t.Cleanup(func() { kcancel(); <-stopped })

	instance := fmt.Sprintf("op%d", time.Now().UnixNano()%1_000_000_000)
	owner := providers.Owner{Instance: instance, Environment: "production"}
	t.Cleanup(func() { eng.cleanup(instance) })
	repo := newGitRepo(t)
	write := func(provider string) {
		repo.write(map[string]string{"berth.cue": fmt.Sprintf(`targets: {
	local: {type: "docker"}
	swarm: {type: "swarm"}
	k8s: {type: "kubernetes", kubeconfig: %q, context: "kubetest"}
}
environments: production: {branch: "main"}
workloads: app: {image: %q, args: ["work"], provider: %q, replicas: 2, env: WORK_INTERVAL: "1s",
	migration: allowUnsafe: true} // a worker with no health check: moved as soon as the new copy runs
`, cluster.Kubeconfig, exampleImage, provider)})
	}
	write("local")
	repo.commit("on docker")

	src, err := repos.Open(ctx, repo.url(), repos.Options{Branch: "main", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
	})
	engine, err := reconciler.NewEngine(reconciler.Options{Instance: instance, Background: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), StepTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := reconciler.NewController(reconciler.ControllerOptions{Source: src, Engine: engine,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Interval: 500 * time.Millisecond, BackoffBase: 100 * time.Millisecond, BackoffMax: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		// The swarm service and the Kubernetes objects are this test's too.
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		_ = engine.Destroy(dctx, mustLoad(t, repo.dir), "production")
		engine.Close()
	})

	// ready counts the ready copies of app on each runtime, from the runtimes themselves.
	service := berthswarm.ServiceName(owner, "app")
	ready := func() (docker, sw, k8s int) {
		for _, c := range eng.containers(instance, "app") {
			// Swarm's task containers carry the ownership labels too: the target tells them apart.
			if c.State == "running" && c.Labels[providers.LabelTarget] == "local" {
				docker++
			}
		}
		tasks, err := eng.cli.TaskList(ctx, swarmTaskFilter(service))
		if err == nil {
			for _, task := range tasks {
				if task.DesiredState == swarm.TaskStateRunning && task.Status.State == swarm.TaskStateRunning {
					sw++
				}
			}
		}
		if dep, err := cluster.Client.AppsV1().Deployments("berth-production").Get(ctx, "app", metav1.GetOptions{}); err == nil {
			k8s = int(dep.Status.ReadyReplicas)
		}
		return
	}
	state := func() string {
		d, s, k := ready()
		st := ctrl.Status()
		phase := ""
		if e := envOf(&st, "production"); e != nil {
			phase = fmt.Sprintf("%s %v", e.Phase, e.Steps)
		}
		return fmt.Sprintf("docker %d, swarm %d, kubernetes %d; source error %q; environment %s errors %q",
			d, s, k, st.LastError, phase, envError(&st, "production"))
	}
	waitFor(t, settle, "app on docker", func() (bool, string) {
		d, s, k := ready()
		return d == 2 && s == 0 && k == 0, state()
	})

	// move commits provider, watching every runtime until the workload runs only there.
	move := func(provider string, only func(d, s, k int) bool) {
		t.Helper()
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
				d, s, k := ready()
				mu.Lock()
				looks++
				if d+s+k == 0 {
					gaps = append(gaps, fmt.Sprintf("docker %d, swarm %d, kubernetes %d", d, s, k))
				}
				mu.Unlock()
			}
		}()
		write(provider)
		rev := repo.commit("move to " + provider)
		waitFor(t, settle, "app on "+provider+" only", func() (bool, string) {
			st := ctrl.Status()
			d, s, k := ready()
			return applied(&st, "production") == rev && only(d, s, k), state()
		})
		close(stop)
		<-watched
		if looks < 10 {
			t.Fatalf("the watcher looked only %d times during the move to %s", looks, provider)
		}
		if len(gaps) > 0 {
			t.Fatalf("moving to %s, no ready copy existed %d of %d looks (first: %s)", provider, len(gaps), looks, gaps[0])
		}
		st := ctrl.Status()
		steps := stepKeys(lastApplySteps(&st, "production"))
		if len(steps) != 1 || steps[0][:len("migrate app on "+provider)] != "migrate app on "+provider {
			t.Fatalf("the move to %s was not one migrate step: %v", provider, steps)
		}
	}
	move("swarm", func(d, s, k int) bool { return d == 0 && s == 2 && k == 0 })
	move("k8s", func(d, s, k int) bool { return d == 0 && s == 0 && k == 2 })
}

func swarmTaskFilter(service string) swarm.TaskListOptions {
	return swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))}
}

func mustLoad(t *testing.T, dir string) *schema.Config {
	t.Helper()
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
