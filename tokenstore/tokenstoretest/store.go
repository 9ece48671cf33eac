package tokenstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// RunStore tests a [tokenstore.Store] on the backends that newBackend
// returns: sealing and opening, re-authentication, tampering, compare-and-set
// updates under concurrency, listing without tokens, key rotation with
// Rewrap racing live updates and resuming after a cancellation, and
// connections deleted and stored again while a writer holds the old row.
// newBackend follows the rules of [Run].
func RunStore(t *testing.T, newBackend func(t *testing.T) tokenstore.Backend) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b tokenstore.Backend)
	}{
		{"PutGet", testStorePutGet},
		{"Reauthenticate", testStoreReauth},
		{"PutSwap", testStorePutSwap},
		{"ReplaceNeverInserts", testStoreReplaceNeverInserts},
		{"DeleteIf", testStoreDeleteIf},
		{"Lookup", testStoreLookup},
		{"NotFound", testStoreNotFound},
		{"Tampered", testStoreTampered},
		{"TokenMovedToAnotherRow", testStoreMovedToken},
		{"Update", testStoreUpdate},
		{"ConcurrentUpdates", testStoreConcurrentUpdates},
		{"List", testStoreList},
		{"RewrapAndKeyUsage", testStoreRewrap},
		{"RewrapRacesUpdates", testStoreRewrapRace},
		{"RewrapCancelledResumes", testStoreRewrapCancel},
		{"Staged", testStoreStaged},
		{"DeleteRecreate", testStoreRecreate},
		{"UpdateRacesRecreate", testStoreUpdateRacesRecreate},
		{"PutUnlessNewerRacesRecreate", testStorePutUnlessNewerRacesRecreate},
		{"RewrapRacesRecreate", testStoreRewrapRacesRecreate},
	}
	t.Run("Store", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := newBackend(t)
				if b == nil {
					t.Fatal("newBackend returned nil")
				}
				tt.fn(t, b)
			})
		}
	})
}

// clock is a manual clock for Store.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKey(t *testing.T, id uint32) keyring.Key {
	t.Helper()
	k, err := keyring.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyring(t *testing.T, primary keyring.Key, older ...keyring.Key) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newStore(t *testing.T, b tokenstore.Backend, kr *keyring.Keyring, c *clock) *tokenstore.Store {
	s := tokenstore.New(b, kr)
	s.Now = c.Now
	return s
}

func sampleConn(id string) finchconnect.Connection {
	return finchconnect.Connection{
		ConnectionID:   id,
		CustomerID:     "cust-" + id,
		CustomerName:   "Acme " + id,
		CustomerEmail:  "hr@acme.example",
		ProviderID:     "gusto",
		Products:       []string{"company", "directory"},
		EntityIDs:      []string{"ent-1"},
		ConnectionType: "provider",
		ClientType:     "sandbox",
		Status:         finchconnect.StatusConnected,
		StatusMessage:  "ok",
		LastSyncAt:     time.Date(2026, 2, 27, 8, 0, 0, 0, time.UTC),
		AccessToken:    finchconnect.NewSecret("tok-" + id + "-0123456789abcdef"),
	}
}

// connCmp compares instants, not time.Time representations, and a Secret by
// value (its String redacts, which would hide a mismatch).
var connCmp = cmp.Options{
	cmpopts.EquateApproxTime(0),
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b finchconnect.Secret) bool { return a.Reveal() == b.Reveal() }),
}

func mustPut(t *testing.T, s *tokenstore.Store, c finchconnect.Connection) {
	t.Helper()
	if err := s.Put(t.Context(), c); err != nil {
		t.Fatalf("Put(%q) err = %v", c.ConnectionID, err)
	}
}

func mustGet(t *testing.T, s *tokenstore.Store, id string) finchconnect.Connection {
	t.Helper()
	c, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q) err = %v", id, err)
	}
	return c
}

func testStorePutGet(t *testing.T, b tokenstore.Backend) {
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	want := sampleConn("c1")
	mustPut(t, s, want)
	want.CreatedAt, want.UpdatedAt, want.TokenAt = clk.Now(), clk.Now(), clk.Now()
	got := mustGet(t, s, "c1")
	if diff := cmp.Diff(want, got, connCmp); diff != "" {
		t.Errorf("Get(c1) mismatch (-want +got):\n%s", diff)
	}

	// The backend holds the token sealed, under the connection's row, and
	// the clear fields as index columns.
	row, err := b.GetRow(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.Sealed, []byte(want.AccessToken.Reveal())) || bytes.Contains(row.Meta, []byte(want.AccessToken.Reveal())) {
		t.Errorf("backend row holds the token in the clear")
	}
	if id, ok := keyring.KeyID(row.Sealed); !ok || id != 1 {
		t.Errorf("KeyID(row.Sealed) = %d, %v; want 1, true", id, ok)
	}
	if row.CustomerID != want.CustomerID || row.ProviderID != want.ProviderID || row.Status != want.Status {
		t.Errorf("row index fields = %q %q %q, want %q %q %q", row.CustomerID, row.ProviderID, row.Status, want.CustomerID, want.ProviderID, want.Status)
	}

	// A caller's CreatedAt is kept on the first write.
	imported := sampleConn("c2")
	imported.CreatedAt = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	mustPut(t, s, imported)
	if got := mustGet(t, s, "c2").CreatedAt; !got.Equal(imported.CreatedAt) {
		t.Errorf("Get(c2).CreatedAt = %v, want the given %v", got, imported.CreatedAt)
	}

	for _, bad := range []finchconnect.Connection{{AccessToken: finchconnect.NewSecret("t")}, {ConnectionID: "x"}} {
		if err := s.Put(t.Context(), bad); err == nil {
			t.Errorf("Put(%+v) err = nil, want an error (id and token are required)", bad)
		}
	}
}

func testStoreReauth(t *testing.T, b tokenstore.Backend) {
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	first := sampleConn("r1")
	mustPut(t, s, first)
	created := clk.Now()

	clk.Advance(time.Hour)
	again := first
	again.AccessToken = finchconnect.NewSecret("tok-after-reauth")
	again.Status = finchconnect.StatusConnected
	again.CreatedAt = time.Time{}
	mustPut(t, s, again)

	got := mustGet(t, s, "r1")
	if got.AccessToken.Reveal() != "tok-after-reauth" {
		t.Errorf("Get after re-authentication returned the old token")
	}
	if !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(clk.Now()) || !got.TokenAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt, UpdatedAt, TokenAt = %v, %v, %v; want %v (kept), %v, %v (a new token)", got.CreatedAt, got.UpdatedAt, got.TokenAt, created, clk.Now(), clk.Now())
	}
	reauthed := clk.Now()

	// TokenAt says when the token changed, not when the record did: the
	// same token written again, or an Update of other fields, keep it; an
	// Update that changes the token moves it.
	clk.Advance(time.Minute)
	mustPut(t, s, again)
	if got := mustGet(t, s, "r1"); !got.TokenAt.Equal(reauthed) || !got.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("after a Put of the same token: TokenAt %v, UpdatedAt %v; want %v (kept), %v", got.TokenAt, got.UpdatedAt, reauthed, clk.Now())
	}
	clk.Advance(time.Minute)
	if err := s.Update(t.Context(), "r1", func(c *finchconnect.Connection) error { c.Status = finchconnect.StatusReauth; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "r1"); !got.TokenAt.Equal(reauthed) {
		t.Errorf("after an Update of the status: TokenAt %v, want %v (kept)", got.TokenAt, reauthed)
	}
	clk.Advance(time.Minute)
	if err := s.Update(t.Context(), "r1", func(c *finchconnect.Connection) error {
		c.AccessToken = finchconnect.NewSecret("tok-updated")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "r1"); !got.TokenAt.Equal(clk.Now()) {
		t.Errorf("after an Update of the token: TokenAt %v, want %v", got.TokenAt, clk.Now())
	}
}

// testStorePutSwap: PutSwap stores like Put, first write or
// re-authentication, and swaps in the same write when the value matches.
func testStorePutSwap(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	if err := b.Claim(ctx, "ledger:ps1", []byte("pending"), time.Hour); err != nil {
		t.Fatal(err)
	}
	want := sampleConn("ps1")
	swapped, err := s.PutSwap(ctx, want, tokenstore.Swap{Key: "ledger:ps1", Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour})
	if err != nil || !swapped {
		t.Fatalf("PutSwap(new connection, matching swap) = %v, %v; want true, nil", swapped, err)
	}
	want.CreatedAt, want.UpdatedAt, want.TokenAt = clk.Now(), clk.Now(), clk.Now()
	if diff := cmp.Diff(want, mustGet(t, s, "ps1"), connCmp); diff != "" {
		t.Errorf("Get(ps1) after PutSwap mismatch (-want +got):\n%s", diff)
	}
	if got := mustLoad(t, b, "ledger:ps1"); string(got) != "done" {
		t.Errorf("Load(ledger:ps1) = %q, want done", got)
	}

	// A re-authentication through PutSwap keeps CreatedAt; a stale swap
	// leaves the key alone but the connection is stored.
	clk.Advance(time.Hour)
	again := sampleConn("ps1")
	again.AccessToken = finchconnect.NewSecret("tok-ps1-after-reauth")
	swapped, err = s.PutSwap(ctx, again, tokenstore.Swap{Key: "ledger:ps1", Old: []byte("pending"), Value: []byte("x"), TTL: time.Hour})
	if err != nil || swapped {
		t.Fatalf("PutSwap(existing connection, stale swap) = %v, %v; want false, nil", swapped, err)
	}
	got := mustGet(t, s, "ps1")
	if got.AccessToken.Reveal() != "tok-ps1-after-reauth" || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("after a re-authenticating PutSwap: new token %v, CreatedAt %v, UpdatedAt %v; want true, %v, %v",
			got.AccessToken.Reveal() == "tok-ps1-after-reauth", got.CreatedAt, got.UpdatedAt, want.CreatedAt, clk.Now())
	}
	if got := mustLoad(t, b, "ledger:ps1"); string(got) != "done" {
		t.Errorf("Load(ledger:ps1) after a stale swap = %q, want done", got)
	}
	// The re-authentication's swap applies when it matches.
	swapped, err = s.PutSwap(ctx, again, tokenstore.Swap{Key: "ledger:ps1", Old: []byte("done"), Value: []byte("done2"), TTL: time.Hour})
	if err != nil || !swapped {
		t.Errorf("PutSwap(existing connection, matching swap) = %v, %v; want true, nil", swapped, err)
	}
	if _, err := s.PutSwap(ctx, finchconnect.Connection{ConnectionID: "x"}, tokenstore.Swap{Key: "ledger:ps1", Old: []byte("done2"), Value: []byte("y")}); err == nil {
		t.Error("PutSwap(no token) err = nil, want an error")
	}
	if got := mustLoad(t, b, "ledger:ps1"); string(got) != "done2" {
		t.Errorf("Load(ledger:ps1) after a refused PutSwap = %q, want done2", got)
	}
}

// testStoreReplaceNeverInserts: ReplaceSwap and ReplaceUnlessNewer, a
// re-authentication's writes, replace a stored connection and never insert
// one: with the row deleted they write nothing, neither the row nor the
// swap, and say ErrNotFound.
func testStoreReplaceNeverInserts(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	if err := b.Claim(ctx, "ledger:rp1", []byte("pending"), time.Hour); err != nil {
		t.Fatal(err)
	}
	c := sampleConn("rp1")
	swapped, err := s.ReplaceSwap(ctx, c, tokenstore.Swap{Key: "ledger:rp1", Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour})
	if !errors.Is(err, finchconnect.ErrNotFound) || swapped {
		t.Fatalf("ReplaceSwap(a connection not stored) = %v, %v; want false, ErrNotFound", swapped, err)
	}
	if _, err := s.ReplaceUnlessNewer(ctx, c, clk.Now()); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Fatalf("ReplaceUnlessNewer(a connection not stored) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "rp1"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Get(rp1) after refused replaces err = %v, want ErrNotFound (nothing inserted)", err)
	}
	if got := mustLoad(t, b, "ledger:rp1"); string(got) != "pending" {
		t.Errorf("Load(ledger:rp1) after a refused ReplaceSwap = %q, want pending", got)
	}

	mustPut(t, s, c)
	clk.Advance(time.Minute)
	again := sampleConn("rp1")
	again.AccessToken = finchconnect.NewSecret("tok-rp1-after-reauth")
	swapped, err = s.ReplaceSwap(ctx, again, tokenstore.Swap{Key: "ledger:rp1", Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour})
	if err != nil || !swapped {
		t.Fatalf("ReplaceSwap(a stored connection) = %v, %v; want true, nil", swapped, err)
	}
	if got := mustGet(t, s, "rp1"); got.AccessToken.Reveal() != "tok-rp1-after-reauth" {
		t.Error("ReplaceSwap did not store the new token")
	}
	if got := mustLoad(t, b, "ledger:rp1"); string(got) != "done" {
		t.Errorf("Load(ledger:rp1) after ReplaceSwap = %q, want done", got)
	}

	// Deleted again: the next replace is refused.
	if err := s.Delete(ctx, "rp1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := s.ReplaceUnlessNewer(ctx, again, clk.Now()); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("ReplaceUnlessNewer(a deleted connection) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "rp1"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Get(rp1) after a refused replace of a deleted row err = %v, want ErrNotFound", err)
	}
}

func testStoreLookup(t *testing.T, b tokenstore.Backend) {
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	c := sampleConn("l1")
	mustPut(t, s, c)

	// Lookup never decrypts: it works with a keyring that cannot open the row.
	other := newStore(t, b, newKeyring(t, newKey(t, 9)), clk)
	got, err := other.Lookup(t.Context(), "l1")
	if err != nil {
		t.Fatalf("Lookup(l1) with a foreign keyring err = %v, want nil", err)
	}
	want := c
	want.AccessToken = finchconnect.Secret{}
	want.CreatedAt, want.UpdatedAt, want.TokenAt = clk.Now(), clk.Now(), clk.Now()
	if diff := cmp.Diff(want, got, connCmp); diff != "" {
		t.Errorf("Lookup(l1) mismatch (-want +got):\n%s", diff)
	}
	if _, err := other.Get(t.Context(), "l1"); !errors.Is(err, finchconnect.ErrDecrypt) {
		t.Errorf("Get(l1) with a keyring lacking the key err = %v, want ErrDecrypt", err)
	}
}

func testStoreNotFound(t *testing.T, b tokenstore.Backend) {
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	ctx := t.Context()
	_, err := s.Get(ctx, "nope")
	wantErrIs(t, "Get(nope)", err, finchconnect.ErrNotFound)
	_, err = s.Lookup(ctx, "nope")
	wantErrIs(t, "Lookup(nope)", err, finchconnect.ErrNotFound)
	called := false
	err = s.Update(ctx, "nope", func(*finchconnect.Connection) error { called = true; return nil })
	wantErrIs(t, "Update(nope)", err, finchconnect.ErrNotFound)
	if called {
		t.Error("Update(nope) called its function")
	}
	wantErrIs(t, "Delete(nope)", s.Delete(ctx, "nope"), finchconnect.ErrNotFound)

	mustPut(t, s, sampleConn("d1"))
	if err := s.Delete(ctx, "d1"); err != nil {
		t.Fatalf("Delete(d1) err = %v", err)
	}
	_, err = s.Get(ctx, "d1")
	wantErrIs(t, "Get after Delete", err, finchconnect.ErrNotFound)
}

func testStoreTampered(t *testing.T, b tokenstore.Backend) {
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	c := sampleConn("t1")
	mustPut(t, s, c)
	row, err := b.GetRow(t.Context(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2, 5, 20, len(row.Sealed) - 1} {
		bad := row
		bad.Sealed = bytes.Clone(row.Sealed)
		bad.Sealed[i] ^= 0x40
		if _, err := b.PutRow(t.Context(), bad, tokenstore.AnyVersion); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get(t.Context(), "t1")
		if !errors.Is(err, finchconnect.ErrDecrypt) {
			t.Errorf("Get(row with byte %d changed) err = %v, want ErrDecrypt", i, err)
			continue
		}
		if strings.Contains(err.Error(), c.AccessToken.Reveal()) || strings.Contains(err.Error(), fmt.Sprintf("%x", bad.Sealed[5:])) {
			t.Errorf("Get error %q echoes the token or the sealed bytes", err)
		}
		if err := s.Update(t.Context(), "t1", func(*finchconnect.Connection) error { return nil }); !errors.Is(err, finchconnect.ErrDecrypt) {
			t.Errorf("Update(tampered row) err = %v, want ErrDecrypt", err)
		}
	}
}

func testStoreMovedToken(t *testing.T, b tokenstore.Backend) {
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	mustPut(t, s, sampleConn("victim"))
	mustPut(t, s, sampleConn("attacker"))
	victim, err := b.GetRow(t.Context(), "victim")
	if err != nil {
		t.Fatal(err)
	}
	row, err := b.GetRow(t.Context(), "attacker")
	if err != nil {
		t.Fatal(err)
	}
	row.Sealed = victim.Sealed
	if _, err := b.PutRow(t.Context(), row, tokenstore.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Get(t.Context(), "attacker"); !errors.Is(err, finchconnect.ErrDecrypt) {
		t.Errorf("Get(row holding another row's sealed token) = %v, %v; want ErrDecrypt", c.AccessToken.Reveal() != "", err)
	}
}

func testStoreUpdate(t *testing.T, b tokenstore.Backend) {
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	ctx := t.Context()
	mustPut(t, s, sampleConn("u1"))
	before, err := b.GetRow(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}

	// A status change keeps the sealed bytes exactly and moves the index.
	clk.Advance(time.Minute)
	err = s.Update(ctx, "u1", func(c *finchconnect.Connection) error {
		if c.AccessToken.Reveal() != "tok-u1-0123456789abcdef" {
			t.Errorf("Update's function got token %v, want the stored one", c.AccessToken.Reveal() != "")
		}
		c.Status = finchconnect.StatusReauth
		return nil
	})
	if err != nil {
		t.Fatalf("Update(status) err = %v", err)
	}
	after, err := b.GetRow(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Sealed, after.Sealed) {
		t.Error("Update without a token change re-sealed the token")
	}
	if after.Status != finchconnect.StatusReauth || after.Version != before.Version+1 {
		t.Errorf("row after Update: status %q version %d, want reauth and %d", after.Status, after.Version, before.Version+1)
	}
	got := mustGet(t, s, "u1")
	if got.Status != finchconnect.StatusReauth || !got.UpdatedAt.Equal(clk.Now()) || got.CreatedAt.Equal(clk.Now()) {
		t.Errorf("Get after Update: status %q updated %v created %v", got.Status, got.UpdatedAt, got.CreatedAt)
	}
	if rows, _ := b.ListRows(ctx, tokenstore.Filter{Status: finchconnect.StatusConnected}); len(rows) != 0 {
		t.Errorf("ListRows(connected) after Update = %v, want none", ids(rows))
	}

	// A token change re-seals.
	if err := s.Update(ctx, "u1", func(c *finchconnect.Connection) error { c.AccessToken = finchconnect.NewSecret("tok-new"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "u1"); got.AccessToken.Reveal() != "tok-new" {
		t.Error("Get after a token Update returned the old token")
	}

	// The function's error comes back as is, and nothing is written.
	errStop := errors.New("stop")
	v := mustGetRow(t, b, "u1").Version
	err = s.Update(ctx, "u1", func(c *finchconnect.Connection) error { c.Status = "x"; return errStop })
	if !errors.Is(err, errStop) {
		t.Errorf("Update(func fails) err = %v, want the function's error", err)
	}
	if got := mustGetRow(t, b, "u1"); got.Version != v || got.Status == "x" {
		t.Errorf("Update(func fails) wrote the row")
	}
	// The id and the token cannot be removed.
	for name, fn := range map[string]func(*finchconnect.Connection) error{
		"id changed":    func(c *finchconnect.Connection) error { c.ConnectionID = "u2"; return nil },
		"token removed": func(c *finchconnect.Connection) error { c.AccessToken = finchconnect.Secret{}; return nil },
	} {
		if err := s.Update(ctx, "u1", fn); err == nil {
			t.Errorf("Update(%s) err = nil, want an error", name)
		}
	}
	if got := mustGetRow(t, b, "u1"); got.Version != v {
		t.Errorf("refused Updates wrote the row")
	}
}

func testStoreConcurrentUpdates(t *testing.T, b tokenstore.Backend) {
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	c := sampleConn("cu")
	c.Products = nil
	mustPut(t, s, c)
	const n = 20
	errs := race(n, func(i int) error {
		return s.Update(t.Context(), "cu", func(c *finchconnect.Connection) error {
			c.Products = append(c.Products, fmt.Sprintf("p%02d", i))
			return nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d err = %v", i, err)
		}
	}
	got := mustGet(t, s, "cu").Products
	slices.Sort(got)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("p%02d", i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Products after %d concurrent Updates: an update was lost (-want +got):\n%s", n, diff)
	}
}

func testStoreList(t *testing.T, b tokenstore.Backend) {
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	for i := range 7 {
		c := sampleConn(fmt.Sprintf("ls%d", i))
		if i%2 == 1 {
			c.Status = finchconnect.StatusReauth
		}
		mustPut(t, s, c)
	}
	var got []string
	f := tokenstore.Filter{Limit: 3}
	for range 10 {
		page, next, err := s.List(t.Context(), f)
		if err != nil {
			t.Fatalf("List(%+v) err = %v", f, err)
		}
		for _, c := range page {
			if !c.AccessToken.IsZero() {
				t.Errorf("List returned %q with its token", c.ConnectionID)
			}
			if c.CustomerName != "Acme "+c.ConnectionID {
				t.Errorf("List returned %q with CustomerName %q", c.ConnectionID, c.CustomerName)
			}
			got = append(got, c.ConnectionID)
		}
		if next == "" {
			break
		}
		f.After = next
	}
	if diff := cmp.Diff([]string{"ls0", "ls1", "ls2", "ls3", "ls4", "ls5", "ls6"}, got); diff != "" {
		t.Errorf("List pages mismatch (-want +got):\n%s", diff)
	}
	page, next, err := s.List(t.Context(), tokenstore.Filter{Status: finchconnect.StatusReauth})
	var reauth []string
	for _, c := range page {
		reauth = append(reauth, c.ConnectionID)
	}
	if diff := cmp.Diff([]string{"ls1", "ls3", "ls5"}, reauth); err != nil || next != "" || diff != "" {
		t.Errorf("List(reauth) err = %v, next = %q, mismatch (-want +got):\n%s", err, next, diff)
	}
}

func testStoreRewrap(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	k1, k2 := newKey(t, 1), newKey(t, 2)
	old := newStore(t, b, newKeyring(t, k1), clk)
	const n = 12
	for i := range n {
		mustPut(t, old, sampleConn(fmt.Sprintf("rw%02d", i)))
	}
	rotated := newStore(t, b, newKeyring(t, k2, k1), clk)
	usage, err := rotated.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{1: n}, usage); err != nil || diff != "" {
		t.Fatalf("KeyUsage before rewrap err = %v, mismatch (-want +got):\n%s", err, diff)
	}

	// Resume after rw05: only the later half moves.
	var calls []string
	res, err := rotated.Rewrap(ctx, tokenstore.RewrapOptions{After: "rw05", Progress: func(done, total int, cursor string) {
		calls = append(calls, fmt.Sprintf("%d/%d %s", done, total, cursor))
	}})
	if err != nil {
		t.Fatalf("Rewrap(after rw05) err = %v", err)
	}
	if res.Rewrapped != 6 || res.Scanned != 6 || res.Cursor != "rw11" {
		t.Errorf("Rewrap(after rw05) = %+v, want 6 rewrapped of 6 scanned, cursor rw11", res)
	}
	// Rows finish out of order, so a call's cursor may lag behind its count,
	// but neither goes back, and the last call has both at the end.
	ok := len(calls) == 6 && calls[5] == "6/6 rw11"
	for i, c := range calls {
		var done, total int
		var cursor string
		_, err := fmt.Sscanf(c, "%d/%d %s", &done, &total, &cursor)
		ok = ok && err == nil && done == i+1 && total == 6 && cursor >= "rw05" && (i == 0 || cursor >= calls[i-1][4:])
	}
	if !ok {
		t.Errorf("Progress calls = %q, want 1/6 … 6/6 rw11, cursors from rw05 on, never going back", calls)
	}
	usage, _ = rotated.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{1: 6, 2: 6}, usage); diff != "" {
		t.Errorf("KeyUsage after half a rewrap mismatch (-want +got):\n%s", diff)
	}

	res, err = rotated.Rewrap(ctx, tokenstore.RewrapOptions{})
	if err != nil || res.Rewrapped != 6 || res.Scanned != n {
		t.Errorf("Rewrap() = %+v, %v; want 6 rewrapped of %d", res, err, n)
	}
	usage, _ = rotated.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{2: n}, usage); diff != "" {
		t.Errorf("KeyUsage after rewrap mismatch (-want +got):\n%s", diff)
	}
	// Key 1 can go: a keyring without it opens everything.
	retired := newStore(t, b, newKeyring(t, k2), clk)
	for i := range n {
		id := fmt.Sprintf("rw%02d", i)
		if got := mustGet(t, retired, id); got.AccessToken.Reveal() != sampleConn(id).AccessToken.Reveal() || got.Status != finchconnect.StatusConnected {
			t.Errorf("Get(%s) after rewrap lost its token or status", id)
		}
	}
	// Nothing left to do.
	if res, err := retired.Rewrap(ctx, tokenstore.RewrapOptions{}); err != nil || res.Rewrapped != 0 {
		t.Errorf("second Rewrap() = %+v, %v; want nothing rewrapped", res, err)
	}

	// A row no key opens is reported and skipped; the rest still move.
	mustPut(t, newStore(t, b, newKeyring(t, newKey(t, 7)), clk), sampleConn("rw-lost"))
	mustPut(t, retired, sampleConn("rw-new"))
	k3 := newKey(t, 3)
	again := newStore(t, b, newKeyring(t, k3, k2), clk)
	res, err = again.Rewrap(ctx, tokenstore.RewrapOptions{})
	if !errors.Is(err, finchconnect.ErrDecrypt) || !slices.Equal(res.Failed, []string{"rw-lost"}) || res.Rewrapped != n+1 {
		t.Errorf("Rewrap() with an unopenable row = %+v, %v; want rw-lost failed, %d rewrapped, ErrDecrypt", res, err, n+1)
	}
	usage, _ = again.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{3: n + 1, 7: 1}, usage); diff != "" {
		t.Errorf("KeyUsage mismatch (-want +got):\n%s", diff)
	}
}

func testStoreRewrapRace(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	k1, k2 := newKey(t, 1), newKey(t, 2)
	old := newStore(t, b, newKeyring(t, k1), clk)
	const n = 30
	for i := range n {
		mustPut(t, old, sampleConn(fmt.Sprintf("rr%02d", i)))
	}
	// Live traffic (another process, already restarted with the new
	// keyring) keeps updating rows while the rotation runs; neither may undo
	// the other's write.
	rotated := newStore(t, b, newKeyring(t, k2, k1), clk)
	live := newStore(t, b, newKeyring(t, k2, k1), clk)
	var wg sync.WaitGroup
	var rewrapErr error
	wg.Go(func() { _, rewrapErr = rotated.Rewrap(ctx, tokenstore.RewrapOptions{}) })
	errs := race(n, func(i int) error {
		return live.Update(ctx, fmt.Sprintf("rr%02d", i), func(c *finchconnect.Connection) error {
			c.Status = finchconnect.StatusReauth
			if i%2 == 0 {
				c.AccessToken = finchconnect.NewSecret(fmt.Sprintf("new-%d", i))
			}
			return nil
		})
	})
	wg.Wait()
	if rewrapErr != nil {
		t.Fatalf("Rewrap() err = %v", rewrapErr)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d err = %v", i, err)
		}
	}
	// Every update survived.
	for i := range n {
		id := fmt.Sprintf("rr%02d", i)
		got := mustGet(t, rotated, id)
		want := sampleConn(id).AccessToken.Reveal()
		if i%2 == 0 {
			want = fmt.Sprintf("new-%d", i)
		}
		if got.Status != finchconnect.StatusReauth || got.AccessToken.Reveal() != want {
			t.Errorf("Get(%s) = status %q, token changed %v; an update was overwritten by Rewrap", id, got.Status, got.AccessToken.Reveal() != want)
		}
	}
	// And the rewrap still moved every row: an update that kept the old
	// sealed bytes made Rewrap re-read and re-seal, not skip.
	usage, err := rotated.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{2: n}, usage); err != nil || diff != "" {
		t.Errorf("KeyUsage after a rewrap racing updates err = %v, mismatch (-want +got):\n%s", err, diff)
	}
}

// testStoreRewrapCancel cancels a rewrap of several pages while writes are
// in flight: every row up to the returned cursor must be re-sealed already,
// and resuming from the cursor must finish the job.
func testStoreRewrapCancel(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	k1, k2 := newKey(t, 1), newKey(t, 2)
	old := newStore(t, b, newKeyring(t, k1), clk)
	const n, workers = 700, 16 // two pages of Rewrap's scan
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("rc%03d", i)
	}
	seed := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range seed {
				if err := old.Put(ctx, sampleConn(id)); err != nil {
					t.Errorf("Put(%q) err = %v", id, err)
				}
			}
		})
	}
	for _, id := range ids {
		seed <- id
	}
	close(seed)
	wg.Wait()
	if t.Failed() {
		return
	}

	rotated := newStore(t, b, newKeyring(t, k2, k1), clk)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Cancel once 300 rows are done. The cursor can lag behind: with
	// concurrent workers, one slow on an early row holds it there (even at
	// "", on a loaded machine), and the resume starts from it. Waiting for
	// the cursor to move before cancelling made the test flaky: on a fast
	// backend every row could be done before the lagging one let it move.
	first, err := rotated.Rewrap(cctx, tokenstore.RewrapOptions{Workers: workers, Progress: func(done, _ int, _ string) {
		if done >= 300 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Rewrap() = %+v, %v; want context.Canceled", first, err)
	}
	if first.Cursor >= ids[n-1] || first.Rewrapped >= n {
		t.Fatalf("cancelled Rewrap() = %+v, want it stopped inside the rows", first)
	}
	for after := ""; ; {
		rows, err := b.ListRows(ctx, tokenstore.Filter{After: after, Limit: 100})
		if err != nil {
			t.Fatalf("ListRows err = %v", err)
		}
		for _, r := range rows {
			if kid, _ := keyring.KeyID(r.Sealed); r.ID <= first.Cursor && kid != 2 {
				t.Errorf("row %s, at or before the cursor %s, is under key %d, want 2", r.ID, first.Cursor, kid)
			}
		}
		if len(rows) < 100 {
			break
		}
		after = rows[len(rows)-1].ID
	}

	second, err := rotated.Rewrap(ctx, tokenstore.RewrapOptions{After: first.Cursor, Workers: workers})
	if err != nil {
		t.Fatalf("resumed Rewrap() err = %v", err)
	}
	// A write cut short by the cancellation may have landed without
	// Rewrap knowing, so the two counts can fall short by what was in
	// flight; they can never exceed n.
	if sum := first.Rewrapped + second.Rewrapped; sum > n || sum < n-workers {
		t.Errorf("Rewrap() re-sealed %d then %d rows, want %d in all (less at most %d in flight)", first.Rewrapped, second.Rewrapped, n, workers)
	}
	usage, err := rotated.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{2: n}, usage); err != nil || diff != "" {
		t.Errorf("KeyUsage after the resumed rewrap err = %v, mismatch (-want +got):\n%s", err, diff)
	}
}

func testStoreStaged(t *testing.T, b tokenstore.Backend) {
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	c := sampleConn("st1")
	c.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	staged, err := s.SealStaged(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(staged, []byte(c.AccessToken.Reveal())) || bytes.Contains(staged, []byte(c.CustomerName)) {
		t.Error("SealStaged output holds the connection in the clear")
	}
	got, err := s.OpenStaged(staged)
	if err != nil {
		t.Fatalf("OpenStaged(SealStaged(c)) err = %v", err)
	}
	if diff := cmp.Diff(c, got, connCmp); diff != "" {
		t.Errorf("OpenStaged(SealStaged(c)) mismatch (-want +got):\n%s", diff)
	}
	// Not interchangeable with a row's sealed token, either way.
	mustPut(t, s, c)
	row := mustGetRow(t, b, "st1")
	if _, err := s.OpenStaged(row.Sealed); !errors.Is(err, finchconnect.ErrDecrypt) {
		t.Errorf("OpenStaged(a row's sealed token) err = %v, want ErrDecrypt", err)
	}
	row.Sealed = staged
	if _, err := b.PutRow(t.Context(), row, tokenstore.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "st1"); !errors.Is(err, finchconnect.ErrDecrypt) {
		t.Errorf("Get(row holding a staged value) err = %v, want ErrDecrypt", err)
	}
	staged[len(staged)-1] ^= 1
	if _, err := s.OpenStaged(staged); !errors.Is(err, finchconnect.ErrDecrypt) {
		t.Errorf("OpenStaged(tampered) err = %v, want ErrDecrypt", err)
	}
}

// hooked is a Backend that runs a function after a call returns, so that
// another replica's writes land in the window a Store method leaves between
// its read and its compare-and-set write.
type hooked struct {
	tokenstore.Backend
	afterGetRow   func(n int) // n counts GetRow calls, from 1
	afterListRows func(n int) // n counts ListRows calls, from 1

	mu           sync.Mutex
	gets, listed int
}

func (h *hooked) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	r, err := h.Backend.GetRow(ctx, id)
	h.mu.Lock()
	h.gets++
	n := h.gets
	h.mu.Unlock()
	if h.afterGetRow != nil {
		h.afterGetRow(n)
	}
	return r, err
}

func (h *hooked) ListRows(ctx context.Context, f tokenstore.Filter) ([]tokenstore.Row, error) {
	rows, err := h.Backend.ListRows(ctx, f)
	h.mu.Lock()
	h.listed++
	n := h.listed
	h.mu.Unlock()
	if h.afterListRows != nil {
		h.afterListRows(n)
	}
	return rows, err
}

// recreate deletes the connection id through s and stores it again with
// token: what another replica does when a customer disconnects and
// connects again.
func recreate(t *testing.T, s *tokenstore.Store, id, token string) {
	t.Helper()
	if err := s.Delete(t.Context(), id); err != nil {
		t.Errorf("Delete(%s) err = %v", id, err)
		return
	}
	c := sampleConn(id)
	c.AccessToken = finchconnect.NewSecret(token)
	if err := s.Put(t.Context(), c); err != nil {
		t.Errorf("Put(%s) again err = %v", id, err)
	}
}

// testStoreRecreate: a connection deleted and stored again is a new row
// whose versions never repeat the deleted row's, so a writer still holding
// the deleted row (read at its version) cannot write it over the new one,
// however many writes the new row has had. Everything here happens at one
// instant of the store's clock, as it can on a clock with a coarse tick.
func testStoreRecreate(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), newClock())
	setStatus := func(status string) {
		t.Helper()
		if err := s.Update(ctx, "dr", func(c *finchconnect.Connection) error { c.Status = status; return nil }); err != nil {
			t.Fatalf("Update(dr) err = %v", err)
		}
	}
	mustPut(t, s, sampleConn("dr"))
	for range 3 {
		setStatus(finchconnect.StatusReauth)
	}
	stale := mustGetRow(t, b, "dr")

	if err := s.Delete(ctx, "dr"); err != nil {
		t.Fatal(err)
	}
	again := sampleConn("dr")
	again.AccessToken = finchconnect.NewSecret("tok-dr-recreated")
	mustPut(t, s, again)
	if got := mustGetRow(t, b, "dr").Version; got <= stale.Version {
		t.Errorf("re-created row's version = %d, want above the deleted row's %d", got, stale.Version)
	}
	for i := range 6 {
		if _, err := b.PutRow(ctx, stale, stale.Version); !errors.Is(err, finchconnect.ErrConflict) {
			t.Fatalf("PutRow(the deleted row, expect its version %d) after %d writes of the re-created row err = %v, want ErrConflict",
				stale.Version, i+1, err)
		}
		setStatus(finchconnect.StatusConnected)
	}
	if got := mustGet(t, s, "dr"); got.AccessToken.Reveal() != "tok-dr-recreated" {
		t.Errorf("Get(dr) = token %q, want the re-created connection's", got.AccessToken.Reveal())
	}
}

// testStoreUpdateRacesRecreate: another replica deletes and re-creates the
// connection while Update's function runs. The write of the function's
// result must miss the new row, and Update start again from it.
func testStoreUpdateRacesRecreate(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	kr := newKeyring(t, newKey(t, 1))
	s, other := newStore(t, b, kr, clk), newStore(t, b, kr, clk)
	mustPut(t, s, sampleConn("ur"))
	calls := 0
	err := s.Update(ctx, "ur", func(c *finchconnect.Connection) error {
		calls++
		if calls == 1 {
			clk.Advance(time.Second)
			recreate(t, other, "ur", "tok-ur-recreated")
		}
		c.Status = finchconnect.StatusReauth
		return nil
	})
	if err != nil {
		t.Fatalf("Update(ur) err = %v", err)
	}
	got := mustGet(t, s, "ur")
	if got.AccessToken.Reveal() != "tok-ur-recreated" || got.Status != finchconnect.StatusReauth || calls != 2 {
		t.Errorf("after an Update racing a re-creation: token %q, status %q, function called %d times; want tok-ur-recreated, %q, 2",
			got.AccessToken.Reveal(), got.Status, calls, finchconnect.StatusReauth)
	}
}

// testStorePutUnlessNewerRacesRecreate: another replica deletes and
// re-creates the connection with a newer token between PutUnlessNewer's
// read, which found an older token, and its write. The newer token stays.
func testStorePutUnlessNewerRacesRecreate(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	kr := newKeyring(t, newKey(t, 1))
	h := &hooked{Backend: b}
	s, other := newStore(t, h, kr, clk), newStore(t, b, kr, clk)
	mustPut(t, s, sampleConn("pn"))
	clk.Advance(time.Minute)
	asOf := clk.Now()
	h.afterGetRow = func(n int) {
		if n == 1 {
			clk.Advance(time.Minute)
			recreate(t, other, "pn", "tok-pn-recreated")
		}
	}
	older := sampleConn("pn")
	older.AccessToken = finchconnect.NewSecret("tok-pn-exchanged-at-asof")
	stored, err := s.PutUnlessNewer(ctx, older, asOf)
	if err != nil || stored {
		t.Errorf("PutUnlessNewer(racing a re-creation with a newer token) = %v, %v; want false, nil", stored, err)
	}
	if got := mustGet(t, s, "pn"); got.AccessToken.Reveal() != "tok-pn-recreated" {
		t.Errorf("Get(pn) = token %q, want the re-created connection's newer token", got.AccessToken.Reveal())
	}
}

// testStoreRewrapRacesRecreate: another replica, still on the old key,
// deletes and re-creates a connection after Rewrap has read it (its second
// ListRows, the one that feeds the workers) and before it writes it back
// re-sealed. Rewrap must not write the old token back: it re-seals the
// new one.
func testStoreRewrapRacesRecreate(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	k1, k2 := newKey(t, 1), newKey(t, 2)
	old := newStore(t, b, newKeyring(t, k1), clk)
	for _, id := range []string{"conn-a", "conn-x", "conn-z"} {
		mustPut(t, old, sampleConn(id))
	}
	h := &hooked{Backend: b}
	h.afterListRows = func(n int) {
		if n == 2 {
			clk.Advance(time.Second)
			recreate(t, old, "conn-x", "tok-x-recreated")
		}
	}
	rotated := newStore(t, h, newKeyring(t, k2, k1), clk)
	if res, err := rotated.Rewrap(ctx, tokenstore.RewrapOptions{}); err != nil || res.Scanned != 3 {
		t.Fatalf("Rewrap() = %+v, %v; want 3 rows scanned, nil", res, err)
	}
	if h.listed < 2 {
		t.Fatalf("Rewrap made %d ListRows calls, want 2 (a count, then the pass that feeds the workers)", h.listed)
	}
	if got := mustGet(t, rotated, "conn-x"); got.AccessToken.Reveal() != "tok-x-recreated" {
		t.Errorf("Get(conn-x) after a Rewrap racing its re-creation = token %q, want the re-created one", got.AccessToken.Reveal())
	}
	usage, err := rotated.KeyUsage(ctx)
	if diff := cmp.Diff(map[uint32]int{2: 3}, usage); err != nil || diff != "" {
		t.Errorf("KeyUsage after the rewrap err = %v, mismatch (-want +got):\n%s", err, diff)
	}
}

// testStoreDeleteIf: DeleteIf deletes a row only at the version its
// GetVersion read: a re-authentication stored in between is kept (a
// conflict), the row read again is deleted, and a delete of a row that is
// gone (its first try's answer lost) says not found. Under a lost answer
// the delete has happened.
func testStoreDeleteIf(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	clk := newClock()
	s := newStore(t, b, newKeyring(t, newKey(t, 1)), clk)
	mustPut(t, s, sampleConn("di1"))
	c, v, err := s.GetVersion(ctx, "di1")
	if err != nil || v <= 0 || c.AccessToken.Reveal() != sampleConn("di1").AccessToken.Reveal() {
		t.Fatalf("GetVersion(di1) = %v, %d, %v; want the stored token at a positive version", c.AccessToken, v, err)
	}
	// A re-authentication lands between the read and the delete.
	clk.Advance(time.Minute)
	again := sampleConn("di1")
	again.AccessToken = finchconnect.NewSecret("tok-di1-reauthenticated")
	mustPut(t, s, again)
	wantErrIs(t, "DeleteIf(di1, the version before the re-authentication)", s.DeleteIf(ctx, "di1", v), finchconnect.ErrConflict)
	got, v2, err := s.GetVersion(ctx, "di1")
	if err != nil || got.AccessToken.Reveal() != "tok-di1-reauthenticated" || v2 == v {
		t.Fatalf("GetVersion(di1) after a refused DeleteIf = %v, %d, %v; want the re-authentication's token at a new version", got.AccessToken, v2, err)
	}
	if err := s.DeleteIf(ctx, "di1", v2); err != nil {
		t.Fatalf("DeleteIf(di1, the version read) err = %v", err)
	}
	wantErrIs(t, "Get(di1) after DeleteIf", func() error { _, err := s.Get(ctx, "di1"); return err }(), finchconnect.ErrNotFound)
	wantErrIs(t, "DeleteIf(di1) again", s.DeleteIf(ctx, "di1", v2), finchconnect.ErrNotFound)
	if err := s.DeleteIf(ctx, "di1", 0); err == nil || errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("DeleteIf(di1, 0) err = %v, want a usage error", err)
	}

	// Stored again after the delete: the old version does not delete the
	// new row.
	clk.Advance(time.Minute)
	mustPut(t, s, sampleConn("di1"))
	wantErrIs(t, "DeleteIf(di1, a version of the deleted row)", s.DeleteIf(ctx, "di1", v2), finchconnect.ErrConflict)

	// Lost answers: the delete happened; the retry finds no row.
	for _, fault := range Faults {
		mustPut(t, s, sampleConn("di2"))
		_, v, err := s.GetVersion(ctx, "di2")
		if err != nil {
			t.Fatal(err)
		}
		f := NewFaulty(b)
		f.Inject(TxnRows, fault)
		err = newStore(t, f, s.Keyring(), clk).DeleteIf(ctx, "di2", v)
		if fault != Resend && err == nil {
			t.Errorf("DeleteIf under %v err = nil, want the fault", fault)
		}
		if fault == Resend {
			wantErrIs(t, "DeleteIf sent twice", err, finchconnect.ErrNotFound)
		}
		wantErrIs(t, "DeleteIf under "+fault.String()+", retried", s.DeleteIf(ctx, "di2", v), finchconnect.ErrNotFound)
		if _, err := b.GetRow(ctx, "di2"); !errors.Is(err, finchconnect.ErrNotFound) {
			t.Errorf("GetRow(di2) after DeleteIf under %v err = %v, want ErrNotFound (performed)", fault, err)
		}
	}
}
