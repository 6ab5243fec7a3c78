package github_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

// A poll, an idle poll, and berth's one comment on a pull request, against the emulator.
func Example() {
	emu := githubemu.New("acme", "shop")
	defer emu.Close()
	emu.AddToken("ghp_example", "berth-bot")
	n := emu.Open(githubemu.PR{Title: "Add a cart", Author: "alice", HeadRef: "cart"})

	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Token: "ghp_example"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		panic(err)
	}
	fmt.Println(len(l.Changes), l.Changes[0].Title)

	_, before := emu.Requests()
	idle, err := f.ListOpen(ctx, l.ETag)
	if err != nil {
		panic(err)
	}
	_, after := emu.Requests()
	fmt.Println("not modified:", idle.NotModified, "counted:", after-before)

	marker := forge.Marker("prod", "pr-1")
	id1, _ := f.UpsertComment(ctx, n, marker, "planning")
	id2, _ := f.UpsertComment(ctx, n, marker, "ready")
	fmt.Println("same comment:", id1 == id2, len(emu.CommentsOn(n)))
	// Output:
	// 1 Add a cart
	// not modified: true counted: 0
	// same comment: true 1
}
