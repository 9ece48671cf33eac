// Package pgbudget keeps the windows of a [budget.Budget] in PostgreSQL,
// so that every replica of one application draws from one Finch rate
// budget.
//
// One table, finchconnect_budget_leases, holds a row per live lease: the
// window's key, the lease id, the slots it holds and when they expire. A
// lease request is one transaction sent as one batch: a transaction-scoped
// advisory lock on the window's key (so concurrent grants cannot both see
// room), give back the previous lease's unspent slots, delete expired
// leases, and grant what fits. A second table,
// finchconnect_budget_pauses, holds a window's pause (a 429's Retry-After,
// or the IP breaker): while it lasts a lease request grants nothing.
package pgbudget

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/finchconnect/finchconnect/budget"
)

const schema = `CREATE TABLE IF NOT EXISTS finchconnect_budget_leases (
	key        text        NOT NULL,
	id         text        NOT NULL,
	n          integer     NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (key, id)
);
CREATE TABLE IF NOT EXISTS finchconnect_budget_pauses (
	key   text        PRIMARY KEY,
	until timestamptz NOT NULL
)`

// Shared is a [budget.Shared] on PostgreSQL.
type Shared struct{ pool *pgxpool.Pool }

// New creates the table if it is missing (in the pool's search_path) and
// returns the shared windows.
func New(ctx context.Context, pool *pgxpool.Pool) (*Shared, error) {
	if _, err := pool.Exec(ctx, schema); err != nil {
		return nil, fmt.Errorf("pgbudget: create table: %w", err)
	}
	return &Shared{pool: pool}, nil
}

// Lease implements [budget.Shared] in one transaction.
func (s *Shared) Lease(ctx context.Context, req budget.LeaseRequest) (budget.LeaseResult, error) {
	var res budget.LeaseResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 7243))`, req.Key)
		if req.Return != nil {
			b.Queue(`UPDATE finchconnect_budget_leases SET n = n - $3 WHERE key = $1 AND id = $2`, req.Key, req.Return.ID, req.Return.Unused)
		}
		b.Queue(`DELETE FROM finchconnect_budget_leases WHERE key = $1 AND (expires_at <= $2 OR n <= 0)`, req.Key, req.Now)
		var granted, used int
		var nextFree, paused *time.Time
		b.Queue(`WITH s AS (
				SELECT coalesce(sum(n), 0)::int AS used, min(expires_at) AS next,
					(SELECT until FROM finchconnect_budget_pauses WHERE key = $1 AND until > $6) AS paused
				FROM finchconnect_budget_leases WHERE key = $1
			), ins AS (
				INSERT INTO finchconnect_budget_leases (key, id, n, expires_at)
				SELECT $1, $2, least($3::int, $4::int - used), $5 FROM s WHERE $4::int - used > 0 AND paused IS NULL
				RETURNING n
			)
			SELECT coalesce((SELECT n FROM ins), 0), used, next, paused FROM s`,
			req.Key, req.ID, req.Want, req.Limit, req.Until, req.Now).QueryRow(func(row pgx.Row) error {
			return row.Scan(&granted, &used, &nextFree, &paused)
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		res = budget.LeaseResult{Granted: granted, Used: used + granted}
		if granted == 0 && nextFree != nil {
			res.NextFree = *nextFree
		}
		if paused != nil {
			res.Paused = *paused
			if granted == 0 && (used < req.Limit || paused.After(res.NextFree)) {
				res.NextFree = *paused
			}
		}
		return nil
	})
	if err != nil {
		return budget.LeaseResult{}, fmt.Errorf("pgbudget: lease: %w", err)
	}
	return res, nil
}

// Release implements [budget.Shared].
func (s *Shared) Release(ctx context.Context, key, id string, unused int) error {
	// A lease left with no slots is deleted by the window's next Lease.
	_, err := s.pool.Exec(ctx, `UPDATE finchconnect_budget_leases SET n = n - $3 WHERE key = $1 AND id = $2`, key, id, unused)
	if err != nil {
		return fmt.Errorf("pgbudget: release: %w", err)
	}
	return nil
}

// Pause implements [budget.Shared].
func (s *Shared) Pause(ctx context.Context, key string, until time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO finchconnect_budget_pauses (key, until) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET until = greatest(finchconnect_budget_pauses.until, excluded.until)`, key, until)
	if err != nil {
		return fmt.Errorf("pgbudget: pause: %w", err)
	}
	return nil
}
