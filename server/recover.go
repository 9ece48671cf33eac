package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// RecoverResult says what [Server.Recover] finished.
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
func (s *Server) Recover(ctx context.Context) (RecoverResult, error) {
	var res RecoverResult
	after := ""
	for {
		entries, err := s.backend.Scan(ctx, prefixLedger, after, 200)
		if err != nil {
			return res, fmt.Errorf("server: scan callback ledger: %w", err)
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
func (s *Server) abandoned(e ledgerEntry) bool {
	now := s.cfg.Now()
	switch e.Status {
	case ledgerPending:
		return now.Sub(time.Unix(e.Started, 0)) > s.cfg.RecoverAfter
	case ledgerExchanged:
		return now.Sub(time.Unix(e.Exchanged, 0)) > s.cfg.RecoverAfter
	}
	return false
}

// recoverEntry settles one abandoned entry and returns the status it got.
func (s *Server) recoverEntry(ctx context.Context, key string, raw []byte, e ledgerEntry) (string, error) {
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
		stored, err := s.store.PutUnlessNewer(ctx, conn, time.Unix(e.Exchanged+1, 0))
		if err != nil {
			return "", fmt.Errorf("store a staged token: %w", err)
		}
		if !stored {
			s.log.Warn("recovered callback's token is older than the stored one; kept the stored one", "connection_id", conn.ConnectionID)
		}
		settled.Status = ledgerDone
	case ledgerPending:
		settled.Status, settled.Failure = ledgerFailed, failInterrupted
	default:
		return e.Status, nil
	}
	if err := s.backend.Swap(ctx, key, raw, mustJSON(settled), ledgerTTL); err != nil && !errors.Is(err, finchconnect.ErrConflict) {
		return "", fmt.Errorf("settle a recovered callback: %w", err)
	}
	s.wake(key)
	s.log.Warn("recovered an abandoned callback", "status", settled.Status, "connection_id", settled.ConnectionID)
	return settled.Status, nil
}

// SettleReplayed marks done the callbacks whose tokens the journal has just
// replayed into the store (tokenstore.Journal.Replay returns them), so that
// the user's refresh shows the connection rather than asking to connect
// again. An entry that cannot be settled now is left to Recover.
func (s *Server) SettleReplayed(ctx context.Context, done []tokenstore.Replayed) {
	for _, r := range done {
		if !strings.HasPrefix(r.Tag, prefixLedger) {
			continue
		}
		raw, err := s.backend.Load(ctx, r.Tag)
		if err != nil {
			continue // expired, or the store is down again
		}
		var e ledgerEntry
		if json.Unmarshal(raw, &e) != nil || e.Status == ledgerDone {
			continue
		}
		settled := e
		settled.Status, settled.ConnectionID, settled.Failure, settled.Sealed = ledgerDone, r.ConnectionID, "", nil
		if err := s.backend.Swap(ctx, r.Tag, raw, mustJSON(settled), ledgerTTL); err == nil {
			s.wake(r.Tag)
		}
	}
}
