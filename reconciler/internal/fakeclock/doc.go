// Package fakeclock is a manual clock for tests: time moves only when the test says so, and a due timer is
// delivered by a blocking send, so the test knows exactly when the code under test has taken the wake-up.
//
// Non-goals: tickers and AfterFunc; the controller needs one timer at a time. Callers (tests) move time with Set and
// deliver due timers with FireDue, waiting after each delivery for the code under test to be idle again.
package fakeclock
