package gitlab_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitlab"
	"github.com/berth-dev/berth/repos/forge/gitlab/gitlabemu"
)

// Every request is observed: an idle poll as a 304, with RateLimit-Remaining.
func TestObserver(t *testing.T) {
	emu := gitlabemu.New(7, "group/app", "berth-bot", token)
	t.Cleanup(emu.Close)
	var (
		mu   sync.Mutex
		reqs []string
		rem  []int
	)
	take := func() (string, []int) {
		mu.Lock()
		defer mu.Unlock()
		q, r := strings.Join(reqs, ","), rem
		reqs, rem = nil, nil
		return q, r
	}
	obs := forge.ObserverFuncs{
		OnRequest: func(kind, op string, code int) {
			mu.Lock()
			defer mu.Unlock()
			reqs = append(reqs, fmt.Sprintf("%s %s %d", kind, op, code))
		},
		OnRateLimit: func(kind string, n int) {
			mu.Lock()
			defer mu.Unlock()
			if kind != "gitlab" {
				t.Errorf("rate limit of %q", kind)
			}
			rem = append(rem, n)
		},
	}
	f, err := gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "group/app", Token: token,
		Timeout: 2 * time.Second, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := emu.Open(gitlabemu.MR{Title: "t", Author: "dev", SHA: "abc", SourceBranch: "b", TargetBranch: "main"})
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	q, r := take()
	if !strings.HasPrefix(q, "gitlab list_open 200") || len(r) == 0 || r[len(r)-1] != emu.Remaining() {
		t.Fatalf("listing: %q %v (remaining %d)", q, r, emu.Remaining())
	}
	if _, err := f.ListOpen(ctx, l.ETag); err != nil {
		t.Fatal(err)
	}
	if q, r := take(); q != "gitlab list_open 304" || len(r) != 1 || r[0] != emu.Remaining() {
		t.Fatalf("idle poll: %q %v", q, r)
	}
	if _, err := f.UpsertComment(ctx, int(n), forge.Marker("i", "pr-1"), "hello"); err != nil {
		t.Fatal(err)
	}
	if q, _ := take(); q != "gitlab self 200,gitlab upsert_comment 200,gitlab upsert_comment 201" {
		t.Fatalf("upsert: %q", q)
	}
	emu.Close()
	if _, err := f.Get(ctx, int(n)); err == nil {
		t.Fatal("no error")
	}
	if q, _ := take(); q != "gitlab get 0" {
		t.Fatalf("a transport failure: %q", q)
	}
}
