//go:build tools

// Package deps keeps the cue command, which hack/bench-render.sh builds as the reference for the render figures,
// in the module graph, so go mod tidy leaves its requirements in go.mod and go.sum. It is never compiled.
package deps

import (
	_ "cuelang.org/go/cmd/cue"
)
