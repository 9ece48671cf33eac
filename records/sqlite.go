package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"

	// The driver registers itself as "sqlite".
	_ "modernc.org/sqlite"
)

// Options configure a Store. The zero value is the default.
type Options struct {
	// Clock stamps sync runs and changes; nil means the real clock.
	Clock clock.Clock
}

// Store is a SQLite records store. Its methods are safe for concurrent use;
// writes are serialized on one connection.
type Store struct {
	db    *sql.DB
	kr    *keyring.Keyring
	clock clock.Clock

	// afterKeyDestroyed, if set (tests only), runs in Shred between
	// destroying the data key and purging the records.
	afterKeyDestroyed func()
}

const schema = `
CREATE TABLE IF NOT EXISTS data_keys (
	connection_id TEXT PRIMARY KEY,
	key_id INTEGER NOT NULL,
	sealed BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS records (
	connection_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	record_id TEXT NOT NULL,
	mac BLOB NOT NULL,
	body BLOB NOT NULL,
	PRIMARY KEY (connection_id, kind, record_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_runs (
	sync_id INTEGER PRIMARY KEY,
	connection_id TEXT NOT NULL,
	started_at INTEGER NOT NULL,
	state TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS sync_runs_open ON sync_runs (connection_id) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS staged (
	sync_id INTEGER NOT NULL,
	kind TEXT NOT NULL,
	record_id TEXT NOT NULL,
	mac BLOB NOT NULL,
	body BLOB NOT NULL,
	PRIMARY KEY (sync_id, kind, record_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
	sync_id INTEGER NOT NULL,
	product TEXT NOT NULL,
	next TEXT NOT NULL,
	done INTEGER NOT NULL,
	PRIMARY KEY (sync_id, product)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_heads (
	connection_id TEXT PRIMARY KEY,
	last_seq INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS changes (
	connection_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	sync_id INTEGER NOT NULL,
	kind TEXT NOT NULL,
	record_id TEXT NOT NULL,
	op TEXT NOT NULL,
	at INTEGER NOT NULL,
	PRIMARY KEY (connection_id, seq)
) STRICT, WITHOUT ROWID;
`

// OpenSQLite opens (creating if need be) the records store at path. kr
// seals the connections' data keys.
func OpenSQLite(ctx context.Context, path string, kr *keyring.Keyring, opts Options) (*Store, error) {
	if kr == nil {
		return nil, errors.New("records: nil keyring")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	// secure_delete zeroes deleted content, so a shredded data key does not
	// linger in free pages; synchronous(FULL) makes a staged page durable
	// before Stage returns.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "secure_delete(ON)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: abs}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("records: schema: %v", err)
	}
	c := opts.Clock
	if c == nil {
		c = clock.Real()
	}
	return &Store{db: db, kr: kr, clock: c}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// loadKey opens conn's data key; with create, it makes one if there is none.
func (s *Store) loadKey(ctx context.Context, q queryer, conn string, create bool) (*dataKey, error) {
	var sealed []byte
	err := q.QueryRowContext(ctx, `SELECT sealed FROM data_keys WHERE connection_id = ?`, conn).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		if !create {
			return nil, ErrNotFound
		}
		material := newDataKeyMaterial()
		sealed, err = s.kr.Seal(material, dataKeyAAD(conn))
		if err != nil {
			return nil, err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO data_keys (connection_id, key_id, sealed) VALUES (?, ?, ?)`,
			conn, s.kr.PrimaryID(), sealed); err != nil {
			return nil, fmt.Errorf("records: %v", err)
		}
		return openDataKey(material)
	}
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	material, err := s.kr.Open(sealed, dataKeyAAD(conn))
	if err != nil {
		return nil, fmt.Errorf("records: data key: %w", err)
	}
	return openDataKey(material)
}

// Rewrap re-seals under the keyring's primary key every data key sealed
// under another key, and returns how many it re-sealed. Records are not
// touched.
func (s *Store) Rewrap(ctx context.Context) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("records: %v", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT connection_id, sealed FROM data_keys WHERE key_id != ?`, s.kr.PrimaryID())
	if err != nil {
		return 0, fmt.Errorf("records: %v", err)
	}
	type rewrap struct {
		conn   string
		sealed []byte
	}
	var todo []rewrap
	for rows.Next() {
		var r rewrap
		if err := rows.Scan(&r.conn, &r.sealed); err != nil {
			rows.Close()
			return 0, fmt.Errorf("records: %v", err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("records: %v", err)
	}
	for _, r := range todo {
		material, err := s.kr.Open(r.sealed, dataKeyAAD(r.conn))
		if err != nil {
			return 0, fmt.Errorf("records: data key: %w", err)
		}
		sealed, err := s.kr.Seal(material, dataKeyAAD(r.conn))
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE data_keys SET key_id = ?, sealed = ? WHERE connection_id = ?`,
			s.kr.PrimaryID(), sealed, r.conn); err != nil {
			return 0, fmt.Errorf("records: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("records: %v", err)
	}
	return len(todo), nil
}

// Shred makes conn's records unreadable at once, by destroying its data
// key (and checkpointing the WAL so no copy of the sealed key remains in
// it), then purges its records, runs and feed. It is idempotent. The
// feed's sequence number is kept (it is not personal), so changes of a
// later sync of the same connection id continue after the old cursor.
func (s *Store) Shred(ctx context.Context, conn string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM data_keys WHERE connection_id = ?`, conn); err != nil {
		return fmt.Errorf("records: shred: %v", err)
	}
	if err := s.truncateWAL(ctx); err != nil {
		return err
	}
	if s.afterKeyDestroyed != nil {
		s.afterKeyDestroyed()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("records: shred: %v", err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM staged WHERE sync_id IN (SELECT sync_id FROM sync_runs WHERE connection_id = ?1)`,
		`DELETE FROM checkpoints WHERE sync_id IN (SELECT sync_id FROM sync_runs WHERE connection_id = ?1)`,
		`DELETE FROM sync_runs WHERE connection_id = ?1`,
		`DELETE FROM records WHERE connection_id = ?1`,
		`DELETE FROM changes WHERE connection_id = ?1`,
		// feed_heads stays: a connection that syncs again continues the
		// sequence, so an app's old cursor never skips its new changes.
	} {
		if _, err := tx.ExecContext(ctx, q, conn); err != nil {
			return fmt.Errorf("records: shred: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("records: shred: %v", err)
	}
	return s.truncateWAL(ctx)
}

// truncateWAL checkpoints the WAL into the database and truncates it, so
// no older copy of a deleted page survives in it. A reader in another
// process can keep the checkpoint from finishing; SQLite reports that in
// the result row, not as an error, and it is an error here: the data key
// is deleted, and a second Shred finishes the job.
func (s *Store) truncateWAL(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return fmt.Errorf("records: shred: checkpoint: %v", err)
	}
	if busy != 0 {
		return errors.New("records: shred: a reader blocked the WAL checkpoint; the data key is deleted, call Shred again to clear the WAL")
	}
	return nil
}

// Get returns the body (canonical JSON) of one record.
func (s *Store) Get(ctx context.Context, conn string, kind Kind, id string) ([]byte, error) {
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT body FROM records WHERE connection_id = ? AND kind = ? AND record_id = ?`,
		conn, string(kind), id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	k, err := s.loadKey(ctx, s.db, conn, false)
	if err != nil {
		return nil, err
	}
	body, err := k.aead.Open(nil, nil, sealed, recordAAD(conn, kind, id))
	if err != nil {
		return nil, errors.New("records: record failed to open")
	}
	return body, nil
}

// IDs returns the ids of conn's records of one kind, in order.
func (s *Store) IDs(ctx context.Context, conn string, kind Kind) ([]string, error) {
	return s.strings(ctx, `SELECT record_id FROM records WHERE connection_id = ? AND kind = ? ORDER BY record_id`, conn, string(kind))
}

// strings runs a query of one text column and returns its values.
func (s *Store) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("records: %v", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Change is one entry of the change feed.
type Change struct {
	Seq      int64
	SyncID   int64
	Kind     Kind
	RecordID string
	Op       Op
	At       time.Time
}

// ChangePage is one page of the change feed.
type ChangePage struct {
	Changes    []Change
	NextCursor string // pass to Changes for what follows; equals the cursor given when there is nothing new
	HasMore    bool
}

// Changes returns up to limit of conn's changes after cursor ("" is the
// start), in order.
func (s *Store) Changes(ctx context.Context, conn, cursor string, limit int) (ChangePage, error) {
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return ChangePage{}, ErrBadCursor
		}
		after = n
	}
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, sync_id, kind, record_id, op, at FROM changes
		WHERE connection_id = ? AND seq > ? ORDER BY seq LIMIT ?`, conn, after, limit+1)
	if err != nil {
		return ChangePage{}, fmt.Errorf("records: %v", err)
	}
	defer rows.Close()
	var p ChangePage
	for rows.Next() {
		var c Change
		var at int64
		if err := rows.Scan(&c.Seq, &c.SyncID, &c.Kind, &c.RecordID, &c.Op, &at); err != nil {
			return ChangePage{}, fmt.Errorf("records: %v", err)
		}
		c.At = time.Unix(0, at).UTC()
		p.Changes = append(p.Changes, c)
	}
	if err := rows.Err(); err != nil {
		return ChangePage{}, fmt.Errorf("records: %v", err)
	}
	if len(p.Changes) > limit {
		p.Changes, p.HasMore = p.Changes[:limit], true
	}
	p.NextCursor = strconv.FormatInt(after, 10)
	if n := len(p.Changes); n > 0 {
		p.NextCursor = strconv.FormatInt(p.Changes[n-1].Seq, 10)
	}
	return p, nil
}

// List returns up to limit of conn's records of one kind whose ids follow
// after ("" is the start), in id order, opened, and the id to pass as after
// for the next page ("" when there is none). A shredded or unknown
// connection has no records.
func (s *Store) List(ctx context.Context, conn string, kind Kind, after string, limit int) ([]Item, string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT record_id, body FROM records WHERE connection_id = ? AND kind = ? AND record_id > ?
		ORDER BY record_id LIMIT ?`, conn, string(kind), after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("records: %v", err)
	}
	type sealedRow struct {
		id  string
		box []byte
	}
	var sealed []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.id, &r.box); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("records: %v", err)
		}
		sealed = append(sealed, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("records: %v", err)
	}
	next := ""
	if len(sealed) > limit {
		sealed = sealed[:limit]
		next = sealed[limit-1].id
	}
	if len(sealed) == 0 {
		return nil, "", nil
	}
	k, err := s.loadKey(ctx, s.db, conn, false)
	if errors.Is(err, ErrNotFound) {
		// Rows without a data key: a Shred cut short between its two
		// steps. They can never be opened; they are not there.
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	items := make([]Item, len(sealed))
	for i, r := range sealed {
		body, err := k.aead.Open(nil, nil, r.box, recordAAD(conn, kind, r.id))
		if err != nil {
			return nil, "", errors.New("records: record failed to open")
		}
		items[i] = Item{Kind: kind, ID: r.id, Body: body}
	}
	return items, next, nil
}

// Connections returns, in order, the ids of the connections the store
// holds anything readable or purgeable for (a data key, records, runs or
// changes), so that a sweep can shred those whose connection is gone.
func (s *Store) Connections(ctx context.Context) ([]string, error) {
	return s.strings(ctx, `SELECT connection_id FROM data_keys
		UNION SELECT connection_id FROM records
		UNION SELECT connection_id FROM sync_runs
		UNION SELECT connection_id FROM changes
		ORDER BY 1`)
}
