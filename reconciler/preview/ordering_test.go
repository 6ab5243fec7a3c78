package preview

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

// waitCall waits (on the real clock, polling a condition) until the fake provider saw a call matching ok.
func waitCall(t *testing.T, p *fake.Provider, what string, ok func(fake.Call) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range p.Calls(false) {
			if ok(c) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; calls %+v", what, p.Calls(false))
}

func applying(env string) func(fake.Call) bool {
	return func(c fake.Call) bool { return c.Op == "apply" && c.Environment == env && c.Err == "" }
}

func TestNewerHeadSupersedesARunningApply(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	release := w.prov.Hold("web")
	n := w.open(githubemu.PR{}, "app:v2", "first")
	w.c.pass(w.ctx) // starts the apply of the first head, which blocks
	waitFor(t, "the first apply to be in flight", func() bool { return w.c.workers.Load() == 1 && w.prov.MaxInFlight() == 1 })
	head2 := w.push(n, "app:v3", "second")
	w.c.pass(w.ctx) // cancels the first apply; the second starts once it returned
	waitCall(t, w.prov, "the first apply to end cancelled", func(c fake.Call) bool {
		return c.Op == "apply" && c.Environment == "pr-1" && strings.Contains(c.Err, "context canceled")
	})
	release()
	w.c.wg.Wait()
	if got := w.running(n); got["web"] != "app:v3" {
		t.Fatalf("after the supersede the preview runs %v, want app:v3", got)
	}
	if st := w.status(n); st.Deployed != head2 || st.State != StateReady {
		t.Fatalf("status %s at %s, want ready at %s", st.State, st.Deployed, head2)
	}
	if o := w.prov.Overlaps(); o != 0 {
		t.Fatalf("%d overlapping calls on one workload: one reconcile per preview at a time", o)
	}
}

func TestTeardownPreemptsADeploy(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{}, "app:v2", "first")
	w.sync()
	release := w.prov.Hold("web")
	defer release()
	w.push(n, "app:v3", "second")
	w.c.pass(w.ctx) // the update blocks
	waitFor(t, "the update to be in flight", func() bool { return w.c.workers.Load() == 1 && w.prov.MaxInFlight() >= 1 })
	w.emu.ClosePR(n)
	w.c.pass(w.ctx) // a teardown cancels the update
	w.c.wg.Wait()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("after closing during an update the preview runs %v", got)
	}
	if st := w.status(n); st.State != StateGone {
		t.Fatalf("state %s", st.State)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCommentSizeLimit(t *testing.T) {
	st := Status{Number: 7, Environment: "pr-7", State: StateReady, Head: strings.Repeat("a", 40), Base: "staging",
		Workloads: []WorkloadStatus{{Name: "web", Target: "local", Ready: 1, Desired: 1, URLs: []string{"http://pr-7-x.localhost:8480/"}}},
		Plan:      "5000 to create", Steps: strings.Split(strings.Repeat("+ create web on local\n", 5000), "\n")}
	body := RenderComment("<!-- berth:test:preview -->", st, 65536)
	if len(body) > 65536 {
		t.Fatalf("comment is %d bytes, over the limit", len(body))
	}
	for _, want := range []string{"<!-- berth:test:preview -->", "ready", "http://pr-7-x.localhost:8480/", "cut to fit"} {
		if !strings.Contains(body, want) {
			t.Errorf("the cut comment lacks %q", want)
		}
	}
	if strings.Count(body, "```")%2 != 0 {
		t.Errorf("the cut comment leaves a code block open")
	}
	if d := statusLine(Status{Environment: "pr-7", State: StateFailed, Reason: strings.Repeat("é", 200)}); len(d) > 140 {
		t.Errorf("status description is %d bytes", len(d))
	}
}

func TestCommentShowsHeadErrorsInCodeOnly(t *testing.T) {
	st := Status{Number: 7, Environment: "pr-7", State: StateFailed, Reason: "the head cannot be previewed",
		Errors: []reconciler.ErrorInfo{{File: "@everyone.cue", Line: 1, Message: "```\n[click](http://evil)\n```"}}}
	body := RenderComment("<!-- m -->", st, 0)
	if strings.Count(body, "```")%2 != 0 || strings.Contains(body, "```\n[click]") {
		t.Fatalf("untrusted text escaped its code block:\n%s", body)
	}
}
