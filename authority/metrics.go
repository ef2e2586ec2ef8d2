package authority

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's own Prometheus instruments (the engine has
// its own).
type metrics struct {
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circles_rule_violations_total",
			Help: "Changes refused by a write rule, by rule (actor, permission, schema, immutable).",
		}, []string{"rule"}),
	}
	if reg != nil {
		reg.MustRegister(m.rejected)
	}
	return m
}
