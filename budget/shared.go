package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Shared keeps the sliding windows of every replica of one application in
// one store (Redis: budget/redisbudget; PostgreSQL: budget/pgbudget), so
// that replicas together stay within Finch's limits. A replica does not
// ask it per call: it leases a few permits at a time, spends them
// locally, and gives back what it did not spend.
//
// A window is a set of leases, each holding some slots until its expiry,
// and a pause: the Retry-After of a 429 that one replica saw (for a
// product's key), or the IP breaker (for the "<client id>/:ip" key). A
// pause reaches the other replicas with their next lease, so within
// Options.LeaseFor: a paused window grants nothing until its pause ends.
type Shared interface {
	// Lease first gives back req.Return's unspent slots (if any), then
	// drops the leases expired at req.Now, and grants up to req.Want
	// slots of req.Key's window (req.Limit slots at most, counting every
	// live lease), held until req.Until, under req.ID. It reports how many
	// it granted, how many the window holds after the grant, and, when it
	// granted none, when the earliest lease expires.
	Lease(ctx context.Context, req LeaseRequest) (LeaseResult, error)
	// Release gives back unused unspent slots of lease id of key.
	Release(ctx context.Context, key, id string, unused int) error
	// Pause pauses key's window until until (never shortening a longer
	// pause): its Leases grant nothing before then, and report the pause.
	Pause(ctx context.Context, key string, until time.Time) error
}

// LeaseRequest is one call of [Shared.Lease].
type LeaseRequest struct {
	Key    string // "<client id>/<bucket>", or "<client id>/:ip"
	ID     string // the new lease's id, random
	Limit  int
	Want   int
	Now    time.Time
	Until  time.Time
	Return *Return // an earlier lease's unspent slots, or nil
}

// Return gives back Unused slots of lease ID.
type Return struct {
	ID     string
	Unused int
}

// LeaseResult is [Shared.Lease]'s answer.
type LeaseResult struct {
	Granted  int
	Used     int       // slots the window holds after the grant
	NextFree time.Time // when Granted is 0: the earliest expiry, or the pause's end
	Paused   time.Time // the window's pause, when it lasts past req.Now
}

func newLeaseID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// refillLocked starts one lease request of lane for w if none is running
// and the store may be asked now. A Background lease is asked with
// Limit = limit − reserve: the store counts every replica's leases of both
// lanes, so the Background leases of all replicas together never take
// the reserve. b.mu is held.
func (b *Budget) refillLocked(w *window, lane Lane, now time.Time) {
	if w.slots != nil || w.refilling[lane] || b.closed || now.Before(w.retryAt[lane]) || now.Before(w.paused) {
		return
	}
	want := 1
	q := b.queues[lane]
	if w == b.ip {
		for _, r := range q.products {
			want += r.n
		}
	} else if r := q.products[w.key]; r != nil {
		want += r.n
	}
	// At most a quarter of the limit per lease, so replicas share a burst.
	want = min(want, max(1, (w.limit+3)/4))
	req := LeaseRequest{
		Key: b.client + "/" + w.key, ID: newLeaseID(), Limit: w.limitOf(lane), Want: want, Now: now,
		Until: now.Add(b.opts.LeaseFor + b.opts.Margin + w.span),
	}
	if l := w.lease[lane]; l.id != "" && l.left > 0 {
		req.Return = &Return{ID: l.id, Unused: l.left}
	}
	w.lease[lane] = lease{}
	w.refilling[lane] = true
	b.storeStartLocked()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.StoreTimeout)
		res, err := b.opts.Shared.Lease(ctx, req)
		cancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		defer b.storeDoneLocked()
		w.refilling[lane] = false
		now := b.clock.Now()
		switch {
		case err != nil:
			w.storeErr = err
			w.retryAt[lane] = now.Add(time.Second)
		case res.Paused.After(now):
			// Another replica saw a 429: pause here too.
			w.storeErr = nil
			w.usedSeen = res.Used
			w.retryAt[lane] = res.Paused
			if w == b.ip {
				if !now.Before(b.breaker) {
					b.obsLater = append(b.obsLater, func() { b.obs.Breaker(true) })
				}
				b.breaker = maxTime(b.breaker, res.Paused)
			} else {
				w.paused = maxTime(w.paused, res.Paused)
			}
		case res.Granted == 0:
			w.storeErr = nil
			w.usedSeen = res.Used
			w.retryAt[lane] = maxTime(res.NextFree, now.Add(50*time.Millisecond))
		default:
			w.storeErr = nil
			w.usedSeen = res.Used
			w.retryAt[lane] = time.Time{}
			w.lease[lane] = lease{id: req.ID, size: res.Granted, left: res.Granted, end: req.Now.Add(b.opts.LeaseFor)}
		}
		if b.closed {
			if f := b.releaseLocked(w); f != nil {
				b.storeStartLocked()
				go func() {
					f()
					b.mu.Lock()
					b.storeDoneLocked()
					b.mu.Unlock()
				}()
			}
			return
		}
		b.dispatchLocked(now)
		b.flushObsLocked()
	}()
}

// pauseShared tells the shared store of a pause (or, for the IP window,
// the breaker) this replica saw, so that every replica keeps it. b.mu is
// held; the call runs in its own goroutine.
func (b *Budget) pauseSharedLocked(w *window, until time.Time) {
	if b.opts.Shared == nil || b.closed {
		return
	}
	key := b.client + "/" + w.key
	b.storeStartLocked()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.StoreTimeout)
		err := b.opts.Shared.Pause(ctx, key, until)
		cancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		defer b.storeDoneLocked()
		if err != nil {
			w.storeErr = err
		}
	}()
}

// flushObsLocked runs the observer calls queued under b.mu in their own
// goroutine (an Observer is called with no lock held).
func (b *Budget) flushObsLocked() {
	if len(b.obsLater) == 0 || b.obs == nil {
		b.obsLater = nil
		return
	}
	fs := b.obsLater
	b.obsLater = nil
	go func() {
		for _, f := range fs {
			f()
		}
	}()
}

// releaseLocked takes w's unspent leases away and returns the call that
// gives them back to the store, or nil.
func (b *Budget) releaseLocked(w *window) func() {
	if w.slots != nil {
		return nil
	}
	var back []lease
	for l := range w.lease {
		if w.lease[l].id != "" && w.lease[l].left > 0 {
			back = append(back, w.lease[l])
		}
		w.lease[l] = lease{}
	}
	if len(back) == 0 {
		return nil
	}
	key := b.client + "/" + w.key
	return func() {
		for _, l := range back {
			ctx, cancel := context.WithTimeout(context.Background(), b.opts.StoreTimeout)
			_ = b.opts.Shared.Release(ctx, key, l.id, l.left)
			cancel()
		}
	}
}
