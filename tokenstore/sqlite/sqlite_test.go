package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

// mustOpen opens a fresh database in a temporary folder and closes it when
// the test ends.
func mustOpen(tb testing.TB, opts options) *Backend {
	tb.Helper()
	b, err := open(tb.Context(), filepath.Join(tb.TempDir(), "sub", "vault.db"), opts)
	if err != nil {
		tb.Fatalf("open() err = %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

func TestBackend_Conformance(t *testing.T) {
	tokenstoretest.RunClocked(t, func(t *testing.T, now func() time.Time) tokenstore.Backend {
		b := mustOpen(t, options{})
		b.Now = now
		return b
	})
}

// The shared-pool layout is only kept for the benchmarks' comparison, but
// it must be just as correct.
func TestBackend_ConformanceSharedPool(t *testing.T) {
	tokenstoretest.RunClocked(t, func(t *testing.T, now func() time.Time) tokenstore.Backend {
		b := mustOpen(t, options{sharedPool: true})
		b.Now = now
		return b
	})
}

func TestBackend_Store(t *testing.T) {
	tokenstoretest.RunStore(t, func(t *testing.T) tokenstore.Backend { return mustOpen(t, options{}) })
}

func TestOpen_permissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "vault.db")
	b, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Claim(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{filepath.Dir(dir), 0o700},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Errorf("Stat(%s) err = %v", filepath.Base(tt.path), err)
			continue
		}
		if got := fi.Mode().Perm(); got != tt.want {
			t.Errorf("mode of %s = %04o, want %04o", filepath.Base(tt.path), got, tt.want)
		}
	}
}

func TestOpen_pragmas(t *testing.T) {
	b := mustOpen(t, options{})
	ctx := t.Context()
	// The committer holds the one write connection, so the write side's
	// pragmas are read through a write.
	viaWriter := func(pragma string) (got string, err error) {
		err = b.write(ctx, func(ctx context.Context, x execer) error {
			return x.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got)
		})
		return got, err
	}
	viaReader := func(pragma string) (got string, err error) {
		err = b.r.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got)
		return got, err
	}
	tests := []struct {
		conn   string
		query  func(string) (string, error)
		pragma string
		want   string
	}{
		{"writer", viaWriter, "journal_mode", "wal"},
		{"writer", viaWriter, "synchronous", "2"}, // FULL
		{"writer", viaWriter, "foreign_keys", "1"},
		{"writer", viaWriter, "busy_timeout", "5000"},
		{"reader", viaReader, "journal_mode", "wal"},
		{"reader", viaReader, "query_only", "1"},
		{"reader", viaReader, "busy_timeout", "5000"},
		{"writer", viaWriter, "mmap_size", fmt.Sprint(mmapSize(0))},
		{"reader", viaReader, "mmap_size", fmt.Sprint(mmapSize(0))},
	}
	for _, tt := range tests {
		got, err := tt.query(tt.pragma)
		if err != nil {
			t.Fatalf("%s: PRAGMA %s err = %v", tt.conn, tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("%s: PRAGMA %s = %q, want %q", tt.conn, tt.pragma, got, tt.want)
		}
	}
	if _, err := b.r.ExecContext(ctx, "DELETE FROM entries"); err == nil {
		t.Error("a write through the read pool succeeded, want query_only to refuse it")
	}
}

func TestOpen_errors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(file, "under-a-file.db")} {
		if b, err := Open(t.Context(), path); err == nil {
			b.Close()
			t.Errorf("Open(%q) err = nil, want an error", path)
		}
	}
	// A file that is not a database.
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Open(t.Context(), junk); err == nil {
		b.Close()
		t.Errorf("Open(a file that is not a database) err = nil, want an error")
	}
}

func TestOpen_reopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?#% name.db")
	ctx := t.Context()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutRow(ctx, tokenstore.Row{ID: "r", Status: "connected", Meta: []byte("{}"), Sealed: []byte{1}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given (special characters mangled?): %v", err)
	}
	for range 2 {
		b, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := b.GetRow(ctx, "r"); err != nil || r.Version != 1 {
			t.Errorf("GetRow after reopen = %+v, %v", r, err)
		}
		if v, err := b.Load(ctx, "k"); err != nil || string(v) != "v" {
			t.Errorf("Load after reopen = %q, %v", v, err)
		}
		var n int
		if err := b.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != 1 {
			t.Errorf("schema_migrations rows = %d, %v; want 1", n, err)
		}
		b.Close()
	}
}

// Two Backends on one file stand in for two processes: SQLite's file locks,
// not the Go-side single writer, must keep claims exclusive.
func TestBackend_twoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var bs []*Backend
	for range 3 {
		b, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs = append(bs, b)
	}
	for round := range 5 {
		key := fmt.Sprintf("code-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 30)
		for i := range errs {
			wg.Go(func() { errs[i] = bs[i%len(bs)].Claim(t.Context(), key, []byte{byte(i)}, time.Minute) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, finchconnect.ErrConflict):
				t.Errorf("claim %d err = %v, want nil or ErrConflict", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("round %d: %d claims won across three handles, want exactly 1", round, wins)
		}
	}
	// Version CAS across handles.
	if _, err := bs[0].PutRow(t.Context(), tokenstore.Row{ID: "r", Meta: []byte("{}"), Sealed: []byte{1}}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := bs[1].PutRow(t.Context(), tokenstore.Row{ID: "r", Meta: []byte("{}"), Sealed: []byte{2}}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := bs[2].PutRow(t.Context(), tokenstore.Row{ID: "r", Meta: []byte("{}"), Sealed: []byte{3}}, 1); !errors.Is(err, finchconnect.ErrConflict) {
		t.Errorf("PutRow(stale expect) through another handle err = %v, want ErrConflict", err)
	}
}

func TestBackend_expiryAndPurge(t *testing.T) {
	b := mustOpen(t, options{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Now = func() time.Time { return now }
	ctx := t.Context()
	for i := range 10 {
		if err := b.Claim(ctx, fmt.Sprintf("old-%d", i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Claim(ctx, "forever", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := b.Load(ctx, "old-0"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Load at the expiry instant err = %v, want ErrNotFound", err)
	}
	if es, err := b.Scan(ctx, "", "", 0); err != nil || len(es) != 1 || es[0].Key != "forever" {
		t.Errorf("Scan after expiry = %v, %v; want only forever", es, err)
	}
	// Expired rows are still in the table until a purge runs.
	count := func() int {
		var n int
		if err := b.r.QueryRowContext(ctx, "SELECT count(*) FROM entries").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 11 {
		t.Fatalf("entries before purge = %d, want 11", n)
	}
	for i := range purgeEvery {
		if err := b.Claim(ctx, fmt.Sprintf("new-%d", i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != purgeEvery+1 {
		t.Errorf("entries after %d writes = %d, want %d: the expired ones purged", purgeEvery, n, purgeEvery+1)
	}
}

// The listing queries must use the indexes, not scan the table.
func TestBackend_queryPlans(t *testing.T) {
	b := mustOpen(t, options{})
	tests := []struct {
		query string
		args  []any
		want  string
	}{
		{"SELECT id FROM connections WHERE customer_id = ? ORDER BY id LIMIT 10", []any{"c"}, "connections_customer"},
		{"SELECT id FROM connections WHERE provider_id = ? AND id > ? ORDER BY id LIMIT 10", []any{"p", "a"}, "connections_provider"},
		{"SELECT id FROM connections WHERE status = ? ORDER BY id LIMIT 10", []any{"s"}, "connections_status"},
		{"SELECT key FROM entries WHERE key >= ? AND key < ? ORDER BY key LIMIT 10", []any{"a", "b"}, "PRIMARY KEY"},
	}
	for _, tt := range tests {
		rows, err := b.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tt.query, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, tt.want) || strings.Contains(joined, "TEMP B-TREE") {
			t.Errorf("plan for %q = %q, want it to use %s without a sort", tt.query, joined, tt.want)
		}
	}
}

func TestBackend_cancelledContext(t *testing.T) {
	b := mustOpen(t, options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Claim(ctx, "k", []byte("v"), 0); err == nil {
		t.Error("Claim(cancelled ctx) err = nil, want an error")
	}
	if _, err := b.Load(t.Context(), "k"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Load after a cancelled Claim err = %v, want ErrNotFound", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"a", "b", true},
		{"cb:", "cb;", true},
		{"a\xff", "b", true},
		{"\xff\xff", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := prefixEnd(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// A conditional PutRow first tries the update that leaves the indexes
// alone; whatever changes, the row and the indexes must end up right, and a
// stale version must still be refused.
func TestBackend_PutRowConditionalPaths(t *testing.T) {
	ctx := t.Context()
	base := tokenstore.Row{ID: "p", CustomerID: "c1", ProviderID: "gusto", Status: "connected", Meta: []byte(`{}`), Sealed: []byte("s0")}
	tests := []struct {
		name   string
		change func(r *tokenstore.Row)
	}{
		{"sealed", func(r *tokenstore.Row) { r.Sealed = []byte("s1") }},
		{"meta", func(r *tokenstore.Row) { r.Meta = []byte(`{"a":1}`) }},
		{"status", func(r *tokenstore.Row) { r.Status = "reauth" }},
		{"customer", func(r *tokenstore.Row) { r.CustomerID = "c2" }},
		{"provider", func(r *tokenstore.Row) { r.ProviderID = "adp_run" }},
		{"nothing", func(r *tokenstore.Row) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustOpen(t, options{})
			if _, err := b.PutRow(ctx, base, 0); err != nil {
				t.Fatal(err)
			}
			next := base
			tt.change(&next)
			if _, err := b.PutRow(ctx, next, 2); !errors.Is(err, finchconnect.ErrConflict) {
				t.Errorf("PutRow(expect 2 of a row at 1) err = %v, want ErrConflict", err)
			}
			if v, err := b.PutRow(ctx, next, 1); err != nil || v != 2 {
				t.Fatalf("PutRow(expect 1) = %d, %v; want version 2", v, err)
			}
			got, err := b.GetRow(ctx, "p")
			next.Version = 2
			if err != nil || got.CustomerID != next.CustomerID || got.ProviderID != next.ProviderID || got.Status != next.Status ||
				!bytes.Equal(got.Meta, next.Meta) || !bytes.Equal(got.Sealed, next.Sealed) || got.Version != 2 {
				t.Errorf("GetRow = %+v, %v; want %+v", got, err, next)
			}
			for _, f := range []tokenstore.Filter{{CustomerID: next.CustomerID}, {ProviderID: next.ProviderID}, {Status: next.Status}} {
				if rows, err := b.ListRows(ctx, f); err != nil || len(rows) != 1 {
					t.Errorf("ListRows(%+v) = %d rows, %v; want the row", f, len(rows), err)
				}
			}
			for _, f := range []tokenstore.Filter{{CustomerID: "c1"}, {ProviderID: "gusto"}, {Status: "connected"}} {
				moved := (f.CustomerID != "" && next.CustomerID != "c1") || (f.ProviderID != "" && next.ProviderID != "gusto") || (f.Status != "" && next.Status != "connected")
				if rows, err := b.ListRows(ctx, f); err != nil || (len(rows) == 0) != moved {
					t.Errorf("ListRows(%+v) = %d rows, %v; the row moved: %v", f, len(rows), err, moved)
				}
			}
		})
	}
}

// The update that keeps the indexed columns must not touch an index: that
// is what makes it cheaper (Store.Rewrap runs it for every row). SQLite
// opens a write cursor on each b-tree a statement may change; a WITHOUT
// ROWID table is one b-tree, each index another.
func TestBackend_updateKeepIndexedLeavesIndexes(t *testing.T) {
	b := mustOpen(t, options{})
	writeCursors := func(query string) int {
		rows, err := b.r.QueryContext(t.Context(), "EXPLAIN "+query, "p", "c", "g", "s", []byte{}, []byte{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(vals[1]) == "OpenWrite" {
				n++
			}
		}
		return n
	}
	if n := writeCursors("UPDATE connections SET status = ?4, sealed = ?6 WHERE id = ?1 AND version = ?7"); n != 2 {
		t.Errorf("an update of status opens %d write cursors, want 2 (the table, the status index)", n)
	}
	if n := writeCursors(updateKeepIndexed); n != 1 {
		t.Errorf("updateKeepIndexed opens %d write cursors, want 1: the table alone", n)
	}
}

func TestOpenWith_mmapSize(t *testing.T) {
	for _, tt := range []struct {
		set  int64
		want string
	}{
		{0, "0"}, // the default: no map
		{-1, "0"},
		{64 << 20, "67108864"},
	} {
		b, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "v.db"), Options{MmapSize: tt.set})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = b.r.QueryRowContext(t.Context(), "PRAGMA mmap_size").Scan(&got)
		b.Close()
		if err != nil || got != tt.want {
			t.Errorf("OpenWith(MmapSize %d): PRAGMA mmap_size = %q, %v; want %s", tt.set, got, err, tt.want)
		}
	}
}
