package tokenstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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

// TestJournal_FailedHoldLeavesNoPartialRecord: a disk that fills up in the
// middle of a record fails the Hold, and leaves the journal as it was, so
// the records held after it read back intact.
func TestJournal_FailedHoldLeavesNoPartialRecord(t *testing.T) {
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(tokenstore.NewMemory(), kr)
	j, err := store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	conn := func(id string) finchconnect.Connection {
		return finchconnect.Connection{ConnectionID: id, ProviderID: "p", Status: "connected", AccessToken: finchconnect.NewSecret("tok-" + id)}
	}
	if err := j.Hold(conn("c1"), "k1"); err != nil {
		t.Fatal(err)
	}
	tokenstore.SetJournalWrite(j, func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, errors.New("test: no space left on device")
	})
	if err := j.Hold(conn("c2"), "k2"); err == nil {
		t.Fatal("Hold on a full disk succeeded")
	}
	tokenstore.SetJournalWrite(j, nil)
	if err := j.Hold(conn("c3"), "k3"); err != nil {
		t.Fatal(err)
	}
	if got := j.Pending(); got != 2 {
		t.Errorf("Pending() = %d, want 2 (c1, c3)", got)
	}
	done, err := j.Replay(t.Context())
	if err != nil || len(done) != 2 {
		t.Fatalf("Replay() = %+v, %v; want c1 and c3", done, err)
	}
	for _, id := range []string{"c1", "c3"} {
		if c, err := store.Get(t.Context(), id); err != nil || c.AccessToken.Reveal() != "tok-"+id {
			t.Errorf("Get(%s) after replay: %v", id, err)
		}
	}
	if _, err := store.Get(t.Context(), "c2"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Get(c2), whose Hold failed = %v, want not found", err)
	}
}

// TestJournal_ReplaysTwoTokensOfOneConnectionInOrder: a connection that
// re-authenticated twice during an outage has two records; the replay
// ends with the second, newer token, not the first.
func TestJournal_ReplaysTwoTokensOfOneConnectionInOrder(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &failingBackend{Backend: tokenstore.NewMemory(), down: true}
	store := newJournalStore(t, b, &now)
	j, err := store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, tok := range []string{"tok-first", "tok-second"} {
		if err := j.Hold(finchconnect.Connection{ConnectionID: "c1", ProviderID: "p", Status: "connected", AccessToken: finchconnect.NewSecret(tok)}, "tag-"+tok); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	b.down = false
	now = now.Add(time.Hour) // the store returns an hour later
	if done, err := j.Replay(t.Context()); err != nil || len(done) != 2 {
		t.Fatalf("Replay() = %+v, %v; want both records done", done, err)
	}
	c, err := store.Get(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AccessToken.Reveal(); got != "tok-second" {
		t.Errorf("after replay the vault holds %q, want the later token tok-second", got)
	}
}

// newJournalStore returns a store on backend with keys 2 (primary) and 1,
// whose clock reads *now.
func newJournalStore(t *testing.T, backend tokenstore.Backend, now *time.Time) *tokenstore.Store {
	t.Helper()
	k2, err := keyring.Generate(2)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	store := tokenstore.New(backend, kr)
	store.Now = func() time.Time { return *now }
	return store
}

// TestOpenJournal_RefusesSecondOwner checks that a journal has one owner at
// a time: a second OpenJournal would truncate the first owner's file under
// it (cutting a record its Hold has just fsynced) while it is open.
func TestOpenJournal_RefusesSecondOwner(t *testing.T) {
	now := time.Now()
	store := newJournalStore(t, tokenstore.NewMemory(), &now)
	path := filepath.Join(t.TempDir(), "journal")
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Hold(conn("c1", "t1"), "k1"); err != nil {
		t.Fatal(err)
	}
	if j2, err := store.OpenJournal(path); err == nil {
		j2.Close()
		t.Fatal("OpenJournal of a journal that is open already: err = nil, want a refusal")
	} else if !strings.Contains(err.Error(), "another finchconnect server") {
		t.Errorf("OpenJournal of a journal that is open already: err = %q, want it to say another server may be using it", err)
	}
	if got := j.Pending(); got != 1 {
		t.Errorf("first owner's Pending() = %d, want 1", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = store.OpenJournal(path)
	if err != nil {
		t.Fatalf("OpenJournal after the owner closed it: %v", err)
	}
	defer j.Close()
	if got := j.Pending(); got != 1 {
		t.Errorf("Pending() after reopening = %d, want 1", got)
	}
}

// TestPendingInJournal_OnlyReads checks that PendingInJournal, which runs
// beside the server that owns the journal, reports the key of each record
// and never creates, truncates or extends the file.
func TestPendingInJournal_OnlyReads(t *testing.T) {
	now := time.Now()
	store := newJournalStore(t, tokenstore.NewMemory(), &now)
	dir := t.TempDir()

	// A journal with a record under key 2, one under key 1 (held before
	// key 2 was the primary), and the first bytes of a third record, as a
	// Hold in the middle of its write leaves them.
	path := filepath.Join(dir, "journal")
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Hold(conn("c1", "t1"), "k1"); err != nil {
		t.Fatal(err)
	}
	kr := store.Keyring()
	k1only, _ := keyring.Generate(1) // another key 1 would do: only the header is read
	oldRing, _ := keyring.New(k1only)
	store.SetKeyring(oldRing)
	if err := j.Hold(conn("c2", "t2"), "k2"); err != nil {
		t.Fatal(err)
	}
	store.SetKeyring(kr)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0, 90, 0, 2, 'k'})
	f.Close()

	corrupt := filepath.Join(dir, "corrupt")
	// A complete record whose tag length runs past its end.
	if err := os.WriteFile(corrupt, []byte{0, 0, 0, 3, 0, 9, 'x'}, 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		want    []tokenstore.HeldRecord
		wantErr bool
	}{
		{name: "records and a torn tail", path: path, want: []tokenstore.HeldRecord{{Tag: "k1", KeyID: 2}, {Tag: "k2", KeyID: 1}}},
		{name: "missing file", path: filepath.Join(dir, "missing")},
		{name: "corrupt record", path: corrupt, wantErr: true},
		{name: "a folder", path: folder, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, beforeErr := os.ReadFile(tt.path)
			got, err := tokenstore.PendingInJournal(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("PendingInJournal(%s) err = %v, want error %v", tt.name, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PendingInJournal(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
			after, afterErr := os.ReadFile(tt.path)
			if !bytes.Equal(after, before) || (afterErr == nil) != (beforeErr == nil) {
				t.Errorf("PendingInJournal(%s) changed the file: %d bytes (err %v), was %d bytes (err %v)", tt.name, len(after), afterErr, len(before), beforeErr)
			}
		})
	}
}

// failIDBackend refuses row writes for one connection id.
type failIDBackend struct {
	tokenstore.Backend
	fail string
}

func (b *failIDBackend) PutRow(ctx context.Context, r tokenstore.Row, expect int64) (int64, error) {
	if r.ID == b.fail {
		return 0, errors.New("store unreachable")
	}
	return b.Backend.PutRow(ctx, r, expect)
}

// TestJournal_PartialReplayRemovesStoredRecords checks that the records a
// failed Replay stored before its failure leave the journal, also across a
// restart, so that no later Replay writes their (by then maybe older)
// tokens again.
func TestJournal_PartialReplayRemovesStoredRecords(t *testing.T) {
	now := time.Now()
	backend := &failIDBackend{Backend: tokenstore.NewMemory(), fail: "c2"}
	store := newJournalStore(t, backend, &now)
	path := filepath.Join(t.TempDir(), "journal")
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []finchconnect.Connection{conn("c1", "t1"), conn("c2", "t2"), conn("c3", "t3")} {
		if err := j.Hold(c, "tag-"+c.ConnectionID); err != nil {
			t.Fatal(err)
		}
	}
	done, err := j.Replay(t.Context())
	if err == nil {
		t.Fatal("Replay() with c2's write failing: err = nil, want an error")
	}
	if want := []tokenstore.Replayed{{Tag: "tag-c1", ConnectionID: "c1"}}; !cmp.Equal(done, want) {
		t.Errorf("Replay() with c2's write failing = %+v, want %+v", done, want)
	}
	if got := j.Pending(); got != 2 {
		t.Errorf("Pending() after a partial replay = %d, want 2", got)
	}
	held, err := tokenstore.PendingInJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tags(held), []string{"tag-c2", "tag-c3"}; !cmp.Equal(got, want) {
		t.Errorf("journal after a partial replay holds %q, want %q", got, want)
	}

	// A restart reads the rewritten journal, and new records follow it.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	backend.fail = ""
	j, err = store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := j.Pending(); got != 2 {
		t.Errorf("Pending() after reopening = %d, want 2", got)
	}
	if err := j.Hold(conn("c4", "t4"), "tag-c4"); err != nil {
		t.Fatal(err)
	}
	done, err = j.Replay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := connIDs(done), []string{"c2", "c3", "c4"}; !cmp.Equal(got, want) {
		t.Errorf("second Replay() stored %q, want %q", got, want)
	}
}

// TestJournal_ReplayKeepsNewerToken checks that a held token does not
// replace one the store received after it was held: a re-authentication
// that reached the store directly, or a replay whose journal rewrite was
// lost in a crash.
func TestJournal_ReplayKeepsNewerToken(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	backend := &failingBackend{Backend: tokenstore.NewMemory(), down: true}
	store := newJournalStore(t, backend, &now)
	j, err := store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Held during an outage: c1 and c2 (whose newer token comes later),
	// and c3, which the store had from before.
	backend.down = false
	if err := store.Put(t.Context(), conn("c3", "c3-first")); err != nil {
		t.Fatal(err)
	}
	backend.down = true
	now = now.Add(time.Second)
	for _, c := range []finchconnect.Connection{conn("c1", "c1-held"), conn("c2", "c2-held"), conn("c3", "c3-held")} {
		if err := j.Hold(c, "tag-"+c.ConnectionID); err != nil {
			t.Fatal(err)
		}
	}
	// The store returns, and a re-authentication of c2 lands first.
	backend.down = false
	now = now.Add(time.Millisecond)
	if err := store.Put(t.Context(), conn("c2", "c2-newer")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	done, err := j.Replay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := connIDs(done), []string{"c1", "c2", "c3"}; !cmp.Equal(got, want) {
		t.Errorf("Replay() = %q, want %q (a record kept back is done too)", got, want)
	}
	for id, want := range map[string]string{"c1": "c1-held", "c2": "c2-newer", "c3": "c3-held"} {
		got, err := store.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken.Reveal() != want {
			t.Errorf("Get(%s) after Replay: token %q, want %q", id, got.AccessToken.Reveal(), want)
		}
	}
}

// TestJournal_RefusesAnUnknownFormat: a record that does not start with
// this version's format version (here, the unversioned layout of a build
// that was never released) is not replayed and not dropped: Replay says
// so, and the record stays held for an operator.
func TestJournal_RefusesAnUnknownFormat(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := newJournalStore(t, tokenstore.NewMemory(), &now)
	sealed, err := store.SealStaged(conn("c1", "c1-held"))
	if err != nil {
		t.Fatal(err)
	}
	tag := "tag-c1"
	rec := binary.BigEndian.AppendUint32(nil, uint32(2+len(tag)+len(sealed)))
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(tag)))
	rec = append(append(rec, tag...), sealed...)
	path := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(path, rec, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if done, err := j.Replay(t.Context()); err == nil || !strings.Contains(err.Error(), "unknown format") || len(done) != 0 {
		t.Fatalf("Replay() = %+v, %v; want nothing done and an error naming the unknown format", done, err)
	}
	if j.Pending() != 1 {
		t.Errorf("Pending() after a refused record = %d, want 1 (kept)", j.Pending())
	}
	if _, err := store.Get(t.Context(), "c1"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Get(c1) after a refused record err = %v, want ErrNotFound", err)
	}
}

// TestJournal_HoldReplacementNeverInserts: a re-authentication's token held
// with HoldReplacement replaces its stored connection when replayed, and is
// handed back as an orphan, not stored, when the connection was deleted
// meanwhile (a disconnect that won).
func TestJournal_HoldReplacementNeverInserts(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := newJournalStore(t, tokenstore.NewMemory(), &now)
	ctx := t.Context()
	for _, id := range []string{"kept", "gone"} {
		if err := store.Put(ctx, conn(id, id+"-old")); err != nil {
			t.Fatal(err)
		}
	}
	j, err := store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now = now.Add(time.Minute)
	for _, id := range []string{"kept", "gone"} {
		if err := j.HoldReplacement(conn(id, id+"-new"), "tag-"+id); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	done, err := j.Replay(ctx)
	if err != nil || len(done) != 2 {
		t.Fatalf("Replay() = %+v, %v; want both records done", done, err)
	}
	if done[0].Orphan != nil {
		t.Errorf("the record of a stored connection came back as an orphan")
	}
	if got, _ := store.Get(ctx, "kept"); got.AccessToken.Reveal() != "kept-new" {
		t.Errorf("Get(kept) after Replay: token %q, want kept-new", got.AccessToken.Reveal())
	}
	if o := done[1].Orphan; o == nil || o.AccessToken.Reveal() != "gone-new" {
		t.Errorf("the record of a deleted connection: Orphan = %v, want it with its token", o)
	}
	if _, err := store.Get(ctx, "gone"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Get(gone) after Replay err = %v, want ErrNotFound (a replacement never inserts)", err)
	}
	if j.Pending() != 0 {
		t.Errorf("Pending() = %d, want 0", j.Pending())
	}
}

func tags(held []tokenstore.HeldRecord) []string {
	var out []string
	for _, h := range held {
		out = append(out, h.Tag)
	}
	return out
}

func connIDs(done []tokenstore.Replayed) []string {
	var out []string
	for _, r := range done {
		out = append(out, r.ConnectionID)
	}
	return out
}
