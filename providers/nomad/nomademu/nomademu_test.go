package nomademu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers/nomad/nomademu"
)

// fakeClock fires a blocking query's wait only when the test says so.
type fakeClock struct{ fire chan time.Time }

func (c *fakeClock) After(time.Duration) <-chan time.Time { return c.fire }

func client(t *testing.T, s *nomademu.Server) *api.Client {
	t.Helper()
	t.Setenv("NOMAD_ADDR", "")
	t.Setenv("NOMAD_TOKEN", "")
	c, err := api.NewClient(&api.Config{Address: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testJob(id, image string, count int) *api.Job {
	return &api.Job{ID: new(id), Type: new("service"), Update: &api.UpdateStrategy{MaxParallel: new(1), AutoRevert: new(true)},
		TaskGroups: []*api.TaskGroup{{Name: new("app"), Count: new(count),
			Tasks: []*api.Task{{Name: "app", Driver: "docker", Config: map[string]any{"image": image}}}}}}
}

func statusCode(err error) int {
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode()
	}
	return 0
}

func TestEnforceIndex(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.EnforceRegister(testJob("web", "img:1", 1), 7, nil); statusCode(err) != 500 {
		t.Fatalf("create with index 7: %v, want a 500 (job does not exist)", err)
	}
	resp, _, err := jobs.EnforceRegister(testJob("web", "img:1", 1), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := jobs.EnforceRegister(testJob("web", "img:1", 2), 0, nil); statusCode(err) != 500 {
		t.Fatalf("second create: %v, want a 500 (job already exists)", err)
	}
	if _, _, err := jobs.EnforceRegister(testJob("web", "img:1", 2), resp.JobModifyIndex+1, nil); statusCode(err) != 500 {
		t.Fatalf("stale index: %v, want a 500 (conflicting job modify index)", err)
	}
	if _, _, err := jobs.EnforceRegister(testJob("web", "img:1", 2), resp.JobModifyIndex, nil); err != nil {
		t.Fatalf("current index: %v", err)
	}
	job, _, err := jobs.Info("web", nil)
	if err != nil || *job.Version != 1 {
		t.Fatalf("Info: version %v, %v; want version 1", job.Version, err)
	}
	if _, _, err := jobs.Register(&api.Job{ID: new("bad"), TaskGroups: []*api.TaskGroup{{Name: new("g")}}}, nil); statusCode(err) != 500 {
		t.Fatalf("a job without tasks: %v, want a 500 (a failed validation)", err)
	}
}

// TestBlockingQuery: a query at the current index waits until the state changes, or until its wait ends.
func TestBlockingQuery(t *testing.T) {
	clock := &fakeClock{fire: make(chan time.Time, 1)}
	s := nomademu.New(nomademu.Options{Manual: true, Clock: clock})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.Register(testJob("web", "img:1", 1), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(1) // places the allocation
	_, meta, err := jobs.Allocations("web", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		index uint64
		err   error
	}
	query := func() chan answer {
		ch := make(chan answer, 1)
		go func() {
			q := (&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute}).WithContext(context.Background())
			_, m, err := jobs.Allocations("web", false, q)
			if err != nil {
				ch <- answer{err: err}
				return
			}
			ch <- answer{index: m.LastIndex}
		}()
		return ch
	}
	deadline := time.After(60 * time.Second)

	ch := query()
	select {
	case a := <-ch:
		t.Fatalf("blocking query answered before any change: %+v", a)
	default:
	}
	s.Step(5) // the allocation starts: the index moves
	select {
	case a := <-ch:
		if a.err != nil || a.index <= meta.LastIndex {
			t.Fatalf("after a change: index %d, %v; want above %d", a.index, a.err, meta.LastIndex)
		}
	case <-deadline:
		t.Fatal("blocking query not released by a change")
	}

	_, meta, _ = jobs.Allocations("web", false, nil)
	ch = query()
	clock.fire <- time.Now() // the wait ends with nothing new
	select {
	case a := <-ch:
		if a.err != nil || a.index != meta.LastIndex {
			t.Fatalf("after the wait: index %d, %v; want %d", a.index, a.err, meta.LastIndex)
		}
	case <-deadline:
		t.Fatal("blocking query not released by its wait")
	}
}

// TestRollout: a new image replaces allocations one at a time; a count change alone keeps them.
func TestRollout(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.Register(testJob("web", "img:1", 2), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	first := s.LiveAllocs("", "web")
	if len(first) != 2 {
		t.Fatalf("live allocations %v, want 2", first)
	}
	if _, _, err := jobs.Register(testJob("web", "img:1", 3), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	three := s.LiveAllocs("", "web")
	if len(three) != 3 || !contains(three, first[0]) || !contains(three, first[1]) {
		t.Fatalf("scale-up replaced allocations: %v, then %v", first, three)
	}
	if _, _, err := jobs.Register(testJob("web", "img:2", 3), nil); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		s.Step(1)
		if n := len(s.LiveAllocs("", "web")); n < 2 {
			t.Fatalf("%d live allocations during the rollout: more than max_parallel (1) down", n)
		}
	}
	after := s.LiveAllocs("", "web")
	for _, id := range three {
		if contains(after, id) {
			t.Fatalf("allocation %s of the old image survived: %v", id, after)
		}
	}
	dep, _, err := jobs.LatestDeployment("web", nil)
	if err != nil || dep.Status != api.DeploymentStatusSuccessful || dep.JobVersion != 2 {
		t.Fatalf("latest deployment %+v, %v; want version 2 successful", dep, err)
	}
}

func TestFailedDeploymentReverts(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.Register(testJob("web", "img:1", 1), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	s.FailImage("img:bad")
	if _, _, err := jobs.Register(testJob("web", "img:bad", 1), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	deps, _, err := jobs.Deployments("web", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failed bool
	for _, d := range deps {
		failed = failed || (d.JobVersion == 1 && d.Status == api.DeploymentStatusFailed)
	}
	job, _, _ := jobs.Info("web", nil)
	if !failed || *job.Version != 2 || job.TaskGroups[0].Tasks[0].Config["image"] != "img:1" {
		t.Fatalf("failed %t, job version %d image %v; want version 1 failed and a revert to img:1 as version 2",
			failed, *job.Version, job.TaskGroups[0].Tasks[0].Config["image"])
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func canaryJob(id, image string, count int, autoPromote bool) *api.Job {
	j := testJob(id, image, count)
	j.Update.Canary, j.Update.AutoPromote = new(count), new(autoPromote)
	return j
}

// serving counts the job's allocations that run and that no deployment holds back: healthy, or not judged by a
// deployment (a canary counts once healthy), and the running canaries.
func serving(t *testing.T, jobs *api.Jobs, id string) (n int, canaries int) {
	t.Helper()
	allocs, _, err := jobs.Allocations(id, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range allocs {
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		ds := a.DeploymentStatus
		if ds != nil && ds.Canary {
			canaries++
		}
		if ds == nil || ds.Healthy != nil && *ds.Healthy {
			n++
		}
	}
	return n, canaries
}

// TestCanaryRollout: with canary = count and auto_promote, a destructive update places count canaries beside the
// old allocations, promotes them once all are healthy, and only then stops the old ones; count allocations serve
// at every step, one replica included. A change of count alone places no canary.
func TestCanaryRollout(t *testing.T) {
	for _, count := range []int{1, 2} {
		s := nomademu.New(nomademu.Options{Manual: true})
		defer s.Close()
		jobs := client(t, s).Jobs()
		if _, _, err := jobs.Register(canaryJob("web", "img:1", count, true), nil); err != nil {
			t.Fatal(err)
		}
		s.Step(10)
		first := s.LiveAllocs("", "web")
		if _, _, err := jobs.Register(canaryJob("web", "img:2", count, true), nil); err != nil {
			t.Fatal(err)
		}
		sawCanaries := false
		for step := range 30 {
			s.Step(1)
			n, canaries := serving(t, jobs, "web")
			if n < count {
				t.Fatalf("count %d, step %d: %d allocations serving, want %d at every step", count, step, n, count)
			}
			sawCanaries = sawCanaries || canaries == count && len(s.LiveAllocs("", "web")) == 2*count
		}
		if !sawCanaries {
			t.Fatalf("count %d: never saw %d canaries beside the old allocations", count, count)
		}
		after := s.LiveAllocs("", "web")
		for _, id := range first {
			if contains(after, id) {
				t.Fatalf("count %d: old allocation %s survived: %v", count, id, after)
			}
		}
		dep, _, err := jobs.LatestDeployment("web", nil)
		if err != nil {
			t.Fatal(err)
		}
		st := dep.TaskGroups["app"]
		if dep.Status != api.DeploymentStatusSuccessful || !st.Promoted || st.DesiredCanaries != count ||
			len(st.PlacedCanaries) != count || st.HealthyAllocs != count || len(after) != count {
			t.Fatalf("count %d: deployment %s %q %+v, live %v; want successful, promoted, %d canaries", count, dep.Status,
				dep.StatusDescription, st, after, count)
		}
		// Scale up: the count (and the canaries with it) change, the tasks do not: in place, no canary.
		if _, _, err := jobs.Register(canaryJob("web", "img:2", count+1, true), nil); err != nil {
			t.Fatal(err)
		}
		s.Step(10)
		if now := s.LiveAllocs("", "web"); len(now) != count+1 || !contains(now, after[0]) {
			t.Fatalf("count %d: scale-up: %v, then %v; want the allocations kept and one more", count, after, now)
		}
		dep, _, _ = jobs.LatestDeployment("web", nil)
		if dep.Status != api.DeploymentStatusSuccessful || dep.TaskGroups["app"].DesiredCanaries != 0 {
			t.Fatalf("count %d: scale-up deployment %s %+v; want successful without canaries", count, dep.Status, dep.TaskGroups["app"])
		}
	}
}

// TestCanaryNeverHealthy: canaries whose checks never pass are judged unhealthy at the healthy deadline; the
// deployment fails, the canaries are stopped, the old allocations never were, and auto_revert registers the last
// stable version again, which they move to in place.
func TestCanaryNeverHealthy(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true, DeadlineSteps: 5})
	defer s.Close()
	jobs := client(t, s).Jobs()
	if _, _, err := jobs.Register(canaryJob("web", "img:1", 1, true), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	first := s.LiveAllocs("", "web")
	s.FailChecks("img:sick")
	if _, _, err := jobs.Register(canaryJob("web", "img:sick", 1, true), nil); err != nil {
		t.Fatal(err)
	}
	for step := range 20 {
		s.Step(1)
		if n, _ := serving(t, jobs, "web"); n < 1 {
			t.Fatalf("step %d: nothing serving", step)
		}
	}
	deps, _, err := jobs.Deployments("web", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failed *api.Deployment
	for _, d := range deps {
		if d.JobVersion == 1 {
			failed = d
		}
	}
	if failed == nil || failed.Status != api.DeploymentStatusFailed || failed.TaskGroups["app"].UnhealthyAllocs != 1 ||
		failed.StatusDescription != "Failed due to unhealthy allocations - rolling back to job version 0" {
		t.Fatalf("deployment of version 1: %+v; want failed with one unhealthy canary, rolling back", failed)
	}
	if now := s.LiveAllocs("", "web"); len(now) != 1 || now[0] != first[0] {
		t.Fatalf("live allocations %v, want the old one %v alone", now, first)
	}
	allocs, _, _ := jobs.Allocations("web", false, nil)
	for _, a := range allocs {
		switch {
		case a.ID == first[0] && a.JobVersion != 2:
			t.Fatalf("the old allocation is at version %d, want 2 (the revert, in place)", a.JobVersion)
		case a.ID != first[0] && (a.DesiredStatus != api.AllocDesiredStatusStop || a.DeploymentStatus == nil ||
			!a.DeploymentStatus.Canary || a.DeploymentStatus.Healthy == nil || *a.DeploymentStatus.Healthy):
			t.Fatalf("canary %s: desired %s, deployment status %+v; want an unhealthy canary, stopped", a.Name,
				a.DesiredStatus, a.DeploymentStatus)
		}
	}
	job, _, _ := jobs.Info("web", nil)
	if *job.Version != 2 || job.TaskGroups[0].Tasks[0].Config["image"] != "img:1" {
		t.Fatalf("job version %d image %v; want the revert to img:1 as version 2", *job.Version, job.TaskGroups[0].Tasks[0].Config["image"])
	}
}

// TestPromote: without auto_promote the deployment waits for `nomad deployment promote`, which Nomad refuses
// until the canaries are healthy; the old allocation runs until then.
func TestPromote(t *testing.T) {
	s := nomademu.New(nomademu.Options{Manual: true})
	defer s.Close()
	c := client(t, s)
	jobs := c.Jobs()
	if _, _, err := jobs.Register(canaryJob("web", "img:1", 1, false), nil); err != nil {
		t.Fatal(err)
	}
	s.Step(10)
	first := s.LiveAllocs("", "web")
	if _, _, err := jobs.Register(canaryJob("web", "img:2", 1, false), nil); err != nil {
		t.Fatal(err)
	}
	dep, _, err := jobs.LatestDeployment("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if dep.StatusDescription != "Deployment is running but requires manual promotion" {
		t.Fatalf("deployment %q, want one requiring promotion", dep.StatusDescription)
	}
	s.Step(1) // the canary is placed, pending
	if _, _, err := c.Deployments().PromoteAll(dep.ID, nil); statusCode(err) != 500 || !strings.Contains(err.Error(), `Task group "app" has 0/1 healthy allocations`) {
		t.Fatalf("promote before the canary is healthy: %v, want Nomad's refusal", err)
	}
	s.Step(20)
	if now := s.LiveAllocs("", "web"); len(now) != 2 || !contains(now, first[0]) {
		t.Fatalf("unpromoted: live %v, want the old allocation and the canary", now)
	}
	if _, _, err := c.Deployments().PromoteAll(dep.ID, nil); err != nil {
		t.Fatal(err)
	}
	s.Step(5)
	if now := s.LiveAllocs("", "web"); len(now) != 1 || contains(now, first[0]) {
		t.Fatalf("promoted: live %v, want the canary alone", now)
	}
	if dep, _, _ = jobs.LatestDeployment("web", nil); dep.Status != api.DeploymentStatusSuccessful {
		t.Fatalf("deployment %s after the promotion, want successful", dep.Status)
	}
	if _, _, err := c.Deployments().PromoteAll(dep.ID, nil); statusCode(err) != 500 || !strings.Contains(err.Error(), "can't promote terminal deployment") {
		t.Fatalf("promote of a successful deployment: %v, want Nomad's refusal", err)
	}
}

// checkedJob is canaryJob with an http check of path on a nomad service, its deployments judging health by mode
// ("checks" or "task_states").
func checkedJob(id, path, mode string) *api.Job {
	j := canaryJob(id, "img:1", 1, true)
	j.Update.HealthCheck = new(mode)
	g := j.TaskGroups[0]
	g.Networks = []*api.NetworkResource{{DynamicPorts: []api.Port{{Label: "http", To: 8080}}}}
	g.Services = []*api.Service{{Name: "web", PortLabel: "http", Provider: "nomad", Checks: []api.ServiceCheck{{
		Name: "alive", Type: "http", Path: path, PortLabel: "http", Interval: time.Second, Timeout: time.Second}}}}
	return j
}

// TestFailCheckPath: an http check of a failing path fails the canary deployment and keeps the old allocation,
// when the deployment judges checks; with task_states the checks do not count.
func TestFailCheckPath(t *testing.T) {
	for mode, want := range map[string]string{"checks": api.DeploymentStatusFailed, "task_states": api.DeploymentStatusSuccessful} {
		t.Run(mode, func(t *testing.T) {
			s := nomademu.New(nomademu.Options{Manual: true, DeadlineSteps: 5})
			defer s.Close()
			s.FailCheckPath("/nonexistent")
			jobs := client(t, s).Jobs()
			if _, _, err := jobs.Register(checkedJob("web", "/healthz", mode), nil); err != nil {
				t.Fatal(err)
			}
			s.Step(10)
			first := s.LiveAllocs("", "web")
			if dep, _, _ := jobs.LatestDeployment("web", nil); dep.Status != api.DeploymentStatusSuccessful {
				t.Fatalf("first deployment %s, want successful", dep.Status)
			}
			if _, _, err := jobs.Register(checkedJob("web", "/nonexistent", mode), nil); err != nil {
				t.Fatal(err)
			}
			for step := range 20 {
				s.Step(1)
				if n, _ := serving(t, jobs, "web"); n < 1 {
					t.Fatalf("step %d: nothing serving", step)
				}
			}
			deps, _, err := jobs.Deployments("web", false, nil)
			if err != nil {
				t.Fatal(err)
			}
			var second *api.Deployment
			for _, d := range deps {
				if d.JobVersion == 1 {
					second = d
				}
			}
			if second == nil || second.Status != want {
				t.Fatalf("deployment of the failing check: %+v, want %s", second, want)
			}
			if now := s.LiveAllocs("", "web"); want == api.DeploymentStatusFailed && (len(now) != 1 || now[0] != first[0]) {
				t.Fatalf("live allocations %v, want the old one %v alone", now, first)
			}
		})
	}
}
