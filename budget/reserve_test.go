package budget_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
)

func newBudgetLimits(t *testing.T, clock *budgettest.Clock, lim budget.Limits) *budget.Budget {
	t.Helper()
	b, err := budget.New("client", budget.Options{Clock: clock, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func windowOf(b *budget.Budget, product string) budget.WindowStats {
	for _, w := range b.Stats().Windows {
		if w.Product == product {
			return w
		}
	}
	return budget.WindowStats{}
}

// waitWaiting waits (in real time, briefly) until lane has n waiters.
func waitWaiting(t *testing.T, b *budget.Budget, lane budget.Lane, n int) {
	t.Helper()
	for range 1000 {
		if b.Stats().Waiters[lane] == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d %s waiters, want %d", b.Stats().Waiters[lane], lane, n)
}

// TestReserveKeepsSlotsForInteractive: with background work offered far
// beyond the window, background takes limit − reserve slots and queues;
// an interactive call then gets a slot at once (no clock step), and
// interactive calls may fill the window to its limit.
func TestReserveKeepsSlotsForInteractive(t *testing.T) {
	const limit, reserve = 20, 3
	clock := budgettest.NewClock()
	b := newBudgetLimits(t, clock, budget.Limits{Products: map[string]int{"company": limit}, Reserve: map[string]int{"company": reserve}})
	bg := budget.WithLane(deadlineCtx(t, clock, time.Hour), budget.Background)
	var tickets []*budget.Ticket
	for {
		tk, err := b.Acquire(budget.WithLane(deadlineCtx(t, clock, time.Second), budget.Background), "company")
		if err != nil {
			break // the window is full for background: refused at once
		}
		tickets = append(tickets, tk)
	}
	if len(tickets) != limit-reserve {
		t.Fatalf("background took %d slots at once, want limit − reserve = %d", len(tickets), limit-reserve)
	}
	for _, tk := range tickets {
		tk.Done(200, "", 0)
	}
	var waiting []<-chan outcome
	for i := range 5 {
		waiting = append(waiting, acquireAsync(budget.WithConnection(bg, fmt.Sprint(i)), b, "company"))
	}
	waitWaiting(t, b, budget.Background, 5)
	// Background waiters queued, the window at limit − reserve: each
	// interactive call, due within a second, is granted now.
	for i := range reserve {
		tk, err := b.Acquire(deadlineCtx(t, clock, time.Second), "company")
		if err != nil {
			t.Fatalf("interactive call %d with background queued: %v, want a permit at once", i+1, err)
		}
		tk.Done(200, "", 0)
	}
	if w := windowOf(b, "company"); w.Used != limit {
		t.Errorf("window holds %d, want the whole limit %d once interactive calls needed it", w.Used, limit)
	}
	if _, err := b.Acquire(deadlineCtx(t, clock, time.Second), "company"); !errors.Is(err, budget.ErrNoBudget) {
		t.Errorf("interactive call past the limit: %v, want a refusal", err)
	}
	if n := b.Stats().Waiters[budget.Background]; n != 5 {
		t.Errorf("%d background waiters, want the 5 still queued", n)
	}
	for _, ch := range waiting {
		select {
		case o := <-ch:
			t.Fatalf("a background waiter was served in a full window: %v", o.err)
		default:
		}
	}
}

// TestReserveBackgroundAloneOverTime offers background work only, for
// three windows: no window of its grants holds more than limit − reserve,
// and the background still uses that much of each window.
func TestReserveBackgroundAloneOverTime(t *testing.T) {
	const limit, reserve = 12, 3
	clock := budgettest.NewClock()
	b := newBudgetLimits(t, clock, budget.Limits{Products: map[string]int{"payment": limit}, Reserve: map[string]int{"payment": reserve}})
	checkBackgroundWindows(t, clock, b, "payment", limit-reserve)
}

// TestNoReserveIsTodaysBudget: with the reserve off, background work
// fills the whole window and an interactive call then waits.
func TestNoReserveIsTodaysBudget(t *testing.T) {
	const limit = 12
	clock := budgettest.NewClock()
	b := newBudgetLimits(t, clock, budget.Limits{Products: map[string]int{"payment": limit}}.WithoutReserve())
	checkBackgroundWindows(t, clock, b, "payment", limit)
	if _, err := b.Acquire(deadlineCtx(t, clock, time.Second), "payment"); !errors.Is(err, budget.ErrNoBudget) {
		t.Errorf("interactive call in a window background filled: %v, want a refusal (no reserve)", err)
	}
}

// checkBackgroundWindows runs 30 background callers on product for three
// minutes of the clock, finishing each call at once, and checks that
// every 60 s window of grants holds at most max and the busiest holds
// exactly max.
func checkBackgroundWindows(t *testing.T, clock *budgettest.Clock, b *budget.Budget, product string, most int) {
	t.Helper()
	ctx, cancel := context.WithCancel(budget.WithLane(context.Background(), budget.Background))
	start := clock.Now()
	grants := make(chan time.Duration, 1000)
	done := make(chan struct{})
	const callers = 30
	for i := range callers {
		go func() {
			defer func() { done <- struct{}{} }()
			ctx := budget.WithConnection(ctx, fmt.Sprint(i))
			for ctx.Err() == nil {
				tk, err := b.Acquire(ctx, product)
				if err == nil {
					grants <- clock.Now().Sub(start)
					tk.Done(200, "", 0)
				}
			}
		}()
	}
	// Step the clock only once every caller is back in the queue (or the
	// window has room for none of them): settled when the waiters and the
	// grants stop changing.
	settle := func() {
		last := -1
		for range 1000 {
			s := b.Stats()
			if s.Waiters[budget.Background] == callers || (int(s.Granted) == last && s.Waiting > 0) {
				return
			}
			last = int(s.Granted)
			time.Sleep(time.Millisecond)
		}
	}
	for clock.Now().Sub(start) < 3*time.Minute {
		settle()
		clock.Advance(500 * time.Millisecond)
	}
	settle()
	cancel()
	for range callers {
		<-done
	}
	close(grants)
	var at []time.Duration
	for g := range grants {
		at = append(at, g)
	}
	busiest := 0
	for i := range at {
		n := 0
		for _, g := range at {
			if g >= at[i] && g < at[i]+time.Minute {
				n++
			}
		}
		busiest = max(busiest, n)
	}
	if busiest > most {
		t.Fatalf("background got %d permits in one window, want at most %d", busiest, most)
	}
	if busiest < most {
		t.Errorf("background got at most %d permits in a window, want %d (the budget is not being used)", busiest, most)
	}
	t.Logf("%d permits in 3 minutes, at most %d in a window", len(at), busiest)
	if len(at) < 2*most {
		t.Errorf("background got %d permits in 3 minutes, want at least %d", len(at), 2*most)
	}
}

func TestReserveConfig(t *testing.T) {
	for limit, want := range map[int]int{1: 0, 2: 1, 12: 1, 20: 1, 40: 2, 1000: 50} {
		if got := budget.DefaultReserve(limit); got != want {
			t.Errorf("DefaultReserve(%d) = %d, want %d", limit, got, want)
		}
	}
	b, err := budget.New("c", budget.Options{Limits: budget.Limits{Reserve: map[string]int{"directory": 4, "payment": 0}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := b.Limits()
	if l.Reserve["directory"] != 4 || l.Reserve["payment"] != 0 || l.Reserve["company"] != 1 || l.IPReserve != 50 {
		t.Errorf("resolved reserves %v, IP %d; want directory 4, payment 0, company 1 (default), IP 50", l.Reserve, l.IPReserve)
	}
	off, err := budget.New("c", budget.Options{Limits: budget.Limits{}.WithoutReserve()})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	for p, r := range off.Limits().Reserve {
		if r != 0 {
			t.Errorf("WithoutReserve: %s keeps %d", p, r)
		}
	}
	if r := off.Limits().IPReserve; r != -1 {
		t.Errorf("WithoutReserve: IP reserve %d, want -1 (none)", r)
	}
	for _, bad := range []budget.Limits{
		{Reserve: map[string]int{"company": 20}},
		{Reserve: map[string]int{"company": -1}},
		{Reserve: map[string]int{"nosuch": 1}},
		{IP: 10, IPReserve: 10},
		{IPReserve: -2},
	} {
		if _, err := budget.New("c", budget.Options{Limits: bad}); err == nil || !strings.Contains(err.Error(), "reserve") {
			t.Errorf("New with %+v: %v, want a reserve error", bad, err)
		}
	}
}
