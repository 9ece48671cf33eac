package redis

import (
	"context"
	"fmt"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	goredis "github.com/redis/go-redis/v9"
)

// claimAll claims every key or none. KEYS: the entry index, then the n
// entry keys. ARGV: for each key its value, ttl ms (0 never expires) and
// bare key. Returns 0 on success, or the 1-based position of the first
// held key.
var claimAll = goredis.NewScript(`
local n = #KEYS - 1
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
`)

// ClaimAll implements tokenstore.Backend, in one script: one round trip,
// atomic, and legal on Redis Cluster since every key shares the hash tag.
func (b *Backend) ClaimAll(ctx context.Context, claims []tokenstore.Claim) (int, error) {
	if err := tokenstore.CheckClaims(claims); err != nil || len(claims) == 0 {
		return -1, err // a repeated key, or nothing to claim
	}
	keys := make([]string, 1, len(claims)+1)
	keys[0] = b.entryIndex()
	args := make([]any, 0, 3*len(claims))
	for _, c := range claims {
		keys = append(keys, b.entryKey(c.Key))
		args = append(args, c.Value, ttlArg(c.TTL), c.Key)
	}
	n, err := claimAll.Run(ctx, b.rdb, keys, args...).Int64()
	if err != nil {
		return -1, fmt.Errorf("redis: claim all: %v", err)
	}
	if n > 0 {
		return int(n - 1), fmt.Errorf("redis: claim %s: %w", claims[n-1].Key, finchconnect.ErrConflict)
	}
	return -1, nil
}
