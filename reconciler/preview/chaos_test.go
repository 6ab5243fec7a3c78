package preview

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
)

// chaosRuns is the number of randomized runs: BERTH_CHAOS_RUNS, else 200 (the bounded CI mode); hack/chaos.sh runs
// the full campaign.
func chaosRuns(t *testing.T) int {
	if s := os.Getenv("BERTH_CHAOS_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("BERTH_CHAOS_RUNS=%q is not a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 200
}

var chaosFaults = []githubemu.FaultKind{githubemu.Fault500, githubemu.Fault502HTML, githubemu.Fault200HTML,
	githubemu.FaultTruncated, githubemu.FaultEmpty, githubemu.FaultTimeout, githubemu.Fault401,
	githubemu.FaultSecondary, githubemu.Fault429}

var chaosMatches = []string{"", "/pulls?", "/pulls/", "/comments", "/statuses", "/collaborators"}

// TestChaos runs randomized open/push/label/close sequences with forge outages of every kind injected at random,
// on a fake clock. Invariants: a preview of an open, selected pull request is never destroyed; once the forge
// answers again, every closed or unselected pull request's preview is gone and every open, selected one runs its
// head.
func TestChaos(t *testing.T) {
	runs := chaosRuns(t)
	start := time.Now()
	for run := range runs {
		seed := uint64(run) + 1
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { chaosRun(t, seed) })
		if t.Failed() {
			t.Fatalf("seed %d failed; rerun with -run 'TestChaos/seed=%d$'", seed, seed)
		}
	}
	t.Logf("%d runs in %s", runs, time.Since(start).Round(time.Millisecond))
}

func chaosRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	w := newWorld(t, `previews: pr: {from: "staging", when: {labels: ["preview"], excludeLabels: ["no-preview"]}, max: perAuthor: 10}
`, func(o *Options) { o.Concurrency = 2 })
	fresh := func() {
		f, err := github.New(github.Options{BaseURL: w.emu.URL(), Repository: "acme/shop", Token: "tok", Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		w.c.opts.Forge = f
	}
	fresh()
	type prState struct {
		open, labelled bool
		head           string
	}
	prs := map[int]*prState{}
	hadPreview := map[int]bool{}
	steps := 6 + rng.IntN(10)
	for step := range steps {
		w.clock.Set(t0.Add(time.Duration(step+1) * time.Minute))
		// One forge event.
		ns := slices.Sorted(func(yield func(int) bool) {
			for n := range prs {
				if !yield(n) {
					return
				}
			}
		})
		switch op := rng.IntN(6); {
		case op == 0 || len(ns) == 0:
			author := fmt.Sprint("dev", rng.IntN(3))
			head := sha(fmt.Sprint("chaos", seed, "-", step))
			n := w.open(githubemu.PR{Author: author, HeadRef: fmt.Sprint("b", step), HeadSHA: head}, fmt.Sprintf("app:s%d", step), "x")
			prs[n] = &prState{open: true, labelled: true, head: head}
		default:
			n := ns[rng.IntN(len(ns))]
			p := prs[n]
			switch op {
			case 1:
				if p.open {
					p.head = w.push(n, fmt.Sprintf("app:p%d", step), fmt.Sprint("push", step))
				}
			case 2:
				if p.open {
					w.emu.ClosePR(n)
					p.open = false
				}
			case 3:
				if p.open {
					w.emu.Merge(n)
					p.open = false
				}
			case 4:
				if !p.open {
					w.emu.Reopen(n)
					p.open = true
				}
			case 5:
				if p.labelled {
					w.emu.Label(n, "no-preview")
					p.labelled = false
				}
			}
		}
		// An outage, sometimes.
		outage := rng.IntN(3) > 0
		if outage {
			k := chaosFaults[rng.IntN(len(chaosFaults))]
			count := 1 + rng.IntN(4)
			if k == githubemu.FaultTimeout {
				count = 1
			}
			w.emu.Inject(githubemu.Fault{Kind: k, Match: chaosMatches[rng.IntN(len(chaosMatches))], Count: count})
		}
		w.sync()
		for n, p := range prs {
			running := len(w.running(n)) > 0
			if hadPreview[n] && p.open && p.labelled && !running {
				t.Fatalf("step %d: pull request %d is open and labelled, and its preview was destroyed (%+v)", step, n, w.status(n))
			}
			hadPreview[n] = running
		}
		if outage && rng.IntN(2) == 0 {
			w.emu.ClearFaults()
			fresh()
		}
	}
	// The forge answers again: everything converges.
	w.emu.ClearFaults()
	fresh()
	w.clock.Set(t0.Add(time.Hour))
	for range 3 {
		w.sync()
	}
	for n, p := range prs {
		got := w.running(n)
		switch {
		case p.open && p.labelled:
			if len(got) != 1 || w.status(n).Deployed != p.head {
				t.Errorf("pull request %d is open: preview %v at %s, want its head %s (%+v)", n, got, w.status(n).Deployed, p.head, w.status(n))
			}
		default:
			if len(got) != 0 {
				t.Errorf("pull request %d is closed or unlabelled: its preview still runs %v (%+v)", n, got, w.status(n))
			}
		}
	}
}
