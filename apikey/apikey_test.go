package apikey_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/tokenstore"
)

func TestVerify(t *testing.T) {
	ctx := t.Context()
	b := tokenstore.NewMemory()
	key, rec, err := apikey.Create(ctx, b, "billing service", apikey.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	got, err := apikey.Verify(ctx, b, "Bearer "+key.Reveal())
	if err != nil || got.ID != rec.ID || got.Scope != apikey.ScopeRead {
		t.Fatalf("Verify(new key) = %+v, %v; want record %s", got, err, rec.ID)
	}
	if got.Allows(apikey.ScopeWrite) || !got.Allows(apikey.ScopeRead) {
		t.Errorf("a read key: Allows(write) = %v, Allows(read) = %v", got.Allows(apikey.ScopeWrite), got.Allows(apikey.ScopeRead))
	}
	_, id, _ := strings.Cut(key.Reveal(), "_")
	id = id[:12]
	tests := []struct {
		name, header string
		want         error
	}{
		{"missing", "", apikey.ErrMissing},
		{"scheme only", "Bearer", apikey.ErrMissing},
		{"scheme and spaces", "Bearer   ", apikey.ErrMissing},
		{"basic", "Basic abc", apikey.ErrMissing},
		{"key without scheme", key.Reveal(), apikey.ErrMissing},
		{"not ours", "Bearer sk_live_123", apikey.ErrInvalid},
		{"wrong secret", "Bearer fck_" + id + "_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", apikey.ErrInvalid},
		{"unknown id", "Bearer fck_000000000000_x", apikey.ErrInvalid},
		{"bad id", "Bearer fck_zz_x", apikey.ErrInvalid},
		{"truncated", "Bearer " + key.Reveal()[:len(key.Reveal())-1], apikey.ErrInvalid},
	}
	for _, tt := range tests {
		if _, err := apikey.Verify(ctx, b, tt.header); !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify(%q) err = %v, want %v", tt.name, tt.header, err, tt.want)
		}
	}
	for _, header := range []string{"bearer " + key.Reveal(), "BEARER " + key.Reveal(), "Bearer  " + key.Reveal() + " "} {
		if got, err := apikey.Verify(ctx, b, header); err != nil || got.ID != rec.ID {
			t.Errorf("Verify(%q) = %s, %v; want record %s", header[:8]+"…", got.ID, err, rec.ID)
		}
	}

	// The store holds a hash, never the key.
	entries, _ := b.Scan(ctx, "apikey/", "", 10)
	raw, _ := json.Marshal(entries)
	secret := key.Reveal()[len("fck_")+13:]
	if strings.Contains(string(raw), secret) {
		t.Error("the store holds the key's secret")
	}

	if err := apikey.Revoke(ctx, b, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := apikey.Verify(ctx, b, "Bearer "+key.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify(revoked key) err = %v, want ErrRevoked", err)
	}
	list, err := apikey.List(ctx, b)
	if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() {
		t.Errorf("List() = %+v, %v; want one revoked key", list, err)
	}
	if _, _, err := apikey.Create(ctx, b, "x", "admin"); err == nil {
		t.Error("Create with an unknown scope succeeded")
	}
}

// countingLoads counts the store reads of API key records.
type countingLoads struct {
	tokenstore.Backend
	loads atomic.Int64
}

func (c *countingLoads) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.Backend.Load(ctx, key)
}

func TestCache(t *testing.T) {
	ctx := t.Context()
	b := &countingLoads{Backend: tokenstore.NewMemory()}
	key, rec, err := apikey.Create(ctx, b, "proxy", apikey.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	c := apikey.NewCache(b, time.Second, func() time.Time { return now })
	auth := "Bearer " + key.Reveal()

	// The record is read once per TTL, however many requests come.
	for range 5 {
		if got, err := c.Verify(ctx, auth); err != nil || got.ID != rec.ID {
			t.Fatalf("Cache.Verify(key) = %+v, %v; want record %s", got, err, rec.ID)
		}
	}
	if n := b.loads.Load(); n != 1 {
		t.Errorf("5 verifications read the store %d times, want 1", n)
	}

	// The secret is checked on every request, cached record or not.
	wrong := auth[:len(auth)-4] + "AAAA"
	if _, err := c.Verify(ctx, wrong); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("Cache.Verify(cached id, wrong secret) err = %v, want ErrInvalid", err)
	}

	// Unknown ids are not remembered: each one reads the store.
	before := b.loads.Load()
	for range 3 {
		if _, err := c.Verify(ctx, "Bearer fck_000000000000_x"); !errors.Is(err, apikey.ErrInvalid) {
			t.Errorf("Cache.Verify(unknown) err = %v, want ErrInvalid", err)
		}
	}
	if n := b.loads.Load() - before; n != 3 {
		t.Errorf("3 unknown ids read the store %d times, want 3", n)
	}

	// A revocation shows within the TTL: still valid just before it ends,
	// refused once it has.
	if err := apikey.Revoke(ctx, b, rec.ID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(999 * time.Millisecond)
	if _, err := c.Verify(ctx, auth); err != nil {
		t.Errorf("Cache.Verify within the TTL of the cached record err = %v, want nil", err)
	}
	now = now.Add(time.Millisecond)
	if _, err := c.Verify(ctx, auth); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Cache.Verify once the TTL has passed err = %v, want ErrRevoked", err)
	}

	// Malformed headers never reach the store.
	before = b.loads.Load()
	if _, err := c.Verify(ctx, "Basic abc"); !errors.Is(err, apikey.ErrMissing) {
		t.Errorf("Cache.Verify(Basic) err = %v, want ErrMissing", err)
	}
	if b.loads.Load() != before {
		t.Error("a malformed header read the store")
	}
}

// TestScopes checks each scope against each other: read < write < forward,
// and an unknown scope (a damaged record, a typo) allows nothing.
func TestScopes(t *testing.T) {
	allows := map[string][]bool{ // Allows(read), Allows(write), Allows(forward)
		apikey.ScopeRead:    {true, false, false},
		apikey.ScopeWrite:   {true, true, false},
		apikey.ScopeForward: {true, true, true},
		"admin":             {false, false, false},
		"":                  {false, false, false},
	}
	for have, want := range allows {
		for i, scope := range apikey.Scopes {
			if got := (apikey.Record{Scope: have}).Allows(scope); got != want[i] {
				t.Errorf("a %q key: Allows(%q) = %v, want %v", have, scope, got, want[i])
			}
		}
		if got := (apikey.Record{Scope: have}).Allows("admin"); got {
			t.Errorf("a %q key allows the unknown scope admin", have)
		}
	}
	ctx := t.Context()
	b := tokenstore.NewMemory()
	key, _, err := apikey.Create(ctx, b, "forwarder", apikey.ScopeForward)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := apikey.Verify(ctx, b, "Bearer "+key.Reveal()); err != nil || got.Scope != apikey.ScopeForward {
		t.Errorf("Verify(forward key) = %+v, %v", got, err)
	}
}

// TestPersonal: the personal flag is kept with the key's record, read back
// by Verify and the cache, absent by default, and not a rank of the scope.
func TestPersonal(t *testing.T) {
	ctx := t.Context()
	b := tokenstore.NewMemory()
	plain, _, err := apikey.Create(ctx, b, "writer", apikey.ScopeForward)
	if err != nil {
		t.Fatal(err)
	}
	personal, rec, err := apikey.Create(ctx, b, "hr", apikey.ScopeRead, apikey.Personal())
	if err != nil || !rec.Personal {
		t.Fatalf("Create(Personal) = %+v, %v", rec, err)
	}
	cache := apikey.NewCache(b, time.Minute, nil)
	for _, verify := range []func(context.Context, string) (apikey.Record, error){
		func(ctx context.Context, h string) (apikey.Record, error) { return apikey.Verify(ctx, b, h) },
		cache.Verify,
	} {
		got, err := verify(ctx, "Bearer "+personal.Reveal())
		if err != nil || !got.Personal || got.Allows(apikey.ScopeWrite) {
			t.Errorf("personal read key: %+v, %v; want personal, read only", got, err)
		}
		got, err = verify(ctx, "Bearer "+plain.Reveal())
		if err != nil || got.Personal {
			t.Errorf("forward key: %+v, %v; want not personal", got, err)
		}
	}
	if err := apikey.Revoke(ctx, b, rec.ID); err != nil {
		t.Fatal(err)
	}
	recs, err := apikey.List(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == rec.ID && (!r.Personal || r.RevokedAt.IsZero()) {
			t.Errorf("after Revoke: %+v; want revoked and still personal", r)
		}
	}
}
