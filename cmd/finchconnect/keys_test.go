package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// testKeys returns keys with ids 1 to 9, encoded as ID:base64.
func testKeys(t *testing.T) map[uint32]string {
	t.Helper()
	enc := make(map[uint32]string)
	for id := uint32(1); id <= 9; id++ {
		k, err := keyring.Generate(id)
		if err != nil {
			t.Fatal(err)
		}
		enc[id] = k.Encode()
	}
	return enc
}

// keyFileText builds a key file from a template in which {N} stands for
// key N's ID:base64 and [N] for its base64 alone (for entries whose id is
// written another way, like "04:").
func keyFileText(keys map[uint32]string, tmpl string) string {
	for id, enc := range keys {
		_, b64, _ := strings.Cut(enc, ":")
		tmpl = strings.ReplaceAll(tmpl, fmt.Sprintf("{%d}", id), enc)
		tmpl = strings.ReplaceAll(tmpl, fmt.Sprintf("[%d]", id), b64)
	}
	return tmpl
}

// TestKeys_EditKeyFile checks that retiring and promoting a key change its
// own entry only, with keyring.Parse's reading of the file: several keys on
// one line, ids written "04" or " 4 ", comments.
func TestKeys_EditKeyFile(t *testing.T) {
	keys := testKeys(t)
	tests := []struct {
		name    string
		edit    string // "remove" or "promote"
		file    string
		id      uint32
		want    []uint32 // the key ids after the edit, primary first
		wantErr string   // the edit fails with an error holding this, and the file is unchanged
		keep    []string // text that must stay in the file
		drop    []string // text that must leave it
	}{
		{name: "remove a key sharing a line", edit: "remove", file: "{4}\n{3},{2}\n{1}\n", id: 3, want: []uint32{4, 2, 1}},
		{name: "remove the last key of a line", edit: "remove", file: "{4}\n{2}, {3}   # rotated in March\n", id: 3, want: []uint32{4, 2}, keep: []string{"# rotated in March"}},
		{name: "remove from a one-line list", edit: "remove", file: "{5},{4},{3}\n", id: 4, want: []uint32{5, 3}},
		{name: "remove an id with a leading zero", edit: "remove", file: "{5}\n04:[4]\n", id: 4, want: []uint32{5}},
		{name: "remove an id with spaces", edit: "remove", file: "{5}\n 4 :[4]\n", id: 4, want: []uint32{5}},
		{name: "remove a key and its comment", edit: "remove", file: "# keys, primary first\n{5}  # since March\n\n{4}  # retire after rewrap\n", id: 4, want: []uint32{5},
			keep: []string{"# keys, primary first", "# since March"}, drop: []string{"retire after rewrap"}},
		{name: "remove a missing key", edit: "remove", file: "{5}\n{4}\n", id: 3, wantErr: "key 3 is not in"},
		{name: "remove the only key", edit: "remove", file: "{5}\n", id: 5, wantErr: "does not parse"},
		{name: "promote a key on its own line", edit: "promote", file: "# keys\n{5}\n{6}  # new\n", id: 6, want: []uint32{6, 5}, keep: []string{"# keys\n", "  # new\n"}},
		{name: "promote a key sharing a line", edit: "promote", file: "{5},{6}\n", id: 6, want: []uint32{6, 5}},
		{name: "promote an id with a leading zero", edit: "promote", file: "{5}\n06:[6]\n", id: 6, want: []uint32{6, 5}},
		{name: "promote the primary", edit: "promote", file: "{5}\n{4}\n", id: 5, want: []uint32{5, 4}},
		{name: "promote a missing key", edit: "promote", file: "{5}\n{4}\n", id: 6, wantErr: "key 6 is not in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			before := keyFileText(keys, tt.file)
			if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			if tt.edit == "remove" {
				err = removeKey(path, tt.id)
			} else {
				err = promoteKey(path, tt.id)
			}
			after, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%sKey(%d) err = %v, want one saying %q", tt.edit, tt.id, err, tt.wantErr)
				}
				if string(after) != before {
					t.Errorf("%sKey(%d) failed but changed the file", tt.edit, tt.id)
				}
				return
			}
			if err != nil {
				t.Fatalf("%sKey(%d) err = %v", tt.edit, tt.id, err)
			}
			kr, err := keyring.LoadFile(path)
			if err != nil {
				t.Fatalf("after %sKey(%d) the key file does not load: %v", tt.edit, tt.id, err)
			}
			if diff := cmp.Diff(tt.want, kr.IDs()); diff != "" {
				t.Errorf("%sKey(%d): key ids mismatch (-want +got):\n%s", tt.edit, tt.id, diff)
			}
			for _, s := range tt.keep {
				if !strings.Contains(string(after), s) {
					t.Errorf("%sKey(%d) dropped %q from the file", tt.edit, tt.id, s)
				}
			}
			for _, s := range tt.drop {
				if strings.Contains(string(after), s) {
					t.Errorf("%sKey(%d) kept %q in the file", tt.edit, tt.id, s)
				}
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("after %sKey(%d) the key file's mode is %v (err %v), want 0600", tt.edit, tt.id, fi.Mode().Perm(), err)
			}
		})
	}
}

// retireSetup is a data folder whose key file holds keys 2 (primary) and
// 1, with an empty SQLite store, and the means to put tokens where retire
// must look for them.
type retireSetup struct {
	dir      string
	ring2    *keyring.Keyring // seals under key 2
	ring1    *keyring.Keyring // seals under key 1
	keysText string
}

func newRetireSetup(t *testing.T) *retireSetup {
	t.Helper()
	k2, _ := keyring.Generate(2)
	k1, _ := keyring.Generate(1)
	s := &retireSetup{dir: t.TempDir(), keysText: "# test keys\n" + k2.Encode() + "\n" + k1.Encode() + "\n"}
	s.ring2, _ = keyring.New(k2, k1)
	s.ring1, _ = keyring.New(k1, k2)
	if err := os.WriteFile(filepath.Join(s.dir, "keys"), []byte(s.keysText), 0o600); err != nil {
		t.Fatal(err)
	}
	s.store(t, s.ring2) // creates the empty store
	return s
}

// store opens the data folder's store, sealing under ring.
func (s *retireSetup) store(t *testing.T, ring *keyring.Keyring) *tokenstore.Store {
	t.Helper()
	b, _, err := openBackend(t.Context(), "sqlite://"+filepath.Join(s.dir, "finchconnect.db"), mayCreate, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return tokenstore.New(b, ring)
}

// retire runs `keys retire -id id` on the data folder.
func (s *retireSetup) retire(t *testing.T, id uint32) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"finchconnect", "keys", "retire", "-yes", "-id", fmt.Sprint(id), "-data-dir", s.dir},
		func(string) string { return "" }, nil, &out, &errOut)
	return out.String() + errOut.String(), err
}

// keyIDs returns the ids in the data folder's key file.
func (s *retireSetup) keyIDs(t *testing.T) []uint32 {
	t.Helper()
	kr, err := keyring.LoadFile(filepath.Join(s.dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return kr.IDs()
}

func journalConn(id string) finchconnect.Connection {
	return finchconnect.Connection{ConnectionID: id, ProviderID: "gusto", Status: finchconnect.StatusConnected, AccessToken: finchconnect.NewSecret("tok-" + id)}
}

// TestKeys_RetireReadsJournalWithoutWriting checks retire's journal check:
// it refuses while the journal holds a token under the key, and it only
// reads the journal, which the running server owns. It must not create it,
// cut off a record the server is writing, or pass when it cannot read it.
func TestKeys_RetireReadsJournalWithoutWriting(t *testing.T) {
	t.Run("record being written", func(t *testing.T) {
		s := newRetireSetup(t)
		path := filepath.Join(s.dir, "journal")
		// The server owns the journal and holds c1; its Hold of c2 has
		// written the first bytes of the record when retire runs.
		owner, err := s.store(t, s.ring2).OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		defer owner.Close()
		if err := owner.Hold(journalConn("c1"), "tag-c1"); err != nil {
			t.Fatal(err)
		}
		rec2 := journalRecord(t, s.store(t, s.ring2), journalConn("c2"), "tag-c2")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(rec2[:10]); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)

		if out, err := s.retire(t, 1); err != nil {
			t.Errorf("keys retire -id 1 with the journal's records under key 2: %v\n%s", err, out)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
			t.Errorf("keys retire changed the journal: %d bytes, was %d", len(after), len(before))
		}
		// The Hold finishes its write: both records are intact.
		if _, err := f.Write(rec2[10:]); err != nil {
			t.Fatal(err)
		}
		held, err := tokenstore.PendingInJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		want := []tokenstore.HeldRecord{{Tag: "tag-c1", KeyID: 2}, {Tag: "tag-c2", KeyID: 2}}
		if diff := cmp.Diff(want, held); diff != "" {
			t.Errorf("journal after retire and the Hold's end mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("no journal", func(t *testing.T) {
		s := newRetireSetup(t)
		if out, err := s.retire(t, 1); err != nil {
			t.Errorf("keys retire -id 1 with no journal: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "journal")); !os.IsNotExist(err) {
			t.Errorf("keys retire created a journal (stat err = %v), want none", err)
		}
		if got, want := s.keyIDs(t), []uint32{2}; !cmp.Equal(got, want) {
			t.Errorf("key ids after retire = %v, want %v", got, want)
		}
	})

	t.Run("unreadable journal", func(t *testing.T) {
		s := newRetireSetup(t)
		if err := os.Mkdir(filepath.Join(s.dir, "journal"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := s.retire(t, 1)
		if err == nil || !strings.Contains(err.Error(), "cannot tell whether the journal") {
			t.Errorf("keys retire -id 1 with an unreadable journal: err = %v, want a refusal", err)
		}
		if got, want := s.keyIDs(t), []uint32{2, 1}; !cmp.Equal(got, want) {
			t.Errorf("key ids after a refused retire = %v, want %v", got, want)
		}
	})

	t.Run("record under the key", func(t *testing.T) {
		s := newRetireSetup(t)
		j, err := s.store(t, s.ring1).OpenJournal(filepath.Join(s.dir, "journal"))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if err := j.Hold(journalConn("c1"), "tag-c1"); err != nil {
			t.Fatal(err)
		}
		_, err = s.retire(t, 1)
		if err == nil || !strings.Contains(err.Error(), "journal") || !strings.Contains(err.Error(), "under key 1") {
			t.Errorf("keys retire -id 1 with a journal record under key 1: err = %v, want a refusal", err)
		}
		if got, want := s.keyIDs(t), []uint32{2, 1}; !cmp.Equal(got, want) {
			t.Errorf("key ids after a refused retire = %v, want %v", got, want)
		}
	})
}

// journalRecord returns the bytes Hold appends for c, by holding it in a
// journal of its own.
func journalRecord(t *testing.T, store *tokenstore.Store, c finchconnect.Connection, tag string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal")
	j, err := store.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Hold(c, tag); err != nil {
		t.Fatal(err)
	}
	j.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := 4 + int(binary.BigEndian.Uint32(b)); n != len(b) {
		t.Fatalf("journal of one record is %d bytes, its record %d", len(b), n)
	}
	return b
}

// TestKeys_RetireRefusesStagedCallbacks checks that retire looks at the
// callback ledger: a re-authentication whose vault write could not land
// keeps its token there, staged (sealed) for the recovery loop, for up to
// an hour, and Rewrap does not re-seal it.
func TestKeys_RetireRefusesStagedCallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries func(st1, st2 []byte) map[string]any // ledger key → entry
		wantErr bool
	}{
		{name: "staged under the key", wantErr: true, entries: func(st1, _ []byte) map[string]any {
			return map[string]any{"callback/aa": ledgerJSON("exchanged", st1)}
		}},
		{name: "staged under the key, after a page of others", wantErr: true, entries: func(st1, st2 []byte) map[string]any {
			m := map[string]any{"callback/zz": ledgerJSON("exchanged", st1)}
			for i := range 450 {
				m[fmt.Sprintf("callback/a%03d", i)] = ledgerJSON("exchanged", st2)
			}
			return m
		}},
		{name: "staged under another key", entries: func(_, st2 []byte) map[string]any {
			return map[string]any{"callback/aa": ledgerJSON("exchanged", st2)}
		}},
		{name: "settled", entries: func(_, _ []byte) map[string]any {
			return map[string]any{"callback/aa": ledgerJSON("done", nil)}
		}},
		{name: "under another prefix", entries: func(st1, _ []byte) map[string]any {
			return map[string]any{"other/aa": ledgerJSON("exchanged", st1)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRetireSetup(t)
			store1 := s.store(t, s.ring1)
			st1, err := store1.SealStaged(journalConn("c1"))
			if err != nil {
				t.Fatal(err)
			}
			st2, err := s.store(t, s.ring2).SealStaged(journalConn("c1"))
			if err != nil {
				t.Fatal(err)
			}
			for key, e := range tt.entries(st1, st2) {
				raw, _ := json.Marshal(e)
				if err := store1.Backend().Claim(context.Background(), key, raw, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			_, err = s.retire(t, 1)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "staged in the callback ledger under key 1") || !strings.Contains(err.Error(), "restart a server") {
					t.Errorf("keys retire -id 1: err = %v, want a refusal that says what to do", err)
				}
				if got, want := s.keyIDs(t), []uint32{2, 1}; !cmp.Equal(got, want) {
					t.Errorf("key ids after a refused retire = %v, want %v", got, want)
				}
				return
			}
			if err != nil {
				t.Errorf("keys retire -id 1: %v", err)
			}
			if got, want := s.keyIDs(t), []uint32{2}; !cmp.Equal(got, want) {
				t.Errorf("key ids after retire = %v, want %v", got, want)
			}
		})
	}
}

// ledgerJSON is a callback-ledger entry as package server writes it
// (server/flow.go ledgerEntry): the staged token is the "sealed" field,
// base64 as encoding/json writes []byte.
func ledgerJSON(status string, sealed []byte) map[string]any {
	e := map[string]any{"status": status, "state": "ab", "browser": "cd", "connection_id": "c1", "started": 1, "exchanged": 2}
	if sealed != nil {
		e["sealed"] = sealed
	}
	return e
}

// TestKeys_RetireChecksID checks -id: it must name a key of the file.
func TestKeys_RetireChecksID(t *testing.T) {
	for _, tt := range []struct {
		id      string
		wantErr string
	}{
		{id: "3", wantErr: "key 3 is not in"},
		{id: "4294967297", wantErr: "not a key id"}, // 2³²+1, which uint32 would wrap to 1
	} {
		s := newRetireSetup(t)
		var out bytes.Buffer
		err := run(t.Context(), []string{"finchconnect", "keys", "retire", "-id", tt.id, "-data-dir", s.dir}, func(string) string { return "" }, nil, &out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("keys retire -id %s: err = %v, want one saying %q", tt.id, err, tt.wantErr)
		}
		if got, want := s.keyIDs(t), []uint32{2, 1}; !cmp.Equal(got, want) {
			t.Errorf("key ids after keys retire -id %s = %v, want %v", tt.id, got, want)
		}
	}
}
