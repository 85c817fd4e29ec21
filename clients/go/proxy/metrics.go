package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series (namespace topom_proxy). The
// command label is bounded: only names in the command table, else "other".
type metrics struct {
	reg            *prometheus.Registry
	commands       *prometheus.CounterVec
	errors         *prometheus.CounterVec
	latency        prometheus.Histogram
	sessions       prometheus.Gauge
	sessionsTotal  prometheus.Counter
	revision       prometheus.Gauge
	fenced         prometheus.Gauge
	migrations     prometheus.Counter
	movingErrors   prometheus.Counter
	backendErrors  prometheus.Counter
	protocolErrors prometheus.Counter
}

func newMetrics(p *Proxy) *metrics {
	const ns = "topom_proxy"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "commands_total",
			Help: "Commands received, by command (commands outside the table count as \"other\")."}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "command_errors_total",
			Help: "Commands answered with an error (by the proxy or a backend), by command."}, []string{"command"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "command_duration_seconds",
			Help:    "Time from reading a request to its reply being ready to write.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1, 5}}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "sessions",
			Help: "Client sessions open now."}),
		sessionsTotal: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "sessions_total",
			Help: "Client sessions opened since start."}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "applied_revision",
			Help: "Revision of the slot table being served."}),
		fenced: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "fenced",
			Help: "1 while the lease with topom has run out and nothing is served."}),
		migrations: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "migration_requests_total",
			Help: "Requests served on a migrating slot (key moved to the target first)."}),
		movingErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "slot_moving_errors_total",
			Help: "Requests answered \"slot N is being moved, retry\" after the locked-slot hold timeout."}),
		backendErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "backend_errors_total",
			Help: "Requests failed because their backend was unreachable or its connection broke."}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "session_protocol_errors_total",
			Help: "Sessions ended for bad input (malformed RESP, oversized request)."}),
	}
	backends := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "backend_connections",
		Help: "Backend connections open now."}, func() float64 { return float64(p.backendConns.Load()) })
	m.reg.MustRegister(m.commands, m.errors, m.latency, m.sessions, m.sessionsTotal, m.revision, m.fenced,
		m.migrations, m.movingErrors, m.backendErrors, m.protocolErrors, backends,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registry exposes the registry for the admin handler.
func (p *Proxy) Registry() *prometheus.Registry { return p.metrics.reg }

func (m *metrics) counters(c *command) *[2]prometheus.Counter {
	if cs := c.counters.Load(); cs != nil {
		return cs
	}
	label := c.metric
	if label == "" {
		label = "other"
	}
	cs := &[2]prometheus.Counter{m.commands.WithLabelValues(label), m.errors.WithLabelValues(label)}
	c.counters.Store(cs)
	return cs
}

func (m *metrics) commandCounter(c *command) prometheus.Counter { return m.counters(c)[0] }
func (m *metrics) errorCounter(c *command) prometheus.Counter   { return m.counters(c)[1] }
