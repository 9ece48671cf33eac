package budget

import (
	"slices"
	"time"
)

// Stats is a snapshot of a Budget, for metrics and tests.
type Stats struct {
	// Waiting is the calls queued, and Waiters the same per lane.
	Waiting int
	Waiters [numLanes]int
	// Windows are the product buckets and the IP window (Product "ip").
	Windows      []WindowStats
	BreakerOpen  bool
	BreakerUntil time.Time
	// Granted is the permits granted since New.
	Granted uint64
}

// WindowStats is one window's use.
type WindowStats struct {
	Product string
	Limit   int
	// Used is the permits counting in the window now: in flight or
	// finished less than a window ago (with a shared store: as the store
	// counted them at this replica's last lease, or this replica's own
	// calls of the last window, whichever is more). Left is Limit − Used.
	Used, Left int
	Paused     bool
}

// Stats returns the budget's state now.
func (b *Budget) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	var s Stats
	for l, q := range b.queues {
		for _, r := range q.products {
			s.Waiters[l] += r.n
		}
		s.Waiting += s.Waiters[l]
	}
	for _, w := range b.windows {
		used := 0
		if w.slots != nil {
			for _, sl := range w.slots {
				if sl.inflight || sl.free.After(now) {
					used++
				}
			}
		} else {
			recent := 0
			for _, t := range w.used {
				if t.After(now.Add(-w.span)) {
					recent++
				}
			}
			used = min(max(w.usedSeen, recent), w.limit)
		}
		name := w.key
		if w == b.ip {
			name = "ip"
		}
		s.Windows = append(s.Windows, WindowStats{Product: name, Limit: w.limit, Used: used, Left: w.limit - used, Paused: now.Before(w.paused)})
	}
	slices.SortFunc(s.Windows, func(a, b WindowStats) int {
		if a.Product < b.Product {
			return -1
		}
		if a.Product > b.Product {
			return 1
		}
		return 0
	})
	s.BreakerOpen, s.BreakerUntil = now.Before(b.breaker), b.breaker
	s.Granted = b.granted
	return s
}
