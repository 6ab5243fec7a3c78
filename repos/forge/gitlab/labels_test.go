package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitlab"
	"github.com/berth-dev/berth/repos/forge/gitlab/gitlabemu"
)

func TestLabelEventsInOrderWithActors(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(gitlabemu.MR{Title: "t", Author: "eve", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	emu.Label(n, "bug")
	emu.LabelAs(n, "berth-preview-approved", "alice")
	emu.LabelAs(n, "berth-preview-approved", "mallory") // already there: GitLab records nothing
	emu.UnlabelAs(n, "berth-preview-approved", "bob")
	emu.Unlabel(n, "not-there")
	emu.Comment(n, "carol", "/berth preview", false) // not a label event
	evs, err := f.LabelEvents(context.Background(), int(n))
	if err != nil {
		t.Fatal(err)
	}
	want := []forge.LabelEvent{
		{Label: "bug", Actor: gitlabemu.DefaultLabeler, Added: true},
		{Label: "berth-preview-approved", Actor: "alice", Added: true},
		{Label: "berth-preview-approved", Actor: "bob", Added: false},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %+v", evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Label != w.Label || e.Actor != w.Actor || e.Added != w.Added || e.Created.IsZero() {
			t.Fatalf("event %d: %+v, want %+v", i, e, w)
		}
		if i > 0 && !e.Created.After(evs[i-1].Created) {
			t.Fatalf("not oldest first: %+v", evs)
		}
	}

	// A deleted label leaves its events with no name: kept (complete), matching no label.
	emu.DeleteLabel("bug")
	evs, err = f.LabelEvents(context.Background(), int(n))
	if err != nil || len(evs) != 3 || evs[0].Label != "" || evs[0].Actor != gitlabemu.DefaultLabeler {
		t.Fatalf("after the label's deletion: %+v %v", evs, err)
	}
}

func TestLabelEventsPagesAndIdle(t *testing.T) {
	emu, f := setup(t)
	ctx := context.Background()
	n := emu.Open(gitlabemu.MR{Title: "t", Author: "eve", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	for i := range 230 {
		emu.LabelAs(n, fmt.Sprint("l", i), fmt.Sprint("user", i%7))
	}
	evs, err := f.LabelEvents(ctx, int(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 230 {
		t.Fatalf("got %d events", len(evs))
	}
	for i, e := range evs {
		if e.Label != fmt.Sprint("l", i) || e.Actor != fmt.Sprint("user", i%7) || !e.Added {
			t.Fatalf("event %d: %+v", i, e)
		}
	}

	// Idle: one conditional request per page, every one a 304 that costs no quota; the kept answer.
	quota, reqs := emu.Remaining(), emu.Requests("")
	again, err := f.LabelEvents(ctx, int(n))
	if err != nil {
		t.Fatal(err)
	}
	if got := emu.Requests("") - reqs; got != 3 || emu.Remaining() != quota {
		t.Fatalf("idle: %d requests, quota %d → %d", got, quota, emu.Remaining())
	}
	if len(again) != 230 || again[229] != evs[229] {
		t.Fatalf("idle answer differs: %d events", len(again))
	}
	again[0].Label = "changed by the caller"

	// A new event on the last page is seen; the caller's edit of an earlier answer is not.
	emu.UnlabelAs(n, "l3", "mallory")
	evs, err = f.LabelEvents(ctx, int(n))
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; len(evs) != 231 || last.Label != "l3" || last.Actor != "mallory" || last.Added {
		t.Fatalf("after an unlabel: %d events, last %+v", len(evs), evs[len(evs)-1])
	}
	if evs[0].Label != "l0" {
		t.Fatalf("the kept history was changed by a caller: %+v", evs[0])
	}
	// A 301st event opens a fourth page: a 304 on the third page with a next page is not "unchanged".
	for i := range 70 {
		emu.Label(n, fmt.Sprint("m", i))
	}
	evs, err = f.LabelEvents(ctx, int(n))
	if err != nil || len(evs) != 301 || evs[300].Label != "m69" {
		t.Fatalf("four pages: %d events, %v", len(evs), err)
	}
}

func TestLabelEventsObserved(t *testing.T) {
	emu, _ := setup(t)
	n := emu.Open(gitlabemu.MR{Title: "t", Author: "eve", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	emu.Label(n, "x")
	var ops []string
	f, err := gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "group/app", Token: token,
		Observer: forge.ObserverFuncs{OnRequest: func(_, op string, code int) { ops = append(ops, fmt.Sprint(op, " ", code)) }}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.LabelEvents(context.Background(), int(n)); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(ops, ",") != "label_events 200,label_events 304" {
		t.Fatalf("observed %v", ops)
	}
}

func TestLabelEventsFaultsAreErrors(t *testing.T) {
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
			for _, idle := range []bool{false, true} {
				if idle && fault.Truncate {
					continue // a revalidation is a 304, which has no body to cut
				}
				t.Run(fmt.Sprintf("%s/page%d/idle=%v", name, after+1, idle), func(t *testing.T) {
					emu, f := setup(t)
					if name == "timeout" {
						f, _ = gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "group/app", Token: token, Timeout: 200 * time.Millisecond})
					}
					n := emu.Open(gitlabemu.MR{Title: "t", Author: "eve", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
					for i := range 120 {
						emu.Label(n, fmt.Sprint("l", i))
					}
					if idle {
						if _, err := f.LabelEvents(context.Background(), int(n)); err != nil {
							t.Fatal(err)
						}
					}
					fault.Path, fault.After = "resource_label_events", after
					emu.Inject(fault)
					evs, err := f.LabelEvents(context.Background(), int(n))
					if err == nil {
						t.Fatalf("no error, %d events", len(evs))
					}
					fe := asForgeError(t, err)
					if evs != nil {
						t.Fatal("events with an error")
					}
					if name != "403" && !fe.Temporary {
						t.Fatalf("not temporary: %v", fe)
					}
					if errors.Is(err, forge.ErrNotFound) {
						t.Fatalf("a fault says not found: %v", err)
					}
				})
			}
		}
	}
}

func TestLabelEventsNotFoundAndBounded(t *testing.T) {
	emu, f := setup(t)
	if _, err := f.LabelEvents(context.Background(), 99); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("missing merge request: %v", err)
	}
	n := emu.Open(gitlabemu.MR{Title: "t", Author: "eve", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	emu.LabelAs(n, strings.Repeat("é", 5000)+"\xff", "alice")
	evs, err := f.LabelEvents(context.Background(), int(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || utf8.RuneCountInString(evs[0].Label) > 256 || !utf8.ValidString(evs[0].Label) {
		t.Fatalf("label not bounded: %d runes", utf8.RuneCountInString(evs[0].Label))
	}
}
