package gitlab_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitlab"
	"github.com/berth-dev/berth/repos/forge/gitlab/gitlabemu"
)

// A preview loop's idle poll: list once, then pass the ETag back; an unchanged listing is NotModified.
func Example() {
	emu := gitlabemu.New(7, "group/app", "berth-bot", "glpat-example-token-42")
	defer emu.Close()
	emu.Open(gitlabemu.MR{Title: "Add cache", Author: "dev", SHA: "a1b2c3", SourceBranch: "cache", TargetBranch: "main"})

	f, err := gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "group/app", Token: "glpat-example-token-42"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		panic(err)
	}
	fmt.Println(len(l.Changes), l.Changes[0].HeadRef, l.Changes[0].State)
	again, err := f.ListOpen(ctx, l.ETag)
	if err != nil {
		panic(err)
	}
	fmt.Println(again.NotModified)
	id, err := f.UpsertComment(ctx, 1, forge.Marker("prod", "pr-1"), "Preview: planned")
	if err != nil {
		panic(err)
	}
	id2, _ := f.UpsertComment(ctx, 1, forge.Marker("prod", "pr-1"), "Preview: ready")
	fmt.Println(id == id2)
	// Output:
	// 1 cache open
	// true
	// true
}
