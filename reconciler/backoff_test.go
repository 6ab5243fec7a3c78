package reconciler

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffExponentialCapReset(t *testing.T) {
	mid := func() float64 { return 0.5 } // no jitter
	b := newBackoff(time.Second, 10*time.Second, mid)
	var got []time.Duration
	for range 6 {
		got = append(got, b.failure("prod/web", t0, false, "r1"))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays = %v, want %v s", got, want)
		}
	}
	if wait, until := b.waiting("prod/web", t0.Add(9*time.Second), "r1"); !wait || !until.Equal(t0.Add(10*time.Second)) {
		t.Errorf("waiting = %v until %v", wait, until)
	}
	if next, ok := b.next(t0); !ok || !next.Equal(t0.Add(10*time.Second)) {
		t.Errorf("next = %v %v", next, ok)
	}
	b.success("prod/web")
	if d := b.failure("prod/web", t0, false, "r1"); d != time.Second {
		t.Errorf("after reset delay = %v, want 1s", d)
	}
	if wait, _ := b.waiting("prod/other", t0, "r1"); wait {
		t.Error("unrelated key waits")
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	b := newBackoff(time.Second, 5*time.Minute, r.Float64)
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i := range 2000 {
		key := string(rune('a' + i%26))
		b.success(key)
		d := b.failure(key, t0, false, "r")
		lo, hi = min(lo, d), max(hi, d)
		if d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("first delay %v outside 0.9s..1.1s", d)
		}
	}
	if hi-lo < 100*time.Millisecond {
		t.Errorf("jitter spread only %v..%v", lo, hi)
	}
	for range 20 {
		if d := b.failure("z", t0, false, "r"); d > 5*time.Minute {
			t.Fatalf("delay %v over the cap", d)
		}
	}
}

func TestBackoffPermanent(t *testing.T) {
	b := newBackoff(time.Second, 5*time.Minute, func() float64 { return 0.5 })
	if d := b.failure("prod/web", t0, true, "r1"); d != 5*time.Minute {
		t.Errorf("permanent delay = %v, want the cap", d)
	}
	if wait, _ := b.waiting("prod/web", t0.Add(time.Minute), "r1"); !wait {
		t.Error("permanent failure retried before the cap on the same revision")
	}
	if wait, _ := b.waiting("prod/web", t0.Add(time.Minute), "r2"); wait {
		t.Error("permanent failure still waits on a new revision")
	}
}

func TestJitterBounds(t *testing.T) {
	for _, f := range []float64{0, 0.5, 0.999999} {
		d := jitter(30*time.Second, func() float64 { return f })
		if d < 27*time.Second || d > 33*time.Second {
			t.Errorf("jitter(%v) = %v", f, d)
		}
	}
}
