package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/internal/reqid"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// Callback is what a browser (or the app's page) brought back from Finch
// Connect.
type Callback struct {
	Code, State string
	// Browser is the value of the browser cookie the flow was bound to;
	// empty for a flow the app's back-end started ([Service.StartFlow]
	// without Browser), where the state alone authorises the callback.
	Browser string
}

// Outcome is what a callback ends in: the connection, and where an
// app-started flow sends the browser next.
type Outcome struct {
	ConnectionID string
	ReturnURL    string
	Duplicate    bool // this request followed another that did the exchange
}

// Cancel spends the state of a flow that Connect ended without a code (the
// employer cancelled, or Connect failed), so that the state cannot be used
// again. Best effort: a state left unspent expires anyway.
func (s *Service) Cancel(ctx context.Context, state, browser string) {
	if state == "" || browser == "" {
		return
	}
	h := hashHex(state)
	if _, err := s.loadState(ctx, h, browser); err == nil {
		_ = s.backend.Claim(ctx, stateUsedNS.Key(h), []byte("cancelled"), s.cfg.StateTTL)
	}
}

// Complete turns a callback's code into a stored connection, exactly once
// per code. The first request to claim the code in the ledger exchanges it;
// every other request with the same code — a refresh, a double click, a
// proxy's retry, another replica — waits for that one and returns the same
// connection id or the same error.
//
// Its errors are finchconnect.ErrStateMismatch (a bad, spent or foreign
// state), finchconnect.ErrInvalidCode, or one of this package's sentinels
// ([ErrPending], [ErrExchange], [ErrStore], [ErrStoreKept], [ErrStoreDown],
// [ErrSaving], [ErrInterrupted], [ErrDisconnected], [ErrMissingParams]).
func (s *Service) Complete(ctx context.Context, cb Callback) (Outcome, error) {
	code, state, browser := cb.Code, cb.State, cb.Browser
	if code == "" || state == "" {
		return Outcome{}, ErrMissingParams
	}
	stateHash, bHash := hashHex(state), browserHash(browser)
	key := ledgerNS.Key(hashHex(code))
	// Counted from before the claim, so that Drain cannot miss a callback
	// that claims its code just after Drain looked.
	s.inflight.Start()
	defer s.inflight.Done()

	// Read the flow's state, claim the code and spend the state, in one
	// round trip. The state must be one this browser started (or one no
	// browser did) and not yet spent. Exactly one claimant of a code
	// proceeds, on any replica; duplicates lose the claim and follow the
	// winner. A state carries one flow: the first code to spend it wins,
	// and a second code arriving with the same state is refused before any
	// exchange.
	var (
		fs      flowState
		claimed ledgerWrite
	)
	for range 3 {
		var how claimResult
		var first []byte
		var err error
		fs, claimed, how, first, err = s.claimFlow(ctx, key, stateHash, bHash)
		switch {
		case errors.Is(err, errStateGone):
			// A refresh long after the flow finds its state expired, but the
			// ledger still knows how the code ended: show that instead.
			if _, lerr := s.backend.Load(ctx, key); lerr == nil {
				out, ferr := s.follow(ctx, key, stateHash, bHash, nil)
				if errors.Is(ferr, errReleased) {
					return Outcome{}, err // given back unexchanged, and its flow is gone
				}
				return out, ferr
			}
			return Outcome{}, err
		case err != nil:
			return Outcome{}, err
		case how == claimSpent:
			return Outcome{}, fmt.Errorf("%w: already used", finchconnect.ErrStateMismatch)
		case how == claimDuplicate:
			out, err := s.follow(ctx, key, stateHash, bHash, first)
			if errors.Is(err, errReleased) {
				continue // its claimant gave it back unexchanged: claim it again
			}
			return out, err
		}
		break
	}
	if claimed.raw == nil {
		return Outcome{}, ErrPending
	}

	// From here the outcome is recorded in the ledger whatever happens, and
	// the work is detached from the request: a browser that goes away must
	// not abandon a code half-exchanged.
	ctx, cancel := detach(ctx, CallbackTimeout)
	defer cancel()
	res, err := s.exchangeOnce(ctx, key, claimed, code, fs)
	if res.failure == failSaving && res.staged.entry.Status == ledgerExchanged {
		// The staged token must stay in the ledger until the recovery
		// loop has stored it.
		s.wake(key)
		return Outcome{}, err
	}
	switch {
	case err != nil:
		if serr := s.settle(ctx, key, res.staged, res.connectionID, res.failure); serr != nil {
			// The outcome stands; duplicates will time out waiting instead of
			// sharing it. Worth an operator's attention, not the user's.
			s.log.Error("settle callback ledger", "err", serr, "request_id", reqid.From(ctx))
		}
	case !res.settled:
		// The vault write found the entry changed, so it stored the
		// connection without settling. A retried write whose first try
		// settled it (its answer lost on the way) is fine; anything else
		// means another process took the callback over as abandoned.
		s.checkSettled(ctx, key, res.connectionID)
	}
	s.wake(key)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{ConnectionID: res.connectionID, ReturnURL: fs.ReturnURL}, nil
}

// ledgerWrite is a ledger entry and the bytes stored for it: a later swap
// names the stored bytes as its old value, and marshalling once spares the
// callback's hot path the work. The entry may know more than the bytes
// hold: claimFlow learns the flow's return URL in the same step as it
// claims the entry, and the next write (the write-ahead, or the settle)
// stores it.
type ledgerWrite struct {
	entry ledgerEntry
	raw   []byte
}

// claimResult is how a claimFlow ended.
type claimResult int

const (
	claimOwned     claimResult = iota // this request holds the claim: it exchanges the code
	claimDuplicate                    // another request holds it: follow that one
	claimSpent                        // the state was spent by another code
)

// claimTries bounds how many times a callback tries its claim while the
// store fails, and claimBackoff is the first wait between tries (doubled
// each time): a few seconds of patience in all, for a store that stalls
// and then answers.
const (
	claimTries   = 5
	claimBackoff = 50 * time.Millisecond
)

// claimFlow reads the flow state of stateHash for the browser bHash and,
// in the same step, claims the code's ledger entry under key and spends the
// state ([tokenstore.ClaimAllIf], the state's key as the guard). The
// state's key names the browser the flow is bound to (stateKey), so a
// request from another browser finds no state and claims nothing. A state
// missing under every key is errStateGone.
//
// The entry carries this request's own nonce, so that a claim whose answer
// was lost (a store that timed out after the write, a client that sent the
// script again while the store ran the first copy too) is recognised as
// its own: after a store error or a conflict it reads the entry back, and
// when the nonce is its own it carries on as the owner. After a store
// error with nothing read back, it tries the same claim again, which
// either claims or meets its own earlier copy. A request that gives up
// gives the claim back (releaseClaim), so that no one waits for an
// exchange nobody is doing. An entry given back by its claimant is taken
// over, with a compare-and-set, by the next request of the same flow.
//
// For claimDuplicate it returns the entry it read, if it read one, as
// follow's first read.
func (s *Service) claimFlow(ctx context.Context, key, stateHash, bHash string) (fs flowState, claimed ledgerWrite, how claimResult, first []byte, err error) {
	nonce, err := s.randomToken()
	if err != nil {
		return fs, claimed, 0, nil, err
	}
	entry := ledgerEntry{V: ledgerVersion, Nonce: nonce, Status: ledgerPending, State: stateHash, Started: s.clock.Now().Unix()}
	for _, b := range bindings(bHash) {
		entry.Browser = b
		raw := mustJSON(entry)
		cs := []tokenstore.Claim{
			{Key: key, Value: raw, TTL: ledgerTTL},
			{Key: stateUsedNS.Key(stateHash), Value: []byte("used"), TTL: s.cfg.StateTTL},
		}
		guard := stateKey(stateHash, b)
		mine := func(v []byte) (flowState, ledgerWrite, claimResult, []byte, error) {
			var fs flowState
			if v == nil {
				// Claimed on an earlier try whose answer was lost: read
				// the state again.
				var err error
				if v, err = s.backend.Load(ctx, guard); err != nil {
					s.releaseClaim(ctx, key, raw)
					return fs, ledgerWrite{}, 0, nil, fmt.Errorf("%w: read the state of a claimed callback: %v", ErrStoreDown, err)
				}
			}
			if err := json.Unmarshal(v, &fs); err != nil {
				s.releaseClaim(ctx, key, raw)
				return fs, ledgerWrite{}, 0, nil, fmt.Errorf("connect: decode state: %v", err)
			}
			e := entry
			e.ReturnURL, e.Kind = fs.ReturnURL, fs.Kind
			return fs, ledgerWrite{e, raw}, claimOwned, nil, nil
		}
		var last error
		failed := false // a try failed on the store: an earlier copy may have landed
		for try := range claimTries {
			if try > 0 {
				select {
				case <-s.clock.After(claimBackoff << (try - 1)):
				case <-ctx.Done():
					s.releaseClaim(ctx, key, raw)
					return fs, claimed, 0, nil, fmt.Errorf("%w: claim callback: %v", ErrStoreDown, ctx.Err())
				}
			}
			v, held, err := s.claimGuarded(ctx, guard, cs)
			switch {
			case err == nil:
				return mine(v)
			case errors.Is(err, finchconnect.ErrNotFound) && v == nil && !failed:
				// No state under this binding.
			case v != nil && held == 1:
				return fs, claimed, claimSpent, nil, nil
			case v != nil && held == 0 || errors.Is(err, finchconnect.ErrNotFound):
				// The code is claimed (or, after a failed try, the state
				// went away): whose claim is it?
				cur, lerr := s.backend.Load(ctx, key)
				if lerr != nil && !errors.Is(lerr, finchconnect.ErrNotFound) {
					last, failed = lerr, true
					continue
				}
				var e ledgerEntry
				if lerr == nil && json.Unmarshal(cur, &e) == nil && e.V == ledgerVersion && sameHash(e.Nonce, nonce) {
					return mine(v)
				}
				if lerr == nil && e.Status == ledgerReleased && v != nil {
					// Given back unexchanged by its claimant: take it over
					// if it is this flow's.
					if sameHash(e.State, stateHash) && (e.Browser == "" || sameHash(e.Browser, bHash)) {
						if s.backend.Swap(ctx, key, cur, raw, ledgerTTL) == nil {
							return mine(v)
						}
						// Another request took it over first (or the
						// answer was lost, which the next read tells).
						continue
					}
				}
				if v == nil {
					break // the state went away: try the next binding
				}
				return fs, claimed, claimDuplicate, cur, nil
			default:
				last, failed = err, true
				continue
			}
			break
		}
		if failed {
			// Out of tries with the store failing, or the state gone
			// after a failed try: whatever landed is given back.
			s.releaseClaim(ctx, key, raw)
			if last != nil {
				return fs, claimed, 0, nil, fmt.Errorf("%w: claim callback: %v", ErrStoreDown, last)
			}
		}
	}
	return fs, claimed, 0, nil, fmt.Errorf("%w: %w", finchconnect.ErrStateMismatch, errStateGone)
}

// releaseClaim gives back the claim raw under key, which its callback will
// not exchange: it stores a released entry in its place, or in the empty
// slot if the claim has not landed (yet), so that a late copy of the claim
// finds the key taken and claims nothing. A request of the same flow takes
// a released entry over. On a context of its own: ctx may have run out.
// Best effort: with the store still down, an entry that lands later is
// recovered as interrupted (Recover).
func (s *Service) releaseClaim(ctx context.Context, key string, raw []byte) {
	var e ledgerEntry
	if json.Unmarshal(raw, &e) != nil {
		return
	}
	e.Status = ledgerReleased
	released := mustJSON(e)
	rctx, cancel := detach(ctx, 5*time.Second)
	defer cancel()
	for range 3 {
		err := s.backend.Claim(rctx, key, released, ledgerTTL)
		if err == nil {
			return
		}
		if errors.Is(err, finchconnect.ErrConflict) {
			err = s.backend.Swap(rctx, key, raw, released, ledgerTTL)
			if err == nil {
				return
			}
		}
		if cur, lerr := s.backend.Load(rctx, key); lerr == nil {
			var other ledgerEntry
			if bytes.Equal(cur, released) || json.Unmarshal(cur, &other) != nil || !sameHash(other.Nonce, e.Nonce) {
				return // given back already, or someone else's
			}
		}
		if rctx.Err() != nil {
			break
		}
	}
	s.log.Warn("give back a callback's claim; if it landed, recovery marks it interrupted", "request_id", reqid.From(ctx))
}

// settledEntry is the final ledger entry after staged: done with the
// connection id, or failed with a failure kind. The token is in the vault
// now, or nowhere, so the entry no longer holds it.
func settledEntry(staged ledgerEntry, connectionID, failure string) ledgerEntry {
	settled := staged
	settled.Sealed = nil
	if failure != "" {
		settled.Status, settled.Failure = ledgerFailed, failure
	} else {
		settled.Status, settled.ConnectionID = ledgerDone, connectionID
	}
	return settled
}

// settleSwap is the swap that settles the ledger entry under key, from
// staged to its final state.
func settleSwap(key string, staged ledgerWrite, connectionID, failure string) tokenstore.Swap {
	return tokenstore.Swap{Key: key, Old: staged.raw, Value: mustJSON(settledEntry(staged.entry, connectionID, failure)), TTL: ledgerTTL}
}

// settle settles the ledger entry under key on its own (see settleSwap).
func (s *Service) settle(ctx context.Context, key string, staged ledgerWrite, connectionID, failure string) error {
	sw := settleSwap(key, staged, connectionID, failure)
	return s.swapLedger(ctx, sw.Key, sw.Old, sw.Value)
}

// swapLedger replaces the ledger entry under key, from old to value. After
// a store error or a conflict it reads the entry back: a swap whose answer
// was lost (or that a client sent twice, the second copy finding the first
// one's value) has landed when the entry holds value.
func (s *Service) swapLedger(ctx context.Context, key string, old, value []byte) error {
	err := s.backend.Swap(ctx, key, old, value, ledgerTTL)
	if err == nil || errors.Is(err, finchconnect.ErrNotFound) {
		return err
	}
	if cur, lerr := s.backend.Load(ctx, key); lerr == nil && bytes.Equal(cur, value) {
		return nil
	}
	return err
}

// checkSettled logs unless the ledger entry under key is done with
// connectionID.
func (s *Service) checkSettled(ctx context.Context, key, connectionID string) {
	if e, err := s.ledgerEntry(ctx, key); err != nil || e.Status != ledgerDone || e.ConnectionID != connectionID {
		s.log.Error("callback ledger changed under its callback", "connection_id", connectionID, "status", e.Status, "err", err, "request_id", reqid.From(ctx))
	}
}

// settledWith reports whether the ledger entry under key is done with
// connectionID, as it is when a vault write that settles it landed.
func (s *Service) settledWith(ctx context.Context, key, connectionID string) bool {
	e, err := s.ledgerEntry(ctx, key)
	return err == nil && e.Status == ledgerDone && e.ConnectionID == connectionID
}

// ledgerEntry reads the ledger entry under key.
func (s *Service) ledgerEntry(ctx context.Context, key string) (ledgerEntry, error) {
	var e ledgerEntry
	b, err := s.backend.Load(ctx, key)
	if err == nil {
		err = json.Unmarshal(b, &e)
	}
	return e, err
}

// exchanged is what exchangeOnce did.
type exchanged struct {
	connectionID string
	failure      string      // a failure kind for the ledger, when it failed
	staged       ledgerWrite // the ledger entry as it stands (the write-ahead, if it was written)
	settled      bool        // the vault write settled the ledger entry too
}

// exchangeOnce exchanges a claimed code and stores the token. It returns
// the connection id, or a failure kind for the ledger and the error.
//
// A new connection, as most callbacks bring, goes into the vault in one
// write that also settles the ledger entry ([tokenstore.Store.CreateSwap]).
// When that write does not succeed at once (the connection is stored
// already, as on a re-authentication, or the store failed) the token is
// written twice: first, sealed, into the ledger entry (the write-ahead),
// then into the vault with retries ([Service.save]), in the write that
// settles the ledger entry. A crash between the two loses nothing:
// [Service.Recover] and any duplicate callback finish the job from the
// ledger. Either way, only the instant between Finch's answer and the first
// write is unprotected; no design can close it, as Finch has no idempotent
// exchange.
func (s *Service) exchangeOnce(ctx context.Context, key string, claimed ledgerWrite, code string, fs flowState) (exchanged, error) {
	res := exchanged{staged: claimed}
	redirectURI := ""
	if fs.Mode == modeRedirect {
		// Finch wants redirect_uri for redirect-flow codes and refuses it
		// for embedded ones (finch-api.md §3).
		redirectURI = s.cfg.RedirectURI
	}
	s.failpoint("before-exchange")
	conn, err := s.finch.ExchangeCode(ctx, code, redirectURI)
	s.failpoint("after-exchange")
	if err != nil {
		if errors.Is(err, finchconnect.ErrInvalidCode) {
			res.failure = failCode
			return res, err
		}
		res.failure = failExchange
		return res, fmt.Errorf("%w: %w", ErrExchange, err)
	}
	if conn.CustomerID == "" {
		conn.CustomerID = fs.CustomerID
	}
	if conn.CustomerName == "" {
		conn.CustomerName = fs.CustomerName
	}
	conn.Status = finchconnect.StatusConnected
	if fs.Kind == kindReauth && conn.ConnectionID != fs.ConnectionID {
		// Finch answered a re-authentication with another connection
		// (the employer signed in to another account): that is a new
		// connection, and the one being re-authenticated keeps its token
		// and status.
		s.log.Warn("a re-authentication ended in another connection; storing it as new",
			"connection_id", fs.ConnectionID, "new_connection_id", conn.ConnectionID)
		fs.Kind = kindConnect
		claimed.entry.Kind = kindConnect
	}

	// /introspect is not called here: the token response says everything
	// the vault needs, a successful exchange means "connected", and the
	// health sweep introspects new connections first. That keeps the
	// callback to one round trip to Finch.
	if fs.Kind != kindReauth {
		res.settled, err = s.store.CreateSwap(ctx, conn, settleSwap(key, claimed, conn.ConnectionID, ""))
	}
	if fs.Kind == kindReauth || err != nil {
		if err != nil && !errors.Is(err, finchconnect.ErrConflict) {
			s.log.Warn("store a new connection; retrying after a write-ahead", "connection_id", conn.ConnectionID, "err", err)
		}
		// A re-authentication, or a new flow that Finch answered with a
		// connection the vault holds already (CreateSwap's conflict):
		// either way, the vault has a working token for this connection.
		stored := fs.Kind == kindReauth || errors.Is(err, finchconnect.ErrConflict)
		if res.settled, err = s.stageAndSave(ctx, key, claimed, conn, stored, &res); err != nil {
			return res, err
		}
	}
	res.connectionID = conn.ConnectionID
	s.failpoint("after-commit")
	s.audit(ctx, finchconnect.AuditExchanged, conn.ConnectionID, "browser", fs.Kind)
	event := finchconnect.EventConnectionCreated
	if fs.Kind == kindReauth {
		event = finchconnect.EventConnectionReauthenticated
	}
	s.notifyAfter(ctx, event, conn)
	return res, nil
}

// stageAndSave is the slow way to the vault: the sealed connection goes
// into the ledger entry first (the write-ahead), then [Service.save] writes
// it to the vault with retries, settling the entry in the same write. It
// records the entry as it stands in res.staged and the failure kind in
// res.failure. stored says whether the vault holds this connection already
// (see [Service.save]).
func (s *Service) stageAndSave(ctx context.Context, key string, claimed ledgerWrite, conn finchconnect.Connection, stored bool, res *exchanged) (settled bool, err error) {
	ahead := claimed.entry
	ahead.Status, ahead.ConnectionID, ahead.Exchanged = ledgerExchanged, conn.ConnectionID, s.clock.Now().Unix()
	if ahead.Sealed, err = s.store.SealStaged(conn); err != nil {
		s.log.Error("seal a staged token", "connection_id", conn.ConnectionID, "err", err)
	} else if raw := mustJSON(ahead); s.stage(ctx, key, claimed.raw, raw, conn.ConnectionID) {
		res.staged = ledgerWrite{ahead, raw}
	} else if s.settledWith(ctx, key, conn.ConnectionID) {
		// The first write landed and only its answer was lost: the
		// connection is stored and the entry settled. Going on would
		// risk treating a stored token as unsaved if the store failed
		// now (the journal, or a disconnect at Finch).
		return true, nil
	}
	s.failpoint("after-stage")
	settle := settleSwap(key, res.staged, conn.ConnectionID, "")
	if settled, err = s.save(ctx, conn, claimed.entry.Kind, res.staged.entry.Status == ledgerExchanged, stored, settle); err != nil {
		switch {
		case errors.Is(err, ErrSaving):
			res.failure = failSaving
		case errors.Is(err, ErrStoreKept):
			res.failure = failStoreKept
		case errors.Is(err, ErrDisconnected):
			res.failure = failDisconnected
		default:
			res.failure = failStore
		}
	}
	return settled, err
}

// stage writes the write-ahead entry raw over the claimed one, and reports
// whether it did. A failure is logged and the callback goes on: the vault
// write may still succeed.
func (s *Service) stage(ctx context.Context, key string, claimed, raw []byte, connectionID string) bool {
	if err := s.swapLedger(ctx, key, claimed, raw); err != nil {
		s.log.Warn("stage an exchanged token", "connection_id", connectionID, "err", err)
		return false
	}
	return true
}

// follow waits for the ledger entry under key to settle and returns its
// outcome. It refuses to share the outcome with a request whose state or
// browser differs from the first one's. first, if not nil, is the entry as
// the caller has just read it, which saves the first read. An entry its
// claimant gave back unexchanged is errReleased: the caller claims it.
func (s *Service) follow(ctx context.Context, key, stateHash, bHash string, first []byte) (Outcome, error) {
	deadline := s.clock.Now().Add(s.cfg.WaitTimeout)
	poll := 10 * time.Millisecond
	release := func() {}
	defer func() { release() }()
	for {
		release()
		var ch <-chan struct{}
		ch, release = s.waiter(key)
		b := first
		first = nil
		if b == nil {
			var err error
			if b, err = s.backend.Load(ctx, key); err != nil {
				return Outcome{}, fmt.Errorf("%w: read callback ledger: %v", ErrStoreDown, err)
			}
		}
		var e ledgerEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return Outcome{}, fmt.Errorf("connect: decode callback ledger: %v", err)
		}
		if !sameHash(e.State, stateHash) || (e.Browser != "" && !sameHash(e.Browser, bHash)) {
			return Outcome{}, fmt.Errorf("%w: the code arrived with another state", finchconnect.ErrStateMismatch)
		}
		switch e.Status {
		case ledgerDone:
			return Outcome{ConnectionID: e.ConnectionID, ReturnURL: e.ReturnURL, Duplicate: true}, nil
		case ledgerFailed:
			return Outcome{}, failureError(e.Failure)
		case ledgerReleased:
			return Outcome{}, errReleased
		}
		if s.abandoned(e) {
			// The process handling this callback died; finish its work.
			if _, err := s.recoverEntry(ctx, key, b, e); err != nil {
				return Outcome{}, err
			}
			continue
		}
		if s.clock.Now().After(deadline) {
			return Outcome{}, ErrPending
		}
		select {
		case <-ch:
		case <-s.clock.After(poll):
			poll = min(poll*2, 250*time.Millisecond)
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		}
	}
}

// waiter is a channel closed when this replica settles a key, and how many
// followers hold it.
type waiter struct {
	ch chan struct{}
	n  int
}

// waiter returns a channel closed when this replica settles key, and a
// release func to call when the caller stops waiting on it. The last
// release removes the channel, so keys settled on other replicas, or
// followed after they settled, leave nothing behind.
func (s *Service) waiter(key string) (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.waiters[key]
	if !ok {
		w = &waiter{ch: make(chan struct{})}
		s.waiters[key] = w
	}
	w.n++
	return w.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.n--; w.n == 0 && s.waiters[key] == w {
			delete(s.waiters, key)
		}
	}
}

// wake releases this replica's waiters on key.
func (s *Service) wake(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.waiters[key]; ok {
		close(w.ch)
		delete(s.waiters, key)
	}
}

// Failure kinds recorded in the ledger, so that duplicates report the same
// error as the first callback without holding its text.
const (
	failCode     = "code"
	failExchange = "exchange"
	failStore    = "store"
	failSaving   = "saving"
	// failStoreKept: a re-authentication's token could not be saved, and
	// the connection keeps its stored token.
	failStoreKept = "store_kept"
	// failInterrupted marks a callback whose process died while the code
	// was with Finch: the code may or may not have been spent, and it is
	// never sent twice, so the employer must connect again.
	failInterrupted = "interrupted"
	// failDisconnected: a re-authentication whose connection was
	// disconnected (its row deleted) while the code was at Finch. The
	// disconnect wins; the token the exchange returned was disconnected
	// at Finch too.
	failDisconnected = "disconnected"
)

func failureError(kind string) error {
	switch kind {
	case failCode:
		return finchconnect.ErrInvalidCode
	case failStore:
		return ErrStore
	case failStoreKept:
		return ErrStoreKept
	case failSaving:
		return ErrSaving
	case failInterrupted:
		return ErrInterrupted
	case failDisconnected:
		return ErrDisconnected
	default:
		return ErrExchange
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}

// save stores a freshly exchanged connection, retrying briefly: the token
// cannot be fetched from Finch again. If the store stays down, the token
// goes to the local journal (when one is configured), to be replayed into
// the store when it returns, and the user is told the connection is being
// saved. Without a journal a new connection is disconnected at Finch, so
// that no live token is left that nobody holds, and the employer is asked to
// connect again. A connection the vault holds already (stored: a
// re-authentication, or Finch answering a new flow with a known connection)
// is never disconnected, since Finch's /disconnect revokes every token of
// the connection, the stored one too (finch-api.md §4): the new token is
// dropped and the stored one keeps working, or keeps waiting for a
// re-authentication.
//
// When the token is staged in the ledger already, the store has it: the
// recovery loop finishes the write when the store answers again.
//
// A re-authentication (kind reauth) replaces the stored connection and
// never inserts it ([tokenstore.Store.ReplaceSwap]): when the connection
// was disconnected while the code was at Finch, the disconnect wins, and
// the token the exchange returned is disconnected at Finch as well rather
// than left live with no one holding it (ErrDisconnected).
//
// The vault write also settles the ledger entry settle.Key, in the same
// atomic write, when the entry still holds settle.Old; settled says whether
// it did.
func (s *Service) save(ctx context.Context, conn finchconnect.Connection, kind string, staged, stored bool, settle tokenstore.Swap) (settled bool, err error) {
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-s.clock.After(time.Duration(attempt) * 250 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		if kind == kindReauth {
			settled, err = s.store.ReplaceSwap(ctx, conn, settle)
		} else {
			settled, err = s.store.PutSwap(ctx, conn, settle)
		}
		if err == nil {
			return settled, nil
		}
		if errors.Is(err, finchconnect.ErrNotFound) {
			s.disconnectOrphan(ctx, conn)
			return false, fmt.Errorf("%w: %v", ErrDisconnected, err)
		}
	}
	s.log.Error("store a new connection", "connection_id", conn.ConnectionID, "err", err)
	if staged {
		return false, fmt.Errorf("%w: %v", ErrSaving, err)
	}
	if s.cfg.Journal != nil {
		hold := s.cfg.Journal.Hold
		if kind == kindReauth {
			hold = s.cfg.Journal.HoldReplacement // replayed, it never inserts
		}
		jerr := hold(conn, journalTag(settle.Key, kind))
		if jerr == nil {
			return false, fmt.Errorf("%w: %v", ErrSaving, err)
		}
		s.log.Error("journal a new connection", "connection_id", conn.ConnectionID, "err", jerr)
	}
	if stored {
		return false, fmt.Errorf("%w: %v", ErrStoreKept, err)
	}
	if derr := s.finch.Disconnect(ctx, conn.AccessToken); derr != nil {
		s.log.Error("disconnect an unsaved connection", "connection_id", conn.ConnectionID, "err", derr)
	}
	return false, fmt.Errorf("%w: %v", ErrStore, err)
}

// disconnectOrphan disconnects at Finch a token that a re-authentication
// obtained for a connection that was disconnected meanwhile: nothing will
// hold it, so it must not stay live.
func (s *Service) disconnectOrphan(ctx context.Context, conn finchconnect.Connection) {
	s.log.Warn("a re-authenticated connection was disconnected while the code was at Finch; disconnecting the new token too", "connection_id", conn.ConnectionID)
	if err := s.finch.Disconnect(ctx, conn.AccessToken); err != nil && !errors.Is(err, finchconnect.ErrUnauthorized) {
		s.log.Error("disconnect the token of a re-authentication whose connection was disconnected", "connection_id", conn.ConnectionID, "err", err)
	}
}
