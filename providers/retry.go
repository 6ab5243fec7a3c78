package providers

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Class is a provider's verdict on a failed runtime call.
type Class int

const (
	// Final errors come back as they are, for the caller to decide (not found, already exists, a lost
	// compare-and-set).
	Final Class = iota
	// Transient errors (throttling, 5xx, timeouts, conflicts, dropped connections) are retried with backoff.
	Transient
	// Invalid errors will not go away by retrying: they come back wrapped in Permanent.
	Invalid
)

// Retry is how a provider repeats its calls to a runtime: capped exponential backoff with jitter, a bounded
// number of attempts, and a timeout on each attempt. Errors are sorted by Classify, once, in one place.
type Retry struct {
	// Base is the first wait, doubled after each failure up to Max.
	Base, Max time.Duration
	// Attempts bounds the tries, the first included.
	Attempts int
	// Timeout bounds each attempt; 0 leaves it to ctx.
	Timeout  time.Duration
	Classify func(error) Class
	Logger   *slog.Logger
}

// Do runs f until it succeeds, fails with a Final or Invalid error, the attempts run out or ctx ends. Every error
// it returns names op and wraps the cause; Invalid ones are also Permanent.
func (r Retry) Do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	backoff := r.Base
	for attempt := 1; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if r.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, r.Timeout)
		}
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		switch r.Classify(err) {
		case Invalid:
			return Permanent(fmt.Errorf("%s: %w", op, err))
		case Final:
			return fmt.Errorf("%s: %w", op, err)
		}
		if attempt >= r.Attempts {
			return fmt.Errorf("%s: still failing after %d tries: %w", op, attempt, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1) // ±: between half and all of the backoff
		if r.Logger != nil {
			r.Logger.DebugContext(ctx, "call failed, retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
		}
		if err := Sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		backoff = min(2*backoff, r.Max)
	}
}
