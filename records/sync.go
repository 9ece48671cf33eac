package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sync is one sync run of one connection: pages are staged into it, then
// Commit turns the differences into changes at once.
type Sync struct {
	s    *Store
	conn string
	id   int64
	key  *dataKey
}

// ID is the run's id, recorded on its changes.
func (y *Sync) ID() int64 { return y.id }

// Begin opens a sync run for conn, or returns conn's open run (resumed is
// then true) so a sync that crashed carries on from its checkpoints.
func (s *Store) Begin(ctx context.Context, conn string) (y *Sync, resumed bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("records: %v", err)
	}
	defer tx.Rollback()
	key, err := s.loadKey(ctx, tx, conn, true)
	if err != nil {
		return nil, false, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT sync_id FROM sync_runs WHERE connection_id = ? AND state = 'open'`, conn).Scan(&id)
	switch {
	case err == nil:
		resumed = true
	case errors.Is(err, sql.ErrNoRows):
		res, err := tx.ExecContext(ctx, `INSERT INTO sync_runs (connection_id, started_at, state) VALUES (?, ?, 'open')`,
			conn, s.clock.Now().UnixNano())
		if err != nil {
			return nil, false, fmt.Errorf("records: %v", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return nil, false, fmt.Errorf("records: %v", err)
		}
	default:
		return nil, false, fmt.Errorf("records: %v", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("records: %v", err)
	}
	return &Sync{s: s, conn: conn, id: id, key: key}, resumed, nil
}

// Checkpoint is where the listing of one product stands in a run.
type Checkpoint struct {
	Next string // the page to fetch next (opaque to the store)
	Done bool   // the product's listing is complete
}

// Checkpoints returns the run's checkpoint per product.
func (y *Sync) Checkpoints(ctx context.Context) (map[string]Checkpoint, error) {
	rows, err := y.s.db.QueryContext(ctx, `SELECT product, next, done FROM checkpoints WHERE sync_id = ?`, y.id)
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	defer rows.Close()
	m := map[string]Checkpoint{}
	for rows.Next() {
		var p string
		var c Checkpoint
		if err := rows.Scan(&p, &c.Next, &c.Done); err != nil {
			return nil, fmt.Errorf("records: %v", err)
		}
		m[p] = c
	}
	return m, rows.Err()
}

// Stage writes one fetched page of product: its items, sealed, and the
// product's new checkpoint, in one transaction. Staging an item again
// (a page fetched twice after a crash) replaces it.
func (y *Sync) Stage(ctx context.Context, product string, items []Item, cp Checkpoint) error {
	type row struct {
		kind     Kind
		id       string
		mac, box []byte
	}
	rows := make([]row, 0, len(items))
	for _, it := range items {
		if it.Kind == "" || it.ID == "" {
			return errors.New("records: item without kind or id")
		}
		c, err := Canonical(it.Body)
		if err != nil {
			return err
		}
		rows = append(rows, row{it.Kind, it.ID, y.key.mac(c), y.key.aead.Seal(nil, nil, c, recordAAD(y.conn, it.Kind, it.ID))})
	}
	tx, err := y.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO staged (sync_id, kind, record_id, mac, body) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sync_id, kind, record_id) DO UPDATE SET mac = excluded.mac, body = excluded.body`,
			y.id, string(r.kind), r.id, r.mac, r.box); err != nil {
			return fmt.Errorf("records: %v", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (sync_id, product, next, done) VALUES (?, ?, ?, ?)
		ON CONFLICT (sync_id, product) DO UPDATE SET next = excluded.next, done = excluded.done`,
		y.id, product, cp.Next, cp.Done); err != nil {
		return fmt.Errorf("records: %v", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("records: %v", err)
	}
	return nil
}

// begin opens a transaction on the run, or returns ErrClosed if the run
// is no longer open (committed, abandoned or shredded).
func (y *Sync) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := y.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	var state string
	err = tx.QueryRowContext(ctx, `SELECT state FROM sync_runs WHERE sync_id = ?`, y.id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && state != "open") {
		err = ErrClosed
	} else if err != nil {
		err = fmt.Errorf("records: %v", err)
	}
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// Abandon closes the run without applying it: its staged pages are
// dropped and no change is recorded.
func (y *Sync) Abandon(ctx context.Context) error {
	tx, err := y.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := y.close(ctx, tx, "abandoned"); err != nil {
		return err
	}
	return tx.Commit()
}

func (y *Sync) close(ctx context.Context, tx *sql.Tx, state string) error {
	for _, q := range []string{
		`DELETE FROM staged WHERE sync_id = ?1`,
		`DELETE FROM checkpoints WHERE sync_id = ?1`,
		`UPDATE sync_runs SET state = '` + state + `' WHERE sync_id = ?1`,
	} {
		if _, err := tx.ExecContext(ctx, q, y.id); err != nil {
			return fmt.Errorf("records: %v", err)
		}
	}
	return nil
}

// Commit applies the run: every staged record whose content differs from
// the stored copy, or that is new, is written and recorded as modified or
// added; every stored record of a kind in complete that the run did not
// stage is deleted and recorded as removed. All of it, with the run's
// closing, is one transaction, so the changes appear in the feed at once.
// Commit returns ErrIncomplete if any product's checkpoint is not done.
func (y *Sync) Commit(ctx context.Context, complete []Kind) ([]Change, error) {
	tx, err := y.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var undone int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM checkpoints WHERE sync_id = ? AND done = 0`, y.id).Scan(&undone); err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	if undone > 0 {
		return nil, ErrIncomplete
	}
	var changes []Change
	collect := func(op Op, q string, args ...any) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("records: %v", err)
		}
		defer rows.Close()
		for rows.Next() {
			c := Change{Op: op, SyncID: y.id}
			if err := rows.Scan(&c.Kind, &c.RecordID); err != nil {
				return fmt.Errorf("records: %v", err)
			}
			changes = append(changes, c)
		}
		return rows.Err()
	}
	if err := collect(Added, `SELECT s.kind, s.record_id FROM staged s WHERE s.sync_id = ?1 AND NOT EXISTS
		(SELECT 1 FROM records r WHERE r.connection_id = ?2 AND r.kind = s.kind AND r.record_id = s.record_id)`, y.id, y.conn); err != nil {
		return nil, err
	}
	if err := collect(Modified, `SELECT s.kind, s.record_id FROM staged s JOIN records r
		ON r.connection_id = ?2 AND r.kind = s.kind AND r.record_id = s.record_id
		WHERE s.sync_id = ?1 AND r.mac != s.mac`, y.id, y.conn); err != nil {
		return nil, err
	}
	if len(complete) > 0 {
		args := []any{y.id, y.conn}
		ph := make([]string, len(complete))
		for i, k := range complete {
			args = append(args, string(k))
			ph[i] = "?"
		}
		if err := collect(Removed, `SELECT r.kind, r.record_id FROM records r WHERE r.connection_id = ?2
			AND r.kind IN (`+strings.Join(ph, ",")+`) AND NOT EXISTS
			(SELECT 1 FROM staged s WHERE s.sync_id = ?1 AND s.kind = r.kind AND s.record_id = r.record_id)`, args...); err != nil {
			return nil, err
		}
	}
	sort.Slice(changes, func(i, j int) bool {
		if changes[i].Kind != changes[j].Kind {
			return changes[i].Kind < changes[j].Kind
		}
		return changes[i].RecordID < changes[j].RecordID
	})
	var seq int64
	err = tx.QueryRowContext(ctx, `SELECT last_seq FROM feed_heads WHERE connection_id = ?`, y.conn).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("records: %v", err)
	}
	now := y.s.clock.Now().UTC()
	for i := range changes {
		seq++
		c := &changes[i]
		c.Seq, c.At = seq, now
		if _, err := tx.ExecContext(ctx, `INSERT INTO changes (connection_id, seq, sync_id, kind, record_id, op, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			y.conn, c.Seq, y.id, string(c.Kind), c.RecordID, string(c.Op), now.UnixNano()); err != nil {
			return nil, fmt.Errorf("records: %v", err)
		}
		if c.Op == Removed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM records WHERE connection_id = ? AND kind = ? AND record_id = ?`,
				y.conn, string(c.Kind), c.RecordID); err != nil {
				return nil, fmt.Errorf("records: %v", err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO records (connection_id, kind, record_id, mac, body)
		SELECT ?2, s.kind, s.record_id, s.mac, s.body FROM staged s WHERE s.sync_id = ?1 AND NOT EXISTS
		(SELECT 1 FROM records r WHERE r.connection_id = ?2 AND r.kind = s.kind AND r.record_id = s.record_id AND r.mac = s.mac)
		ON CONFLICT (connection_id, kind, record_id) DO UPDATE SET mac = excluded.mac, body = excluded.body`, y.id, y.conn); err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO feed_heads (connection_id, last_seq) VALUES (?, ?)
		ON CONFLICT (connection_id) DO UPDATE SET last_seq = excluded.last_seq`, y.conn, seq); err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	if err := y.close(ctx, tx, "committed"); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	return changes, nil
}

// RunState is where a connection's syncs stand, for scheduling and status.
type RunState struct {
	// LastCommitted is when the last committed run began (zero if none
	// committed yet): the data is at least as fresh as that.
	LastCommitted time.Time
	// Open is true while a run is open (in progress, or interrupted and
	// waiting to resume).
	Open bool
}

// State returns conn's RunState.
func (s *Store) State(ctx context.Context, conn string) (RunState, error) {
	var st RunState
	var last sql.NullInt64
	var open int
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT MAX(started_at) FROM sync_runs WHERE connection_id = ?1 AND state = 'committed'),
		(SELECT COUNT(*) FROM sync_runs WHERE connection_id = ?1 AND state = 'open')`, conn).Scan(&last, &open)
	if err != nil {
		return st, fmt.Errorf("records: %v", err)
	}
	if last.Valid {
		st.LastCommitted = time.Unix(0, last.Int64).UTC()
	}
	st.Open = open > 0
	return st, nil
}
