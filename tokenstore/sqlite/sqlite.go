package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"

	// The driver registers itself as "sqlite" from its own init; importing
	// it here, in the one package that uses it, is the only way to get it.
	_ "modernc.org/sqlite"
)

var _ tokenstore.Backend = (*Backend)(nil)

// busyTimeout is how long a statement waits for another process's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// purgeEvery is how often, in key-space writes, expired entries are purged.
const purgeEvery = 64

// Backend is a [tokenstore.Backend] on one SQLite database file. It is safe
// for concurrent use; Close it when done.
type Backend struct {
	// Now reports the time that entry expiry is judged against. Nil means
	// time.Now. Set it, if at all, before first use.
	Now func() time.Time

	w      *sql.DB // exactly one connection: every write
	r      *sql.DB // a pool of query-only connections: every read
	writes atomic.Uint64

	// ops queues writes for the committer, which owns the one write
	// connection (group commit; see write). Blocked senders on a channel
	// are served first come, first served, so writes keep their arrival
	// order. Nil in the shared-pool layout, where each write is its own
	// transaction.
	ops      chan *writeOp
	stop     chan struct{}
	loopDone chan struct{}
	closeMu  sync.Once
}

// options are the knobs tests and benchmarks turn.
type options struct {
	// sharedPool sends reads and writes through one pool of several
	// connections, the usual database/sql setup, to compare against.
	sharedPool bool
}

// Open opens (creating if need be) the SQLite database at path and brings
// its schema up to date. A missing parent folder is created with mode 0700
// and a missing file with 0600; SQLite gives the -wal and -shm files the
// same mode as the database.
//
// Writes go through one dedicated connection, queued first come, first
// served; reads go through a pool of query-only connections. SQLite allows
// one writer at a time anyway: when several pooled connections write at
// once, the losers get SQLITE_BUSY and retry on SQLite's sleeping back-off
// inside busy_timeout. Measured (BenchmarkLayout, BENCHMARKS.md) with 32
// concurrent goroutines, the dedicated writer matched a shared pool's
// write throughput with about a third of its p99 latency, and served a
// mixed load faster. The FIFO queue matters: without it, database/sql hands
// the freed connection to a random waiter, and the writer's p99 was no
// better than the shared pool's. Readers, thanks to WAL, never wait for
// the writer.
func Open(ctx context.Context, path string) (*Backend, error) {
	return open(ctx, path, options{})
}

func open(ctx context.Context, path string, opts options) (*Backend, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: want the path of a database file, not %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create folder: %v", err)
	}
	// Create the file ourselves so that it is born 0600: SQLite would
	// create it 0644 (less the umask), readable by every local user.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %v", err)
	}
	f.Close()

	// WAL lets readers run alongside the writer. synchronous=FULL makes
	// SQLite fsync the WAL at every commit: under NORMAL, a commit in WAL
	// mode can be lost on power failure, and a lost row here is a Finch
	// token whose authorization code is already spent, so the employer
	// would have to connect again. A write must be durable when PutRow
	// returns. busy_timeout covers other processes holding the write lock;
	// foreign_keys is off by default in SQLite and costs nothing to enable.
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	common.Add("_pragma", "journal_mode(WAL)")
	common.Add("_pragma", "synchronous(FULL)")
	common.Add("_pragma", "foreign_keys(ON)")

	wq := cloneValues(common)
	// BEGIN IMMEDIATE takes the write lock at the start of a transaction,
	// so a read-then-write transaction cannot fail halfway on a lock
	// upgrade.
	wq.Set("_txlock", "immediate")
	b := &Backend{}
	if b.w, err = sql.Open("sqlite", dsn(abs, wq)); err != nil {
		return nil, fmt.Errorf("sqlite: %v", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	if opts.sharedPool {
		b.w.SetMaxOpenConns(readers)
		b.w.SetMaxIdleConns(readers)
		b.r = b.w
	} else {
		b.w.SetMaxOpenConns(1)
		b.w.SetMaxIdleConns(1)
		rq := cloneValues(common)
		rq.Add("_pragma", "query_only(ON)")
		if b.r, err = sql.Open("sqlite", dsn(abs, rq)); err != nil {
			b.w.Close()
			return nil, fmt.Errorf("sqlite: %v", err)
		}
		b.r.SetMaxOpenConns(readers)
		b.r.SetMaxIdleConns(readers)
	}
	if err := migrate(ctx, b.w); err != nil {
		b.Close()
		return nil, err
	}
	if !opts.sharedPool {
		b.ops, b.stop, b.loopDone = make(chan *writeOp), make(chan struct{}), make(chan struct{})
		go b.commitLoop()
	}
	return b, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// dsn builds a file: URI, which escapes characters such as '?' and '#' in
// the path that the driver would otherwise take for a query string.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// execer runs a write's statements: the batch's transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeOp is one write waiting for the committer.
type writeOp struct {
	ctx  context.Context
	fn   func(ctx context.Context, x execer) error
	done chan error
}

// maxBatch bounds how many writes share one commit.
const maxBatch = 256

var errClosed = errors.New("sqlite: the backend is closed")

// write runs fn in a transaction and returns when that transaction has
// committed — durably, under synchronous=FULL — or failed.
//
// Group commit: the committer takes every write that queued while the
// previous commit was running and runs them in one transaction, so one
// fsync serves them all. A lone write is never delayed: a batch is simply
// whatever is waiting. Each write keeps its own semantics: its statements
// are conditional and judged by their own row counts, and each runs inside
// a savepoint, so a SQL error in one is rolled back without touching the
// others. If the commit itself fails, every write of the batch reports it
// (none of them was written).
func (b *Backend) write(ctx context.Context, fn func(ctx context.Context, x execer) error) error {
	if b.ops == nil {
		tx, err := b.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return errClosed
	}
	// Once taken, the write runs to its end: wait for it even if ctx ends,
	// so that its result is what the caller sees.
	return <-op.done
}

// commitLoop is the committer: it owns the write connection until Close.
func (b *Backend) commitLoop() {
	defer close(b.loopDone)
	for {
		var first *writeOp
		select {
		case first = <-b.ops:
		case <-b.stop:
			return
		}
		batch := []*writeOp{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case op := <-b.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		b.runBatch(batch)
	}
}

// outcome reports whether err is a write's normal answer (a lost
// compare-and-set, a missing key), which changes nothing and needs no
// rollback, rather than a failure.
func outcome(err error) bool {
	return errors.Is(err, finchconnect.ErrConflict) || errors.Is(err, finchconnect.ErrNotFound)
}

func (b *Backend) runBatch(batch []*writeOp) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		for _, op := range batch {
			op.done <- fmt.Errorf("sqlite: begin: %v", err)
		}
		return
	}
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
			errs[i] = fmt.Errorf("sqlite: savepoint: %v", err)
			continue
		}
		errs[i] = op.fn(ctx, tx)
		if errs[i] != nil && !outcome(errs[i]) {
			_, _ = tx.ExecContext(ctx, "ROLLBACK TO op") // undo this write only
		}
		_, _ = tx.ExecContext(ctx, "RELEASE op")
	}
	b.maybePurge(ctx, tx, b.now(), len(batch))
	if err := tx.Commit(); err != nil {
		for i := range errs {
			if errs[i] == nil || outcome(errs[i]) {
				errs[i] = fmt.Errorf("sqlite: commit: %v", err)
			}
		}
	}
	for i, op := range batch {
		op.done <- errs[i]
	}
}

// Close stops the committer and closes the database. Calls after Close
// fail.
func (b *Backend) Close() error {
	if b.stop != nil {
		b.closeMu.Do(func() {
			close(b.stop)
			<-b.loopDone
		})
	}
	err := b.w.Close()
	if b.r != b.w {
		err = errors.Join(err, b.r.Close())
	}
	if err != nil {
		return fmt.Errorf("sqlite: close: %v", err)
	}
	return nil
}

// Ping implements [tokenstore.Backend.Ping].
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %v", err)
	}
	return nil
}

func (b *Backend) now() int64 {
	if b.Now != nil {
		return b.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// nonNil turns nil into an empty slice: the driver binds nil as NULL, and
// the byte columns are NOT NULL.
func nonNil(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

const rowColumns = "id, customer_id, provider_id, status, meta, sealed, version"

func scanRow(s interface{ Scan(...any) error }) (tokenstore.Row, error) {
	var r tokenstore.Row
	err := s.Scan(&r.ID, &r.CustomerID, &r.ProviderID, &r.Status, &r.Meta, &r.Sealed, &r.Version)
	return r, err
}

// GetRow implements [tokenstore.Backend.GetRow].
func (b *Backend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	r, err := scanRow(b.r.QueryRowContext(ctx, "SELECT "+rowColumns+" FROM connections WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return tokenstore.Row{}, fmt.Errorf("sqlite: row %q: %w", id, finchconnect.ErrNotFound)
	}
	if err != nil {
		return tokenstore.Row{}, fmt.Errorf("sqlite: get row %q: %v", id, err)
	}
	return r, nil
}

// PutRow implements [tokenstore.Backend.PutRow]. Each case is one statement
// whose WHERE clause or conflict clause does the compare-and-set, and
// RETURNING says whether it wrote, so atomicity comes from SQLite, not from
// how transactions happen to interleave.
func (b *Backend) PutRow(ctx context.Context, row tokenstore.Row, expect int64) (int64, error) {
	args := []any{row.ID, row.CustomerID, row.ProviderID, row.Status, nonNil(row.Meta), nonNil(row.Sealed)}
	var q string
	switch {
	case expect == tokenstore.AnyVersion:
		q = `INSERT INTO connections (id, customer_id, provider_id, status, meta, sealed, version)
			VALUES (?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (id) DO UPDATE SET
				customer_id = excluded.customer_id, provider_id = excluded.provider_id,
				status = excluded.status, meta = excluded.meta, sealed = excluded.sealed,
				version = connections.version + 1
			RETURNING version`
	case expect == 0:
		q = `INSERT INTO connections (id, customer_id, provider_id, status, meta, sealed, version)
			VALUES (?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (id) DO NOTHING
			RETURNING version`
	default:
		q = `UPDATE connections SET
				customer_id = ?2, provider_id = ?3, status = ?4, meta = ?5, sealed = ?6,
				version = version + 1
			WHERE id = ?1 AND version = ?7
			RETURNING version`
		args = append(args, expect)
	}
	var v int64
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		err := x.QueryRowContext(ctx, q, args...).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: put row %q: version is not %d: %w", row.ID, expect, finchconnect.ErrConflict)
		}
		return err
	})
	if err != nil && !outcome(err) {
		return 0, fmt.Errorf("sqlite: put row %q: %v", row.ID, err)
	}
	return v, err
}

// DeleteRow implements [tokenstore.Backend.DeleteRow].
func (b *Backend) DeleteRow(ctx context.Context, id string) error {
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		res, err := x.ExecContext(ctx, "DELETE FROM connections WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("sqlite: delete row %q: %w", id, finchconnect.ErrNotFound)
		}
		return nil
	})
	if err != nil && !outcome(err) {
		return fmt.Errorf("sqlite: delete row %q: %v", id, err)
	}
	return err
}

// ListRows implements [tokenstore.Backend.ListRows]. Each filter is an
// equality on an indexed column, and each index ends with id, so SQLite
// walks one index range in id order.
func (b *Backend) ListRows(ctx context.Context, f tokenstore.Filter) ([]tokenstore.Row, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, val string }{
		{"customer_id", f.CustomerID}, {"provider_id", f.ProviderID}, {"status", f.Status},
	} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if f.After != "" {
		where = append(where, "id > ?")
		args = append(args, f.After)
	}
	q := "SELECT " + rowColumns + " FROM connections"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit(f.Limit))
	rows, err := b.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list rows: %v", err)
	}
	defer rows.Close()
	var out []tokenstore.Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list rows: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list rows: %v", err)
	}
	return out, nil
}

func limit(n int) int {
	if n <= 0 {
		return tokenstore.DefaultLimit
	}
	return n
}

// expiresAt turns a ttl into the stored column value: NULL for never.
func (b *Backend) expiresAt(now int64, ttl time.Duration) any {
	if ttl <= 0 {
		return nil
	}
	return now + int64(ttl)
}

// Claim implements [tokenstore.Backend.Claim]. The insert replaces an
// existing entry only if that entry has expired, in one statement; the
// number of rows it changed says who won.
func (b *Backend) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		now := b.now()
		res, err := x.ExecContext(ctx, `INSERT INTO entries (key, value, expires_at) VALUES (?1, ?2, ?3)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
			WHERE entries.expires_at IS NOT NULL AND entries.expires_at <= ?4`,
			key, nonNil(value), b.expiresAt(now, ttl), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: claim %q: %w", key, finchconnect.ErrConflict)
		}
		return nil
	})
	if err != nil && !outcome(err) {
		return fmt.Errorf("sqlite: claim %q: %v", key, err)
	}
	return err
}

// Load implements [tokenstore.Backend.Load].
func (b *Backend) Load(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := b.r.QueryRowContext(ctx, `SELECT value FROM entries
		WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`, key, b.now()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: load %q: %w", key, finchconnect.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: load %q: %v", key, err)
	}
	return nonNil(v), nil
}

// Swap implements [tokenstore.Backend.Swap]. The conditional UPDATE does the
// compare-and-set; when it changes nothing, a read in the same (immediate,
// so write-locked) transaction tells an absent key from a changed value.
func (b *Backend) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		now := b.now()
		res, err := x.ExecContext(ctx, `UPDATE entries SET value = ?, expires_at = ?
			WHERE key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)`,
			nonNil(value), b.expiresAt(now, ttl), key, nonNil(old), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var live int
		err = x.QueryRowContext(ctx, `SELECT count(*) FROM entries
			WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`, key, now).Scan(&live)
		switch {
		case err != nil:
			return err
		case live == 0:
			return fmt.Errorf("sqlite: swap %q: %w", key, finchconnect.ErrNotFound)
		default:
			return fmt.Errorf("sqlite: swap %q: value changed: %w", key, finchconnect.ErrConflict)
		}
	})
	if err != nil && !outcome(err) {
		return fmt.Errorf("sqlite: swap %q: %v", key, err)
	}
	return err
}

// Forget implements [tokenstore.Backend.Forget].
func (b *Backend) Forget(ctx context.Context, key string) error {
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		_, err := x.ExecContext(ctx, "DELETE FROM entries WHERE key = ?", key)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: forget %q: %v", key, err)
	}
	return nil
}

// Scan implements [tokenstore.Backend.Scan]. The prefix becomes a key range
// rather than a LIKE pattern, so '%' and '_' in it match only themselves and
// the primary key index serves the query.
func (b *Backend) Scan(ctx context.Context, prefix, after string, n int) ([]tokenstore.Entry, error) {
	where := []string{"(expires_at IS NULL OR expires_at > ?)"}
	args := []any{b.now()}
	if prefix != "" {
		where = append(where, "key >= ?")
		args = append(args, prefix)
		if end, ok := prefixEnd(prefix); ok {
			where = append(where, "key < ?")
			args = append(args, end)
		}
	}
	if after != "" {
		where = append(where, "key > ?")
		args = append(args, after)
	}
	args = append(args, limit(n))
	rows, err := b.r.QueryContext(ctx, "SELECT key, value, expires_at FROM entries WHERE "+
		strings.Join(where, " AND ")+" ORDER BY key LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: scan %q: %v", prefix, err)
	}
	defer rows.Close()
	var out []tokenstore.Entry
	for rows.Next() {
		var e tokenstore.Entry
		var exp sql.NullInt64
		if err := rows.Scan(&e.Key, &e.Value, &exp); err != nil {
			return nil, fmt.Errorf("sqlite: scan %q: %v", prefix, err)
		}
		// A key sorting inside the range yet not starting with the prefix
		// cannot happen for byte-wise ranges, but checking is cheap.
		if !strings.HasPrefix(e.Key, prefix) {
			continue
		}
		e.Value = nonNil(e.Value)
		if exp.Valid {
			e.ExpiresAt = time.Unix(0, exp.Int64)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: scan %q: %v", prefix, err)
	}
	return out, nil
}

// prefixEnd returns the smallest string greater than every string that
// starts with prefix, or false if there is none (prefix is all 0xff).
func prefixEnd(prefix string) (string, bool) {
	p := []byte(prefix)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			p[i]++
			return string(p[:i+1]), true
		}
	}
	return "", false
}

// maybePurge deletes a batch of expired entries every purgeEvery writes, so
// they do not pile up; reads already ignore them. It runs in the batch's
// transaction, without a goroutine of its own, and a failure only postpones
// the purge.
func (b *Backend) maybePurge(ctx context.Context, x execer, now int64, writes int) {
	before := b.writes.Add(uint64(writes)) - uint64(writes)
	if before/purgeEvery == (before+uint64(writes))/purgeEvery {
		return
	}
	_, _ = x.ExecContext(ctx, `DELETE FROM entries WHERE key IN (
		SELECT key FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 500)`, now)
}
