package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/records"
	"github.com/finchconnect/finchconnect/syncer"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// syncFlags are serve's settings of the sync engine (docs/sync.md).
type syncFlags struct {
	records string        // the records file; "" is the default, "off" turns sync off
	every   time.Duration // refresh period
}

func (f *syncFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.records, "records", "", "the SQLite file of the synced employer data (default DATA-DIR/records.db with a SQLite -store; "+
		"with Redis or PostgreSQL, name one on each replica's disk to turn sync on); off turns sync off")
	fs.DurationVar(&f.every, "sync-every", 24*time.Hour, "how often each connection's data is synced again (Finch refreshes daily); Finch's data webhooks sync at once")
}

// recordsPath is where the records live, or "" when sync is off.
func (f *syncFlags) recordsPath(store *storeFlags) string {
	switch {
	case f.records == "off":
		return ""
	case f.records != "":
		return strings.TrimPrefix(f.records, "sqlite://")
	case strings.HasPrefix(store.storeURL(), "sqlite://"):
		return filepath.Join(store.dataDir, "records.db")
	}
	return ""
}

// openRecords opens the records store that serve syncs into, if sync is
// on; with Redis or PostgreSQL it is on only with -records.
func (a *app) openRecords(ctx context.Context) error {
	path := a.f.sync.recordsPath(&a.f.store)
	if path == "" {
		if a.f.sync.records != "off" {
			a.logger.Info("sync is off: with a Redis or PostgreSQL store, name a records file with -records to turn it on")
		}
		return nil
	}
	if a.f.sync.every < time.Minute {
		return fmt.Errorf("-sync-every must be at least 1m, not %v", a.f.sync.every)
	}
	rs, err := records.OpenSQLite(ctx, path, a.store.Keyring(), records.Options{})
	if err != nil {
		return fmt.Errorf("cannot open the records file %s: %s", path, plainError(err))
	}
	a.records = rs
	a.onClose(func() { rs.Close() })
	return nil
}

// newScheduler is the sync engine's scheduler over the vault's connected
// connections, publishing data.changed events through the server.
func (a *app) newScheduler() *syncer.Scheduler {
	return &syncer.Scheduler{
		Syncer:  syncer.Syncer{Client: a.fc, Store: a.records, OnCommit: a.srv.PublishChanges},
		Targets: func(ctx context.Context) ([]syncer.Target, error) { return connectedTargets(ctx, a.store) },
		Token: func(ctx context.Context, id string) (finchconnect.Secret, error) {
			c, err := a.store.Get(ctx, id)
			if err != nil {
				return finchconnect.Secret{}, err
			}
			a.lc.audit(ctx, finchconnect.AuditRecord{At: time.Now().UTC(), Action: finchconnect.AuditDecrypted, ConnectionID: id, Actor: "sync", Purpose: "sync the employer's data"})
			return c.AccessToken, nil
		},
		Every:  a.f.sync.every,
		Logger: a.logger.With("component", "sync"),
	}
}

// notify hands an event to the outbox (lifecycle.notify) and, for a
// connection just created or re-authenticated, asks the sync engine for
// its backfill now rather than at its next poll.
func (a *app) notify(ctx context.Context, e finchconnect.Event) error {
	err := a.lc.notify(ctx, e)
	if a.sched != nil && (e.Type == finchconnect.EventConnectionCreated || e.Type == finchconnect.EventConnectionReauthenticated) {
		a.sched.Kick(e.ConnectionID)
	}
	return err
}

// connectedTargets lists every connected connection of the vault.
func connectedTargets(ctx context.Context, st *tokenstore.Store) ([]syncer.Target, error) {
	var out []syncer.Target
	for after := ""; ; {
		conns, next, err := st.List(ctx, tokenstore.Filter{Status: string(finchconnect.StatusConnected), After: after, Limit: 500})
		if err != nil {
			return nil, err
		}
		for _, c := range conns {
			out = append(out, syncer.Target{ConnectionID: c.ConnectionID, Products: c.Products})
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// syncLoops are the sync engine's loops for serve's run group: the
// scheduler, and the sweep that shreds the records of connections gone
// from the vault (a shred that failed at disconnect, or a token deleted
// by the CLI).
func (a *app) syncLoops(g *runGroup) {
	if a.records == nil {
		return
	}
	g.add("sync employer data", a.sched.Run, nil)
	g.add("shred the records of disconnected connections", func(ctx context.Context) error {
		for {
			if n, err := a.srv.ShredOrphans(ctx); err != nil && ctx.Err() == nil {
				a.logger.Warn("shred the records of disconnected connections", "err", err)
			} else if n > 0 {
				a.logger.Info("shredded the records of disconnected connections", "connections", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Minute):
			}
		}
	}, nil)
}

// syncStateCounts counts connections by sync state, for the metrics.
func syncStateCounts(s *syncer.Scheduler) map[string]int {
	n := map[string]int{}
	for _, st := range s.Statuses() {
		n[st.State]++
	}
	return n
}

var errSyncOff = errors.New("sync is off")

// syncStatusCmd shows where each connection's sync stands, from the
// records file: when its last complete sync began, and whether a run is
// open (in progress in a running serve, or interrupted and waiting to
// resume).
type syncStatusCmd struct {
	sf   storeFlags
	sync syncFlags
	json bool
}

func (*syncStatusCmd) spec() cmdSpec {
	return cmdSpec{name: "sync status", env: sharedEnv,
		summary: "Show each connection's sync: its last complete sync, and a run in progress or interrupted."}
}

func (s *syncStatusCmd) flags(fs *flag.FlagSet) {
	s.sf.register(fs)
	fs.StringVar(&s.sync.records, "records", "", "the records file serve syncs into (default DATA-DIR/records.db with a SQLite -store)")
	fs.BoolVar(&s.json, "json", false, "print JSON lines instead of a table")
}

func (s *syncStatusCmd) run(ctx context.Context, c *cli, _ []string) error {
	path := s.sync.recordsPath(&s.sf)
	if path == "" {
		return fmt.Errorf("%w: with a Redis or PostgreSQL store, name the records file serve uses with -records", errSyncOff)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no records file at %s: serve creates it when it first syncs (or pass -records with the file serve uses)", path)
	}
	st, closeVault, err := s.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeVault()
	rs, err := records.OpenSQLite(ctx, path, st.Keyring(), records.Options{})
	if err != nil {
		return fmt.Errorf("cannot open the records file %s: %s", path, plainError(err))
	}
	defer rs.Close()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if !s.json {
		fmt.Fprintln(tw, "CONNECTION\tCUSTOMER\tSTATUS\tLAST COMPLETE SYNC\tRUN")
	}
	enc := json.NewEncoder(c.stdout)
	for after := ""; ; {
		conns, next, err := st.List(ctx, tokenstore.Filter{After: after, Limit: 500})
		if err != nil {
			return fmt.Errorf("cannot list the connections: %s", plainError(err))
		}
		for _, conn := range conns {
			state, err := rs.State(ctx, conn.ConnectionID)
			if err != nil {
				return fmt.Errorf("cannot read the records file: %s", plainError(err))
			}
			run := "-"
			if state.Open {
				run = "open (in progress, or interrupted: resumes)"
			}
			if s.json {
				if err := enc.Encode(map[string]any{"connection_id": conn.ConnectionID, "customer_id": conn.CustomerID, "status": conn.Status,
					"last_complete_sync": nullTime(state.LastCommitted), "run_open": state.Open}); err != nil {
					return err
				}
				continue
			}
			last := "never"
			if !state.LastCommitted.IsZero() {
				last = state.LastCommitted.Format("2006-01-02 15:04 MST")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", conn.ConnectionID, conn.CustomerID, conn.Status, last, run)
		}
		if next == "" {
			break
		}
		after = next
	}
	if s.json {
		return nil
	}
	return tw.Flush()
}

// nullTime is t, or nil for the zero time (JSON null).
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
