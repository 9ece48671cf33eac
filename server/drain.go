package server

import (
	"context"
	"sync"
	"time"
)

// CallbackTimeout bounds a callback's work once it has claimed its code:
// the exchange with Finch and the writes that record its outcome. It runs
// detached from the request, so a browser that goes away cannot abandon a
// code half-exchanged.
const CallbackTimeout = 2 * time.Minute

// inflight counts the callbacks between their claim and their recorded
// outcome, for [Server.Drain].
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (f *inflight) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 {
		close(f.idle)
	}
}

// Drain waits until every callback that has claimed its code has recorded
// its outcome (the token in the vault or the journal, the ledger settled),
// or until ctx ends. Call it after http.Server.Shutdown and before closing
// the store: Shutdown's own deadline may pass while a slow exchange with
// Finch is still running, and a token Finch issues must not find the store
// closed. No callback runs longer than CallbackTimeout after its claim.
func (s *Server) Drain(ctx context.Context) error {
	for {
		s.inflight.mu.Lock()
		if s.inflight.n == 0 {
			s.inflight.mu.Unlock()
			return nil
		}
		idle := s.inflight.idle
		s.inflight.mu.Unlock()
		select {
		case <-idle:
			// Look again: a callback may have claimed since.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
