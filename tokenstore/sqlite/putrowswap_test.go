package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// A PutRowSwap whose swap fails for real (not a lost compare-and-set) must
// not leave its row written, in either layout; in a group-commit batch it
// fails alone and the other writes commit.
func TestPutRowSwap_failedSwapUndoesRow(t *testing.T) {
	const trigger = `CREATE TRIGGER boom BEFORE UPDATE ON entries WHEN NEW.key = 'boom'
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`
	setup := func(t *testing.T, b *Backend) {
		t.Helper()
		ctx := t.Context()
		if err := b.write(ctx, func(ctx context.Context, x execer) error {
			_, err := x.ExecContext(ctx, trigger)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"boom", "ok"} {
			if err := b.Claim(ctx, k, []byte("pending"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap := func(key string) tokenstore.Swap {
		return tokenstore.Swap{Key: key, Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour}
	}
	check := func(t *testing.T, b *Backend, err error) {
		t.Helper()
		ctx := t.Context()
		if err == nil || !strings.Contains(err.Error(), "injected failure") || outcome(err) {
			t.Errorf("PutRowSwap with a failing swap err = %v, want the injected failure", err)
		}
		if _, err := b.GetRow(ctx, "failed"); !errors.Is(err, finchconnect.ErrNotFound) {
			t.Errorf("GetRow(failed) err = %v, want ErrNotFound: the row of a failed PutRowSwap was written", err)
		}
		if v, err := b.Load(ctx, "boom"); err != nil || string(v) != "pending" {
			t.Errorf("Load(boom) = %q, %v; want pending", v, err)
		}
	}

	t.Run("shared pool", func(t *testing.T) {
		b := mustOpen(t, options{sharedPool: true})
		setup(t, b)
		_, _, err := tokenstore.PutRowSwap(t.Context(), b, row("failed", "connected", 1), 0, swap("boom"))
		check(t, b, err)
	})

	t.Run("group commit", func(t *testing.T) {
		h := openHeld(t)
		ctx := t.Context()
		setup(t, h.Backend)
		h.takeBatches()

		release := h.hold(t)
		var okSwapped bool
		var okVersion int64
		wait := queue(t, h.Backend, []func() error{
			func() error { _, err := h.PutRow(ctx, row("before", "connected", 1), 0); return err },
			func() error {
				_, _, err := tokenstore.PutRowSwap(ctx, h.Backend, row("failed", "connected", 2), 0, swap("boom"))
				return err
			},
			func() (err error) {
				okVersion, okSwapped, err = tokenstore.PutRowSwap(ctx, h.Backend, row("after", "connected", 3), 0, swap("ok"))
				return err
			},
		})
		release()
		errs := wait()
		if errs[0] != nil || errs[2] != nil {
			t.Errorf("the other writes of the batch err = %v, %v; want nil", errs[0], errs[2])
		}
		check(t, h.Backend, errs[1])
		if okVersion != 1 || !okSwapped {
			t.Errorf("PutRowSwap(after) = %d, %v; want 1, true", okVersion, okSwapped)
		}
		for _, id := range []string{"before", "after"} {
			if _, err := h.GetRow(ctx, id); err != nil {
				t.Errorf("GetRow(%s) err = %v", id, err)
			}
		}
		if v, err := h.Load(ctx, "ok"); err != nil || string(v) != "done" {
			t.Errorf("Load(ok) = %q, %v; want done", v, err)
		}
		want := []batch{{3, false}, {1, true}, {1, false}, {1, true}}
		if diff := cmp.Diff(want, h.takeBatches()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
}

// PutRowSwaps queued together share one transaction, and each keeps its
// own outcome: a row conflict, a lost swap and a won swap.
func TestPutRowSwap_oneBatch(t *testing.T) {
	h := openHeld(t)
	ctx := t.Context()
	if err := h.Claim(ctx, "k", []byte("0"), time.Hour); err != nil {
		t.Fatal(err)
	}
	h.takeBatches()
	type result struct {
		v       int64
		swapped bool
	}
	res := make([]result, 3)
	put := func(i int, expect int64, old, value string) func() error {
		return func() (err error) {
			sw := tokenstore.Swap{Key: "k", Old: []byte(old), Value: []byte(value)}
			res[i].v, res[i].swapped, err = tokenstore.PutRowSwap(ctx, h.Backend, row("r", "connected", byte(i)), expect, sw)
			return err
		}
	}
	release := h.hold(t)
	wait := queue(t, h.Backend, []func() error{
		put(0, 0, "0", "1"), // writes the row, swaps
		put(1, 0, "1", "2"), // the row exists: conflict, no swap
		put(2, 1, "0", "3"), // writes the row, the value is no longer 0
	})
	release()
	errs := wait()
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], finchconnect.ErrConflict) {
		t.Errorf("errs = %v; want nil, ErrConflict, nil", errs)
	}
	if diff := cmp.Diff([]result{{1, true}, {0, false}, {2, false}}, res, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if v, err := h.Load(ctx, "k"); err != nil || string(v) != "1" {
		t.Errorf("Load(k) = %q, %v; want 1", v, err)
	}
	if exp, err := h.Scan(ctx, "k", "", 1); err != nil || len(exp) != 1 || !exp[0].ExpiresAt.IsZero() {
		t.Errorf("Scan(k) = %+v, %v; want one entry that never expires (ttl 0)", exp, err)
	}
	if r, err := h.GetRow(ctx, "r"); err != nil || r.Version != 2 || r.Sealed[0] != 2 {
		t.Errorf("GetRow(r) = %+v, %v; want version 2 written by the third write", r, err)
	}
	// The third write's swap did not hold, so tokenstore.PutRowSwap wrote
	// its row alone in a second transaction, the next batch.
	if diff := cmp.Diff([]batch{{3, true}, {1, true}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}
