// Package redisbudget keeps the windows of a [budget.Budget] in Redis, so
// that every replica of one application draws from one Finch rate budget.
//
// A window is two keys in one hash slot (so it works on Redis Cluster):
// a sorted set of lease ids scored by their expiry (Unix milliseconds)
// and a hash of lease id → slots held. Each lease request is one Lua
// script: give back the previous lease's unspent slots, drop the expired
// leases, count the rest, grant what fits. Both keys expire with their
// last lease, so an idle application leaves nothing behind. A third key
// of the slot, a string of the pause's end (Unix milliseconds) that
// expires with it, is a 429's pause or the IP breaker: while it lasts the
// script grants nothing.
package redisbudget

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/finchconnect/finchconnect/budget"
)

// Shared is a [budget.Shared] on Redis.
type Shared struct {
	c      redis.UniversalClient
	prefix string
}

// New returns the shared windows on c, under keys starting with prefix
// (default "finchconnect:budget:").
func New(c redis.UniversalClient, prefix string) *Shared {
	if prefix == "" {
		prefix = "finchconnect:budget:"
	}
	return &Shared{c: c, prefix: prefix}
}

func (s *Shared) keys(key string) []string {
	base := s.prefix + "{" + key + "}"
	return []string{base + ":exp", base + ":n", base + ":pause"}
}

// giveBack defines giveback(id, unused), which gives back a lease's
// unspent slots: the one copy the lease and release scripts share.
const giveBack = `
local function giveback(id, unused)
  local c = tonumber(redis.call('HGET', KEYS[2], id) or '0')
  local left = c - tonumber(unused)
  if left > 0 then
    redis.call('HSET', KEYS[2], id, left)
  else
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[1], id)
  end
end
`

// leaseScript: KEYS exp zset, count hash, pause; ARGV now_ms, until_ms,
// limit, want, id, return_id, return_unused. Returns {granted, used,
// next_free_ms, paused_ms}.
var leaseScript = redis.NewScript(giveBack + `
local now = tonumber(ARGV[1])
local untl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
if ARGV[6] ~= '' then giveback(ARGV[6], ARGV[7]) end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(old) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local used = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(v) end
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused <= now then paused = 0 end
local grant = math.min(want, limit - used)
if paused > 0 then grant = 0 end
local nextfree = 0
if grant > 0 then
  redis.call('ZADD', KEYS[1], untl, ARGV[5])
  redis.call('HSET', KEYS[2], ARGV[5], grant)
  used = used + grant
  local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  local ttl = math.max(last - now, 1) + 1000
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  grant = 0
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then nextfree = tonumber(first[2]) end
  if paused > 0 and (limit - used > 0 or paused > nextfree) then nextfree = paused end
end
return {grant, used, nextfree, paused}
`)

// releaseScript: KEYS as above; ARGV id, unused.
var releaseScript = redis.NewScript(giveBack + `
giveback(ARGV[1], ARGV[2])
return 1
`)

// pauseScript: KEYS as above; ARGV until_ms. Keeps the later pause.
var pauseScript = redis.NewScript(`
local untl = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[3]) or '0')
if untl > cur then
  redis.call('SET', KEYS[3], untl, 'PXAT', untl)
end
return 1
`)

// Lease implements [budget.Shared] in one script call.
func (s *Shared) Lease(ctx context.Context, req budget.LeaseRequest) (budget.LeaseResult, error) {
	retID, retN := "", 0
	if req.Return != nil {
		retID, retN = req.Return.ID, req.Return.Unused
	}
	v, err := leaseScript.Run(ctx, s.c, s.keys(req.Key),
		req.Now.UnixMilli(), req.Until.UnixMilli(), req.Limit, req.Want, req.ID, retID, retN).Int64Slice()
	if err != nil {
		return budget.LeaseResult{}, fmt.Errorf("redisbudget: lease: %w", err)
	}
	if len(v) != 4 {
		return budget.LeaseResult{}, fmt.Errorf("redisbudget: lease: unexpected reply of %d values", len(v))
	}
	res := budget.LeaseResult{Granted: int(v[0]), Used: int(v[1])}
	if v[2] > 0 {
		res.NextFree = time.UnixMilli(v[2])
	}
	if v[3] > 0 {
		res.Paused = time.UnixMilli(v[3])
	}
	return res, nil
}

// Release implements [budget.Shared].
func (s *Shared) Release(ctx context.Context, key, id string, unused int) error {
	if err := releaseScript.Run(ctx, s.c, s.keys(key), id, unused).Err(); err != nil {
		return fmt.Errorf("redisbudget: release: %w", err)
	}
	return nil
}

// Pause implements [budget.Shared].
func (s *Shared) Pause(ctx context.Context, key string, until time.Time) error {
	if err := pauseScript.Run(ctx, s.c, s.keys(key), until.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redisbudget: pause: %w", err)
	}
	return nil
}
