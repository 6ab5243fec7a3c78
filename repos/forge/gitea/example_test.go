package gitea_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
	"github.com/berth-dev/berth/repos/forge/gitea/giteaemu"
)

func Example() {
	emu := giteaemu.New("acme", "shop", "berth-bot", "example-token")
	defer emu.Close()
	n := emu.Open(giteaemu.PR{Title: "Add a cart", Author: "alice", HeadRef: "cart", HeadSHA: sha(1)})

	f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: "example-token"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	l, err := f.ListOpen(ctx, "")
	if err != nil {
		panic(err) // never an empty list on a forge error
	}
	fmt.Println(len(l.Changes), l.Changes[0].Title)
	again, _ := f.ListOpen(ctx, l.ETag)
	fmt.Println("not modified:", again.NotModified)
	_, err = f.UpsertComment(ctx, int(n), forge.Marker("eu", "pr-1"), "preview: applying")
	fmt.Println(err, len(emu.Comments(n)))
	// Output:
	// 1 Add a cart
	// not modified: true
	// <nil> 1
}
