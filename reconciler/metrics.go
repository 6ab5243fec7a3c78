package reconciler

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's and engine's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	reconciles  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	steps       *prometheus.CounterVec
	lastApplied *prometheus.GaugeVec
	fetchErrors *prometheus.CounterVec
	fetchOK     *prometheus.GaugeVec

	mu   sync.Mutex
	last map[string]string
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_reconcile_total",
			Help: "Reconcile passes per environment, by result (ready, progressing, failed, blocked)."},
			[]string{"environment", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_reconcile_duration_seconds",
			Help: "Duration of one environment's reconcile (plan and apply).", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)},
			[]string{"environment"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_reconcile_errors_total",
			Help: "Reconcile errors by environment and kind (load, plan, step)."}, []string{"environment", "kind"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_steps_total",
			Help: "Plan steps carried out, by action and result (ok, error)."}, []string{"action", "result"}),
		lastApplied: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_last_applied_revision_info",
			Help: "The revision last applied in full to each environment (value 1)."}, []string{"environment", "revision"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_source_fetch_errors_total",
			Help: "Failed fetches (or signature checks) of each source."}, []string{"source"}),
		fetchOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_source_last_success_timestamp_seconds",
			Help: "When each source was last checked successfully (Unix time)."}, []string{"source"}),
		last: map[string]string{},
	}
	if reg != nil {
		reg.MustRegister(m.reconciles, m.duration, m.errors, m.steps, m.lastApplied, m.fetchErrors, m.fetchOK)
	}
	return m
}

func (m *Metrics) reconciled(env, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.reconciles.WithLabelValues(env, result).Inc()
	m.duration.WithLabelValues(env).Observe(d.Seconds())
}

func (m *Metrics) error(env, kind string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(env, kind).Inc()
}

func (m *Metrics) step(action string, ok bool) {
	if m == nil {
		return
	}
	r := "ok"
	if !ok {
		r = "error"
	}
	m.steps.WithLabelValues(action, r).Inc()
}

func (m *Metrics) applied(env, revision string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.last[env]; ok {
		if old == revision {
			return
		}
		m.lastApplied.DeleteLabelValues(env, old)
	}
	m.last[env] = revision
	m.lastApplied.WithLabelValues(env, revision).Set(1)
}

func (m *Metrics) fetchError(source string) {
	if m == nil {
		return
	}
	m.fetchErrors.WithLabelValues(source).Inc()
}

func (m *Metrics) fetched(source string, at time.Time) {
	if m == nil {
		return
	}
	m.fetchOK.WithLabelValues(source).Set(float64(at.UnixNano()) / 1e9)
}
