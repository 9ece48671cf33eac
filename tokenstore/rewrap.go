package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
)

// scanPage is how many rows KeyUsage and Rewrap read per ListRows call.
const scanPage = 500

// defaultRewrapWorkers is how many rows Rewrap re-seals at once by default.
// On SQLite, the writes queued side by side share each commit's fsync (see
// tokenstore/sqlite's group commit): on 2 vCPUs, re-sealing 200,000 rows
// ran at about 28,000 rows/s with 32 workers and 36,000/s with 64. On
// PostgreSQL and Redis they overlap round trips, within the backend's
// connection pool.
const defaultRewrapWorkers = 64

// maxFailed bounds RewrapResult.Failed.
const maxFailed = 100

// RewrapOptions tune [Store.Rewrap]. The zero value rewraps everything, as
// fast as the backend allows, without reporting progress.
type RewrapOptions struct {
	// Rate limits re-sealing to this many rows per second, so a rotation
	// does not crowd out live traffic on a shared database. 0 means no
	// limit.
	Rate float64

	// Workers is how many rows are re-sealed at the same time. Each write
	// is still its own compare-and-set on the row's version; running
	// several at once lets the backend batch them (SQLite commits the
	// writes that queue together with one fsync) or overlap their round
	// trips. 0 means 64; 1 re-seals one row at a time.
	Workers int

	// After resumes an interrupted rewrap: only rows whose id sorts after it
	// are considered. Pass the Cursor of an earlier result or progress call.
	After string

	// Progress, if set, is called after each row that needed re-sealing,
	// with how many of those have been handled (re-sealed, found re-sealed
	// or deleted by someone else, or failed), how many there were when the
	// rewrap started, and the cursor to resume after. done can pass total
	// when rows are added under an old key during the rewrap. Calls come
	// from several goroutines but never at the same time, and both done
	// and cursor only grow from one call to the next. Rows finish out of
	// order, so the cursor can lag behind done: it is the last id before
	// which every row has been handled.
	Progress func(done, total int, cursor string)
}

// RewrapResult says what [Store.Rewrap] did.
type RewrapResult struct {
	Scanned   int      // rows examined
	Rewrapped int      // rows re-sealed under the primary key
	Failed    []string // ids of rows whose token did not open, sorted (at most 100)
	Cursor    string   // every row up to this id has been handled; pass as After to resume
}

// Rewrap re-seals, under the keyring's primary key, every connection token
// that is sealed under another key, so that an old key can be retired. It
// changes nothing else about a row.
//
// Each row is written with a compare-and-set on the version it was read at;
// when a concurrent Put or Update wins, Rewrap reads the row again and
// retries, so it never overwrites a newer write (and skips the row if that
// write already sealed it under the primary). Rows deleted meanwhile are
// skipped. Rows are read in id order a page at a time and re-sealed by
// RewrapOptions.Workers goroutines at once.
//
// A row whose token does not open is left alone and listed in Failed, and
// Rewrap carries on; it then returns its result with an error wrapping
// [finchconnect.ErrDecrypt]. On a backend error or a cancelled ctx it stops
// dispatching rows, waits for the writes in flight, and returns the result
// so far with the error; resume with RewrapOptions.After set to the
// result's Cursor. The cursor never passes a row that was not handled, so
// resuming from it misses nothing; rows past it that were re-sealed before
// the stop count in Rewrapped and are skipped on resume.
func (s *Store) Rewrap(ctx context.Context, opts RewrapOptions) (RewrapResult, error) {
	primary := s.Keyring().PrimaryID()

	// First pass: count, so that Progress can say how far along it is.
	total := 0
	err := s.scan(ctx, opts.After, func(r Row) error {
		if id, ok := keyring.KeyID(r.Sealed); !ok || id != primary {
			total++
		}
		return nil
	})
	if err != nil {
		return RewrapResult{Cursor: opts.After}, fmt.Errorf("tokenstore: rewrap: %w", ctxErr(ctx, err))
	}

	workers := opts.Workers
	if workers <= 0 {
		workers = defaultRewrapWorkers
	}
	workers = max(1, min(workers, total))
	rw := &rewrapper{
		s:        s,
		primary:  primary,
		total:    total,
		progress: opts.Progress,
		res:      RewrapResult{Cursor: opts.After},
		// Two pages in flight: the next page is read and started while
		// the last rows of the previous one finish.
		window: 2 * scanPage,
	}
	rw.room = sync.NewCond(&rw.mu)
	res, err := rw.run(ctx, opts.After, workers, opts.Rate)
	if err != nil {
		return res, fmt.Errorf("tokenstore: rewrap: %w", err)
	}
	if n := rw.failed; n > 0 {
		return res, fmt.Errorf("tokenstore: rewrap: %d row(s) did not open and keep their old key: %w", n, finchconnect.ErrDecrypt)
	}
	return res, nil
}

// rewrapper is one run of Rewrap: the scan feeds rows to workers, and the
// rows scanned but not yet behind the cursor wait in pending, in id order,
// until every row before them is handled too.
type rewrapper struct {
	s        *Store
	primary  uint32
	total    int
	progress func(done, total int, cursor string)
	window   int // at most this many rows pending

	mu      sync.Mutex
	room    *sync.Cond // signalled when pending shrinks or the run stops
	res     RewrapResult
	handled int
	failed  int
	err     error  // the first error; set, it stops the run
	pending []slot // from the row after res.Cursor on, in id order
	first   int    // the sequence number of pending[0]
	seq     int    // the sequence number of the next row scanned
}

// slot is a scanned row that the cursor has not passed yet.
type slot struct {
	id   string
	done bool
}

// job is a row for a worker to re-seal, and its sequence number.
type job struct {
	seq int
	row Row
}

// run scans the rows after after, re-sealing those not under the primary
// with workers goroutines, at most rate rows per second (0: no limit).
func (rw *rewrapper) run(ctx context.Context, after string, workers int, rate float64) (RewrapResult, error) {
	// Cancelled on the first error, so that the scan stops and the writes
	// in flight give up.
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	jobs := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				wrote, err := rw.s.rewrapRow(ctx, j.row)
				if rw.finish(j, wrote, err) {
					cancel()
				}
			}
		})
	}

	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	var last time.Time
	err := rw.s.scan(ctx, after, func(r Row) error {
		seq, needs, err := rw.admit(r)
		if err != nil || !needs {
			return err
		}
		if interval > 0 && !last.IsZero() {
			if err := sleep(ctx, interval-time.Since(last)); err != nil {
				return err
			}
		}
		last = time.Now()
		select {
		case jobs <- job{seq, r}:
			return nil
		case <-ctx.Done():
			return ctx.Err() // the row stays pending: the cursor stops before it
		}
	})
	close(jobs)
	wg.Wait()

	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.err == nil && err != nil {
		rw.err = err
	}
	rw.err = ctxErr(parent, rw.err)
	slices.Sort(rw.res.Failed)
	return rw.res, rw.err
}

// admit adds a scanned row to pending, once there is room, and reports its
// sequence number and whether it needs re-sealing. A row already under the
// primary needs nothing and is done at once. It returns the run's error
// once the run has stopped.
func (rw *rewrapper) admit(r Row) (int, bool, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for rw.err == nil && len(rw.pending) >= rw.window {
		rw.room.Wait()
	}
	if rw.err != nil {
		return 0, false, rw.err
	}
	rw.res.Scanned++
	seq := rw.seq
	rw.seq++
	id, ok := keyring.KeyID(r.Sealed)
	needs := !ok || id != rw.primary
	rw.pending = append(rw.pending, slot{id: r.ID, done: !needs})
	rw.advance()
	return seq, needs, nil
}

// finish records a worker's result for j and reports whether the run must
// stop.
func (rw *rewrapper) finish(j job, wrote bool, err error) (stop bool) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	defer rw.room.Broadcast()
	switch {
	case errors.Is(err, finchconnect.ErrDecrypt):
		rw.failed++
		if len(rw.res.Failed) < maxFailed {
			rw.res.Failed = append(rw.res.Failed, j.row.ID)
		}
	case err != nil:
		// Not handled: the row stays pending, so the cursor never passes
		// it. Only the first error is reported; the others are mostly
		// the cancellation it causes.
		if rw.err == nil {
			rw.err = err
		}
		return true
	case wrote:
		rw.res.Rewrapped++
	}
	rw.handled++
	rw.pending[j.seq-rw.first].done = true
	rw.advance()
	if rw.progress != nil {
		rw.progress(rw.handled, rw.total, rw.res.Cursor)
	}
	return false
}

// advance moves the cursor past the done rows at the head of pending.
func (rw *rewrapper) advance() {
	n := 0
	for n < len(rw.pending) && rw.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	rw.res.Cursor = rw.pending[n-1].id
	rw.first += n
	// Reslice rather than shift the rest down: appends reallocate once
	// the front is used up, so each row is copied a bounded number of
	// times however long pending stays.
	clear(rw.pending[:n])
	rw.pending = rw.pending[n:]
}

// rewrapRow re-seals one row under the primary key, retrying on conflicts.
// It reports whether it wrote the row.
func (s *Store) rewrapRow(ctx context.Context, r Row) (bool, error) {
	kr := s.Keyring() // one ring for the whole row, even if it is swapped meanwhile
	primary, id := kr.PrimaryID(), r.ID
	for range maxAttempts {
		token, err := kr.Open(r.Sealed, rowAAD(r.ID))
		if err != nil {
			return false, fmt.Errorf("connection %s: %v: %w", r.ID, err, finchconnect.ErrDecrypt)
		}
		sealed, err := kr.Seal(token, rowAAD(r.ID))
		clear(token)
		if err != nil {
			return false, fmt.Errorf("connection %s: seal: %v", r.ID, err)
		}
		next := r
		next.Sealed = sealed
		// An update only, expecting the version read: a row deleted and
		// stored again since then started at a later version (see Row),
		// so the write misses it instead of putting the old token back.
		// Taking a start version keeps the Store's counter ahead of the
		// row's, as every write does.
		next.Version = s.insertVersion()
		_, err = s.v.PutRow(ctx, next, r.Version)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, finchconnect.ErrConflict) {
			return false, fmt.Errorf("connection %s: %w", r.ID, err)
		}
		// Someone wrote the row since we read it: start from their version.
		r, err = s.v.GetRow(ctx, id)
		if errors.Is(err, finchconnect.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("connection %s: %w", id, err)
		}
		if kid, ok := keyring.KeyID(r.Sealed); ok && kid == primary {
			return false, nil
		}
	}
	return false, fmt.Errorf("connection %s: gave up after %d attempts: %w", id, maxAttempts, finchconnect.ErrConflict)
}

// KeyUsage counts the connections sealed under each key id, reading the id
// from each sealed header without decrypting. Id 0 counts values that are
// not in a format the keyring knows. A key may be retired when it counts
// zero rows and nothing else (such as a staged ledger entry) still needs it.
func (s *Store) KeyUsage(ctx context.Context) (map[uint32]int, error) {
	usage := map[uint32]int{}
	err := s.scan(ctx, "", func(r Row) error {
		id, _ := keyring.KeyID(r.Sealed) // 0 when not ok
		usage[id]++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tokenstore: key usage: %w", err)
	}
	return usage, nil
}

// scan calls fn for every row after after, in id order, a page at a time.
func (s *Store) scan(ctx context.Context, after string, fn func(Row) error) error {
	for {
		rows, err := s.v.ListRows(ctx, Filter{After: after, Limit: scanPage})
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rows) < scanPage {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

// ctxErr returns ctx's error instead of err once ctx is done: backends
// report a call cut short by the context in their own words (they wrap
// driver errors with %v), and the caller should learn what happened.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	return err
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
