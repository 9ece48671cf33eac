package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errTxnFailed rolls back a txn whose condition did not hold; errTxnRaced
// one whose row insert met a row inserted since it read, to run it again.
var (
	errTxnFailed = errors.New("condition failed")
	errTxnRaced  = errors.New("raced")
)

// txnAttempts bounds how often Txn runs again after a race or a deadlock.
const txnAttempts = 5

// Txn implements tokenstore.Backend in one SQL transaction (run again, a
// few times at most, if it raced; see below).
//
// It first locks everything it reads or writes, rows then entries, each in
// sorted order, so two txns never wait for each other in a cycle: each row
// with SELECT ... FOR UPDATE, each entry key with an upsert that, when no
// entry is stored, inserts an already expired placeholder (removed again
// before commit) so that absent keys are locked too. It then judges the
// conditions on what it locked, rolls back if one fails, and writes.
//
// An absent row cannot be locked: a row that another writer inserts after
// the txn read it absent makes the txn's insert (ON CONFLICT DO NOTHING)
// return nothing, and the txn runs again from the start, now seeing it.
// A deadlock against the other methods' locks runs it again too.
func (b *Backend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	if err := tokenstore.CheckTxn(t); err != nil {
		return tokenstore.TxnResult{Failed: -1}, err
	}
	var rowIDs, entryKeys []string
	for _, c := range t.If {
		if c.Kind == tokenstore.RowVersion {
			rowIDs = append(rowIDs, c.Key)
		} else {
			entryKeys = append(entryKeys, c.Key)
		}
	}
	for _, o := range t.Then {
		if o.Kind == tokenstore.PutRowOp || o.Kind == tokenstore.DeleteRowOp {
			rowIDs = append(rowIDs, o.Row.ID)
		} else {
			entryKeys = append(entryKeys, o.Key)
		}
	}
	slices.Sort(rowIDs)
	rowIDs = slices.Compact(rowIDs)
	slices.Sort(entryKeys)
	entryKeys = slices.Compact(entryKeys)

	var res tokenstore.TxnResult
	var err error
	for range txnAttempts {
		err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			var err error
			res, err = txnOnce(ctx, tx, t, rowIDs, entryKeys)
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.Is(err, errTxnRaced) && !(errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")) {
			break
		}
	}
	switch {
	case err == nil, errors.Is(err, errTxnFailed):
		return res, nil
	case errors.Is(err, errTxnRaced):
		return tokenstore.TxnResult{Failed: -1}, fmt.Errorf("postgres: txn: raced %d times", txnAttempts)
	}
	return tokenstore.TxnResult{Failed: -1}, fmt.Errorf("postgres: txn: %v", err)
}

// txnOnce is one attempt of Txn, in tx.
func txnOnce(ctx context.Context, tx pgx.Tx, t tokenstore.Txn, rowIDs, entryKeys []string) (tokenstore.TxnResult, error) {
	res := tokenstore.TxnResult{Reads: make([]tokenstore.Read, len(t.If)), Versions: make([]int64, len(t.Then))}
	versions := make(map[string]int64, len(rowIDs)) // absent: 0
	for _, id := range rowIDs {
		var v int64
		err := tx.QueryRow(ctx, `SELECT version FROM finchconnect_connections WHERE id = $1 FOR UPDATE`, id).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return res, err
		}
		versions[id] = v
	}
	type entry struct {
		live  bool
		value []byte
	}
	entries := make(map[string]entry, len(entryKeys))
	for _, k := range entryKeys {
		var e entry
		err := tx.QueryRow(ctx, `INSERT INTO finchconnect_entries AS e (key, value, expires_at)
			VALUES ($1, '', '-infinity')
			ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
			RETURNING e.value, (e.expires_at IS NULL OR e.expires_at > now())`, k).Scan(&e.value, &e.live)
		if err != nil {
			return res, err
		}
		entries[k] = e
	}
	for i, c := range t.If {
		if c.Kind == tokenstore.RowVersion {
			v := versions[c.Key]
			res.Reads[i] = tokenstore.Read{Present: v != 0, Version: v}
		} else if e := entries[c.Key]; e.live {
			res.Reads[i] = tokenstore.Read{Present: true, Value: nonNil(e.value)}
		}
	}
	if t.Judge(&res); !res.OK {
		return res, errTxnFailed
	}
	for i, o := range t.Then {
		var err error
		switch o.Kind {
		case tokenstore.PutEntry:
			_, err = tx.Exec(ctx, `UPDATE finchconnect_entries
				SET value = $2, expires_at = now() + $3::bigint * interval '1 microsecond' WHERE key = $1`,
				o.Key, nonNil(o.Value), ttlMicros(o.TTL))
		case tokenstore.ForgetEntry:
			_, err = tx.Exec(ctx, `DELETE FROM finchconnect_entries WHERE key = $1`, o.Key)
		case tokenstore.PutRowOp:
			query, args := putRowSQL(o.Row, versions[o.Row.ID])
			err = tx.QueryRow(ctx, query, args...).Scan(&res.Versions[i])
			if errors.Is(err, pgx.ErrNoRows) {
				err = errTxnRaced
			}
		case tokenstore.DeleteRowOp:
			_, err = tx.Exec(ctx, `DELETE FROM finchconnect_connections WHERE id = $1`, o.Row.ID)
		}
		if err != nil {
			return res, err
		}
	}
	// The placeholders of keys that were absent and were not written.
	_, err := tx.Exec(ctx, `DELETE FROM finchconnect_entries WHERE key = ANY($1) AND expires_at = '-infinity'`, entryKeys)
	return res, err
}
