package server

import (
	"context"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
)

// DefaultConnCacheTTL is Config.ConnectionCacheTTL's default: a busy proxy
// reads and opens each connection's row about once a second instead of on
// every call, and a connection disconnected or re-authenticated on another
// replica is used with its old token for at most a second (this replica's
// own writes forget the entry at once).
const DefaultConnCacheTTL = time.Second

// maxCachedConns bounds the cache of opened connections: past it, the cache
// starts over, as apikey.Cache does. 10,000 entries of a few hundred bytes.
const maxCachedConns = 10_000

// connCache remembers, for the proxy, connections read from the store with
// their token opened, for a short time to live: the proxy's hot path then
// costs no store round trip and no unsealing. The token stays a
// finchconnect.Secret. An entry is forgotten when this replica writes the
// connection (status change, re-authentication, disconnect), and ignored
// when the store's keyring has changed since it was opened (a key rotated
// or retired: rows must open under the current keyring to be used). Other
// replicas' writes are seen within the TTL; what a stale entry can do is
// bounded in handleProxy (a 401 on a stale token does not mark a
// re-authenticated connection).
type connCache struct {
	ttl time.Duration // ≤ 0: off
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedConn
	gen     uint64 // bumped by forget, so a read that raced a write is not cached
}

type cachedConn struct {
	conn    finchconnect.Connection
	kr      *keyring.Keyring // the keyring the token was opened under
	expires time.Time
}

func newConnCache(ttl time.Duration, now func() time.Time) *connCache {
	return &connCache{ttl: ttl, now: now, entries: map[string]cachedConn{}}
}

// get returns the connection id, from the cache when a fresh entry opened
// under keyring kr is there (cached true), else from load, whose answer it
// keeps. Errors are never cached.
func (c *connCache) get(ctx context.Context, id string, kr *keyring.Keyring, load func(context.Context, string) (finchconnect.Connection, error)) (conn finchconnect.Connection, cached bool, err error) {
	if c.ttl <= 0 {
		conn, err = load(ctx, id)
		return conn, false, err
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[id]
	gen := c.gen
	c.mu.Unlock()
	if ok && e.kr == kr && now.Before(e.expires) {
		return e.conn, true, nil
	}
	conn, err = load(ctx, id)
	if err != nil {
		return conn, false, err
	}
	c.mu.Lock()
	// A write forgotten while load ran may have been read before it
	// landed: keep nothing then, the next call reads again.
	if c.gen == gen {
		if len(c.entries) >= maxCachedConns {
			clear(c.entries)
		}
		c.entries[id] = cachedConn{conn: conn, kr: kr, expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return conn, false, nil
}

// forget drops id's entry; this replica has written the connection.
func (c *connCache) forget(id string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	delete(c.entries, id)
	c.gen++
	c.mu.Unlock()
}
