package repos

import (
	"path"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// newestTag picks, among the listed tags whose name matches pattern, the newest: by semantic version when every
// matching name is one, else by name. It returns the tag's name and its commit (the peeled "^{}" entry of an
// annotated tag, the tag's own hash for a lightweight one).
func newestTag(refs []*plumbing.Reference, pattern string) (name string, commit plumbing.Hash, ok bool) {
	direct := map[string]plumbing.Hash{}
	peeled := map[string]plumbing.Hash{}
	for _, r := range refs {
		full := r.Name().String()
		short, isTag := strings.CutPrefix(full, "refs/tags/")
		if !isTag || r.Type() != plumbing.HashReference {
			continue
		}
		if base, ok := strings.CutSuffix(short, "^{}"); ok {
			peeled[base] = r.Hash()
			continue
		}
		if m, err := path.Match(pattern, short); err == nil && m {
			direct[short] = r.Hash()
		}
	}
	allVersions := true
	for n := range direct {
		if _, ok := parseVersion(n); !ok {
			allVersions = false
		}
	}
	for n := range direct {
		if !ok || newer(n, name, allVersions) {
			name, ok = n, true
		}
	}
	if !ok {
		return "", plumbing.ZeroHash, false
	}
	if h, annotated := peeled[name]; annotated {
		return name, h, true
	}
	return name, direct[name], true
}

// newer tells whether tag a sorts after b.
func newer(a, b string, versions bool) bool {
	if versions {
		va, _ := parseVersion(a)
		vb, _ := parseVersion(b)
		for i := range va {
			if va[i] != vb[i] {
				return va[i] > vb[i]
			}
		}
	}
	return a > b
}

// parseVersion reads "v1.2.3" or "1.2.3" (a pre-release or build suffix is not a release: refused).
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}
