package budget

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// ErrNoBudget is wrapped by the error of an [Budget.Acquire] that could not
// get a permit before its deadline (or a breaker's end).
var ErrNoBudget = errors.New("budget: no Finch rate budget before the deadline")

// NoBudgetError is what Acquire returns when it refuses a call: errors.Is
// matches [ErrNoBudget], and also context.DeadlineExceeded when the
// deadline itself passed while waiting.
type NoBudgetError struct {
	Product string // the bucket, "" for the IP limit alone
	Lane    Lane
	// RetryAfter is the earliest the call could have gone out (at least
	// 1 s): the Retry-After of finchconnect's own 429.
	RetryAfter time.Duration
	// Breaker is true when an IP lockout 429 stopped every call.
	Breaker bool
	expired bool  // the deadline passed while waiting
	cause   error // a shared store's failure, if that is why
}

func (e *NoBudgetError) Error() string {
	what := "the " + e.Product + " budget"
	if e.Product == "" {
		what = "the IP budget"
	}
	if e.Breaker {
		what = "the breaker (Finch locked this IP out)"
	}
	msg := fmt.Sprintf("budget: no Finch rate budget before the %s call's deadline: %s frees in %v", e.Lane, what, e.RetryAfter)
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *NoBudgetError) Is(target error) bool {
	return target == ErrNoBudget || (e.expired && target == context.DeadlineExceeded)
}

func (e *NoBudgetError) Unwrap() error { return e.cause }

// Options configure a [Budget]; every zero field means its default.
type Options struct {
	// Limits, default Finch's published numbers ([DefaultLimits]).
	Limits Limits
	// Shared keeps the windows of every replica; nil keeps them in this
	// process (one replica, SQLite or memory store).
	Shared Shared
	// Clock, default the real one.
	Clock Clock
	// MaxWait bounds the wait of a call whose context has no deadline, per
	// lane: default 15 s for Interactive, 2 min for Background.
	MaxWait [numLanes]time.Duration
	// MaxInFlight is how long a permit whose Ticket.Done is never called
	// counts as still in flight, default 6 min (Finch's own server
	// timeout).
	MaxInFlight time.Duration
	// LeaseFor is how long a leased slice of a shared window may be spent
	// (default 1 s), and Margin (default 1 s) how long after that a call
	// may still reach Finch: a leased permit counts in the shared window
	// until LeaseFor+Margin+Window after the lease.
	LeaseFor, Margin time.Duration
	// StoreTimeout bounds one call to Shared, default 2 s.
	StoreTimeout time.Duration
	// Observer receives waits, 429s and breaker changes (metrics); nil
	// drops them.
	Observer Observer
}

// An Observer is told what the budget does, for metrics. Its methods are
// called with no lock held and must not block.
type Observer interface {
	// Waited is called once per Acquire: how long it waited and whether
	// it got a permit.
	Waited(lane Lane, product string, d time.Duration, granted bool)
	// Limited is called for every 429 that Finch still answered.
	Limited(product, finchCode string)
	// Breaker is called when the IP breaker opens or closes.
	Breaker(open bool)
}

// ipKey names the IP window among the product buckets (it is not a valid
// bucket name, having a colon).
const ipKey = ":ip"

// A Budget hands out permits to call Finch so that the application stays
// within Finch's rate limits. It is safe for concurrent use. The nil
// *Budget is valid and grants everything at once (budget off).
type Budget struct {
	client string
	lim    Limits
	opts   Options
	clock  Clock
	obs    Observer

	mu      sync.Mutex
	windows map[string]*window // bucket → window, and ipKey
	ip      *window
	breaker time.Time // the IP breaker is open until then
	queues  [numLanes]*laneQueue
	wake    func() bool // the pending timer's stop
	wakeAt  time.Time
	closed  bool
	granted uint64 // permits granted so far
	// storeCalls counts the refills and releases running against Shared;
	// storeIdle is signalled when it drops to 0.
	storeCalls int
	storeIdle  *sync.Cond
	obsLater   []func() // observer calls to make once b.mu is released
}

// New returns a budget for the application client (its Finch client id).
func New(client string, opts Options) (*Budget, error) {
	if err := opts.Limits.check(); err != nil {
		return nil, err
	}
	b := &Budget{client: client, lim: opts.Limits.withDefaults(), opts: opts, clock: opts.Clock, obs: opts.Observer}
	reserve, err := b.lim.reserves()
	if err != nil {
		return nil, err
	}
	b.lim.Reserve = maps.Clone(reserve)
	delete(b.lim.Reserve, ipKey)
	b.lim.IPReserve = reserve[ipKey]
	if b.lim.IPReserve == 0 {
		b.lim.IPReserve = -1
	}
	if b.clock == nil {
		b.clock = realClock{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&b.opts.MaxWait[Interactive], 15*time.Second)
	def(&b.opts.MaxWait[Background], 2*time.Minute)
	def(&b.opts.MaxInFlight, 6*time.Minute)
	def(&b.opts.LeaseFor, time.Second)
	def(&b.opts.Margin, time.Second)
	def(&b.opts.StoreTimeout, 2*time.Second)
	b.storeIdle = sync.NewCond(&b.mu)
	b.windows = map[string]*window{}
	for p, n := range b.lim.Products {
		b.windows[p] = newWindow(p, n, reserve[p], b.lim.Window, b.opts.Shared != nil)
	}
	b.ip = newWindow(ipKey, b.lim.IP, reserve[ipKey], b.lim.IPWindow, b.opts.Shared != nil)
	b.windows[ipKey] = b.ip
	for l := range b.queues {
		b.queues[l] = &laneQueue{products: map[string]*rr{}}
	}
	return b, nil
}

// Limits returns the limits the budget keeps to, defaults applied: its
// Reserve lists every bucket's reserve, and IPReserve is -1 when the IP
// window has none.
func (b *Budget) Limits() Limits {
	l := b.lim
	l.Products = maps.Clone(l.Products)
	l.Reserve = maps.Clone(l.Reserve)
	return l
}

// Close stops the budget's timer, refuses its waiters, and gives back to
// the shared store the unspent permits of its leases.
func (b *Budget) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.wake != nil {
		b.wake()
		b.wake = nil
	}
	for _, q := range b.queues {
		for _, r := range q.products {
			for _, w := range r.all() {
				w.finish(nil, &NoBudgetError{Product: w.product, Lane: w.lane, RetryAfter: time.Second, cause: errClosed})
			}
		}
		q.products = map[string]*rr{}
	}
	var rel []func()
	if b.opts.Shared != nil {
		for _, w := range b.windows {
			if f := b.releaseLocked(w); f != nil {
				rel = append(rel, f)
			}
		}
	}
	b.mu.Unlock()
	for _, f := range rel {
		f()
	}
	b.WaitStore()
	return nil
}

// WaitStore waits until no call to the shared store is running (a lease
// being fetched or given back). Tests call it between steps of their
// clock; Close calls it.
func (b *Budget) WaitStore() {
	if b == nil {
		return
	}
	b.mu.Lock()
	for b.storeCalls > 0 {
		b.storeIdle.Wait()
	}
	b.mu.Unlock()
}

// storeStartLocked and storeDone bracket a call to the shared store.
func (b *Budget) storeStartLocked() { b.storeCalls++ }

func (b *Budget) storeDoneLocked() {
	b.storeCalls--
	if b.storeCalls == 0 {
		b.storeIdle.Broadcast()
	}
}

var errClosed = errors.New("budget: closed")

// slot is one permit of a local window.
type slot struct {
	free     time.Time // the slot may be taken again from then
	inflight bool      // taken and not yet Done
	gen      uint64    // bumped on every take, so a stale Done is ignored
}

// lease is a slice of a shared window this process may spend.
type lease struct {
	id   string
	size int // slots the store granted
	left int // slots not yet spent
	end  time.Time
}

// window is one sliding window: a product bucket or the IP limit.
type window struct {
	key   string
	limit int
	// reserve is the interactive reserve: a Background permit is taken
	// only while the window holds fewer than limit − reserve slots.
	reserve int
	span    time.Duration

	slots []slot // local mode: limit slots

	// Shared mode, per lane. A Background lease is asked of the store with
	// Limit = limit − reserve, so that the Background leases of every
	// replica together never pass it; an Interactive lease with the whole
	// limit. Background calls spend only the Background lease; Interactive
	// calls spend their own lease first, then the Background one.
	lease     [numLanes]lease
	refilling [numLanes]bool
	retryAt   [numLanes]time.Time // no refill before then: the store said full, or failed
	storeErr  error
	usedSeen  int // slots the store counted at the last lease, for Stats

	paused time.Time // a 429's Retry-After pauses the bucket until then
	used   []time.Time
}

func newWindow(key string, limit, reserve int, span time.Duration, shared bool) *window {
	w := &window{key: key, limit: limit, reserve: reserve, span: span}
	if !shared {
		w.slots = make([]slot, limit)
	}
	return w
}

// keep is how many free slots a call of lane must leave in a local window:
// the reserve for Background, none for Interactive.
func (w *window) keep(lane Lane) int {
	if lane == Background {
		return w.reserve
	}
	return 0
}

// limitOf is the part of the window lane may fill.
func (w *window) limitOf(lane Lane) int { return w.limit - w.keep(lane) }

// spendable reports whether the lease l may be spent at now.
func (l *lease) spendable(now time.Time) bool { return l.left > 0 && now.Before(l.end) }

// leaseFor is the shared lease a call of lane would spend at now, or nil.
func (w *window) leaseFor(lane Lane, now time.Time) *lease {
	if lane == Interactive && w.lease[Interactive].spendable(now) {
		return &w.lease[Interactive]
	}
	if w.lease[Background].spendable(now) {
		return &w.lease[Background]
	}
	return nil
}

// free reports whether a permit of lane can be taken at now, without
// taking it.
func (w *window) free(now time.Time, lane Lane) bool {
	if now.Before(w.paused) {
		return false
	}
	if w.slots == nil {
		return w.leaseFor(lane, now) != nil
	}
	n, keep := 0, w.keep(lane)
	for i := range w.slots {
		if !w.slots[i].inflight && !w.slots[i].free.After(now) {
			if n++; n > keep {
				return true
			}
		}
	}
	return false
}

// take takes a permit of lane (free(now, lane) must be true) and returns
// its slot index and generation (-1 for a shared window's permit), and
// the id of the lease it came from (shared).
func (w *window) take(now time.Time, lane Lane, maxInFlight time.Duration) (int, uint64, string) {
	w.noteUse(now)
	if w.slots == nil {
		l := w.leaseFor(lane, now)
		l.left--
		return -1, 0, l.id
	}
	for i := range w.slots {
		s := &w.slots[i]
		if !s.inflight && !s.free.After(now) {
			s.inflight = true
			s.gen++
			// Counted pessimistically until Done says when it finished.
			s.free = now.Add(maxInFlight + w.span)
			return i, s.gen, ""
		}
	}
	panic("budget: take without a free slot")
}

// noteUse records a permit taken, for Stats's count of the last window.
func (w *window) noteUse(now time.Time) {
	cut := 0
	for cut < len(w.used) && !w.used[cut].After(now.Add(-w.span)) {
		cut++
	}
	w.used = append(w.used[cut:], now)
}

// estimate is a lower bound of when the (ahead+1)-th waiter of lane
// could be served by w, assuming that in-flight calls finish now. A
// Background waiter needs reserve+1 free slots, so its lane has
// limit − reserve slots of the window.
func (w *window) estimate(now time.Time, lane Lane, ahead int) time.Time {
	n := w.limitOf(lane)
	if w.slots == nil {
		// Shared: each round trip brings at most a lease's worth; the lower
		// bound knows only what is free now.
		t := now
		if w.leaseFor(lane, now) == nil {
			t = maxTime(now, w.retryAt[lane])
		}
		t = maxTime(t, w.paused)
		if rounds := ahead / n; rounds > 0 {
			t = t.Add(time.Duration(rounds) * w.span)
		}
		return t
	}
	frees := make([]time.Time, len(w.slots))
	for i, s := range w.slots {
		frees[i] = maxTime(s.free, now)
		if s.inflight {
			frees[i] = now.Add(w.span)
		}
	}
	slices.SortFunc(frees, func(a, b time.Time) int { return a.Compare(b) })
	keep := w.keep(lane)
	t := frees[keep+ahead%n].Add(time.Duration(ahead/n) * w.span)
	return maxTime(t, w.paused)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// A Ticket is one permit: the call may go to Finch. Call Done once with
// Finch's answer.
type Ticket struct {
	b       *Budget
	product string
	lane    Lane
	pw, iw  *window // product window (nil for IP only) and IP window
	ps, is  int     // slot indices, -1 for shared permits
	pg, ig  uint64
	lease   string // the shared lease the product permit came from
	ilease  string
	once    sync.Once
}

// Product is the bucket the ticket counts against ("" for the IP limit
// only).
func (t *Ticket) Product() string {
	if t == nil {
		return ""
	}
	return t.product
}

// Done reports the call's outcome: status is Finch's HTTP status (0 if
// no response came), finchCode the finch_code of an error body ("" if
// none), retryAfter the Retry-After of a 429 (0 if absent). It frees the
// permit's slot one window after now; a 429 pauses the product until
// retryAfter has passed (5 s without one), and a lockout 429
// (finch_code finch_api_ip_rl) opens the breaker, which refuses every
// call until retryAfter (default the IP lockout, 1 h) has passed. With a
// shared store, the pause and the breaker are kept there too, and every
// replica keeps them from its next lease on. Calls after the first do
// nothing; Done on a nil Ticket does nothing.
func (t *Ticket) Done(status int, finchCode string, retryAfter time.Duration) {
	if t == nil {
		return
	}
	t.once.Do(func() { t.b.done(t, status, finchCode, retryAfter) })
}

// cancel gives an unused permit back, for an Acquire that was granted a
// permit just as its context ended.
func (t *Ticket) cancel() {
	t.once.Do(func() {
		b := t.b
		b.mu.Lock()
		defer b.mu.Unlock()
		now := b.clock.Now()
		for _, p := range []struct {
			w     *window
			s     int
			g     uint64
			lease string
		}{{t.pw, t.ps, t.pg, t.lease}, {t.iw, t.is, t.ig, t.ilease}} {
			if p.w == nil {
				continue
			}
			if n := len(p.w.used); n > 0 {
				p.w.used = p.w.used[:n-1]
			}
			if p.s >= 0 {
				if s := &p.w.slots[p.s]; s.gen == p.g && s.inflight {
					s.inflight, s.free = false, now
				}
			} else if p.lease != "" {
				for l := range p.w.lease {
					if p.w.lease[l].id == p.lease {
						p.w.lease[l].left++
					}
				}
			}
		}
		b.dispatchLocked(now)
	})
}

func (b *Budget) done(t *Ticket, status int, code string, retryAfter time.Duration) {
	b.mu.Lock()
	now := b.clock.Now()
	for _, p := range []struct {
		w *window
		s int
		g uint64
	}{{t.pw, t.ps, t.pg}, {t.iw, t.is, t.ig}} {
		if p.w == nil || p.s < 0 {
			continue
		}
		if s := &p.w.slots[p.s]; s.gen == p.g && s.inflight {
			// Finch counted the call somewhere between its sending and
			// now: the slot frees one window after now, never earlier.
			s.inflight, s.free = false, now.Add(p.w.span)
		}
	}
	opened := false
	if status == 429 {
		switch {
		case code == "finch_api_ip_rl":
			if retryAfter <= 0 {
				retryAfter = b.lim.IPLockout
			}
			if until := now.Add(retryAfter); until.After(b.breaker) {
				opened = !now.Before(b.breaker)
				b.breaker = until
				b.pauseSharedLocked(b.ip, until)
			}
		case t.pw != nil:
			if retryAfter <= 0 {
				retryAfter = 5 * time.Second
			}
			if until := now.Add(retryAfter); until.After(t.pw.paused) {
				t.pw.paused = until
				b.pauseSharedLocked(t.pw, until)
			}
		}
	}
	b.dispatchLocked(now)
	b.mu.Unlock()
	if b.obs != nil {
		if status == 429 {
			b.obs.Limited(t.product, code)
		}
		if opened {
			b.obs.Breaker(true)
		}
	}
}

// BreakerOpen reports whether the IP breaker is open, and until when.
func (b *Budget) BreakerOpen() (bool, time.Time) {
	if b == nil {
		return false, time.Time{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clock.Now().Before(b.breaker), b.breaker
}

// waiter is one Acquire waiting for a permit.
type waiter struct {
	product  string
	conn     string
	lane     Lane
	deadline time.Time
	ch       chan result // buffered 1
	gone     bool        // served, refused or abandoned
	stop     func() bool // the deadline timer
}

type result struct {
	t   *Ticket
	err error
}

// finish delivers the outcome (b.mu held).
func (w *waiter) finish(t *Ticket, err error) {
	if w.gone {
		return
	}
	w.gone = true
	if w.stop != nil {
		w.stop()
	}
	w.ch <- result{t, err}
}

// Acquire waits for a permit to call Finch on product (a bucket from
// [BucketOf]; "" or a bucket without a limit counts against the IP limit
// only), in ctx's lane ([LaneOf]) and for ctx's connection
// ([ConnectionOf]). It waits at most until ctx's deadline (or
// Options.MaxWait when ctx has none); when it can tell at once that the
// deadline would pass first, it refuses at once. A refusal is a
// *[NoBudgetError]; a cancelled ctx returns ctx.Err(). Acquire on a nil
// Budget returns a nil Ticket (whose Done does nothing) at once.
func (b *Budget) Acquire(ctx context.Context, product string) (*Ticket, error) {
	if b == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	lane, conn := LaneOf(ctx), ConnectionOf(ctx)
	if _, ok := b.windows[product]; !ok || product == ipKey {
		product = ""
	}
	b.mu.Lock()
	start := b.clock.Now()
	deadline := start.Add(b.opts.MaxWait[lane])
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	if b.closed {
		b.mu.Unlock()
		return nil, &NoBudgetError{Product: product, Lane: lane, RetryAfter: time.Second, cause: errClosed}
	}
	q := b.queues[lane]
	// Served at once: nobody of this lane or a higher one waits for the
	// product, and it has a permit.
	if !b.waitingLocked(product, lane) && b.canTakeLocked(product, lane, start) {
		t := b.grantLocked(product, lane, start)
		b.mu.Unlock()
		b.observeWait(lane, product, 0, true)
		return t, nil
	}
	if est, breaker := b.estimateLocked(product, lane, conn, start); est.After(deadline) {
		b.mu.Unlock()
		b.observeWait(lane, product, 0, false)
		return nil, &NoBudgetError{Product: product, Lane: lane, RetryAfter: retryAfter(est.Sub(start)), Breaker: breaker}
	}
	w := &waiter{product: product, conn: conn, lane: lane, deadline: deadline, ch: make(chan result, 1)}
	q.push(w)
	w.stop = b.clock.AfterFunc(deadline.Sub(start), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if w.gone {
			return
		}
		now := b.clock.Now()
		b.queues[lane].remove(w)
		est, breaker := b.estimateLocked(product, lane, conn, now)
		w.finish(nil, &NoBudgetError{Product: product, Lane: lane, RetryAfter: retryAfter(est.Sub(now)), Breaker: breaker, expired: true, cause: b.windowErr(product)})
	})
	b.dispatchLocked(start)
	b.mu.Unlock()

	select {
	case r := <-w.ch:
		b.observeWait(lane, product, b.since(start), r.err == nil)
		return r.t, r.err
	case <-ctx.Done():
		b.mu.Lock()
		if !w.gone {
			b.queues[lane].remove(w)
			w.finish(nil, nil)
		}
		b.mu.Unlock()
		r := <-w.ch
		if r.t != nil {
			r.t.cancel()
		}
		if r.err != nil {
			b.observeWait(lane, product, b.since(start), false)
			return nil, r.err
		}
		b.observeWait(lane, product, b.since(start), false)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			now := b.clock.Now()
			b.mu.Lock()
			est, breaker := b.estimateLocked(product, lane, conn, now)
			b.mu.Unlock()
			return nil, &NoBudgetError{Product: product, Lane: lane, RetryAfter: retryAfter(est.Sub(now)), Breaker: breaker, expired: true}
		}
		return nil, ctx.Err()
	}
}

func (b *Budget) since(t time.Time) time.Duration { return b.clock.Now().Sub(t) }

func (b *Budget) observeWait(lane Lane, product string, d time.Duration, ok bool) {
	if b.obs != nil {
		b.obs.Waited(lane, product, d, ok)
	}
}

func (b *Budget) windowErr(product string) error {
	if w := b.windows[product]; w != nil && w.storeErr != nil {
		return w.storeErr
	}
	return b.ip.storeErr
}

// retryAfter rounds d up to whole seconds, at least 1.
func retryAfter(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second
	return max(s, 1) * time.Second
}

// waitingLocked reports whether a waiter of lane or a higher one waits for
// product.
func (b *Budget) waitingLocked(product string, lane Lane) bool {
	for l := Interactive; l <= lane; l++ {
		if r := b.queues[l].products[product]; r != nil && r.n > 0 {
			return true
		}
	}
	return false
}

// canTakeLocked reports whether a call of lane on product could go now,
// asking the shared store for a lease of lane where one is spent.
func (b *Budget) canTakeLocked(product string, lane Lane, now time.Time) bool {
	if now.Before(b.breaker) {
		return false
	}
	ok := true
	if product != "" {
		pw := b.windows[product]
		if !pw.free(now, lane) {
			b.refillLocked(pw, lane, now)
			ok = false
		}
	}
	if !b.ip.free(now, lane) {
		b.refillLocked(b.ip, lane, now)
		ok = false
	}
	return ok
}

func (b *Budget) grantLocked(product string, lane Lane, now time.Time) *Ticket {
	b.granted++
	t := &Ticket{b: b, product: product, lane: lane, ps: -1}
	if product != "" {
		t.pw = b.windows[product]
		t.ps, t.pg, t.lease = t.pw.take(now, lane, b.opts.MaxInFlight)
	}
	t.iw = b.ip
	t.is, t.ig, t.ilease = b.ip.take(now, lane, b.opts.MaxInFlight)
	return t
}

// estimateLocked is a lower bound of when a new waiter could be served,
// and whether the breaker is why.
func (b *Budget) estimateLocked(product string, lane Lane, conn string, now time.Time) (time.Time, bool) {
	// Ahead for sure: every waiter of a higher lane, and this connection's
	// own waiters of this lane.
	aheadP, aheadIP := 0, 0
	for l := Interactive; l <= lane; l++ {
		for p, r := range b.queues[l].products {
			n := r.n
			if l == lane {
				n = r.live[conn]
			}
			aheadIP += n
			if p == product {
				aheadP += n
			}
		}
	}
	t := b.ip.estimate(now, lane, aheadIP)
	if product != "" {
		t = maxTime(t, b.windows[product].estimate(now, lane, aheadP))
	}
	// (A shared IP window paused by another replica's breaker frees at
	// the breaker's end: the breaker is still why.)
	if b.breaker.After(now) && !b.breaker.Before(t) {
		return b.breaker, true
	}
	return t, false
}

// dispatchLocked serves every waiter that can be served now, interactive
// lane first, round robin between products and, within a product,
// between connections; then arms the timer for the next time a permit
// frees.
func (b *Budget) dispatchLocked(now time.Time) {
	if b.closed {
		return
	}
	for l := range b.queues {
		q := b.queues[l]
		prods := q.order()
		for _, p := range prods {
			r := q.products[p]
			for r.n > 0 && b.canTakeLocked(p, Lane(l), now) {
				w := r.pop()
				w.finish(b.grantLocked(p, Lane(l), now), nil)
			}
			if r.n == 0 {
				delete(q.products, p)
			}
		}
		q.rotate()
	}
	b.armLocked(now)
}

// armLocked sets the timer to the earliest time a waiter could be served.
func (b *Budget) armLocked(now time.Time) {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	waiting := false
	for l, q := range b.queues {
		lane, laneWaits := Lane(l), false
		for p, r := range q.products {
			if r.n == 0 {
				continue
			}
			laneWaits = true
			if p != "" {
				if w := b.windows[p]; !w.refilling[lane] {
					consider(b.wakeTime(w, lane, now))
				}
			}
		}
		if laneWaits && !b.ip.refilling[lane] {
			consider(b.wakeTime(b.ip, lane, now))
		}
		waiting = waiting || laneWaits
	}
	if !waiting {
		return
	}
	if b.breaker.After(now) {
		next = maxTime(next, b.breaker)
	}
	if next.IsZero() {
		return
	}
	next = maxTime(next, now)
	if b.wake != nil && !b.wakeAt.After(next) && b.wakeAt.After(now) {
		return // an earlier timer is already set
	}
	if b.wake != nil {
		b.wake()
	}
	b.wakeAt = next
	b.wake = b.clock.AfterFunc(next.Sub(now), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.wake = nil
		b.dispatchLocked(b.clock.Now())
	})
}

// wakeTime is when w could next give a permit of lane, by the clock
// alone (the zero time if only a Done can free one).
func (b *Budget) wakeTime(w *window, lane Lane, now time.Time) time.Time {
	if w.free(now, lane) {
		return time.Time{}
	}
	if w.slots == nil {
		t := maxTime(w.retryAt[lane], w.paused)
		if t.After(now) {
			return t
		}
		return time.Time{}
	}
	// A permit of lane needs keep+1 free slots: the (keep+1)-th earliest
	// free time of the slots not in flight.
	var frees []time.Time
	for i := range w.slots {
		if s := w.slots[i]; !s.inflight {
			frees = append(frees, s.free)
		}
	}
	keep := w.keep(lane)
	if len(frees) <= keep {
		return w.paused
	}
	slices.SortFunc(frees, func(a, b time.Time) int { return a.Compare(b) })
	return maxTime(frees[keep], w.paused)
}

// laneQueue holds one lane's waiters, by product.
type laneQueue struct {
	products map[string]*rr
	start    int // rotates which product goes first
}

func (q *laneQueue) push(w *waiter) {
	r := q.products[w.product]
	if r == nil {
		r = &rr{fifo: map[string][]*waiter{}, live: map[string]int{}}
		q.products[w.product] = r
	}
	r.push(w)
}

func (q *laneQueue) remove(w *waiter) {
	if r := q.products[w.product]; r != nil {
		r.remove(w)
	}
}

func (q *laneQueue) order() []string {
	ps := slices.Sorted(maps.Keys(q.products))
	if len(ps) > 0 {
		k := q.start % len(ps)
		ps = append(ps[k:], ps[:k]...)
	}
	return ps
}

func (q *laneQueue) rotate() { q.start++ }

// rr is a round robin between connections of FIFOs of waiters.
type rr struct {
	conns []string // connections with live waiters, in turn order
	next  int
	fifo  map[string][]*waiter
	live  map[string]int
	n     int
}

func (r *rr) push(w *waiter) {
	if len(r.fifo[w.conn]) == 0 {
		r.conns = append(r.conns, w.conn)
	}
	r.fifo[w.conn] = append(r.fifo[w.conn], w)
	r.live[w.conn]++
	r.n++
}

// remove takes w out of the counts; pop skips it once it is gone.
func (r *rr) remove(w *waiter) {
	r.live[w.conn]--
	r.n--
	// The caller finishes w at once, which marks it gone for pop.
}

// pop returns the next live waiter in turn (r.n > 0).
func (r *rr) pop() *waiter {
	for {
		if r.next >= len(r.conns) {
			r.next = 0
		}
		c := r.conns[r.next]
		f := r.fifo[c]
		for len(f) > 0 && f[0].gone {
			f = f[1:]
		}
		if len(f) == 0 {
			delete(r.fifo, c)
			delete(r.live, c)
			r.conns = slices.Delete(r.conns, r.next, r.next+1)
			continue
		}
		w := f[0]
		f = f[1:]
		r.live[c]--
		r.n--
		if len(f) == 0 {
			delete(r.fifo, c)
			delete(r.live, c)
			r.conns = slices.Delete(r.conns, r.next, r.next+1)
		} else {
			r.fifo[c] = f
			r.next++
		}
		return w
	}
}

func (r *rr) all() []*waiter {
	var out []*waiter
	for _, f := range r.fifo {
		for _, w := range f {
			if !w.gone {
				out = append(out, w)
			}
		}
	}
	return out
}
