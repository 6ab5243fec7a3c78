package gitea_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea/giteaemu"
)

// BenchmarkIdlePoll is one ListOpen of an unchanged repository with 20 open pull requests, given the previous
// ETag: requests/op and quota/op (rate-limit quota spent) per poll, with the emulator's ETags and without (Gitea).
func BenchmarkIdlePoll(b *testing.B) {
	for _, etags := range []bool{true, false} {
		b.Run(fmt.Sprintf("serverETag=%v", etags), func(b *testing.B) {
			f, emu := setup(b)
			emu.SetETags(etags)
			for i := range 20 {
				emu.Open(giteaemu.PR{Title: "t", Author: "alice", HeadRef: "b", HeadSHA: sha(i)})
			}
			ctx := context.Background()
			l, err := f.ListOpen(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			reqs, quota := emu.Requests(""), emu.Remaining()
			b.ResetTimer()
			for b.Loop() {
				var got forge.List
				if got, err = f.ListOpen(ctx, l.ETag); err != nil || !got.NotModified {
					b.Fatal(got, err)
				}
			}
			b.ReportMetric(float64(emu.Requests("")-reqs)/float64(b.N), "requests/op")
			b.ReportMetric(float64(quota-emu.Remaining())/float64(b.N), "quota/op")
		})
	}
}
