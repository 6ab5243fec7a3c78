package github_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

func TestLabelEventsInOrderWithActors(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b", HeadRepo: "eve/shop"})
	emu.Label(n, "bug")
	emu.LabelAs(n, "berth-preview-approved", "alice")
	emu.ClosePR(n) // not a label event: left out
	emu.Reopen(n)
	emu.UnlabelAs(n, "berth-preview-approved", "bob")
	emu.Unlabel(n, "not-there") // GitHub records nothing for a label the pull request lacks
	evs, err := f.LabelEvents(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		label, actor string
		added        bool
	}{
		{"bug", githubemu.DefaultLabeler, true},
		{"berth-preview-approved", "alice", true},
		{"berth-preview-approved", "bob", false},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %+v", evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Label != w.label || e.Actor != w.actor || e.Added != w.added || e.Created.IsZero() {
			t.Fatalf("event %d: %+v, want %+v", i, e, w)
		}
		if i > 0 && e.Created.Before(evs[i-1].Created) {
			t.Fatalf("not oldest first: %+v", evs)
		}
	}
}

func TestLabelEventsPagesAndIdle(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	for i := range 230 {
		emu.LabelAs(n, fmt.Sprint("l", i), fmt.Sprint("user", i%7))
	}
	evs, err := f.LabelEvents(ctx(t), n)
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

	// Idle: one conditional request per page, every one a 304, no quota spent, the same answer.
	all0, counted0 := emu.Requests()
	again, err := f.LabelEvents(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	all1, counted1 := emu.Requests()
	if all1-all0 != 3 || counted1 != counted0 {
		t.Fatalf("idle: %d requests, %d counted", all1-all0, counted1-counted0)
	}
	if len(again) != 230 || again[229] != evs[229] {
		t.Fatalf("idle answer differs: %d events", len(again))
	}

	// A new event (on the last page) is seen.
	emu.UnlabelAs(n, "l3", "mallory")
	evs, err = f.LabelEvents(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; len(evs) != 231 || last.Label != "l3" || last.Actor != "mallory" || last.Added {
		t.Fatalf("after an unlabel: %d events, last %+v", len(evs), evs[len(evs)-1])
	}
}

func TestLabelEventsObserved(t *testing.T) {
	emu, _ := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	emu.Label(n, "x")
	var ops []string
	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Token: token,
		Observer: forge.ObserverFuncs{OnRequest: func(_, op string, code int) { ops = append(ops, fmt.Sprint(op, " ", code)) }}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.LabelEvents(ctx(t), n); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(ops, ",") != "label_events 200,label_events 304" {
		t.Fatalf("observed %v", ops)
	}
}

func TestLabelEventsFaultsAreErrors(t *testing.T) {
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
		"timeout":   {githubemu.FaultTimeout, 0, true},
	}
	for name, k := range kinds {
		for _, page := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/page%d", name, page), func(t *testing.T) {
				t.Parallel()
				emu, _ := setup(t)
				f := newForge(t, emu, 300*time.Millisecond)
				n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
				for i := range 150 {
					emu.Label(n, fmt.Sprint("l", i))
				}
				match := "/events"
				if page == 2 {
					match = "&page=2"
				}
				emu.Inject(githubemu.Fault{Kind: k.kind, Match: match})
				evs, err := f.LabelEvents(ctx(t), n)
				checkErr(t, err, k.status, k.temporary)
				if evs != nil {
					t.Fatalf("a fault gave %d events", len(evs))
				}
			})
		}
	}
}

// A fault while revalidating is an error, never the kept answer nor an empty list.
func TestLabelEventsFaultWhileIdle(t *testing.T) {
	emu, f := setup(t)
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	emu.Label(n, "x")
	if _, err := f.LabelEvents(ctx(t), n); err != nil {
		t.Fatal(err)
	}
	emu.Inject(githubemu.Fault{Kind: githubemu.Fault500, Match: "/events"})
	if evs, err := f.LabelEvents(ctx(t), n); err == nil || evs != nil {
		t.Fatalf("got %v, %v", evs, err)
	}
}

func TestLabelEventsNotFoundAndBounded(t *testing.T) {
	emu, f := setup(t)
	if _, err := f.LabelEvents(ctx(t), 99); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("missing pull request: %v", err)
	}
	n := emu.Open(githubemu.PR{Title: "t", HeadRef: "b"})
	emu.LabelAs(n, strings.Repeat("é", 5000)+"\xff", "alice")
	evs, err := f.LabelEvents(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || len([]rune(evs[0].Label)) > 256 || !utf8.ValidString(evs[0].Label) {
		t.Fatalf("label not bounded: %d runes", len([]rune(evs[0].Label)))
	}
}
