package nomademu_test

import (
	"context"
	"errors"
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
