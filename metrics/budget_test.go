package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
	"github.com/finchconnect/finchconnect/metrics"
)

// TestBudgetMetrics: a few acquisitions, a refusal, a 429 fed back and an
// IP lockout show in the scrape with their values, and every label comes
// from the closed sets.
func TestBudgetMetrics(t *testing.T) {
	clock := budgettest.NewClock()
	m := metrics.New()
	lim := budget.Limits{Products: map[string]int{"company": 3, "payment": 2}}
	bm := m.Budget(metrics.BudgetTable(lim))
	b, err := budget.New("client", budget.Options{Clock: clock, Limits: lim, Observer: bm})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bm.Watch(b)
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(30*time.Second))
	defer cancel()

	// Three company calls fill its window; two succeed, one earns a 429.
	for i := range 3 {
		tk, err := b.Acquire(ctx, "company")
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			tk.Done(429, "finch_application_rl", 10*time.Second)
		} else {
			tk.Done(200, "", 0)
		}
	}
	// A background payment call and one to /introspect (IP limit only).
	tk, err := b.Acquire(budget.WithLane(ctx, budget.Background), "payment")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(200, "", 0)
	tk, err = b.Acquire(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(200, "", 0)
	// The company window is full for a minute: refused at once.
	if _, err := b.Acquire(ctx, "company"); !errors.Is(err, budget.ErrNoBudget) {
		t.Fatalf("a fourth company call: got %v, want ErrNoBudget", err)
	}

	out := scrape(t, m)
	for _, want := range []string{
		`finchconnect_budget_limit{product="company"} 3`,
		`finchconnect_budget_used{product="company"} 3`,
		`finchconnect_budget_left{product="company"} 0`,
		`finchconnect_budget_paused{product="company"} 1`,
		`finchconnect_budget_limit{product="payment"} 2`,
		`finchconnect_budget_used{product="payment"} 1`,
		`finchconnect_budget_left{product="payment"} 1`,
		`finchconnect_budget_limit{product="directory"} 20`,
		`finchconnect_budget_used{product="directory"} 0`,
		`finchconnect_budget_limit{product="ip"} 1000`,
		`finchconnect_budget_used{product="ip"} 5`,
		`finchconnect_budget_left{product="ip"} 995`,
		`finchconnect_budget_granted_total 5`,
		`finchconnect_budget_wait_seconds_count{lane="interactive"} 5`,
		`finchconnect_budget_wait_seconds_count{lane="background"} 1`,
		`finchconnect_budget_refused_total{lane="interactive"} 1`,
		`finchconnect_budget_refused_total{lane="background"} 0`,
		`finchconnect_budget_finch_429_total{kind="rate",product="company"} 1`,
		`finchconnect_budget_finch_429_total{kind="rate",product="payment"} 0`,
		`finchconnect_budget_finch_429_total{kind="ip_lockout",product="none"} 0`,
		`finchconnect_budget_breaker_open 0`,
		`finchconnect_budget_breaker_opened_total 0`,
		`finchconnect_budget_waiting{lane="interactive"} 0`,
	} {
		if !hasLine(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}

	// An IP lockout 429 opens the breaker; it closes when its time is up.
	tk, err = b.Acquire(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(429, "finch_api_ip_rl", time.Hour)
	out = scrape(t, m)
	for _, want := range []string{
		`finchconnect_budget_breaker_open 1`,
		`finchconnect_budget_breaker_opened_total 1`,
		`finchconnect_budget_finch_429_total{kind="ip_lockout",product="none"} 1`,
	} {
		if !hasLine(out, want) {
			t.Errorf("after a lockout, scrape lacks %s", want)
		}
	}
	clock.Advance(time.Hour + time.Second)
	if out = scrape(t, m); !hasLine(out, `finchconnect_budget_breaker_open 0`) {
		t.Error("an hour after the lockout, the breaker gauge is not 0")
	}
	// Closed label sets: products of the table, "ip" and "none"; lanes.
	allowed := map[string]bool{`lane="interactive"`: true, `lane="background"`: true, `product="ip"`: true, `product="none"`: true}
	for _, p := range metrics.BudgetTable(lim) {
		allowed[`product="`+p+`"`] = true
	}
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "finchconnect_budget_") || !strings.Contains(line, "{") {
			continue
		}
		labels := line[strings.Index(line, "{")+1 : strings.Index(line, "}")]
		for l := range strings.SplitSeq(labels, ",") {
			if strings.HasPrefix(l, "le=") || strings.HasPrefix(l, "kind=") {
				continue
			}
			if !allowed[l] {
				t.Errorf("label %s outside the closed sets in %s", l, line)
			}
		}
	}
}

// hasLine reports whether the exposition has a sample line exactly want.
func hasLine(out, want string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if line == want {
			return true
		}
	}
	return false
}

// TestBudgetMetrics_UnknownProduct: a 429 for a bucket outside the table
// is labelled "none", so no caller can add a label value.
func TestBudgetMetrics_UnknownProduct(t *testing.T) {
	m := metrics.New()
	bm := m.Budget([]string{"company"})
	bm.Limited("../etc/passwd", "")
	if out := scrape(t, m); !hasLine(out, `finchconnect_budget_finch_429_total{kind="rate",product="none"} 1`) || strings.Contains(out, "passwd") {
		t.Errorf("an unknown product's 429 is not labelled none:\n%s", out)
	}
}
