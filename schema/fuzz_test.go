package schema

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/tools/txtar"
)

// FuzzLoad loads a single-file repository made of the input: it must never panic, and must either render or
// return positioned Errors.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*.txtar"))
	for _, s := range seeds {
		a, err := txtar.ParseFile(s)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range a.Files {
			if filepath.Ext(file.Name) == ".cue" {
				f.Add(file.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "berth.cue"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(dir)
		if err == nil {
			if len(cfg.Environments) == 0 {
				t.Fatal("rendered a config without environments")
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not schema.Errors: %v", err)
		}
	})
}
