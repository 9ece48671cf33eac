package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
)

// scanPage is how many rows KeyUsage and Rewrap read per ListRows call.
const scanPage = 500

// RewrapOptions tune [Store.Rewrap]. The zero value rewraps everything, as
// fast as the backend allows, without reporting progress.
type RewrapOptions struct {
	// Rate limits re-sealing to this many rows per second, so a rotation
	// does not crowd out live traffic on a shared database. 0 means no
	// limit.
	Rate float64

	// After resumes an interrupted rewrap: only rows whose id sorts after it
	// are considered. Pass the Cursor of an earlier result or progress call.
	After string

	// Progress, if set, is called after each row that needed re-sealing,
	// with how many of those have been handled (re-sealed, found re-sealed
	// or deleted by someone else, or failed), how many there were when the
	// rewrap started, and the cursor to resume after. done can pass total
	// when rows are added under an old key during the rewrap.
	Progress func(done, total int, cursor string)
}

// RewrapResult says what [Store.Rewrap] did.
type RewrapResult struct {
	Scanned   int      // rows examined
	Rewrapped int      // rows re-sealed under the primary key
	Failed    []string // ids of rows whose token did not open (first 100)
	Cursor    string   // the last id examined; pass as After to resume
}

// Rewrap re-seals, under the keyring's primary key, every connection token
// that is sealed under another key, so that an old key can be retired. It
// changes nothing else about a row.
//
// Each row is written with a compare-and-set on the version it was read at;
// when a concurrent Put or Update wins, Rewrap reads the row again and
// retries, so it never overwrites a newer write (and skips the row if that
// write already sealed it under the primary). Rows deleted meanwhile are
// skipped.
//
// A row whose token does not open is left alone and listed in Failed, and
// Rewrap carries on; it then returns its result with an error wrapping
// [finchconnect.ErrDecrypt]. On a backend error or a cancelled ctx it stops
// and returns the result so far with the error; resume with
// RewrapOptions.After set to the result's Cursor.
func (s *Store) Rewrap(ctx context.Context, opts RewrapOptions) (RewrapResult, error) {
	res := RewrapResult{Cursor: opts.After}
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
		return res, fmt.Errorf("tokenstore: rewrap: %w", err)
	}

	var interval time.Duration
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	var last time.Time
	handled, failed := 0, 0
	err = s.scan(ctx, opts.After, func(r Row) error {
		res.Scanned++
		if id, ok := keyring.KeyID(r.Sealed); ok && id == primary {
			res.Cursor = r.ID
			return nil
		}
		if interval > 0 && !last.IsZero() {
			if err := sleep(ctx, interval-time.Since(last)); err != nil {
				return err
			}
		}
		last = time.Now()
		done, err := s.rewrapRow(ctx, r)
		switch {
		case errors.Is(err, finchconnect.ErrDecrypt):
			failed++
			if len(res.Failed) < 100 {
				res.Failed = append(res.Failed, r.ID)
			}
		case err != nil:
			return err
		case done:
			res.Rewrapped++
		}
		handled++
		res.Cursor = r.ID
		if opts.Progress != nil {
			opts.Progress(handled, total, res.Cursor)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("tokenstore: rewrap: %w", err)
	}
	if failed > 0 {
		return res, fmt.Errorf("tokenstore: rewrap: %d row(s) did not open and keep their old key: %w", failed, finchconnect.ErrDecrypt)
	}
	return res, nil
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
		_, err = s.b.PutRow(ctx, next, r.Version)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, finchconnect.ErrConflict) {
			return false, fmt.Errorf("connection %s: %w", r.ID, err)
		}
		// Someone wrote the row since we read it: start from their version.
		r, err = s.b.GetRow(ctx, id)
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
		rows, err := s.b.ListRows(ctx, Filter{After: after, Limit: scanPage})
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
