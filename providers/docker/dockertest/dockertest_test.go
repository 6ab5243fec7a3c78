package dockertest

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
)

func TestBuildImageSkipsUnchanged(t *testing.T) {
	cli := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const tag = "berth-test-app:dockertest"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cli.ImageRemove(ctx, tag, image.RemoveOptions{})
	})
	const pkg = "github.com/berth-dev/berth/examples/quickstart/app"
	if err := BuildImage(ctx, cli, pkg, tag); err != nil {
		t.Fatal(err)
	}
	first, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if first.Config == nil || first.Config.Labels[LabelBinarySHA256] == "" || len(first.Config.Entrypoint) != 1 || first.Config.Entrypoint[0] != "/app" {
		t.Fatalf("image config: %+v", first.Config)
	}
	if err := BuildImage(ctx, cli, pkg, tag); err != nil {
		t.Fatal(err)
	}
	second, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != second.ID {
		t.Fatalf("unchanged binary rebuilt the image: %s then %s", first.ID, second.ID)
	}
	if err := BuildImage(ctx, cli, "github.com/berth-dev/berth/no/such/pkg", tag); err == nil {
		t.Fatal("building a missing package: want an error")
	}
}
