package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The scripts under testdata/script run the berth command line on repositories they carry (txtar archives), with
// the expected output and exit status of each command. They need no Docker engine.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			return nil
		},
	})
}
