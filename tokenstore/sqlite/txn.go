package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// Txn implements [tokenstore.Transactor.Txn] as one write of the group
// commit. The write connection is the only writer, so reading every
// condition and then writing, inside one transaction, is atomic. A txn
// whose condition fails writes nothing and returns no error, so it leaves
// its batch clean; its result is an answer. The write may run twice (when
// its batch fails and is retried alone), so it starts from a fresh result.
func (b *Backend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	if err := tokenstore.CheckTxn(t); err != nil {
		return tokenstore.TxnResult{Failed: -1}, err
	}
	var res tokenstore.TxnResult
	err := b.write(ctx, func(ctx context.Context, x execer) error {
		now := b.now()
		res = tokenstore.TxnResult{Reads: make([]tokenstore.Read, len(t.If)), Versions: make([]int64, len(t.Then))}
		for i, c := range t.If {
			var err error
			if c.Kind == tokenstore.RowVersion {
				var v int64
				err = x.QueryRowContext(ctx, `SELECT version FROM connections WHERE id = ?`, c.Key).Scan(&v)
				if err == nil {
					res.Reads[i] = tokenstore.Read{Present: true, Version: v}
				}
			} else {
				var v []byte
				err = x.QueryRowContext(ctx, loadQuery, c.Key, now).Scan(&v)
				if err == nil {
					res.Reads[i] = tokenstore.Read{Present: true, Value: nonNil(v)}
				}
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if t.Judge(&res); !res.OK {
			return nil
		}
		for i, o := range t.Then {
			var err error
			switch o.Kind {
			case tokenstore.PutEntry:
				_, err = x.ExecContext(ctx, `INSERT INTO entries (key, value, expires_at) VALUES (?1, ?2, ?3)
					ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
					o.Key, nonNil(o.Value), b.expiresAt(now, o.TTL))
			case tokenstore.ForgetEntry:
				_, err = x.ExecContext(ctx, `DELETE FROM entries WHERE key = ?`, o.Key)
			case tokenstore.PutRowOp:
				res.Versions[i], err = putRow(ctx, x, o.Row, tokenstore.AnyVersion)
			case tokenstore.DeleteRowOp:
				_, err = x.ExecContext(ctx, `DELETE FROM connections WHERE id = ?`, o.Row.ID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return tokenstore.TxnResult{Failed: -1}, fmt.Errorf("sqlite: txn: %v", err)
	}
	return res, nil
}
