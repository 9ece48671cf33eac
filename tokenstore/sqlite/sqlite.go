package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
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

	// The hot reads, prepared once on the read pool: database/sql keeps
	// each prepared on every connection that ran it, so a read skips
	// SQLite's parser (half of a Load's CPU when prepared per call).
	getRowStmt, loadStmt *sql.Stmt

	opts options

	// Group commit (see write). mu guards queue and closed; the queue is
	// FIFO, so writes commit in arrival order. wake tells an idle committer
	// that the queue is not empty. The committer goroutine alone uses wc.
	// All nil in the shared-pool layout, where each write is its own
	// transaction.
	mu        sync.Mutex
	queue     []*writeOp
	closed    bool
	wake      chan struct{}
	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	wc        *writeConn
}

// options are the knobs tests and benchmarks turn.
type options struct {
	// sharedPool sends reads and writes through one pool of several
	// connections, the usual database/sql setup, to compare against.
	sharedPool bool

	// beforeTake, if set, runs in the committer each time before it takes
	// a batch from the queue; a test blocks in it to line writes up.
	beforeTake func()

	// afterBatch, if set, is told the size of each transaction the
	// committer ran and whether it committed.
	afterBatch func(size int, committed bool)

	// busyTimeout, if set, replaces the busyTimeout constant, so that a
	// test can see a lock wait run out quickly.
	busyTimeout time.Duration

	// mmapSize is Options.MmapSize.
	mmapSize int64
}

// DefaultMmapSize is how much of the database file each connection reads
// through a memory map unless [Options] says otherwise: none. The map
// helped lookups in a vault of a million connections only a little (p99
// 147 µs against 174, BENCHMARKS.md, Scale), while the mapped file pages
// count in the process's resident set and took a loaded server's peak RSS
// from 37 to 86 MiB; the default keeps the memory. Set Options.MmapSize to
// trade it for the faster reads.
const DefaultMmapSize = 0

// Options tune [OpenWith]. The zero value gives what [Open] uses.
type Options struct {
	// MmapSize is how many bytes of the database file SQLite reads through
	// a shared memory map instead of read system calls and copies into
	// each connection's private page cache (PRAGMA mmap_size); a larger
	// file is mapped up to this size and read the usual way beyond it.
	// With a million connections in the vault, reads through the map kept
	// lookups as fast as with a thousand (BENCHMARKS.md, Scale).
	//
	// The map costs address space, not memory: the pages it shows are the
	// operating system's file cache, shared by every connection and given
	// back under memory pressure like any cached file. They do count in the
	// process's resident set size (RSS) once read, up to the size of the
	// file, so RSS grows with the vault although the heap does not. SQLite
	// cannot turn an I/O error on a mapped page into an error return: the
	// process receives SIGBUS instead, as it would if another program
	// truncated the file.
	//
	// 0 means DefaultMmapSize (no map); a negative value turns the map
	// off too. 1 << 30 (1 GiB) covers a vault of about 1.2 million
	// connections.
	MmapSize int64
}

// Open opens (creating if need be) the SQLite database at path and brings
// its schema up to date. A missing parent folder is created with mode 0700
// and a missing file with 0600; SQLite gives the -wal and -shm files the
// same mode as the database.
//
// Writes go through one dedicated connection, queued first come, first
// served and group-committed (see the package documentation); reads go
// through a pool of query-only connections. SQLite allows one writer at a
// time anyway: when several pooled connections write at once, the losers
// get SQLITE_BUSY and retry on SQLite's sleeping back-off inside
// busy_timeout. Measured (BenchmarkLayout, BENCHMARKS.md) with 32
// concurrent goroutines, the dedicated writer matched a shared pool's write
// throughput with about a third of its p99 latency, and served a mixed load
// faster. The FIFO queue matters: without it, database/sql hands the freed
// connection to a random waiter, and the writer's p99 was no better than
// the shared pool's. Readers, thanks to WAL, never wait for the writer.
func Open(ctx context.Context, path string) (*Backend, error) {
	return open(ctx, path, options{})
}

// OpenWith is [Open] with Options.
func OpenWith(ctx context.Context, path string, o Options) (*Backend, error) {
	return open(ctx, path, options{mmapSize: o.MmapSize})
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
	// mmap_size: see Options.MmapSize; every connection maps the same file
	// pages, and the writer reads through the map too (it writes to the
	// WAL, never through the map).
	common := url.Values{}
	busy := busyTimeout
	if opts.busyTimeout > 0 {
		busy = opts.busyTimeout
	}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	common.Add("_pragma", "journal_mode(WAL)")
	common.Add("_pragma", "synchronous(FULL)")
	common.Add("_pragma", "foreign_keys(ON)")
	common.Add("_pragma", fmt.Sprintf("mmap_size(%d)", mmapSize(opts.mmapSize)))

	wq := cloneValues(common)
	// BEGIN IMMEDIATE takes the write lock at the start of a transaction,
	// so a read-then-write transaction cannot fail halfway on a lock
	// upgrade.
	wq.Set("_txlock", "immediate")
	b := &Backend{opts: opts}
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
	if err := b.prepareReads(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if !opts.sharedPool {
		b.wake, b.stop, b.loopDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		b.wc = &writeConn{db: b.w}
		go b.commitLoop()
	}
	return b, nil
}

const (
	getRowQuery = "SELECT " + rowColumns + " FROM connections WHERE id = ?"
	loadQuery   = `SELECT value FROM entries WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`
)

func (b *Backend) prepareReads(ctx context.Context) error {
	var err error
	if b.getRowStmt, err = b.r.PrepareContext(ctx, getRowQuery); err != nil {
		return fmt.Errorf("sqlite: prepare: %v", err)
	}
	if b.loadStmt, err = b.r.PrepareContext(ctx, loadQuery); err != nil {
		return fmt.Errorf("sqlite: prepare: %v", err)
	}
	return nil
}

// mmapSize turns Options.MmapSize into the pragma's value.
func mmapSize(n int64) int64 {
	switch {
	case n < 0:
		return 0
	case n > 0:
		return n
	}
	return DefaultMmapSize
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

// execer runs a write's statements: the committer's connection inside the
// batch's transaction, or a *sql.Tx in the shared-pool layout.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// A writeOp's state moves from queued to taken (by the committer) or to
// abandoned (by its caller, whose context ended first), exactly once.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// writeOp is one write waiting for the committer.
type writeOp struct {
	ctx   context.Context
	fn    func(ctx context.Context, x execer) error
	state atomic.Int32
	done  chan error // buffered: the committer never waits for the caller
}

// maxBatch bounds how many writes share one commit, so that one batch's
// transaction, and the wait of the writes queued behind it, stay short.
const maxBatch = 256

var (
	errClosed = errors.New("sqlite: the backend is closed")
	// errBatchFailed is never returned to a caller: a write of a failed
	// batch is retried alone and reports that attempt's result.
	errBatchFailed = errors.New("sqlite: another write of the batch failed")
)

// write runs fn in a transaction and returns when that transaction has
// committed — durably, under synchronous=FULL — or failed.
//
// Group commit: writes queue in arrival order; the committer takes every
// write that queued while the previous commit ran (at most maxBatch) and
// runs them in one transaction, so one fsync serves them all. A lone write
// is never delayed: there is no timer, a batch is simply whatever is
// waiting. Each write keeps its own semantics: its statements are
// conditional and judged by their own row counts, and a lost
// compare-and-set is an answer, not a failure, so it does not disturb the
// others. See runBatch for what a real failure does.
func (b *Backend) write(ctx context.Context, fn func(ctx context.Context, x execer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.wake == nil {
		tx, err := b.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			return err
		}
		if b.purgeDue(1) {
			b.purge(ctx, tx)
		}
		return tx.Commit()
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errClosed
	}
	b.queue = append(b.queue, op)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // the committer is already due to look at the queue
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		// Taken: the write runs to its end, and its result, not the
		// context's, is what the caller must see.
		return <-op.done
	}
}

// queued reports how many writes wait for the committer; tests use it to
// line writes up in one batch.
func (b *Backend) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// take moves up to maxBatch writes from the head of the queue into batch.
func (b *Backend) take(batch []*writeOp) []*writeOp {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue), maxBatch)
	batch = append(batch, b.queue[:n]...)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:]) // drop references for the collector
	b.queue = b.queue[:rest]
	return batch
}

// commitLoop is the committer: it owns the write connection until Close,
// and runs batches until the queue is empty. On Close it finishes the
// writes already accepted, then stops.
func (b *Backend) commitLoop() {
	defer close(b.loopDone)
	defer b.wc.close()
	var batch []*writeOp
	for {
		stopping := false
		select {
		case <-b.wake:
		case <-b.stop:
			stopping = true
		}
		for {
			if b.opts.beforeTake != nil {
				b.opts.beforeTake()
			}
			batch = b.take(batch[:0])
			if len(batch) == 0 {
				break
			}
			b.runBatch(batch)
			clear(batch)
		}
		if stopping {
			return
		}
	}
}

// outcome reports whether err is a write's normal answer (a lost
// compare-and-set, a missing key), which changes nothing and needs no
// rollback, rather than a failure.
func outcome(err error) bool {
	return errors.Is(err, finchconnect.ErrConflict) || errors.Is(err, finchconnect.ErrNotFound)
}

// runBatch runs batch in one transaction and tells each write its result.
//
// If a write's statement or the COMMIT fails for real, the whole
// transaction is rolled back and every write of the batch is run again
// alone, in order, in a transaction of its own, so that only the write that
// fails reports an error and the others succeed as if they had never met
// it. If BEGIN fails, no write has run and none is to blame (typically
// another process held the write lock for all of busy_timeout): every write
// gets that error at once, rather than each waiting busy_timeout again.
//
// Rolling back everything, rather than one savepoint per write, is what
// keeps this true for errors after which SQLite has already ended the
// transaction by itself (RAISE(ROLLBACK), SQLITE_FULL, I/O errors): later
// writes would otherwise run, and commit, outside any transaction. Failures
// are rare, so their extra fsyncs are cheap.
func (b *Backend) runBatch(batch []*writeOp) {
	live := batch[:0:0]
	for _, op := range batch {
		if !op.state.CompareAndSwap(opQueued, opTaken) {
			continue // its caller has gone
		}
		if err := op.ctx.Err(); err != nil {
			op.done <- err
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	errs := make([]error, len(live))
	res := b.runTx(live, errs, b.purgeDue(len(live)))
	if b.opts.afterBatch != nil {
		b.opts.afterBatch(len(live), res == txCommitted)
	}
	if res == txRolledBack && len(live) > 1 {
		for i, op := range live {
			if err := op.ctx.Err(); err != nil {
				errs[i] = err // nothing of it was committed
				continue
			}
			res := b.runTx(live[i:i+1], errs[i:i+1], false)
			if b.opts.afterBatch != nil {
				b.opts.afterBatch(1, res == txCommitted)
			}
		}
	}
	for i, op := range live {
		op.done <- errs[i]
	}
}

// txResult is how a transaction of the committer ended.
type txResult int

const (
	txCommitted  txResult = iota
	txNotBegun            // BEGIN failed: nothing ran
	txRolledBack          // a write or the COMMIT failed: nothing was written
)

// runTx runs ops in one transaction on the committer's connection and sets
// errs[i] to op i's result; unless it commits, every errs[i] is an error
// and nothing was written.
func (b *Backend) runTx(ops []*writeOp, errs []error, purge bool) txResult {
	// The statements run under no caller's context: cancelling one
	// caller must not interrupt a transaction that holds other writes.
	ctx := context.Background()
	x, err := b.wc.begin(ctx)
	if err != nil {
		fillErr(errs, fmt.Errorf("sqlite: begin: %v", err))
		return txNotBegun
	}
	for i, op := range ops {
		errs[i] = op.fn(ctx, x)
		if err := errs[i]; err != nil && !outcome(err) {
			b.wc.rollback(ctx)
			fillErr(errs, errBatchFailed)
			errs[i] = err
			return txRolledBack
		}
	}
	if purge {
		b.purge(ctx, x)
	}
	if err := b.wc.commit(ctx); err != nil {
		b.wc.rollback(ctx)
		fillErr(errs, fmt.Errorf("sqlite: commit: %v", err))
		return txRolledBack
	}
	return txCommitted
}

func fillErr(errs []error, err error) {
	for i := range errs {
		errs[i] = err
	}
}

// Close finishes the writes already queued, stops the committer and closes
// the database. Writes after Close fail.
func (b *Backend) Close() error {
	if b.stop != nil {
		b.closeOnce.Do(func() {
			b.mu.Lock()
			b.closed = true
			b.mu.Unlock()
			close(b.stop)
			<-b.loopDone
		})
	}
	var err error
	for _, st := range []*sql.Stmt{b.getRowStmt, b.loadStmt} {
		if st != nil {
			err = errors.Join(err, st.Close())
		}
	}
	err = errors.Join(err, b.w.Close())
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

// GetRow implements [tokenstore.Rows.GetRow].
func (b *Backend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	r, err := scanRow(b.getRowStmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return tokenstore.Row{}, fmt.Errorf("sqlite: row %q: %w", id, finchconnect.ErrNotFound)
	}
	if err != nil {
		return tokenstore.Row{}, fmt.Errorf("sqlite: get row %q: %v", id, err)
	}
	return r, nil
}

// updateKeepIndexed is PutRow's conditional update when the row's indexed
// columns keep their values: it sets only the others, so that SQLite leaves
// the indexes alone.
const updateKeepIndexed = `UPDATE connections SET meta = ?5, sealed = ?6, version = version + 1
	WHERE id = ?1 AND version = ?7 AND customer_id = ?2 AND provider_id = ?3 AND status = ?4
	RETURNING version`

// PutRow implements [tokenstore.Rows.PutRow]. Each case is one statement
// whose WHERE clause or conflict clause does the compare-and-set, and
// RETURNING says whether it wrote, so atomicity comes from SQLite, not from
// how transactions happen to interleave.
func (b *Backend) PutRow(ctx context.Context, row tokenstore.Row, expect int64) (int64, error) {
	var v int64
	err := b.write(ctx, func(ctx context.Context, x execer) (err error) {
		v, err = putRow(ctx, x, row, expect)
		return err
	})
	if err != nil && !outcome(err) {
		return 0, fmt.Errorf("sqlite: put row %q: %v", row.ID, err)
	}
	return v, err
}

// putRow is the write of PutRow (and of PutRowSwap), run in the caller's
// transaction: it returns the row's new version, or ErrConflict, having
// written nothing, when the row's version is not expect. ?7 is the
// version an insert starts at, tokenstore.InsertVersion(row), in the
// statements that may insert, and expect in the updates.
func putRow(ctx context.Context, x execer, row tokenstore.Row, expect int64) (int64, error) {
	args := []any{row.ID, row.CustomerID, row.ProviderID, row.Status, nonNil(row.Meta), nonNil(row.Sealed)}
	var q string
	seventh := tokenstore.InsertVersion(row)
	switch {
	case expect == tokenstore.AnyVersion:
		q = `INSERT INTO connections (id, customer_id, provider_id, status, meta, sealed, version)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
			ON CONFLICT (id) DO UPDATE SET
				customer_id = excluded.customer_id, provider_id = excluded.provider_id,
				status = excluded.status, meta = excluded.meta, sealed = excluded.sealed,
				version = connections.version + 1
			RETURNING version`
	case expect == 0:
		q = `INSERT INTO connections (id, customer_id, provider_id, status, meta, sealed, version)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
			ON CONFLICT (id) DO NOTHING
			RETURNING version`
	default:
		q = `UPDATE connections SET
				customer_id = ?2, provider_id = ?3, status = ?4, meta = ?5, sealed = ?6,
				version = version + 1
			WHERE id = ?1 AND version = ?7
			RETURNING version`
		seventh = expect
	}
	args = append(args, seventh)
	var v int64
	if expect > 0 {
		// Most updates leave the indexed columns as they were: a new
		// token, new metadata, and every row that Store.Rewrap re-seals.
		// SQLite rewrites the entries of every index whose columns an
		// UPDATE sets, changed or not, so first try the statement that
		// sets none of them. It matches only when they are unchanged;
		// otherwise (or on a version conflict) the full statement runs,
		// in the same transaction.
		err := x.QueryRowContext(ctx, updateKeepIndexed, args...).Scan(&v)
		if !errors.Is(err, sql.ErrNoRows) {
			return v, err
		}
	}
	err := x.QueryRowContext(ctx, q, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: put row %q: version is not %d: %w", row.ID, expect, finchconnect.ErrConflict)
	}
	return v, err
}

// DeleteRow implements [tokenstore.Rows.DeleteRow].
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

// ListRows implements [tokenstore.Rows.ListRows]. Each filter is an
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

// Claim implements [tokenstore.KeySpace.Claim]. The insert replaces an
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

// Load implements [tokenstore.KeySpace.Load].
func (b *Backend) Load(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := b.loadStmt.QueryRowContext(ctx, key, b.now()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: load %q: %w", key, finchconnect.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: load %q: %v", key, err)
	}
	return nonNil(v), nil
}

// Swap implements [tokenstore.KeySpace.Swap]. The conditional UPDATE does the
// compare-and-set; when it changes nothing, a read in the same (immediate,
// so write-locked) transaction tells an absent key from a changed value.
func (b *Backend) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		now := b.now()
		swapped, err := b.swapEntry(ctx, x, key, old, value, ttl, now)
		if err != nil || swapped {
			return err
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

// swapEntry is the compare-and-set of Swap (and of PutRowSwap), run in the
// caller's transaction: it replaces key's value and expiry if key is
// unexpired at now and holds old, and reports whether it did.
func (b *Backend) swapEntry(ctx context.Context, x execer, key string, old, value []byte, ttl time.Duration, now int64) (bool, error) {
	res, err := x.ExecContext(ctx, `UPDATE entries SET value = ?, expires_at = ?
		WHERE key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)`,
		nonNil(value), b.expiresAt(now, ttl), key, nonNil(old), now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Forget implements [tokenstore.KeySpace.Forget].
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

// Scan implements [tokenstore.KeySpace.Scan]. The prefix becomes a key range
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

// purgeDue counts n writes and reports whether a purge of expired entries
// is due: one every purgeEvery writes, so that they do not pile up (reads
// already ignore them).
func (b *Backend) purgeDue(n int) bool {
	after := b.writes.Add(uint64(n))
	return (after-uint64(n))/purgeEvery != after/purgeEvery
}

// purge deletes a batch of expired entries inside the caller's
// transaction, without a goroutine of its own. It runs in a savepoint so
// that a failure only postpones it; if the failure ended the transaction,
// the COMMIT that follows says so.
func (b *Backend) purge(ctx context.Context, x execer) {
	if _, err := x.ExecContext(ctx, "SAVEPOINT purge"); err != nil {
		return
	}
	if _, err := x.ExecContext(ctx, `DELETE FROM entries WHERE key IN (
		SELECT key FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 500)`, b.now()); err != nil {
		_, _ = x.ExecContext(ctx, "ROLLBACK TO purge")
	}
	_, _ = x.ExecContext(ctx, "RELEASE purge")
}

// writeConn is the committer's connection and its execer. It runs BEGIN,
// COMMIT and ROLLBACK itself rather than through a *sql.Tx, so that it can
// still roll back after a failed COMMIT (which database/sql would not
// allow) and never carries a half-ended transaction into the next batch.
//
// It keeps each statement prepared: with the fsync shared by a batch,
// parsing and planning the SQL again for every write was the largest CPU
// cost left on the write path (BENCHMARKS.md).
type writeConn struct {
	db    *sql.DB
	c     *sql.Conn
	stmts map[string]*sql.Stmt
}

// maxStmts bounds the statement cache. This package's write statements are
// constants, a dozen of them; the bound only guards against a caller that
// would build SQL text (tests running DDL).
const maxStmts = 64

func (w *writeConn) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := w.stmts[query]; ok {
		return s, nil
	}
	if len(w.stmts) >= maxStmts {
		return nil, nil
	}
	s, err := w.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if w.stmts == nil {
		w.stmts = map[string]*sql.Stmt{}
	}
	w.stmts[query] = s
	return s, nil
}

// ExecContext implements execer with a prepared statement.
func (w *writeConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := w.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return w.c.ExecContext(ctx, query, args...)
	}
	return s.ExecContext(ctx, args...)
}

// QueryRowContext implements execer with a prepared statement.
func (w *writeConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := w.prepared(ctx, query)
	if err != nil || s == nil {
		// Unprepared, the query fails again (or runs once), and the Row
		// carries the outcome: a *sql.Row cannot be made from an error.
		return w.c.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// begin starts a write transaction: IMMEDIATE takes the write lock at once,
// so a read-then-write statement cannot fail halfway on a lock upgrade.
func (w *writeConn) begin(ctx context.Context) (execer, error) {
	if w.c == nil {
		c, err := w.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		w.c = c
	}
	_, err := w.ExecContext(ctx, "BEGIN IMMEDIATE")
	if err == nil {
		return w, nil
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		w.close() // the next batch takes a fresh connection
		return nil, err
	}
	// A transaction still open here (a ROLLBACK that failed) would refuse
	// every BEGIN from now on. ROLLBACK succeeds only if one was open; then
	// try once more.
	if _, rerr := w.ExecContext(ctx, "ROLLBACK"); rerr == nil {
		if _, err = w.ExecContext(ctx, "BEGIN IMMEDIATE"); err == nil {
			return w, nil
		}
	}
	return nil, err
}

func (w *writeConn) commit(ctx context.Context) error {
	_, err := w.ExecContext(ctx, "COMMIT")
	return err
}

// rollback ends the transaction if SQLite has not already ended it; an
// error (no transaction open) is expected and means there is nothing to do.
func (w *writeConn) rollback(ctx context.Context) {
	_, _ = w.ExecContext(ctx, "ROLLBACK")
}

func (w *writeConn) close() {
	for _, s := range w.stmts {
		s.Close()
	}
	w.stmts = nil
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}
