// Package clock is the one source of time of the exactly-once protocol and
// the sweeps: the real clock in production, and a fake one that tests
// advance instead of sleeping for a TTL, a backoff or a poll.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock: the channel receives once the
	// clock has reached now+d.
	After(d time.Duration) <-chan time.Time
}

// Real returns the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Func returns a clock that reads the time from now and waits on the
// system clock: for tests that move the time of records (a TTL, an age)
// but let backoffs and polls run in real time.
func Func(now func() time.Time) Clock { return funcClock(now) }

type funcClock func() time.Time

func (f funcClock) Now() time.Time                       { return f() }
func (funcClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a clock that moves only when told to. Waits on it end when
// Advance reaches them. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan struct{} // closed and replaced whenever a wait starts
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start, added: make(chan struct{})} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives once the clock reaches now+d; at
// once if d <= 0.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waiters = append(f.waiters, fakeWaiter{at: f.now.Add(d), ch: ch})
	close(f.added)
	f.added = make(chan struct{})
	return ch
}

// Advance moves the clock on by d and ends the waits it reaches.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(f.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- f.now
	}
	f.waiters = kept
}

// Waiting returns how many waits are pending, and a channel closed when
// the next one starts: a test waits on it until the code under test has
// gone to sleep, then advances the clock.
func (f *Fake) Waiting() (int, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters), f.added
}
