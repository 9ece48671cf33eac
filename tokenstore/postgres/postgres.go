// Package postgres is a tokenstore.Backend on PostgreSQL, for finchconnect
// replicas that share one database.
//
// Rows and entries live in two tables created by embedded migrations, which
// run under an advisory lock so that replicas starting together do not race.
// Every atomic primitive is a single conditional statement whose row count
// decides the outcome — Claim is an INSERT … ON CONFLICT … DO UPDATE … WHERE
// the held entry has expired, PutRow an UPDATE … WHERE version = $expected —
// so correctness never rests on the isolation level (see fosite #778).
// Expiry uses the database's clock.
//
// A commit is durable when the call returns, as PostgreSQL's
// synchronous_commit (on by default) makes it.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Backend is a tokenstore.Backend on a PostgreSQL pool. It is safe for
// concurrent use by goroutines and by processes sharing the database.
type Backend struct {
	pool  *pgxpool.Pool
	owned bool // Close closes the pool only if Open created it
}

var _ tokenstore.Backend = (*Backend)(nil)

// Open connects to the database at url (postgres://… or postgresql://…, as
// pgxpool.ParseConfig reads it), checks that it answers, and migrates the
// schema. Close must be called.
func Open(ctx context.Context, url string) (*Backend, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors can quote the URL, password included.
		return nil, errors.New("postgres: the store URL does not parse as a PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %v", err)
	}
	b, err := New(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// New returns a Backend on an existing pool (for apps that have one, or that
// set search_path to a schema of their own), after migrating the schema.
// Close does not close a pool passed to New.
func New(ctx context.Context, pool *pgxpool.Pool) (*Backend, error) {
	b := &Backend{pool: pool}
	if err := b.Ping(ctx); err != nil {
		return nil, err
	}
	if err := b.migrate(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// migrate applies the embedded migrations not yet applied, each in its own
// transaction, under a transaction-scoped advisory lock.
func (b *Backend) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := b.applyMigration(ctx, name); err != nil {
			return fmt.Errorf("postgres: migration %s: %v", name, err)
		}
	}
	return nil
}

// migrationLock is the advisory lock key that serialises migrations.
const migrationLock = 0x66696e6368 // "finch"

func (b *Backend) applyMigration(ctx context.Context, name string) error {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS finchconnect_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var done bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM finchconnect_migrations WHERE name = $1)`, name).Scan(&done); err != nil {
		return err
	}
	if done {
		return tx.Commit(ctx)
	}
	sql, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, string(sql)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO finchconnect_migrations (name) VALUES ($1)`, name); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// GetRow implements tokenstore.Backend.
func (b *Backend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	var r tokenstore.Row
	err := b.pool.QueryRow(ctx, `SELECT id, customer_id, provider_id, status, meta, sealed, version
		FROM finchconnect_connections WHERE id = $1`, id).
		Scan(&r.ID, &r.CustomerID, &r.ProviderID, &r.Status, &r.Meta, &r.Sealed, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return tokenstore.Row{}, fmt.Errorf("postgres: connection %s: %w", id, finchconnect.ErrNotFound)
	}
	if err != nil {
		return tokenstore.Row{}, fmt.Errorf("postgres: get connection %s: %v", id, err)
	}
	return r, nil
}

// PutRow implements tokenstore.Backend. Each branch is one statement whose
// row count says whether the expected version held.
func (b *Backend) PutRow(ctx context.Context, r tokenstore.Row, expect int64) (int64, error) {
	query, args := putRowSQL(r, expect)
	var version int64
	err := b.pool.QueryRow(ctx, query, args...).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, putConflict(r.ID, expect)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: put connection %s: %v", r.ID, err)
	}
	return version, nil
}

// putRowSQL is PutRow's statement for expect, with its arguments: an
// upsert, an insert that does nothing on a conflict, or an update
// conditioned on the version. It returns the new version, or no row when
// the expected version did not hold. Every branch takes seven arguments
// (PutRowSwap numbers its own after them): $7 is the version an insert
// starts at, tokenstore.InsertVersion(r), or the update's expect.
func putRowSQL(r tokenstore.Row, expect int64) (string, []any) {
	args := []any{r.ID, r.CustomerID, r.ProviderID, r.Status, nonNil(r.Meta), nonNil(r.Sealed)}
	switch expect {
	case tokenstore.AnyVersion:
		return `INSERT INTO finchconnect_connections AS c (id, customer_id, provider_id, status, meta, sealed, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, provider_id = EXCLUDED.provider_id,
				status = EXCLUDED.status, meta = EXCLUDED.meta, sealed = EXCLUDED.sealed, version = c.version + 1
			RETURNING version`, append(args, tokenstore.InsertVersion(r))
	case 0:
		return `INSERT INTO finchconnect_connections (id, customer_id, provider_id, status, meta, sealed, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO NOTHING RETURNING version`, append(args, tokenstore.InsertVersion(r))
	}
	return `UPDATE finchconnect_connections SET customer_id = $2, provider_id = $3, status = $4,
				meta = $5, sealed = $6, version = version + 1
			WHERE id = $1 AND version = $7 RETURNING version`, append(args, expect)
}

func putConflict(id string, expect int64) error {
	return fmt.Errorf("postgres: put connection %s: version is not %d: %w", id, expect, finchconnect.ErrConflict)
}

// DeleteRow implements tokenstore.Backend.
func (b *Backend) DeleteRow(ctx context.Context, id string) error {
	tag, err := b.pool.Exec(ctx, `DELETE FROM finchconnect_connections WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete connection %s: %v", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete connection %s: %w", id, finchconnect.ErrNotFound)
	}
	return nil
}

// ListRows implements tokenstore.Backend.
func (b *Backend) ListRows(ctx context.Context, f tokenstore.Filter) ([]tokenstore.Row, error) {
	where := []string{"id > $1"}
	args := []any{f.After}
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
		}
	}
	add("customer_id", f.CustomerID)
	add("provider_id", f.ProviderID)
	add("status", f.Status)
	limit := f.Limit
	if limit <= 0 {
		limit = tokenstore.DefaultLimit
	}
	args = append(args, limit)
	rows, err := b.pool.Query(ctx, `SELECT id, customer_id, provider_id, status, meta, sealed, version
		FROM finchconnect_connections WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list connections: %v", err)
	}
	defer rows.Close()
	var out []tokenstore.Row
	for rows.Next() {
		var r tokenstore.Row
		if err := rows.Scan(&r.ID, &r.CustomerID, &r.ProviderID, &r.Status, &r.Meta, &r.Sealed, &r.Version); err != nil {
			return nil, fmt.Errorf("postgres: list connections: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list connections: %v", err)
	}
	return out, nil
}

// ttlMicros is a ttl in microseconds, or nil (SQL NULL, so expires_at is
// NULL) for "never expires".
func ttlMicros(ttl time.Duration) any {
	if ttl <= 0 {
		return nil
	}
	return ttl.Microseconds()
}

// Claim implements tokenstore.Backend. The upsert replaces only an expired
// entry; a live one makes the statement return no row.
func (b *Backend) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	var got string
	err := b.pool.QueryRow(ctx, `INSERT INTO finchconnect_entries AS e (key, value, expires_at)
		VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
			WHERE e.expires_at IS NOT NULL AND e.expires_at <= now()
		RETURNING key`, key, nonNil(value), ttlMicros(ttl)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: claim %s: %w", key, finchconnect.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: claim %s: %v", key, err)
	}
	return nil
}

// Load implements tokenstore.Backend.
func (b *Backend) Load(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := b.pool.QueryRow(ctx, `SELECT value FROM finchconnect_entries
		WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: load %s: %w", key, finchconnect.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: load %s: %v", key, err)
	}
	return v, nil
}

// Swap implements tokenstore.Backend: an UPDATE conditioned on the old value
// and on the entry being live; when it changes nothing, a second read tells
// ErrNotFound from ErrConflict.
func (b *Backend) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	tag, err := b.pool.Exec(ctx, `UPDATE finchconnect_entries
		SET value = $3, expires_at = now() + $4::bigint * interval '1 microsecond'
		WHERE key = $1 AND value = $2 AND (expires_at IS NULL OR expires_at > now())`,
		key, nonNil(old), nonNil(value), ttlMicros(ttl))
	if err != nil {
		return fmt.Errorf("postgres: swap %s: %v", key, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := b.Load(ctx, key); err != nil {
		return err
	}
	return fmt.Errorf("postgres: swap %s: %w", key, finchconnect.ErrConflict)
}

// Forget implements tokenstore.Backend.
func (b *Backend) Forget(ctx context.Context, key string) error {
	if _, err := b.pool.Exec(ctx, `DELETE FROM finchconnect_entries WHERE key = $1`, key); err != nil {
		return fmt.Errorf("postgres: forget %s: %v", key, err)
	}
	return nil
}

// Scan implements tokenstore.Backend. The prefix is matched with a range
// (key >= prefix AND key < prefix's successor) rather than LIKE, so '%' and
// '_' in it are literal and the primary key index serves the scan.
func (b *Backend) Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error) {
	if limit <= 0 {
		limit = tokenstore.DefaultLimit
	}
	query := `SELECT key, value, expires_at FROM finchconnect_entries
		WHERE key >= $1 AND starts_with(key, $1) AND key > $2 AND (expires_at IS NULL OR expires_at > now())`
	args := []any{prefix, after}
	// An upper bound lets the index range stop at the prefix's end; it is
	// only usable when the successor is still valid UTF-8 text.
	if upper, ok := successor(prefix); ok && utf8.ValidString(upper) {
		args = append(args, upper)
		query += ` AND key < $3`
	}
	args = append(args, limit)
	query += fmt.Sprintf(` ORDER BY key LIMIT $%d`, len(args))
	rows, err := b.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: scan %s: %v", prefix, err)
	}
	defer rows.Close()
	var out []tokenstore.Entry
	for rows.Next() {
		var e tokenstore.Entry
		var exp *time.Time
		if err := rows.Scan(&e.Key, &e.Value, &exp); err != nil {
			return nil, fmt.Errorf("postgres: scan %s: %v", prefix, err)
		}
		if exp != nil {
			e.ExpiresAt = *exp
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: scan %s: %v", prefix, err)
	}
	return out, nil
}

// successor returns the smallest string greater than every string with
// prefix p, or false if there is none (p is empty or all 0xff bytes).
func successor(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Ping implements tokenstore.Backend.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %v", err)
	}
	return nil
}

// Close closes the pool if Open created it.
func (b *Backend) Close() error {
	if b.owned {
		b.pool.Close()
	}
	return nil
}

// Pool returns the underlying pool.
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
