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
		now := b.now()
		for i, c := range claims {
			var one int
			err := x.QueryRowContext(ctx, `SELECT 1 FROM entries
				WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`, c.Key, now).Scan(&one)
			if err == nil {
				held = i
				return fmt.Errorf("sqlite: claim %q: %w", c.Key, finchconnect.ErrConflict)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		for _, c := range claims {
			if _, err := x.ExecContext(ctx, `INSERT INTO entries (key, value, expires_at) VALUES (?1, ?2, ?3)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
				c.Key, nonNil(c.Value), b.expiresAt(now, c.TTL)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !outcome(err) {
		return -1, fmt.Errorf("sqlite: claim all: %v", err)
	}
	if err != nil {
		return held, err
	}
	return -1, nil
}
