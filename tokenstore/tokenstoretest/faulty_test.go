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
