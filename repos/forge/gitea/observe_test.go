package gitea_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
	"github.com/berth-dev/berth/repos/forge/gitea/giteaemu"
)

// Every request is observed: the version read once, an idle poll as a 304; X-RateLimit-Remaining is reported when
// the answer has it (Gitea itself sends none; the emulator plays a limiter in front of it).
func TestObserver(t *testing.T) {
	emu := giteaemu.New("acme", "shop", "berth-bot", token)
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
			rem = append(rem, n)
		},
	}
	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: token,
		Timeout: 2 * time.Second, HTTPClient: emu.Client(), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emu.Open(giteaemu.PR{Title: "one", Author: "alice", HeadRef: "feature", HeadSHA: sha(1)})
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if q, r := take(); q != "gitea version 200,gitea list_open 200" || len(r) == 0 || r[len(r)-1] != emu.Remaining() {
		t.Fatalf("listing: %q %v", q, r)
	}
	if _, err := f.ListOpen(ctx, l.ETag); err != nil {
		t.Fatal(err)
	}
	if q, r := take(); q != "gitea list_open 304" || len(r) != 1 || r[0] != emu.Remaining() {
		t.Fatalf("idle poll: %q", q)
	}
	emu.SetQuota(0)
	if _, err := f.Get(ctx, 1); err == nil {
		t.Fatal("no error")
	}
	if q, r := take(); q != "gitea get 403" || len(r) != 1 || r[0] != 0 {
		t.Fatalf("rate limited: %q %v", q, r)
	}
}
