package fakeclock

import (
	"sort"
	"sync"
	"time"
)

// Clock is a manual clock. The zero value is not usable; call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*Timer
	added  chan struct{}
}

// New returns a clock set to start.
func New(start time.Time) *Clock { return &Clock{now: start, added: make(chan struct{}, 1)} }

// Added is signalled (a buffer of one) when a timer is made, for tests that wait for the code under test to wait.
func (c *Clock) Added() <-chan struct{} { return c.added }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer is a fake timer. Its channel is unbuffered: Fire blocks until the owner receives or stops it.
type Timer struct {
	c        *Clock
	when     time.Time
	ch       chan time.Time
	stopped  chan struct{}
	stopOnce sync.Once
}

// NewTimer registers a timer due d from now (at once when d <= 0: it is due at the next Fire).
func (c *Clock) NewTimer(d time.Duration) *Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Timer{c: c, when: c.now.Add(d), ch: make(chan time.Time), stopped: make(chan struct{})}
	c.timers = append(c.timers, t)
	select {
	case c.added <- struct{}{}:
	default:
	}
	return t
}

// C is the timer's channel.
func (t *Timer) C() <-chan time.Time { return t.ch }

// Stop removes the timer; it reports whether the timer was still pending.
func (t *Timer) Stop() bool {
	t.stopOnce.Do(func() { close(t.stopped) })
	return t.c.remove(t)
}

func (c *Clock) remove(t *Timer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Next returns the deadline of the earliest pending timer.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].when.Before(c.timers[j].when) })
	return c.timers[0].when, true
}

// Set moves the clock to t (never backwards) without firing anything.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// FireDue delivers the earliest timer that is due, blocking until its owner receives it (true) or stops it
// (false). It reports false when no timer is due.
func (c *Clock) FireDue() bool {
	c.mu.Lock()
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].when.Before(c.timers[j].when) })
	if len(c.timers) == 0 || c.timers[0].when.After(c.now) {
		c.mu.Unlock()
		return false
	}
	t := c.timers[0]
	c.timers = c.timers[1:]
	now := c.now
	c.mu.Unlock()
	select {
	case t.ch <- now:
		return true
	case <-t.stopped:
		return false
	}
}
