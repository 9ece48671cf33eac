package connect

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// RecoverResult says what [Service.Recover] finished.
type RecoverResult struct {
	Stored      int // exchanged tokens moved from the ledger into the vault
	Interrupted int // callbacks marked interrupted: the employer must connect again
}

// Recover finishes the callbacks that a crashed process left half done. An
// entry is considered abandoned once it is older than Config.RecoverAfter,
// longer than any live exchange takes:
//
//   - exchanged (Finch answered, the sealed token is staged in the ledger,
//     the vault write may not have happened): the token is stored from the
//     staged copy and the entry settled, so the user's retry shows the
//     connection;
//   - pending (the code may be at Finch): the entry is marked interrupted.
//     The code is never sent again (it may have been spent), so the retry
//     shows a page asking to connect again.
//
// Call it at start-up; duplicate callbacks also recover the one entry they
// wait on. Several replicas may run it at once: every step is a
// compare-and-set.
func (s *Service) Recover(ctx context.Context) (RecoverResult, error) {
	var res RecoverResult
	after := ""
	for {
		entries, err := ledgerNS.Scan(ctx, s.backend, after, 200)
		if err != nil {
			return res, fmt.Errorf("connect: scan callback ledger: %w", err)
		}
		for _, en := range entries {
			var e ledgerEntry
			if json.Unmarshal(en.Value, &e) != nil || !s.abandoned(e) {
				continue
			}
			switch done, err := s.recoverEntry(ctx, en.Key, en.Value, e); {
			case err != nil:
				s.log.Error("recover a callback", "err", err)
			case done == ledgerDone:
				res.Stored++
			case done == ledgerFailed:
				res.Interrupted++
			}
		}
		if len(entries) < 200 {
			return res, nil
		}
		after = entries[len(entries)-1].Key
	}
}

// abandoned reports whether a ledger entry has been in flight for longer
// than a live callback takes.
func (s *Service) abandoned(e ledgerEntry) bool {
	now := s.clock.Now()
	switch e.Status {
	case ledgerPending:
		return now.Sub(time.Unix(e.Started, 0)) > s.cfg.RecoverAfter
	case ledgerExchanged:
		return now.Sub(time.Unix(e.Exchanged, 0)) > s.cfg.RecoverAfter
	}
	return false
}

// recoverEntry settles one abandoned entry and returns the status it got.
func (s *Service) recoverEntry(ctx context.Context, key string, raw []byte, e ledgerEntry) (string, error) {
	settled := e
	settled.Sealed = nil
	switch e.Status {
	case ledgerExchanged:
		conn, err := s.store.OpenStaged(e.Sealed)
		if err != nil {
			return "", fmt.Errorf("open a staged token: %w", err)
		}
		// Store the staged token unless the vault got a newer one after
		// this exchange (a later re-authentication that finished first:
		// undoing it would bring back an older token), checked in the
		// same compare-and-set as the write. Exchanged has whole seconds,
		// hence the second of margin.
		// A re-authentication never inserts: its connection may have been
		// disconnected meanwhile, and the disconnect wins.
		put := s.store.PutUnlessNewer
		if e.Kind == kindReauth {
			put = s.store.ReplaceUnlessNewer
		}
		stored, err := put(ctx, conn, time.Unix(e.Exchanged+1, 0))
		switch {
		case errors.Is(err, finchconnect.ErrNotFound) && e.Kind == kindReauth:
			s.disconnectOrphan(ctx, conn)
			settled.Status, settled.Failure = ledgerFailed, failDisconnected
		case err != nil:
			return "", fmt.Errorf("store a staged token: %w", err)
		default:
			if !stored {
				s.log.Warn("recovered callback's token is stored already, or older than the stored one; kept the stored one", "connection_id", conn.ConnectionID)
			}
			settled.Status, settled.ConnectionID = ledgerDone, conn.ConnectionID
		}
	case ledgerPending:
		settled.Status, settled.Failure = ledgerFailed, failInterrupted
	default:
		return e.Status, nil
	}
	err := s.backend.Swap(ctx, key, raw, mustJSON(settled), ledgerTTL)
	switch {
	case errors.Is(err, finchconnect.ErrConflict):
		// Settled by another process meanwhile, which tells the app.
	case err != nil:
		return "", fmt.Errorf("settle a recovered callback: %w", err)
	case settled.Status == ledgerDone:
		// The callback ended before it could tell the app; the connection
		// may have been announced already (its first write landed and
		// only the answer was lost): events are at least once.
		s.announceStored(ctx, settled.ConnectionID, e.Kind)
	}
	s.wake(key)
	s.log.Warn("recovered an abandoned callback", "status", settled.Status, "connection_id", settled.ConnectionID)
	return settled.Status, nil
}

// Replay replays the journal into the store (Config.Journal) and marks
// done the callbacks whose tokens it replayed, so that the user's refresh
// shows the connection rather than asking to connect again. It returns how
// many tokens it replayed. Callbacks whose ledger entries the store could
// not settle are settled by the next Replay; [Service.Run] calls it every
// few seconds. An entry Recover settled as interrupted meanwhile (it cannot
// know the journal held the token) is settled again as done: the token is
// in the vault.
func (s *Service) Replay(ctx context.Context) (int, error) {
	if s.cfg.Journal == nil {
		return 0, nil
	}
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	if s.cfg.Journal.Pending() == 0 && len(s.unsettled) == 0 {
		return 0, nil
	}
	done, err := s.cfg.Journal.Replay(ctx)
	if len(done) > 0 {
		s.log.Info("replayed the journal into the store", "connections", len(done))
	}
	s.unsettled = s.settleReplayed(ctx, append(s.unsettled, done...))
	if err != nil {
		return len(done), fmt.Errorf("connect: replay the journal: %w", err)
	}
	return len(done), nil
}

// settleReplayed settles the replayed callbacks done, and returns those it
// could not settle because the store failed.
func (s *Service) settleReplayed(ctx context.Context, done []tokenstore.Replayed) (left []tokenstore.Replayed) {
	for _, r := range done {
		if r.Orphan != nil && !r.Orphan.AccessToken.IsZero() {
			// A re-authentication whose connection was disconnected while
			// its token waited in the journal: the disconnect wins. The
			// token is dropped once disconnected, so a retry does not
			// disconnect it again.
			s.disconnectOrphan(ctx, *r.Orphan)
			r.Orphan = &finchconnect.Connection{ConnectionID: r.Orphan.ConnectionID}
		}
		if !s.settleOne(ctx, r) {
			left = append(left, r)
		}
	}
	return left
}

// settleOne settles one replayed callback, and reports false when the
// store failed before it could.
func (s *Service) settleOne(ctx context.Context, r tokenstore.Replayed) bool {
	key, kind := splitJournalTag(r.Tag)
	if _, ok := ledgerNS.ID(key); !ok {
		return true
	}
	// A conflict is another writer (Recover, a duplicate) settling the
	// entry between the read and the swap: read it again.
	for range 3 {
		raw, err := s.backend.Load(ctx, key)
		if errors.Is(err, finchconnect.ErrNotFound) {
			// The entry expired during a long outage: nothing to settle,
			// but the app has still not been told.
			if r.Orphan == nil {
				s.announceStored(ctx, r.ConnectionID, kind)
			}
			return true
		}
		if err != nil {
			return false
		}
		var e ledgerEntry
		if json.Unmarshal(raw, &e) != nil || e.Status == ledgerDone {
			return true
		}
		settled := e
		settled.Status, settled.ConnectionID, settled.Failure, settled.Sealed = ledgerDone, r.ConnectionID, "", nil
		if r.Orphan != nil {
			if e.Status == ledgerFailed {
				return true
			}
			settled.Status, settled.ConnectionID, settled.Failure = ledgerFailed, "", failDisconnected
		}
		switch err := s.swapLedger(ctx, key, raw, mustJSON(settled)); {
		case err == nil:
			s.wake(key)
			if r.Orphan == nil {
				s.announceStored(ctx, r.ConnectionID, cmp.Or(kind, e.Kind))
			}
			return true
		case errors.Is(err, finchconnect.ErrConflict):
			continue
		default:
			return false
		}
	}
	return false
}

// journalTag is the tag a callback's token is held under in the journal:
// its ledger key, and the flow's kind, which the ledger entry may not hold
// yet (see ledgerEntry.Kind).
func journalTag(key, kind string) string { return key + "|" + kind }

// splitJournalTag undoes journalTag.
func splitJournalTag(tag string) (key, kind string) {
	key, kind, _ = strings.Cut(tag, "|")
	return key, kind
}

// announceStored tells the app about a callback's connection that reached
// the vault late, from the journal or by recovery: the callback itself
// ended before it could. kind is the flow's.
func (s *Service) announceStored(ctx context.Context, connectionID, kind string) {
	conn, err := s.store.Lookup(ctx, connectionID)
	if err != nil {
		s.log.Error("an event about a connection stored late was not published", "connection_id", connectionID, "err", err)
		return
	}
	event := finchconnect.EventConnectionCreated
	if kind == kindReauth {
		event = finchconnect.EventConnectionReauthenticated
	}
	s.notifyAfter(ctx, event, conn)
}
