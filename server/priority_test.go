package server_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
)

// laneObserver records the lane of every permit the budget hands out.
type laneObserver struct {
	mu    sync.Mutex
	lanes []budget.Lane
}

func (o *laneObserver) Waited(lane budget.Lane, _ string, _ time.Duration, granted bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if granted {
		o.lanes = append(o.lanes, lane)
	}
}
func (o *laneObserver) Limited(string, string) {}
func (o *laneObserver) Breaker(bool)           {}

func (o *laneObserver) seen() []budget.Lane {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.lanes)
}

// TestProxy_PriorityHeader: a proxied call draws from the budget's
// interactive lane unless the app marks it background with
// Finch-Connect-Priority; a value that is neither is refused before
// anything reaches Finch, and the header is never sent to Finch.
func TestProxy_PriorityHeader(t *testing.T) {
	obs := &laneObserver{}
	f := newProxyFixture(t, func(c *finch.Client) {
		b, err := budget.New(sandbox.DefaultClientID, budget.Options{Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		c.Budget = b
	})
	path := f.base() + "employer/company"
	for _, tc := range []struct {
		header string
		want   budget.Lane
	}{
		{"", budget.Interactive},
		{"interactive", budget.Interactive},
		{"background", budget.Background},
		{" Background ", budget.Background},
	} {
		before := len(obs.seen())
		h := http.Header{}
		if tc.header != "" {
			h.Set("Finch-Connect-Priority", tc.header)
		}
		if r := f.read.callWith("GET", path, "", h); r.status != http.StatusOK {
			t.Fatalf("priority %q: status %d %s", tc.header, r.status, r.body)
		}
		got := obs.seen()[before:]
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("priority %q: lanes of the permits = %v, want [%v]", tc.header, got, tc.want)
		}
	}
	for _, r := range f.up.seen("") {
		if r.header.Get("Finch-Connect-Priority") != "" {
			t.Fatalf("the priority header reached Finch: %v", r.header)
		}
	}

	f.up.reset()
	h := http.Header{"Finch-Connect-Priority": {"urgent"}}
	r := f.read.callWith("GET", path, "", h)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "background") {
		t.Errorf("priority urgent = %d %s, want 400 naming the allowed values", r.status, r.body)
	}
	if n := len(f.up.seen("")); n != 0 {
		t.Errorf("a call with a bad priority reached Finch %d times", n)
	}
}
