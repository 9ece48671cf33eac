package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestServe_BudgetMetrics starts serve (against its built-in sandbox),
// makes a few company calls through the proxy, and scrapes /metrics: the budget's
// series are there and counted those calls.
func TestServe_BudgetMetrics(t *testing.T) {
	t.Parallel() // its own processes, ports and folder
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir)
	b := newBrowser(t)
	_, loc, _ := b.do("GET", connectThroughSandbox(t, b, app.url, "budget-1"), nil)
	id := strings.TrimPrefix(loc, "/connections/")
	var key bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "apikey", "create", "-scope", "read", "-name", "budget metrics test", "-data-dir", dir},
		func(string) string { return "" }, nil, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	const calls = 3
	for range calls {
		// Through the proxy, which draws from the budget.
		req, _ := http.NewRequest("GET", app.url+"/v1/connections/"+id+"/finch/employer/company", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(key.String()))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/connections/{id}/finch/employer/company: %s", res.Status)
		}
	}
	_, _, metrics := b.do("GET", app.url+"/metrics", nil)
	for _, want := range []string{
		`finchconnect_budget_limit{product="company"} 20`,
		`finchconnect_budget_left{product="company"}`,
		`finchconnect_budget_wait_seconds_count{lane="interactive"}`,
		`finchconnect_budget_breaker_open 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	m := regexp.MustCompile(`(?m)^finchconnect_budget_used\{product="company"\} (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("/metrics lacks finchconnect_budget_used{product=\"company\"}:\n%s", metrics)
	}
	if used, _ := strconv.ParseFloat(m[1], 64); used < calls {
		t.Errorf("finchconnect_budget_used{product=\"company\"} = %v after %d proxied company calls, want at least %d", used, calls, calls)
	}
}
