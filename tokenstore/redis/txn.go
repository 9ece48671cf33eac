package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/finchconnect/finchconnect/tokenstore"
	goredis "github.com/redis/go-redis/v9"
)

// txnScript runs a tokenstore.Txn in one script, so atomically.
//
// KEYS[1] the all-rows index, KEYS[2] the entry index, then one key per
// condition (the entry's or the row's), then one per write. ARGV[1] the
// row index prefix, ARGV[2] the number of conditions, ARGV[3] the number of
// writes, then per condition its kind and its value (EntryEquals) or
// version (RowVersion), then per write its kind and its arguments:
// PutEntry value, ttl ms (0 never expires), bare key; ForgetEntry bare
// key; PutRowOp id, customer, provider, status, meta, sealed, insert
// version; DeleteRowOp id.
//
// It returns {ok 1|0, failed index (0-based, -1), then per condition
// present 1|0 and the value or the version, then per write the new
// version as digits ('0' when none)}.
var txnScript = goredis.NewScript(putRowLua + `
local p, nc, no = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {1, -1}
local a = 4
for i = 1, nc do
  local kind, want, k = tonumber(ARGV[a]), ARGV[a + 1], KEYS[2 + i]
  a = a + 2
  local present, read, holds
  if kind == 4 then
    local v = redis.call('HGET', k, 'version')
    present = v and 1 or 0
    read = v or '0'
    holds = tonumber(read) == tonumber(want)
  else
    local v = redis.call('GET', k)
    present = v and 1 or 0
    read = v or ''
    if kind == 1 then holds = not v
    elseif kind == 2 then holds = v and true or false
    else holds = v == want end
  end
  if not holds and out[1] == 1 then out[1] = 0; out[2] = i - 1 end
  out[#out + 1] = present
  out[#out + 1] = read
end
if out[1] == 0 then return out end
for i = 1, no do
  local kind, k = tonumber(ARGV[a]), KEYS[2 + nc + i]
  local nv = '0'
  if kind == 1 then
    if tonumber(ARGV[a + 2]) > 0 then
      redis.call('SET', k, ARGV[a + 1], 'PX', ARGV[a + 2])
    else
      redis.call('SET', k, ARGV[a + 1])
    end
    redis.call('ZADD', KEYS[2], 0, ARGV[a + 3])
    a = a + 4
  elseif kind == 2 then
    redis.call('DEL', k)
    redis.call('ZREM', KEYS[2], ARGV[a + 1])
    a = a + 2
  elseif kind == 3 then
    nv = string.format('%.0f', put_row_at(k, KEYS[1], p, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
      ARGV[a + 5], ARGV[a + 6], -1, ARGV[a + 7]))
    a = a + 8
  else
    local id = ARGV[a + 1]
    local cur = redis.call('HMGET', k, 'version', 'customer_id', 'provider_id', 'status')
    if cur[1] then
      redis.call('ZREM', p .. 'customer:' .. cur[2], id)
      redis.call('ZREM', p .. 'provider:' .. cur[3], id)
      redis.call('ZREM', p .. 'status:' .. cur[4], id)
      redis.call('ZREM', KEYS[1], id)
      redis.call('DEL', k)
    end
    a = a + 2
  end
  out[#out + 1] = nv
end
return out
`)

// Txn implements tokenstore.Backend in one script: one round trip, atomic.
// Like the other scripts it names every key it touches, rows and entries
// alike, under the backend's namespace.
func (b *Backend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	if err := tokenstore.CheckTxn(t); err != nil {
		return tokenstore.TxnResult{Failed: -1}, err
	}
	keys := []string{b.idxAll(), b.entryIndex()}
	args := []any{b.idxPrefix(), len(t.If), len(t.Then)}
	for _, c := range t.If {
		if c.Kind == tokenstore.RowVersion {
			keys = append(keys, b.rowKey(c.Key))
			args = append(args, int(c.Kind), c.Version)
		} else {
			keys = append(keys, b.entryKey(c.Key))
			args = append(args, int(c.Kind), c.Value)
		}
	}
	for _, o := range t.Then {
		switch o.Kind {
		case tokenstore.PutEntry:
			keys = append(keys, b.entryKey(o.Key))
			args = append(args, int(o.Kind), o.Value, ttlArg(o.TTL), o.Key)
		case tokenstore.ForgetEntry:
			keys = append(keys, b.entryKey(o.Key))
			args = append(args, int(o.Kind), o.Key)
		case tokenstore.PutRowOp:
			r := o.Row
			keys = append(keys, b.rowKey(r.ID))
			args = append(args, int(o.Kind), r.ID, r.CustomerID, r.ProviderID, r.Status, r.Meta, r.Sealed, tokenstore.InsertVersion(r))
		case tokenstore.DeleteRowOp:
			keys = append(keys, b.rowKey(o.Row.ID))
			args = append(args, int(o.Kind), o.Row.ID)
		}
	}
	reply, err := txnScript.Run(ctx, b.rdb, keys, args...).Slice()
	if err == nil {
		var res tokenstore.TxnResult
		res, err = txnResult(t, reply)
		if err == nil {
			return res, nil
		}
	}
	return tokenstore.TxnResult{Failed: -1}, fmt.Errorf("redis: txn: %v", err)
}

// txnResult decodes txnScript's reply.
func txnResult(t tokenstore.Txn, reply []any) (tokenstore.TxnResult, error) {
	bad := fmt.Errorf("unexpected reply of %d values", len(reply))
	if len(reply) < 2+2*len(t.If) {
		return tokenstore.TxnResult{}, bad
	}
	ok, _ := reply[0].(int64)
	failed, _ := reply[1].(int64)
	res := tokenstore.TxnResult{OK: ok == 1, Failed: int(failed),
		Reads: make([]tokenstore.Read, len(t.If)), Versions: make([]int64, len(t.Then))}
	for i, c := range t.If {
		present, _ := reply[2+2*i].(int64)
		read, _ := reply[3+2*i].(string)
		r := tokenstore.Read{Present: present == 1}
		if c.Kind == tokenstore.RowVersion {
			v, err := strconv.ParseInt(read, 10, 64)
			if err != nil {
				return tokenstore.TxnResult{}, bad
			}
			r.Version = v
		} else if r.Present {
			r.Value = []byte(read)
		}
		res.Reads[i] = r
	}
	if !res.OK {
		return res, nil
	}
	rest := reply[2+2*len(t.If):]
	if len(rest) != len(t.Then) {
		return tokenstore.TxnResult{}, bad
	}
	for i := range t.Then {
		s, _ := rest[i].(string)
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return tokenstore.TxnResult{}, bad
		}
		res.Versions[i] = v
	}
	return res, nil
}
