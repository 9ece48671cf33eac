package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/jackc/pgx/v5"
)

// errHeld ends a claiming transaction when a key is held; errNoGuard ends
// ClaimAllIf's when its guard is absent.
var (
	errHeld    = errors.New("held")
	errNoGuard = errors.New("no guard")
)

// ClaimAll implements tokenstore.Backend: Claim's upsert for each key in
// one transaction, rolled back at the first key held. A concurrent claim of
// the same key waits on the row lock and then sees this one's outcome, so
// exactly one wins.
func (b *Backend) ClaimAll(ctx context.Context, claims []tokenstore.Claim) (int, error) {
	if err := tokenstore.CheckClaims(claims); err != nil || len(claims) == 0 {
		return -1, err // a repeated key, or nothing to claim
	}
	held := -1
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) (err error) {
		held, err = claimTx(ctx, tx, claims)
		return err
	})
	return held, claimResult("claim all", claims, held, err)
}

// ClaimAllIf implements tokenstore.Backend: ClaimAll's transaction, after
// reading the guard in it. The guard's row is locked FOR SHARE, so it
// cannot be removed or changed until the claims commit.
func (b *Backend) ClaimAllIf(ctx context.Context, guard string, claims []tokenstore.Claim) ([]byte, int, error) {
	if err := tokenstore.CheckGuardedClaims(guard, claims); err != nil {
		return nil, -1, err
	}
	var value []byte
	held := -1
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT value FROM finchconnect_entries
			WHERE key = $1 AND (expires_at IS NULL OR expires_at > now()) FOR SHARE`, guard).Scan(&value)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoGuard
		}
		if err != nil {
			return err
		}
		held, err = claimTx(ctx, tx, claims)
		return err
	})
	if errors.Is(err, errNoGuard) {
		return nil, -1, fmt.Errorf("postgres: claim if %s: %w", guard, finchconnect.ErrNotFound)
	}
	if err = claimResult("claim all if", claims, held, err); err != nil && held < 0 {
		return nil, -1, err
	}
	return nonNil(value), held, err
}

// claimTx claims every key of claims in tx, or reports with errHeld the
// index in claims of the first key held.
//
// It writes the keys in sorted order, not the caller's: each INSERT locks
// its key's row until the transaction ends, so two calls that claim
// overlapping keys in opposite orders would otherwise each wait for a lock
// the other holds, and PostgreSQL would abort one with a deadlock (40P01)
// where the contract promises ErrConflict. In one order, the later call
// waits for the earlier to commit or roll back and then sees its outcome.
//
// Once a key is found held, only keys that come before it in the caller's
// order can change the answer; they are still tried (in sorted order, so
// no deadlock) and the rest are skipped. A held key's row stays locked
// until the rollback, even though ON CONFLICT's WHERE left it unchanged.
func claimTx(ctx context.Context, tx pgx.Tx, claims []tokenstore.Claim) (int, error) {
	order := make([]int, len(claims))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(claims[a].Key, claims[b].Key) })
	held := -1
	for _, i := range order {
		if held >= 0 && i > held {
			continue
		}
		c := claims[i]
		var got string
		err := tx.QueryRow(ctx, `INSERT INTO finchconnect_entries AS e (key, value, expires_at)
			VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
				WHERE e.expires_at IS NOT NULL AND e.expires_at <= now()
			RETURNING key`, c.Key, nonNil(c.Value), ttlMicros(c.TTL)).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			held = i
			continue
		}
		if err != nil {
			return -1, err
		}
	}
	if held >= 0 {
		return held, errHeld
	}
	return -1, nil
}

// claimResult turns a claiming transaction's outcome into the contract's
// error: a conflict naming the held key, or the driver's error.
func claimResult(op string, claims []tokenstore.Claim, held int, err error) error {
	switch {
	case held >= 0:
		return fmt.Errorf("postgres: claim %s: %w", claims[held].Key, finchconnect.ErrConflict)
	case err != nil:
		return fmt.Errorf("postgres: %s: %v", op, err)
	}
	return nil
}
