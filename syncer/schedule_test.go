package syncer

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/records"
)

// scheduled is a Scheduler over one sandbox employer, on a fake clock
// shared with its records store, counting its committed runs.
type scheduled struct {
	*Scheduler
	clock   *clock.Fake
	commits atomic.Int64
	token   finchconnect.Secret
	conn    string
}

func newScheduled(t *testing.T) *scheduled {
	t.Helper()
	e := newEnv(t, 5)
	c := clock.NewFake(wall)
	k, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(k)
	if err != nil {
		t.Fatal(err)
	}
	st, err := records.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "r.db"), kr, records.Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &scheduled{clock: c, token: e.token, conn: e.conn}
	s.Scheduler = &Scheduler{
		Syncer: Syncer{Client: e.fc, Store: st, OnCommit: func(context.Context, string, []records.Change) error {
			s.commits.Add(1)
			return nil
		}},
		Targets: func(context.Context) ([]Target, error) {
			return []Target{{ConnectionID: s.conn, Products: []string{"company", "directory", "individual"}}}, nil
		},
		Token: func(context.Context, string) (finchconnect.Secret, error) { return s.token, nil },
		Every: 24 * time.Hour, Retry: 15 * time.Minute, Clock: c,
	}
	return s
}

func (s *scheduled) pass(t *testing.T) Status {
	t.Helper()
	if _, err := s.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, ok := s.Status(s.conn)
	if !ok {
		t.Fatal("no status for the target after a pass")
	}
	return st
}

// TestScheduler_Cadence: a new connection is backfilled at once; it is
// not synced again before Every has passed, and is after; a Kick syncs
// it at once whatever the schedule.
func TestScheduler_Cadence(t *testing.T) {
	s := newScheduled(t)
	if st, ok := s.Status(s.conn); ok {
		t.Fatalf("status before any pass = %+v", st)
	}
	st := s.pass(t)
	if st.State != StateSynced || !st.LastCommitted.Equal(wall) || st.Changes == 0 || !st.NextAt.Equal(wall.Add(24*time.Hour)) {
		t.Fatalf("after the backfill: %+v; want synced at %v with changes, next in 24 h", st, wall)
	}
	if s.commits.Load() != 1 {
		t.Fatalf("%d commits after the backfill, want 1", s.commits.Load())
	}

	s.clock.Advance(23 * time.Hour)
	if st := s.pass(t); !st.LastCommitted.Equal(wall) {
		t.Fatalf("a pass 23 h later synced again: %+v", st)
	}

	s.clock.Advance(time.Hour)
	st = s.pass(t)
	if want := wall.Add(24 * time.Hour); st.State != StateSynced || !st.LastCommitted.Equal(want) {
		t.Fatalf("a pass 24 h later: %+v; want a run committed at %v", st, want)
	}
	if st.Changes != 0 {
		t.Errorf("an unchanged employer's re-sync reported %d changes", st.Changes)
	}

	s.clock.Advance(time.Minute)
	s.Kick(s.conn)
	st = s.pass(t)
	if want := wall.Add(24*time.Hour + time.Minute); !st.LastCommitted.Equal(want) {
		t.Fatalf("a pass after Kick: %+v; want a run committed at %v", st, want)
	}
	s.clock.Advance(time.Minute)
	if st := s.pass(t); st.LastCommitted.Equal(wall.Add(24*time.Hour + 2*time.Minute)) {
		t.Fatal("a Kick was kept after its run: the next pass synced again")
	}
}

// TestScheduler_Failures: a refused token stops the connection's sync
// with a reason that says so (and no Finch message), until Every has
// passed; a failure is retried after Retry, not before.
func TestScheduler_Failures(t *testing.T) {
	s := newScheduled(t)
	good := s.token
	s.token = finchconnect.NewSecret("not-a-token")
	st := s.pass(t)
	if st.State != StateStopped || st.Reason != "Finch refused the connection's token" || !st.NextAt.Equal(wall.Add(24*time.Hour)) {
		t.Fatalf("with a refused token: %+v; want stopped, its reason, next in 24 h", st)
	}
	s.token = good
	s.clock.Advance(time.Hour)
	if st := s.pass(t); st.State != StateStopped {
		t.Fatalf("a stopped connection was synced again before Every: %+v", st)
	}
	s.Kick(s.conn) // re-authenticated: the app (or a webhook) kicks it
	if st := s.pass(t); st.State != StateSynced {
		t.Fatalf("after a Kick with a good token: %+v; want synced", st)
	}
}

// TestScheduler_Run: Run syncs, sleeps on the clock until the next run is
// due, and ends with its context.
func TestScheduler_Run(t *testing.T) {
	s := newScheduled(t)
	s.Poll = 48 * time.Hour // so that only the schedule wakes it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitAsleep := func() {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			n, started := s.clock.Waiting()
			if n > 0 {
				return
			}
			select {
			case <-started:
			case <-deadline:
				t.Fatal("Run never went to sleep")
			}
		}
	}
	waitAsleep()
	if s.commits.Load() != 1 {
		t.Fatalf("%d commits before Run first slept, want the backfill's 1", s.commits.Load())
	}
	s.clock.Advance(24 * time.Hour)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) { // polling for a condition, not waiting out a TTL
		if st, _ := s.Status(s.conn); st.State == StateSynced && st.LastCommitted.Equal(wall.Add(24*time.Hour)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not sync again when the connection fell due")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after its context ended", err)
	}
}
