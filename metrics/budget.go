package metrics

import (
	"maps"
	"slices"
	"time"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/prometheus/client_golang/prometheus"
)

// noProduct is the product label of a call that counts against the IP
// limit only (/introspect, /auth/token, /jobs, a bucket the table lacks).
const noProduct = "none"

// BudgetMetrics are the Finch rate budget's metrics: it is the budget's
// [budget.Observer] (waits, refusals, 429s, breaker openings) and, once
// [BudgetMetrics.Watch] is called, it reads the budget's [budget.Stats]
// at every scrape (used, left, waiting, breaker state). Its labels come
// from closed sets: products are the budget's table plus "ip" (the IP
// window) and "none", lanes are "interactive" and "background".
type BudgetMetrics struct {
	products map[string]bool
	waits    *prometheus.HistogramVec
	refused  *prometheus.CounterVec
	limited  *prometheus.CounterVec
	opened   prometheus.Counter
	reg      *prometheus.Registry
}

// BudgetTable returns the product buckets a budget with limits keeps:
// Finch's table plus any bucket limits names.
func BudgetTable(limits budget.Limits) []string {
	t := map[string]bool{}
	for _, p := range budget.Buckets() {
		t[p] = true
	}
	for p := range limits.Products {
		t[p] = true
	}
	return slices.Sorted(maps.Keys(t))
}

// Budget registers the budget's metrics for the product buckets products
// (see [BudgetTable]); pass the result as the budget's Options.Observer,
// then call Watch with the budget built.
func (m *Metrics) Budget(products []string) *BudgetMetrics {
	bm := &BudgetMetrics{
		products: map[string]bool{},
		reg:      m.Registry,
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "finchconnect_budget_wait_seconds", Help: "Time a call to Finch waited for a permit of the rate budget, by lane (granted or refused).",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120},
		}, []string{"lane"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finchconnect_budget_refused_total", Help: "Calls to Finch the rate budget refused (no permit before their deadline, or the breaker open), by lane.",
		}, []string{"lane"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finchconnect_budget_finch_429_total", Help: "429s Finch still answered to a call with a permit, by product bucket (\"none\": IP limit only) and kind (\"rate\" or \"ip_lockout\").",
		}, []string{"product", "kind"}),
		opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finchconnect_budget_breaker_opened_total", Help: "Times an IP lockout 429 opened the budget's breaker.",
		}),
	}
	for _, p := range products {
		bm.products[p] = true
	}
	for _, l := range []budget.Lane{budget.Interactive, budget.Background} {
		bm.waits.WithLabelValues(l.String())
		bm.refused.WithLabelValues(l.String())
	}
	for _, p := range append(slices.Clone(products), noProduct) {
		bm.limited.WithLabelValues(p, "rate")
		bm.limited.WithLabelValues(p, "ip_lockout")
	}
	m.Registry.MustRegister(bm.waits, bm.refused, bm.limited, bm.opened)
	return bm
}

// product is the label of bucket p: p if the table has it, else "none".
func (bm *BudgetMetrics) product(p string) string {
	if bm.products[p] {
		return p
	}
	return noProduct
}

// Waited implements [budget.Observer].
func (bm *BudgetMetrics) Waited(lane budget.Lane, _ string, d time.Duration, granted bool) {
	bm.waits.WithLabelValues(lane.String()).Observe(d.Seconds())
	if !granted {
		bm.refused.WithLabelValues(lane.String()).Inc()
	}
}

// Limited implements [budget.Observer].
func (bm *BudgetMetrics) Limited(product, finchCode string) {
	kind := "rate"
	if finchCode == "finch_api_ip_rl" {
		kind = "ip_lockout"
	}
	bm.limited.WithLabelValues(bm.product(product), kind).Inc()
}

// Breaker implements [budget.Observer].
func (bm *BudgetMetrics) Breaker(open bool) {
	if open {
		bm.opened.Inc()
	}
}

// Watch registers the gauges that read b's Stats at each scrape.
func (bm *BudgetMetrics) Watch(b *budget.Budget) {
	bm.reg.MustRegister(&budgetCollector{b: b})
}

var (
	budgetLimitDesc = prometheus.NewDesc("finchconnect_budget_limit",
		"Permits the rate budget's window allows, by product bucket (\"ip\": the IP window).", []string{"product"}, nil)
	budgetUsedDesc = prometheus.NewDesc("finchconnect_budget_used",
		"Permits counting in the window now (in flight or finished less than a window ago), by product bucket.", []string{"product"}, nil)
	budgetLeftDesc = prometheus.NewDesc("finchconnect_budget_left",
		"Permits left in the window now (limit − used), by product bucket.", []string{"product"}, nil)
	budgetPausedDesc = prometheus.NewDesc("finchconnect_budget_paused",
		"1 while a product is paused by a 429's Retry-After, else 0.", []string{"product"}, nil)
	budgetWaitingDesc = prometheus.NewDesc("finchconnect_budget_waiting",
		"Calls queued for a permit now, by lane.", []string{"lane"}, nil)
	budgetBreakerDesc = prometheus.NewDesc("finchconnect_budget_breaker_open",
		"1 while the IP breaker refuses every call (after an IP lockout 429), else 0.", nil, nil)
	budgetGrantedDesc = prometheus.NewDesc("finchconnect_budget_granted_total",
		"Permits the rate budget granted since the process started.", nil, nil)
)

type budgetCollector struct{ b *budget.Budget }

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{budgetLimitDesc, budgetUsedDesc, budgetLeftDesc, budgetPausedDesc, budgetWaitingDesc, budgetBreakerDesc, budgetGrantedDesc} {
		ch <- d
	}
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	for _, w := range s.Windows {
		ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(w.Limit), w.Product)
		ch <- prometheus.MustNewConstMetric(budgetUsedDesc, prometheus.GaugeValue, float64(w.Used), w.Product)
		ch <- prometheus.MustNewConstMetric(budgetLeftDesc, prometheus.GaugeValue, float64(w.Left), w.Product)
		ch <- prometheus.MustNewConstMetric(budgetPausedDesc, prometheus.GaugeValue, b2f(w.Paused), w.Product)
	}
	for _, l := range []budget.Lane{budget.Interactive, budget.Background} {
		ch <- prometheus.MustNewConstMetric(budgetWaitingDesc, prometheus.GaugeValue, float64(s.Waiters[l]), l.String())
	}
	ch <- prometheus.MustNewConstMetric(budgetBreakerDesc, prometheus.GaugeValue, b2f(s.BreakerOpen))
	ch <- prometheus.MustNewConstMetric(budgetGrantedDesc, prometheus.CounterValue, float64(s.Granted))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
