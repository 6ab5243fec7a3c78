package gitea_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
	"github.com/berth-dev/berth/repos/forge/gitea/giteaemu"
)

// clock is a test clock for the emulator that moves one second per reading.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func TestLabelEventsInOrderWithActors(t *testing.T) {
	f, emu := setup(t)
	emu.SetNow(clock())
	n := emu.Open(giteaemu.PR{Title: "t", Author: "eve", HeadRef: "b", HeadSHA: sha(1), HeadRepo: "eve/shop"})
	emu.Label(n, "bug")
	emu.Comment(n, "carol", "/berth preview") // a timeline entry that is not a label event
	emu.LabelAs(n, "berth-preview-approved", "alice")
	emu.LabelAs(n, "berth-preview-approved", "mallory") // already there: Gitea records nothing
	emu.UnlabelAs(n, "berth-preview-approved", "bob")
	emu.Unlabel(n, "not-there")
	evs, err := f.LabelEvents(context.Background(), int(n))
	if err != nil {
		t.Fatal(err)
	}
	want := []forge.LabelEvent{
		{Label: "bug", Actor: giteaemu.DefaultLabeler, Added: true},
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
	// The comments are still what Comments lists: the timeline changed nothing there.
	if cs, err := f.Comments(context.Background(), int(n)); err != nil || len(cs) != 1 {
		t.Fatalf("comments: %+v %v", cs, err)
	}
}

func TestLabelEventsPages(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	n := emu.Open(giteaemu.PR{Title: "t", Author: "eve", HeadRef: "b", HeadSHA: sha(1)})
	for i := range 120 {
		emu.LabelAs(n, fmt.Sprint("l", i), fmt.Sprint("user", i%7))
		if i%10 == 0 {
			emu.Comment(n, "carol", "hi")
		}
	}
	evs, err := f.LabelEvents(ctx, int(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 120 {
		t.Fatalf("got %d events", len(evs))
	}
	for i, e := range evs {
		if e.Label != fmt.Sprint("l", i) || e.Actor != fmt.Sprint("user", i%7) || !e.Added {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	// 132 entries at 50 a page: three pages and the "null" fourth that ends the timeline (Gitea sends no Link).
	if got := emu.Requests("GET /timeline"); got != 4 {
		t.Fatalf("%d timeline requests, want 4", got)
	}
	// Without ETags (Gitea's own way) every call reads it all again.
	if _, err := f.LabelEvents(ctx, int(n)); err != nil || emu.Requests("GET /timeline") != 8 {
		t.Fatalf("second read: %v, %d requests", err, emu.Requests("GET /timeline"))
	}
}

// A smaller limit than asked (MAX_RESPONSE_ITEMS lowered) is still read to the end.
func TestLabelEventsLimitLowered(t *testing.T) {
	_, emu := setup(t)
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token,
		Timeout: 2 * time.Second, HTTPClient: emu.Client(), PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	n := emu.Open(giteaemu.PR{Title: "t", Author: "eve", HeadRef: "b", HeadSHA: sha(1)})
	for i := range 75 {
		emu.Label(n, fmt.Sprint("l", i))
	}
	evs, err := f.LabelEvents(context.Background(), int(n))
	if err != nil || len(evs) != 75 || evs[74].Label != "l74" {
		t.Fatalf("got %d events, %v", len(evs), err)
	}
}

func TestLabelEventsIdleWithProxyETags(t *testing.T) {
	f, emu := setup(t)
	ctx := context.Background()
	emu.SetTimelineETags(true)
	n := emu.Open(giteaemu.PR{Title: "t", Author: "eve", HeadRef: "b", HeadSHA: sha(1)})
	for i := range 60 {
		emu.Label(n, fmt.Sprint("l", i))
	}
	var ops []string
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token,
		HTTPClient: emu.Client(), Observer: forge.ObserverFuncs{OnRequest: func(_, op string, code int) {
			ops = append(ops, fmt.Sprint(op, " ", code))
		}}})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := f.LabelEvents(ctx, int(n))
	if err != nil || len(evs) != 60 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	quota := emu.Remaining()
	again, err := f.LabelEvents(ctx, int(n))
	if err != nil || len(again) != 60 || again[59] != evs[59] {
		t.Fatalf("idle: %d events, %v", len(again), err)
	}
	want := "label_events 200,label_events 200,label_events 200,label_events 304,label_events 304,label_events 304"
	if strings.Join(ops, ",") != want || emu.Remaining() != quota {
		t.Fatalf("observed %v; quota %d → %d", ops, quota, emu.Remaining())
	}
	again[0].Label = "changed by the caller"
	emu.UnlabelAs(n, "l2", "bob")
	evs, err = f.LabelEvents(ctx, int(n))
	if err != nil || len(evs) != 61 || evs[0].Label != "l0" || evs[60].Actor != "bob" || evs[60].Added {
		t.Fatalf("after an unlabel: %d events, %v", len(evs), err)
	}
}

func TestLabelEventsFaultsAreErrors(t *testing.T) {
	faults := map[string]giteaemu.Fault{
		"5xx": giteaemu.Fault5xx, "html200": giteaemu.FaultHTML200, "html502": giteaemu.FaultHTML502,
		"truncated": giteaemu.FaultTruncated, "timeout": giteaemu.FaultTimeout, "expired": giteaemu.FaultExpired,
		"ratelimit": giteaemu.FaultRateLimit, "secondary": giteaemu.FaultSecondary,
	}
	for name, fault := range faults {
		for _, page := range []string{"page=1", "page=2", "page=3"} {
			t.Run(name+"/"+page, func(t *testing.T) {
				f, emu := setup(t)
				ctx := context.Background()
				if fault == giteaemu.FaultTimeout {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
					defer cancel()
				}
				n := emu.Open(giteaemu.PR{Title: "t", Author: "eve", HeadRef: "b", HeadSHA: sha(1)})
				for i := range 60 {
					emu.Label(n, fmt.Sprint("l", i))
				}
				emu.FailQuery("GET /repos/acme/shop/issues/1/timeline", page, fault, 1)
				evs, err := f.LabelEvents(ctx, int(n))
				var fe *forge.Error
				if !errors.As(err, &fe) {
					t.Fatalf("got %d events and %v, want a *forge.Error", len(evs), err)
				}
				if evs != nil {
					t.Fatalf("events with the error: %d", len(evs))
				}
				if strings.Contains(err.Error(), token) || errors.Is(err, forge.ErrNotFound) {
					t.Fatalf("error: %v", err)
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
				if fault == giteaemu.FaultHTML200 && !strings.Contains(fe.Message, "Bad Gateway") {
					t.Fatalf("the page is not quoted: %+v", fe)
				}
			})
		}
	}
}

func TestLabelEventsNotFoundAndBounded(t *testing.T) {
	f, emu := setup(t)
	if _, err := f.LabelEvents(context.Background(), 99); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("missing pull request: %v", err)
	}
	n := emu.Open(giteaemu.PR{Title: "t", Author: "eve", HeadRef: "b", HeadSHA: sha(1)})
	emu.LabelAs(n, strings.Repeat("é", 5000)+"\xff", "alice")
	evs, err := f.LabelEvents(context.Background(), int(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || len(evs[0].Label) > 4096 || !utf8.ValidString(evs[0].Label) {
		t.Fatalf("label not bounded: %d bytes", len(evs[0].Label))
	}
}
