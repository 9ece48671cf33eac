package budgettest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/budget"
)

// Run tests a [budget.Shared]: the lease arithmetic of one window, and
// three Budgets sharing it that, offered many times the limit, never let
// more than the limit through in any window. newShared returns a fresh,
// empty store for each subtest.
func Run(t *testing.T, newShared func(t *testing.T) budget.Shared) {
	t.Run("LeaseArithmetic", func(t *testing.T) { testLease(t, newShared(t)) })
	t.Run("ReplicasStayWithinTheLimit", func(t *testing.T) { testReplicas(t, newShared(t)) })
}

func testLease(t *testing.T, s budget.Shared) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	until := now.Add(time.Minute)
	lease := func(id string, want int, at time.Time, ret *budget.Return) budget.LeaseResult {
		t.Helper()
		r, err := s.Lease(ctx, budget.LeaseRequest{Key: "c/company", ID: id, Limit: 5, Want: want, Now: at, Until: until, Return: ret})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := lease("a", 3, now, nil); r.Granted != 3 || r.Used != 3 {
		t.Fatalf("first lease: got %+v, want 3 granted, 3 used", r)
	}
	if r := lease("b", 3, now, nil); r.Granted != 2 || r.Used != 5 {
		t.Fatalf("second lease: got %+v, want the 2 left, 5 used", r)
	}
	r := lease("c", 1, now, nil)
	if r.Granted != 0 || !r.NextFree.Equal(until) {
		t.Fatalf("full window: got %+v, want 0 granted, next free at %v", r, until)
	}
	// Another key is another window.
	if r, err := s.Lease(ctx, budget.LeaseRequest{Key: "c/payment", ID: "p", Limit: 5, Want: 5, Now: now, Until: until}); err != nil || r.Granted != 5 {
		t.Fatalf("other key: got %+v, %v, want 5 granted", r, err)
	}
	// Giving back 2 unspent slots of a, in the same call, makes room for 2.
	if r := lease("d", 4, now, &budget.Return{ID: "a", Unused: 2}); r.Granted != 2 || r.Used != 5 {
		t.Fatalf("lease with a return: got %+v, want 2 granted", r)
	}
	if err := s.Release(ctx, "c/company", "b", 2); err != nil {
		t.Fatal(err)
	}
	if r := lease("e", 5, now, nil); r.Granted != 2 {
		t.Fatalf("after a release of 2: got %+v, want 2 granted", r)
	}
	// At until every lease has expired.
	if r := lease("f", 9, until, nil); r.Granted != 5 || r.Used != 5 {
		t.Fatalf("after expiry: got %+v, want the whole limit of 5", r)
	}
}

// testReplicas runs three Budgets on one store and one clock, offers them
// four times the limit for three windows, and checks every window of the
// grants.
func testReplicas(t *testing.T, s budget.Shared) {
	const limit = 10
	clock := NewClock()
	start := clock.Now()
	client := fmt.Sprintf("client-%d", time.Now().UnixNano())
	var budgets []*budget.Budget
	for range 3 {
		b, err := budget.New(client, budget.Options{Shared: s, Clock: clock,
			Limits:  budget.Limits{Products: map[string]int{"company": limit}},
			MaxWait: [2]time.Duration{time.Hour, time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		budgets = append(budgets, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, b := range budgets {
		for j := range 4 * limit {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := budget.WithConnection(ctx, fmt.Sprint(i, "-", j))
				for ctx.Err() == nil {
					tk, err := b.Acquire(ctx, "company")
					if err == nil {
						tk.Done(200, "", 0)
					}
				}
			}()
		}
	}
	granted := func() int {
		n := 0
		for _, b := range budgets {
			b.WaitStore()
		}
		// Let the granted goroutines come back and queue again.
		time.Sleep(2 * time.Millisecond)
		for _, b := range budgets {
			b.WaitStore()
			n += int(b.Stats().Granted)
		}
		return n
	}
	const step = 250 * time.Millisecond
	type at struct {
		t time.Duration
		n int
	}
	var grants []at
	prev := 0
	for clock.Now().Sub(start) < 3*time.Minute {
		if n := granted(); n > prev {
			grants = append(grants, at{clock.Now().Sub(start), n - prev})
			prev = n
		}
		clock.Advance(step)
	}
	cancel()
	// Finch's check: in any window [t, t+60 s), at most limit calls.
	for i := range grants {
		n := 0
		for j := i; j < len(grants) && grants[j].t < grants[i].t+time.Minute; j++ {
			n += grants[j].n
		}
		if n > limit {
			t.Fatalf("%d calls in the window from %v (limit %d); grants %v", n, grants[i].t, limit, grants)
		}
	}
	t.Logf("%d calls in 3 minutes, limit %d a minute", prev, limit)
	// And the budget is used: the first window's limit at once, then a
	// limit per window of 62 s.
	if prev < 2*limit+limit/2 {
		t.Errorf("%d calls in 3 minutes, want at least %d (the budget is not being used)", prev, 2*limit+limit/2)
	}
}
