// Package audit keeps the trail of every use of a token — exchanged,
// decrypted for a Finch call, revealed by an operator, re-sealed, deleted,
// disconnected — in the vault's store (a tokenstore.Backend, through [KeySpace], under "audit/"),
// so every replica writes to one trail. Records name who did what to which
// connection and when; they never hold a secret.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// KeySpace is the part of the vault's store that the audit log uses: the
// methods of [tokenstore.KeySpace] that it calls, and the
// transaction that RecordAll's tokenstore.ClaimAll runs. Every
// tokenstore.Backend is one.
type KeySpace interface {
	Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error)
	tokenstore.Transactor
}

// ns holds the records, under their time (20 digits of Unix nanoseconds)
// and a random suffix, so that a scan reads them oldest first.
var ns = tokenstore.NS("audit")

// Retention is how long a record is kept.
const Retention = 400 * 24 * time.Hour

// Log is the audit trail in a store.
type Log struct{ b KeySpace }

// New returns the trail kept in b.
func New(b KeySpace) *Log { return &Log{b: b} }

// Record appends r to the trail.
func (l *Log) Record(ctx context.Context, r finchconnect.AuditRecord) error {
	c, err := claim(r)
	if err != nil {
		return err
	}
	return l.b.Claim(ctx, c.Key, c.Value, c.TTL)
}

// RecordAll appends rs to the trail in one store write (one round trip,
// one commit), the way a busy server's queue writes them.
func (l *Log) RecordAll(ctx context.Context, rs []finchconnect.AuditRecord) error {
	if len(rs) == 1 {
		return l.Record(ctx, rs[0])
	}
	cs := make([]tokenstore.Claim, len(rs))
	for i, r := range rs {
		c, err := claim(r)
		if err != nil {
			return err
		}
		cs[i] = c
	}
	_, err := tokenstore.ClaimAll(ctx, l.b, cs)
	if errors.Is(err, finchconnect.ErrConflict) {
		// Two records drew the same key (same nanosecond, same 32 random
		// bits): write them one by one, each with a fresh key.
		for _, r := range rs {
			if err := l.Record(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}
	return err
}

// claim returns the store entry that holds r: its key orders the trail by
// time, and a random suffix keeps records of one instant apart.
func claim(r finchconnect.AuditRecord) (tokenstore.Claim, error) {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	var n [4]byte
	rand.Read(n[:])
	v, err := json.Marshal(r)
	if err != nil {
		return tokenstore.Claim{}, err
	}
	key := ns.Key(fmt.Sprintf("%020d-%s", r.At.UnixNano(), hex.EncodeToString(n[:])))
	return tokenstore.Claim{Key: key, Value: v, TTL: Retention}, nil
}

// Filter selects records for List. Zero fields match everything.
type Filter struct {
	ConnectionID string
	Since        time.Time
	Limit        int // 0: all
}

// List returns matching records, oldest first.
func (l *Log) List(ctx context.Context, f Filter) ([]finchconnect.AuditRecord, error) {
	var out []finchconnect.AuditRecord
	after := ""
	if !f.Since.IsZero() {
		after = ns.Key(fmt.Sprintf("%020d", f.Since.UnixNano()-1))
	}
	for {
		es, err := ns.Scan(ctx, l.b, after, 500)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			var r finchconnect.AuditRecord
			if json.Unmarshal(e.Value, &r) != nil {
				continue
			}
			if f.ConnectionID != "" && r.ConnectionID != f.ConnectionID {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) == f.Limit {
				return out, nil
			}
		}
		if len(es) < 500 {
			return out, nil
		}
		after = es[len(es)-1].Key
	}
}
