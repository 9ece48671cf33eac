package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// CondKind says what a [Cond] checks.
type CondKind int

// The kinds of [Cond].
const (
	// EntryAbsent holds when no unexpired entry is stored under Cond.Key.
	EntryAbsent CondKind = iota + 1
	// EntryPresent holds when an unexpired entry is stored under Cond.Key.
	EntryPresent
	// EntryEquals holds when the unexpired entry under Cond.Key has the
	// value Cond.Value, byte for byte.
	EntryEquals
	// RowVersion holds when the row Cond.Key has version Cond.Version;
	// 0 means "no row stored".
	RowVersion
)

// Cond is one condition of a [Txn].
type Cond struct {
	Kind    CondKind
	Key     string // the entry's key, or for RowVersion the row's ID
	Value   []byte // EntryEquals: the value the entry must hold
	Version int64  // RowVersion: the version the row must have, 0 for none
}

// OpKind says what an [Op] writes.
type OpKind int

// The kinds of [Op].
const (
	// PutEntry stores Op.Value under Op.Key with Op.TTL (<= 0: never
	// expires), replacing any entry.
	PutEntry OpKind = iota + 1
	// ForgetEntry removes the entry under Op.Key, if any.
	ForgetEntry
	// PutRow writes Op.Row as PutRow(row, AnyVersion) does: an insert
	// starts at InsertVersion(row), a replacement adds 1. Guard it with a
	// RowVersion condition to make it conditional.
	PutRowOp
	// DeleteRowOp removes the row Op.Row.ID, if any.
	DeleteRowOp
)

// Op is one write of a [Txn].
type Op struct {
	Kind  OpKind
	Key   string        // PutEntry, ForgetEntry
	Value []byte        // PutEntry
	TTL   time.Duration // PutEntry; <= 0: never expires
	Row   Row           // PutRowOp: the row; DeleteRowOp: Row.ID
}

// Txn is a conditional transaction, in the spirit of etcd's: if every
// condition of If holds, every write of Then happens, atomically;
// otherwise nothing is written. Conditions are judged against one state:
// no other write lands between them, or between them and the writes.
type Txn struct {
	If   []Cond
	Then []Op
}

// Read is what one condition of a [Txn] found.
type Read struct {
	Present bool   // an unexpired entry, or a row, is stored
	Value   []byte // the entry's value, if present (entry conditions)
	Version int64  // the row's version, 0 if none (RowVersion)
}

// TxnResult is what [Transactor.Txn] did.
type TxnResult struct {
	// OK reports that every condition held and the writes happened.
	OK bool
	// Failed is the index in If of the first condition that did not hold,
	// or -1 when OK.
	Failed int
	// Reads holds, for each condition of If, what it found, whether or
	// not the transaction succeeded.
	Reads []Read
	// Versions holds, for each write of Then, the new version of the row
	// a PutRowOp wrote (0 for other writes, or when not OK).
	Versions []int64
}

// ErrInvalidTxn is wrapped by the error of a [Txn] that [CheckTxn] refuses.
var ErrInvalidTxn = errors.New("tokenstore: invalid txn")

// CheckTxn reports a [Txn] that backends must refuse, before they touch
// storage: an empty one, an unknown condition or write kind, a key or row
// written twice. Backends call it first.
func CheckTxn(t Txn) error {
	if len(t.If) == 0 && len(t.Then) == 0 {
		return fmt.Errorf("%w: no condition and no write", ErrInvalidTxn)
	}
	for i, c := range t.If {
		if c.Kind < EntryAbsent || c.Kind > RowVersion {
			return fmt.Errorf("%w: condition %d: unknown kind %d", ErrInvalidTxn, i, c.Kind)
		}
		if c.Kind == RowVersion && c.Version < 0 {
			return fmt.Errorf("%w: condition %d: negative version", ErrInvalidTxn, i)
		}
	}
	entries := make(map[string]struct{}, len(t.Then))
	rows := make(map[string]struct{}, len(t.Then))
	for i, o := range t.Then {
		var seen map[string]struct{}
		var k string
		switch o.Kind {
		case PutEntry, ForgetEntry:
			seen, k = entries, o.Key
		case PutRowOp, DeleteRowOp:
			seen, k = rows, o.Row.ID
		default:
			return fmt.Errorf("%w: write %d: unknown kind %d", ErrInvalidTxn, i, o.Kind)
		}
		if _, ok := seen[k]; ok {
			return fmt.Errorf("%w: write %d: %q is written twice", ErrInvalidTxn, i, k)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// Holds reports whether c holds given what it read; backends call it.
func (c Cond) Holds(r Read) bool {
	switch c.Kind {
	case EntryAbsent:
		return !r.Present
	case EntryPresent:
		return r.Present
	case EntryEquals:
		return r.Present && bytes.Equal(r.Value, c.Value)
	case RowVersion:
		return r.Version == c.Version
	}
	return false
}

// Judge fills res.OK and res.Failed from res.Reads; backends call it after
// reading every condition and before writing.
func (t Txn) Judge(res *TxnResult) {
	res.OK, res.Failed = true, -1
	for i, c := range t.If {
		if !c.Holds(res.Reads[i]) {
			res.OK, res.Failed = false, i
			return
		}
	}
}

// Transactor is the conditional transaction of a [Backend].
type Transactor interface {
	// Txn runs t: it reads every condition of t.If and, if all hold,
	// performs every write of t.Then, all in one atomic step (one
	// transaction, one script, one hold of a lock). A condition that does
	// not hold is an answer, not an error: the result says which failed
	// first and nothing is written. It refuses what CheckTxn refuses.
	Txn(ctx context.Context, t Txn) (TxnResult, error)
}
