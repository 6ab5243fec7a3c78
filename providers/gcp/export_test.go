package gcp

import "testing"

// SetOnGCE replaces the metadata server check for one test, so that credential detection never leaves the machine.
func SetOnGCE(t testing.TB, f func() bool) {
	old := onGCE
	onGCE = f
	t.Cleanup(func() { onGCE = old })
}
