package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitlab"
	"github.com/berth-dev/berth/repos/forge/gitlab/gitlabemu"
)

const token = "glpat-test-token-0123456789"

func setup(t *testing.T) (*gitlabemu.Server, *gitlab.Forge) {
	t.Helper()
	emu := gitlabemu.New(7, "group/app", "berth-bot", token)
	t.Cleanup(emu.Close)
	f, err := gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "group/app", Token: token, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return emu, f
}

func asForgeError(t *testing.T, err error) *forge.Error {
	t.Helper()
	var fe *forge.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *forge.Error", err, err)
	}
	if strings.Contains(fe.Error(), token) {
		t.Fatalf("token in error: %v", fe)
	}
	return fe
}

func TestListOpenAllPagesAndForks(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	fork := emu.AddProject("someone/app")
	for i := 0; i < 230; i++ {
		emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	}
	n := emu.Open(gitlabemu.MR{Title: "fork", Author: "eve", SHA: "f00", SourceBranch: "x", TargetBranch: "main", SourceProjectID: fork, Draft: true})
	emu.CloseMR(1)
	emu.Merge(2)
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Changes) != 229 || l.ETag == "" || l.NotModified {
		t.Fatalf("got %d changes, etag %q", len(l.Changes), l.ETag)
	}
	var found bool
	for _, c := range l.Changes {
		if c.Number == int(n) {
			found = true
			if !c.Fork || c.HeadRepo != "someone/app" || !c.Draft || c.Author != "eve" || c.State != forge.StateOpen {
				t.Fatalf("fork change %+v", c)
			}
		} else if c.Fork || c.HeadRepo != "group/app" {
			t.Fatalf("change %+v", c)
		}
	}
	if !found {
		t.Fatal("fork MR not listed")
	}
	gone := emu.Open(gitlabemu.MR{Title: "gone fork", Author: "eve", SHA: "f01", SourceBranch: "y", TargetBranch: "main", SourceProjectID: 424242})
	if c, err := f.Get(ctx, int(gone)); err != nil || !c.Fork || c.HeadRepo != "" {
		t.Fatalf("MR from a deleted fork: %+v %v", c, err)
	}
	c, err := f.Get(ctx, 2)
	if err != nil || c.State != forge.StateMerged {
		t.Fatalf("Get merged: %+v %v", c, err)
	}
	c, err = f.Get(ctx, 1)
	if err != nil || c.State != forge.StateClosed {
		t.Fatalf("Get closed: %+v %v", c, err)
	}
	_, err = f.Get(ctx, 9999)
	if !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
}

func TestUnchangedPollIsFree(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	for i := 0; i < 150; i++ {
		emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	}
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	before, reqs := emu.Remaining(), emu.Requests("")
	l2, err := f.ListOpen(ctx, l.ETag)
	if err != nil || !l2.NotModified || l2.Changes != nil {
		t.Fatalf("second poll: %+v %v", l2, err)
	}
	if emu.Remaining() != before {
		t.Fatalf("an unchanged poll cost quota: %d → %d", before, emu.Remaining())
	}
	if got := emu.Requests("") - reqs; got != 2 {
		t.Fatalf("idle poll of 2 pages took %d requests", got)
	}
	// A change on the last page only (an MR leaves it) is seen.
	emu.CloseMR(1)
	l3, err := f.ListOpen(ctx, l.ETag)
	if err != nil || l3.NotModified || len(l3.Changes) != 149 {
		t.Fatalf("after close: notModified=%v n=%d %v", l3.NotModified, len(l3.Changes), err)
	}
	emu.Push(5, "def")
	l4, err := f.ListOpen(ctx, l3.ETag)
	if err != nil || l4.NotModified || l4.Changes[0].HeadSHA != "def" {
		t.Fatalf("after push: %+v %v", l4.NotModified, err)
	}
	emu.Label(6, "preview")
	l5, err := f.ListOpen(ctx, l4.ETag)
	if err != nil || l5.NotModified || l5.Changes[0].Labels[0] != "preview" {
		t.Fatalf("after label: %v %v", l5.NotModified, err)
	}
}

func TestFaultsAreErrors(t *testing.T) {
	cases := map[string]gitlabemu.Fault{
		"500":       {Status: 500, Body: `{"message":"500 Internal Server Error"}`},
		"html 200":  {Status: 200, Body: "<html><body>Sign in</body></html>", ContentType: "text/html"},
		"html 502":  {Status: 502, Body: "<html><body>502 Bad Gateway</body></html>", ContentType: "text/html"},
		"truncated": {Truncate: true},
		"403":       {Status: 403, Body: `{"message":"403 Forbidden"}`},
		"timeout":   {Hang: true},
	}
	for name, fault := range cases {
		for _, after := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/page%d", name, after+1), func(t *testing.T) {
				emu, f := setup(t)
				for i := 0; i < 120; i++ {
					emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
				}
				fault.Path, fault.After = "merge_requests", after
				emu.Inject(fault)
				if name == "timeout" {
					f, _ = gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "group/app", Token: token, Timeout: 200 * time.Millisecond})
				}
				l, err := f.ListOpen(context.Background(), "")
				if err == nil {
					t.Fatalf("no error, %d changes", len(l.Changes))
				}
				fe := asForgeError(t, err)
				if l.Changes != nil {
					t.Fatal("changes with an error")
				}
				if name != "403" && !fe.Temporary {
					t.Fatalf("not temporary: %v", fe)
				}
				if strings.HasPrefix(name, "html 502") && !strings.Contains(fe.Message, "502 Bad Gateway") {
					t.Fatalf("host's words not quoted: %v", fe)
				}
			})
		}
	}
}

func TestRateLimitAndExpiredToken(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	emu.SetQuota(0)
	_, err := f.ListOpen(ctx, "")
	fe := asForgeError(t, err)
	if fe.Status != 429 || !fe.Temporary || fe.RetryAfter != 60*time.Second {
		t.Fatalf("rate limit: %+v", fe)
	}
	emu.SetQuota(100)
	emu.ExpireToken(token)
	_, err = f.ListOpen(ctx, "")
	fe = asForgeError(t, err)
	if fe.Status != 401 || fe.Temporary {
		t.Fatalf("expired: %+v", fe)
	}
}

func TestPermission(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	for user, lvl := range map[string]int{"guest": 10, "rep": 20, "dev": 30, "maint": 40, "owner": 50} {
		emu.AddMember(user, lvl)
	}
	emu.AddUser("stranger")
	want := map[string]forge.Permission{"guest": forge.PermissionNone, "rep": forge.PermissionRead,
		"dev": forge.PermissionWrite, "maint": forge.PermissionAdmin, "owner": forge.PermissionAdmin,
		"stranger": forge.PermissionNone}
	for user, w := range want {
		p, err := f.Permission(ctx, user)
		if err != nil || p != w {
			t.Errorf("%s: %v %v, want %v", user, p, err, w)
		}
	}
	if _, err := f.Permission(ctx, "nobody"); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestStatuses(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	s := forge.Status{SHA: "abc", Context: "berth/x/pr-1", State: forge.StatusPending, Description: "planning"}
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	before := emu.Requests("")
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := emu.Requests("") - before; got != 1 {
		t.Fatalf("an unchanged SetStatus took %d requests, want one GET", got)
	}
	if n := emu.StatusCount("abc"); n != 1 {
		t.Fatalf("same status sent %d times", n)
	}
	// GitLab refuses pending on a pending status (400): a new pending description goes as running, and
	// asking it again sends nothing.
	s.Description = "applying"
	for i := 0; i < 2; i++ {
		if err := f.SetStatus(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := f.Statuses(ctx, "abc"); err != nil || got[s.Context] != forge.StatusPending {
		t.Fatalf("pending read back: %v %v", got, err)
	}
	s.State, s.Description = forge.StatusSuccess, strings.Repeat("é", 400)
	for i := 0; i < 2; i++ {
		if err := f.SetStatus(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := emu.StatusCount("abc"); n != 1 {
		t.Fatalf("status records: %d", n)
	}
	// After a finished status, pending again is a new record.
	s.State = forge.StatusPending
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.State = forge.StatusSuccess
	if err := f.SetStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	if n := emu.StatusCount("abc"); n != 2 {
		t.Fatalf("status records: %d", n)
	}
	if err := f.SetStatus(ctx, forge.Status{SHA: "abc", Context: "other", State: forge.StatusFailure}); err != nil {
		t.Fatal(err)
	}
	got, err := f.Statuses(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if got["berth/x/pr-1"] != forge.StatusSuccess || got["other"] != forge.StatusFailure || len(got) != 2 {
		t.Fatalf("statuses: %v", got)
	}
}

func TestUpsertComment(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	n := emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	marker := forge.Marker("prod", "pr-1")
	emu.Comment(n, "mallory", marker+"\nfake berth comment", false)
	emu.Comment(n, "berth-bot", "added 1 commit "+marker, true)
	id, err := f.UpsertComment(ctx, int(n), marker, "first")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := f.UpsertComment(ctx, int(n), marker, strings.Repeat("x", gitlab.NoteLimit+10))
	if err != nil {
		t.Fatal(err)
	}
	if id2 != id {
		t.Fatalf("a second comment %d, not an edit of %d", id2, id)
	}
	var mine []string
	for _, c := range emu.Notes(n) {
		if c.Author == "berth-bot" && strings.HasPrefix(c.Body, marker) {
			mine = append(mine, c.Body)
		}
		if c.Author == "mallory" && c.Body != marker+"\nfake berth comment" {
			t.Fatal("another user's comment was touched")
		}
	}
	if len(mine) != 1 || !strings.HasSuffix(mine[0], gitlab.CutNote) || len([]rune(mine[0])) > gitlab.NoteLimit {
		t.Fatalf("berth comments: %d", len(mine))
	}
	cs, err := f.Comments(ctx, int(n))
	if err != nil || len(cs) != 2 || cs[0].Author != "mallory" || cs[1].ID != id {
		t.Fatalf("comments: %d %v", len(cs), err)
	}
	// The emulator refuses what GitLab refuses: a note over 1,000,000 characters is a 400.
	body := `{"body":"` + strings.Repeat("y", gitlab.NoteLimit+1) + `"}`
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/projects/7/merge_requests/%d/notes", emu.APIURL(), n), strings.NewReader(body))
	req.Header.Set("Private-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("an over-long note answered %d", resp.StatusCode)
	}
}

func TestHostileTextIsData(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	names := []string{"../../etc/passwd", "feat/ünïcödé-🚀", strings.Repeat("b", 250), "a\"b<script>", "refs/heads/../x"}
	for _, s := range names {
		emu.Open(gitlabemu.MR{Title: s + "\u202e", Author: "dev", SHA: "abc", SourceBranch: s, TargetBranch: s})
	}
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range l.Changes {
		if c.Title != c.HeadRef+"\u202e" || c.BaseRef != c.HeadRef {
			t.Fatalf("changed: %+v", c)
		}
		got[c.HeadRef] = true
	}
	for _, s := range names {
		if !got[s] {
			t.Fatalf("missing %q", s)
		}
	}
}

func TestSecondaryLimitAndRedaction(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	emu.Inject(gitlabemu.Fault{Status: 403, Body: `{"message":"You have triggered an abuse rate limit"}`,
		Header: http.Header{"Retry-After": {"30"}}})
	_, err := f.ListOpen(ctx, "")
	fe := asForgeError(t, err)
	if !fe.Temporary || fe.RetryAfter != 30*time.Second || !strings.Contains(fe.Message, "abuse rate limit") {
		t.Fatalf("secondary limit: %+v", fe)
	}
	// A host that echoes the token back: the error masks it (asForgeError checks).
	emu.Inject(gitlabemu.Fault{Status: 401, Body: `{"message":"401 Unauthorized: token ` + token + ` expired"}`})
	_, err = f.ListOpen(ctx, "")
	if fe := asForgeError(t, err); fe.Status != 401 || fe.Temporary {
		t.Fatalf("401: %+v", fe)
	}
}

// Every method fails with a *forge.Error on each fault, never with a partial answer.
func TestFaultsOnEveryMethod(t *testing.T) {
	faults := map[string]gitlabemu.Fault{
		"502 html":  {Status: 502, Body: "<html>Bad Gateway</html>", ContentType: "text/html"},
		"200 html":  {Status: 200, Body: "<html>login</html>", ContentType: "text/html"},
		"truncated": {Truncate: true},
		"503":       {Status: 503, Body: `{"message":"503"}`},
	}
	type call func(context.Context, *gitlab.Forge, int) error
	calls := map[string]call{
		"Get": func(ctx context.Context, f *gitlab.Forge, n int) error { _, err := f.Get(ctx, n); return err },
		"Permission": func(ctx context.Context, f *gitlab.Forge, n int) error {
			_, err := f.Permission(ctx, "dev")
			return err
		},
		"Statuses": func(ctx context.Context, f *gitlab.Forge, n int) error { _, err := f.Statuses(ctx, "abc"); return err },
		"SetStatus": func(ctx context.Context, f *gitlab.Forge, n int) error {
			return f.SetStatus(ctx, forge.Status{SHA: "abc", Context: "c", State: forge.StatusSuccess})
		},
		"Comments": func(ctx context.Context, f *gitlab.Forge, n int) error { _, err := f.Comments(ctx, n); return err },
		"UpsertComment": func(ctx context.Context, f *gitlab.Forge, n int) error {
			_, err := f.UpsertComment(ctx, n, forge.Marker("i", "k"), "b")
			return err
		},
	}
	for fname, fault := range faults {
		for cname, c := range calls {
			t.Run(fname+"/"+cname, func(t *testing.T) {
				emu, f := setup(t)
				emu.AddMember("dev", 30)
				n := emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
				for i := 0; i < 3; i++ {
					emu.Comment(n, "dev", "hi", false)
				}
				emu.Inject(fault)
				err := c(context.Background(), f, int(n))
				if err == nil {
					t.Fatal("no error")
				}
				if fe := asForgeError(t, err); !fe.Temporary {
					t.Fatalf("not temporary: %+v", fe)
				}
			})
		}
	}
}
