package syncer

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/records"
)

// Target is one connection for the [Scheduler] to keep synced.
type Target struct {
	ConnectionID string
	Products     []string // the products the connection grants
}

// The states of a connection's sync, in [Status].
const (
	StateNew     = "new"     // never synced: next in line for its backfill
	StateSyncing = "syncing" // a run is going on
	StateSynced  = "synced"  // the last run committed
	StateWaiting = "waiting" // Finch is still fetching the data (202), or no rate budget: retried later
	StateStopped = "stopped" // the connection needs re-authentication, or its token was refused
	StateFailed  = "failed"  // another error: retried later
)

// Status is where one connection's sync stands. Reason is a short,
// fixed phrase (never Finch's message, never data).
type Status struct {
	ConnectionID  string    `json:"connection_id"`
	State         string    `json:"state"`
	Reason        string    `json:"reason,omitempty"`
	LastCommitted time.Time `json:"last_committed,omitzero"`
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	NextAt        time.Time `json:"next_at,omitzero"`
	Changes       int       `json:"changes"` // committed by the last run
}

// Scheduler keeps every connection's local copy fresh: each connection
// that has never been synced first (the backfill), then each one again
// once Every has passed since its last committed run (Finch refreshes
// its data daily), and any connection at once when Kick is called (a
// Finch data webhook). A failed run is tried again after Retry; a run
// stopped by a re-authentication waits for Every or a Kick. Runs go one
// at a time, in the budget's background lane (see [Syncer.Run]), so sync
// never competes with the reads people wait for.
//
// What a run has done is in the records store (its checkpoints and
// committed runs), so a restarted process resumes: the scheduler itself
// keeps only its plan in memory.
type Scheduler struct {
	// Syncer is the template of every run: Client, Store, PageSize and
	// OnCommit. Individuals and SSN are set per target from its
	// products.
	Syncer Syncer
	// Targets lists the connections to keep synced (those connected).
	Targets func(ctx context.Context) ([]Target, error)
	// Token opens a connection's token, just before its run (so that
	// tokens are decrypted only for the run that uses them).
	Token func(ctx context.Context, conn string) (finchconnect.Secret, error)
	// Every is the refresh period, default 24 h; Retry the wait after a
	// failed run, default 15 min; Poll how often Run looks again for
	// new connections, default 1 min.
	Every, Retry, Poll time.Duration
	Clock              clock.Clock  // default the real clock
	Logger             *slog.Logger // default slog.Default()

	mu     sync.Mutex
	status map[string]Status
	kicked map[string]bool
	wake   chan struct{}
}

func (s *Scheduler) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status, s.kicked, s.wake = map[string]Status{}, map[string]bool{}, make(chan struct{}, 1)
	}
}

func (s *Scheduler) clock() clock.Clock {
	if s.Clock == nil {
		return clock.Real()
	}
	return s.Clock
}

func (s *Scheduler) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Kick asks for conn to be synced as soon as possible, whatever its
// schedule (for Finch's data webhooks).
func (s *Scheduler) Kick(conn string) {
	s.init()
	s.mu.Lock()
	s.kicked[conn] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status returns conn's status, and false if the scheduler has not seen
// it yet.
func (s *Scheduler) Status(conn string) (Status, bool) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.status[conn]
	return st, ok
}

// Statuses returns every connection's status, by connection id.
func (s *Scheduler) Statuses() []Status {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.status))
	for _, st := range s.status {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.ConnectionID, b.ConnectionID) })
	return out
}

// Run runs passes until ctx ends: after each, it sleeps until the next
// connection is due, Poll at most, or until a Kick.
func (s *Scheduler) Run(ctx context.Context) error {
	s.init()
	for {
		next, err := s.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.logger().Warn("sync: could not list the connections to sync", "err", err)
		}
		wait := cmp.Or(s.Poll, time.Minute)
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.clock().Now()), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-s.clock().After(wait):
		}
	}
}

// Pass syncs every connection that is due now, the never-synced ones
// first, and returns when the next one will be due (zero if none is
// planned).
func (s *Scheduler) Pass(ctx context.Context) (time.Time, error) {
	s.init()
	targets, err := s.Targets(ctx)
	if err != nil {
		return time.Time{}, err
	}
	type due struct {
		t    Target
		last time.Time
	}
	var todo []due
	var next time.Time
	plan := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	live := map[string]bool{}
	for _, t := range targets {
		live[t.ConnectionID] = true
		rs, err := s.Syncer.Store.State(ctx, t.ConnectionID)
		if err != nil {
			return time.Time{}, err
		}
		now := s.clock().Now()
		s.mu.Lock()
		st, seen := s.status[t.ConnectionID]
		if !seen {
			st = Status{ConnectionID: t.ConnectionID, State: StateNew, LastCommitted: rs.LastCommitted}
			if !rs.LastCommitted.IsZero() {
				st.State = StateSynced
			}
		}
		if st.NextAt.IsZero() || st.State == StateSynced || st.State == StateNew {
			st.NextAt = now // never synced, or an interrupted run: now
			if !rs.LastCommitted.IsZero() && !rs.Open {
				st.NextAt = rs.LastCommitted.Add(cmp.Or(s.Every, 24*time.Hour))
			}
		}
		kicked := s.kicked[t.ConnectionID]
		s.status[t.ConnectionID] = st
		s.mu.Unlock()
		if kicked || !now.Before(st.NextAt) {
			todo = append(todo, due{t, rs.LastCommitted})
		} else {
			plan(st.NextAt)
		}
	}
	s.mu.Lock()
	for id := range s.status {
		if !live[id] {
			delete(s.status, id) // disconnected: nothing to show or plan
			delete(s.kicked, id)
		}
	}
	s.mu.Unlock()
	// Backfills first (never committed), then the stalest.
	slices.SortStableFunc(todo, func(a, b due) int { return a.last.Compare(b.last) })
	for _, d := range todo {
		if ctx.Err() != nil {
			return next, nil
		}
		plan(s.runOne(ctx, d.t))
	}
	return next, nil
}

// runOne syncs t and returns when it is next due.
func (s *Scheduler) runOne(ctx context.Context, t Target) time.Time {
	c := s.clock()
	s.mu.Lock()
	delete(s.kicked, t.ConnectionID)
	st := s.status[t.ConnectionID]
	st.State, st.Reason, st.LastAttempt = StateSyncing, "", c.Now()
	s.status[t.ConnectionID] = st
	s.mu.Unlock()

	y := s.Syncer
	y.Individuals = slices.Contains(t.Products, "individual")
	y.SSN = slices.Contains(t.Products, "ssn")
	y.NoEmployments = !slices.Contains(t.Products, "employment")
	token, err := s.Token(ctx, t.ConnectionID)
	var changes []records.Change
	if err == nil {
		changes, err = y.Run(ctx, t.ConnectionID, token)
	}

	now := c.Now()
	every, retry := cmp.Or(s.Every, 24*time.Hour), cmp.Or(s.Retry, 15*time.Minute)
	var stop *StopError
	switch {
	case err == nil:
		st.State, st.Changes = StateSynced, len(changes)
		if rs, rerr := s.Syncer.Store.State(ctx, t.ConnectionID); rerr == nil {
			st.LastCommitted = rs.LastCommitted
		}
		st.NextAt = st.LastCommitted.Add(every)
	case ctx.Err() != nil:
		st.State, st.NextAt = StateNew, now // shutting down: the run stays open, to resume
	case errors.Is(err, ErrDataSyncInProgress):
		st.State, st.Reason, st.NextAt = StateWaiting, "Finch is still fetching the employer's data", now.Add(retry)
	case errors.Is(err, budget.ErrNoBudget):
		st.State, st.Reason, st.NextAt = StateWaiting, "waiting for Finch rate budget", now.Add(retry)
	case errors.As(err, &stop):
		st.State, st.NextAt = StateStopped, now.Add(every)
		st.Reason = "the connection needs re-authentication"
		if stop.Reason != "reauth" {
			st.Reason = "Finch refused the connection's token"
		}
	default:
		st.State, st.Reason, st.NextAt = StateFailed, "the sync failed; see the server log", now.Add(retry)
	}
	if err != nil && ctx.Err() == nil {
		s.logger().Warn("sync: run did not complete", "connection_id", t.ConnectionID, "state", st.State, "err", err)
	}
	s.mu.Lock()
	if _, live := s.status[t.ConnectionID]; live {
		s.status[t.ConnectionID] = st
	}
	s.mu.Unlock()
	return st.NextAt
}
