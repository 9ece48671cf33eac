package budgettest

import (
	"context"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect/budget"
)

// Memory is a [budget.Shared] in one process's memory: the reference the
// Redis and PostgreSQL stores are held to, and a store for tests of
// several Budgets sharing windows without a server.
type Memory struct {
	mu      sync.Mutex
	windows map[string]*memWindow
}

type memWindow struct {
	leases map[string]*memLease
	pause  time.Time
}

type memLease struct {
	n   int
	exp time.Time
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{windows: map[string]*memWindow{}} }

func (m *Memory) window(key string) *memWindow {
	w := m.windows[key]
	if w == nil {
		w = &memWindow{leases: map[string]*memLease{}}
		m.windows[key] = w
	}
	return w
}

func (w *memWindow) giveBack(id string, unused int) {
	if l := w.leases[id]; l != nil {
		if l.n -= unused; l.n <= 0 {
			delete(w.leases, id)
		}
	}
}

// Lease implements [budget.Shared].
func (m *Memory) Lease(ctx context.Context, req budget.LeaseRequest) (budget.LeaseResult, error) {
	if err := ctx.Err(); err != nil {
		return budget.LeaseResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.window(req.Key)
	if req.Return != nil {
		w.giveBack(req.Return.ID, req.Return.Unused)
	}
	used := 0
	var next time.Time
	for id, l := range w.leases {
		if !l.exp.After(req.Now) {
			delete(w.leases, id)
			continue
		}
		used += l.n
		if next.IsZero() || l.exp.Before(next) {
			next = l.exp
		}
	}
	var res budget.LeaseResult
	if w.pause.After(req.Now) {
		res.Paused = w.pause
	}
	grant := min(req.Want, req.Limit-used)
	if grant > 0 && res.Paused.IsZero() {
		w.leases[req.ID] = &memLease{n: grant, exp: req.Until}
		res.Granted, res.Used = grant, used+grant
		return res, nil
	}
	res.Used, res.NextFree = used, next
	if !res.Paused.IsZero() && (used < req.Limit || res.Paused.After(next)) {
		res.NextFree = res.Paused
	}
	return res, nil
}

// Release implements [budget.Shared].
func (m *Memory) Release(ctx context.Context, key, id string, unused int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.window(key).giveBack(id, unused)
	return nil
}

// Pause implements [budget.Shared].
func (m *Memory) Pause(ctx context.Context, key string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.window(key); until.After(w.pause) {
		w.pause = until
	}
	return nil
}

// Used is how many slots key's window holds at now (every live lease).
func (m *Memory) Used(key string, now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.window(key).leases {
		if l.exp.After(now) {
			n += l.n
		}
	}
	return n
}

var _ budget.Shared = (*Memory)(nil)
