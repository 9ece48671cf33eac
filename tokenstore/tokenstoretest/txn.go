package tokenstoretest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// mustTxn runs t on b and fails the test on an error.
func mustTxn(tb testing.TB, b tokenstore.Backend, t tokenstore.Txn) tokenstore.TxnResult {
	tb.Helper()
	res, err := b.Txn(tb.Context(), t)
	if err != nil {
		tb.Fatalf("Txn(%+v) err = %v", t, err)
	}
	if len(res.Reads) != len(t.If) || len(res.Versions) != len(t.Then) {
		tb.Fatalf("Txn(%+v) = %d reads and %d versions, want %d and %d", t, len(res.Reads), len(res.Versions), len(t.If), len(t.Then))
	}
	return res
}

// wantFailed checks that res says condition i failed first.
func wantFailed(t *testing.T, what string, res tokenstore.TxnResult, i int) {
	t.Helper()
	if res.OK || res.Failed != i {
		t.Errorf("%s: OK %v, Failed %d; want false, %d", what, res.OK, res.Failed, i)
	}
}

func wantOK(t *testing.T, what string, res tokenstore.TxnResult) {
	t.Helper()
	if !res.OK || res.Failed != -1 {
		t.Errorf("%s: OK %v, Failed %d; want true, -1", what, res.OK, res.Failed)
	}
}

func absent(k string) tokenstore.Cond  { return tokenstore.Cond{Kind: tokenstore.EntryAbsent, Key: k} }
func present(k string) tokenstore.Cond { return tokenstore.Cond{Kind: tokenstore.EntryPresent, Key: k} }
func equals(k, v string) tokenstore.Cond {
	return tokenstore.Cond{Kind: tokenstore.EntryEquals, Key: k, Value: []byte(v)}
}
func rowAt(id string, v int64) tokenstore.Cond {
	return tokenstore.Cond{Kind: tokenstore.RowVersion, Key: id, Version: v}
}
func putEntry(k, v string, ttl time.Duration) tokenstore.Op {
	return tokenstore.Op{Kind: tokenstore.PutEntry, Key: k, Value: []byte(v), TTL: ttl}
}
func forgetEntry(k string) tokenstore.Op { return tokenstore.Op{Kind: tokenstore.ForgetEntry, Key: k} }
func putRowOp(r tokenstore.Row) tokenstore.Op {
	return tokenstore.Op{Kind: tokenstore.PutRowOp, Row: r}
}
func deleteRowOp(id string) tokenstore.Op {
	return tokenstore.Op{Kind: tokenstore.DeleteRowOp, Row: tokenstore.Row{ID: id}}
}

// testTxn: every condition kind, held and not, over entries and rows
// together; a failed txn writes nothing; the reads come back either way.
func testTxn(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()

	// Nothing stored: absent holds, present and equals fail, row 0 holds.
	txn := tokenstore.Txn{
		If:   []tokenstore.Cond{absent("tx:a"), rowAt("tx-row", 0)},
		Then: []tokenstore.Op{putEntry("tx:a", "A", time.Hour), putRowOp(sampleRow("tx-row")), putEntry("tx:b", "B", 0)},
	}
	res := mustTxn(t, b, txn)
	wantOK(t, "Txn(absent, no row)", res)
	if res.Reads[0].Present || res.Reads[1].Present || res.Reads[1].Version != 0 {
		t.Errorf("Txn(absent, no row) reads = %+v, want nothing present", res.Reads)
	}
	if res.Versions[1] != 1 || res.Versions[0] != 0 || res.Versions[2] != 0 {
		t.Errorf("Txn versions = %v, want [0 1 0]", res.Versions)
	}
	if got := mustLoad(t, b, "tx:a"); string(got) != "A" {
		t.Errorf("Load(tx:a) = %q, want A", got)
	}
	if got := mustLoad(t, b, "tx:b"); string(got) != "B" {
		t.Errorf("Load(tx:b) = %q, want B", got)
	}
	if r := mustGetRow(t, b, "tx-row"); r.Version != 1 || r.Status != sampleRow("tx-row").Status {
		t.Errorf("GetRow(tx-row) = %+v, want the sample row at version 1", r)
	}

	// The same txn again: absent fails first; nothing is written.
	res = mustTxn(t, b, txn)
	wantFailed(t, "Txn(absent) over a held key", res, 0)
	if !res.Reads[0].Present || string(res.Reads[0].Value) != "A" || !res.Reads[1].Present || res.Reads[1].Version != 1 {
		t.Errorf("failed Txn reads = %+v, want tx:a's A and version 1", res.Reads)
	}
	if r := mustGetRow(t, b, "tx-row"); r.Version != 1 {
		t.Errorf("a failed Txn wrote the row: version %d", r.Version)
	}

	// Each kind that fails stops the txn, and reports its index even when
	// a later one fails too.
	no := tokenstore.Op{Kind: tokenstore.PutEntry, Key: "tx:never", Value: []byte("x")}
	for _, c := range []struct {
		name string
		cond tokenstore.Cond
	}{
		{"present(absent key)", present("tx:none")},
		{"equals(other value)", equals("tx:a", "B")},
		{"equals(absent key)", equals("tx:none", "")},
		{"row at 0 (row stored)", rowAt("tx-row", 0)},
		{"row at 2 (row at 1)", rowAt("tx-row", 2)},
		{"row at 1 (no row)", rowAt("tx-none", 1)},
	} {
		res := mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{present("tx:a"), c.cond, absent("tx:a")}, Then: []tokenstore.Op{no}})
		wantFailed(t, "Txn("+c.name+")", res, 1)
		if !res.Reads[0].Present || string(res.Reads[0].Value) != "A" {
			t.Errorf("Txn(%s) read of tx:a = %+v, want A", c.name, res.Reads[0])
		}
		_, err := b.Load(ctx, "tx:never")
		wantErrIs(t, "Load(tx:never) after Txn("+c.name+")", err, finchconnect.ErrNotFound)
	}

	// Every kind that holds: replace, forget, rewrite and delete.
	res = mustTxn(t, b, tokenstore.Txn{
		If: []tokenstore.Cond{present("tx:a"), equals("tx:b", "B"), rowAt("tx-row", 1), absent("tx:none"), rowAt("tx-none", 0)},
		Then: []tokenstore.Op{putEntry("tx:a", "A2", 0), forgetEntry("tx:b"), forgetEntry("tx:none"),
			putRowOp(sampleRow("tx-row")), deleteRowOp("tx-none")},
	})
	wantOK(t, "Txn(all hold)", res)
	if string(res.Reads[1].Value) != "B" || res.Reads[2].Version != 1 {
		t.Errorf("Txn(all hold) reads = %+v", res.Reads)
	}
	if res.Versions[3] != 2 {
		t.Errorf("Txn put row version = %d, want 2", res.Versions[3])
	}
	if got := mustLoad(t, b, "tx:a"); string(got) != "A2" {
		t.Errorf("Load(tx:a) = %q, want A2", got)
	}
	_, err := b.Load(ctx, "tx:b")
	wantErrIs(t, "Load(tx:b) after its forget", err, finchconnect.ErrNotFound)

	// Binary values compare byte for byte, and come back whole.
	bin := string(allBytes())
	mustTxn(t, b, tokenstore.Txn{Then: []tokenstore.Op{putEntry("tx:bin", bin, 0)}})
	res = mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{equals("tx:bin", bin)}, Then: []tokenstore.Op{deleteRowOp("tx-row")}})
	wantOK(t, "Txn(equals binary)", res)
	if string(res.Reads[0].Value) != bin {
		t.Errorf("Txn read of a binary value = %d bytes, want %d", len(res.Reads[0].Value), len(bin))
	}
	_, err = b.GetRow(ctx, "tx-row")
	wantErrIs(t, "GetRow(tx-row) after its delete", err, finchconnect.ErrNotFound)

	// A condition-only txn reads and writes nothing.
	res = mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{rowAt("tx-row", 0), present("tx:a")}})
	wantOK(t, "Txn(conditions only)", res)
	if string(res.Reads[1].Value) != "A2" {
		t.Errorf("Txn(conditions only) read %q, want A2", res.Reads[1].Value)
	}
	if _, err := b.GetRow(ctx, "tx-row"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("GetRow(tx-row) after a read-only Txn err = %v, want ErrNotFound", err)
	}
}

// testTxnValidation: what CheckTxn refuses, every backend refuses, without
// writing.
func testTxnValidation(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	for name, txn := range map[string]tokenstore.Txn{
		"empty":             {},
		"entry twice":       {Then: []tokenstore.Op{putEntry("tv:a", "1", 0), forgetEntry("tv:a")}},
		"row twice":         {Then: []tokenstore.Op{putRowOp(sampleRow("tv-row")), deleteRowOp("tv-row")}},
		"unknown condition": {If: []tokenstore.Cond{{Kind: 99, Key: "tv:a"}}, Then: []tokenstore.Op{putEntry("tv:b", "1", 0)}},
		"unknown write":     {Then: []tokenstore.Op{putEntry("tv:b", "1", 0), {Kind: 99, Key: "tv:c"}}},
	} {
		_, err := b.Txn(ctx, txn)
		if !errors.Is(err, tokenstore.ErrInvalidTxn) {
			t.Errorf("Txn(%s) err = %v, want ErrInvalidTxn", name, err)
		}
	}
	if _, err := b.Load(ctx, "tv:b"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Load(tv:b) after refused txns err = %v, want ErrNotFound", err)
	}
	if _, err := b.GetRow(ctx, "tv-row"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("GetRow(tv-row) after refused txns err = %v, want ErrNotFound", err)
	}
	// An entry and a row may share a name: they are different things.
	mustTxn(t, b, tokenstore.Txn{Then: []tokenstore.Op{putEntry("tv-same", "1", 0), putRowOp(sampleRow("tv-same"))}})
}

// testTxnExpiry: an expired entry is absent to every condition, on the
// backend's clock.
func testTxnExpiry(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	deadline := c.Now().Add(shortTTL)
	mustTxn(t, b, tokenstore.Txn{Then: []tokenstore.Op{putEntry("te:a", "A", shortTTL), putEntry("te:b", "B", time.Hour)}})
	res := mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{present("te:a"), equals("te:a", "A")}})
	wantOK(t, "Txn(present) before expiry", res)
	c.passBeyond(deadline)
	res = mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{present("te:b"), present("te:a")}})
	wantFailed(t, "Txn(present) after expiry", res, 1)
	if res.Reads[1].Present {
		t.Errorf("Txn read an expired entry: %+v", res.Reads[1])
	}
	res = mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{equals("te:a", "A")}})
	wantFailed(t, "Txn(equals) after expiry", res, 0)
	res = mustTxn(t, b, tokenstore.Txn{If: []tokenstore.Cond{absent("te:a")}, Then: []tokenstore.Op{putEntry("te:a", "A2", time.Hour)}})
	wantOK(t, "Txn(absent) after expiry", res)
	if got := mustLoad(t, b, "te:a"); string(got) != "A2" {
		t.Errorf("Load(te:a) = %q, want A2", got)
	}
}

// testConcurrentTxn: many txns that each need one key absent, or one row
// absent: exactly one wins; the others see the winner's write.
func testConcurrentTxn(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	for _, what := range []string{"entry", "row"} {
		const n = 30
		errs := race(n, func(i int) error {
			r := sampleRow("tc-row")
			r.Status = fmt.Sprint(i)
			txn := tokenstore.Txn{
				If:   []tokenstore.Cond{absent("tc:" + what)},
				Then: []tokenstore.Op{putEntry("tc:"+what, fmt.Sprint(i), time.Hour), putRowOp(r)},
			}
			if what == "row" {
				txn = tokenstore.Txn{If: []tokenstore.Cond{rowAt("tc-row", 0)}, Then: []tokenstore.Op{putRowOp(r)}}
			}
			res, err := b.Txn(ctx, txn)
			if err != nil {
				return err
			}
			if !res.OK {
				if !res.Reads[0].Present {
					return fmt.Errorf("txn %d failed but read nothing", i)
				}
				return finchconnect.ErrConflict
			}
			return nil
		})
		w := oneWinner(t, fmt.Sprintf("%d concurrent Txns on one %s", n, what), errs)
		if w < 0 {
			continue
		}
		r := mustGetRow(t, b, "tc-row")
		if r.Status != fmt.Sprint(w) || r.Version != 1 {
			t.Errorf("%s race: row = status %s version %d, want the winner's %d at version 1", what, r.Status, r.Version, w)
		}
		if what == "entry" {
			if got := mustLoad(t, b, "tc:entry"); string(got) != fmt.Sprint(w) {
				t.Errorf("Load(tc:entry) = %q, want the winner's %d", got, w)
			}
			if err := b.DeleteRow(ctx, "tc-row"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// testTxnLostAnswer: a txn whose answer is lost (or timed out) was
// performed: running it again reports its condition failed and reads
// what it wrote.
func testTxnLostAnswer(t *testing.T, b tokenstore.Backend) {
	f := NewFaulty(b)
	for i, fault := range []Fault{LoseAnswer, TimeoutAfter} {
		k := fmt.Sprintf("tl:%d", i)
		txn := tokenstore.Txn{If: []tokenstore.Cond{absent(k)}, Then: []tokenstore.Op{putEntry(k, "won", time.Hour)}}
		f.Inject("Txn", fault)
		if _, err := f.Txn(t.Context(), txn); !errors.Is(err, ErrFault) {
			t.Fatalf("Txn under %v err = %v, want ErrFault", fault, err)
		}
		res := mustTxn(t, f, txn)
		wantFailed(t, fmt.Sprintf("Txn again after %v", fault), res, 0)
		if string(res.Reads[0].Value) != "won" {
			t.Errorf("Txn again after %v read %q, want the lost txn's write", fault, res.Reads[0].Value)
		}
	}
}
