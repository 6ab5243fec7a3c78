// Package dockertest helps integration tests run against the local Docker engine: it finds the engine (skipping the
// test when none answers) and builds small test images from Go main packages without pulling anything.
//
// Non-goals: general image building, registries, multi-stage builds.
//
// Caller's duties: remove the containers a test creates; images are kept and reused between runs (BuildImage is
// cheap when the binary did not change).
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// LabelBinarySHA256 is the image label holding the sha256 of the binary the image was built from.
const LabelBinarySHA256 = "berth.dev/test-binary-sha256"

// EnvRequireDocker makes Client fail instead of skip when no engine answers.
const EnvRequireDocker = "BERTH_REQUIRE_DOCKER"

// Client returns a client of the local engine (from the environment, API version negotiated). When the engine does
// not answer, the test is skipped, or failed when BERTH_REQUIRE_DOCKER=1. The client is closed at cleanup.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var ping types.Ping
		ping, err = cli.Ping(ctx)
		cancel()
		if err != nil {
			cli.Close()
		} else {
			// Settle the version now: the client reads it without a lock, so concurrent first calls would race.
			cli.NegotiateAPIVersionPing(ping)
		}
	}
	if err != nil {
		if os.Getenv(EnvRequireDocker) == "1" {
			t.Fatalf("docker engine required (%s=1) but not reachable: %v", EnvRequireDocker, err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// BuildImage builds the Go main package goPkg as a static binary and makes it the image tag (FROM scratch, the
// binary at /app as the entrypoint). It does nothing more than the go build when tag already holds the same binary.
func BuildImage(ctx context.Context, cli *client.Client, goPkg, tag string) error {
	dir, err := os.MkdirTemp("", "berth-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", bin, goPkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", goPkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])

	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	img, err := cli.ImageInspect(ictx, tag)
	cancel()
	switch {
	case err == nil && img.Config != nil && img.Config.Labels[LabelBinarySHA256] == digest:
		return nil
	case err != nil && !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect image %s: %w", tag, err)
	}

	buildCtx, err := contextTar(data)
	if err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(bctx, buildCtx, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Labels:      map[string]string{LabelBinarySHA256: digest},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	return drain(resp.Body, tag)
}

// drain reads the engine's build output and returns the first error it reports.
func drain(r io.Reader, tag string) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("build image %s: reading output: %w", tag, err)
		}
		if m.Error != nil {
			return fmt.Errorf("build image %s: %s", tag, m.Error.Message)
		}
	}
}

func contextTar(binary []byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n")},
		{"app", 0o755, binary},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}
