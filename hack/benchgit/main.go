// Command benchgit does one Fetch of a Git source through berth's repos package, for hack/bench-git.sh to time
// against `git fetch`. Run it once to create the cache, add commits upstream, then run it again: the second run is
// the incremental fetch (ref listing, pack of the new commits, snapshot of the head).
//
//	benchgit -cache DIR [-branch main] URL
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/repos"
)

func main() {
	cache := flag.String("cache", "", "cache directory kept between runs (required)")
	branch := flag.String("branch", repos.DefaultBranch, "branch to fetch")
	flag.Parse()
	if *cache == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: benchgit -cache DIR [-branch main] URL")
		os.Exit(2)
	}
	ctx := context.Background()
	src, err := repos.Open(ctx, flag.Arg(0), repos.Options{
		Branch: *branch, CacheDir: *cache, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	snap, err := src.Fetch(ctx)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(snap.Revision)
}
