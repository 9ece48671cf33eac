package tokenstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// Fault is what a [Faulty] backend does to one call instead of passing it
// through.
type Fault int

const (
	// LoseAnswer performs the call, then returns an error instead of its
	// answer: the write took effect and the caller cannot know it.
	LoseAnswer Fault = iota + 1
	// TimeoutAfter performs the call, then returns an error wrapping
	// context.DeadlineExceeded, as a client whose read timed out while the
	// server went on with the command.
	TimeoutAfter
	// Resend performs the call twice and returns the second copy's
	// answer, as a client that timed out and sent the command again while
	// the server ran the first copy too (go-redis retries a timed-out
	// script this way).
	Resend
	// Refuse fails the call without performing it.
	Refuse
)

func (f Fault) String() string {
	switch f {
	case LoseAnswer:
		return "LoseAnswer"
	case TimeoutAfter:
		return "TimeoutAfter"
	case Resend:
		return "Resend"
	case Refuse:
		return "Refuse"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ErrFault is wrapped by every error a [Faulty] backend makes up.
var ErrFault = errors.New("tokenstoretest: injected fault")

// Faults are the faults that a write whose effect is uncertain to its
// caller can meet: every one leaves the write performed.
var Faults = []Fault{LoseAnswer, TimeoutAfter, Resend}

// Faulty wraps a backend and injects faults into the calls named by
// [Faulty.Inject], by method name ("Claim", "Swap", "PutRow", "Load",
// "GetRow", "DeleteRow", "Forget", "Txn", "ListRows", "Scan"). Every other
// call passes through. It is safe for concurrent use.
//
// The helpers built on the transaction (tokenstore.ClaimAll, ClaimAllIf,
// PutRowSwap, Store.DeleteIf) meet the faults of "Txn". Two narrower names
// pick out transactions by what they write, so that a test can fault a
// callback's vault write and not its claim: [TxnRows] meets only the
// transactions that write or delete a row, [TxnEntries] only the others.
// A transaction meets a fault of its narrower name first, then one of
// "Txn".
type Faulty struct {
	tokenstore.Backend

	mu   sync.Mutex
	plan map[string][]Fault
	hits map[string]int
}

// The narrower names of "Txn" faults (see [Faulty]).
const (
	TxnRows    = "Txn/rows"
	TxnEntries = "Txn/entries"
)

// NewFaulty wraps b.
func NewFaulty(b tokenstore.Backend) *Faulty {
	return &Faulty{Backend: b, plan: map[string][]Fault{}, hits: map[string]int{}}
}

// Inject makes the next len(faults) calls of method op meet faults, in
// order.
func (f *Faulty) Inject(op string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan[op] = append(f.plan[op], faults...)
}

// Hits is how many faults calls of op have met.
func (f *Faulty) Hits(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[op]
}

// Pending is how many injected faults of op no call has met yet.
func (f *Faulty) Pending(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.plan[op])
}

// Drain takes back every fault that no call has met yet.
func (f *Faulty) Drain() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.plan)
}

// next takes the next fault planned for the first of ops that has one.
func (f *Faulty) next(ops ...string) (string, Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, op := range ops {
		p := f.plan[op]
		if len(p) == 0 {
			continue
		}
		f.plan[op] = p[1:]
		f.hits[op]++
		return op, p[0]
	}
	return ops[0], 0
}

// do runs call under op's next fault: call is what the backend does, and
// it returns an error to be replaced by the fault's.
func (f *Faulty) do(op string, call func() error) error {
	return f.doAny([]string{op}, call)
}

// doAny is do under the next fault of the first of ops that has one.
func (f *Faulty) doAny(ops []string, call func() error) error {
	op, fault := f.next(ops...)
	switch fault {
	case 0:
		return call()
	case Refuse:
		return fmt.Errorf("%w: %s refused", ErrFault, op)
	case LoseAnswer:
		_ = call()
		return fmt.Errorf("%w: %s performed, its answer lost", ErrFault, op)
	case TimeoutAfter:
		_ = call()
		return fmt.Errorf("%w: %s performed, then %w", ErrFault, op, context.DeadlineExceeded)
	case Resend:
		_ = call()
		return call()
	}
	panic("tokenstoretest: unknown fault")
}

func (f *Faulty) GetRow(ctx context.Context, id string) (r tokenstore.Row, err error) {
	err = f.do("GetRow", func() (err error) { r, err = f.Backend.GetRow(ctx, id); return err })
	return r, err
}

func (f *Faulty) PutRow(ctx context.Context, row tokenstore.Row, expect int64) (v int64, err error) {
	err = f.do("PutRow", func() (err error) { v, err = f.Backend.PutRow(ctx, row, expect); return err })
	return v, err
}

func (f *Faulty) DeleteRow(ctx context.Context, id string) error {
	return f.do("DeleteRow", func() error { return f.Backend.DeleteRow(ctx, id) })
}

func (f *Faulty) ListRows(ctx context.Context, flt tokenstore.Filter) (rows []tokenstore.Row, err error) {
	err = f.do("ListRows", func() (err error) { rows, err = f.Backend.ListRows(ctx, flt); return err })
	return rows, err
}

func (f *Faulty) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return f.do("Claim", func() error { return f.Backend.Claim(ctx, key, value, ttl) })
}

func (f *Faulty) Load(ctx context.Context, key string) (v []byte, err error) {
	err = f.do("Load", func() (err error) { v, err = f.Backend.Load(ctx, key); return err })
	if err != nil {
		v = nil
	}
	return v, err
}

func (f *Faulty) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	return f.do("Swap", func() error { return f.Backend.Swap(ctx, key, old, value, ttl) })
}

func (f *Faulty) Forget(ctx context.Context, key string) error {
	return f.do("Forget", func() error { return f.Backend.Forget(ctx, key) })
}

func (f *Faulty) Scan(ctx context.Context, prefix, after string, limit int) (es []tokenstore.Entry, err error) {
	err = f.do("Scan", func() (err error) { es, err = f.Backend.Scan(ctx, prefix, after, limit); return err })
	return es, err
}

func (f *Faulty) Txn(ctx context.Context, t tokenstore.Txn) (res tokenstore.TxnResult, err error) {
	narrow := TxnEntries
	for _, o := range t.Then {
		if o.Kind == tokenstore.PutRowOp || o.Kind == tokenstore.DeleteRowOp {
			narrow = TxnRows
		}
	}
	err = f.doAny([]string{narrow, "Txn"}, func() (err error) { res, err = f.Backend.Txn(ctx, t); return err })
	if err != nil && errors.Is(err, ErrFault) {
		res = tokenstore.TxnResult{Failed: -1}
	}
	return res, err
}
