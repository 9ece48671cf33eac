package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/finchconnect/finchconnect"
)

// MigrateOptions tune [Migrate]. The zero value is usable.
type MigrateOptions struct {
	// BatchSize is how many rows or entries are read per call. Default 500.
	BatchSize int
	// Progress, when set, is called as the copy advances.
	Progress func(MigrateProgress)
}

// MigrateProgress reports how far [Migrate] has come in one phase:
// "connections", "entries" or "verify". Total is the number of items in the
// phase, known after a first counting pass.
type MigrateProgress struct {
	Phase string
	Done  int
	Total int
}

// MigrateResult says what [Migrate] did.
type MigrateResult struct {
	Rows          int // connection rows in the source
	RowsCopied    int // rows written to the destination (the others were equal already)
	Entries       int // unexpired entries in the source
	EntriesCopied int // entries the destination lacked, written to it
	// EntriesOverwritten counts entries the destination held with another
	// value, replaced by the source's.
	EntriesOverwritten int
	Verified           int // rows read back from the destination and found equal
	EntriesVerified    int // entries read back from the destination and found equal
}

// Migrate copies every connection row and every unexpired entry from one
// backend to another, byte for byte: sealed tokens travel sealed, so no key
// is needed. Entries keep their remaining time to live.
//
// It is safe to re-run, and meant to be: a row or entry equal in both
// backends (for a row, all fields but the version) is skipped, and where
// they differ the source wins. An entry the destination holds with another
// value is overwritten with the source's value and remaining time to live
// (counted in EntriesOverwritten): between two passes the old server may
// have revoked an API key or settled a ledger entry, and the destination
// must not keep the stale value. After copying, every source row is read
// back from the destination and compared, and every entry is read back as
// soon as it is copied; any difference is an error.
//
// A row the destination lacks is inserted at the source's version (an
// insert starts at the Row.Version it is given; see [Row]), so the copy
// keeps the version its Store took from the clock; a row the destination
// holds with other contents takes its next version, as every write over a
// stored row does. Versions only guard writes within one backend, so this
// is for a faithful copy, not for safety.
//
// Rows or entries the destination holds and the source does not are left
// alone: Migrate copies, it never deletes. Deleting them would make a
// second pass a mirror, but would also destroy whatever else a destination
// already held, with no way back. The cost of leaving them is small for
// what the old server removes between passes: outbox events delivered
// meanwhile are delivered again from the destination (delivery is at least
// once, so receivers already handle a repeat) and other removed entries
// (delivery leases) expire by themselves.
//
// Writes that reach the source during a migration may be missed: run it
// once while the old server runs, stop the server, then run it again to
// pick up stragglers, before any server uses the destination (a write
// there would lose to the source's older value).
func Migrate(ctx context.Context, from, to Backend, opts MigrateOptions) (MigrateResult, error) {
	var res MigrateResult
	batch := opts.BatchSize
	if batch <= 0 {
		batch = 500
	}
	report := func(phase string, done, total int) {
		if opts.Progress != nil {
			opts.Progress(MigrateProgress{Phase: phase, Done: done, Total: total})
		}
	}

	total, err := countRows(ctx, from, batch)
	if err != nil {
		return res, err
	}
	res.Rows = total
	visited := 0
	err = eachRow(ctx, from, batch, func(r Row) error {
		visited++
		existing, err := to.GetRow(ctx, r.ID)
		switch {
		case err == nil && sameRow(existing, r):
		case err == nil:
			if _, err := to.PutRow(ctx, r, existing.Version); err != nil {
				return fmt.Errorf("copy connection %s: %w", r.ID, err)
			}
			res.RowsCopied++
		case errors.Is(err, finchconnect.ErrNotFound):
			if _, err := to.PutRow(ctx, r, 0); err != nil {
				return fmt.Errorf("copy connection %s: %w", r.ID, err)
			}
			res.RowsCopied++
		default:
			return fmt.Errorf("read connection %s from the destination: %w", r.ID, err)
		}
		report("connections", visited, total)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("tokenstore: migrate: %w", err)
	}

	after := ""
	for {
		entries, err := from.Scan(ctx, "", after, batch)
		if err != nil {
			return res, fmt.Errorf("tokenstore: migrate: scan entries: %w", err)
		}
		for _, e := range entries {
			res.Entries++
			ttl := time.Duration(0)
			if !e.ExpiresAt.IsZero() {
				ttl = time.Until(e.ExpiresAt)
				if ttl <= 0 {
					continue // expired while we copied
				}
			}
			wrote, err := copyEntry(ctx, to, e, ttl)
			switch {
			case err != nil:
				return res, fmt.Errorf("tokenstore: migrate: copy entry %s: %w", e.Key, err)
			case wrote == entryCopied:
				res.EntriesCopied++
			case wrote == entryOverwritten:
				res.EntriesOverwritten++
			}
			// Read it back, as rows are (below), against the value just
			// read from the source rather than a second scan of it: on a
			// first pass the old server is still writing, and an entry
			// it adds or changes after this point is the second pass's
			// to copy, not a failed copy.
			got, err := to.Load(ctx, e.Key)
			switch {
			case errors.Is(err, finchconnect.ErrNotFound) && !e.ExpiresAt.IsZero() && time.Until(e.ExpiresAt) < time.Second:
				// Expired at the destination since (its clock may run a
				// little ahead of ours).
			case err != nil:
				return res, fmt.Errorf("tokenstore: migrate: verify entry %s: %w", e.Key, err)
			case !bytes.Equal(got, e.Value):
				return res, fmt.Errorf("tokenstore: migrate: verify entry %s: the copy differs from the source", e.Key)
			default:
				res.EntriesVerified++
			}
			report("entries", res.Entries, 0)
		}
		if len(entries) < batch {
			break
		}
		after = entries[len(entries)-1].Key
	}

	err = eachRow(ctx, from, batch, func(r Row) error {
		got, err := to.GetRow(ctx, r.ID)
		if err != nil {
			return fmt.Errorf("verify connection %s: %w", r.ID, err)
		}
		if !sameRow(got, r) {
			return fmt.Errorf("verify connection %s: the copy differs from the source", r.ID)
		}
		res.Verified++
		report("verify", res.Verified, total)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("tokenstore: migrate: %w", err)
	}
	return res, nil
}

// What copyEntry did.
const (
	entryKept        = iota // the destination held the source's value already
	entryCopied             // the destination lacked the entry
	entryOverwritten        // the destination held another value
)

// copyEntry makes the destination's entry under e.Key hold e.Value, to
// expire in ttl (0: never): the source wins, as it does for rows. An entry
// the destination holds with an equal value is left as it is, expiry
// included. A different value is replaced with Swap, conditioned on the
// value just read, so a write that reaches the destination meanwhile is
// not lost silently: copyEntry reads again and decides again, a few times.
func copyEntry(ctx context.Context, to Backend, e Entry, ttl time.Duration) (int, error) {
	const attempts = 3
	for range attempts {
		err := to.Claim(ctx, e.Key, e.Value, ttl)
		if err == nil {
			return entryCopied, nil
		}
		if !errors.Is(err, finchconnect.ErrConflict) {
			return 0, err
		}
		cur, err := to.Load(ctx, e.Key)
		if errors.Is(err, finchconnect.ErrNotFound) {
			continue // expired or removed since the Claim: claim again
		}
		if err != nil {
			return 0, err
		}
		if bytes.Equal(cur, e.Value) {
			return entryKept, nil
		}
		err = to.Swap(ctx, e.Key, cur, e.Value, ttl)
		if err == nil {
			return entryOverwritten, nil
		}
		if !errors.Is(err, finchconnect.ErrConflict) && !errors.Is(err, finchconnect.ErrNotFound) {
			return 0, err
		}
		// Changed, expired or removed since the Load: look again.
	}
	return 0, fmt.Errorf("the destination's entry changed %d times while it was copied: is a server using the destination?", attempts)
}

func sameRow(a, b Row) bool {
	return a.ID == b.ID && a.CustomerID == b.CustomerID && a.ProviderID == b.ProviderID && a.Status == b.Status &&
		bytes.Equal(a.Meta, b.Meta) && bytes.Equal(a.Sealed, b.Sealed)
}

func eachRow(ctx context.Context, b Rows, batch int, fn func(Row) error) error {
	after := ""
	for {
		rows, err := b.ListRows(ctx, Filter{After: after, Limit: batch})
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rows) < batch {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

func countRows(ctx context.Context, b Rows, batch int) (int, error) {
	n := 0
	err := eachRow(ctx, b, batch, func(Row) error { n++; return nil })
	return n, err
}
