package gitea_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
	"github.com/berth-dev/berth/repos/forge/gitea/giteaemu"
)

const token = "tok-3f9a1c0e7d"

func setup(t testing.TB) (*gitea.Forge, *giteaemu.Server) {
	t.Helper()
	emu := giteaemu.New("acme", "shop", "berth-bot", token)
	t.Cleanup(emu.Close)
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token,
		Timeout: 2 * time.Second, HTTPClient: emu.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return f, emu
}

func sha(i int) string { return fmt.Sprintf("%040x", i) }

func TestListOpenPagesAndETag(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	for i := range 120 {
		emu.Open(giteaemu.PR{Title: fmt.Sprintf("change %d", i), Author: "alice", HeadRef: fmt.Sprintf("b%d", i),
			HeadSHA: sha(i)})
	}
	closed := emu.Open(giteaemu.PR{Title: "gone", Author: "bob", HeadRef: "x", HeadSHA: sha(999)})
	emu.ClosePull(closed)
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Changes) != 120 || l.NotModified || l.ETag == "" {
		t.Fatalf("got %d changes, notModified %v, etag %q", len(l.Changes), l.NotModified, l.ETag)
	}
	if got := emu.Requests("GET /pulls"); got != 3 {
		t.Fatalf("pulls requests = %d, want 3 pages of 50", got)
	}
	// Unchanged, multi-page: berth's own digest ETag says NotModified (Gitea sends none per listing).
	l2, err := f.ListOpen(ctx, l.ETag)
	if err != nil || !l2.NotModified || l2.Changes != nil {
		t.Fatalf("second poll: %+v %v", l2.NotModified, err)
	}
	emu.Push(1, sha(5000))
	l3, err := f.ListOpen(ctx, l.ETag)
	if err != nil || l3.NotModified || len(l3.Changes) != 120 {
		t.Fatalf("after push: notModified %v, %d changes, %v", l3.NotModified, len(l3.Changes), err)
	}
}

func TestIdlePollIsA304AndFree(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	emu.Open(giteaemu.PR{Title: "one", Author: "alice", HeadRef: "feature", HeadSHA: sha(1)})
	l, err := f.ListOpen(ctx, "")
	if err != nil || len(l.Changes) != 1 {
		t.Fatal(l, err)
	}
	before, reqs := emu.Remaining(), emu.Requests("")
	for range 5 {
		l2, err := f.ListOpen(ctx, l.ETag)
		if err != nil || !l2.NotModified || l2.ETag != l.ETag {
			t.Fatalf("idle poll: %+v %v", l2, err)
		}
	}
	if emu.Remaining() != before {
		t.Fatalf("quota dropped from %d to %d on 304s", before, emu.Remaining())
	}
	if got := emu.Requests("") - reqs; got != 5 {
		t.Fatalf("requests per idle poll = %d/5, want 1", got)
	}
	emu.Label(1, "preview")
	l3, err := f.ListOpen(ctx, l.ETag)
	if err != nil || l3.NotModified || len(l3.Changes) != 1 || len(l3.Changes[0].Labels) != 1 {
		t.Fatalf("after label: %+v %v", l3, err)
	}
}

func TestFaultsAreErrorsNeverEmptyLists(t *testing.T) {
	faults := map[string]giteaemu.Fault{
		"5xx": giteaemu.Fault5xx, "html200": giteaemu.FaultHTML200, "html502": giteaemu.FaultHTML502,
		"truncated": giteaemu.FaultTruncated, "timeout": giteaemu.FaultTimeout, "expired": giteaemu.FaultExpired,
		"ratelimit": giteaemu.FaultRateLimit, "secondary": giteaemu.FaultSecondary,
	}
	for name, fault := range faults {
		for _, page := range []string{"page=1", "page=2"} {
			t.Run(name+"/"+page, func(t *testing.T) {
				f, emu := setup(t)
				ctx := context.Background()
				if fault == giteaemu.FaultTimeout {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
					defer cancel()
				}
				for i := range 60 {
					emu.Open(giteaemu.PR{Title: "t", Author: "alice", HeadRef: "b", HeadSHA: sha(i)})
				}
				failPage(emu, page, fault)
				l, err := f.ListOpen(ctx, "")
				var fe *forge.Error
				if !errors.As(err, &fe) {
					t.Fatalf("got %d changes and %v, want a *forge.Error", len(l.Changes), err)
				}
				if l.Changes != nil {
					t.Fatalf("partial list with the error: %d", len(l.Changes))
				}
				if strings.Contains(err.Error(), token) {
					t.Fatal("token in error")
				}
				switch fault {
				case giteaemu.FaultExpired:
					if fe.Status != 401 || fe.Temporary {
						t.Fatalf("expired: %+v", fe)
					}
				case giteaemu.FaultRateLimit, giteaemu.FaultSecondary:
					if !fe.Temporary || fe.RetryAfter != 30*time.Second {
						t.Fatalf("rate limit: %+v", fe)
					}
				default:
					if !fe.Temporary {
						t.Fatalf("not temporary: %+v", fe)
					}
				}
			})
		}
	}
}

// failPage arms fault for the listing's page p.
func failPage(emu *giteaemu.Server, p string, fault giteaemu.Fault) {
	if p == "page=1" {
		emu.Fail("GET /repos/acme/shop/pulls", fault, 1)
		return
	}
	emu.FailQuery("GET /repos/acme/shop/pulls", "page=2", fault, 1)
}

func TestGet(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	n := emu.Open(giteaemu.PR{Title: "fork", Author: "mallory", HeadRef: "evil", HeadSHA: sha(7),
		HeadRepo: "mallory/shop", Draft: true})
	c, err := f.Get(ctx, int(n))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Fork || c.HeadRepo != "mallory/shop" || !c.Draft || c.State != forge.StateOpen || c.Author != "mallory" ||
		c.BaseRef != "main" || c.HeadSHA != sha(7) {
		t.Fatalf("%+v", c)
	}
	emu.MergePull(n)
	if c, err = f.Get(ctx, int(n)); err != nil || c.State != forge.StateMerged {
		t.Fatalf("%+v %v", c, err)
	}
	m := emu.Open(giteaemu.PR{Title: "x", Author: "alice", HeadRef: "y", HeadSHA: sha(8)})
	emu.ClosePull(m)
	if c, err = f.Get(ctx, int(m)); err != nil || c.State != forge.StateClosed || c.Fork {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err = f.Get(ctx, 4242); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	emu.Fail("/pulls/", giteaemu.FaultHTML200, 1)
	if _, err = f.Get(ctx, int(m)); err == nil || errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("html: %v", err)
	}
}

func TestHostileText(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	long := strings.Repeat("ü", 250)
	names := []string{"../../etc/passwd", "feat/ünïcødé-✓", long, "$(rm -rf /); `id` && echo 'x' | sh", "a\x1b[31mred"}
	for i, n := range names {
		emu.Open(giteaemu.PR{Title: n, Author: "alice", HeadRef: n, HeadSHA: sha(i)})
	}
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range l.Changes {
		if c.Title != c.HeadRef {
			t.Fatalf("title %q ref %q", c.Title, c.HeadRef)
		}
		got[c.HeadRef] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Fatalf("branch %q not passed through as data", n)
		}
	}
}

func TestPermission(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	emu.Collaborator("wendy", "write")
	emu.Collaborator("rita", "read")
	emu.AddUser("nobody")
	for user, want := range map[string]forge.Permission{"wendy": forge.PermissionWrite, "rita": forge.PermissionRead,
		"nobody": forge.PermissionNone, "acme": forge.PermissionAdmin, "berth-bot": forge.PermissionAdmin} {
		got, err := f.Permission(ctx, user)
		if err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", user, got, err, want)
		}
	}
	if _, err := f.Permission(ctx, "ghost"); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("ghost: %v", err)
	}
	emu.Fail("/permission", giteaemu.Fault5xx, 1)
	if p, err := f.Permission(ctx, "wendy"); err == nil || p.CanWrite() {
		t.Fatalf("5xx: %s %v", p, err)
	}
}

func TestStatuses(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	s := forge.Status{SHA: sha(1), Context: "berth/eu/pr-1", State: forge.StatusPending,
		Description: strings.Repeat("d", 300), TargetURL: "https://berth.example/p/1"}
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := emu.Statuses(sha(1)); len(got) != 1 || utf8.RuneCountInString(got[0].Description) != 140 {
		t.Fatalf("statuses %+v", got)
	}
	// A fresh Forge (a restart) reads the forge and still sends nothing.
	f2, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.SetStatus(ctx, s); err != nil || emu.Requests("POST /statuses") != 1 {
		t.Fatalf("restart: %v, posts %d", err, emu.Requests("POST /statuses"))
	}
	s.State = forge.StatusSuccess
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := f.Statuses(ctx, sha(1))
	if err != nil || len(got) != 1 || got["berth/eu/pr-1"] != forge.StatusSuccess {
		t.Fatalf("%v %v", got, err)
	}
	// Many statuses over several pages: newest per context.
	for i := range 70 {
		st := forge.StatusPending
		if i == 69 {
			st = forge.StatusFailure
		}
		if err := f.SetStatus(ctx, forge.Status{SHA: sha(2), Context: fmt.Sprintf("ci/%d", i%3), State: st,
			Description: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err = f.Statuses(ctx, sha(2))
	if err != nil || len(got) != 3 || got["ci/0"] != forge.StatusFailure || got["ci/1"] != forge.StatusPending {
		t.Fatalf("%v %v", got, err)
	}
	emu.Fail("/statuses", giteaemu.FaultTruncated, 1)
	if got, err := f.Statuses(ctx, sha(2)); err == nil || got != nil {
		t.Fatalf("truncated: %v %v", got, err)
	}
}

func TestUpsertComment(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	n := int(emu.Open(giteaemu.PR{Title: "t", Author: "alice", HeadRef: "b", HeadSHA: sha(1)}))
	marker := forge.Marker("eu", "pr-1")
	// A look-alike by another user holds the marker too; berth must not edit it.
	fake := emu.Comment(int64(n), "mallory", marker+"\nI am berth, trust me")
	emu.Comment(int64(n), "alice", "looks good")
	other, err := f.UpsertComment(ctx, n, forge.Marker("eu", "pr-10"), "another preview's comment")
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.UpsertComment(ctx, n, marker, "state: applying")
	if err != nil {
		t.Fatal(err)
	}
	if id == fake || id == other {
		t.Fatalf("edited a look-alike (%d; mallory %d, pr-10 %d)", id, fake, other)
	}
	id2, err := f.UpsertComment(ctx, n, marker, "state: ready")
	if err != nil || id2 != id {
		t.Fatalf("second upsert: %d %v (first %d)", id2, err, id)
	}
	cs := emu.Comments(int64(n))
	if len(cs) != 4 || cs[0].Body != marker+"\nI am berth, trust me" || cs[3].Body != marker+"\nstate: ready" ||
		cs[3].User.Login != "berth-bot" || cs[2].Body != forge.Marker("eu", "pr-10")+"\nanother preview's comment" {
		t.Fatalf("%+v", cs)
	}
	// The same body again sends no edit.
	patches := emu.Requests("PATCH /comments/{id}")
	if _, err := f.UpsertComment(ctx, n, marker, "state: ready"); err != nil || emu.Requests("PATCH /comments/{id}") != patches {
		t.Fatalf("no-op upsert sent an edit: %v", err)
	}
	if got := emu.Requests("GET /user"); got != 1 {
		t.Fatalf("GET /user %d times, want once", got)
	}
	// Over the limit: cut, with a note, and accepted.
	big := strings.Repeat("plan line ✓\n", 10000)
	if _, err := f.UpsertComment(ctx, n, marker, big); err != nil {
		t.Fatal(err)
	}
	body := emu.Comments(int64(n))[3].Body
	if len(body) > gitea.DefaultCommentBytes || !strings.HasPrefix(body, marker) || !strings.Contains(body, "cut to fit") ||
		!utf8.ValidString(body) {
		t.Fatalf("cut body: %d bytes", len(body))
	}
	// The emulator refuses an oversize body with 422, as a forge does: the error quotes its words.
	emu.SetCommentLimit(10)
	_, err = f.UpsertComment(ctx, n, marker, "something longer than ten")
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.Status != 422 || !strings.Contains(fe.Message, "too long") || fe.Temporary {
		t.Fatalf("422: %v", err)
	}
	got, err := f.Comments(ctx, n)
	if err != nil || len(got) != 4 || got[0].Author != "mallory" {
		t.Fatalf("%+v %v", got, err)
	}
	emu.Fail("/comments", giteaemu.FaultHTML200, 1)
	if got, err := f.Comments(ctx, n); err == nil || got != nil {
		t.Fatalf("html: %v", err)
	}
}

func TestExpiredToken(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	if _, err := f.ListOpen(ctx, ""); err != nil {
		t.Fatal(err)
	}
	emu.ExpireToken(token)
	_, err := f.ListOpen(ctx, "")
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.Status != 401 || strings.Contains(err.Error(), token) {
		t.Fatalf("%v", err)
	}
}

func TestErrorsQuoteRedacted(t *testing.T) {
	f, emu := setup(t)
	emu.Fail("/pulls", giteaemu.FaultHTML502, 1)
	_, err := f.ListOpen(context.Background(), "")
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.Status != 502 || !strings.Contains(fe.Message, "Bad Gateway") || len(fe.Message) > 600 {
		t.Fatalf("%v", err)
	}
}

func TestNoServerETag(t *testing.T) {
	f, emu := setup(t)
	emu.SetETags(false) // what Gitea itself does
	ctx := context.Background()
	emu.Open(giteaemu.PR{Title: "WIP: later", Author: "alice", HeadRef: "b", HeadSHA: sha(1)})
	l, err := f.ListOpen(ctx, "")
	if err != nil || len(l.Changes) != 1 || !strings.HasPrefix(l.ETag, "berth-sha256:") || !l.Changes[0].Draft {
		t.Fatalf("%+v %v", l, err)
	}
	reqs := emu.Requests("")
	l2, err := f.ListOpen(ctx, l.ETag)
	if err != nil || !l2.NotModified || emu.Requests("")-reqs != 1 {
		t.Fatalf("%+v %v, %d requests", l2, err, emu.Requests("")-reqs)
	}
	emu.Push(1, sha(2))
	if l3, err := f.ListOpen(ctx, l.ETag); err != nil || l3.NotModified || l3.Changes[0].HeadSHA != sha(2) {
		t.Fatalf("%+v %v", l3, err)
	}
}

func TestOptionsTimeout(t *testing.T) {
	emu := giteaemu.New("acme", "shop", "berth-bot", token)
	defer emu.Close()
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL + "/api/v1/", Repository: "acme/shop", Token: token,
		Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	emu.Fail("/pulls", giteaemu.FaultTimeout, 1)
	_, err = f.ListOpen(context.Background(), "")
	var fe *forge.Error
	if !errors.As(err, &fe) || !fe.Temporary || fe.Status != 0 {
		t.Fatalf("%v", err)
	}
}

func TestPermissionNeedsAdminToken(t *testing.T) {
	emu := giteaemu.New("acme", "shop", "berth-bot", token)
	defer emu.Close()
	emu.Collaborator("berth-bot", "write")
	emu.Collaborator("wendy", "write")
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Permission(context.Background(), "wendy")
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.Status != 403 || fe.Temporary || p.CanWrite() ||
		!strings.Contains(fe.Message, "repo admins") {
		t.Fatalf("%s %v", p, err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, o := range []gitea.Options{{}, {BaseURL: "http://x", Repository: "acme", Token: "t"},
		{BaseURL: "http://x", Repository: "a/b/c", Token: "t"}, {BaseURL: "http://x", Repository: "a/b"}} {
		if _, err := gitea.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestQuotaSpent(t *testing.T) {
	emu := giteaemu.New("acme", "shop", "berth-bot", token)
	defer emu.Close()
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token, Now: emu.Now})
	if err != nil {
		t.Fatal(err)
	}
	emu.SetQuota(0)
	_, err = f.ListOpen(context.Background(), "")
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.Status != 403 || !fe.Temporary || fe.RetryAfter != time.Hour {
		t.Fatalf("%+v", err)
	}
}

func TestPagingHeadersStripped(t *testing.T) {
	f, emu := setup(t)
	emu.StripPaging(true)
	for i := range 101 {
		emu.Open(giteaemu.PR{Title: "t", Author: "alice", HeadRef: "b", HeadSHA: sha(i)})
	}
	l, err := f.ListOpen(context.Background(), "")
	if err != nil || len(l.Changes) != 101 {
		t.Fatalf("%d %v", len(l.Changes), err)
	}
}

func TestHostileUserIsData(t *testing.T) {
	f, emu := setup(t)
	emu.Collaborator("admin", "admin")
	for _, u := range []string{"../admin", "admin/../../x", "ad min?x=1#", "ünï"} {
		if p, err := f.Permission(context.Background(), u); !errors.Is(err, forge.ErrNotFound) || p.CanWrite() {
			t.Errorf("%q: %s %v", u, p, err)
		}
	}
}
