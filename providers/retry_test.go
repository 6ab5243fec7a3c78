package providers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRetryDo(t *testing.T) {
	transient, invalid, final := errors.New("503"), errors.New("400"), errors.New("404")
	classify := func(err error) Class {
		switch err {
		case transient:
			return Transient
		case invalid:
			return Invalid
		}
		return Final
	}
	r := Retry{Base: time.Microsecond, Max: 4 * time.Microsecond, Attempts: 3, Classify: classify}
	run := func(errs ...error) (int, error) {
		calls := 0
		err := r.Do(context.Background(), "op", func(context.Context) error {
			calls++
			if calls <= len(errs) {
				return errs[calls-1]
			}
			return nil
		})
		return calls, err
	}
	if calls, err := run(transient, transient); err != nil || calls != 3 {
		t.Fatalf("two transient failures then success: %d calls, %v", calls, err)
	}
	if calls, err := run(transient, transient, transient); calls != 3 || !errors.Is(err, transient) || errors.Is(err, ErrPermanent) ||
		!strings.Contains(err.Error(), "op: still failing after 3 tries") {
		t.Fatalf("attempts exhausted: %d calls, %v", calls, err)
	}
	if calls, err := run(invalid); calls != 1 || !errors.Is(err, ErrPermanent) || !errors.Is(err, invalid) {
		t.Fatalf("invalid: %d calls, %v", calls, err)
	}
	if calls, err := run(final); calls != 1 || errors.Is(err, ErrPermanent) || !errors.Is(err, final) {
		t.Fatalf("final: %d calls, %v", calls, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Do(ctx, "op", func(context.Context) error { return transient }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	timed := Retry{Attempts: 1, Timeout: time.Millisecond, Classify: classify}
	if err := timed.Do(context.Background(), "op", func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no per-attempt deadline")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
