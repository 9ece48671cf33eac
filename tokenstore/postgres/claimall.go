package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/jackc/pgx/v5"
)

// errHeld ends ClaimAll's transaction when a key is held.
var errHeld = errors.New("held")

// ClaimAll implements tokenstore.Backend: Claim's upsert for each key in
// one transaction, rolled back at the first key held. A concurrent claim of
// the same key waits on the row lock and then sees this one's outcome, so
// exactly one wins.
func (b *Backend) ClaimAll(ctx context.Context, claims []tokenstore.Claim) (int, error) {
	if err := tokenstore.CheckClaims(claims); err != nil || len(claims) == 0 {
		return -1, err // a repeated key, or nothing to claim
	}
	held := -1
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		for i, c := range claims {
			var got string
			err := tx.QueryRow(ctx, `INSERT INTO finchconnect_entries AS e (key, value, expires_at)
				VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
				ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
					WHERE e.expires_at IS NOT NULL AND e.expires_at <= now()
				RETURNING key`, c.Key, nonNil(c.Value), ttlMicros(c.TTL)).Scan(&got)
			if errors.Is(err, pgx.ErrNoRows) {
				held = i
				return errHeld
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case held >= 0:
		return held, fmt.Errorf("postgres: claim %s: %w", claims[held].Key, finchconnect.ErrConflict)
	case err != nil:
		return -1, fmt.Errorf("postgres: claim all: %v", err)
	}
	return -1, nil
}
