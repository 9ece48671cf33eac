package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// ClaimAll implements [tokenstore.Backend.ClaimAll] as one write of the
// group commit. The write connection is the only writer, so reading which
// keys are held and then inserting them all, inside one transaction, is
// atomic; a refused ClaimAll writes nothing, so it leaves its batch clean.
func (b *Backend) ClaimAll(ctx context.Context, claims []tokenstore.Claim) (int, error) {
	if err := tokenstore.CheckClaims(claims); err != nil || len(claims) == 0 {
		return -1, err // a repeated key, or nothing to claim
	}
	held := -1
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		var err error
		held, err = b.claimAll(ctx, x, b.now(), claims)
		return err
	})
	if err != nil && !outcome(err) {
		return -1, fmt.Errorf("sqlite: claim all: %v", err)
	}
	if err != nil {
		return held, err
	}
	return -1, nil
}

// ClaimAllIf implements [tokenstore.Backend.ClaimAllIf] as one write of the
// group commit: reading guard, reading which keys are held and inserting
// them all happen in one transaction of the only writer, so they are
// atomic. A missing guard or a held key writes nothing, and, like
// ClaimAll's conflict, is an outcome that leaves its batch clean.
func (b *Backend) ClaimAllIf(ctx context.Context, guard string, claims []tokenstore.Claim) ([]byte, int, error) {
	if err := tokenstore.CheckGuardedClaims(guard, claims); err != nil {
		return nil, -1, err
	}
	var value []byte
	held := -1
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		now := b.now()
		var v []byte
		err := x.QueryRowContext(ctx, loadQuery, guard, now).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: claim if %q: %w", guard, finchconnect.ErrNotFound)
		}
		if err != nil {
			return err
		}
		value = nonNil(v)
		held, err = b.claimAll(ctx, x, now, claims)
		return err
	})
	if err != nil && !outcome(err) {
		return nil, -1, fmt.Errorf("sqlite: claim all if: %v", err)
	}
	if errors.Is(err, finchconnect.ErrNotFound) {
		return nil, -1, err
	}
	return value, held, err
}

// claimAll is the body of ClaimAll and ClaimAllIf, run inside their write:
// if an unexpired entry holds any key of claims, it returns that claim's
// index and an error wrapping ErrConflict, writing nothing; otherwise it
// stores every claim and returns -1 and nil (or a driver error, unwrapped).
func (b *Backend) claimAll(ctx context.Context, x execer, now int64, claims []tokenstore.Claim) (int, error) {
	for i, c := range claims {
		var one int
		err := x.QueryRowContext(ctx, `SELECT 1 FROM entries
			WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`, c.Key, now).Scan(&one)
		if err == nil {
			return i, fmt.Errorf("sqlite: claim %q: %w", c.Key, finchconnect.ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return -1, err
		}
	}
	for _, c := range claims {
		if _, err := x.ExecContext(ctx, `INSERT INTO entries (key, value, expires_at) VALUES (?1, ?2, ?3)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
			c.Key, nonNil(c.Value), b.expiresAt(now, c.TTL)); err != nil {
			return -1, err
		}
	}
	return -1, nil
}
