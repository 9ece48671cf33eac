package tokenstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// failingBackend refuses every row write while down is set, like a store
// in an outage.
type failingBackend struct {
	tokenstore.Backend
	down bool
}

func (b *failingBackend) PutRow(ctx context.Context, r tokenstore.Row, expect int64) (int64, error) {
	if b.down {
		return 0, errors.New("store unreachable")
	}
	return b.Backend.PutRow(ctx, r, expect)
}

func TestJournal_HoldsThroughOutageAndRestart(t *testing.T) {
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	backend := &failingBackend{Backend: tokenstore.NewMemory(), down: true}
	store := tokenstore.New(backend, kr)
	path := filepath.Join(t.TempDir(), "journal")
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "tok_JOURNAL_MARKER_5f2a"
	conns := []finchconnect.Connection{
		{ConnectionID: "c1", ProviderID: "gusto", Status: "connected", AccessToken: finchconnect.NewSecret(marker)},
		{ConnectionID: "c2", ProviderID: "gusto", Status: "connected", AccessToken: finchconnect.NewSecret("tok_two")},
	}
	for _, c := range conns {
		if err := j.Hold(c, "tag-"+c.ConnectionID); err != nil {
			t.Fatal(err)
		}
	}
	if got := j.Pending(); got != 2 {
		t.Errorf("Pending() = %d, want 2", got)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Error("the journal file holds the token in the clear")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, want 0600", fi.Mode().Perm())
	}
	if _, err := j.Replay(t.Context()); err == nil {
		t.Fatal("Replay succeeded while the store is down")
	}
	j.Close()

	// The process restarts; the store comes back.
	backend.down = false
	j, err = store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := j.Pending(); got != 2 {
		t.Fatalf("after reopening, Pending() = %d, want 2", got)
	}
	done, err := j.Replay(t.Context())
	if err != nil || len(done) != 2 || done[0] != (tokenstore.Replayed{Tag: "tag-c1", ConnectionID: "c1"}) {
		t.Fatalf("Replay() = %+v, %v; want c1 and c2 with their tags", done, err)
	}
	for _, c := range conns {
		got, err := store.Get(t.Context(), c.ConnectionID)
		if err != nil || !got.AccessToken.Equal(c.AccessToken) {
			t.Errorf("Get(%s) after replay: token match %v, err %v", c.ConnectionID, got.AccessToken.Equal(c.AccessToken), err)
		}
	}
	if got := j.Pending(); got != 0 {
		t.Errorf("Pending() after replay = %d, want 0", got)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("journal size after replay = %d, want 0", fi.Size())
	}
}

func TestJournal_IgnoresTornRecord(t *testing.T) {
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(tokenstore.NewMemory(), kr)
	path := filepath.Join(t.TempDir(), "journal")
	j, _ := store.OpenJournal(path)
	if err := j.Hold(finchconnect.Connection{ConnectionID: "c1", ProviderID: "p", Status: "connected", AccessToken: finchconnect.NewSecret("t")}, "k1"); err != nil {
		t.Fatal(err)
	}
	j.Close()
	// A crash in the middle of a second write leaves half a record.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0, 0, 0, 50, 1, 2, 3})
	f.Close()
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := j.Pending(); got != 1 {
		t.Errorf("Pending() = %d, want 1 (the torn record was never held)", got)
	}
	// A record held after the torn one is read back intact.
	if err := j.Hold(finchconnect.Connection{ConnectionID: "c2", ProviderID: "p", Status: "connected", AccessToken: finchconnect.NewSecret("t2")}, "k2"); err != nil {
		t.Fatal(err)
	}
	if done, err := j.Replay(t.Context()); err != nil || len(done) != 2 {
		t.Errorf("Replay() = %+v, %v; want 2 records", done, err)
	}
	if c, err := store.Get(t.Context(), "c2"); err != nil || c.AccessToken.Reveal() != "t2" {
		t.Errorf("Get(c2) after replay: %v", err)
	}
}
