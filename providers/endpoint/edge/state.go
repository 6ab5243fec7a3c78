package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// stateFile is the state file's content.
type stateFile struct {
	Version int           `json:"version"`
	Routes  []storedRoute `json:"routes"`
}

// storedRoute is one route as persisted: what the controller set, nothing the edge found out itself.
type storedRoute struct {
	Name    string            `json:"name"`
	Owner   endpoint.Owner    `json:"owner"`
	TTL     time.Duration     `json:"ttl,omitempty"`
	Members []endpoint.Member `json:"members"`
}

// readState reads the table; an absent file is an empty table. A file that does not parse is an error: the edge
// refuses to start rather than serve (and later persist) an empty table over routes it cannot read.
func readState(path string) ([]storedRoute, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("edge state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("edge state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("edge state %s: version %d, this edge reads %d", path, st.Version, stateVersion)
	}
	seen := map[string]bool{}
	for _, r := range st.Routes {
		if err := checkName(r.Name); err != nil {
			return nil, fmt.Errorf("edge state %s: %w", path, err)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("edge state %s: route %s twice", path, r.Name)
		}
		seen[r.Name] = true
	}
	return st.Routes, nil
}

// writeState replaces the state file with table atomically: a temporary file in the same directory, synced, then
// renamed over it, and the directory synced. A crash at any point leaves the old file or the new one, whole.
func writeState(path string, table []storedRoute) (err error) {
	if table == nil {
		table = []storedRoute{}
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Routes: table}, "", "  ")
	if err != nil {
		return fmt.Errorf("edge state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("edge state: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("edge state: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("edge state: write: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("edge state: sync: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("edge state: close: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("edge state: rename: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
