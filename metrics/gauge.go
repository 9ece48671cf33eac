package metrics

import "github.com/prometheus/client_golang/prometheus"

// GaugeSet registers one gauge series per value of label, each computed
// at scrape time by fn(value): the connections in each sync state, say.
func (m *Metrics) GaugeSet(name, help, label string, values []string, fn func(value string) float64) {
	for _, v := range values {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{label: v}},
			func() float64 { return fn(v) }))
	}
}
