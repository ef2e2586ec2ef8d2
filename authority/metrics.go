package authority

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's own Prometheus instruments (the engine has
// its own).
type metrics struct {
	rejected *prometheus.CounterVec
	// panics counts the panics recovered in background work, by where
	// (task, tick).
	panics *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circles_rule_violations_total",
			Help: "Changes refused by a write rule, by rule (actor, permission, schema, immutable).",
		}, []string{"rule"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circles_panics_total",
			Help: "Panics recovered in background work (logged with their stack), by where: task (the authority's goroutines), tick (the scheduler).",
		}, []string{"where"}),
	}
	if reg != nil {
		reg.MustRegister(m.rejected, m.panics)
	}
	return m
}
