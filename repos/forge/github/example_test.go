package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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

// Authenticating as a GitHub App installation: berth mints and refreshes the installation token itself; an
// Observer sees every request, the token call included.
func ExampleApp() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	emu := githubemu.New("acme", "shop")
	defer emu.Close()
	emu.AddApp(1234, &key.PublicKey)
	emu.AddInstallation(5678, 1234, "berth[bot]")
	n := emu.Open(githubemu.PR{Title: "Add a cart", Author: "alice", HeadRef: "cart"})

	var ops []string
	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop",
		App: &github.App{ID: 1234, InstallationID: 5678, PrivateKey: pem.EncodeToMemory(&pem.Block{
			Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})},
		Observer: forge.ObserverFuncs{OnRequest: func(_, op string, code int) {
			ops = append(ops, fmt.Sprint(op, " ", code))
		}}})
	if err != nil {
		panic(err)
	}
	c, err := f.Get(context.Background(), n)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Title, ops)
	// Output: Add a cart [token 201 get 200]
}

// Who labelled a pull request, and when: forge.LabelHistory, found by type assertion as callers do.
func ExampleForge_LabelEvents() {
	emu := githubemu.New("acme", "shop")
	defer emu.Close()
	emu.AddToken("ghp_example", "berth-bot")
	n := emu.Open(githubemu.PR{Title: "Add a cart", Author: "eve", HeadRef: "cart", HeadRepo: "eve/shop"})
	emu.LabelAs(n, "berth-preview-approved", "alice")
	emu.UnlabelAs(n, "berth-preview-approved", "bob")

	f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Token: "ghp_example"})
	if err != nil {
		panic(err)
	}
	var fg forge.Forge = f
	h, ok := fg.(forge.LabelHistory)
	if !ok {
		panic("no label history")
	}
	evs, err := h.LabelEvents(context.Background(), n)
	if err != nil {
		panic(err)
	}
	for _, e := range evs {
		fmt.Println(e.Label, e.Actor, e.Added)
	}
	// Output:
	// berth-preview-approved alice true
	// berth-preview-approved bob false
}
