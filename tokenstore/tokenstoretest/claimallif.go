package tokenstoretest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

func testClaimAllIf(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()

	// No guard: nothing is claimed.
	v, held, err := tokenstore.ClaimAllIf(ctx, b, "if:guard", claims("if:a", "A", "if:b", "B"))
	wantErrIs(t, "ClaimAllIf(absent guard)", err, finchconnect.ErrNotFound)
	if v != nil || held != -1 {
		t.Errorf("ClaimAllIf(absent guard) = %q, %d; want nil, -1", v, held)
	}
	for _, k := range []string{"if:a", "if:b"} {
		_, err := b.Load(ctx, k)
		wantErrIs(t, "Load("+k+") after a ClaimAllIf without its guard", err, finchconnect.ErrNotFound)
	}

	// A guard: the claims are made and the guard's value comes back.
	guard := allBytes()
	if err := b.Claim(ctx, "if:guard", guard, time.Hour); err != nil {
		t.Fatal(err)
	}
	v, held, err = tokenstore.ClaimAllIf(ctx, b, "if:guard", claims("if:a", "A", "if:b", "B"))
	if err != nil || held != -1 || string(v) != string(guard) {
		t.Fatalf("ClaimAllIf(guard, free keys) = %d bytes, %d, %v; want the guard's %d bytes, -1, nil", len(v), held, err, len(guard))
	}
	for k, want := range map[string]string{"if:a": "A", "if:b": "B", "if:guard": string(guard)} {
		if got := mustLoad(t, b, k); string(got) != want {
			t.Errorf("Load(%s) = %d bytes, want %d", k, len(got), len(want))
		}
	}

	// A held key: nothing is claimed, its index is reported, and the
	// guard's value still comes back (a duplicate needs it).
	v, held, err = tokenstore.ClaimAllIf(ctx, b, "if:guard", claims("if:c", "C", "if:b", "B2"))
	wantErrIs(t, "ClaimAllIf(second key held)", err, finchconnect.ErrConflict)
	if held != 1 || string(v) != string(guard) {
		t.Errorf("ClaimAllIf(second key held) = %d bytes, %d; want the guard's value and 1", len(v), held)
	}
	_, err = b.Load(ctx, "if:c")
	wantErrIs(t, "Load(if:c) after a refused ClaimAllIf", err, finchconnect.ErrNotFound)

	// The guard is read, never changed; a guard among the claims is refused.
	if _, _, err := tokenstore.ClaimAllIf(ctx, b, "if:guard", claims("if:guard", "x")); err == nil || errors.Is(err, finchconnect.ErrConflict) {
		t.Errorf("ClaimAllIf(guard also claimed) err = %v, want a usage error", err)
	}
	if _, _, err := tokenstore.ClaimAllIf(ctx, b, "if:guard", claims("if:d", "1", "if:d", "2")); err == nil {
		t.Error("ClaimAllIf(repeated key) err = nil, want an error")
	}
	if got := mustLoad(t, b, "if:guard"); string(got) != string(guard) {
		t.Error("ClaimAllIf changed its guard")
	}

	// An expired guard is no guard.
	start := c.Now()
	if err := b.Claim(ctx, "if:short", []byte("s"), shortTTL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tokenstore.ClaimAllIf(ctx, b, "if:short", claims("if:e", "E")); err != nil {
		t.Fatalf("ClaimAllIf(live short guard) err = %v", err)
	}
	c.passBeyond(start.Add(shortTTL))
	_, _, err = tokenstore.ClaimAllIf(ctx, b, "if:short", claims("if:f", "F"))
	wantErrIs(t, "ClaimAllIf(expired guard)", err, finchconnect.ErrNotFound)
	_, err = b.Load(ctx, "if:f")
	wantErrIs(t, "Load(if:f) after a ClaimAllIf with an expired guard", err, finchconnect.ErrNotFound)
}

// testConcurrentClaimAllIf races claimants of one key under one guard:
// exactly one wins, every one gets the guard's value.
func testConcurrentClaimAllIf(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	if err := b.Claim(ctx, "cif:guard", []byte("flow"), time.Hour); err != nil {
		t.Fatal(err)
	}
	const n = 16
	values := make([][]byte, n)
	errs := race(n, func(i int) error {
		var err error
		values[i], _, err = tokenstore.ClaimAllIf(ctx, b, "cif:guard", []tokenstore.Claim{
			{Key: "cif:code", Value: []byte(fmt.Sprint(i)), TTL: time.Hour},
			{Key: fmt.Sprintf("cif:own:%02d", i), Value: []byte("x"), TTL: time.Hour},
		})
		return err
	})
	winner := oneWinner(t, "16 concurrent ClaimAllIfs of one key", errs)
	if winner < 0 {
		return
	}
	for i, v := range values {
		if string(v) != "flow" {
			t.Errorf("ClaimAllIf %d returned %q, want the guard's value", i, v)
		}
	}
	if got := mustLoad(t, b, "cif:code"); string(got) != fmt.Sprint(winner) {
		t.Errorf("Load(cif:code) = %q, want the winner's %d", got, winner)
	}
	for i := range n {
		_, err := b.Load(ctx, fmt.Sprintf("cif:own:%02d", i))
		if (err == nil) != (i == winner) {
			t.Errorf("Load(cif:own:%02d) err = %v; only the winner's own key may be stored", i, err)
		}
	}
}
