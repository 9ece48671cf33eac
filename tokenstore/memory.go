package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
)

var _ Backend = (*Memory)(nil)

// errClosed is returned by a Memory backend after Close.
var errClosed = errors.New("tokenstore: memory backend closed")

// Memory is a [Backend] that keeps everything in process memory. It is the
// reference implementation of the contract, for development and tests; its
// contents are lost when the process ends.
//
// Memory is safe for concurrent use. Create it with [NewMemory]; set Now, if
// at all, before first use.
type Memory struct {
	// Now reports the current time; expiry is judged against it, so tests
	// can move time forward instead of sleeping. Nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	closed  bool
	rows    map[string]Row
	entries map[string]Entry
}

// NewMemory returns an empty Memory backend.
func NewMemory() *Memory {
	return &Memory{rows: make(map[string]Row), entries: make(map[string]Entry)}
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// lock takes the mutex and reports why the call cannot proceed, if it
// cannot. On a nil error the caller must unlock.
func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	return nil
}

// GetRow implements [Rows.GetRow].
func (m *Memory) GetRow(ctx context.Context, id string) (Row, error) {
	if err := m.lock(ctx); err != nil {
		return Row{}, err
	}
	defer m.mu.Unlock()
	r, ok := m.rows[id]
	if !ok {
		return Row{}, fmt.Errorf("tokenstore: row %q: %w", id, finchconnect.ErrNotFound)
	}
	return cloneRow(r), nil
}

// PutRow implements [Rows.PutRow].
func (m *Memory) PutRow(ctx context.Context, row Row, expect int64) (int64, error) {
	if err := m.lock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	return m.putRowLocked(row, expect)
}

// putRowLocked is PutRow's work, under m.mu.
func (m *Memory) putRowLocked(row Row, expect int64) (int64, error) {
	cur := m.rows[row.ID] // Version 0 when absent
	if expect != AnyVersion && cur.Version != expect {
		return 0, fmt.Errorf("tokenstore: put row %q: version %d, want %d: %w", row.ID, cur.Version, expect, finchconnect.ErrConflict)
	}
	row = cloneRow(row)
	if cur.Version == 0 {
		row.Version = InsertVersion(row)
	} else {
		row.Version = cur.Version + 1
	}
	m.rows[row.ID] = row
	return row.Version, nil
}

// DeleteRow implements [Rows.DeleteRow].
func (m *Memory) DeleteRow(ctx context.Context, id string) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.rows[id]; !ok {
		return fmt.Errorf("tokenstore: delete row %q: %w", id, finchconnect.ErrNotFound)
	}
	delete(m.rows, id)
	return nil
}

// ListRows implements [Rows.ListRows]. It sorts on every call, which is
// fine for the sizes a memory backend holds.
func (m *Memory) ListRows(ctx context.Context, f Filter) ([]Row, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var ids []string
	for id, r := range m.rows {
		if id <= f.After && f.After != "" ||
			f.CustomerID != "" && r.CustomerID != f.CustomerID ||
			f.ProviderID != "" && r.ProviderID != f.ProviderID ||
			f.Status != "" && r.Status != f.Status {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ids = ids[:min(len(ids), limitOrDefault(f.Limit))]
	rows := make([]Row, len(ids))
	for i, id := range ids {
		rows[i] = cloneRow(m.rows[id])
	}
	return rows, nil
}

// Claim implements [KeySpace.Claim].
func (m *Memory) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	if _, ok := m.live(key, now); ok {
		return fmt.Errorf("tokenstore: claim %q: %w", key, finchconnect.ErrConflict)
	}
	m.entries[key] = Entry{Key: key, Value: bytes.Clone(value), ExpiresAt: expiry(now, ttl)}
	return nil
}

// Load implements [KeySpace.Load].
func (m *Memory) Load(ctx context.Context, key string) ([]byte, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.live(key, m.now())
	if !ok {
		return nil, fmt.Errorf("tokenstore: load %q: %w", key, finchconnect.ErrNotFound)
	}
	return bytes.Clone(e.Value), nil
}

// Swap implements [KeySpace.Swap].
func (m *Memory) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	return m.swapLocked(key, old, value, ttl)
}

// swapLocked is Swap's work, under m.mu.
func (m *Memory) swapLocked(key string, old, value []byte, ttl time.Duration) error {
	now := m.now()
	e, ok := m.live(key, now)
	if !ok {
		return fmt.Errorf("tokenstore: swap %q: %w", key, finchconnect.ErrNotFound)
	}
	if !bytes.Equal(e.Value, old) {
		return fmt.Errorf("tokenstore: swap %q: value changed: %w", key, finchconnect.ErrConflict)
	}
	m.entries[key] = Entry{Key: key, Value: bytes.Clone(value), ExpiresAt: expiry(now, ttl)}
	return nil
}

// Forget implements [KeySpace.Forget].
func (m *Memory) Forget(ctx context.Context, key string) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

// Scan implements [KeySpace.Scan]. Expired entries it meets are purged.
func (m *Memory) Scan(ctx context.Context, prefix, after string, limit int) ([]Entry, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := m.now()
	var keys []string
	for k := range m.entries {
		if !strings.HasPrefix(k, prefix) || k <= after && after != "" {
			continue
		}
		if _, ok := m.live(k, now); ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = keys[:min(len(keys), limitOrDefault(limit))]
	out := make([]Entry, len(keys))
	for i, k := range keys {
		e := m.entries[k]
		e.Value = bytes.Clone(e.Value)
		out[i] = e
	}
	return out, nil
}

// Ping implements [Backend.Ping].
func (m *Memory) Ping(ctx context.Context) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close implements [Backend.Close]. Later calls fail; closing twice is not an
// error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.rows, m.entries = nil, nil
	return nil
}

// live returns the unexpired entry under key, deleting it if it has expired,
// so that expired entries do not accumulate. The caller holds m.mu.
func (m *Memory) live(key string, now time.Time) (Entry, bool) {
	e, ok := m.entries[key]
	if !ok {
		return Entry{}, false
	}
	if !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt) {
		delete(m.entries, key)
		return Entry{}, false
	}
	return e, true
}

// expiry turns a ttl into an absolute time; ttl <= 0 means never.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// DefaultLimit is the number of rows or entries a listing returns when the
// caller asks for 0.
const DefaultLimit = 100

func limitOrDefault(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return n
}

// cloneRow copies the byte slices so that neither the caller nor the
// backend can change the other's copy.
func cloneRow(r Row) Row {
	r.Meta = bytes.Clone(r.Meta)
	r.Sealed = bytes.Clone(r.Sealed)
	return r
}

// Txn implements [Transactor.Txn] under one hold of the lock.
func (m *Memory) Txn(ctx context.Context, t Txn) (TxnResult, error) {
	if err := CheckTxn(t); err != nil {
		return TxnResult{Failed: -1}, err
	}
	if err := m.lock(ctx); err != nil {
		return TxnResult{Failed: -1}, err
	}
	defer m.mu.Unlock()
	now := m.now()
	res := TxnResult{Reads: make([]Read, len(t.If)), Versions: make([]int64, len(t.Then))}
	for i, c := range t.If {
		if c.Kind == RowVersion {
			r, ok := m.rows[c.Key]
			res.Reads[i] = Read{Present: ok, Version: r.Version}
			continue
		}
		if e, ok := m.live(c.Key, now); ok {
			res.Reads[i] = Read{Present: true, Value: bytes.Clone(e.Value)}
		}
	}
	if t.Judge(&res); !res.OK {
		return res, nil
	}
	for i, o := range t.Then {
		switch o.Kind {
		case PutEntry:
			m.entries[o.Key] = Entry{Key: o.Key, Value: bytes.Clone(o.Value), ExpiresAt: expiry(now, o.TTL)}
		case ForgetEntry:
			delete(m.entries, o.Key)
		case PutRowOp:
			res.Versions[i], _ = m.putRowLocked(o.Row, AnyVersion)
		case DeleteRowOp:
			delete(m.rows, o.Row.ID)
		}
	}
	return res, nil
}
