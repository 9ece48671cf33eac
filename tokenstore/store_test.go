package tokenstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

func mustKeyring(t testing.TB, ids ...uint32) (*keyring.Keyring, []keyring.Key) {
	t.Helper()
	var keys []keyring.Key
	for _, id := range ids {
		k, err := keyring.Generate(id)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	kr, err := keyring.New(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return kr, keys
}

func conn(id, token string) finchconnect.Connection {
	return finchconnect.Connection{
		ConnectionID: id, CustomerID: "cust-1", CustomerName: "Acme", ProviderID: "gusto",
		Products: []string{"directory"}, Status: finchconnect.StatusConnected,
		AccessToken: finchconnect.NewSecret(token),
	}
}

// TestStore_MarkerNeverInSQLiteBytes writes a known token through the Store on
// SQLite, runs every operation over it, and proves the token's bytes appear
// nowhere: not in the database, its WAL or its shared-memory file, not in any
// error, and not in the JSON, fmt or slog rendering of what the Store
// returns.
func TestStore_MarkerNeverInSQLiteBytes(t *testing.T) {
	const marker = "MARKER-7f3c9a1e-finch-token-must-never-leak"
	const marker2 = "MARKER-2b8d44c0-the-reauthenticated-token"
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.db")
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kr, keys := mustKeyring(t, 1)
	s := tokenstore.New(b, kr)

	var outputs []string // everything a user or a log could see
	note := func(v any) {
		j, _ := json.Marshal(v)
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "v", v)
		outputs = append(outputs, string(j), logs.String(), fmt.Sprintf("%v %+v %#v %s", v, v, v, v))
	}
	noteErr := func(err error) {
		if err != nil {
			outputs = append(outputs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		}
	}

	c := conn("conn-marker", marker)
	noteErr(s.Put(ctx, c))
	got, err := s.Get(ctx, "conn-marker")
	if err != nil || got.AccessToken.Reveal() != marker {
		t.Fatalf("Get() = token ok %v, err %v", got.AccessToken.Reveal() == marker, err)
	}
	note(got)
	note(&got)
	note([]finchconnect.Connection{got})
	noteErr(s.Update(ctx, "conn-marker", func(c *finchconnect.Connection) error { c.Status = finchconnect.StatusReauth; return nil }))
	noteErr(s.Update(ctx, "conn-marker", func(c *finchconnect.Connection) error { c.AccessToken = finchconnect.NewSecret(marker2); return nil }))
	noteErr(s.Update(ctx, "conn-marker", func(c *finchconnect.Connection) error { return errors.New("refused") }))
	look, err := s.Lookup(ctx, "conn-marker")
	noteErr(err)
	note(look)
	list, _, err := s.List(ctx, tokenstore.Filter{})
	noteErr(err)
	note(list)

	// The callback ledger keeps a staged copy in the key space.
	staged, err := s.SealStaged(conn("conn-staged", marker))
	noteErr(err)
	noteErr(b.Claim(ctx, "callback:code-1", staged, time.Hour))
	opened, err := s.OpenStaged(staged)
	noteErr(err)
	note(opened)

	// Rotation re-seals the token.
	k2, err := keyring.Generate(2)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := keyring.New(k2, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	rs := tokenstore.New(b, rotated)
	res, err := rs.Rewrap(ctx, tokenstore.RewrapOptions{})
	noteErr(err)
	note(res)
	usage, err := rs.KeyUsage(ctx)
	noteErr(err)
	note(usage)

	// Errors: a tampered row, a wrong keyring, a missing row, bad input.
	row, err := b.GetRow(ctx, "conn-marker")
	if err != nil {
		t.Fatal(err)
	}
	tampered := row
	tampered.ID = "conn-tampered"
	_, err = b.PutRow(ctx, tampered, 0)
	noteErr(err)
	_, err = rs.Get(ctx, "conn-tampered")
	if !errors.Is(err, finchconnect.ErrDecrypt) {
		t.Errorf("Get(row copied under another id) err = %v, want ErrDecrypt", err)
	}
	noteErr(err)
	_, err = s.OpenStaged(append(bytes.Clone(staged), 1))
	noteErr(err)
	_, err = tokenstore.New(b, kr).Get(ctx, "conn-marker") // key 2 unknown to kr
	noteErr(err)
	_, err = s.Get(ctx, "absent")
	noteErr(err)
	noteErr(s.Put(ctx, finchconnect.Connection{AccessToken: finchconnect.NewSecret(marker)}))

	for _, out := range outputs {
		for _, m := range []string{marker, marker2} {
			if strings.Contains(out, m) {
				t.Errorf("output leaks the token: %q", out)
			}
		}
	}

	// The files on disk, while open (WAL not yet checkpointed) and after
	// Close.
	checkFiles := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(path + "*")
		if len(files) == 0 {
			t.Fatalf("no database files in %s", dir)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{marker, marker2} {
				for _, enc := range []string{m, hex.EncodeToString([]byte(m)), base64.StdEncoding.EncodeToString([]byte(m))} {
					if bytes.Contains(raw, []byte(enc)) {
						t.Errorf("%s: %s holds the token (%d bytes scanned)", when, filepath.Base(f), len(raw))
					}
				}
			}
		}
	}
	checkFiles("while open")
	if info, err := os.Stat(path + "-wal"); err != nil || info.Size() == 0 {
		t.Errorf("expected a non-empty WAL file while open: %v", err)
	}
	// The test is only meaningful if the data did reach the files: the
	// clear customer name must be there.
	raw, _ := os.ReadFile(path + "-wal")
	if !bytes.Contains(raw, []byte(`"customer_name":"Acme"`)) {
		t.Errorf("the WAL does not hold the connection's clear metadata; the scan proves nothing")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	checkFiles("after close")
}

func TestStore_Rewrap_rate(t *testing.T) {
	b := tokenstore.NewMemory()
	old, keys := mustKeyring(t, 1)
	for i := range 6 {
		if err := tokenstore.New(b, old).Put(t.Context(), conn(fmt.Sprintf("c%d", i), "tok")); err != nil {
			t.Fatal(err)
		}
	}
	k2, _ := keyring.Generate(2)
	kr, _ := keyring.New(k2, keys[0])
	start := time.Now()
	res, err := tokenstore.New(b, kr).Rewrap(t.Context(), tokenstore.RewrapOptions{Rate: 50})
	elapsed := time.Since(start)
	if err != nil || res.Rewrapped != 6 {
		t.Fatalf("Rewrap(rate 50) = %+v, %v", res, err)
	}
	// Six rows at 50/s: five gaps of 20 ms.
	if elapsed < 90*time.Millisecond {
		t.Errorf("Rewrap of 6 rows at 50/s took %v, want at least 100ms", elapsed)
	}
}

func TestStore_Rewrap_cancelAndResume(t *testing.T) {
	b := tokenstore.NewMemory()
	old, keys := mustKeyring(t, 1)
	for i := range 10 {
		if err := tokenstore.New(b, old).Put(t.Context(), conn(fmt.Sprintf("c%d", i), "tok")); err != nil {
			t.Fatal(err)
		}
	}
	k2, _ := keyring.Generate(2)
	kr, _ := keyring.New(k2, keys[0])
	s := tokenstore.New(b, kr)
	ctx, cancel := context.WithCancel(t.Context())
	// One worker: rows finish in order, so the figures are exact
	// (TestStore_Rewrap_cancelMidPageResumes covers several).
	res, err := s.Rewrap(ctx, tokenstore.RewrapOptions{Workers: 1, Progress: func(done, total int, cursor string) {
		if done == 4 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || res.Cursor != "c3" || res.Rewrapped != 4 {
		t.Fatalf("cancelled Rewrap = %+v, %v; want cursor c3, 4 rewrapped, context.Canceled", res, err)
	}
	res, err = s.Rewrap(t.Context(), tokenstore.RewrapOptions{After: res.Cursor})
	if err != nil || res.Rewrapped != 6 {
		t.Fatalf("resumed Rewrap = %+v, %v; want 6 rewrapped", res, err)
	}
	usage, _ := s.KeyUsage(t.Context())
	if usage[1] != 0 || usage[2] != 10 {
		t.Errorf("KeyUsage after resume = %v, want all 10 under key 2", usage)
	}
}

func TestStore_KeyUsage_unknownFormat(t *testing.T) {
	b := tokenstore.NewMemory()
	kr, _ := mustKeyring(t, 5)
	s := tokenstore.New(b, kr)
	if err := s.Put(t.Context(), conn("ok", "tok")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutRow(t.Context(), tokenstore.Row{ID: "junk", Meta: []byte(`{}`), Sealed: []byte("plaintext?")}, 0); err != nil {
		t.Fatal(err)
	}
	usage, err := s.KeyUsage(t.Context())
	if err != nil || usage[5] != 1 || usage[0] != 1 {
		t.Errorf("KeyUsage() = %v, %v; want key 5: 1 and 0 (unknown format): 1", usage, err)
	}
}

func TestMemory_expiryUsesNow(t *testing.T) {
	m := tokenstore.NewMemory()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.Now = func() time.Time { return now }
	ctx := t.Context()
	if err := m.Claim(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second)
	if _, err := m.Load(ctx, "k"); err != nil {
		t.Errorf("Load 59s into a 1m ttl err = %v, want nil", err)
	}
	es, _ := m.Scan(ctx, "", "", 0)
	if len(es) != 1 || !es[0].ExpiresAt.Equal(time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)) {
		t.Errorf("Scan() = %+v, want one entry expiring at 00:01", es)
	}
	now = now.Add(time.Second)
	if _, err := m.Load(ctx, "k"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Load at the expiry instant err = %v, want ErrNotFound", err)
	}
	if err := m.Claim(ctx, "k", []byte("w"), 0); err != nil {
		t.Errorf("Claim after expiry err = %v", err)
	}
}

func TestMemory_closed(t *testing.T) {
	m := tokenstore.NewMemory()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(t.Context()); err == nil {
		t.Error("Ping after Close err = nil, want an error")
	}
	if _, err := m.GetRow(t.Context(), "x"); err == nil || errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("GetRow after Close err = %v, want a closed error, not ErrNotFound", err)
	}
}

func TestMemory_cancelledContext(t *testing.T) {
	m := tokenstore.NewMemory()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Claim(ctx, "k", nil, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Claim(cancelled ctx) err = %v, want context.Canceled", err)
	}
}

// TestStore_CreateSwap checks that CreateSwap stores a new connection and
// settles its swap in one write, and that for a connection stored already it
// writes nothing at all (neither the row nor the swap), so that its caller
// can fall back to PutSwap.
func TestStore_CreateSwap(t *testing.T) {
	ctx := t.Context()
	kr, _ := mustKeyring(t, 1)
	m := tokenstore.NewMemory()
	s := tokenstore.New(m, kr)
	if err := m.Claim(ctx, "ledger/a", []byte("pending"), time.Hour); err != nil {
		t.Fatal(err)
	}

	swapped, err := s.CreateSwap(ctx, conn("conn-1", "tok-1"), tokenstore.Swap{Key: "ledger/a", Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour})
	if err != nil || !swapped {
		t.Fatalf("CreateSwap of a new connection = %v, %v; want swapped, nil", swapped, err)
	}
	if got, err := s.Get(ctx, "conn-1"); err != nil || got.AccessToken.Reveal() != "tok-1" {
		t.Fatalf("Get after CreateSwap = %v (token matches: %v); want the stored token", err, err == nil && got.AccessToken.Reveal() == "tok-1")
	}
	if v, _ := m.Load(ctx, "ledger/a"); string(v) != "done" {
		t.Errorf("swap key after CreateSwap = %q, want done", v)
	}

	// The same id again: a conflict, and nothing written.
	if err := m.Claim(ctx, "ledger/b", []byte("pending"), time.Hour); err != nil {
		t.Fatal(err)
	}
	swapped, err = s.CreateSwap(ctx, conn("conn-1", "tok-2"), tokenstore.Swap{Key: "ledger/b", Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour})
	if !errors.Is(err, finchconnect.ErrConflict) || swapped {
		t.Fatalf("CreateSwap of a stored connection = %v, %v; want ErrConflict, not swapped", swapped, err)
	}
	if strings.Contains(err.Error(), "tok-2") {
		t.Errorf("the conflict's error shows the token: %v", err)
	}
	if got, _ := s.Get(ctx, "conn-1"); got.AccessToken.Reveal() != "tok-1" {
		t.Error("a refused CreateSwap replaced the stored token")
	}
	if v, _ := m.Load(ctx, "ledger/b"); string(v) != "pending" {
		t.Errorf("swap key after a refused CreateSwap = %q, want it untouched (pending)", v)
	}

	// PutSwap, the fallback, replaces it and keeps CreatedAt.
	first, _ := s.Get(ctx, "conn-1")
	swapped, err = s.PutSwap(ctx, conn("conn-1", "tok-2"), tokenstore.Swap{Key: "ledger/b", Old: []byte("pending"), Value: []byte("done"), TTL: time.Hour})
	if err != nil || !swapped {
		t.Fatalf("PutSwap over a stored connection = %v, %v; want swapped, nil", swapped, err)
	}
	if got, _ := s.Get(ctx, "conn-1"); got.AccessToken.Reveal() != "tok-2" || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("after PutSwap: new token stored %v, CreatedAt %v (want %v)", got.AccessToken.Reveal() == "tok-2", got.CreatedAt, first.CreatedAt)
	}
}

// racingBackend runs race once, just before the first GetRow that follows
// arm: a writer that lands between a read and the write after it.
type racingBackend struct {
	tokenstore.Backend
	armed bool
	race  func()
}

func (b *racingBackend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	r, err := b.Backend.GetRow(ctx, id)
	if b.armed {
		b.armed = false
		b.race()
	}
	return r, err
}

// TestStore_PutUnlessNewer: an older token is stored over an older one and
// not over a newer one, including a newer one that lands between
// PutUnlessNewer's read and its write.
func TestStore_PutUnlessNewer(t *testing.T) {
	kr, _ := mustKeyring(t, 1)
	b := &racingBackend{Backend: tokenstore.NewMemory()}
	s := tokenstore.New(b, kr)
	ctx := t.Context()
	conn := func(token string) finchconnect.Connection {
		return finchconnect.Connection{ConnectionID: "c1", CustomerID: "acme", AccessToken: finchconnect.NewSecret(token)}
	}
	token := func() string {
		t.Helper()
		c, err := s.Get(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		return c.AccessToken.Reveal()
	}

	if stored, err := s.PutUnlessNewer(ctx, conn("first"), time.Now()); err != nil || !stored {
		t.Fatalf("PutUnlessNewer into an empty vault = %v, %v; want stored", stored, err)
	}
	heldAt := time.Now()
	time.Sleep(2 * time.Millisecond)
	if err := s.Put(ctx, conn("newer")); err != nil {
		t.Fatal(err)
	}
	if stored, err := s.PutUnlessNewer(ctx, conn("older"), heldAt); err != nil || stored || token() != "newer" {
		t.Errorf("PutUnlessNewer of a token held before the stored one = %v, %v, vault has %q; want kept, newer", stored, err, token())
	}
	if stored, err := s.PutUnlessNewer(ctx, conn("latest"), time.Now()); err != nil || !stored || token() != "latest" {
		t.Errorf("PutUnlessNewer of a token newer than the stored one = %v, %v, vault has %q; want stored", stored, err, token())
	}

	// A re-authentication lands between the read and the write.
	heldAt = time.Now()
	time.Sleep(2 * time.Millisecond)
	b.armed, b.race = true, func() {
		if err := s.Put(ctx, conn("raced")); err != nil {
			t.Error(err)
		}
	}
	if stored, err := s.PutUnlessNewer(ctx, conn("stale"), heldAt); err != nil || stored || token() != "raced" {
		t.Errorf("PutUnlessNewer racing a newer write = %v, %v, vault has %q; want kept, raced", stored, err, token())
	}
}
