package reconciler

import (
	"time"
)

// Defaults of the per-workload backoff.
const (
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 5 * time.Minute
)

// backoff tracks failed workloads: after the n-th failure in a row a key waits base·2^(n-1), ±10% jitter, capped
// at max. A permanent failure waits the cap, or until a new revision. Success forgets the key. Not safe for
// concurrent use; the controller's loop owns it.
type backoff struct {
	base, max time.Duration
	rand      func() float64 // in [0, 1)
	items     map[string]*backoffItem
}

type backoffItem struct {
	failures  int
	until     time.Time
	permanent bool
	revision  string
}

func newBackoff(base, max time.Duration, rand func() float64) *backoff {
	return &backoff{base: base, max: max, rand: rand, items: map[string]*backoffItem{}}
}

// jitter spreads d by ±10%.
func jitter(d time.Duration, rand func() float64) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand()))
}

// failure records a failed attempt at revision and returns how long key now waits.
func (b *backoff) failure(key string, now time.Time, permanent bool, revision string) time.Duration {
	it := b.items[key]
	if it == nil {
		it = &backoffItem{}
		b.items[key] = it
	}
	it.failures++
	d := b.max
	if !permanent && it.failures < 40 {
		if e := b.base << (it.failures - 1); e > 0 && e < b.max {
			d = e
		}
	}
	d = min(jitter(d, b.rand), b.max)
	it.until, it.permanent, it.revision = now.Add(d), permanent, revision
	return d
}

// success forgets key.
func (b *backoff) success(key string) { delete(b.items, key) }

// waiting tells whether key must be skipped now, at revision. A permanent failure ends early on a new revision.
func (b *backoff) waiting(key string, now time.Time, revision string) (bool, time.Time) {
	it := b.items[key]
	if it == nil {
		return false, time.Time{}
	}
	if it.permanent && it.revision != revision {
		delete(b.items, key)
		return false, time.Time{}
	}
	return now.Before(it.until), it.until
}

// next returns the earliest end of a wait after now.
func (b *backoff) next(now time.Time) (time.Time, bool) {
	var t time.Time
	for _, it := range b.items {
		if it.until.After(now) && (t.IsZero() || it.until.Before(t)) {
			t = it.until
		}
	}
	return t, !t.IsZero()
}
