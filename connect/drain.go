package connect

import (
	"context"
	"time"
)

// CallbackTimeout bounds a callback's work once it has claimed its code:
// the exchange with Finch and the writes that record its outcome. It runs
// detached from the request, so a browser that goes away cannot abandon a
// code half-exchanged.
const CallbackTimeout = 2 * time.Minute

// Drain waits until every callback in progress has ended, those that
// claimed their code having recorded its outcome (the token in the vault or
// the journal, the ledger settled), or until ctx ends. Call it after
// http.Server.Shutdown and before closing the store: Shutdown's own
// deadline may pass while a slow exchange with Finch is still running, and
// a token Finch issues must not find the store closed. No callback runs
// longer than CallbackTimeout after its claim, and a duplicate waits for
// the first at most Config.WaitTimeout.
func (s *Service) Drain(ctx context.Context) error { return s.inflight.Wait(ctx) }
