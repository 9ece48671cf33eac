package redis

import (
	"context"
	"fmt"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	goredis "github.com/redis/go-redis/v9"
)

// putRowSwap writes a row as putRow does and, if it was written, swaps an
// entry as swap does. KEYS[1] row, KEYS[2] the all-rows index, KEYS[3] the
// entry. ARGV[1..9] as putRow's, then ARGV[10..12] the entry's old value,
// new value and ttl ms (0 never expires). It returns {new version, 1 if
// swapped else 0}, or {-1, 0} on a version mismatch, having written
// nothing.
var putRowSwap = goredis.NewScript(putRowLua + swapLua + `
local v = put_row()
if v < 0 then return {-1, 0} end
if swap_entry(KEYS[3], ARGV[10], ARGV[11], ARGV[12]) == 1 then return {v, 1} end
return {v, 0}
`)

// PutRowSwap implements tokenstore.Backend, in one script: one round trip,
// atomic, and legal on Redis Cluster since the row, its indexes and the
// swapped entry share the hash tag.
func (b *Backend) PutRowSwap(ctx context.Context, r tokenstore.Row, expect int64, sw tokenstore.Swap) (int64, bool, error) {
	res, err := putRowSwap.Run(ctx, b.rdb, []string{b.rowKey(r.ID), b.idxAll(), b.entryKey(sw.Key)},
		r.ID, r.CustomerID, r.ProviderID, r.Status, r.Meta, r.Sealed, expect, b.idxPrefix(), tokenstore.InsertVersion(r),
		sw.Old, sw.Value, ttlArg(sw.TTL)).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return 0, false, fmt.Errorf("redis: put connection %s, swap %s: %v", r.ID, sw.Key, err)
	}
	if res[0] < 0 {
		return 0, false, fmt.Errorf("redis: put connection %s: version is not %d: %w", r.ID, expect, finchconnect.ErrConflict)
	}
	return res[0], res[1] == 1, nil
}
