package repos

import (
	"context"
	"errors"
	"testing"
)

// A source following "v*" deploys the newest version tag (by semantic version, annotated or lightweight), moves
// when a newer one is pushed, and ignores branches and other tags.
func TestGitFollowsNewestTag(t *testing.T) {
	hermetic(t)
	origin, _ := newOrigin(t, map[string]string{"berth.cue": "v: 1\n"})
	gitCmd(t, origin, "tag", "-a", "-m", "one", "v1.0.0")
	writeFiles(t, origin, map[string]string{"berth.cue": "v: 10\n"})
	ten := commitAll(t, origin, "ten")
	gitCmd(t, origin, "tag", "-a", "-m", "ten", "v1.10.0")
	writeFiles(t, origin, map[string]string{"berth.cue": "v: 2\n"})
	commitAll(t, origin, "two")
	gitCmd(t, origin, "tag", "v1.2.0") // lightweight; lexically after v1.10.0, older by version
	writeFiles(t, origin, map[string]string{"berth.cue": "v: head\n"})
	commitAll(t, origin, "untagged head of main")
	gitCmd(t, origin, "tag", "release-candidate")

	src := open(t, "file://"+origin, Options{Tag: "v*"})
	snap := fetch(t, src)
	if snap.Revision != ten || snap.Tag != "v1.10.0" || snap.Branch != "" || readFile(t, snap.Dir, "berth.cue") != "v: 10\n" {
		t.Fatalf("snapshot = %+v (%q), want v1.10.0 at %s", snap, readFile(t, snap.Dir, "berth.cue"), ten)
	}

	gitCmd(t, origin, "tag", "-a", "-m", "two", "v2.0.0")
	snap = fetch(t, src)
	if snap.Tag != "v2.0.0" || readFile(t, snap.Dir, "berth.cue") != "v: head\n" {
		t.Fatalf("after v2.0.0: %+v", snap)
	}

	other := open(t, "file://"+origin, Options{Tag: "release-*"})
	if s := fetch(t, other); s.Tag != "release-candidate" {
		t.Fatalf("release-*: %+v", s)
	}
	none := open(t, "file://"+origin, Options{Tag: "prod-*"})
	if _, err := none.Fetch(context.Background()); !errors.Is(err, ErrBranchNotFound) {
		t.Fatalf("no matching tag: %v", err)
	}
	if _, err := Open(context.Background(), "file://"+origin, Options{Tag: "v[", CacheDir: t.TempDir()}); err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
}
