package budgettest

import (
	"context"
	"errors"
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
	t.Run("ReplicasStayWithinTheLimit", func(t *testing.T) { testReplicas(t, newShared(t), budget.Interactive, -1) })
	t.Run("BackgroundReplicasLeaveTheReserve", func(t *testing.T) { testReplicas(t, newShared(t), budget.Background, 3) })
	t.Run("BackgroundReplicasWithoutReserve", func(t *testing.T) { testReplicas(t, newShared(t), budget.Background, 0) })
	t.Run("InteractiveGetsTheReserveAtOnce", func(t *testing.T) { testReserve(t, newShared(t), 4) })
	t.Run("WithoutReserveBackgroundFillsTheWindow", func(t *testing.T) { testReserve(t, newShared(t), 0) })
	t.Run("PauseArithmetic", func(t *testing.T) { testPause(t, newShared(t)) })
	t.Run("A429PausesEveryReplica", func(t *testing.T) { testReplicaPause(t, newShared(t)) })
	t.Run("TheBreakerStopsEveryReplica", func(t *testing.T) { testReplicaBreaker(t, newShared(t)) })
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
// four times the limit for three windows in lane, and checks every window
// of the grants: at most the limit, or for Background limit − reserve
// (reserve -1: the default reserve, none of which Interactive keeps).
func testReplicas(t *testing.T, s budget.Shared, lane budget.Lane, reserve int) {
	const limit = 10
	most := limit
	lim := budget.Limits{Products: map[string]int{"company": limit}}
	if reserve >= 0 {
		lim.Reserve = map[string]int{"company": reserve}
		if lane == budget.Background {
			most = limit - reserve
		}
	}
	clock := NewClock()
	start := clock.Now()
	client := fmt.Sprintf("client-%d", time.Now().UnixNano())
	var budgets []*budget.Budget
	for range 3 {
		b, err := budget.New(client, budget.Options{Shared: s, Clock: clock, Limits: lim,
			MaxWait: [2]time.Duration{time.Hour, time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		budgets = append(budgets, b)
	}
	ctx, cancel := context.WithCancel(budget.WithLane(context.Background(), lane))
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
	// A broken store must fail the test, not hang it: every wait below is
	// bounded by a real-time deadline, and the clock loop by its steps.
	realEnd := time.Now().Add(time.Minute)
	waitStore := func(b *budget.Budget) {
		done := make(chan struct{})
		go func() { b.WaitStore(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Until(realEnd)):
			t.Fatalf("the store did not answer a lease within the test's minute of real time")
		}
	}
	granted := func() int {
		n := 0
		for _, b := range budgets {
			waitStore(b)
		}
		// Let the granted goroutines come back and queue again.
		time.Sleep(2 * time.Millisecond)
		for _, b := range budgets {
			waitStore(b)
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
	for steps := 0; clock.Now().Sub(start) < 3*time.Minute; steps++ {
		if steps > int(3*time.Minute/step) || time.Now().After(realEnd) {
			t.Fatalf("the clock loop ran %d steps (%v of real time) without reaching 3 minutes", steps, time.Since(realEnd.Add(-time.Minute)))
		}
		if n := granted(); n > prev {
			grants = append(grants, at{clock.Now().Sub(start), n - prev})
			prev = n
		}
		clock.Advance(step)
	}
	cancel()
	// Finch's check: in any window [t, t+60 s), at most limit calls (and
	// background calls, however many replicas, leave the reserve).
	busiest := 0
	for i := range grants {
		n := 0
		for j := i; j < len(grants) && grants[j].t < grants[i].t+time.Minute; j++ {
			n += grants[j].n
		}
		if n > most {
			t.Fatalf("%d %s calls in the window from %v (limit %d, at most %d for the lane); grants %v", n, lane, grants[i].t, limit, most, grants)
		}
		busiest = max(busiest, n)
	}
	t.Logf("%d %s calls in 3 minutes, at most %d in a window, limit %d a minute", prev, lane, busiest, limit)
	// And the budget is used: the first window's share at once, then a
	// share per window of 62 s.
	if prev < 2*most+most/2 || busiest < most {
		t.Errorf("%d calls in 3 minutes, at most %d in a window; want at least %d, and %d in a window (the budget is not being used)", prev, busiest, 2*most+most/2, most)
	}
}

// testReserve: three replicas whose background work, offered far beyond
// the window, holds limit − reserve slots of it and waits; interactive
// calls on each replica are then granted at once (no clock step), until
// the window is at its limit. With reserve 0, background work fills the
// window and interactive calls wait.
func testReserve(t *testing.T, s budget.Shared, reserve int) {
	const limit = 20
	clock := NewClock()
	client := fmt.Sprintf("client-%d", time.Now().UnixNano())
	var bs []*budget.Budget
	for range 3 {
		b, err := budget.New(client, budget.Options{Shared: s, Clock: clock,
			Limits:  budget.Limits{Products: map[string]int{"company": limit}, Reserve: map[string]int{"company": reserve}},
			MaxWait: [2]time.Duration{time.Hour, time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs = append(bs, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var mu sync.Mutex
	granted := [2]int{} // per lane
	grant := func(lane budget.Lane) {
		mu.Lock()
		granted[lane]++
		mu.Unlock()
	}
	count := func() [2]int {
		mu.Lock()
		defer mu.Unlock()
		return granted
	}
	bg := budget.WithLane(ctx, budget.Background)
	for i, b := range bs {
		for j := range limit {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := budget.WithConnection(bg, fmt.Sprint(i, "-", j))
				for ctx.Err() == nil {
					if tk, err := b.Acquire(ctx, "company"); err == nil {
						grant(budget.Background)
						tk.Done(200, "", 0)
					}
				}
			}()
		}
	}
	// Let the background work take what it may, with the clock stopped:
	// settled when every replica has background waiters and the count
	// stays the same.
	backgroundWaits := func() bool {
		for _, b := range bs {
			if b.Stats().Waiters[budget.Background] == 0 {
				return false
			}
		}
		return true
	}
	last := -1
	for range 500 {
		settle(t, bs)
		if n := count()[budget.Background]; n == last && backgroundWaits() {
			break
		} else {
			last = n
		}
	}
	if n := count()[budget.Background]; n != limit-reserve {
		t.Fatalf("background work on 3 replicas took %d slots, want limit − reserve = %d", n, limit-reserve)
	}
	// Each interactive call, on the replicas in turn, is granted without
	// the clock moving while background work waits; one past the limit
	// is not.
	for i := range reserve + 1 {
		b := bs[i%len(bs)]
		ch := acquire(ctx, b)
		var r acquired
		got := false
		for step := 0; step < 100 && !got; step++ {
			settle(t, bs)
			select {
			case r = <-ch:
				got = true
			default:
			}
		}
		if i == reserve {
			if got {
				t.Errorf("interactive call %d granted past the limit %d (err %v)", i+1, limit, r.err)
			}
			break
		}
		if !got || r.err != nil {
			t.Fatalf("interactive call %d on replica %d, background waiting, window at %d of %d: granted %v (%v), want a permit at once", i+1, i%len(bs), limit-reserve+i, limit, got, r.err)
		}
		grant(budget.Interactive)
		r.t.Done(200, "", 0)
	}
	if n := count(); n[budget.Background] != limit-reserve || n[budget.Interactive] != reserve {
		t.Errorf("granted %d background and %d interactive calls in one window, want %d and %d", n[budget.Background], n[budget.Interactive], limit-reserve, reserve)
	}
	if !backgroundWaits() {
		t.Errorf("background work no longer waits on every replica")
	}
}

func testPause(t *testing.T, s budget.Shared) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	lease := func(id string, at time.Time) budget.LeaseResult {
		t.Helper()
		r, err := s.Lease(ctx, budget.LeaseRequest{Key: "c/company", ID: id, Limit: 5, Want: 1, Now: at, Until: at.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := lease("a", now); r.Granted != 1 || !r.Paused.IsZero() {
		t.Fatalf("before a pause: got %+v, want 1 granted, no pause", r)
	}
	pause := func(until time.Time) {
		t.Helper()
		if err := s.Pause(ctx, "c/company", until); err != nil {
			t.Fatal(err)
		}
	}
	pause(now.Add(30 * time.Second))
	pause(now.Add(10 * time.Second)) // a shorter pause does not shorten it
	r := lease("b", now.Add(time.Second))
	if r.Granted != 0 || !r.Paused.Equal(now.Add(30*time.Second)) || !r.NextFree.Equal(r.Paused) {
		t.Fatalf("paused: got %+v, want 0 granted, paused and next free at %v", r, now.Add(30*time.Second))
	}
	// Another key is not paused.
	if r, err := s.Lease(ctx, budget.LeaseRequest{Key: "c/payment", ID: "p", Limit: 5, Want: 1, Now: now, Until: now.Add(time.Minute)}); err != nil || r.Granted != 1 {
		t.Fatalf("other key: got %+v, %v, want 1 granted", r, err)
	}
	if r := lease("c", now.Add(30*time.Second)); r.Granted != 1 || !r.Paused.IsZero() {
		t.Fatalf("at the pause's end: got %+v, want 1 granted, no pause", r)
	}
}

// replicas returns n Budgets of one new client on s and clock.
func replicas(t *testing.T, s budget.Shared, clock *Clock, n int, obs budget.Observer, maxWait time.Duration) []*budget.Budget {
	client := fmt.Sprintf("client-%d", time.Now().UnixNano())
	var out []*budget.Budget
	for range n {
		b, err := budget.New(client, budget.Options{Shared: s, Clock: clock, Observer: obs,
			Limits:  budget.Limits{Products: map[string]int{"company": 100}},
			MaxWait: [2]time.Duration{maxWait, maxWait}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		out = append(out, b)
	}
	return out
}

// settle waits (in real time, bounded) for every budget's store calls.
func settle(t *testing.T, bs []*budget.Budget) {
	t.Helper()
	for _, b := range bs {
		done := make(chan struct{})
		go func() { b.WaitStore(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a store call did not return within 10 s")
		}
	}
	time.Sleep(2 * time.Millisecond) // let woken goroutines run
}

type acquired struct {
	t   *budget.Ticket
	err error
}

func acquire(ctx context.Context, b *budget.Budget) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		tk, err := b.Acquire(ctx, "company")
		ch <- acquired{tk, err}
	}()
	return ch
}

// testReplicaPause: a 429 with Retry-After 30 s seen by replica 0 pauses
// replicas 1 and 2 from their next lease on, until the 30 s have passed.
func testReplicaPause(t *testing.T, s budget.Shared) {
	clock := NewClock()
	bs := replicas(t, s, clock, 3, nil, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Each replica holds a lease at first.
	for _, b := range bs {
		r := <-acquire(ctx, b)
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.t.Done(200, "", 0)
	}
	r := <-acquire(ctx, bs[0])
	if r.err != nil {
		t.Fatal(r.err)
	}
	start := clock.Now()
	r.t.Done(429, "", 30*time.Second)
	settle(t, bs)
	// Past the leases already held (LeaseFor, 1 s), every replica waits.
	clock.Advance(1100 * time.Millisecond)
	settle(t, bs)
	chs := []<-chan acquired{acquire(ctx, bs[1]), acquire(ctx, bs[2])}
	var got [2]time.Duration
	for step := 0; step < 200 && (got[0] == 0 || got[1] == 0); step++ {
		settle(t, bs)
		for i, ch := range chs {
			select {
			case r := <-ch:
				if r.err != nil {
					t.Fatalf("replica %d: %v", i+1, r.err)
				}
				r.t.Done(200, "", 0)
				got[i] = clock.Now().Sub(start)
				chs[i] = nil
			default:
			}
		}
		clock.Advance(250 * time.Millisecond)
	}
	for i, d := range got {
		if d == 0 {
			t.Fatalf("replica %d got no permit in 50 s after the pause", i+1)
		}
		if d < 30*time.Second {
			t.Errorf("replica %d got a permit %v after another replica's 429 with Retry-After 30 s", i+1, d)
		}
		if d > 33*time.Second {
			t.Errorf("replica %d got its permit only %v after the 429, want soon after 30 s", i+1, d)
		}
	}
}

type breakerObs struct {
	mu     sync.Mutex
	opened int
}

func (o *breakerObs) Waited(budget.Lane, string, time.Duration, bool) {}
func (o *breakerObs) Limited(string, string)                          {}
func (o *breakerObs) Breaker(open bool) {
	if open {
		o.mu.Lock()
		o.opened++
		o.mu.Unlock()
	}
}

// testReplicaBreaker: a lockout 429 seen by replica 0 opens the breaker of
// replicas 1 and 2 too, which refuse their calls as the breaker's.
func testReplicaBreaker(t *testing.T, s budget.Shared) {
	clock := NewClock()
	obs := &breakerObs{}
	bs := replicas(t, s, clock, 3, obs, 15*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := <-acquire(ctx, bs[0])
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.t.Done(429, "finch_api_ip_rl", 0) // Finch's lockout: 1 h by default
	settle(t, bs)
	clock.Advance(1100 * time.Millisecond)
	settle(t, bs)
	chs := []<-chan acquired{acquire(ctx, bs[1]), acquire(ctx, bs[2])}
	open := func(b *budget.Budget) bool { o, _ := b.BreakerOpen(); return o }
	for step := 0; step < 20 && !(open(bs[1]) && open(bs[2])); step++ {
		settle(t, bs)
		clock.Advance(50 * time.Millisecond)
	}
	for i, b := range bs[1:] {
		if open, until := b.BreakerOpen(); !open || until.Sub(clock.Now()) < 50*time.Minute {
			t.Errorf("replica %d: breaker open %v until %v, want open for about an hour", i+1, open, until)
		}
	}
	// Their waiters are refused as the breaker's at their MaxWait (15 s),
	// never granted.
	clock.Advance(16 * time.Second)
	settle(t, bs)
	for i, ch := range chs {
		select {
		case r := <-ch:
			var nb *budget.NoBudgetError
			if r.err == nil {
				t.Errorf("replica %d was granted a call while another replica's breaker is open", i+1)
			} else if !errors.As(r.err, &nb) || !nb.Breaker {
				t.Errorf("replica %d: %v, want the breaker's refusal", i+1, r.err)
			}
		default:
			t.Errorf("replica %d: its call still waits at its deadline", i+1)
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.opened < 3 {
		t.Errorf("the observer saw the breaker open %d times, want once per replica (3)", obs.opened)
	}
}
