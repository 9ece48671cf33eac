package redis

import (
	"context"
	"fmt"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	goredis "github.com/redis/go-redis/v9"
)

// claimAllLua defines claim_all(n), shared by claimAll and claimAllIf: it
// claims the n entry keys KEYS[2..n+1] or none, KEYS[1] being the entry
// index. ARGV: for each key its value, ttl ms (0 never expires) and bare
// key. It returns 0 on success, or the 1-based position of the first held
// key.
const claimAllLua = `
local function claim_all(n)
  for i = 1, n do
    if redis.call('EXISTS', KEYS[i + 1]) == 1 then return i end
  end
  for i = 1, n do
    local v, ttl, bare = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1]), ARGV[3 * i]
    if ttl > 0 then
      redis.call('SET', KEYS[i + 1], v, 'PX', ttl)
    else
      redis.call('SET', KEYS[i + 1], v)
    end
    redis.call('ZADD', KEYS[1], 0, bare)
  end
  return 0
end
`

// claimAll claims every key or none (see claimAllLua). KEYS: the entry
// index, then the n entry keys. ARGV as claim_all's.
var claimAll = goredis.NewScript(claimAllLua + "return claim_all(#KEYS - 1)\n")

// claimAllIf is claimAll guarded by an entry. KEYS: the entry index, the n
// entry keys, then the guard's entry key. ARGV as claim_all's. It returns
// {-1} if the guard is absent, having written nothing, else
// {claim_all's result, the guard's value}.
var claimAllIf = goredis.NewScript(claimAllLua + `
local g = redis.call('GET', KEYS[#KEYS])
if not g then return {-1} end
return {claim_all(#KEYS - 2), g}
`)

// ClaimAll implements tokenstore.Backend, in one script: one round trip,
// atomic, and legal on Redis Cluster since every key shares the hash tag.
func (b *Backend) ClaimAll(ctx context.Context, claims []tokenstore.Claim) (int, error) {
	if err := tokenstore.CheckClaims(claims); err != nil || len(claims) == 0 {
		return -1, err // a repeated key, or nothing to claim
	}
	keys, args := b.claimArgs(claims)
	n, err := claimAll.Run(ctx, b.rdb, keys, args...).Int64()
	if err != nil {
		return -1, fmt.Errorf("redis: claim all: %v", err)
	}
	if n > 0 {
		return int(n - 1), fmt.Errorf("redis: claim %s: %w", claims[n-1].Key, finchconnect.ErrConflict)
	}
	return -1, nil
}

// ClaimAllIf implements tokenstore.Backend, in one script: one round trip,
// atomic (the guard cannot expire or change between its read and the
// claims), and legal on Redis Cluster since every key shares the hash tag.
// With no claims it only reads the guard.
func (b *Backend) ClaimAllIf(ctx context.Context, guard string, claims []tokenstore.Claim) ([]byte, int, error) {
	if err := tokenstore.CheckGuardedClaims(guard, claims); err != nil {
		return nil, -1, err // a repeated key, or the guard among the claims
	}
	keys, args := b.claimArgs(claims)
	keys = append(keys, b.entryKey(guard))
	res, err := claimAllIf.Run(ctx, b.rdb, keys, args...).Slice()
	var (
		n     int64
		value string
		ok    bool
	)
	if err == nil {
		switch {
		case len(res) == 1:
			n, ok = res[0].(int64)
			ok = ok && n == -1
		case len(res) == 2:
			n, ok = res[0].(int64)
			var okv bool
			value, okv = res[1].(string)
			ok = ok && okv && n >= 0 && n <= int64(len(claims))
		}
		if !ok {
			err = fmt.Errorf("unexpected reply %v", res)
		}
	}
	if err != nil {
		return nil, -1, fmt.Errorf("redis: claim all if %s: %v", guard, err)
	}
	if n < 0 {
		return nil, -1, fmt.Errorf("redis: claim if %s: %w", guard, finchconnect.ErrNotFound)
	}
	v := append([]byte{}, value...) // non-nil, even when empty
	if n > 0 {
		return v, int(n - 1), fmt.Errorf("redis: claim %s: %w", claims[n-1].Key, finchconnect.ErrConflict)
	}
	return v, -1, nil
}

// claimArgs are claim_all's KEYS (the entry index, then each claim's entry
// key) and ARGV (each claim's value, ttl and bare key), with room for one
// more key.
func (b *Backend) claimArgs(claims []tokenstore.Claim) ([]string, []any) {
	keys := make([]string, 1, len(claims)+2)
	keys[0] = b.entryIndex()
	args := make([]any, 0, 3*len(claims))
	for _, c := range claims {
		keys = append(keys, b.entryKey(c.Key))
		args = append(args, c.Value, ttlArg(c.TTL), c.Key)
	}
	return keys, args
}
