package conformance

import (
	"bytes"
	"os"
	"testing"
)

// Golden compares got with the golden file at path, or rewrites the file when update is set (the providers'
// tests pass their -update flag). A difference prints got, so a reviewer sees what a provider now sends.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after review):\n%s", path, got)
	}
}
