package tokenstore

import (
	"context"
	"fmt"

	"github.com/finchconnect/finchconnect"
)

// The helpers of this file are compound writes built on one [Txn] (or, for
// PutRowSwap when its swap does not hold, two): every backend implements
// them the same way, through its Transactor, and a fault injected into
// "Txn" reaches all of them.

// ClaimAll claims every key of claims, or none, in one transaction: if an
// unexpired entry holds any of their keys, it stores nothing and returns
// the index of the first such claim and an error wrapping
// finchconnect.ErrConflict. On success it returns -1 and nil. Keys must be
// distinct. Exactly one of any number of concurrent ClaimAll (or Claim)
// calls that share a key succeeds. On a store error it returns -1: whether
// the claims landed is unknown.
func ClaimAll(ctx context.Context, b Transactor, claims []Claim) (held int, err error) {
	if err := CheckClaims(claims); err != nil {
		return -1, err
	}
	if len(claims) == 0 {
		return -1, nil
	}
	t := Txn{If: make([]Cond, len(claims)), Then: make([]Op, len(claims))}
	for i, c := range claims {
		t.If[i] = Cond{Kind: EntryAbsent, Key: c.Key}
		t.Then[i] = Op{Kind: PutEntry, Key: c.Key, Value: c.Value, TTL: c.TTL}
	}
	res, err := b.Txn(ctx, t)
	if err != nil {
		return -1, fmt.Errorf("tokenstore: claim all: %w", err)
	}
	if !res.OK {
		return res.Failed, fmt.Errorf("tokenstore: claim %q: %w", claims[res.Failed].Key, finchconnect.ErrConflict)
	}
	return -1, nil
}

// ClaimAllIf is ClaimAll guarded by another key, in one transaction: if no
// unexpired entry holds guard, it claims nothing and returns an error
// wrapping finchconnect.ErrNotFound (and a nil value); otherwise it claims
// as ClaimAll does, all or none, and returns guard's value whether or not
// the claims succeeded (held and err as ClaimAll's). guard must not be one
// of the claims' keys. On a store error it returns a nil value and -1.
//
// It is how a callback reads its flow's state and claims its code in one
// step (package connect): the state's key says which browser may complete
// the flow, so a request from another browser claims nothing.
func ClaimAllIf(ctx context.Context, b Transactor, guard string, claims []Claim) (value []byte, held int, err error) {
	if err := CheckGuardedClaims(guard, claims); err != nil {
		return nil, -1, err
	}
	t := Txn{If: make([]Cond, 1, 1+len(claims)), Then: make([]Op, len(claims))}
	t.If[0] = Cond{Kind: EntryPresent, Key: guard}
	for i, c := range claims {
		t.If = append(t.If, Cond{Kind: EntryAbsent, Key: c.Key})
		t.Then[i] = Op{Kind: PutEntry, Key: c.Key, Value: c.Value, TTL: c.TTL}
	}
	res, err := b.Txn(ctx, t)
	if err != nil {
		return nil, -1, fmt.Errorf("tokenstore: claim all if: %w", err)
	}
	switch {
	case res.OK:
		return res.Reads[0].Value, -1, nil
	case res.Failed == 0:
		return nil, -1, fmt.Errorf("tokenstore: claim if %q: %w", guard, finchconnect.ErrNotFound)
	}
	held = res.Failed - 1
	return res.Reads[0].Value, held, fmt.Errorf("tokenstore: claim %q: %w", claims[held].Key, finchconnect.ErrConflict)
}

// PutRowSwap writes row as PutRow(row, expect) does and, in the same
// transaction, replaces sw.Key's value with sw.Value (and its ttl with
// sw.TTL) if it equals sw.Old, as Swap does. The row decides: if expect
// does not match, it returns an error wrapping finchconnect.ErrConflict
// and writes nothing. The swap's condition is its own: when sw.Key is
// absent, expired or holds another value, the row is still written and
// swapped is false. No reader ever sees one write without the other.
//
// When the swap's condition does not hold, the row is written by a second
// transaction, guarded by the row's version and by the entry still being
// what the first one read: the answer is then as if both were judged in
// one state. If the entry changed in between, it starts over.
//
// It is how a callback stores its connection and settles its ledger entry
// together (tokenstore.Store's swaps). On a store error the writes may
// have happened or not.
func PutRowSwap(ctx context.Context, b Transactor, row Row, expect int64, sw Swap) (version int64, swapped bool, err error) {
	var rowCond []Cond
	if expect != AnyVersion {
		rowCond = []Cond{{Kind: RowVersion, Key: row.ID, Version: expect}}
	}
	conflict := func(res TxnResult) error {
		return fmt.Errorf("tokenstore: put row %q: version %d, want %d: %w", row.ID, res.Reads[0].Version, expect, finchconnect.ErrConflict)
	}
	putRow := Op{Kind: PutRowOp, Row: row}
	for range maxAttempts {
		t := Txn{
			If:   append(rowCond[:len(rowCond):len(rowCond)], Cond{Kind: EntryEquals, Key: sw.Key, Value: sw.Old}),
			Then: []Op{putRow, {Kind: PutEntry, Key: sw.Key, Value: sw.Value, TTL: sw.TTL}},
		}
		res, err := b.Txn(ctx, t)
		if err != nil {
			return 0, false, fmt.Errorf("tokenstore: put row swap %q: %w", row.ID, err)
		}
		if res.OK {
			return res.Versions[0], true, nil
		}
		if res.Failed < len(rowCond) {
			return 0, false, conflict(res)
		}
		// The swap does not hold: write the row alone, if the entry is
		// still what the swap's condition found.
		found := res.Reads[len(rowCond)]
		same := Cond{Kind: EntryAbsent, Key: sw.Key}
		if found.Present {
			same = Cond{Kind: EntryEquals, Key: sw.Key, Value: found.Value}
		}
		t = Txn{If: append(rowCond[:len(rowCond):len(rowCond)], same), Then: []Op{putRow}}
		if res, err = b.Txn(ctx, t); err != nil {
			return 0, false, fmt.Errorf("tokenstore: put row swap %q: %w", row.ID, err)
		}
		if res.OK {
			return res.Versions[0], false, nil
		}
		if res.Failed < len(rowCond) {
			return 0, false, conflict(res)
		}
		// The entry changed in between: judge the swap again.
	}
	return 0, false, fmt.Errorf("tokenstore: put row swap %q: the entry kept changing, gave up after %d attempts: %w", row.ID, maxAttempts, finchconnect.ErrConflict)
}
