// Command buildimage builds a Go main package into a FROM-scratch image on the local Docker engine, with no registry:
//
//	go run ./hack/buildimage -pkg ./examples/quickstart/app -tag berth-example/app:v1
//
// It skips the build when the image already holds the same binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers/docker/dockertest"
)

func main() {
	pkg := flag.String("pkg", "./examples/quickstart/app", "Go main package to build")
	tag := flag.String("tag", "berth-example/app:v1", "image tag to give it")
	flag.Parse()
	if err := run(*pkg, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "buildimage:", err)
		os.Exit(1)
	}
}

func run(pkg, tag string) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := dockertest.BuildImage(ctx, cli, pkg, tag); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "image %s is built from %s\n", tag, pkg)
	return nil
}
