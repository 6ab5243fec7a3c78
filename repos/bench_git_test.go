package repos

import (
	"context"
	"fmt"
	"github.com/berth-dev/berth/repos/gittest"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// countingWriter counts the bytes a handler sends.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return w.ResponseWriter.Write(p)
}

func (w countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// BenchmarkPollUnchanged10kRefs polls an unchanged branch of a repository with 10,000 other refs over smart HTTP:
// one ref listing per poll, no fetch. It reports the bytes the server sent per poll (wire-B/op).
func BenchmarkPollUnchanged10kRefs(b *testing.B) {
	hermetic(b)
	origin, sha := newOrigin(b, map[string]string{"a.cue": "a: 1\n"})
	root := b.TempDir()
	gitCmd(b, root, "clone", "-q", "--bare", origin, "repo.git")
	var in strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&in, "create refs/heads/feature/%05d %s\n", i, sha)
	}
	update := exec.Command("git", "update-ref", "--stdin")
	update.Dir, update.Stdin = filepath.Join(root, "repo.git"), strings.NewReader(in.String())
	if out, err := update.CombinedOutput(); err != nil {
		b.Fatalf("update-ref: %v\n%s", err, out)
	}
	gitCmd(b, filepath.Join(root, "repo.git"), "pack-refs", "--all")
	var sent atomic.Int64
	h := gittest.HTTPBackend(b, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(countingWriter{w, &sent}, r)
	}))
	b.Cleanup(srv.Close)

	src := open(b, srv.URL+"/repo.git", Options{})
	if snap := fetch(b, src); snap.Revision != sha {
		b.Fatalf("revision %s, want %s", snap.Revision, sha)
	}
	sent.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		snap, err := src.Fetch(context.Background())
		if err != nil || snap.Revision != sha {
			b.Fatalf("Fetch: %v %v", snap, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sent.Load())/float64(b.N), "wire-B/op")
	if n := fetches(src); n != 1 {
		b.Fatalf("%d fetches while unchanged", n)
	}
}
