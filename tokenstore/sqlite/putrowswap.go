package sqlite

import (
	"context"
	"fmt"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// PutRowSwap implements [tokenstore.Backend.PutRowSwap] as one write of the
// group commit: PutRow's statement, then, if it wrote, Swap's conditional
// UPDATE, in the same transaction, so one commit (one fsync) makes both
// durable or neither. A version conflict returns before the swap runs and
// leaves nothing written; a swap whose condition fails changes no entry and
// is an answer (swapped false), not a failure, so the row is still written.
func (b *Backend) PutRowSwap(ctx context.Context, row tokenstore.Row, expect int64, sw tokenstore.Swap) (int64, bool, error) {
	var v int64
	var swapped bool
	err := b.write(ctx, func(ctx context.Context, x execer) (err error) {
		if v, err = putRow(ctx, x, row, expect); err != nil {
			return err
		}
		swapped, err = b.swapEntry(ctx, x, sw.Key, sw.Old, sw.Value, sw.TTL, b.now())
		return err
	})
	if err != nil && !outcome(err) {
		return 0, false, fmt.Errorf("sqlite: put row %q, swap %q: %v", row.ID, sw.Key, err)
	}
	if err != nil {
		return 0, false, err
	}
	return v, swapped, nil
}
