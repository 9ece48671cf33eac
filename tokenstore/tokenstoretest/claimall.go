package tokenstoretest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

func claims(kv ...string) []tokenstore.Claim {
	var cs []tokenstore.Claim
	for i := 0; i+1 < len(kv); i += 2 {
		cs = append(cs, tokenstore.Claim{Key: kv[i], Value: []byte(kv[i+1]), TTL: time.Hour})
	}
	return cs
}

func testClaimAll(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	if held, err := tokenstore.ClaimAll(ctx, b, nil); held != -1 || err != nil {
		t.Errorf("ClaimAll(none) = %d, %v; want -1, nil", held, err)
	}
	if held, err := tokenstore.ClaimAll(ctx, b, claims("all:a", "A", "all:b", "B")); held != -1 || err != nil {
		t.Fatalf("ClaimAll(two free keys) = %d, %v; want -1, nil", held, err)
	}
	for k, want := range map[string]string{"all:a": "A", "all:b": "B"} {
		if got := mustLoad(t, b, k); string(got) != want {
			t.Errorf("Load(%s) = %q, want %q", k, got, want)
		}
	}

	// The second key is held: nothing is stored, and its index is reported.
	held, err := tokenstore.ClaimAll(ctx, b, claims("all:c", "C", "all:b", "B2", "all:d", "D"))
	wantErrIs(t, "ClaimAll(second key held)", err, finchconnect.ErrConflict)
	if held != 1 {
		t.Errorf("ClaimAll(second key held) held = %d, want 1", held)
	}
	for _, k := range []string{"all:c", "all:d"} {
		_, err := b.Load(ctx, k)
		wantErrIs(t, "Load("+k+") after a refused ClaimAll", err, finchconnect.ErrNotFound)
	}
	if got := mustLoad(t, b, "all:b"); string(got) != "B" {
		t.Errorf("Load(all:b) after a refused ClaimAll = %q, want B (unchanged)", got)
	}
	// The first held key is the one reported.
	if held, err := tokenstore.ClaimAll(ctx, b, claims("all:e", "E", "all:b", "x", "all:a", "y")); held != 1 || err == nil {
		t.Errorf("ClaimAll(keys 1 and 2 held) = %d, %v; want 1 and a conflict", held, err)
	}
	if held, err := tokenstore.ClaimAll(ctx, b, claims("all:a", "x")); held != 0 || err == nil {
		t.Errorf("ClaimAll(one held key) = %d, %v; want 0 and a conflict", held, err)
	}

	// A repeated key is a caller's mistake, refused without a write.
	if _, err := tokenstore.ClaimAll(ctx, b, claims("all:f", "1", "all:f", "2")); err == nil {
		t.Error("ClaimAll(repeated key) err = nil, want an error")
	}
	if _, err := b.Load(ctx, "all:f"); err == nil {
		t.Error("ClaimAll(repeated key) stored the key")
	}

	// Values are independent of the caller's slices, and TTLs apply per
	// claim: an expired key can be claimed again, a live one cannot.
	v := []byte("mine")
	start := c.Now()
	cs := []tokenstore.Claim{{Key: "all:short", Value: v, TTL: shortTTL}, {Key: "all:long", Value: []byte("L"), TTL: time.Hour}}
	if _, err := tokenstore.ClaimAll(ctx, b, cs); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	if got := mustLoad(t, b, "all:short"); string(got) != "mine" {
		t.Errorf("Load() after the caller changed its slice = %q, want mine", got)
	}
	c.passBeyond(start.Add(shortTTL))
	if held, err := tokenstore.ClaimAll(ctx, b, claims("all:short", "again")); held != -1 || err != nil {
		t.Errorf("ClaimAll(expired key) = %d, %v; want -1, nil", held, err)
	}
	if held, err := tokenstore.ClaimAll(ctx, b, claims("all:long", "again")); held != 0 || err == nil {
		t.Errorf("ClaimAll(live key after the short one expired) = %d, %v; want 0 and a conflict", held, err)
	}
	// ClaimAll's entries are ordinary entries: Claim, Swap and Scan see them.
	wantErrIs(t, "Claim(key held by ClaimAll)", b.Claim(ctx, "all:a", nil, time.Hour), finchconnect.ErrConflict)
	if err := b.Swap(ctx, "all:a", []byte("A"), []byte("A2"), time.Hour); err != nil {
		t.Errorf("Swap(key from ClaimAll) err = %v", err)
	}
	es, err := b.Scan(ctx, "all:", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(keys(es)), "[all:a all:b all:long all:short]"; got != want {
		t.Errorf("Scan(all:) = %s, want %s", got, want)
	}
}

// testConcurrentClaimAll races ClaimAlls whose key sets overlap in a ring
// (i claims k_i and k_{i+1}): each key has at most one winner, every winner
// holds both its keys, and no loser left a key behind.
func testConcurrentClaimAll(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	const n = 20
	key := func(i int) string { return fmt.Sprintf("ring:%02d", i%n) }
	errs := race(n, func(i int) error {
		v := []byte(fmt.Sprint(i))
		_, err := tokenstore.ClaimAll(ctx, b, []tokenstore.Claim{{Key: key(i), Value: v, TTL: time.Hour}, {Key: key(i + 1), Value: v, TTL: time.Hour}})
		return err
	})
	won := make([]bool, n)
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won[i] = true
			wins++
		case !errors.Is(err, finchconnect.ErrConflict):
			t.Errorf("ClaimAll %d: %v, want nil or a conflict", i, err)
		}
	}
	if wins == 0 {
		t.Fatal("no ClaimAll won")
	}
	owner := map[string]string{}
	for i := range n {
		if won[i] && (won[(i+1)%n] || won[(i+n-1)%n]) {
			t.Errorf("neighbours %d and %d both won a shared key", i, i+1)
		}
		if won[i] {
			owner[key(i)], owner[key(i+1)] = fmt.Sprint(i), fmt.Sprint(i)
		}
	}
	for i := range n {
		got, err := b.Load(ctx, key(i))
		want, owned := owner[key(i)]
		switch {
		case owned && (err != nil || string(got) != want):
			t.Errorf("Load(%s) = %q, %v; want the winner's %q", key(i), got, err, want)
		case !owned && err == nil:
			t.Errorf("Load(%s) = %q: a losing ClaimAll left it behind", key(i), got)
		}
	}
}

// testConcurrentClaimAllOppositeOrder races pairs of ClaimAlls of the same
// keys listed in opposite orders: exactly one of each pair wins, and the
// other gets ErrConflict (a backend that takes locks in the caller's order
// deadlocks instead), reporting the first held key in its own order.
func testConcurrentClaimAllOppositeOrder(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	const rounds, n = 20, 4
	for round := range rounds {
		forward := make([]tokenstore.Claim, n)
		for i := range forward {
			forward[i] = tokenstore.Claim{Key: fmt.Sprintf("opp:%02d:%d", round, i), Value: []byte("forward"), TTL: time.Hour}
		}
		backward := slices.Clone(forward)
		slices.Reverse(backward)
		for i := range backward {
			backward[i].Value = []byte("backward")
		}
		held := make([]int, 2)
		errs := race(2, func(i int) error {
			var err error
			held[i], err = tokenstore.ClaimAll(ctx, b, [][]tokenstore.Claim{forward, backward}[i])
			return err
		})
		w := oneWinner(t, fmt.Sprintf("round %d: two ClaimAlls of %d keys in opposite orders", round, n), errs)
		if w < 0 {
			return
		}
		if errors.Is(errs[1-w], finchconnect.ErrConflict) && (held[w] != -1 || held[1-w] != 0) {
			t.Errorf("round %d: held = %v, want -1 for the winner and 0 (its own first key) for the loser", round, held)
		}
		for _, c := range forward {
			if got := mustLoad(t, b, c.Key); string(got) != []string{"forward", "backward"}[w] {
				t.Errorf("round %d: Load(%s) = %q, want the winner's", round, c.Key, got)
			}
		}
		if t.Failed() {
			return
		}
	}
}
