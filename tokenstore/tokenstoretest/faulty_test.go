package tokenstoretest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

// TestFaulty: each fault does what it says to the wrapped backend, once
// per injection, and calls without a fault pass through.
func TestFaulty(t *testing.T) {
	ctx := t.Context()
	f := tokenstoretest.NewFaulty(tokenstore.NewMemory())
	f.Inject("Claim", tokenstoretest.Refuse, tokenstoretest.LoseAnswer)
	if err := f.Claim(ctx, "k", []byte("a"), time.Hour); !errors.Is(err, tokenstoretest.ErrFault) {
		t.Fatalf("refused Claim err = %v, want ErrFault", err)
	}
	if _, err := f.Load(ctx, "k"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Fatalf("Load after a refused Claim err = %v, want ErrNotFound (not performed)", err)
	}
	if err := f.Claim(ctx, "k", []byte("a"), time.Hour); !errors.Is(err, tokenstoretest.ErrFault) {
		t.Fatalf("Claim whose answer is lost err = %v, want ErrFault", err)
	}
	if v, err := f.Load(ctx, "k"); err != nil || string(v) != "a" {
		t.Fatalf("Load after a lost answer = %q, %v; want a (performed)", v, err)
	}

	f.Inject("Swap", tokenstoretest.TimeoutAfter)
	if err := f.Swap(ctx, "k", []byte("a"), []byte("b"), time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out Swap err = %v, want DeadlineExceeded", err)
	}
	if v, _ := f.Load(ctx, "k"); string(v) != "b" {
		t.Fatalf("Load after a timed-out Swap = %q, want b (performed)", v)
	}

	f.Inject("Claim", tokenstoretest.Resend)
	if err := f.Claim(ctx, "k2", []byte("c"), time.Hour); !errors.Is(err, finchconnect.ErrConflict) {
		t.Fatalf("resent Claim err = %v, want the second copy's ErrConflict", err)
	}
	if v, _ := f.Load(ctx, "k2"); string(v) != "c" {
		t.Fatalf("Load after a resent Claim = %q, want c", v)
	}
	if err := f.Claim(ctx, "k3", []byte("d"), time.Hour); err != nil {
		t.Fatalf("Claim without a fault err = %v", err)
	}
	if f.Hits("Claim") != 3 || f.Hits("Swap") != 1 || f.Pending("Claim") != 0 {
		t.Errorf("Hits(Claim) = %d, Hits(Swap) = %d, Pending(Claim) = %d; want 3, 1, 0", f.Hits("Claim"), f.Hits("Swap"), f.Pending("Claim"))
	}
}

// TestFaulty_TxnNames: a fault of TxnRows meets only a transaction that
// writes a row, one of TxnEntries only one that writes entries alone, and
// the narrower name is met before "Txn".
func TestFaulty_TxnNames(t *testing.T) {
	ctx := t.Context()
	f := tokenstoretest.NewFaulty(tokenstore.NewMemory())
	f.Inject(tokenstoretest.TxnRows, tokenstoretest.Refuse)
	if _, err := tokenstore.ClaimAll(ctx, f, []tokenstore.Claim{{Key: "a", Value: []byte("1")}}); err != nil {
		t.Fatalf("a claim under a fault of %s: %v, want it passed through", tokenstoretest.TxnRows, err)
	}
	row := tokenstore.Row{ID: "r", Status: "connected", Sealed: []byte("s")}
	sw := tokenstore.Swap{Key: "a", Old: []byte("1"), Value: []byte("2")}
	if _, _, err := tokenstore.PutRowSwap(ctx, f, row, 0, sw); !errors.Is(err, tokenstoretest.ErrFault) {
		t.Fatalf("a row write under a fault of %s: %v, want ErrFault", tokenstoretest.TxnRows, err)
	}
	f.Inject(tokenstoretest.TxnEntries, tokenstoretest.Refuse)
	f.Inject("Txn", tokenstoretest.LoseAnswer)
	if _, _, err := tokenstore.PutRowSwap(ctx, f, row, 0, sw); !errors.Is(err, tokenstoretest.ErrFault) {
		t.Fatalf("a row write under a fault of Txn: %v, want ErrFault", err)
	}
	if v, err := f.Load(ctx, "a"); err != nil || string(v) != "2" {
		t.Fatalf("Load(a) after a lost answer = %q, %v; want 2 (performed)", v, err)
	}
	if _, err := tokenstore.ClaimAll(ctx, f, []tokenstore.Claim{{Key: "b"}}); !errors.Is(err, tokenstoretest.ErrFault) {
		t.Fatalf("a claim under a fault of %s: %v, want ErrFault", tokenstoretest.TxnEntries, err)
	}
	if got := [3]int{f.Hits(tokenstoretest.TxnRows), f.Hits(tokenstoretest.TxnEntries), f.Hits("Txn")}; got != [3]int{1, 1, 1} {
		t.Errorf("hits of %s, %s, Txn = %v, want one each", tokenstoretest.TxnRows, tokenstoretest.TxnEntries, got)
	}
}
