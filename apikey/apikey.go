// Package apikey issues and checks the API keys that an app's services use
// to call finchconnect's /v1 API.
//
// A key reads fck_<id>_<secret>: the id names the key's record, the secret
// (256 random bits) proves possession. Only a SHA-256 hash of the secret is
// stored, in the vault's key space (a tokenstore.Backend, through [KeySpace], under "apikey/"), so
// a read of the store yields no usable key; the hash is compared in
// constant time. A key is scoped read (GET routes and reads through the
// proxy), write (everything but Finch's request forwarding) or forward
// (everything, and POST /forward through the proxy: a raw call to the
// employer's payroll system, so it is a scope of its own), and can be
// revoked.
//
// Independently of its scope, a key may be made personal ([Personal]): only
// a personal key is shown the employees' personal fields (SSN, date of
// birth, income, bank accounts, personal contacts) in the local records
// that /v1 serves; other keys get them removed. It is a flag, not a rank of
// the scope, because a service that writes (starts Connect) has no more
// need of an SSN than one that reads.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// KeySpace is the part of the vault's store that API keys use: the methods
// of [tokenstore.KeySpace] that they call, and no more. Every
// tokenstore.Backend is one.
type KeySpace interface {
	Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Load(ctx context.Context, key string) ([]byte, error)
	Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error
	Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error)
}

// Scopes.
const (
	ScopeRead    = "read"
	ScopeWrite   = "write"
	ScopeForward = "forward"
)

// Scopes lists the scopes, each covering those before it.
var Scopes = []string{ScopeRead, ScopeWrite, ScopeForward}

// ns holds one record per key, under the key's id.
var ns = tokenstore.NS("apikey")

// Errors that Verify returns; callers answer 401 for all of them.
var (
	ErrMissing = errors.New("apikey: no API key given")
	ErrInvalid = errors.New("apikey: invalid API key")
	ErrRevoked = errors.New("apikey: the API key was revoked")
)

// Record is what finchconnect keeps of a key: never the key itself.
type Record struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Scope string `json:"scope"`
	Hash  string `json:"hash"` // hex SHA-256 of the secret part
	// Personal: the key is shown employees' personal fields in local
	// records (see [Personal]).
	Personal  bool      `json:"personal,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Allows reports whether the key's scope covers scope.
func (r Record) Allows(scope string) bool {
	have, want := rank(r.Scope), rank(scope)
	return have >= 0 && want >= 0 && have >= want
}

// rank is scope's place in Scopes, or -1.
func rank(scope string) int {
	for i, s := range Scopes {
		if s == scope {
			return i
		}
	}
	return -1
}

// Option adjusts a key that Create issues.
type Option func(*Record)

// Personal makes the key personal: /v1's local records keep the employees'
// personal fields for it, and every read that returns one is audited.
func Personal() Option { return func(r *Record) { r.Personal = true } }

// Create issues a key with scope and name and returns it, once: it cannot be
// shown again.
func Create(ctx context.Context, b KeySpace, name, scope string, opts ...Option) (finchconnect.Secret, Record, error) {
	if rank(scope) < 0 {
		return finchconnect.Secret{}, Record{}, fmt.Errorf("apikey: scope must be %q, %q or %q", ScopeRead, ScopeWrite, ScopeForward)
	}
	var idb [6]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return finchconnect.Secret{}, Record{}, err
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return finchconnect.Secret{}, Record{}, err
	}
	id := hex.EncodeToString(idb[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	rec := Record{ID: id, Name: name, Scope: scope, Hash: hash(secret), CreatedAt: time.Now().UTC()}
	for _, o := range opts {
		o(&rec)
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return finchconnect.Secret{}, Record{}, err
	}
	if err := b.Claim(ctx, ns.Key(id), v, 0); err != nil {
		return finchconnect.Secret{}, Record{}, fmt.Errorf("apikey: save key %s: %w", id, err)
	}
	return finchconnect.NewSecret("fck_" + id + "_" + secret), rec, nil
}

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Verify checks an Authorization header value ("Bearer fck_…") and returns
// the key's record. It fails with ErrMissing, ErrInvalid or ErrRevoked; a
// store failure is returned as it is.
func Verify(ctx context.Context, b KeySpace, authorization string) (Record, error) {
	return verify(authorization, func(id string) (Record, error) { return load(ctx, b, id) })
}

// verify is Verify with the record read by lookup.
func verify(authorization string, lookup func(id string) (Record, error)) (Record, error) {
	// The scheme is case-insensitive (RFC 9110 §11.1).
	scheme, token, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Record{}, ErrMissing
	}
	rest, ok := strings.CutPrefix(token, "fck_")
	if !ok {
		return Record{}, ErrInvalid
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 12 || secret == "" {
		return Record{}, ErrInvalid
	}
	if _, err := hex.DecodeString(id); err != nil {
		return Record{}, ErrInvalid
	}
	rec, err := lookup(id)
	if errors.Is(err, finchconnect.ErrNotFound) {
		return Record{}, ErrInvalid
	}
	if err != nil {
		return Record{}, err
	}
	if subtle.ConstantTimeCompare([]byte(rec.Hash), []byte(hash(secret))) != 1 {
		return Record{}, ErrInvalid
	}
	if !rec.RevokedAt.IsZero() {
		return Record{}, ErrRevoked
	}
	return rec, nil
}

// Cache is Verify with a short memory: it keeps each key's record, once
// read from the store, for a time to live, so that the API's hot path reads
// the store once per key per TTL instead of once per request (one store
// round trip of the two that a /v1 proxy read made). The secret is still
// hashed and compared in constant time on every request; only the record
// (scope, hash of the secret, revocation) is remembered, never a key.
//
// So a revocation takes effect on every replica within the TTL, not at
// once. Unknown ids are not remembered, so nobody can fill the cache with
// made-up keys; it holds at most one record per real key.
type Cache struct {
	b   KeySpace
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	recs map[string]cachedRecord
}

type cachedRecord struct {
	rec     Record
	expires time.Time
}

// maxCached bounds the cache should the store hold very many keys: past it,
// the cache starts over.
const maxCached = 10_000

// NewCache returns a Cache of the records in b that keeps each for ttl
// (which must be positive), on the clock now (nil: time.Now).
func NewCache(b KeySpace, ttl time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{b: b, ttl: ttl, now: now, recs: map[string]cachedRecord{}}
}

// Verify is [Verify], through the cache.
func (c *Cache) Verify(ctx context.Context, authorization string) (Record, error) {
	return verify(authorization, func(id string) (Record, error) {
		now := c.now()
		c.mu.Lock()
		e, ok := c.recs[id]
		c.mu.Unlock()
		if ok && now.Before(e.expires) {
			return e.rec, nil
		}
		rec, err := load(ctx, c.b, id)
		if err != nil {
			return Record{}, err
		}
		c.mu.Lock()
		if len(c.recs) >= maxCached {
			clear(c.recs)
		}
		c.recs[id] = cachedRecord{rec, now.Add(c.ttl)}
		c.mu.Unlock()
		return rec, nil
	})
}

func load(ctx context.Context, b KeySpace, id string) (Record, error) {
	v, err := b.Load(ctx, ns.Key(id))
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return Record{}, fmt.Errorf("apikey: record %s is malformed", id)
	}
	return rec, nil
}

// Revoke revokes key id. Revoking a revoked key is not an error; an unknown
// id is ErrNotFound.
func Revoke(ctx context.Context, b KeySpace, id string) error {
	for range 5 {
		old, err := b.Load(ctx, ns.Key(id))
		if err != nil {
			return fmt.Errorf("apikey: revoke %s: %w", id, err)
		}
		var rec Record
		if err := json.Unmarshal(old, &rec); err != nil {
			return fmt.Errorf("apikey: record %s is malformed", id)
		}
		if !rec.RevokedAt.IsZero() {
			return nil
		}
		rec.RevokedAt = time.Now().UTC()
		v, _ := json.Marshal(rec)
		err = b.Swap(ctx, ns.Key(id), old, v, 0)
		if !errors.Is(err, finchconnect.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("apikey: revoke %s: %w", id, finchconnect.ErrConflict)
}

// List returns every key's record, revoked ones included.
func List(ctx context.Context, b KeySpace) ([]Record, error) {
	var out []Record
	after := ""
	for {
		entries, err := ns.Scan(ctx, b, after, 200)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			var rec Record
			if json.Unmarshal(e.Value, &rec) == nil {
				out = append(out, rec)
			}
		}
		if len(entries) < 200 {
			return out, nil
		}
		after = entries[len(entries)-1].Key
	}
}
