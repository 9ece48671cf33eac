package records

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKeyring(t *testing.T, id uint32, older ...keyring.Key) (*keyring.Keyring, keyring.Key) {
	t.Helper()
	k, err := keyring.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(k, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr, k
}

func openStore(t *testing.T, path string, kr *keyring.Keyring, c clock.Clock) *Store {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path, kr, Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type op struct {
	Op   Op
	Kind Kind
	ID   string
}

func ops(cs []Change) []op {
	var out []op
	for _, c := range cs {
		out = append(out, op{c.Op, c.Kind, c.RecordID})
	}
	return out
}

// syncAll runs one complete sync of items, listed as one page per kind.
func syncAll(t *testing.T, s *Store, conn string, items []Item, kinds ...Kind) []Change {
	t.Helper()
	ctx := context.Background()
	y, resumed, err := s.Begin(ctx, conn)
	if err != nil || resumed {
		t.Fatalf("Begin = %v, %v; want a new run", resumed, err)
	}
	for _, k := range kinds {
		var page []Item
		for _, it := range items {
			if it.Kind == k {
				page = append(page, it)
			}
		}
		if err := y.Stage(ctx, string(k), page, Checkpoint{Done: true}); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := y.Commit(ctx, kinds)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func person(id, body string) Item { return Item{Kind: Individual, ID: id, Body: []byte(body)} }

func feed(t *testing.T, s *Store, conn, cursor string, limit int) ([]op, string) {
	t.Helper()
	var all []op
	for {
		p, err := s.Changes(context.Background(), conn, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Changes) > limit {
			t.Fatalf("page of %d, limit %d", len(p.Changes), limit)
		}
		all = append(all, ops(p.Changes)...)
		cursor = p.NextCursor
		if !p.HasMore {
			return all, cursor
		}
	}
}

// TestChangeFeed: a first sync reports every record as added; a second
// with the same content (keys reordered, spacing changed) reports nothing;
// a hire, a raise and a termination are each reported exactly once, and
// the feed read page by page yields each change once, in order.
func TestChangeFeed(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"), kr, clock.NewFake(t0))
	day1 := []Item{
		{Kind: Company, ID: "co", Body: []byte(`{"legal_name":"Acme"}`)},
		person("a", `{"name":"Ann","income":{"amount":100}}`),
		person("b", `{"name":"Bob","income":{"amount":200}}`),
		person("c", `{"name":"Cy","income":{"amount":300}}`),
	}
	got := ops(syncAll(t, s, "conn1", day1, Company, Individual))
	want := []op{{Added, Company, "co"}, {Added, Individual, "a"}, {Added, Individual, "b"}, {Added, Individual, "c"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("first sync (-want +got):\n%s", diff)
	}
	same := []Item{
		{Kind: Company, ID: "co", Body: []byte(` { "legal_name" : "Acme" } `)},
		person("a", `{"income":{"amount":100},"name":"Ann"}`),
		person("b", `{"name":"Bob","income":{"amount":200}}`),
		person("c", `{"name":"Cy",  "income":{"amount":300}}`),
	}
	if got := syncAll(t, s, "conn1", same, Company, Individual); len(got) != 0 {
		t.Fatalf("unchanged sync reported %v, want nothing", ops(got))
	}
	day2 := []Item{
		{Kind: Company, ID: "co", Body: []byte(`{"legal_name":"Acme"}`)},
		person("a", `{"name":"Ann","income":{"amount":150}}`), // raise
		person("b", `{"name":"Bob","income":{"amount":200}}`),
		person("d", `{"name":"Di","income":{"amount":400}}`), // hire; c terminated
	}
	got = ops(syncAll(t, s, "conn1", day2, Company, Individual))
	want = []op{{Modified, Individual, "a"}, {Removed, Individual, "c"}, {Added, Individual, "d"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("day 2 (-want +got):\n%s", diff)
	}
	if _, err := s.Get(context.Background(), "conn1", Individual, "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(removed) err = %v, want ErrNotFound", err)
	}
	body, err := s.Get(context.Background(), "conn1", Individual, "a")
	if err != nil || string(body) != `{"income":{"amount":150},"name":"Ann"}` {
		t.Errorf("Get(a) = %s, %v; want the raised, canonical body", body, err)
	}

	all, cursor := feed(t, s, "conn1", "", 2)
	wantAll := []op{{Added, Company, "co"}, {Added, Individual, "a"}, {Added, Individual, "b"}, {Added, Individual, "c"},
		{Modified, Individual, "a"}, {Removed, Individual, "c"}, {Added, Individual, "d"}}
	if diff := cmp.Diff(wantAll, all); diff != "" {
		t.Fatalf("feed (-want +got):\n%s", diff)
	}
	p, err := s.Changes(context.Background(), "conn1", cursor, 2)
	if err != nil || len(p.Changes) != 0 || p.HasMore || p.NextCursor != cursor {
		t.Errorf("Changes at the end = %+v, %v; want empty, same cursor %q", p, err, cursor)
	}
	if p, _ := s.Changes(context.Background(), "other", "", 10); len(p.Changes) != 0 {
		t.Errorf("another connection's feed has %v", ops(p.Changes))
	}
	if _, err := s.Changes(context.Background(), "conn1", "x", 10); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor err = %v", err)
	}
}

// TestRemovalOnlyForCompleteKinds: a kind the run did not list completely
// loses nothing.
func TestRemovalOnlyForCompleteKinds(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"), kr, nil)
	syncAll(t, s, "c", []Item{person("a", `{}`), {Kind: Payment, ID: "p1", Body: []byte(`{}`)}}, Individual, Payment)
	got := syncAll(t, s, "c", []Item{person("a", `{}`)}, Individual)
	if len(got) != 0 {
		t.Fatalf("got %v, want no change", ops(got))
	}
}

// TestInvisibleUntilCommitAndResume: staged pages are not in the feed; a
// run with an unfinished product cannot commit; a "crash" (the store closed
// mid-run) resumes from the checkpoint, and a page staged twice is
// reported once.
func TestInvisibleUntilCommitAndResume(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, 1)
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := OpenSQLite(ctx, path, kr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	y, _, err := s.Begin(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Stage(ctx, "individual", []Item{person("a", `{"n":1}`), person("b", `{"n":2}`)}, Checkpoint{Next: "page2"}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Changes(ctx, "c", "", 10); len(p.Changes) != 0 {
		t.Fatalf("staged changes visible before commit: %v", ops(p.Changes))
	}
	if _, err := y.Commit(ctx, []Kind{Individual}); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Commit of an unfinished run err = %v, want ErrIncomplete", err)
	}
	s.Close() // the crash

	s = openStore(t, path, kr, nil)
	y, resumed, err := s.Begin(ctx, "c")
	if err != nil || !resumed {
		t.Fatalf("Begin after crash = %v, %v; want the open run", resumed, err)
	}
	cps, err := y.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]Checkpoint{"individual": {Next: "page2"}}, cps); diff != "" {
		t.Fatalf("checkpoints (-want +got):\n%s", diff)
	}
	// The last page is fetched twice (a crash after Stage, before the
	// caller saw it succeed), then the listing finishes.
	for range 2 {
		if err := y.Stage(ctx, "individual", []Item{person("b", `{"n":2}`), person("c", `{"n":3}`)}, Checkpoint{Done: true}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := y.Commit(ctx, []Kind{Individual})
	if err != nil {
		t.Fatal(err)
	}
	want := []op{{Added, Individual, "a"}, {Added, Individual, "b"}, {Added, Individual, "c"}}
	if diff := cmp.Diff(want, ops(got)); diff != "" {
		t.Fatalf("changes (-want +got):\n%s", diff)
	}
	if err := y.Stage(ctx, "individual", nil, Checkpoint{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Stage after Commit err = %v, want ErrClosed", err)
	}
	if _, err := y.Commit(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("second Commit err = %v, want ErrClosed", err)
	}
}

// TestAbandon: an abandoned run records nothing and the next run is new.
func TestAbandon(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, 1)
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"), kr, nil)
	y, _, _ := s.Begin(ctx, "c")
	if err := y.Stage(ctx, "individual", []Item{person("a", `{}`)}, Checkpoint{Done: true}); err != nil {
		t.Fatal(err)
	}
	if err := y.Abandon(ctx); err != nil {
		t.Fatal(err)
	}
	if got := syncAll(t, s, "c", nil, Individual); len(got) != 0 {
		t.Fatalf("after Abandon, a new run reported %v", ops(got))
	}
}

func rawFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-journal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestNoPlaintextAndShred: personal fields are nowhere in the raw files;
// Shred makes the records unreadable before it purges them (the sealed
// data key is gone from the files while the sealed bodies are still
// there), then purges them; the other connection is untouched.
func TestNoPlaintextAndShred(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, 1)
	path := filepath.Join(t.TempDir(), "r.db")
	s := openStore(t, path, kr, nil)
	const ssn, name = "078-05-1120", "Zebediah Quux"
	for _, conn := range []string{"gone", "kept"} {
		syncAll(t, s, conn, []Item{person("a", `{"name":"`+name+`","ssn":"`+ssn+`"}`)}, Individual)
	}
	raw := rawFiles(t, path)
	for _, secret := range []string{ssn, name} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("%q in plaintext in the store's files", secret)
		}
	}
	var sealedKey, sealedBody []byte
	if err := s.db.QueryRow(`SELECT sealed FROM data_keys WHERE connection_id = 'gone'`).Scan(&sealedKey); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`SELECT body FROM records WHERE connection_id = 'gone'`).Scan(&sealedBody); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rawFiles(t, path), sealedKey) {
		t.Fatal("sealed data key not found in the raw files: the check below would prove nothing")
	}
	checked := false
	s.afterKeyDestroyed = func() {
		checked = true
		raw := rawFiles(t, path)
		if bytes.Contains(raw, sealedKey) {
			t.Error("sealed data key still in the raw files after it was destroyed")
		}
		if !bytes.Contains(raw, sealedBody) {
			t.Error("sealed body already gone: this step should only have destroyed the key")
		}
		if _, err := s.Get(ctx, "gone", Individual, "a"); err == nil {
			t.Error("record still readable after its data key was destroyed")
		}
	}
	if err := s.Shred(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("Shred did not pass the key-destroyed point")
	}
	if bytes.Contains(rawFiles(t, path), sealedBody) {
		t.Error("sealed body still in the raw files after Shred")
	}
	if ids, _ := s.IDs(ctx, "gone", Individual); len(ids) != 0 {
		t.Errorf("shredded connection still lists %v", ids)
	}
	if p, _ := s.Changes(ctx, "gone", "", 10); len(p.Changes) != 0 {
		t.Errorf("shredded connection's feed has %v", ops(p.Changes))
	}
	if _, err := s.Get(ctx, "kept", Individual, "a"); err != nil {
		t.Errorf("the other connection's record: %v", err)
	}
	s.afterKeyDestroyed = nil
	if err := s.Shred(ctx, "gone"); err != nil {
		t.Errorf("second Shred: %v", err)
	}
	// Connected again: a new data key, and the feed continues after the
	// old cursor instead of starting over below it.
	got := syncAll(t, s, "gone", []Item{person("a", `{}`)}, Individual)
	if len(got) != 1 || got[0].Seq != 2 || got[0].Op != Added {
		t.Errorf("sync after Shred = %+v; want one added change, seq 2", got)
	}
	if body, err := s.Get(ctx, "gone", Individual, "a"); err != nil || string(body) != `{}` {
		t.Errorf("Get after re-sync = %s, %v", body, err)
	}
}

// TestRewrap: rotation re-seals data keys only; records sealed before stay
// byte for byte and open once the old key is dropped.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	kr1, k1 := newKeyring(t, 1)
	path := filepath.Join(t.TempDir(), "r.db")
	s := openStore(t, path, kr1, nil)
	syncAll(t, s, "c", []Item{person("a", `{"x":1}`)}, Individual)
	var before []byte
	s.db.QueryRow(`SELECT body FROM records`).Scan(&before)
	s.Close()

	kr2, k2 := newKeyring(t, 2, k1)
	s = openStore(t, path, kr2, nil)
	n, err := s.Rewrap(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Rewrap = %d, %v; want 1", n, err)
	}
	var after []byte
	var keyID uint32
	s.db.QueryRow(`SELECT body FROM records`).Scan(&after)
	s.db.QueryRow(`SELECT key_id FROM data_keys`).Scan(&keyID)
	if !bytes.Equal(before, after) || keyID != 2 {
		t.Fatalf("after Rewrap: body changed %v, key id %d; want the same body, key 2", !bytes.Equal(before, after), keyID)
	}
	if n, _ := s.Rewrap(ctx); n != 0 {
		t.Errorf("second Rewrap re-sealed %d", n)
	}
	s.Close()

	only2, err := keyring.New(k2)
	if err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, only2, nil)
	if body, err := s.Get(ctx, "c", Individual, "a"); err != nil || string(body) != `{"x":1}` {
		t.Fatalf("Get under the new key only = %s, %v", body, err)
	}
}

// TestBodyBoundToRow: a sealed body moved to another row does not open.
func TestBodyBoundToRow(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, 1)
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"), kr, nil)
	syncAll(t, s, "c", []Item{person("a", `{"ssn":"1"}`), person("b", `{"ssn":"2"}`)}, Individual)
	if _, err := s.db.Exec(`UPDATE records SET body = (SELECT body FROM records WHERE record_id = 'a') WHERE record_id = 'b'`); err != nil {
		t.Fatal(err)
	}
	if body, err := s.Get(ctx, "c", Individual, "b"); err == nil {
		t.Fatalf("moved body opened as %s", body)
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"b":1,"a":[true,null,"x"]}`, `{"a":[true,null,"x"],"b":1}`},
		{` {"a" : 1.50 } `, `{"a":1.50}`},
		{`{"h":"<&>"}`, `{"h":"<&>"}`},
	} {
		got, err := Canonical([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `{`, `{} {}`} {
		if _, err := Canonical([]byte(bad)); err == nil {
			t.Errorf("Canonical(%q) succeeded", bad)
		}
	}
}
