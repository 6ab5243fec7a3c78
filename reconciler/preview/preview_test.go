package preview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
	"github.com/berth-dev/berth/schema"
)

func TestLifecycle(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{Author: "alice", HeadRef: "feature"}, "app:v2", "hi from the PR")
	w.sync()

	st := w.status(n)
	if st.State != StateReady {
		t.Fatalf("state %s (%s), errors %v; want ready", st.State, st.Reason, st.Errors)
	}
	if got := w.running(n); got["web"] != "app:v2" {
		t.Fatalf("preview runs %v, want web at app:v2", got)
	}
	// Caps: one replica whatever the base has.
	obs, _ := w.prov.List(w.ctx, providers.Owner{Instance: "test", Environment: "pr-1", Preview: n}, "local")
	if len(obs) != 1 || obs[0].Spec.Replicas != 1 {
		t.Fatalf("preview observed %+v, want one workload with one replica", obs)
	}
	// The preview's public port has a host port of its own, and a URL on the router.
	if hp := obs[0].Spec.Ports[0].HostPort; hp < 20000 || hp > 20999 {
		t.Errorf("preview host port %d, want one of the preview range", hp)
	}
	if len(st.URLs) != 1 || !strings.HasPrefix(st.URLs[0], "http://pr-1-") || !strings.HasSuffix(st.URLs[0], ".localhost:8480/") {
		t.Fatalf("URLs %v, want one http://pr-1-<random>.localhost:8480/", st.URLs)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(st.URLs[0], "http://"), "/")
	if addr, ok := w.router.Lookup(host); !ok || !strings.HasPrefix(addr, "127.0.0.1:20") {
		t.Fatalf("router sends %s to %q (%v)", host, addr, ok)
	}
	cs := w.comments(n)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "ready") || !strings.Contains(cs[0].Body, st.URLs[0]) {
		t.Fatalf("comments %+v, want one saying ready with the URL", cs)
	}

	// An idle pass sends no comment edit and no status.
	statuses := w.emu.StatusCount(st.Head)
	w.sync()
	if got := w.emu.StatusCount(st.Head); got != statuses {
		t.Errorf("an idle pass set %d more statuses", got-statuses)
	}

	// A push: the preview follows the head, the same comment is edited.
	head2 := w.push(n, "app:v3", "second push")
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head2 {
		t.Fatalf("after the push: state %s deployed %s, want ready at %s", st.State, st.Deployed, head2)
	}
	if got := w.running(n); got["web"] != "app:v3" {
		t.Fatalf("after the push the preview runs %v", got)
	}
	if cs2 := w.comments(n); len(cs2) != 1 || cs2[0].ID != cs[0].ID || !strings.Contains(cs2[0].Body, short(head2)) {
		t.Fatalf("after the push comments are %+v, want the same one edited with the new head", cs2)
	}

	// Close: everything is removed, the comment says so.
	w.emu.ClosePR(n)
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("after closing the preview still runs %v", got)
	}
	if st := w.status(n); st.State != StateGone {
		t.Fatalf("after closing: state %s", st.State)
	}
	if cs3 := w.comments(n); len(cs3) != 1 || !strings.Contains(cs3[0].Body, "destroyed") {
		t.Fatalf("after closing comments are %+v", cs3)
	}
	// The base was never touched.
	if base, _ := w.prov.List(w.ctx, providers.Owner{Instance: "test", Environment: "staging"}, "local"); len(base) != 0 {
		t.Fatalf("the base environment got %v", base)
	}
}

func TestUnlabelledAndExcludedGetNothing(t *testing.T) {
	w := newWorld(t, `previews: pr: {from: "staging", when: {labels: ["preview"], excludeLabels: ["no-preview"]}}
`, nil)
	a := w.open(githubemu.PR{Labels: []string{}}, "app:v2", "a")
	b := w.open(githubemu.PR{Labels: []string{"preview", "no-preview"}}, "app:v2", "b")
	c := w.open(githubemu.PR{Draft: true}, "app:v2", "c")
	d := w.open(githubemu.PR{BaseRef: "release"}, "app:v2", "d")
	w.sync()
	for _, n := range []int{a, b, c, d} {
		if got := w.running(n); len(got) != 0 {
			t.Errorf("pull request %d got a preview: %v", n, got)
		}
		if cs := w.comments(n); len(cs) != 0 {
			t.Errorf("pull request %d got a comment: %v", n, cs)
		}
	}
	// Removing the label tears the preview down.
	e := w.open(githubemu.PR{}, "app:v2", "e")
	w.sync()
	if len(w.running(e)) != 1 {
		t.Fatalf("labelled pull request %d has no preview", e)
	}
	w.emu.Label(e, "no-preview")
	w.sync()
	if got := w.running(e); len(got) != 0 {
		t.Fatalf("excluded pull request still runs %v", got)
	}
}

func TestHeadOutsideOverrideIsRefused(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{}, "app:v2", "x")
	head := w.push(n, "app:v2", "x2")
	files := headCUE(defaultPreviews, "app:v2", "x2")
	files["berth.cue"] = strings.Replace(files["berth.cue"], "replicas: 2", "replicas: 9", 1)
	w.src.setHead(head, files)
	w.sync()
	st := w.status(n)
	if st.State != StateFailed || len(st.Errors) == 0 {
		t.Fatalf("state %s errors %v, want failed with errors", st.State, st.Errors)
	}
	if e := st.Errors[0]; e.File == "" || e.Line == 0 || !strings.Contains(e.Path, "replicas") {
		t.Errorf("error %+v does not name the head's file, line and field", e)
	}
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("a refused head was deployed: %v", got)
	}
	cs := w.comments(n)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "replicas") {
		t.Fatalf("comment %+v does not say what is refused", cs)
	}
}

func TestTargetsChangeIsRefused(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{}, "app:v2", "x")
	head := w.push(n, "app:v2", "y")
	files := headCUE(defaultPreviews, "app:v2", "y")
	files["berth.cue"] = strings.Replace(files["berth.cue"], `targets: local: {type: "docker"}`, `targets: local: {type: "docker", host: "tcp://203.0.113.9:2375"}`, 1)
	w.src.setHead(head, files)
	w.sync()
	if st := w.status(n); st.State != StateFailed {
		t.Fatalf("state %s, want failed", st.State)
	}
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("deployed %v", got)
	}
}

func TestMaxQueues(t *testing.T) {
	w := newWorld(t, `previews: pr: {from: "staging", when: labels: ["preview"], max: {total: 2, perAuthor: 1}}
`, nil)
	a := w.open(githubemu.PR{Author: "alice"}, "app:v2", "a")
	b := w.open(githubemu.PR{Author: "alice"}, "app:v2", "b")
	c := w.open(githubemu.PR{Author: "bob"}, "app:v2", "c")
	d := w.open(githubemu.PR{Author: "carol"}, "app:v2", "d")
	w.sync()
	want := map[int]string{a: StateReady, b: StateQueued, c: StateReady, d: StateQueued}
	for n, s := range want {
		if got := w.status(n).State; got != s {
			t.Errorf("pull request %d: %s, want %s (%s)", n, got, s, w.status(n).Reason)
		}
	}
	if cs := w.comments(d); len(cs) != 1 || !strings.Contains(cs[0].Body, "queued") {
		t.Errorf("the queued pull request is not told: %+v", cs)
	}
	w.emu.ClosePR(a)
	w.sync()
	w.sync()
	if got := w.status(b).State; got != StateReady {
		t.Errorf("after %d closed, %d is %s, want ready", a, b, got)
	}
	if got := w.status(d).State; got != StateQueued {
		t.Errorf("after %d closed, %d is %s, want still queued (total 2)", a, d, got)
	}
}

func TestGate(t *testing.T) {
	w := newWorld(t, `previews: pr: {from: "staging", when: labels: ["preview"], gate: statuses: ["ci/build"]}
`, nil)
	n := w.open(githubemu.PR{}, "app:v2", "a")
	w.sync()
	if st := w.status(n); st.State != StateGated || len(w.running(n)) != 0 {
		t.Fatalf("state %s, running %v; want gated and nothing", st.State, w.running(n))
	}
	ch, _ := w.forge.Get(w.ctx, n)
	w.emu.AddToken("ci-tok", "ci")
	ci, err := github.New(github.Options{BaseURL: w.emu.URL(), Repository: "acme/shop", Token: "ci-tok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ci.SetStatus(w.ctx, forge.Status{SHA: ch.HeadSHA, Context: "ci/build", State: forge.StatusPending}); err != nil {
		t.Fatal(err)
	}
	w.sync()
	if st := w.status(n); st.State != StateGated || !strings.Contains(st.Reason, "ci/build (pending)") {
		t.Fatalf("with ci/build pending: %s (%s)", st.State, st.Reason)
	}
	if err := ci.SetStatus(w.ctx, forge.Status{SHA: ch.HeadSHA, Context: "ci/build", State: forge.StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	w.sync()
	if st := w.status(n); st.State != StateReady {
		t.Fatalf("after green: %s (%s)", st.State, st.Reason)
	}
}

func TestOrphanFromRuntimeIsCollected(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	n := w.open(githubemu.PR{}, "app:v2", "a")
	w.sync()
	if len(w.running(n)) != 1 {
		t.Fatal("no preview")
	}
	// A new controller with no memory, and the pull request closed meanwhile.
	w.emu.ClosePR(n)
	w2 := *w
	c2, err := New(w.c.opts)
	if err != nil {
		t.Fatal(err)
	}
	w2.c = c2
	w2.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("the orphan is still running: %v", got)
	}
}

func TestHostileBranchNames(t *testing.T) {
	w := newWorld(t, defaultPreviews, nil)
	for i, ref := range []string{"../../etc/passwd", "ünï/cödé", strings.Repeat("b", 250), "$(rm -rf /);`x`|&", "a\nb"} {
		n := w.open(githubemu.PR{HeadRef: ref, Author: fmt.Sprint("author", i)}, "app:v2", "x")
		w.sync()
		st := w.status(n)
		if st.Environment != schema.PreviewName(n) || st.State != StateReady {
			t.Errorf("branch %q: environment %s state %s (%v)", ref, st.Environment, st.State, st.Errors)
		}
		for _, c := range w.comments(n) {
			if strings.Contains(c.Body, ref) {
				t.Errorf("branch text %q appears in the comment", ref)
			}
		}
	}
}

func TestTTL(t *testing.T) {
	w := newWorld(t, `previews: pr: {from: "staging", when: labels: ["preview"], ttl: "2h"}
`, nil)
	n := w.open(githubemu.PR{}, "app:v2", "a")
	w.sync()
	if len(w.running(n)) != 1 {
		t.Fatal("no preview")
	}
	w.clock.Set(t0.Add(3 * time.Hour))
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("expired preview still runs %v", got)
	}
	if st := w.status(n); st.State != StateGone || !strings.Contains(st.Reason, "expired") {
		t.Fatalf("state %s reason %q", st.State, st.Reason)
	}
}

func TestOrdinaryEnvironmentNamedLikeAPreview(t *testing.T) {
	w := newWorld(t, defaultPreviews+`environments: "pr-1": {branch: "other"}
`, nil)
	n := w.open(githubemu.PR{}, "app:v2", "a")
	w.sync()
	if st := w.status(n); st.State != StateFailed || !strings.Contains(st.Reason, "pr-1") {
		t.Fatalf("state %s (%s), want failed naming the clash", st.State, st.Reason)
	}
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("deployed %v into an ordinary environment's name", got)
	}
}

func TestPortRangeExhausted(t *testing.T) {
	w := newWorld(t, defaultPreviews, func(o *Options) { o.Ports = PortRange{From: 20000, To: 20000} })
	a := w.open(githubemu.PR{Author: "a"}, "app:v2", "a")
	w.sync()
	b := w.open(githubemu.PR{Author: "b"}, "app:v2", "b")
	w.sync()
	if st := w.status(a); st.State != StateReady {
		t.Fatalf("first preview: %s", st.State)
	}
	st := w.status(b)
	if st.State != StateFailed || len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Message, "no free host port") {
		t.Fatalf("second preview: %s %+v, want failed: no free host port", st.State, st.Errors)
	}
	if got := w.running(b); len(got) != 0 {
		t.Fatalf("the second preview runs %v on the base's port", got)
	}
}
