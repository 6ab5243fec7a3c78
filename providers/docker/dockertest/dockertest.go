// Package dockertest helps integration tests run against the local Docker engine: it finds the engine (skipping the
// test when none answers) and builds small test images from Go main packages without pulling anything.
//
// Registries: ImportImage makes an image of a layer unlike any other (for a pull to fetch for real), PushImage pushes
// it with a credential, RemoveImage takes it out of the engine's store again.
//
// Non-goals: general image building, multi-stage builds.
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
	"sort"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
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
	data, err := buildBinary(ctx, goPkg)
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
	err := writeTar(tar.NewWriter(&buf), []tarFile{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n")},
		{"app", 0o755, binary},
	})
	if err != nil {
		return nil, err
	}
	return &buf, nil
}

type tarFile struct {
	name string
	mode int64
	data []byte
}

// writeTar writes files to tw and closes it.
func writeTar(tw *tar.Writer, files []tarFile) error {
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ImportImage builds the Go main package goPkg as a static binary and imports it as the image ref, a single layer
// holding the binary at /app (the entrypoint) and the extra files (name → content, mode 0644): extra content of
// the caller's makes the layer, and so the image, unlike any other in the store. It gives the image ID.
func ImportImage(ctx context.Context, cli *client.Client, goPkg, ref string, extra map[string][]byte) (string, error) {
	bin, err := buildBinary(ctx, goPkg)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	files := []tarFile{{"app", 0o755, bin}}
	for _, n := range names {
		files = append(files, tarFile{n, 0o644, extra[n]})
	}
	if err := writeTar(tw, files); err != nil {
		return "", err
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rc, err := cli.ImageImport(ictx, image.ImportSource{Source: &buf, SourceName: "-"}, ref,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/app"]`}})
	if err != nil {
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	defer rc.Close()
	if err := drain(rc, ref); err != nil {
		return "", err
	}
	img, err := cli.ImageInspect(ictx, ref)
	if err != nil {
		return "", fmt.Errorf("inspect imported image %s: %w", ref, err)
	}
	return img.ID, nil
}

// PushImage pushes ref to its registry through the engine with the credential auth, and gives the digest of the
// manifest the registry stored.
func PushImage(ctx context.Context, cli *client.Client, ref string, auth registry.AuthConfig) (string, error) {
	enc, err := registry.EncodeAuthConfig(auth)
	if err != nil {
		return "", err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rc, err := cli.ImagePush(pctx, ref, image.PushOptions{RegistryAuth: enc})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	digest := ""
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("push %s: reading output: %w", ref, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("push %s: %s", ref, m.Error.Message)
		}
		if m.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the engine reported no digest", ref)
	}
	return digest, nil
}

// RemoveImage removes the image id from the engine's store with every reference to it, whatever holds it; an image
// already gone is no error.
func RemoveImage(ctx context.Context, cli *client.Client, id string) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := cli.ImageRemove(rctx, id, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %.19s: %w", id, err)
	}
	return nil
}

// goDirs are the Go build cache and module cache as they were when the test binary started, so that a build after
// a test set a temporary HOME still finds the developer's caches.
var goDirs = func() []string {
	var out []string
	if os.Getenv("GOCACHE") == "" {
		if d, err := os.UserCacheDir(); err == nil {
			out = append(out, "GOCACHE="+filepath.Join(d, "go-build"))
		}
	}
	if os.Getenv("GOMODCACHE") == "" && os.Getenv("GOPATH") == "" {
		if h, err := os.UserHomeDir(); err == nil {
			out = append(out, "GOPATH="+filepath.Join(h, "go"))
		}
	}
	return out
}()

// buildBinary builds the Go main package goPkg as a static binary and gives its content.
func buildBinary(ctx context.Context, goPkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "berth-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", bin, goPkg)
	cmd.Env = append(append(os.Environ(), goDirs...), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", goPkg, err, out)
	}
	return os.ReadFile(bin)
}
