package conformance

import (
	"net/http"
	"sync/atomic"
)

// CountingTransport counts the requests that pass through it to Next: the providers' List-cost benchmarks
// wrap a runtime client's transport with it and report requests per pass.
type CountingTransport struct {
	Next http.RoundTripper
	n    atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.Next.RoundTrip(req)
}

// Requests is how many requests went through so far.
func (c *CountingTransport) Requests() int64 { return c.n.Load() }

// Reset sets the count back to zero.
func (c *CountingTransport) Reset() { c.n.Store(0) }
