package tokenstoretest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/google/go-cmp/cmp"
)

func swapOf(key, old, value string, ttl time.Duration) tokenstore.Swap {
	return tokenstore.Swap{Key: key, Old: []byte(old), Value: []byte(value), TTL: ttl}
}

func testPutRowSwap(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	if err := b.Claim(ctx, "ledger", []byte("pending"), time.Hour); err != nil {
		t.Fatal(err)
	}

	// Both conditions hold: the row and the swap are written.
	r := sampleRow("prs")
	v, swapped, err := tokenstore.PutRowSwap(ctx, b, r, 0, swapOf("ledger", "pending", "done", time.Hour))
	if err != nil || v != 1 || !swapped {
		t.Fatalf("PutRowSwap(new row, matching swap) = %d, %v, %v; want 1, true, nil", v, swapped, err)
	}
	r.Version = 1
	if diff := cmp.Diff(r, mustGetRow(t, b, "prs"), rowCmp); diff != "" {
		t.Errorf("GetRow after PutRowSwap (-want +got):\n%s", diff)
	}
	if got := mustLoad(t, b, "ledger"); string(got) != "done" {
		t.Errorf("Load(ledger) after PutRowSwap = %q, want done", got)
	}

	// The row's version does not match: nothing is written, not even a
	// swap whose condition holds.
	r2 := sampleRow("prs")
	r2.Status = "disconnected"
	_, swapped, err = tokenstore.PutRowSwap(ctx, b, r2, 0, swapOf("ledger", "done", "again", time.Hour))
	wantErrIs(t, "PutRowSwap(stale version)", err, finchconnect.ErrConflict)
	if swapped {
		t.Error("PutRowSwap(stale version) swapped = true")
	}
	if got := mustGetRow(t, b, "prs"); got.Version != 1 || got.Status != r.Status {
		t.Errorf("row after a refused PutRowSwap: version %d, status %q; want 1, %q", got.Version, got.Status, r.Status)
	}
	if got := mustLoad(t, b, "ledger"); string(got) != "done" {
		t.Errorf("Load(ledger) after a refused PutRowSwap = %q, want done (unchanged)", got)
	}

	// The swap's value differs: the row is written, the key is not.
	v, swapped, err = tokenstore.PutRowSwap(ctx, b, r2, 1, swapOf("ledger", "pending", "x", time.Hour))
	if err != nil || v != 2 || swapped {
		t.Errorf("PutRowSwap(expect 1, stale swap) = %d, %v, %v; want 2, false, nil", v, swapped, err)
	}
	if got := mustGetRow(t, b, "prs"); got.Version != 2 || got.Status != "disconnected" {
		t.Errorf("row after PutRowSwap with a stale swap: version %d, status %q; want 2, disconnected", got.Version, got.Status)
	}
	if got := mustLoad(t, b, "ledger"); string(got) != "done" {
		t.Errorf("Load(ledger) after a stale swap = %q, want done", got)
	}

	// An absent key: the row is written, no key appears.
	v, swapped, err = tokenstore.PutRowSwap(ctx, b, r2, tokenstore.AnyVersion, swapOf("absent", "", "y", time.Hour))
	if err != nil || v != 3 || swapped {
		t.Errorf("PutRowSwap(AnyVersion, absent key) = %d, %v, %v; want 3, false, nil", v, swapped, err)
	}
	_, err = b.Load(ctx, "absent")
	wantErrIs(t, "Load(absent) after PutRowSwap", err, finchconnect.ErrNotFound)

	// Binary values, and the caller's slices are not kept.
	old, value := allBytes(), []byte("\x00new\xff")
	if err := b.Claim(ctx, "bin", old, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, swapped, err := tokenstore.PutRowSwap(ctx, b, sampleRow("prs-bin"), 0, tokenstore.Swap{Key: "bin", Old: old, Value: value, TTL: time.Hour}); err != nil || !swapped {
		t.Fatalf("PutRowSwap(binary) = %v, %v; want true, nil", swapped, err)
	}
	want := bytes.Clone(value)
	value[0] = 'X'
	if got := mustLoad(t, b, "bin"); !bytes.Equal(got, want) {
		t.Errorf("Load(bin) = %q, want %q", got, want)
	}
}

// testPutRowSwapExpiry: an expired key is absent to the swap, and the
// swap's ttl applies to the new value.
func testPutRowSwapExpiry(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	start := c.Now()
	if err := b.Claim(ctx, "gone", []byte("a"), shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "short", []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, swapped, err := tokenstore.PutRowSwap(ctx, b, sampleRow("exp-1"), 0, swapOf("short", "a", "b", shortTTL)); err != nil || !swapped {
		t.Fatalf("PutRowSwap(short ttl) = %v, %v; want true, nil", swapped, err)
	}
	c.passBeyond(start.Add(shortTTL))
	if _, swapped, err := tokenstore.PutRowSwap(ctx, b, sampleRow("exp-2"), 0, swapOf("gone", "a", "b", time.Hour)); err != nil || swapped {
		t.Errorf("PutRowSwap(expired key) = %v, %v; want false, nil", swapped, err)
	}
	for _, k := range []string{"gone", "short"} {
		_, err := b.Load(ctx, k)
		wantErrIs(t, "Load("+k+") past its ttl", err, finchconnect.ErrNotFound)
	}
	mustGetRow(t, b, "exp-2")
}

// testConcurrentPutRowSwap races writers of one new row, each with a swap
// of its own key: exactly one writes the row, and only its key is swapped;
// then writers of distinct rows race for one swap: every row is written and
// exactly one swap happens.
func testConcurrentPutRowSwap(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	const n = 16
	key := func(i int) string { return fmt.Sprintf("own:%02d", i) }
	for i := range n {
		if err := b.Claim(ctx, key(i), []byte("pending"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		swapped bool
		err     error
	}
	results := make([]result, n)
	errs := race(n, func(i int) error {
		r := sampleRow("contested")
		r.Meta = []byte(fmt.Sprint(i))
		_, sw, err := tokenstore.PutRowSwap(ctx, b, r, 0, swapOf(key(i), "pending", "done", time.Hour))
		results[i] = result{sw, err}
		return err
	})
	winner := oneWinner(t, "16 concurrent PutRowSwaps of a new row", errs)
	if winner < 0 {
		return
	}
	if !results[winner].swapped {
		t.Errorf("the winning PutRowSwap %d did not swap its key", winner)
	}
	if got := mustGetRow(t, b, "contested"); string(got.Meta) != fmt.Sprint(winner) {
		t.Errorf("row meta = %q, want the winner's %d", got.Meta, winner)
	}
	for i := range n {
		want := "pending"
		if i == winner {
			want = "done"
		}
		if got := mustLoad(t, b, key(i)); string(got) != want {
			t.Errorf("Load(%s) = %q, want %q", key(i), got, want)
		}
	}

	if err := b.Claim(ctx, "shared", []byte("0"), time.Hour); err != nil {
		t.Fatal(err)
	}
	swaps := make([]bool, n)
	errs = race(n, func(i int) error {
		var err error
		_, swaps[i], err = tokenstore.PutRowSwap(ctx, b, sampleRow(fmt.Sprintf("many-%02d", i)), 0, swapOf("shared", "0", fmt.Sprint(i+1), time.Hour))
		return err
	})
	won := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("PutRowSwap(many-%02d) err = %v", i, err)
		}
		mustGetRow(t, b, fmt.Sprintf("many-%02d", i))
		if swaps[i] {
			won++
			if got := mustLoad(t, b, "shared"); string(got) != fmt.Sprint(i+1) {
				t.Errorf("Load(shared) = %q, want the swapper's %d", got, i+1)
			}
		}
	}
	if won != 1 {
		t.Errorf("%d PutRowSwaps swapped the shared key from 0, want exactly 1", won)
	}
}
