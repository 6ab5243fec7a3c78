package preview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/repos/forge"
)

// TestForgesLifecycle runs a preview's lifecycle against each forge's client and emulator: open → ready with a URL,
// one comment and a success status; an idle pass costs no rate-limit quota; push → the same comment edited and the
// preview follows; close → the preview is gone and the comment says so.
func TestForgesLifecycle(t *testing.T) {
	for _, kind := range []string{"github", "gitlab", "gitea"} {
		t.Run(kind, func(t *testing.T) { forgeLifecycle(t, kind) })
	}
}

func forgeLifecycle(t *testing.T, kind string) {
	w := newForgeWorld(t, kind, defaultPreviews)
	n, head := w.openChange("alice", "app:v2", "hi from the change")
	w.sync()

	st := w.status(n)
	if st.State != StateReady || st.Head != head || st.Deployed != head {
		t.Fatalf("state %s (%s) head %s deployed %s, errors %v; want ready at %s", st.State, st.Reason, st.Head, st.Deployed, st.Errors, head)
	}
	wantRef := fmt.Sprintf("refs/pull/%d/head", n)
	if kind == "gitlab" {
		wantRef = fmt.Sprintf("refs/merge-requests/%d/head", n)
	}
	if refs := w.src.asked(); len(refs) != 1 || refs[0] != wantRef {
		t.Errorf("head fetched at %v, want once at %s", refs, wantRef)
	}
	if got := w.running(n); len(got) != 1 || got["web"] != "app:v2" {
		t.Fatalf("preview runs %v, want web at app:v2", got)
	}
	if len(st.URLs) != 1 || !strings.HasPrefix(st.URLs[0], fmt.Sprintf("http://pr-%d-", n)) || !strings.HasSuffix(st.URLs[0], ".localhost:8480/") {
		t.Fatalf("URLs %v, want one http://pr-%d-<random>.localhost:8480/", st.URLs, n)
	}
	cs := w.berthComments(n)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "ready") || !strings.Contains(cs[0].Body, st.URLs[0]) {
		t.Fatalf("comments %+v, want one saying ready with the URL", cs)
	}
	if cs[0].Author != "" && cs[0].Author != "berth-bot" {
		t.Errorf("the comment is by %s, want berth-bot", cs[0].Author)
	}
	if got := w.commitStatus(n, head); got != forge.StatusSuccess {
		t.Fatalf("commit status of %s is %q, want success", head, got)
	}

	// Idle passes: the second one is measured (the first may still settle something).
	w.sync()
	reqs, counted := w.d.usage()
	w.sync()
	reqs2, counted2 := w.d.usage()
	t.Logf("%s: an idle pass made %d requests, %d of them counted against the rate limit", kind, reqs2-reqs, counted2-counted)
	if kind != "gitea" && counted2 != counted {
		t.Errorf("an idle pass spent %d requests of the rate limit, want none (ETag, 304)", counted2-counted)
	}
	if reqs2-reqs > 1 {
		t.Errorf("an idle pass made %d requests, want at most the listing", reqs2-reqs)
	}
	if again := w.berthComments(n); len(again) != 1 || again[0].Body != cs[0].Body {
		t.Errorf("an idle pass changed the comment: %+v", again)
	}
	if w.d.etags != nil {
		// Gitea itself sends no ETag (giteaemu's doc): the client compares a digest of the listing instead.
		w.d.etags(false)
		w.sync()
		reqs, counted = w.d.usage()
		w.sync()
		reqs2, counted2 = w.d.usage()
		t.Logf("%s without ETags: an idle pass made %d requests, %d of them counted against the rate limit", kind, reqs2-reqs, counted2-counted)
		if reqs2-reqs > 1 {
			t.Errorf("without ETags an idle pass made %d requests, want the listing only", reqs2-reqs)
		}
		if st := w.status(n); st.State != StateReady || st.Deployed != head {
			t.Fatalf("without ETags: state %s deployed %s", st.State, st.Deployed)
		}
		w.d.etags(true)
	}

	// A push: the preview follows the head, the same comment is edited.
	head2 := w.pushChange(n, "app:v3", "second push")
	w.sync()
	if st := w.status(n); st.State != StateReady || st.Deployed != head2 {
		t.Fatalf("after the push: state %s (%s) deployed %s, want ready at %s", st.State, st.Reason, st.Deployed, head2)
	}
	if got := w.running(n); len(got) != 1 || got["web"] != "app:v3" {
		t.Fatalf("after the push the preview runs %v", got)
	}
	if cs2 := w.berthComments(n); len(cs2) != 1 || cs2[0].ID != cs[0].ID || !strings.Contains(cs2[0].Body, short(head2)) {
		t.Fatalf("after the push comments are %+v, want the same one (%d) edited with the new head", cs2, cs[0].ID)
	}
	if got := w.commitStatus(n, head2); got != forge.StatusSuccess {
		t.Fatalf("commit status of %s is %q, want success", head2, got)
	}
	wantRef2 := []string{wantRef, wantRef}
	if refs := w.src.asked(); strings.Join(refs, " ") != strings.Join(wantRef2, " ") {
		t.Errorf("heads fetched at %v, want %v", refs, wantRef2)
	}

	// Close: everything is removed, the comment says so.
	w.d.close(n)
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("after closing the preview still runs %v", got)
	}
	if st := w.status(n); st.State != StateGone || !strings.Contains(st.Reason, "closed") {
		t.Fatalf("after closing: state %s (%s)", st.State, st.Reason)
	}
	if cs3 := w.berthComments(n); len(cs3) != 1 || cs3[0].ID != cs[0].ID || !strings.Contains(cs3[0].Body, "destroyed") {
		t.Fatalf("after closing comments are %+v", cs3)
	}
	if base, _ := w.prov.List(w.ctx, providers.Owner{Instance: "test", Environment: "staging"}, "local"); len(base) != 0 {
		t.Fatalf("the base environment got %v", base)
	}
}

// TestForgesFaultsDuringClose closes a change while the forge fails in each way its emulator offers, on every
// read of pull requests or on the fresh read alone: nothing is destroyed until the forge answers, then the preview
// goes.
func TestForgesFaultsDuringClose(t *testing.T) {
	for _, kind := range []string{"gitlab", "gitea"} {
		probe := newForgeWorld(t, kind, defaultPreviews)
		for _, f := range probe.d.faults {
			for _, target := range []string{"all", "get"} {
				t.Run(kind+"/"+f.name+"/"+target, func(t *testing.T) { faultDuringClose(t, kind, f.name, target) })
			}
		}
	}
}

func faultDuringClose(t *testing.T, kind, faultName, target string) {
	w := newForgeWorld(t, kind, defaultPreviews)
	var f forgeFault
	for _, g := range w.d.faults {
		if g.name == faultName {
			f = g
		}
	}
	if f.timeout {
		w.c.opts.Forge = w.d.newForge(t, 200*time.Millisecond)
	}
	n, _ := w.openChange("alice", "app:v2", "a")
	if n != 1 {
		t.Fatalf("the change is %d, the faults name 1", n)
	}
	w.sync()
	if len(w.running(n)) != 1 {
		t.Fatalf("no preview: %+v", w.status(n))
	}
	w.d.close(n)
	const faulted = 2
	f.inject(target, faulted)
	before := f.requests(target)
	for pass := 0; f.requests(target)-before < faulted; pass++ {
		if pass == 10 {
			t.Fatalf("after %d passes the fault was served %d times of %d", pass, f.requests(target)-before, faulted)
		}
		w.sync()
		if got := w.running(n); len(got) != 1 {
			t.Fatalf("pass %d: the preview was destroyed on a forge fault", pass)
		}
		if st := w.status(n); st.State != StateReady {
			t.Fatalf("pass %d: state %s (%s), want still ready", pass, st.State, st.Reason)
		}
		if w.c.Report().LastError == "" {
			t.Errorf("pass %d: the fault is not reported", pass)
		}
	}
	w.sync()
	if got := w.running(n); len(got) != 0 {
		t.Fatalf("once the forge answers, the closed preview must go; runs %v (%s)", got, w.c.Report().LastError)
	}
	if st := w.status(n); st.State != StateGone {
		t.Fatalf("state %s (%s), want gone", st.State, st.Reason)
	}
	if cs := w.berthComments(n); len(cs) != 1 || !strings.Contains(cs[0].Body, "destroyed") {
		t.Fatalf("comments %+v, want one saying destroyed", cs)
	}
}
