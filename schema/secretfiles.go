package schema

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"testing/fstest"
)

// MaxSecretFileSize bounds each SOPS file captured with a configuration (the decrypter refuses larger ones).
const MaxSecretFileSize = 1 << 20

// withSecretFiles sets cfg.Root to an in-memory copy of the SOPS files cfg's secrets name, read from dir as they
// are (encrypted): a configuration outlives the snapshot tree it was loaded from (the controller keeps the last
// applied one running, and repairs its drift, long after the tree is gone), and its secrets must still decrypt.
// Links are copied as links and oversized files cut one byte past the bound, so that the decrypter refuses them
// with the same words as from the tree itself; missing files stay missing.
func withSecretFiles(cfg *Config, dir string) *Config {
	if cfg == nil {
		return nil
	}
	tree := os.DirFS(dir)
	mem := fstest.MapFS{}
	for _, ev := range cfg.Environments {
		for _, s := range ev.Secrets {
			if s.SOPS != nil {
				captureFile(tree, mem, s.SOPS.File)
			}
		}
	}
	cfg.Root = mem
	return cfg
}

func captureFile(tree fs.FS, mem fstest.MapFS, name string) {
	if !fs.ValidPath(name) || name == "." {
		return
	}
	if _, done := mem[name]; done {
		return
	}
	// The elements from the top down: the first link or missing element ends the copy.
	var elems []string
	for p := name; p != "."; p = path.Dir(p) {
		elems = append([]string{p}, elems...)
	}
	for _, p := range elems {
		fi, err := fs.Lstat(tree, p)
		if err != nil {
			return
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := fs.ReadLink(tree, p)
			mem[p] = &fstest.MapFile{Mode: fs.ModeSymlink | 0o777, Data: []byte(target)}
			return
		}
		if p != name {
			continue
		}
		if !fi.Mode().IsRegular() {
			mem[p] = &fstest.MapFile{Mode: fi.Mode()}
			return
		}
		f, err := tree.Open(p)
		if err != nil {
			return
		}
		b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileSize+1))
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		mem[p] = &fstest.MapFile{Data: b, Mode: fi.Mode().Perm(), ModTime: fi.ModTime()}
	}
}
