package budget_test

import (
	"context"
	"errors"
	"fmt"
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

func TestInteractiveBeforeBackgroundAndRoundRobin(t *testing.T) {
	clock := budgettest.NewClock()
	b := newBudget(t, clock, map[string]int{"directory": 1})
	base := deadlineCtx(t, clock, time.Hour)
	first, err := b.Acquire(base, "directory")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var chans []<-chan outcome
	names := []string{}
	queue := func(name string, ctx context.Context) {
		chans = append(chans, acquireAsync(ctx, b, "directory"))
		names = append(names, name)
		for range 1000 {
			if b.Stats().Waiting == len(chans) {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("not queued")
	}
	bg := budget.WithLane(base, budget.Background)
	queue("bg-a1", budget.WithConnection(bg, "a"))
	queue("bg-a2", budget.WithConnection(bg, "a"))
	queue("bg-a3", budget.WithConnection(bg, "a"))
	queue("bg-b1", budget.WithConnection(bg, "b"))
	queue("in-c1", budget.WithConnection(base, "c"))
	first.Done(200, "", 0)
	for range len(chans) {
		clock.Advance(time.Minute)
		got := -1
		for got < 0 {
			for i, ch := range chans {
				select {
				case o := <-ch:
					if o.err != nil {
						t.Fatalf("%s: %v", names[i], o.err)
					}
					got = i
					o.t.Done(200, "", 0)
				default:
				}
			}
			if got < 0 {
				time.Sleep(time.Millisecond)
			}
		}
		order = append(order, names[got])
	}
	want := "[in-c1 bg-a1 bg-b1 bg-a2 bg-a3]"
	if g := fmt.Sprint(order); g != want {
		t.Errorf("served in order %s, want %s (interactive first, then round robin between connections)", g, want)
	}
}

func TestRetryAfterPausesAndLockoutOpensBreaker(t *testing.T) {
	clock := budgettest.NewClock()
	b := newBudget(t, clock, nil)
	ctx := deadlineCtx(t, clock, 10*time.Second)
	tk, err := b.Acquire(ctx, "company")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(429, "finch_application_rl", 30*time.Second)
	if _, err := b.Acquire(ctx, "company"); !errors.Is(err, budget.ErrNoBudget) {
		t.Fatalf("during the 30 s pause with a 10 s deadline: got %v, want ErrNoBudget", err)
	}
	// Another product is not paused.
	tk, err = b.Acquire(ctx, "directory")
	if err != nil {
		t.Fatalf("directory during company's pause: %v", err)
	}
	clock.Advance(30 * time.Second)
	if tk2, err := b.Acquire(deadlineCtx(t, clock, time.Second), "company"); err != nil {
		t.Fatalf("after the pause: %v", err)
	} else {
		tk2.Done(200, "", 0)
	}
	// An IP lockout stops every call, products and IP-only routes alike.
	tk.Done(429, "finch_api_ip_rl", 0)
	for _, p := range []string{"company", "payment", ""} {
		_, err := b.Acquire(deadlineCtx(t, clock, 59*time.Minute), p)
		var nb *budget.NoBudgetError
		if !errors.As(err, &nb) || !nb.Breaker || nb.RetryAfter != time.Hour {
			t.Fatalf("%q during the lockout: got %v, want a breaker refusal of 1h", p, err)
		}
	}
	if open, _ := b.BreakerOpen(); !open {
		t.Fatal("breaker not open")
	}
	clock.Advance(time.Hour)
	if _, err := b.Acquire(deadlineCtx(t, clock, time.Second), "company"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

func TestDeadlinePassesWhileWaiting(t *testing.T) {
	clock := budgettest.NewClock()
	b := newBudget(t, clock, map[string]int{"payment": 1})
	tk, err := b.Acquire(deadlineCtx(t, clock, time.Hour), "payment")
	if err != nil {
		t.Fatal(err)
	}
	// In flight: the lower bound is one window from now, within 90 s.
	ch := acquireAsync(deadlineCtx(t, clock, 90*time.Second), b, "payment")
	waitQueued(t, b)
	clock.Advance(91 * time.Second) // tk never finished
	o := <-ch
	if !errors.Is(o.err, budget.ErrNoBudget) || !errors.Is(o.err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrNoBudget and DeadlineExceeded", o.err)
	}
	tk.Done(200, "", 0)
}
