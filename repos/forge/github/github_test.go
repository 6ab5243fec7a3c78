package github_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

const token = "ghp_testtoken0123456789abcdefABCDEF0123"

func setup(t *testing.T) (*githubemu.Server, *github.Forge) {
	t.Helper()
	emu := githubemu.New("acme", "shop")
	t.Cleanup(emu.Close)
	emu.AddToken(token, "berth-bot")
	emu.AddCollaborator("berth-bot", "write")
	return emu, newForge(t, emu, 5*time.Second)
}

func newForge(t *testing.T, emu *githubemu.Server, timeout time.Duration) *github.Forge {
	t.Helper()
	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Token: token, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestListOpenPagesAndETag(t *testing.T) {
	emu, f := setup(t)
	for i := range 250 {
		emu.Open(githubemu.PR{Title: fmt.Sprint("pr ", i), HeadRef: fmt.Sprint("b", i)})
	}
	l, err := f.ListOpen(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Changes) != 250 || l.NotModified || l.ETag == "" {
		t.Fatalf("got %d changes, notModified=%v, etag %q", len(l.Changes), l.NotModified, l.ETag)
	}

	// An idle poll: one conditional request per page, every one a 304, no quota spent.
	all0, counted0 := emu.Requests()
	quota := emu.Remaining()
	again, err := f.ListOpen(ctx(t), l.ETag)
	if err != nil {
		t.Fatal(err)
	}
	all1, counted1 := emu.Requests()
	if !again.NotModified || again.Changes != nil || again.ETag != l.ETag {
		t.Fatalf("unchanged listing: %+v", again)
	}
	if all1-all0 != 3 || counted1 != counted0 || emu.Remaining() != quota {
		t.Fatalf("idle poll: %d requests, %d counted, quota %d → %d", all1-all0, counted1-counted0, quota, emu.Remaining())
	}

	// A change anywhere (the oldest pull request, on the last page) makes the listing change.
	emu.Push(1, strings.Repeat("ab", 20))
	l2, err := f.ListOpen(ctx(t), l.ETag)
	if err != nil || l2.NotModified || len(l2.Changes) != 250 {
		t.Fatalf("after a push: %v, %+v", err, l2.NotModified)
	}
	if l2.Changes[0].Number != 1 || l2.Changes[0].HeadSHA != strings.Repeat("ab", 20) {
		t.Fatalf("the pushed pull request is not first: %+v", l2.Changes[0])
	}
	emu.ClosePR(100)
	l3, err := f.ListOpen(ctx(t), l2.ETag)
	if err != nil || l3.NotModified || len(l3.Changes) != 249 {
		t.Fatalf("after a close: %v, %v, %d", err, l3.NotModified, len(l3.Changes))
	}
	emu.Label(7, "preview")
	l4, err := f.ListOpen(ctx(t), l3.ETag)
	if err != nil || l4.NotModified || l4.Changes[0].Number != 7 || l4.Changes[0].Labels[0] != "preview" {
		t.Fatalf("after a label: %v, %+v", err, l4)
	}
}

func TestIdlePollOneRequestNoQuota(t *testing.T) {
	emu, f := setup(t)
	emu.Open(githubemu.PR{Title: "one", HeadRef: "x"})
	l, err := f.ListOpen(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		a0, c0 := emu.Requests()
		q := emu.Remaining()
		n, err := f.ListOpen(ctx(t), l.ETag)
		a1, c1 := emu.Requests()
		if err != nil || !n.NotModified || a1-a0 != 1 || c1 != c0 || emu.Remaining() != q {
			t.Fatalf("idle poll: %v %v requests=%d counted=%d", err, n.NotModified, a1-a0, c1-c0)
		}
	}
}

func TestListOpenEmpty(t *testing.T) {
	_, f := setup(t)
	l, err := f.ListOpen(ctx(t), "")
	if err != nil || l.Changes == nil || len(l.Changes) != 0 || l.ETag == "" {
		t.Fatalf("%v %+v", err, l)
	}
	l2, err := f.ListOpen(ctx(t), l.ETag)
	if err != nil || !l2.NotModified {
		t.Fatalf("%v %+v", err, l2)
	}
}

func TestGet(t *testing.T) {
	emu, f := setup(t)
	open := emu.Open(githubemu.PR{Title: "t", Author: "alice", HeadRef: "feat", BaseRef: "main", Draft: true,
		Labels: []string{"preview"}})
	fork := emu.Open(githubemu.PR{Title: "f", Author: "mallory", HeadRef: "main", HeadRepo: "mallory/shop"})
	closed := emu.Open(githubemu.PR{Title: "c", HeadRef: "c"})
	merged := emu.Open(githubemu.PR{Title: "m", HeadRef: "m"})
	emu.ClosePR(closed)
	emu.Merge(merged)

	c, err := f.Get(ctx(t), open)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != forge.StateOpen || !c.Draft || c.Fork || c.HeadRepo != "acme/shop" || c.Author != "alice" ||
		c.HeadRef != "feat" || c.BaseRef != "main" || len(c.Labels) != 1 || c.HeadSHA == "" || c.UpdatedAt.IsZero() {
		t.Fatalf("open: %+v", c)
	}
	if c, err := f.Get(ctx(t), fork); err != nil || !c.Fork || c.HeadRepo != "mallory/shop" {
		t.Fatalf("fork: %v %+v", err, c)
	}
	gone := emu.Open(githubemu.PR{Title: "g", HeadRef: "x", ForkDeleted: true})
	if c, err := f.Get(ctx(t), gone); err != nil || !c.Fork || c.HeadRepo != "" {
		t.Fatalf("deleted fork: %v %+v", err, c)
	}
	if c, err := f.Get(ctx(t), closed); err != nil || c.State != forge.StateClosed {
		t.Fatalf("closed: %v %+v", err, c)
	}
	if c, err := f.Get(ctx(t), merged); err != nil || c.State != forge.StateMerged {
		t.Fatalf("merged: %v %+v", err, c)
	}
	_, err = f.Get(ctx(t), 999)
	var fe *forge.Error
	if !errors.Is(err, forge.ErrNotFound) || !errors.As(err, &fe) || fe.Status != 404 || fe.Temporary {
		t.Fatalf("missing: %v", err)
	}
}

func TestPermission(t *testing.T) {
	emu, f := setup(t)
	emu.AddCollaborator("root", "admin")
	emu.AddCollaborator("dev", "write")
	emu.AddCollaborator("viewer", "read")
	emu.AddCollaborator("stranger", "none")
	for user, want := range map[string]forge.Permission{
		"root": forge.PermissionAdmin, "dev": forge.PermissionWrite, "viewer": forge.PermissionRead,
		"stranger": forge.PermissionNone,
	} {
		got, err := f.Permission(ctx(t), user)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", user, got, err, want)
		}
	}
	if _, err := f.Permission(ctx(t), "ghost"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	before, _ := emu.Requests()
	for _, bad := range []string{"../admin", "a/b", "", "x%2F..", strings.Repeat("a", 60)} {
		if p, err := f.Permission(ctx(t), bad); err == nil || p != forge.PermissionNone {
			t.Errorf("%q: %v %v", bad, p, err)
		}
	}
	if after, _ := emu.Requests(); after != before {
		t.Errorf("a hostile login was sent: %d requests", after-before)
	}
}

func TestStatuses(t *testing.T) {
	emu, f := setup(t)
	sha := strings.Repeat("c", 40)
	s := forge.Status{SHA: sha, Context: "berth/prod/pr-1", State: forge.StatusPending, Description: "planning"}
	if err := f.SetStatus(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if err := f.SetStatus(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if n := emu.StatusCount(sha); n != 1 {
		t.Fatalf("the same status twice made %d", n)
	}
	s.State, s.Description = forge.StatusSuccess, strings.Repeat("é", 300)
	if err := f.SetStatus(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if err := f.SetStatus(ctx(t), s); err != nil { // the cut description compares equal
		t.Fatal(err)
	}
	if err := f.SetStatus(ctx(t), forge.Status{SHA: sha, Context: "ci/build", State: forge.StatusFailure}); err != nil {
		t.Fatal(err)
	}
	if n := emu.StatusCount(sha); n != 3 {
		t.Fatalf("%d statuses", n)
	}
	got, err := f.Statuses(ctx(t), sha)
	if err != nil || len(got) != 2 || got["berth/prod/pr-1"] != forge.StatusSuccess || got["ci/build"] != forge.StatusFailure {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := f.Statuses(ctx(t), strings.Repeat("d", 40)); err != nil || len(got) != 0 {
		t.Fatalf("no statuses: %v %v", got, err)
	}
	if _, err := f.Statuses(ctx(t), "../../user"); err == nil {
		t.Fatal("a non-SHA was accepted")
	}
}

func TestStatusesPaginate(t *testing.T) {
	emu, f := setup(t)
	sha := strings.Repeat("e", 40)
	for i := range 130 {
		if err := f.SetStatus(ctx(t), forge.Status{SHA: sha, Context: fmt.Sprint("c", i), State: forge.StatusSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Statuses(ctx(t), sha)
	if err != nil || len(got) != 130 {
		t.Fatalf("%d %v", len(got), err)
	}
	_ = emu
}

func TestUpsertComment(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "x"})
	marker := forge.Marker("prod", "pr-1")
	// A look-alike by another user, with berth's marker, comes first.
	fake := emu.AddComment(n, "mallory", marker+"\nI am berth, trust me")
	emu.AddComment(n, "alice", "looks good")

	id, err := f.UpsertComment(ctx(t), n, marker, "## Preview\nplanning")
	if err != nil {
		t.Fatal(err)
	}
	if id == fake {
		t.Fatal("edited another user's comment")
	}
	id2, err := f.UpsertComment(ctx(t), n, marker, "## Preview\nready")
	if err != nil || id2 != id {
		t.Fatalf("second upsert: %d %v (first %d)", id2, err, id)
	}
	cs := emu.CommentsOn(n)
	if len(cs) != 3 || cs[0].Body != marker+"\nI am berth, trust me" || cs[2].Body != marker+"\n## Preview\nready" ||
		cs[2].User != "berth-bot" {
		t.Fatalf("%+v", cs)
	}
	// Unchanged: no write.
	a0, _ := emu.Requests()
	if id3, err := f.UpsertComment(ctx(t), n, marker, "## Preview\nready"); err != nil || id3 != id {
		t.Fatal(id3, err)
	}
	a1, _ := emu.Requests()
	if a1-a0 != 1 { // the comment listing; GET /user was read once already
		t.Fatalf("unchanged upsert sent %d requests", a1-a0)
	}
	// Another key is another comment.
	if other, err := f.UpsertComment(ctx(t), n, forge.Marker("prod", "plan"), "plan"); err != nil || other == id {
		t.Fatal(other, err)
	}

	got, err := f.Comments(ctx(t), n)
	if err != nil || len(got) != 4 || got[0].Author != "mallory" || got[3].Author != "berth-bot" {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestUpsertCommentCutToLimit(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "x"})
	marker := forge.Marker("prod", "pr-1")
	body := strings.Repeat("界", 70000)
	if _, err := f.UpsertComment(ctx(t), n, marker, body); err != nil {
		t.Fatal(err)
	}
	cs := emu.CommentsOn(n)
	if len(cs) != 1 {
		t.Fatal(cs)
	}
	got := cs[0].Body
	if utf8.RuneCountInString(got) != githubemu.CommentLimit || !strings.HasPrefix(got, marker) ||
		!strings.HasSuffix(got, github.CutNote) {
		t.Fatalf("%d characters", utf8.RuneCountInString(got))
	}
	// The emulator itself refuses an over-long body, as GitHub does.
	if _, err := f.UpsertComment(ctx(t), n, marker, strings.Repeat("a", 100)); err != nil {
		t.Fatal(err)
	}
}

func TestHostileText(t *testing.T) {
	emu, f := setup(t)
	titles := []string{"日本語のタイトル 🚀", "../../etc/passwd", strings.Repeat("x", 250), "$(rm -rf /); `id` | tee", "a\u202eb"}
	refs := []string{"feature/ünïcødé", "../../../refs/heads/main", strings.Repeat("b", 250), "; rm -rf ~ #", "x\u200by"}
	for i := range titles {
		emu.Open(githubemu.PR{Title: titles[i], HeadRef: refs[i], Labels: []string{refs[i]}})
	}
	l, err := f.ListOpen(ctx(t), "")
	if err != nil || len(l.Changes) != len(titles) {
		t.Fatal(err, len(l.Changes))
	}
	for _, c := range l.Changes {
		i := c.Number - 1
		if c.Title != titles[i] || c.HeadRef != refs[i] || c.Labels[0] != refs[i] {
			t.Errorf("#%d: %q %q", c.Number, c.Title, c.HeadRef)
		}
		g, err := f.Get(ctx(t), c.Number)
		if err != nil || g.Title != titles[i] || g.HeadRef != refs[i] {
			t.Errorf("get #%d: %v %q", c.Number, err, g.HeadRef)
		}
	}
}

// Every fault, on the first page or a later one, is an error and never a list.
func TestFaultsAreErrors(t *testing.T) {
	kinds := map[string]struct {
		kind      githubemu.FaultKind
		status    int
		temporary bool
	}{
		"500":       {githubemu.Fault500, 500, true},
		"502 html":  {githubemu.Fault502HTML, 502, true},
		"200 html":  {githubemu.Fault200HTML, 200, true},
		"truncated": {githubemu.FaultTruncated, 200, true},
		"empty":     {githubemu.FaultEmpty, 200, true},
		"401":       {githubemu.Fault401, 401, false},
		"secondary": {githubemu.FaultSecondary, 403, true},
		"429":       {githubemu.Fault429, 429, true},
		"timeout":   {githubemu.FaultTimeout, 0, true},
	}
	for name, k := range kinds {
		for _, page := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/page%d", name, page), func(t *testing.T) {
				t.Parallel()
				emu, _ := setup(t)
				f := newForge(t, emu, 300*time.Millisecond)
				for range 150 {
					emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
				}
				match := "/pulls"
				if page == 2 {
					match = "page=2"
				}
				emu.Inject(githubemu.Fault{Kind: k.kind, Match: match})
				l, err := f.ListOpen(ctx(t), "")
				checkErr(t, err, k.status, k.temporary)
				if l.Changes != nil || l.NotModified {
					t.Fatalf("a fault gave a listing: %d changes", len(l.Changes))
				}
				if k.kind == githubemu.FaultSecondary || k.kind == githubemu.Fault429 {
					var fe *forge.Error
					errors.As(err, &fe)
					if fe.RetryAfter != time.Minute {
						t.Fatalf("retry after %v", fe.RetryAfter)
					}
				}
				if strings.Contains(err.Error(), token) {
					t.Fatal("the token is in the error")
				}
			})
		}
	}
}

func checkErr(t *testing.T, err error, status int, temporary bool) {
	t.Helper()
	var fe *forge.Error
	if !errors.As(err, &fe) {
		t.Fatalf("not a *forge.Error: %T %v", err, err)
	}
	if fe.Status != status || fe.Temporary != temporary || fe.Forge != "github" {
		t.Fatalf("status %d temporary %v, want %d %v: %v", fe.Status, fe.Temporary, status, temporary, err)
	}
	if errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("a fault says not found: %v", err)
	}
}

// A fault during the conditional requests of an idle poll is an error, not NotModified.
func TestFaultDuringConditionalPoll(t *testing.T) {
	emu, f := setup(t)
	for range 150 {
		emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	}
	l, err := f.ListOpen(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []githubemu.FaultKind{githubemu.Fault500, githubemu.Fault502HTML, githubemu.Fault200HTML,
		githubemu.FaultTruncated, githubemu.FaultEmpty} {
		emu.Inject(githubemu.Fault{Kind: k, Match: "page=2"})
		got, err := f.ListOpen(ctx(t), l.ETag)
		if err == nil || got.NotModified || got.Changes != nil {
			t.Fatalf("fault %d: %v %+v", k, err, got.NotModified)
		}
	}
	if got, err := f.ListOpen(ctx(t), l.ETag); err != nil || !got.NotModified {
		t.Fatalf("after the faults: %v %v", err, got.NotModified)
	}
	// A forged or foreign ETag is ignored: a full listing.
	if got, err := f.ListOpen(ctx(t), `W/"something"`); err != nil || got.NotModified || len(got.Changes) != 150 {
		t.Fatalf("foreign etag: %v %v", err, got.NotModified)
	}
}

// Every method fails with a *forge.Error on a fault.
func TestMethodsFail(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	sha := strings.Repeat("a", 40)
	calls := map[string]func() error{
		"get":         func() error { _, err := f.Get(ctx(t), n); return err },
		"permission":  func() error { _, err := f.Permission(ctx(t), "berth-bot"); return err },
		"statuses":    func() error { _, err := f.Statuses(ctx(t), sha); return err },
		"set status":  func() error { return f.SetStatus(ctx(t), forge.Status{SHA: sha, Context: "c", State: "success"}) },
		"comments":    func() error { _, err := f.Comments(ctx(t), n); return err },
		"upsert":      func() error { _, err := f.UpsertComment(ctx(t), n, forge.Marker("i", "k"), "b"); return err },
		"upsert/list": func() error { _, err := f.UpsertComment(ctx(t), n, forge.Marker("i", "k2"), "b"); return err },
	}
	for name, call := range calls {
		for _, k := range []githubemu.FaultKind{githubemu.Fault500, githubemu.Fault200HTML, githubemu.FaultTruncated,
			githubemu.Fault401} {
			emu.Inject(githubemu.Fault{Kind: k})
			var fe *forge.Error
			if err := call(); !errors.As(err, &fe) {
				t.Errorf("%s, fault %d: %v", name, k, err)
			}
		}
	}
}

func TestExpiredToken(t *testing.T) {
	emu, f := setup(t)
	if _, err := f.ListOpen(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	emu.ExpireToken(token)
	_, err := f.ListOpen(ctx(t), "")
	checkErr(t, err, 401, false)
	if !strings.Contains(err.Error(), "Bad credentials") || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("%v", err)
	}
}

func TestPrimaryRateLimit(t *testing.T) {
	emu, f := setup(t)
	emu.SetQuota(0)
	_, err := f.ListOpen(ctx(t), "")
	checkErr(t, err, 403, true)
	var fe *forge.Error
	errors.As(err, &fe)
	if fe.RetryAfter <= 0 || !strings.Contains(fe.Message, "rate limit") {
		t.Fatalf("%+v", fe)
	}
	// The client remembers the limit and does not send again until the reset.
	a0, _ := emu.Requests()
	_, err = f.Get(ctx(t), 1)
	checkErr(t, err, 403, true)
	if a1, _ := emu.Requests(); a1 != a0 {
		t.Fatalf("sent %d requests while rate limited", a1-a0)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, o := range []github.Options{
		{Repository: "acme", Token: "t"},
		{Repository: "acme/../x", Token: "t"},
		{Repository: "../shop", Token: "t"},
		{Repository: "acme/shop"},
		{Repository: "acme/shop", Token: "t", BaseURL: "ftp://x/"},
	} {
		if _, err := github.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// An answer that echoes the token is masked in the error; the Enterprise /api/v3 base URL works.
func TestTokenMaskedAndEnterprisePath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"message":"bad header %s"}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	f, err := github.New(github.Options{BaseURL: srv.URL + "/api/v3", Repository: "acme/shop", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Get(ctx(t), 1)
	checkErr(t, err, 500, true)
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "bad header") {
		t.Fatalf("%v", err)
	}

	emu, _ := setup(t)
	emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	ge, err := github.New(github.Options{BaseURL: strings.TrimSuffix(emu.URL(), "/") + "/api/v3/", Repository: "acme/shop", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ge.Get(ctx(t), 1); err != nil || c.Number != 1 {
		t.Fatal(c, err)
	}
}

func TestRate(t *testing.T) {
	emu, f := setup(t)
	if r, l, _ := f.Rate(); r != 0 || l != 0 {
		t.Fatal(r, l)
	}
	l, err := f.ListOpen(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	r, lim, reset := f.Rate()
	if r != emu.Remaining() || lim != githubemu.DefaultQuota || reset.IsZero() {
		t.Fatalf("%d %d %v (emulator %d)", r, lim, reset, emu.Remaining())
	}
	if _, err := f.ListOpen(ctx(t), l.ETag); err != nil {
		t.Fatal(err)
	}
	if r2, _, _ := f.Rate(); r2 != r {
		t.Fatalf("a 304 changed the remaining quota: %d → %d", r, r2)
	}
}

// Randomized faults on random pages of polls, with and without an ETag: every answer is a complete listing, a
// NotModified, or an error; never a partial or empty list.
func TestRandomFaultsNeverPartial(t *testing.T) {
	t.Parallel()
	emu, f := setup(t)
	const open = 201
	for range open {
		emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	}
	kinds := []githubemu.FaultKind{githubemu.Fault500, githubemu.Fault502HTML, githubemu.Fault200HTML,
		githubemu.FaultTruncated, githubemu.FaultEmpty}
	rng := rand.New(rand.NewPCG(10, 42))
	etag := ""
	errs := 0
	for i := range 120 {
		if rng.IntN(2) == 0 {
			emu.Inject(githubemu.Fault{Kind: kinds[rng.IntN(len(kinds))], Match: fmt.Sprintf("&page=%d", 1+rng.IntN(3))})
		}
		if rng.IntN(4) == 0 {
			emu.Label(1+rng.IntN(open), "x")
		}
		l, err := f.ListOpen(ctx(t), etag)
		switch {
		case err != nil:
			errs++
			if l.Changes != nil || l.NotModified {
				t.Fatalf("run %d: an error with a listing", i)
			}
		case l.NotModified:
			if etag == "" || l.Changes != nil {
				t.Fatalf("run %d: NotModified without an ETag", i)
			}
		case len(l.Changes) != open:
			t.Fatalf("run %d: %d of %d changes", i, len(l.Changes), open)
		default:
			etag = l.ETag
		}
		emu.ClearFaults()
	}
	if errs == 0 {
		t.Fatal("no fault was hit")
	}
}

// Reads revalidate with the ETag of the last answer: an unchanged Get, Permission, SetStatus or UpsertComment
// costs no quota, and a change is seen at once.
func TestIdleReadsCostNoQuota(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	sha := strings.Repeat("f", 40)
	marker := forge.Marker("prod", "pr-1")
	st := forge.Status{SHA: sha, Context: "berth/prod/pr-1", State: forge.StatusPending, Description: "planning"}
	pass := func() {
		t.Helper()
		if _, err := f.Get(ctx(t), n); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Permission(ctx(t), "berth-bot"); err != nil {
			t.Fatal(err)
		}
		if err := f.SetStatus(ctx(t), st); err != nil {
			t.Fatal(err)
		}
		if _, err := f.UpsertComment(ctx(t), n, marker, "planning"); err != nil {
			t.Fatal(err)
		}
	}
	pass()
	pass() // the status and the comment were written by the first pass: their reads changed once
	_, c0 := emu.Requests()
	for range 3 {
		pass()
	}
	if _, c1 := emu.Requests(); c1 != c0 {
		t.Fatalf("idle passes counted %d requests", c1-c0)
	}
	emu.Push(n, strings.Repeat("9", 40))
	if c, err := f.Get(ctx(t), n); err != nil || c.HeadSHA != strings.Repeat("9", 40) {
		t.Fatalf("a push was not seen: %v %+v", err, c)
	}
	emu.AddComment(n, "alice", "hello")
	if cs, err := f.Comments(ctx(t), n); err != nil || len(cs) != 2 {
		t.Fatalf("a new comment was not seen: %v %d", err, len(cs))
	}
}

func TestUntrustedTextBounded(t *testing.T) {
	emu, f := setup(t)
	labels := make([]string, 150)
	for i := range labels {
		labels[i] = strings.Repeat("l", 300)
	}
	n := emu.Open(githubemu.PR{Title: strings.Repeat("t", 5000), HeadRef: strings.Repeat("r", 5000), Labels: labels})
	c, err := f.Get(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Title) != 1024 || len(c.HeadRef) != 1024 || len(c.Labels) != 100 || len(c.Labels[0]) != 256 {
		t.Fatalf("%d %d %d %d", len(c.Title), len(c.HeadRef), len(c.Labels), len(c.Labels[0]))
	}
	bad := emu.Open(githubemu.PR{Title: "t", HeadRef: "b", HeadSHA: "../../etc"})
	if _, err := f.Get(ctx(t), bad); err == nil {
		t.Fatal("a head that is not a SHA was accepted")
	}
	if _, err := f.ListOpen(ctx(t), ""); err == nil {
		t.Fatal("a listing with a bad head was accepted")
	}
}
