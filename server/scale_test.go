package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// TestHome_AtScale is the browser test's walk over 3,000 seeded
// connections without the browser, so that it runs everywhere: the total,
// the newest first, paging both ways, and the search for one customer.
func TestHome_AtScale(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	began := time.Now()
	seedConnections(t, h.store, 3000, time.Now().UTC().Add(-72*time.Hour))
	t.Logf("seeded 3,000 connections in %v", time.Since(began))
	h.connectWith("zz-browser", "company", "directory")

	began = time.Now()
	home := h.do(h.client, "GET", "/", nil)
	t.Logf("home page over 3,001 connections in %v", time.Since(began))
	if home.status != http.StatusOK {
		t.Fatalf("GET / = %d", home.status)
	}
	got := listedCustomers(home.body)
	if len(got) != 50 || got[0] != "zz-browser" || got[1] != "cust-2999" {
		t.Errorf("first page starts %v, want 50 rows from zz-browser, cust-2999", got[:min(3, len(got))])
	}
	for _, want := range []string{`<strong id="total">3,001</strong>`, "Page 1 of 61", `href="/?page=2" id="next-page"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	two := h.do(h.client, "GET", "/?page=2", nil)
	if got := listedCustomers(two.body); len(got) != 50 || got[0] != "cust-2950" {
		t.Errorf("page 2 starts %v, want cust-2950", got[:min(1, len(got))])
	}
	if !strings.Contains(two.body, `href="/" id="prev-page"`) || !strings.Contains(two.body, "Page 2 of 61") {
		t.Error("page 2 does not lead back to page 1")
	}
	last := h.do(h.client, "GET", "/?page=61", nil)
	if got := listedCustomers(last.body); len(got) != 1 || got[0] != "cust-0000" {
		t.Errorf("page 61 = %v, want the oldest alone", got)
	}
	found := h.do(h.client, "GET", "/?q=cust-2024", nil)
	if got := listedCustomers(found.body); len(got) != 1 || got[0] != "cust-2024" || !strings.Contains(found.body, "Showing 1–1 of 1 matching") {
		t.Errorf("search for cust-2024 listed %v", got)
	}
}
