package preview

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/registry/registrytest"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

// A preview pins its images like the base environment: a head's image of a registry the base declares runs by
// the digest its tag named when the preview was planned.
func TestPreviewPinsImages(t *testing.T) {
	reg := registrytest.New(registrytest.Options{})
	t.Cleanup(reg.Close)
	reg.Push("app", "v1", registrytest.Image{Cmd: []string{"/app"}})
	ref2, digest2 := reg.Push("app", "v2", registrytest.Image{Cmd: []string{"/app"}})

	registries := `registries: "` + reg.Host() + `": {}
`
	w := newWorld(t, defaultPreviews+registries, nil)
	base := baseCUE(defaultPreviews + registries)
	base["berth.cue"] = strings.Replace(base["berth.cue"], `image:    "app:v1"`, `image:    "`+reg.Host()+`/app:v1"`, 1)
	w.src.setBase(base)
	n := w.open(githubemu.PR{Author: "alice", HeadRef: "feature"}, ref2, "pinned")
	w.sync()

	if st := w.status(n); st.State != StateReady {
		t.Fatalf("state %s (%s), errors %v; want ready", st.State, st.Reason, st.Errors)
	}
	if got, want := w.running(n)["web"], ref2+"@"+digest2; got != want {
		t.Fatalf("the preview runs %q, want the pinned %q", got, want)
	}
}
