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
	EntriesCopied int
	Verified      int // rows read back from the destination and found equal
}

// Migrate copies every connection row and every unexpired entry from one
// backend to another, byte for byte: sealed tokens travel sealed, so no key
// is needed. Entries keep their remaining time to live.
//
// It is safe to re-run: a row equal in both backends (all fields but the
// version) is skipped, and where they differ the source wins. An entry is
// copied only if the destination lacks it. After copying, every source row
// is read back from the destination and compared; any difference is an
// error. Rows or entries the destination holds and the source does not are
// left alone.
//
// Writes that reach the source during a migration may be missed: stop the
// servers (or point them at the destination) first, then run it again to
// pick up stragglers.
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
			switch err := to.Claim(ctx, e.Key, e.Value, ttl); {
			case err == nil:
				res.EntriesCopied++
			case errors.Is(err, finchconnect.ErrConflict):
				// The destination has it already (an earlier run).
			default:
				return res, fmt.Errorf("tokenstore: migrate: copy entry: %w", err)
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

func sameRow(a, b Row) bool {
	return a.ID == b.ID && a.CustomerID == b.CustomerID && a.ProviderID == b.ProviderID && a.Status == b.Status &&
		bytes.Equal(a.Meta, b.Meta) && bytes.Equal(a.Sealed, b.Sealed)
}

func eachRow(ctx context.Context, b Backend, batch int, fn func(Row) error) error {
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

func countRows(ctx context.Context, b Backend, batch int) (int, error) {
	n := 0
	err := eachRow(ctx, b, batch, func(Row) error { n++; return nil })
	return n, err
}
