package repos_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/repos"
)

func Example() {
	dir, _ := os.MkdirTemp("", "berth-example-")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "app.cue"), []byte("replicas: 2\n"), 0o644)

	src, err := repos.Open(context.Background(), dir, repos.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	snap, err := src.Fetch(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(filepath.Join(snap.Dir, "app.cue"))
	fmt.Println(snap.Revision[:19])
	fmt.Print(string(b))
	// Output:
	// sha256:b6888d193305
	// replicas: 2
}
