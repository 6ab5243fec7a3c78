package preview

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

func contextWith(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, backendKey{}, addr)
}

// Metrics are the previews' Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	previews  *prometheus.GaugeVec
	requests  *prometheus.CounterVec
	remaining *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		previews: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_previews",
			Help: "Previews by source and state."}, []string{"source", "state"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_forge_requests_total",
			Help: "Requests to the forges' APIs, by forge, operation and HTTP status (0: no answer)."}, []string{"forge", "op", "code"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_forge_ratelimit_remaining",
			Help: "Requests left in the forge's rate-limit window, as its last answer said."}, []string{"forge"}),
	}
	if reg != nil {
		reg.MustRegister(m.previews, m.requests, m.remaining)
	}
	return m
}

// Request counts one forge request (for the forge clients' observers).
func (m *Metrics) Request(forge, op string, code int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(forge, op, strconv.Itoa(code)).Inc()
}

// RateLimit records what the forge said is left of its rate limit.
func (m *Metrics) RateLimit(forge string, remaining int) {
	if m == nil {
		return
	}
	m.remaining.WithLabelValues(forge).Set(float64(remaining))
}

// metrics sets the gauge of previews by state.
func (c *Controller) metrics() {
	m := c.opts.Metrics
	if m == nil {
		return
	}
	c.mu.Lock()
	counts := map[string]int{}
	for _, r := range c.prs {
		counts[r.status.State]++
	}
	c.mu.Unlock()
	for _, s := range States {
		m.previews.WithLabelValues(c.opts.Name, s).Set(float64(counts[s]))
	}
}
