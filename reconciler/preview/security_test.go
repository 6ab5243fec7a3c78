package preview

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

const forkPreviews = `previews: pr: {from: "staging", when: labels: ["preview"], forks: "approve-each-commit"}
`

// Each case deploys and changes nothing.

func TestForkNeverByDefault(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{HeadRepo: "mallory/shop", Author: "mallory"}, "evil:v1", "x")
	w.emu.AddComment(n, "maintainer", "/berth preview")
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("a fork got a preview with forks: never: %v", got)
	}
	if st := w.status(n); st.State != StateAwaitingApproval {
		t.Fatalf("state %s", st.State)
	}
}

func TestForkApprovalPerCommit(t *testing.T) {
	w := newWorld(t, forkPreviews, nil)
	n := w.open(githubemu.PR{HeadRepo: "mallory/shop", Author: "mallory"}, "fork:v1", "x")
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("an unapproved fork got a preview: %v", got)
	}
	cs := w.comments(n)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "awaiting approval") {
		t.Fatalf("the fork is not told it waits: %+v", cs)
	}
	if w.src.fetches != 0 {
		t.Fatalf("an unapproved fork's head was fetched %d times", w.src.fetches)
	}

	// Approvals that do not count: the author, a reader, someone unknown, a command naming another commit.
	w.clock.Set(t0.Add(time.Minute))
	w.emu.AddComment(n, "mallory", "/berth preview")
	w.emu.AddComment(n, "reader", "/berth preview")
	w.emu.AddComment(n, "stranger", "/berth preview")
	w.emu.AddComment(n, "maintainer", "/berth preview 0000000")
	w.emu.AddComment(n, "maintainer", "please /berth preview")
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("a fork was deployed on an approval that does not count: %v", got)
	}

	// A maintainer approves: this head is deployed, without secrets.
	w.emu.AddComment(n, "maintainer", "/berth preview")
	w.sync()
	if got := w.running(n); got["web"] != "fork:v1" {
		t.Fatalf("approved fork runs %v (state %s: %s %v)", got, w.status(n).State, w.status(n).Reason, w.status(n).Errors)
	}

	// A push after the approval: the old approved preview keeps running, the new head waits.
	w.clock.Set(t0.Add(2 * time.Minute))
	head2 := w.push(n, "fork:v2-evil", "y")
	w.sync()
	if got := w.running(n); got["web"] != "fork:v1" {
		t.Fatalf("after an unapproved push the preview runs %v", got)
	}
	if st := w.status(n); st.State != StateAwaitingApproval {
		t.Fatalf("after the push: %s", st.State)
	}
	// Approval naming the new commit.
	w.emu.AddComment(n, "maintainer", "/berth preview "+head2[:10])
	w.sync()
	if got := w.running(n); got["web"] != "fork:v2-evil" {
		t.Fatalf("after approving %s the preview runs %v", head2[:10], got)
	}
}

func TestBareApprovalBeforeThePushDoesNotCount(t *testing.T) {
	w := newWorld(t, forkPreviews, nil)
	n := w.open(githubemu.PR{HeadRepo: "mallory/shop", Author: "mallory"}, "fork:v1", "x")
	w.sync()
	w.clock.Set(t0.Add(time.Minute))
	w.emu.AddComment(n, "maintainer", "/berth preview") // approves the head seen so far
	// The fork pushes before berth looks again.
	w.clock.Set(t0.Add(2 * time.Minute))
	w.push(n, "fork:v2-evil", "y")
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("a bare approval written before the push deployed the pushed commit: %v", got)
	}
}

func TestForkNeverGetsSecrets(t *testing.T) {
	previews := `previews: pr: {from: "staging", when: labels: ["preview"], forks: "approve-each-commit", secrets: "staging"}
`
	w := newWorld(t, previews, nil)
	n := w.open(githubemu.PR{HeadRepo: "mallory/shop", Author: "mallory"}, "fork:v1", "x")
	w.clock.Set(t0.Add(time.Minute))
	w.sync()
	w.emu.AddComment(n, "maintainer", "/berth preview")
	w.clock.Set(t0.Add(2 * time.Minute))
	w.sync()
	w.c.mu.Lock()
	env := w.c.prs[n].deployed
	w.c.mu.Unlock()
	if env == nil {
		t.Fatalf("no preview: %+v", w.status(n))
	}
	if len(env.Secrets) != 0 {
		t.Fatalf("a fork's preview got secrets %v", env.Secrets)
	}
}

func TestForgeErrorsNeverDestroy(t *testing.T) {
	faults := []githubemu.FaultKind{githubemu.Fault500, githubemu.Fault502HTML, githubemu.Fault200HTML,
		githubemu.FaultTruncated, githubemu.FaultEmpty, githubemu.Fault401, githubemu.FaultSecondary, githubemu.Fault429}
	for _, f := range faults {
		for _, match := range []string{"/pulls?", "/pulls/"} {
			w := newWorld(t, defaultPreviews, nil)
			n := w.open(githubemu.PR{}, "app:v2", "a")
			w.sync()
			if len(w.running(n)) != 1 {
				t.Fatal("no preview")
			}
			w.emu.ClosePR(n)
			w.emu.Inject(githubemu.Fault{Kind: f, Match: match, Count: 100})
			for range 3 {
				w.sync()
			}
			if got := w.running(n); len(got) != 1 {
				t.Fatalf("fault %d on %s: the preview was destroyed on a forge error", f, match)
			}
			if w.c.Report().LastError == "" {
				t.Errorf("fault %d on %s: not reported", f, match)
			}
			w.emu.ClearFaults()
			if f == githubemu.FaultSecondary || f == githubemu.Fault429 {
				// The client honours Retry-After by refusing to send until it passed (on the wall clock): a
				// fresh client stands for the wait.
				fresh, err := github.New(github.Options{BaseURL: w.emu.URL(), Repository: "acme/shop", Token: "tok"})
				if err != nil {
					t.Fatal(err)
				}
				w.c.opts.Forge = fresh
			}
			w.sync()
			if got := w.running(n); len(got) != 0 {
				t.Fatalf("fault %d on %s: once the forge answers, the closed preview must go; runs %v", f, match, got)
			}
		}
	}
}

func TestEmptyListingIsNotEvidence(t *testing.T) {
	// An empty but well-formed listing (every pull request gone from it) still needs a fresh read of each
	// preview's pull request, which says open: nothing is destroyed.
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{}, "app:v2", "a")
	w.sync()
	w.c.changes, w.c.etag = nil, ""
	w.emu.Inject(githubemu.Fault{Kind: githubemu.Fault500, Match: "/pulls?", Count: 1})
	w.c.pass(w.ctx) // fails the listing: keeps the empty cached one out of use
	w.c.wg.Wait()
	if got := w.running(n); len(got) != 1 {
		t.Fatalf("destroyed: %v", got)
	}
}

func TestNoSecretsWithoutPreviewsSecrets(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	files := baseCUE(defaultPreviews)
	files["berth.cue"] += `secrets: db: {sops: "db.enc.yaml", key: "password"}
workloads: web: env: DB_PASSWORD: secret: "db"
`
	w.src.setBase(files)
	n := w.open(githubemu.PR{}, "app:v1", "hello")
	ch, err := w.forge.Get(w.ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	w.src.setHead(ch.HeadSHA, files)
	w.sync()
	st := w.status(n)
	if st.State != StateFailed || len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Message, "no secrets") {
		t.Fatalf("state %s errors %+v, want failed saying previews get no secrets", st.State, st.Errors)
	}
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("deployed %v", got)
	}
}

func TestForkApprovalByLabel(t *testing.T) {
	w := newWorld(t, forkPreviews, nil)
	n := w.open(githubemu.PR{HeadRepo: "mallory/shop", Author: "mallory"}, "fork:v1", "x")
	w.sync()
	w.clock.Set(t0.Add(time.Minute))
	// A label by someone without write permission (triage can label on GitHub) approves nothing.
	w.emu.LabelAs(n, "berth-preview-approved", "reader")
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("a label by a reader deployed the fork: %v", got)
	}
	// Removed and added again by a maintainer: approved.
	w.emu.UnlabelAs(n, "berth-preview-approved", "reader")
	w.emu.LabelAs(n, "berth-preview-approved", "maintainer")
	w.sync()
	if got := w.running(n); got["web"] != "fork:v1" {
		t.Fatalf("a maintainer's label did not approve: %v (%s)", got, w.status(n).Reason)
	}
	// A push: the label added before it does not cover the new head.
	w.clock.Set(t0.Add(2 * time.Minute))
	w.push(n, "fork:v2-evil", "y")
	w.sync()
	if got := w.running(n); got["web"] != "fork:v1" {
		t.Fatalf("a label added before the push approved the pushed commit: %v", got)
	}
}
