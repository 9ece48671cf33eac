// Package redis is a tokenstore.Backend on Redis, for finchconnect replicas
// that share one Redis (or Redis Cluster).
//
// A connection row is a hash; secondary indexes (all rows, and rows by
// customer, provider and status) are sorted sets with score 0, ordered
// lexicographically, which is the byte order the Backend contract asks for.
// Every write that touches a row and its indexes runs in one Lua script, so
// an index never disagrees with its row. Entries (states, the callback
// ledger, …) are strings with Redis's own expiry, plus a sorted set of their
// keys for Scan; a member whose entry has expired is dropped lazily, by a
// script that checks the entry is still absent.
//
// Every key of a namespace carries the same hash tag, {prefix}, so all of
// them live in one slot: the Lua scripts are legal on Redis Cluster, at the
// cost of one namespace being served by one shard.
//
// Durability is Redis's: with appendonly yes and appendfsync always a write
// is on disk when the call returns; with everysec up to a second of writes
// can be lost on a crash of the Redis host (see docs/scaling.md).
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	goredis "github.com/redis/go-redis/v9"
)

// Options configure a Backend. The zero value is usable.
type Options struct {
	// Prefix namespaces every key, inside a hash tag: "{Prefix}:…".
	// Default "finchconnect". Two finchconnect deployments sharing a Redis
	// need different prefixes.
	Prefix string
}

// Backend is a tokenstore.Backend on Redis. It is safe for concurrent use by
// goroutines and by processes sharing the Redis.
type Backend struct {
	rdb    goredis.UniversalClient
	ns     string          // "{prefix}:"
	client *goredis.Client // the client Open created, closed by Close; nil after New
}

var _ tokenstore.Backend = (*Backend)(nil)

// Open connects to the Redis at rawURL (redis:// or rediss://, as
// redis.ParseURL reads it) and checks that it answers. Two parameters of
// finchconnect's own may be added to the URL: prefix=NAME sets
// Options.Prefix, and autopipeline=true sends commands through go-redis's
// autopipeliner (see below). Close must be called.
//
// With autopipeline=true, the commands that concurrent requests issue at
// the same moment travel to Redis together, as one pipeline on one
// connection, instead of one write and one read each: in a load run it cut
// the client CPU per command by more than half (BENCHMARKS.md). Every
// command is still its own command, and every script still runs
// atomically; what changes is only how they share the wire. It is off by
// default because go-redis marks the autopipeliner experimental.
func Open(ctx context.Context, rawURL string) (*Backend, error) {
	var o Options
	autopipeline := false
	if u, err := url.Parse(rawURL); err == nil {
		q := u.Query()
		o.Prefix = q.Get("prefix")
		if v := q.Get("autopipeline"); v != "" {
			if autopipeline, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("redis: the store URL's autopipeline=%q is not true or false", v)
			}
		}
		q.Del("prefix")
		q.Del("autopipeline")
		u.RawQuery = q.Encode()
		rawURL = u.String()
	}
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		// go-redis's parse errors can quote the URL, password included.
		return nil, errors.New("redis: the store URL does not parse as a redis:// or rediss:// URL")
	}
	if u, err := url.Parse(rawURL); err == nil && !u.Query().Has("protocol") {
		// RESP2 unless the URL asks otherwise: the backend uses no RESP3
		// feature, and go-redis spends measurable CPU on RESP3 push
		// notifications on every read (8% of a callback's profile).
		opts.Protocol = 2
	}
	rdb := goredis.NewClient(opts)
	var c goredis.UniversalClient = rdb
	if autopipeline {
		ap, err := rdb.AutoPipeline()
		if err != nil {
			rdb.Close()
			return nil, fmt.Errorf("redis: start the autopipeliner: %v", err)
		}
		c = ap // closed with rdb: the client drains it first
	}
	b := New(c, o)
	b.client = rdb
	if err := b.Ping(ctx); err != nil {
		rdb.Close()
		return nil, err
	}
	return b, nil
}

// New returns a Backend on an existing client (a *redis.Client,
// *redis.ClusterClient or *redis.Ring). Close does not close it.
func New(rdb goredis.UniversalClient, opts Options) *Backend {
	p := opts.Prefix
	if p == "" {
		p = "finchconnect"
	}
	return &Backend{rdb: rdb, ns: "{" + p + "}:"}
}

func (b *Backend) rowKey(id string) string    { return b.ns + "row:" + id }
func (b *Backend) entryKey(key string) string { return b.ns + "e:" + key }
func (b *Backend) idxAll() string             { return b.ns + "idx:all" }
func (b *Backend) idxPrefix() string          { return b.ns + "idx:" }
func (b *Backend) entryIndex() string         { return b.ns + "eidx" }

// GetRow implements tokenstore.Backend.
func (b *Backend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	m, err := b.rdb.HGetAll(ctx, b.rowKey(id)).Result()
	if err != nil {
		return tokenstore.Row{}, fmt.Errorf("redis: get connection %s: %v", id, err)
	}
	if len(m) == 0 {
		return tokenstore.Row{}, fmt.Errorf("redis: connection %s: %w", id, finchconnect.ErrNotFound)
	}
	return rowFrom(id, m)
}

func rowFrom(id string, m map[string]string) (tokenstore.Row, error) {
	v, err := strconv.ParseInt(m["version"], 10, 64)
	if err != nil {
		return tokenstore.Row{}, fmt.Errorf("redis: connection %s: bad version", id)
	}
	return tokenstore.Row{
		ID: id, CustomerID: m["customer_id"], ProviderID: m["provider_id"], Status: m["status"],
		Meta: []byte(m["meta"]), Sealed: []byte(m["sealed"]), Version: v,
	}, nil
}

// putRowLua defines put_row_at(row key, index, prefix, id, fields..., expect,
// insert version), used by txn, and put_row(), shared by putRow and
// putRowSwap, which takes them from KEYS and ARGV as below. It writes
// a row and moves its index memberships, if the version matches. KEYS[1]
// row, KEYS[2] the all-rows index. ARGV[1..9]: id, customer, provider,
// status, meta, sealed, expected version (-1 any), index prefix, the
// version to start at if the row is inserted (tokenstore.InsertVersion).
// It returns the new version, or -1 on a version mismatch, having written
// nothing. Versions are Lua numbers, doubles: exact up to 2^53. They are
// written into the hash formatted by the script, as plain digits: Redis
// 7.2.0-7.2.4 turn a Lua number with many trailing zeros into
// "1.7723664e+15" by themselves (redis/redis#13113), which would make the
// row unreadable.
const putRowLua = `
local function put_row_at(rk, idx, p, id, customer, provider, status, meta, sealed, expect, insertv)
  local cur = redis.call('HMGET', rk, 'version', 'customer_id', 'provider_id', 'status')
  local v = tonumber(cur[1]) or 0
  expect = tonumber(expect)
  if expect >= 0 and v ~= expect then return -1 end
  local nv = tonumber(insertv)
  if v > 0 then
    nv = v + 1
    redis.call('ZREM', p .. 'customer:' .. cur[2], id)
    redis.call('ZREM', p .. 'provider:' .. cur[3], id)
    redis.call('ZREM', p .. 'status:' .. cur[4], id)
  end
  redis.call('HSET', rk, 'customer_id', customer, 'provider_id', provider, 'status', status,
    'meta', meta, 'sealed', sealed, 'version', string.format('%.0f', nv))
  redis.call('ZADD', idx, 0, id)
  redis.call('ZADD', p .. 'customer:' .. customer, 0, id)
  redis.call('ZADD', p .. 'provider:' .. provider, 0, id)
  redis.call('ZADD', p .. 'status:' .. status, 0, id)
  return nv
end
local function put_row()
  return put_row_at(KEYS[1], KEYS[2], ARGV[8], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[9])
end
`

// putRow writes a row (see putRowLua). It returns the new version, or -1
// on a version mismatch.
var putRow = goredis.NewScript(putRowLua + "return put_row()\n")

// PutRow implements tokenstore.Backend.
func (b *Backend) PutRow(ctx context.Context, r tokenstore.Row, expect int64) (int64, error) {
	v, err := putRow.Run(ctx, b.rdb, []string{b.rowKey(r.ID), b.idxAll()},
		r.ID, r.CustomerID, r.ProviderID, r.Status, r.Meta, r.Sealed, expect, b.idxPrefix(), tokenstore.InsertVersion(r)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis: put connection %s: %v", r.ID, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("redis: put connection %s: version is not %d: %w", r.ID, expect, finchconnect.ErrConflict)
	}
	return v, nil
}

// deleteRow removes a row and its index memberships; 0 if there was none.
var deleteRow = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'customer_id', 'provider_id', 'status')
if not cur[1] then return 0 end
local p = ARGV[2]
redis.call('ZREM', p .. 'customer:' .. cur[2], ARGV[1])
redis.call('ZREM', p .. 'provider:' .. cur[3], ARGV[1])
redis.call('ZREM', p .. 'status:' .. cur[4], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
`)

// DeleteRow implements tokenstore.Backend.
func (b *Backend) DeleteRow(ctx context.Context, id string) error {
	n, err := deleteRow.Run(ctx, b.rdb, []string{b.rowKey(id), b.idxAll()}, id, b.idxPrefix()).Int64()
	if err != nil {
		return fmt.Errorf("redis: delete connection %s: %v", id, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: delete connection %s: %w", id, finchconnect.ErrNotFound)
	}
	return nil
}

// ListRows implements tokenstore.Backend. It walks the most selective index
// the filter names and checks the other fields on the rows it reads.
func (b *Backend) ListRows(ctx context.Context, f tokenstore.Filter) ([]tokenstore.Row, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = tokenstore.DefaultLimit
	}
	idx := b.idxAll()
	switch {
	case f.CustomerID != "":
		idx = b.idxPrefix() + "customer:" + f.CustomerID
	case f.ProviderID != "":
		idx = b.idxPrefix() + "provider:" + f.ProviderID
	case f.Status != "":
		idx = b.idxPrefix() + "status:" + f.Status
	}
	var out []tokenstore.Row
	after := f.After
	for len(out) < limit {
		min := "-"
		if after != "" {
			min = "(" + after
		}
		batch := max(limit-len(out), 16)
		ids, err := b.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: idx, Start: min, Stop: "+", ByLex: true, Count: int64(batch)}).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: list connections: %v", err)
		}
		if len(ids) == 0 {
			break
		}
		pipe := b.rdb.Pipeline()
		cmds := make([]*goredis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, b.rowKey(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("redis: list connections: %v", err)
		}
		for i, id := range ids {
			m := cmds[i].Val()
			if len(m) == 0 {
				continue // deleted between the two reads
			}
			r, err := rowFrom(id, m)
			if err != nil {
				return nil, err
			}
			if (f.CustomerID != "" && r.CustomerID != f.CustomerID) || (f.ProviderID != "" && r.ProviderID != f.ProviderID) ||
				(f.Status != "" && r.Status != f.Status) {
				continue
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
		after = ids[len(ids)-1]
		if len(ids) < batch {
			break
		}
	}
	return out, nil
}

func ttlArg(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(ttl.Milliseconds(), 1)
}

// claim sets an entry if absent and indexes its key. ARGV: value, ttl ms
// (0 never expires), bare key.
var claim = goredis.NewScript(`
local ok
if tonumber(ARGV[2]) > 0 then
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if not ok then return 0 end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
return 1
`)

// Claim implements tokenstore.Backend.
func (b *Backend) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	n, err := claim.Run(ctx, b.rdb, []string{b.entryKey(key), b.entryIndex()}, value, ttlArg(ttl), key).Int64()
	if err != nil {
		return fmt.Errorf("redis: claim %s: %v", key, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: claim %s: %w", key, finchconnect.ErrConflict)
	}
	return nil
}

// Load implements tokenstore.Backend.
func (b *Backend) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := b.rdb.Get(ctx, b.entryKey(key)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: load %s: %w", key, finchconnect.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: load %s: %v", key, err)
	}
	return v, nil
}

// swapLua defines swap_entry(key, old, new, ttl ms (0 never expires)),
// shared by swap and putRowSwap: it compares and sets an entry. It returns
// 1 on success, 0 if absent, -1 if the value differs.
const swapLua = `
local function swap_entry(key, old, new, ttl)
  local cur = redis.call('GET', key)
  if not cur then return 0 end
  if cur ~= old then return -1 end
  if tonumber(ttl) > 0 then
    redis.call('SET', key, new, 'PX', ttl)
  else
    redis.call('SET', key, new)
  end
  return 1
end
`

// swap compares and sets an entry (see swapLua). ARGV: old, new, ttl ms.
// Returns 1 on success, 0 if absent, -1 if the value differs.
var swap = goredis.NewScript(swapLua + "return swap_entry(KEYS[1], ARGV[1], ARGV[2], ARGV[3])\n")

// Swap implements tokenstore.Backend.
func (b *Backend) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	n, err := swap.Run(ctx, b.rdb, []string{b.entryKey(key)}, old, value, ttlArg(ttl)).Int64()
	switch {
	case err != nil:
		return fmt.Errorf("redis: swap %s: %v", key, err)
	case n == 0:
		return fmt.Errorf("redis: swap %s: %w", key, finchconnect.ErrNotFound)
	case n < 0:
		return fmt.Errorf("redis: swap %s: %w", key, finchconnect.ErrConflict)
	}
	return nil
}

var forget = goredis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// Forget implements tokenstore.Backend.
func (b *Backend) Forget(ctx context.Context, key string) error {
	if err := forget.Run(ctx, b.rdb, []string{b.entryKey(key), b.entryIndex()}, key).Err(); err != nil {
		return fmt.Errorf("redis: forget %s: %v", key, err)
	}
	return nil
}

// Scan implements tokenstore.Backend. It walks the key index by lex range
// from the prefix, reads each entry with its expiry, and drops the index
// members of entries Redis has expired.
func (b *Backend) Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error) {
	if limit <= 0 {
		limit = tokenstore.DefaultLimit
	}
	min := "[" + prefix
	if after >= prefix {
		min = "(" + after
	}
	var out []tokenstore.Entry
	for len(out) < limit {
		batch := max(limit-len(out), 16)
		keys, err := b.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.entryIndex(), Start: min, Stop: "+", ByLex: true, Count: int64(batch)}).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: scan %s: %v", prefix, err)
		}
		if len(keys) == 0 {
			break
		}
		pipe := b.rdb.Pipeline()
		gets := make([]*goredis.StringCmd, len(keys))
		exps := make([]*goredis.DurationCmd, len(keys))
		for i, k := range keys {
			if !strings.HasPrefix(k, prefix) {
				break
			}
			gets[i] = pipe.Get(ctx, b.entryKey(k))
			exps[i] = pipe.PExpireTime(ctx, b.entryKey(k))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("redis: scan %s: %v", prefix, err)
		}
		var gone []string
		done := false
		for i, k := range keys {
			if gets[i] == nil {
				done = true // past the prefix
				break
			}
			v, err := gets[i].Bytes()
			if errors.Is(err, goredis.Nil) {
				gone = append(gone, k)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("redis: scan %s: %v", prefix, err)
			}
			e := tokenstore.Entry{Key: k, Value: v}
			if d := exps[i].Val(); d > 0 {
				e.ExpiresAt = time.UnixMilli(d.Milliseconds())
			}
			out = append(out, e)
			if len(out) == limit {
				done = true
				break
			}
		}
		if len(gone) > 0 {
			// Best effort: a member left behind is skipped again next time.
			// Not a plain ZREM: a Claim may have stored the key again since
			// the GET above, and its ZADD found the member still there.
			_ = b.dropExpired(ctx, gone)
		}
		if done || len(keys) < batch {
			break
		}
		min = "(" + keys[len(keys)-1]
	}
	return out, nil
}

// unindexAbsent removes from the entry index every key of keys whose entry
// does not exist, checking and removing in one script: a key claimed again
// since Scan found its entry expired keeps its member, so Scan still finds
// it. KEYS: the entry index, then the entry keys; ARGV: the bare keys.
var unindexAbsent = goredis.NewScript(`
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return 0
`)

// dropExpired removes the index members of the entries under keys that do
// not exist (see the script). Every key shares the {prefix} hash tag, so
// the script is legal on Redis Cluster.
func (b *Backend) dropExpired(ctx context.Context, keys []string) error {
	ks := make([]string, 0, len(keys)+1)
	ks = append(ks, b.entryIndex())
	args := make([]any, len(keys))
	for i, k := range keys {
		ks = append(ks, b.entryKey(k))
		args[i] = k
	}
	return unindexAbsent.Run(ctx, b.rdb, ks, args...).Err()
}

// Ping implements tokenstore.Backend.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %v", err)
	}
	return nil
}

// Close closes the client if Open created it.
func (b *Backend) Close() error {
	if b.client != nil {
		return b.client.Close()
	}
	return nil
}
