package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/providers"
)

// LabelSecrets names the secrets a container was given and their fingerprints, never their values, as JSON
// ({"env":{"VAR":"secret"},"files":{"/path":"secret"},"fingerprints":{"secret":"fp"}}): List reads SecretEnv,
// Files and SecretFingerprints back from it.
const LabelSecrets = "berth.dev/secrets"

// SecretFileMode is the mode of a secret file in the container: readable by its owner (the image's user) only.
const SecretFileMode = 0o400

// checkSecrets says why d's secrets cannot be delivered (see providers.CheckSOPSOnly).
func checkSecrets(d providers.Desired) error { return providers.CheckSOPSOnly(d, "the Docker engine") }

// secretEnv are the container's environment entries set from secrets, "VAR=value", sorted.
func secretEnv(d providers.Desired) []string {
	out := make([]string, 0, len(d.Workload.SecretEnv))
	for v, n := range d.Workload.SecretEnv {
		out = append(out, v+"="+string(d.Secrets[n].Value))
	}
	slices.Sort(out)
	return out
}

// fileOwner is the uid and gid a secret file gets for a container running as user (Config.User: "", "root",
// "uid" or "uid:gid"). A user by name cannot be resolved without the image's /etc/passwd, so it is refused.
func fileOwner(user string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" || u == "root" {
		u = "0"
	}
	uid, err = strconv.Atoi(u)
	if err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("the image runs as user %q: berth gives secret files to a numeric uid only (USER 1000 or 1000:1000 in the image)", user)
	}
	gid = uid
	if hasGroup {
		if g == "root" {
			g = "0"
		}
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("the image runs as group %q: berth gives secret files to a numeric gid only", g)
		}
	} else if u == "0" {
		gid = 0
	}
	return uid, gid, nil
}

// secretArchive is the tar of w's secret files, each at its path (relative to /), mode SecretFileMode, owned by
// uid:gid; the engine creates missing parent directories (0755, root).
func secretArchive(d providers.Desired, uid, gid int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, path := range slices.Sorted(maps.Keys(d.Workload.Files)) {
		v := d.Secrets[d.Workload.Files[path].Secret].Value
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"), Mode: SecretFileMode,
			Size: int64(len(v)), Uid: uid, Gid: gid, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("file %s: %w", path, err)
		}
		if _, err := tw.Write(v); err != nil {
			return nil, fmt.Errorf("file %s: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// copySecretFiles puts d's secret files into the created container id before it starts, owned by the container's
// user. Repeating it (an adopted container after a crash) writes the same files again.
func (p *Provider) copySecretFiles(ctx context.Context, id, name string, d providers.Desired) error {
	if len(d.Workload.Files) == 0 {
		return nil
	}
	cctx, cancel := callCtx(ctx)
	ci, err := p.cli.ContainerInspect(cctx, id)
	cancel()
	if err != nil {
		return fmt.Errorf("container %s: inspect before copying secret files: %w", name, err)
	}
	user := ""
	if ci.Config != nil {
		user = ci.Config.User
	}
	uid, gid, err := fileOwner(user)
	if err != nil {
		return providers.Permanent(fmt.Errorf("files: %w", err))
	}
	arc, err := secretArchive(d, uid, gid)
	if err != nil {
		return fmt.Errorf("container %s: secret files: %w", name, err)
	}
	cctx, cancel = callCtx(ctx)
	err = p.cli.CopyToContainer(cctx, id, "/", bytes.NewReader(arc), container.CopyToContainerOptions{})
	cancel()
	clear(arc)
	if err != nil {
		// The engine's words name paths, never the archive's content.
		return fmt.Errorf("container %s: copy secret files %s: %w", name,
			strings.Join(slices.Sorted(maps.Keys(d.Workload.Files)), ", "), err)
	}
	return nil
}
