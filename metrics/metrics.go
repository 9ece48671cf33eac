// Package metrics holds finchconnect's Prometheus metrics, on a registry of
// its own (never the global one), and the instrumentation that feeds them:
// an http.RoundTripper for calls to Finch and a tokenstore.Backend wrapper
// for the store. No label ever holds a token, a code or a customer's data:
// Finch requests are labelled by a route template from a closed list, with
// ids as ":id" (see [Route]).
package metrics

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of finchconnect's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	callbacks       *prometheus.CounterVec
	callbackSeconds prometheus.Histogram
	finchRequests   *prometheus.CounterVec
	finchSeconds    *prometheus.HistogramVec
	storeSeconds    *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	sweepChecked    prometheus.Counter
	sweepChanged    prometheus.Counter
	sweepLast       prometheus.Gauge
	eventsDelivered prometheus.Counter
	eventsDropped   prometheus.Counter
}

// New registers finchconnect's collectors, plus the Go and process ones, on
// a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finchconnect_callbacks_total", Help: "Connect callbacks by outcome (connected, duplicate, invalid_state, invalid_code, …).",
		}, []string{"outcome"}),
		callbackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "finchconnect_callback_duration_seconds", Help: "Time to answer a callback.", Buckets: prometheus.DefBuckets,
		}),
		finchRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finchconnect_finch_requests_total", Help: "Requests to Finch by route and status (status \"error\" when no response came).",
		}, []string{"route", "status"}),
		finchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "finchconnect_finch_request_duration_seconds", Help: "Latency of requests to Finch by route.", Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "finchconnect_store_operation_duration_seconds", Help: "Latency of store operations.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finchconnect_store_errors_total", Help: "Store operations that failed (not-found and conflicts excluded).",
		}, []string{"op"}),
		sweepChecked:    prometheus.NewCounter(prometheus.CounterOpts{Name: "finchconnect_sweep_checked_total", Help: "Connections introspected by health sweeps."}),
		sweepChanged:    prometheus.NewCounter(prometheus.CounterOpts{Name: "finchconnect_sweep_changed_total", Help: "Connections whose status a sweep changed."}),
		sweepLast:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "finchconnect_sweep_last_completed_timestamp_seconds", Help: "When the last full sweep ended."}),
		eventsDelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "finchconnect_events_delivered_total", Help: "Events delivered to the app."}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finchconnect_events_dropped_total", Help: "Events dropped undelivered, 7 days after their publication.",
		}),
	}
	r.MustRegister(m.callbacks, m.callbackSeconds, m.finchRequests, m.finchSeconds, m.storeSeconds, m.storeErrors,
		m.sweepChecked, m.sweepChanged, m.sweepLast, m.eventsDelivered, m.eventsDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Callback records how a callback ended (the server's Observe hook).
func (m *Metrics) Callback(outcome string, d time.Duration) {
	m.callbacks.WithLabelValues(outcome).Inc()
	m.callbackSeconds.Observe(d.Seconds())
}

// Sweep records a sweep's progress.
func (m *Metrics) Sweep(checked, changed int, done bool) {
	m.sweepChecked.Add(float64(checked))
	m.sweepChanged.Add(float64(changed))
	if done {
		m.sweepLast.SetToCurrentTime()
	}
}

// EventDelivered counts a delivered event.
func (m *Metrics) EventDelivered() { m.eventsDelivered.Inc() }

// EventDropped counts an event dropped undelivered.
func (m *Metrics) EventDropped() { m.eventsDropped.Inc() }

// Gauge registers a gauge whose value fn computes at scrape time (the
// outbox depth, the journal's pending tokens).
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// finchRoutes are the Finch API routes finchconnect calls, or that its /v1
// proxy may forward, as templates in which ":id" stands for one whole path
// segment, whatever it holds (finch-api.md §3–§6).
var finchRoutes = routeTable(
	"/auth/token",
	"/introspect",
	"/disconnect",
	"/disconnect-entity",
	"/connect/sessions",
	"/connect/sessions/reauthenticate",
	"/providers",
	"/employer/company",
	"/employer/directory",
	"/employer/individual",
	"/employer/employment",
	"/employer/payment",
	"/employer/pay-statement",
	"/employer/pay-groups",
	"/employer/pay-groups/:id",
	"/employer/documents",
	"/employer/documents/:id",
	"/employer/pay-statement-item",
	"/employer/pay-statement-item/rule",
	"/employer/pay-statement-item/rule/:id",
	"/employer/benefits",
	"/employer/benefits/meta",
	"/employer/benefits/register",
	"/employer/benefits/:id",
	"/employer/benefits/:id/individuals",
	"/employer/benefits/:id/enrolled",
	"/jobs/automated",
	"/jobs/automated/:id",
	"/jobs/manual/:id",
	"/forward",
	"/sandbox/connections",
	"/sandbox/connections/accounts",
	"/sandbox/company",
	"/sandbox/directory",
	"/sandbox/individual/:id",
	"/sandbox/employment/:id",
	"/sandbox/payment",
	"/sandbox/jobs",
	"/sandbox/jobs/configuration",
)

// routeMethods are the methods a route label names; any other is "OTHER".
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// otherRoute is the route of every path that matches no template.
const otherRoute = "other"

// A route is a template split into segments; literals counts those that
// are not ":id".
type route struct {
	template string
	segs     []string
	literals int
}

// routes is the closed set of templates, and the first segments they start
// with (the Finch API's areas: "employer", "jobs", "sandbox", …).
type routes struct {
	all   []route
	areas map[string]bool
}

func routeTable(templates ...string) routes {
	rs := routes{areas: map[string]bool{}}
	for _, t := range templates {
		r := route{template: t, segs: strings.Split(t[1:], "/")}
		for _, s := range r.segs {
			if s != ":id" {
				r.literals++
			}
		}
		rs.all = append(rs.all, r)
		rs.areas[r.segs[0]] = true
	}
	return rs
}

// match returns the template path matches, or otherRoute. The route starts
// at the first segment that names a Finch API area, so that a BaseURL with
// a path ("/finch" for the demo's sandbox) labels routes as Finch names
// them; from there every segment must match, a literal one exactly and
// ":id" any non-empty one. Where two templates match, the one with more
// literal segments wins: "/employer/benefits/meta" over
// "/employer/benefits/:id".
func (rs routes) match(path string) string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	start := slices.IndexFunc(segs, func(s string) bool { return rs.areas[s] })
	if start < 0 {
		return otherRoute
	}
	segs = segs[start:]
	best := -1
	for i, r := range rs.all {
		if (best < 0 || r.literals > rs.all[best].literals) && r.matches(segs) {
			best = i
		}
	}
	if best < 0 {
		return otherRoute
	}
	return rs.all[best].template
}

func (r route) matches(segs []string) bool {
	if len(segs) != len(r.segs) {
		return false
	}
	for i, s := range segs {
		if s == "" || r.segs[i] != ":id" && r.segs[i] != s {
			return false
		}
	}
	return true
}

// Route is the label for a request to Finch: its method (or "OTHER") and
// the template of the Finch route it calls, such as
// "GET /jobs/automated/:id", or "other" for a path that matches no known
// route. Labels therefore come from a closed set whatever paths callers
// of the /v1 proxy ask for, and never hold an id.
func Route(method, path string) string {
	if !slices.Contains(routeMethods, method) {
		method = "OTHER"
	}
	return method + " " + finchRoutes.match(path)
}

// Transport wraps base (nil: http.DefaultTransport) so that every request
// to Finch is counted and timed, labelled by its [Route].
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		route := Route(r.Method, r.URL.Path)
		start := time.Now()
		res, err := base.RoundTrip(r)
		m.finchSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
		status := "error"
		if err == nil {
			status = strconv.Itoa(res.StatusCode)
		}
		m.finchRequests.WithLabelValues(route, status).Inc()
		return res, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Backend wraps b so that every store operation is timed: each part of
// the storage contract (rows, key space, transaction) by a wrapper that
// holds only that part.
func (m *Metrics) Backend(b tokenstore.Backend) tokenstore.Backend {
	return &backend{rows{b, m}, keySpace{b, m}, transactor{b, m}, b, m}
}

type backend struct {
	rows
	keySpace
	transactor
	b tokenstore.Backend // Ping and Close
	m *Metrics
}

// The wrappers of the contract's parts.
type (
	rows struct {
		b tokenstore.Rows
		m *Metrics
	}
	keySpace struct {
		b tokenstore.KeySpace
		m *Metrics
	}
	transactor struct {
		b tokenstore.Transactor
		m *Metrics
	}
)

// time records one store operation op that started at start and ended
// with err.
func (m *Metrics) time(op string, start time.Time, err error) {
	m.storeSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !expected(err) {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

func (w rows) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	start := time.Now()
	r, err := w.b.GetRow(ctx, id)
	w.m.time("get_row", start, err)
	return r, err
}

func (w rows) PutRow(ctx context.Context, r tokenstore.Row, expect int64) (int64, error) {
	start := time.Now()
	v, err := w.b.PutRow(ctx, r, expect)
	w.m.time("put_row", start, err)
	return v, err
}

func (w transactor) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	start := time.Now()
	res, err := w.b.Txn(ctx, t)
	w.m.time("txn", start, err)
	return res, err
}

func (w rows) DeleteRow(ctx context.Context, id string) error {
	start := time.Now()
	err := w.b.DeleteRow(ctx, id)
	w.m.time("delete_row", start, err)
	return err
}

func (w rows) ListRows(ctx context.Context, f tokenstore.Filter) ([]tokenstore.Row, error) {
	start := time.Now()
	rows, err := w.b.ListRows(ctx, f)
	w.m.time("list_rows", start, err)
	return rows, err
}

func (w keySpace) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := w.b.Claim(ctx, key, value, ttl)
	w.m.time("claim", start, err)
	return err
}

func (w keySpace) Load(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := w.b.Load(ctx, key)
	w.m.time("load", start, err)
	return v, err
}

func (w keySpace) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := w.b.Swap(ctx, key, old, value, ttl)
	w.m.time("swap", start, err)
	return err
}

func (w keySpace) Forget(ctx context.Context, key string) error {
	start := time.Now()
	err := w.b.Forget(ctx, key)
	w.m.time("forget", start, err)
	return err
}

func (w keySpace) Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error) {
	start := time.Now()
	es, err := w.b.Scan(ctx, prefix, after, limit)
	w.m.time("scan", start, err)
	return es, err
}

func (w *backend) Ping(ctx context.Context) error {
	start := time.Now()
	err := w.b.Ping(ctx)
	w.m.time("ping", start, err)
	return err
}

func (w *backend) Close() error { return w.b.Close() }
