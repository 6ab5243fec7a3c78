package repos

import (
	"errors"
	"testing"
)

func TestResolve(t *testing.T) {
	tr := &tree{root: newDir(), label: "test", maxSize: 1}
	for p, n := range map[string]*node{
		"a/b/f.cue":   {kind: kindFile},
		"a/up":        {kind: kindLink, target: ".."},
		"a/b/self":    {kind: kindLink, target: "."},
		"a/b/rel":     {kind: kindLink, target: "../../a/b/f.cue"},
		"a/b/via":     {kind: kindLink, target: "../up/a/b/f.cue"},
		"a/b/esc":     {kind: kindLink, target: "../up/../x"},
		"a/b/abs":     {kind: kindLink, target: "/a/b/f.cue"},
		"a/b/loop":    {kind: kindLink, target: "loop"},
		"a/b/through": {kind: kindLink, target: "f.cue/x"},
	} {
		if err := tr.add(p, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		link, want string
		unsafe     bool
		fails      bool
	}{
		{link: "a/b/rel", want: "a/b/f.cue"},
		{link: "a/b/via", want: "a/b/f.cue"},
		{link: "a/up", want: ""},
		{link: "a/b/self", want: "a/b"},
		{link: "a/b/esc", unsafe: true},
		{link: "a/b/abs", unsafe: true},
		{link: "a/b/loop", fails: true},
		{link: "a/b/through", fails: true},
	} {
		n := tr.lookup(splitPath(tc.link))
		got, _, err := tr.resolve(tc.link, n.target)
		switch {
		case tc.unsafe || tc.fails:
			if err == nil || errors.Is(err, ErrUnsafePath) != tc.unsafe {
				t.Errorf("resolve(%s) = %q, %v; want unsafe=%v error", tc.link, got, err, tc.unsafe)
			}
		case err != nil || got != tc.want:
			t.Errorf("resolve(%s) = %q, %v; want %q", tc.link, got, err, tc.want)
		}
	}
	for _, bad := range []string{"../x", "a/../../x", "a//b", "./a"} {
		if err := tr.add(bad, &node{kind: kindFile}); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("add(%q) = %v, want ErrUnsafePath", bad, err)
		}
	}
}
