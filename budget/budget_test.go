package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
)

func newBudget(t *testing.T, clock *budgettest.Clock, products map[string]int) *budget.Budget {
	t.Helper()
	b, err := budget.New("client", budget.Options{Clock: clock, Limits: budget.Limits{Products: products}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// deadlineCtx is a context whose deadline is d after the fake clock's
// now; the budget reads the deadline against its clock, and the real
// time never gets there during the test.
func deadlineCtx(t *testing.T, clock *budgettest.Clock, d time.Duration) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(d))
	t.Cleanup(cancel)
	return ctx
}

// acquireAsync starts an Acquire and returns its outcome's channel; it
// waits until the call is queued (or answered).
type outcome struct {
	t   *budget.Ticket
	err error
}

func acquireAsync(ctx context.Context, b *budget.Budget, product string) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		t, err := b.Acquire(ctx, product)
		ch <- outcome{t, err}
	}()
	return ch
}

func TestWindowSlidesFromDone(t *testing.T) {
	clock := budgettest.NewClock()
	b := newBudget(t, clock, map[string]int{"company": 2})
	ctx := deadlineCtx(t, clock, time.Hour)
	t1, err := b.Acquire(ctx, "company")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := b.Acquire(ctx, "company")
	if err != nil {
		t.Fatal(err)
	}
	// The window is full; a call due within 30 s is refused at once.
	_, err = b.Acquire(deadlineCtx(t, clock, 30*time.Second), "company")
	var nb *budget.NoBudgetError
	if !errors.As(err, &nb) || !errors.Is(err, budget.ErrNoBudget) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Acquire: got %v, want an immediate NoBudgetError", err)
	}
	if nb.RetryAfter != 60*time.Second {
		t.Errorf("RetryAfter = %v, want 60s", nb.RetryAfter)
	}
	clock.Advance(10 * time.Second)
	t1.Done(200, "", 0) // frees at 70 s
	clock.Advance(5 * time.Second)
	t2.Done(200, "", 0) // frees at 75 s
	ch := acquireAsync(deadlineCtx(t, clock, time.Hour), b, "company")
	waitQueued(t, b)
	clock.Advance(54 * time.Second) // 69 s
	select {
	case o := <-ch:
		t.Fatalf("granted at 69 s: %v", o.err)
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(time.Second) // 70 s
	if o := <-ch; o.err != nil {
		t.Fatalf("at 70 s: %v", o.err)
	}
}

// waitQueued waits (in real time, briefly) for a goroutine's Acquire to
// queue.
func waitQueued(t *testing.T, b *budget.Budget) {
	t.Helper()
	for range 1000 {
		if b.Stats().Waiting > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no waiter queued")
}
