package tokenstore

import (
	"context"
	"fmt"
	"time"
)

// AnyVersion, passed as the expected version to [Rows.PutRow], writes the
// row whatever version is stored.
const AnyVersion int64 = -1

// Row is a connection as a backend stores it. The backend never sees a
// plaintext token: Sealed is the keyring's output and is opaque to it. The
// index fields and Meta are not secret; they are kept in the clear so that
// listing and filtering never need to decrypt.
//
// Version is the backend's, for compare-and-set. A write that inserts the
// row (none is stored under its ID) gives it the caller's Version if that
// is positive, else 1 ([InsertVersion]); every other write adds 1 to the
// stored version and ignores the caller's.
//
// The caller's start matters once a row has been deleted: a row inserted
// again at 1 would walk through the versions the deleted row had, so a
// writer that read the deleted row at version n could write it back over
// the new one as soon as the new one reached n. [Store] therefore starts
// every row it inserts at its clock in microseconds: a deleted row's
// versions run from its insert time to that plus its number of writes,
// below the time of any later insert. Backends keep versions exactly up to
// 2^53 (Redis's Lua counts in doubles), which that clock reaches in the
// year 2255.
type Row struct {
	ID         string // the Finch connection_id; the primary key
	CustomerID string // indexed
	ProviderID string // indexed
	Status     string // indexed
	Meta       []byte // the connection's non-secret fields, JSON, as the Store wrote them
	Sealed     []byte // the access token, sealed under the connection id as associated data
	Version    int64  // read: the stored version; written: where an insert starts (see above)
}

// InsertVersion is the version a backend gives row when a write inserts it:
// row.Version if positive, else 1. Backends call it.
func InsertVersion(row Row) int64 {
	if row.Version > 0 {
		return row.Version
	}
	return 1
}

// Filter selects rows for [Rows.ListRows]. Empty fields match anything.
type Filter struct {
	CustomerID string
	ProviderID string
	Status     string
	After      string // only rows whose ID sorts after this (a page cursor)
	Limit      int    // at most this many rows; 0 means 100
}

// Entry is a short-lived or small record in a backend's key space: a state,
// a callback-ledger entry, an API key hash, an outbox event.
type Entry struct {
	Key       string
	Value     []byte
	ExpiresAt time.Time // zero: never expires
}

// Backend is the one plug point of the vault: the three parts of the
// storage contract, [Rows] (sealed connection rows), [KeySpace] (a small
// key space with time-to-live and an atomic claim) and [Transactor] (one
// conditional transaction over both), and the backend's lifetime. Memory,
// SQLite, Redis and PostgreSQL implement it, and tokenstoretest.Run holds
// every implementation to the same contract. Constructors return it;
// consumers declare the parts, or the methods, they use.
//
// Implementations must be safe for concurrent use, by goroutines and, for
// shared backends, by several processes. Every error that callers branch on
// is one of the root package's sentinels, wrapped or not:
// finchconnect.ErrNotFound and finchconnect.ErrConflict. Driver errors never
// escape as such (wrap them with %v, not %w).
type Backend interface {
	Rows
	KeySpace
	Transactor

	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error

	// Close releases the backend's resources.
	Close() error
}

// Rows are a backend's connection rows: read, compare-and-set write,
// delete, list.
type Rows interface {
	// GetRow returns the row with id, or ErrNotFound.
	GetRow(ctx context.Context, id string) (Row, error)

	// PutRow inserts or replaces row.ID and returns the new version: that
	// of InsertVersion(row) when it inserts, the stored version + 1 when it
	// replaces (see [Row]). When expect is not AnyVersion, the write
	// happens only if the stored version equals expect (0 meaning "no row
	// stored"); otherwise it returns ErrConflict and changes nothing. A
	// write is durable when PutRow returns (as durable as the backend can
	// be; see each backend's documentation).
	PutRow(ctx context.Context, row Row, expect int64) (version int64, err error)

	// DeleteRow removes the row with id. It returns ErrNotFound if there was
	// none.
	DeleteRow(ctx context.Context, id string) error

	// ListRows returns rows that match f, ordered by ID ascending, at most
	// f.Limit of them. The caller pages by passing the last ID as f.After.
	ListRows(ctx context.Context, f Filter) ([]Row, error)
}

// KeySpace is a backend's key space: small entries with a time to live,
// claimed, loaded, swapped, forgotten and scanned. Each package keeps its
// entries under a [Namespace] of its own.
type KeySpace interface {
	// Claim stores value under key if no unexpired entry holds key, and
	// returns ErrConflict otherwise. Exactly one of any number of concurrent
	// claims of one key succeeds. ttl <= 0 means the entry never expires.
	Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// Load returns the value under key, or ErrNotFound if there is none or it
	// has expired.
	Load(ctx context.Context, key string) ([]byte, error)

	// Swap replaces the value under key with value, with a new ttl, only if
	// the stored value equals old byte for byte. It returns ErrNotFound if
	// the key is absent or expired and ErrConflict if the value differs.
	Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error

	// Forget removes key. Removing an absent key is not an error.
	Forget(ctx context.Context, key string) error

	// Scan returns unexpired entries whose key starts with prefix and sorts
	// after after, ordered by key, at most limit of them (0 means 100).
	Scan(ctx context.Context, prefix, after string, limit int) ([]Entry, error)
}

// Claim is one key of a [ClaimAll]: what [KeySpace.Claim] takes.
type Claim struct {
	Key   string
	Value []byte
	TTL   time.Duration // <= 0: never expires
}

// Swap is the conditional replacement of a [PutRowSwap]: what
// [KeySpace.Swap] takes.
type Swap struct {
	Key        string
	Old, Value []byte
	TTL        time.Duration // <= 0: never expires
}

// CheckGuardedClaims is CheckClaims for ClaimAllIf: it also refuses a
// guard that is one of the claims' keys.
func CheckGuardedClaims(guard string, claims []Claim) error {
	for _, c := range claims {
		if c.Key == guard {
			return fmt.Errorf("tokenstore: claim all if: the guard %q is also claimed", guard)
		}
	}
	return CheckClaims(claims)
}

// CheckClaims reports claims that [ClaimAll] must refuse: a repeated key.
// The helpers call it first.
func CheckClaims(claims []Claim) error {
	if len(claims) < 2 {
		return nil
	}
	seen := make(map[string]struct{}, len(claims))
	for _, c := range claims {
		if _, ok := seen[c.Key]; ok {
			return fmt.Errorf("tokenstore: claim all: key %q appears twice", c.Key)
		}
		seen[c.Key] = struct{}{}
	}
	return nil
}
