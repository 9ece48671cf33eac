// Package tokenstoretest holds the conformance suite that every
// [tokenstore.Backend] must pass, in the manner of testing/fstest.TestFS and
// testing/slogtest.Run.
//
// A backend's test file is a few lines:
//
//	func TestConformance(t *testing.T) {
//		tokenstoretest.Run(t, func(t *testing.T) tokenstore.Backend {
//			b, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// The newBackend function must return an EMPTY backend that shares no state
// with any other backend it returned: a fresh file, database schema or key
// prefix each time. The suite runs its subtests in parallel, so newBackend
// must be safe to call from several goroutines, and the backend should be
// closed through t.Cleanup of the t it is given (the suite never closes it).
//
// Expiry is tested with real time under [Run], because Redis and PostgreSQL
// expire entries by their own clocks: a few subtests sleep for about two
// seconds, in parallel. A backend that reads an injected clock runs under
// [RunClocked] instead, and its expiry subtests move a fake clock and never
// sleep.
//
// Beyond the doc comments of [tokenstore.Backend], the suite pins down these
// details of the contract:
//   - Row.Meta and Row.Sealed, and entry values, round trip byte for byte
//     (store them as BLOB/bytea, never as a JSON type that re-encodes them);
//     an empty slice may come back as nil.
//   - Rows are ordered by ID comparing bytes, as Go compares strings (in
//     PostgreSQL use COLLATE "C"); Scan orders keys the same way.
//   - A write that inserts a row (none is stored under its id, never was or
//     was deleted) gives it the caller's Row.Version if that is positive,
//     else 1; every other write adds 1 to the stored version, whatever
//     Row.Version says. Versions up to 2^53 are kept exactly (Redis's Lua
//     counts in doubles).
//   - Prefixes are literal: '%', '_' and '*' in a Scan prefix match only
//     themselves.
//   - Entry.ExpiresAt is zero for an entry that never expires, and the
//     expiry time (to within a second) otherwise.
//   - Every error a caller branches on matches finchconnect.ErrNotFound or
//     finchconnect.ErrConflict under errors.Is.
package tokenstoretest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Run tests the backends that newBackend returns against the
// [tokenstore.Backend] contract. Each subtest calls newBackend once, with its
// own *testing.T, and expects an empty backend. Run returns when every
// subtest has finished.
func Run(t *testing.T, newBackend func(t *testing.T) tokenstore.Backend) {
	t.Helper()
	run(t, func(t *testing.T, _ func() time.Time) tokenstore.Backend { return newBackend(t) }, false)
}

// RunClocked is [Run] for a backend that judges expiry by an injected
// clock (Memory.Now, sqlite's Backend.Now): each subtest passes newBackend
// a clock of its own, set to the real time when the subtest starts, and
// the expiry subtests move it forward instead of sleeping until a time to
// live has passed. The backend must read the time only through now.
func RunClocked(t *testing.T, newBackend func(t *testing.T, now func() time.Time) tokenstore.Backend) {
	t.Helper()
	run(t, newBackend, true)
}

func run(t *testing.T, newBackend func(t *testing.T, now func() time.Time) tokenstore.Backend, fake bool) {
	t.Helper()
	// A clock-free subtest is adapted to the common signature.
	plain := func(fn func(t *testing.T, b tokenstore.Backend)) func(*testing.T, tokenstore.Backend, *expiryClock) {
		return func(t *testing.T, b tokenstore.Backend, _ *expiryClock) { fn(t, b) }
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b tokenstore.Backend, c *expiryClock)
	}{
		// The subtests that let a time to live pass come first: see below.
		{"ClaimAll", testClaimAll},
		{"ClaimAllIf", testClaimAllIf},
		{"PutRowSwapExpiry", testPutRowSwapExpiry},
		{"TxnExpiry", testTxnExpiry},
		{"ScanExpiresAt", testScanExpiresAt},
		{"ExpiryClaimLoad", testExpiryClaimLoad},
		{"ExpirySwap", testExpirySwap},
		{"ExpiryScan", testExpiryScan},
		{"ExpiryScanRacesReclaim", testExpiryScanRacesReclaim},
		{"Ping", plain(testPing)},
		{"RowRoundTrip", plain(testRowRoundTrip)},
		{"RowBinaryAndLarge", plain(testRowBinaryAndLarge)},
		{"RowNotFound", plain(testRowNotFound)},
		{"RowDelete", plain(testRowDelete)},
		{"PutRowVersions", plain(testPutRowVersions)},
		{"PutRowStartVersion", plain(testPutRowStartVersion)},
		{"ListRowsFilters", plain(testListRowsFilters)},
		{"ListRowsOrderIsBytewise", plain(testListRowsOrder)},
		{"ListRowsPaging", plain(testListRowsPaging)},
		{"ListRowsDefaultLimit", plain(testListRowsDefaultLimit)},
		{"ListRowsIndexUpdatedOnOverwrite", plain(testListRowsIndexUpdated)},
		{"ClaimLoadForget", plain(testClaimLoadForget)},
		{"Swap", plain(testSwap)},
		{"PutRowSwap", plain(testPutRowSwap)},
		{"EntryBinaryAndLarge", plain(testEntryBinaryAndLarge)},
		{"Scan", plain(testScan)},
		{"ScanPrefixIsLiteral", plain(testScanPrefixLiteral)},
		{"ScanDefaultLimit", plain(testScanDefaultLimit)},
		{"ConcurrentClaim", plain(testConcurrentClaim)},
		{"ConcurrentClaimAll", plain(testConcurrentClaimAll)},
		{"ConcurrentClaimAllOppositeOrder", plain(testConcurrentClaimAllOppositeOrder)},
		{"ConcurrentClaimAllIf", plain(testConcurrentClaimAllIf)},
		{"ConcurrentSwap", plain(testConcurrentSwap)},
		{"Txn", plain(testTxn)},
		{"TxnValidation", plain(testTxnValidation)},
		{"TxnLostAnswer", plain(testTxnLostAnswer)},
		{"ConcurrentTxn", plain(testConcurrentTxn)},
		{"ConcurrentPutRowSwap", plain(testConcurrentPutRowSwap)},
		{"ConcurrentPutRowSameExpect", plain(testConcurrentPutRowExpect)},
		{"ConcurrentPutRowAnyVersion", plain(testConcurrentPutRowAny)},
		{"ConcurrentWritersDifferentRows", plain(testConcurrentDifferentRows)},
	}
	// The group subtest makes Run wait for its parallel subtests, so a
	// caller's deferred cleanup cannot run while they are still going.
	//
	// The first nTimed subtests wait for a time to live to pass. On the
	// real clock they sleep, and a parallel subtest asleep still holds one
	// of go test's -parallel places (GOMAXPROCS, 2 on a small machine), so
	// they would sleep two by two. They run instead as ordinary subtests
	// started together from goroutines, which -parallel does not bound, and
	// sleep once, side by side; the other subtests run in parallel after.
	t.Run("Backend", func(t *testing.T) {
		one := func(t *testing.T, fn func(*testing.T, tokenstore.Backend, *expiryClock)) {
			c := &expiryClock{fake: fake, now: time.Now()}
			b := newBackend(t, c.Now)
			if b == nil {
				t.Fatal("newBackend returned nil")
			}
			fn(t, b, c)
		}
		var wg sync.WaitGroup
		for _, tt := range tests[:nTimed] {
			wg.Go(func() { t.Run(tt.name, func(t *testing.T) { one(t, tt.fn) }) })
		}
		wg.Wait()
		for _, tt := range tests[nTimed:] {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				one(t, tt.fn)
			})
		}
	})
}

// nTimed is how many of run's subtests, at the head of its list, let a
// time to live pass.
const nTimed = 9

// shortTTL is long enough that a check made right after a write sees the
// entry even on a loaded machine, and short enough to keep the suite fast.
const shortTTL = 1500 * time.Millisecond

// expiryClock is a subtest's time. Under [RunClocked] it is a fake that moves
// only when the subtest moves it; under [Run] it is the real clock, and
// moving it means sleeping, because Redis and PostgreSQL expire entries by
// their own clocks.
type expiryClock struct {
	fake bool
	mu   sync.Mutex
	now  time.Time
}

// Now reports the subtest's current time; the backend reads it.
func (c *expiryClock) Now() time.Time {
	if !c.fake {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// passBeyond lets time run to a moment past deadline, which callers take as
// shortTTL after their first write: on the fake clock, 1 ms past it (expiry
// is due at the deadline itself, so the margin only keeps the test off the
// boundary). On the real clock the writes themselves may have landed well
// after the first one (a loaded machine, -race), and the backend counts
// each entry's time to live from when its write arrived, so it waits
// shortTTL from now, plus a margin for the coarse clocks and lazy expiry of
// real backends: every write made before the call has expired by then.
func (c *expiryClock) passBeyond(deadline time.Time) {
	if !c.fake {
		time.Sleep(max(time.Until(deadline), shortTTL) + 300*time.Millisecond)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.Before(deadline) {
		c.now = deadline
	}
	c.now = c.now.Add(time.Millisecond)
}

// sleep lets d pass: the fake clock moves by d, the real one is slept on.
func (c *expiryClock) sleep(d time.Duration) {
	if !c.fake {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var rowCmp = cmpopts.EquateEmpty()

func sampleRow(id string) tokenstore.Row {
	return tokenstore.Row{
		ID:         id,
		CustomerID: "cust-" + id,
		ProviderID: "gusto",
		Status:     finchconnect.StatusConnected,
		// Odd spacing and key order: the backend must keep the bytes, not
		// re-encode them.
		Meta:   []byte(`{"z":1,  "a":"` + id + `"}`),
		Sealed: []byte("\x01\x00\x00\x00\x07sealed-" + id),
	}
}

func mustPutRow(t *testing.T, b tokenstore.Backend, r tokenstore.Row, expect int64) int64 {
	t.Helper()
	v, err := b.PutRow(t.Context(), r, expect)
	if err != nil {
		t.Fatalf("PutRow(%q, expect %d) err = %v, want nil", r.ID, expect, err)
	}
	return v
}

func mustGetRow(t *testing.T, b tokenstore.Backend, id string) tokenstore.Row {
	t.Helper()
	r, err := b.GetRow(t.Context(), id)
	if err != nil {
		t.Fatalf("GetRow(%q) err = %v, want nil", id, err)
	}
	return r
}

func wantErrIs(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s err = %v, want errors.Is(err, %v)", call, err, want)
	}
}

func ids(rows []tokenstore.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

func keys(es []tokenstore.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key
	}
	return out
}

func testPing(t *testing.T, b tokenstore.Backend) {
	if err := b.Ping(t.Context()); err != nil {
		t.Errorf("Ping() err = %v, want nil", err)
	}
}

func testRowRoundTrip(t *testing.T, b tokenstore.Backend) {
	want := sampleRow("conn-1")
	v := mustPutRow(t, b, want, tokenstore.AnyVersion)
	if v != 1 {
		t.Errorf("PutRow(new row) version = %d, want 1", v)
	}
	want.Version = 1
	got := mustGetRow(t, b, want.ID)
	if diff := cmp.Diff(want, got, rowCmp); diff != "" {
		t.Errorf("GetRow(%q) mismatch (-want +got):\n%s", want.ID, diff)
	}

	// The backend must not keep a reference to the caller's slices.
	got.Sealed[0] ^= 0xff
	got.Meta[0] ^= 0xff
	again := mustGetRow(t, b, want.ID)
	if diff := cmp.Diff(want, again, rowCmp); diff != "" {
		t.Errorf("GetRow(%q) after changing a returned slice mismatch (-want +got):\n%s", want.ID, diff)
	}

	// Overwrite every field.
	next := tokenstore.Row{ID: want.ID, CustomerID: "other", ProviderID: "adp_run", Status: finchconnect.StatusReauth, Meta: []byte(`{}`), Sealed: []byte{9, 9}}
	if v := mustPutRow(t, b, next, tokenstore.AnyVersion); v != 2 {
		t.Errorf("PutRow(overwrite) version = %d, want 2", v)
	}
	next.Version = 2
	if diff := cmp.Diff(next, mustGetRow(t, b, want.ID), rowCmp); diff != "" {
		t.Errorf("GetRow(%q) after overwrite mismatch (-want +got):\n%s", want.ID, diff)
	}

	// Odd but legal ids.
	for _, id := range []string{"with space", "ünïcødé-⌘", "a:b/c%d_e*f", strings.Repeat("x", 200)} {
		r := sampleRow(id)
		mustPutRow(t, b, r, 0)
		r.Version = 1
		if diff := cmp.Diff(r, mustGetRow(t, b, id), rowCmp); diff != "" {
			t.Errorf("GetRow(%q) mismatch (-want +got):\n%s", id, diff)
		}
	}
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func largeValue() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func testRowBinaryAndLarge(t *testing.T, b tokenstore.Backend) {
	tests := []struct {
		name   string
		sealed []byte
		meta   []byte
	}{
		{"all byte values", allBytes(), []byte(`{"k":"v"}`)},
		{"empty", []byte{}, []byte{}},
		{"nil", nil, nil},
		{"64 KiB", largeValue(), bytes.Repeat([]byte(`{"pad":"0123456789"}`), 3200)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tokenstore.Row{ID: fmt.Sprintf("bin-%d", i), Status: "connected", Sealed: tt.sealed, Meta: tt.meta}
			mustPutRow(t, b, r, tokenstore.AnyVersion)
			got := mustGetRow(t, b, r.ID)
			if !bytes.Equal(got.Sealed, tt.sealed) {
				t.Errorf("GetRow(%q).Sealed = %d bytes, want the %d bytes written", r.ID, len(got.Sealed), len(tt.sealed))
			}
			if !bytes.Equal(got.Meta, tt.meta) {
				t.Errorf("GetRow(%q).Meta = %d bytes, want the %d bytes written", r.ID, len(got.Meta), len(tt.meta))
			}
			list, err := b.ListRows(t.Context(), tokenstore.Filter{After: fmt.Sprintf("bin-%d", i-1), Limit: 1})
			if err != nil || len(list) != 1 || list[0].ID != r.ID {
				t.Fatalf("ListRows(after bin-%d, limit 1) = %v, %v; want [%s]", i-1, ids(list), err, r.ID)
			}
			if !bytes.Equal(list[0].Sealed, tt.sealed) || !bytes.Equal(list[0].Meta, tt.meta) {
				t.Errorf("ListRows returned %q with different Sealed or Meta bytes than written", r.ID)
			}
		})
	}
}

func testRowNotFound(t *testing.T, b tokenstore.Backend) {
	_, err := b.GetRow(t.Context(), "missing")
	wantErrIs(t, `GetRow("missing")`, err, finchconnect.ErrNotFound)
	err = b.DeleteRow(t.Context(), "missing")
	wantErrIs(t, `DeleteRow("missing")`, err, finchconnect.ErrNotFound)
	rows, err := b.ListRows(t.Context(), tokenstore.Filter{})
	if err != nil || len(rows) != 0 {
		t.Errorf("ListRows(empty backend) = %v, %v; want no rows, nil", ids(rows), err)
	}
}

func testRowDelete(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	mustPutRow(t, b, sampleRow("a"), tokenstore.AnyVersion)
	mustPutRow(t, b, sampleRow("b"), tokenstore.AnyVersion)
	mustPutRow(t, b, sampleRow("a"), tokenstore.AnyVersion) // version 2
	if err := b.DeleteRow(ctx, "a"); err != nil {
		t.Fatalf(`DeleteRow("a") err = %v, want nil`, err)
	}
	_, err := b.GetRow(ctx, "a")
	wantErrIs(t, `GetRow("a") after delete`, err, finchconnect.ErrNotFound)
	wantErrIs(t, `second DeleteRow("a")`, b.DeleteRow(ctx, "a"), finchconnect.ErrNotFound)
	mustGetRow(t, b, "b") // the other row is untouched

	// A row inserted after a delete is a new row: expect=0 ("no row
	// stored") holds again, and with no Version given it starts at 1.
	if v := mustPutRow(t, b, sampleRow("a"), 0); v != 1 {
		t.Errorf(`PutRow("a", expect 0) after delete version = %d, want 1`, v)
	}
	mustPutRow(t, b, sampleRow("a"), 1) // version 2
	stale := mustGetRow(t, b, "a")
	if err := b.DeleteRow(ctx, "a"); err != nil {
		t.Fatalf(`DeleteRow("a") err = %v, want nil`, err)
	}

	// Re-created with a Version above the deleted row's, it starts there,
	// and a writer still holding the deleted row's version cannot write
	// over the new row, however often the new row is written.
	again := sampleRow("a")
	again.Status = finchconnect.StatusReauth
	again.Version = 1000
	if v := mustPutRow(t, b, again, 0); v != 1000 {
		t.Errorf(`PutRow("a", Version 1000, expect 0) after delete version = %d, want 1000`, v)
	}
	for want := int64(1001); want <= 1003; want++ {
		_, err := b.PutRow(ctx, stale, stale.Version)
		wantErrIs(t, fmt.Sprintf("PutRow(the deleted row, expect its version %d) over the re-created row", stale.Version), err, finchconnect.ErrConflict)
		if v := mustPutRow(t, b, again, want-1); v != want {
			t.Errorf(`PutRow("a", expect %d) version = %d, want %d`, want-1, v, want)
		}
	}
	if got := mustGetRow(t, b, "a"); got.Status != finchconnect.StatusReauth || got.Version != 1003 {
		t.Errorf(`GetRow("a") = status %q version %d, want %q 1003: a stale write landed`, got.Status, got.Version, finchconnect.StatusReauth)
	}
}

func testPutRowVersions(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	r := sampleRow("v")

	_, err := b.PutRow(ctx, r, 3)
	wantErrIs(t, "PutRow(absent row, expect 3)", err, finchconnect.ErrConflict)
	_, err = b.GetRow(ctx, r.ID)
	wantErrIs(t, "GetRow after refused insert", err, finchconnect.ErrNotFound)

	if v := mustPutRow(t, b, r, 0); v != 1 {
		t.Errorf("PutRow(absent row, expect 0) version = %d, want 1", v)
	}
	if v := mustPutRow(t, b, r, tokenstore.AnyVersion); v != 2 {
		t.Errorf("PutRow(AnyVersion) version = %d, want 2", v)
	}

	stored := mustGetRow(t, b, r.ID)
	changed := r
	changed.Status = finchconnect.StatusReauth
	changed.Sealed = []byte("other")
	for _, expect := range []int64{0, 1, 3, 100} {
		_, err := b.PutRow(ctx, changed, expect)
		wantErrIs(t, fmt.Sprintf("PutRow(row at version 2, expect %d)", expect), err, finchconnect.ErrConflict)
	}
	if diff := cmp.Diff(stored, mustGetRow(t, b, r.ID), rowCmp); diff != "" {
		t.Errorf("GetRow after refused writes changed (-want +got):\n%s", diff)
	}

	if v := mustPutRow(t, b, changed, 2); v != 3 {
		t.Errorf("PutRow(expect 2) version = %d, want 3", v)
	}
	changed.Version = 3
	if diff := cmp.Diff(changed, mustGetRow(t, b, r.ID), rowCmp); diff != "" {
		t.Errorf("GetRow after PutRow(expect 2) mismatch (-want +got):\n%s", diff)
	}
	_, err = b.PutRow(ctx, r, 2)
	wantErrIs(t, "PutRow(stale expect 2)", err, finchconnect.ErrConflict)
}

// testPutRowStartVersion: the caller's Row.Version is the version of a row
// that a write inserts, if positive, and is ignored by every other write.
func testPutRowStartVersion(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	// A microsecond clock reading, as Store passes: it needs all 16 digits
	// (a Lua number printed with %.14g would lose the last two).
	const micros = 1_772_366_400_123_457
	tests := []struct {
		name    string
		version int64
		expect  int64
		want    int64
	}{
		{"zero, any version", 0, tokenstore.AnyVersion, 1},
		{"zero, expect none", 0, 0, 1},
		{"negative", -5, 0, 1},
		{"one", 1, 0, 1},
		{"42, any version", 42, tokenstore.AnyVersion, 42},
		{"42, expect none", 42, 0, 42},
		{"microseconds", micros, 0, micros},
		{"just under 2^53", 1<<53 - 3, tokenstore.AnyVersion, 1<<53 - 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleRow(fmt.Sprintf("sv-%d", i))
			r.Version = tt.version
			if v := mustPutRow(t, b, r, tt.expect); v != tt.want {
				t.Errorf("PutRow(new row, Version %d, expect %d) version = %d, want %d", tt.version, tt.expect, v, tt.want)
			}
			if got := mustGetRow(t, b, r.ID).Version; got != tt.want {
				t.Errorf("GetRow().Version = %d, want %d", got, tt.want)
			}
			// Writes over a stored row add one, whatever Version says.
			for _, w := range []struct{ version, expect, want int64 }{
				{7, tokenstore.AnyVersion, tt.want + 1},
				{tt.want + 100, tt.want + 1, tt.want + 2},
				{0, tt.want + 2, tt.want + 3},
			} {
				r.Version = w.version
				if v := mustPutRow(t, b, r, w.expect); v != w.want {
					t.Errorf("PutRow(stored row, Version %d, expect %d) version = %d, want %d", w.version, w.expect, v, w.want)
				}
			}
			if got := mustGetRow(t, b, r.ID).Version; got != tt.want+3 {
				t.Errorf("GetRow().Version after three writes = %d, want %d", got, tt.want+3)
			}
		})
	}

	// PutRowSwap inserts the same way.
	r := sampleRow("sv-swap")
	r.Version = micros
	v, _, err := tokenstore.PutRowSwap(ctx, b, r, 0, swapOf("absent", "", "x", time.Hour))
	if err != nil || v != micros {
		t.Errorf("PutRowSwap(new row, Version %d) = %d, %v; want %d, nil", int64(micros), v, err, int64(micros))
	}
	r.Version = 5
	if v, _, err := tokenstore.PutRowSwap(ctx, b, r, micros, swapOf("absent", "", "x", time.Hour)); err != nil || v != micros+1 {
		t.Errorf("PutRowSwap(stored row, Version 5) = %d, %v; want %d, nil", v, err, int64(micros+1))
	}
}

func putIndexed(t *testing.T, b tokenstore.Backend, id, cust, prov, status string) {
	t.Helper()
	mustPutRow(t, b, tokenstore.Row{ID: id, CustomerID: cust, ProviderID: prov, Status: status, Meta: []byte(`{}`), Sealed: []byte(id)}, tokenstore.AnyVersion)
}

func testListRowsFilters(t *testing.T, b tokenstore.Backend) {
	// Inserted out of order on purpose.
	putIndexed(t, b, "r5", "c2", "gusto", "reauth")
	putIndexed(t, b, "r1", "c1", "gusto", "connected")
	putIndexed(t, b, "r3", "c1", "adp_run", "connected")
	putIndexed(t, b, "r2", "c2", "adp_run", "connected")
	putIndexed(t, b, "r4", "c1", "gusto", "reauth")
	putIndexed(t, b, "r6", "", "", "pending")

	tests := []struct {
		name string
		f    tokenstore.Filter
		want []string
	}{
		{"all", tokenstore.Filter{}, []string{"r1", "r2", "r3", "r4", "r5", "r6"}},
		{"customer", tokenstore.Filter{CustomerID: "c1"}, []string{"r1", "r3", "r4"}},
		{"provider", tokenstore.Filter{ProviderID: "adp_run"}, []string{"r2", "r3"}},
		{"status", tokenstore.Filter{Status: "reauth"}, []string{"r4", "r5"}},
		{"customer and provider", tokenstore.Filter{CustomerID: "c1", ProviderID: "gusto"}, []string{"r1", "r4"}},
		{"all three", tokenstore.Filter{CustomerID: "c2", ProviderID: "gusto", Status: "reauth"}, []string{"r5"}},
		{"no match", tokenstore.Filter{CustomerID: "c3"}, []string{}},
		{"filter and after", tokenstore.Filter{CustomerID: "c1", After: "r1"}, []string{"r3", "r4"}},
		{"filter and limit", tokenstore.Filter{Status: "connected", Limit: 2}, []string{"r1", "r2"}},
		{"after last", tokenstore.Filter{After: "r6"}, []string{}},
		{"after between ids", tokenstore.Filter{After: "r35"}, []string{"r4", "r5", "r6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := b.ListRows(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("ListRows(%+v) err = %v, want nil", tt.f, err)
			}
			if diff := cmp.Diff(tt.want, ids(rows), rowCmp); diff != "" {
				t.Errorf("ListRows(%+v) ids mismatch (-want +got):\n%s", tt.f, diff)
			}
		})
	}

	rows, err := b.ListRows(t.Context(), tokenstore.Filter{CustomerID: "c2", ProviderID: "gusto"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("ListRows(c2, gusto) = %v, %v; want [r5]", ids(rows), err)
	}
	want := tokenstore.Row{ID: "r5", CustomerID: "c2", ProviderID: "gusto", Status: "reauth", Meta: []byte(`{}`), Sealed: []byte("r5"), Version: 1}
	if diff := cmp.Diff(want, rows[0], rowCmp); diff != "" {
		t.Errorf("ListRows row mismatch (-want +got):\n%s", diff)
	}
}

func testListRowsOrder(t *testing.T, b tokenstore.Backend) {
	in := []string{"conn-b", "conn-B", "conn-_", "conn-a", "conn-Z", "conn-0", "conn-é", "conn-A1", "conn-a1", "conn-~"}
	for _, id := range in {
		putIndexed(t, b, id, "c", "p", "connected")
	}
	want := slices.Clone(in)
	slices.Sort(want) // Go compares strings byte by byte
	rows, err := b.ListRows(t.Context(), tokenstore.Filter{})
	if err != nil {
		t.Fatalf("ListRows() err = %v", err)
	}
	if diff := cmp.Diff(want, ids(rows)); diff != "" {
		t.Errorf("ListRows() order is not bytewise (-want +got):\n%s", diff)
	}
	// Paging must follow the same order.
	var paged []string
	after := ""
	for range len(in) + 1 {
		page, err := b.ListRows(t.Context(), tokenstore.Filter{After: after, Limit: 3})
		if err != nil {
			t.Fatalf("ListRows(after %q) err = %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, ids(page)...)
		after = page[len(page)-1].ID
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("paged ListRows order mismatch (-want +got):\n%s", diff)
	}
}

func testListRowsPaging(t *testing.T, b tokenstore.Backend) {
	var want []string
	for i := range 23 {
		id := fmt.Sprintf("p%03d", i)
		want = append(want, id)
		status := "connected"
		if i%3 == 0 {
			status = "reauth"
		}
		putIndexed(t, b, id, "c", "gusto", status)
	}
	for _, limit := range []int{1, 5, 7, 23, 50} {
		var got []string
		after := ""
		pages := 0
		for {
			page, err := b.ListRows(t.Context(), tokenstore.Filter{After: after, Limit: limit})
			if err != nil {
				t.Fatalf("ListRows(after %q, limit %d) err = %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("ListRows(limit %d) returned %d rows", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			pages++
			if pages > 30 {
				t.Fatalf("ListRows(limit %d) paging does not end", limit)
			}
			got = append(got, ids(page)...)
			after = page[len(page)-1].ID
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paging with limit %d mismatch (-want +got):\n%s", limit, diff)
		}
	}
	// Paging within a filter.
	var got []string
	after := ""
	for {
		page, err := b.ListRows(t.Context(), tokenstore.Filter{Status: "reauth", After: after, Limit: 2})
		if err != nil {
			t.Fatalf("ListRows(reauth, after %q) err = %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		after = page[len(page)-1].ID
	}
	wantReauth := []string{"p000", "p003", "p006", "p009", "p012", "p015", "p018", "p021"}
	if diff := cmp.Diff(wantReauth, got); diff != "" {
		t.Errorf("paging with status filter mismatch (-want +got):\n%s", diff)
	}
}

func testListRowsDefaultLimit(t *testing.T, b tokenstore.Backend) {
	const n = tokenstore.DefaultLimit + 5
	for i := range n {
		putIndexed(t, b, fmt.Sprintf("d%03d", i), "c", "p", "connected")
	}
	rows, err := b.ListRows(t.Context(), tokenstore.Filter{})
	if err != nil {
		t.Fatalf("ListRows() err = %v", err)
	}
	if len(rows) != tokenstore.DefaultLimit {
		t.Errorf("ListRows(Limit 0) returned %d rows, want %d", len(rows), tokenstore.DefaultLimit)
	}
	if len(rows) > 0 && rows[len(rows)-1].ID != fmt.Sprintf("d%03d", tokenstore.DefaultLimit-1) {
		t.Errorf("ListRows(Limit 0) last id = %q, want d%03d", rows[len(rows)-1].ID, tokenstore.DefaultLimit-1)
	}
	rows, err = b.ListRows(t.Context(), tokenstore.Filter{Limit: n})
	if err != nil || len(rows) != n {
		t.Errorf("ListRows(Limit %d) = %d rows, %v; want %d", n, len(rows), err, n)
	}
}

func testListRowsIndexUpdated(t *testing.T, b tokenstore.Backend) {
	putIndexed(t, b, "m", "c1", "gusto", "connected")
	putIndexed(t, b, "m", "c2", "adp_run", "reauth")
	tests := []struct {
		f    tokenstore.Filter
		want []string
	}{
		{tokenstore.Filter{Status: "connected"}, []string{}},
		{tokenstore.Filter{Status: "reauth"}, []string{"m"}},
		{tokenstore.Filter{CustomerID: "c1"}, []string{}},
		{tokenstore.Filter{CustomerID: "c2"}, []string{"m"}},
		{tokenstore.Filter{ProviderID: "gusto"}, []string{}},
		{tokenstore.Filter{ProviderID: "adp_run"}, []string{"m"}},
	}
	for _, tt := range tests {
		rows, err := b.ListRows(t.Context(), tt.f)
		if err != nil {
			t.Fatalf("ListRows(%+v) err = %v", tt.f, err)
		}
		if diff := cmp.Diff(tt.want, ids(rows), rowCmp); diff != "" {
			t.Errorf("ListRows(%+v) after the row moved mismatch (-want +got):\n%s", tt.f, diff)
		}
	}
	// A deleted row leaves the indexes too.
	if err := b.DeleteRow(t.Context(), "m"); err != nil {
		t.Fatal(err)
	}
	rows, err := b.ListRows(t.Context(), tokenstore.Filter{Status: "reauth"})
	if err != nil || len(rows) != 0 {
		t.Errorf("ListRows(reauth) after delete = %v, %v; want none", ids(rows), err)
	}
}

func mustLoad(t *testing.T, b tokenstore.Backend, key string) []byte {
	t.Helper()
	v, err := b.Load(t.Context(), key)
	if err != nil {
		t.Fatalf("Load(%q) err = %v, want nil", key, err)
	}
	return v
}

func testClaimLoadForget(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	_, err := b.Load(ctx, "state:x")
	wantErrIs(t, `Load(absent)`, err, finchconnect.ErrNotFound)

	if err := b.Claim(ctx, "state:x", []byte("first"), time.Hour); err != nil {
		t.Fatalf("Claim(absent) err = %v, want nil", err)
	}
	if got := mustLoad(t, b, "state:x"); string(got) != "first" {
		t.Errorf("Load() = %q, want %q", got, "first")
	}
	wantErrIs(t, "Claim(held key)", b.Claim(ctx, "state:x", []byte("second"), time.Hour), finchconnect.ErrConflict)
	wantErrIs(t, "Claim(held key, no ttl)", b.Claim(ctx, "state:x", []byte("second"), 0), finchconnect.ErrConflict)
	if got := mustLoad(t, b, "state:x"); string(got) != "first" {
		t.Errorf("Load() after a lost claim = %q, want %q (unchanged)", got, "first")
	}

	// A value is independent of the caller's slice.
	v := []byte("mine")
	if err := b.Claim(ctx, "state:y", v, 0); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	if got := mustLoad(t, b, "state:y"); string(got) != "mine" {
		t.Errorf("Load() after the caller changed its slice = %q, want %q", got, "mine")
	}

	if err := b.Forget(ctx, "state:x"); err != nil {
		t.Errorf("Forget(held key) err = %v, want nil", err)
	}
	_, err = b.Load(ctx, "state:x")
	wantErrIs(t, "Load after Forget", err, finchconnect.ErrNotFound)
	if err := b.Forget(ctx, "state:x"); err != nil {
		t.Errorf("Forget(absent key) err = %v, want nil", err)
	}
	if err := b.Claim(ctx, "state:x", []byte("again"), time.Hour); err != nil {
		t.Errorf("Claim after Forget err = %v, want nil", err)
	}
	if got := mustLoad(t, b, "state:y"); string(got) != "mine" {
		t.Errorf("Load(other key) = %q, want %q: Forget touched another key", got, "mine")
	}

	// Rows and entries are separate key spaces.
	if err := b.Claim(ctx, "shared-name", []byte("entry"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = b.GetRow(ctx, "shared-name")
	wantErrIs(t, "GetRow(name only used as an entry key)", err, finchconnect.ErrNotFound)
}

func testSwap(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	wantErrIs(t, "Swap(absent)", b.Swap(ctx, "k", []byte("a"), []byte("b"), 0), finchconnect.ErrNotFound)
	if err := b.Claim(ctx, "k", []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, "Swap(wrong old)", b.Swap(ctx, "k", []byte("z"), []byte("b"), 0), finchconnect.ErrConflict)
	wantErrIs(t, "Swap(old is a prefix)", b.Swap(ctx, "k", []byte(""), []byte("b"), 0), finchconnect.ErrConflict)
	wantErrIs(t, "Swap(old longer)", b.Swap(ctx, "k", []byte("ab"), []byte("b"), 0), finchconnect.ErrConflict)
	if got := mustLoad(t, b, "k"); string(got) != "a" {
		t.Errorf("Load() after refused swaps = %q, want %q", got, "a")
	}
	if err := b.Swap(ctx, "k", []byte("a"), []byte("b"), time.Hour); err != nil {
		t.Fatalf("Swap(right old) err = %v, want nil", err)
	}
	if got := mustLoad(t, b, "k"); string(got) != "b" {
		t.Errorf("Load() after swap = %q, want %q", got, "b")
	}
	wantErrIs(t, "Swap(stale old)", b.Swap(ctx, "k", []byte("a"), []byte("c"), 0), finchconnect.ErrConflict)
	// Swapping to the same value, and to and from empty, are ordinary swaps.
	if err := b.Swap(ctx, "k", []byte("b"), []byte("b"), 0); err != nil {
		t.Errorf("Swap(b→b) err = %v, want nil", err)
	}
	if err := b.Swap(ctx, "k", []byte("b"), nil, 0); err != nil {
		t.Errorf("Swap(b→empty) err = %v, want nil", err)
	}
	if err := b.Swap(ctx, "k", []byte{}, []byte("d"), 0); err != nil {
		t.Errorf("Swap(empty→d) err = %v, want nil", err)
	}
	if got := mustLoad(t, b, "k"); string(got) != "d" {
		t.Errorf("Load() = %q, want %q", got, "d")
	}
}

func testEntryBinaryAndLarge(t *testing.T, b tokenstore.Backend) {
	tests := []struct {
		name  string
		value []byte
	}{
		{"all byte values", allBytes()},
		{"empty", []byte{}},
		{"nil", nil},
		{"64 KiB", largeValue()},
		{"NUL only", []byte{0}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("bin:%d", i)
			if err := b.Claim(t.Context(), key, tt.value, time.Hour); err != nil {
				t.Fatalf("Claim(%q) err = %v", key, err)
			}
			if got := mustLoad(t, b, key); !bytes.Equal(got, tt.value) {
				t.Errorf("Load(%q) = %d bytes, want the %d bytes claimed", key, len(got), len(tt.value))
			}
			es, err := b.Scan(t.Context(), key, "", 0)
			if err != nil || len(es) != 1 {
				t.Fatalf("Scan(%q) = %v, %v; want one entry", key, keys(es), err)
			}
			if !bytes.Equal(es[0].Value, tt.value) {
				t.Errorf("Scan(%q) value = %d bytes, want the %d bytes claimed", key, len(es[0].Value), len(tt.value))
			}
			// Swap must compare binary values exactly, too.
			next := append(slices.Clone(tt.value), 0xff)
			if err := b.Swap(t.Context(), key, tt.value, next, time.Hour); err != nil {
				t.Fatalf("Swap(%q, binary old) err = %v", key, err)
			}
			if got := mustLoad(t, b, key); !bytes.Equal(got, next) {
				t.Errorf("Load(%q) after swap = %d bytes, want %d", key, len(got), len(next))
			}
		})
	}
}

func testScan(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	for _, k := range []string{"cb:3", "cb:1", "cb:2", "cbx", "cc:1", "c", "state:1", "cb:10"} {
		if err := b.Claim(ctx, k, []byte("v-"+k), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"cb:", "", 0, []string{"cb:1", "cb:10", "cb:2", "cb:3"}},
		{"cb", "", 0, []string{"cb:1", "cb:10", "cb:2", "cb:3", "cbx"}},
		{"cb:", "cb:10", 0, []string{"cb:2", "cb:3"}},
		{"cb:", "cb:15", 0, []string{"cb:2", "cb:3"}},
		{"cb:", "", 2, []string{"cb:1", "cb:10"}},
		{"cb:", "cb:1", 2, []string{"cb:10", "cb:2"}},
		{"cb:", "cb:3", 0, []string{}},
		{"cb:", "a", 1, []string{"cb:1"}},
		{"nope", "", 0, []string{}},
		{"", "", 0, []string{"c", "cb:1", "cb:10", "cb:2", "cb:3", "cbx", "cc:1", "state:1"}},
		{"", "cc:1", 0, []string{"state:1"}},
		{"c", "", 3, []string{"c", "cb:1", "cb:10"}},
	}
	for _, tt := range tests {
		es, err := b.Scan(ctx, tt.prefix, tt.after, tt.limit)
		if err != nil {
			t.Errorf("Scan(%q, %q, %d) err = %v", tt.prefix, tt.after, tt.limit, err)
			continue
		}
		if diff := cmp.Diff(tt.want, keys(es), rowCmp); diff != "" {
			t.Errorf("Scan(%q, %q, %d) keys mismatch (-want +got):\n%s", tt.prefix, tt.after, tt.limit, diff)
		}
		for _, e := range es {
			if string(e.Value) != "v-"+e.Key {
				t.Errorf("Scan(%q) entry %q value = %q, want %q", tt.prefix, e.Key, e.Value, "v-"+e.Key)
			}
		}
	}
	if err := b.Forget(ctx, "cb:2"); err != nil {
		t.Fatal(err)
	}
	es, err := b.Scan(ctx, "cb:", "", 0)
	if diff := cmp.Diff([]string{"cb:1", "cb:10", "cb:3"}, keys(es)); err != nil || diff != "" {
		t.Errorf("Scan after Forget err = %v, keys mismatch (-want +got):\n%s", err, diff)
	}
}

func testScanPrefixLiteral(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	for _, k := range []string{"a%b:1", "axb:1", "a_b:1", "ayb:1", "a*b:1", "a?b:1", "a[b:1", "a\\b:1", "ab:1"} {
		if err := b.Claim(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"a%", []string{"a%b:1"}},
		{"a_", []string{"a_b:1"}},
		{"a*", []string{"a*b:1"}},
		{"a?", []string{"a?b:1"}},
		{"a[", []string{"a[b:1"}},
		{"a\\", []string{"a\\b:1"}},
		{"ab", []string{"ab:1"}},
	}
	for _, tt := range tests {
		es, err := b.Scan(ctx, tt.prefix, "", 0)
		if err != nil {
			t.Errorf("Scan(%q) err = %v", tt.prefix, err)
			continue
		}
		if diff := cmp.Diff(tt.want, keys(es)); diff != "" {
			t.Errorf("Scan(%q): the prefix must match literally (-want +got):\n%s", tt.prefix, diff)
		}
	}
}

func testScanDefaultLimit(t *testing.T, b tokenstore.Backend) {
	const n = tokenstore.DefaultLimit + 5
	for i := range n {
		if err := b.Claim(t.Context(), fmt.Sprintf("dl:%03d", i), []byte{byte(i)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	es, err := b.Scan(t.Context(), "dl:", "", 0)
	if err != nil || len(es) != tokenstore.DefaultLimit {
		t.Errorf("Scan(limit 0) = %d entries, %v; want %d", len(es), err, tokenstore.DefaultLimit)
	}
	es, err = b.Scan(t.Context(), "dl:", "", n)
	if err != nil || len(es) != n {
		t.Errorf("Scan(limit %d) = %d entries, %v; want %d", n, len(es), err, n)
	}
}

func testScanExpiresAt(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	before := c.Now()
	if err := b.Claim(ctx, "ea:hour", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "ea:never", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "ea:negative", []byte("3"), -time.Second); err != nil {
		t.Fatal(err)
	}
	after := c.Now()
	es, err := b.Scan(ctx, "ea:", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for _, e := range es {
		got[e.Key] = e.ExpiresAt
	}
	if len(got) != 3 {
		t.Fatalf("Scan(ea:) keys = %v, want 3 entries (ttl <= 0 never expires)", keys(es))
	}
	lo, hi := before.Add(time.Hour-time.Second), after.Add(time.Hour+time.Second)
	if e := got["ea:hour"]; e.Before(lo) || e.After(hi) {
		t.Errorf("ExpiresAt of an entry with ttl 1h = %v, want between %v and %v", e, lo, hi)
	}
	for _, k := range []string{"ea:never", "ea:negative"} {
		if e := got[k]; !e.IsZero() {
			t.Errorf("ExpiresAt of %q = %v, want zero (never expires)", k, e)
		}
	}
}

func testExpiryClaimLoad(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	start := c.Now()
	if err := b.Claim(ctx, "exp:a", []byte("v1"), shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "exp:never", []byte("n"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "exp:negative", []byte("n"), -time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, b, "exp:a"); string(got) != "v1" {
		t.Errorf("Load before expiry = %q, want v1", got)
	}
	wantErrIs(t, "Claim(unexpired)", b.Claim(ctx, "exp:a", []byte("v2"), shortTTL), finchconnect.ErrConflict)

	c.passBeyond(start.Add(shortTTL))

	_, err := b.Load(ctx, "exp:a")
	wantErrIs(t, "Load(expired)", err, finchconnect.ErrNotFound)
	if err := b.Claim(ctx, "exp:a", []byte("v2"), time.Hour); err != nil {
		t.Errorf("Claim(expired) err = %v, want nil", err)
	}
	if got, err := b.Load(ctx, "exp:a"); err != nil || string(got) != "v2" {
		t.Errorf("Load after re-claim = %q, %v; want v2", got, err)
	}
	for _, k := range []string{"exp:never", "exp:negative"} {
		if _, err := b.Load(ctx, k); err != nil {
			t.Errorf("Load(%q, ttl <= 0) err = %v, want nil: it must never expire", k, err)
		}
	}
}

func testExpirySwap(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	start := c.Now()
	// a: short ttl, left alone → expires, and Swap then reports ErrNotFound.
	// b: short ttl, swapped to ttl 0 → never expires.
	// c: long ttl, swapped to a short one → expires.
	if err := b.Claim(ctx, "sw:a", []byte("a"), shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "sw:b", []byte("b"), shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "sw:c", []byte("c"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.Swap(ctx, "sw:b", []byte("b"), []byte("b2"), 0); err != nil {
		t.Fatalf("Swap(sw:b, ttl 0) err = %v", err)
	}
	if err := b.Swap(ctx, "sw:c", []byte("c"), []byte("c2"), shortTTL); err != nil {
		t.Fatalf("Swap(sw:c, short ttl) err = %v", err)
	}

	c.passBeyond(start.Add(shortTTL))

	wantErrIs(t, "Swap(expired)", b.Swap(ctx, "sw:a", []byte("a"), []byte("x"), 0), finchconnect.ErrNotFound)
	if got, err := b.Load(ctx, "sw:b"); err != nil || string(got) != "b2" {
		t.Errorf("Load(sw:b) = %q, %v; want b2: Swap with ttl 0 must remove the expiry", got, err)
	}
	_, err := b.Load(ctx, "sw:c")
	wantErrIs(t, "Load(sw:c) after Swap set a short ttl", err, finchconnect.ErrNotFound)
}

func testExpiryScan(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	start := c.Now()
	for i, ttl := range []time.Duration{shortTTL, time.Hour, shortTTL, 0, shortTTL} {
		if err := b.Claim(ctx, fmt.Sprintf("es:%d", i), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	es, err := b.Scan(ctx, "es:", "", 0)
	if diff := cmp.Diff([]string{"es:0", "es:1", "es:2", "es:3", "es:4"}, keys(es)); err != nil || diff != "" {
		t.Errorf("Scan before expiry err = %v, keys mismatch (-want +got):\n%s", err, diff)
	}

	c.passBeyond(start.Add(shortTTL))

	es, err = b.Scan(ctx, "es:", "", 0)
	if diff := cmp.Diff([]string{"es:1", "es:3"}, keys(es)); err != nil || diff != "" {
		t.Errorf("Scan after expiry err = %v, keys mismatch (-want +got):\n%s", err, diff)
	}
	// Expired entries must not use up the limit.
	es, err = b.Scan(ctx, "es:", "", 1)
	if diff := cmp.Diff([]string{"es:1"}, keys(es)); err != nil || diff != "" {
		t.Errorf("Scan(limit 1) after expiry err = %v, keys mismatch (-want +got):\n%s", err, diff)
	}
}

// testExpiryScanRacesReclaim races Scans against claims of keys whose
// entries have just expired. A Scan may tidy up after the expired entries
// it passes (Redis drops their keys from its index), but never after an
// entry claimed again meanwhile: once every key is claimed anew, Scan must
// return every one of them.
//
// The race is won or lost in the moment between a Scan's read of an
// expired entry and its tidying up, so each round gives it many chances:
// two Scans loop while the keys are claimed again one by one. A backend
// with the flaw failed within the first rounds in every run.
func testExpiryScanRacesReclaim(t *testing.T, b tokenstore.Backend, c *expiryClock) {
	ctx := t.Context()
	const rounds, n = 10, 32
	for round := range rounds {
		prefix := fmt.Sprintf("rr%02d:", round)
		key := func(i int) string { return fmt.Sprintf("%s%02d", prefix, i) }
		for i := range n {
			if err := b.Claim(ctx, key(i), []byte("old"), time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		c.sleep(50 * time.Millisecond) // every entry has expired

		stop := make(chan struct{})
		scanErrs := make([]error, 2)
		var wg sync.WaitGroup
		for s := range scanErrs {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := b.Scan(ctx, prefix, "", 0); err != nil {
						scanErrs[s] = err
						return
					}
				}
			})
		}
		var claimErr error
		for i := range n {
			v := []byte("new")
			if i%2 == 0 {
				claimErr = b.Claim(ctx, key(i), v, time.Hour)
			} else {
				_, claimErr = tokenstore.ClaimAll(ctx, b, []tokenstore.Claim{{Key: key(i), Value: v, TTL: time.Hour}})
			}
			if claimErr != nil {
				claimErr = fmt.Errorf("claim %s again after it expired: %w", key(i), claimErr)
				break
			}
		}
		close(stop)
		wg.Wait()
		if err := errors.Join(append(scanErrs, claimErr)...); err != nil {
			t.Fatal(err)
		}

		es, err := b.Scan(ctx, prefix, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, n)
		for i := range n {
			want[i] = key(i)
			if got := mustLoad(t, b, key(i)); string(got) != "new" {
				t.Errorf("Load(%s) = %q, want new", key(i), got)
			}
		}
		if diff := cmp.Diff(want, keys(es)); diff != "" {
			t.Fatalf("round %d: Scan(%q) after the keys were claimed again, racing Scans: keys mismatch (-want +got):\n%s", round, prefix, diff)
		}
	}
}

// race runs n goroutines that each call fn(i) after a common start signal,
// and returns their errors in order.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other one is
// ErrConflict, and returns the winner's index.
func oneWinner(t *testing.T, what string, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("%s: callers %d and %d both won, want exactly one", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, finchconnect.ErrConflict):
			t.Errorf("%s: caller %d err = %v, want nil or ErrConflict", what, i, err)
		}
	}
	if winner < 0 {
		t.Errorf("%s: no caller won, want exactly one", what)
	}
	return winner
}

func testConcurrentClaim(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	errs := race(50, func(i int) error {
		return b.Claim(ctx, "cb:code-1", []byte(fmt.Sprint(i)), time.Hour)
	})
	w := oneWinner(t, "50 concurrent Claims of one key", errs)
	if w >= 0 {
		if got := mustLoad(t, b, "cb:code-1"); string(got) != fmt.Sprint(w) {
			t.Errorf("Load() = %q, want the winner's value %q", got, fmt.Sprint(w))
		}
	}
}

func testConcurrentSwap(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	if err := b.Claim(ctx, "cb:code-2", []byte("pending"), time.Hour); err != nil {
		t.Fatal(err)
	}
	errs := race(50, func(i int) error {
		return b.Swap(ctx, "cb:code-2", []byte("pending"), []byte(fmt.Sprintf("done-%d", i)), time.Hour)
	})
	w := oneWinner(t, "50 concurrent Swaps from one old value", errs)
	if w >= 0 {
		if got := mustLoad(t, b, "cb:code-2"); string(got) != fmt.Sprintf("done-%d", w) {
			t.Errorf("Load() = %q, want the winner's value done-%d", got, w)
		}
	}
}

func testConcurrentPutRowExpect(t *testing.T, b tokenstore.Backend) {
	ctx := t.Context()
	base := sampleRow("cas")
	mustPutRow(t, b, base, 0)
	type result struct {
		v   int64
		err error
	}
	results := make([]result, 20)
	errs := race(20, func(i int) error {
		r := base
		r.Sealed = []byte(fmt.Sprintf("writer-%d", i))
		v, err := b.PutRow(ctx, r, 1)
		results[i] = result{v, err}
		return err
	})
	w := oneWinner(t, "20 concurrent PutRows expecting version 1", errs)
	if w < 0 {
		return
	}
	if results[w].v != 2 {
		t.Errorf("winning PutRow version = %d, want 2", results[w].v)
	}
	got := mustGetRow(t, b, "cas")
	if string(got.Sealed) != fmt.Sprintf("writer-%d", w) || got.Version != 2 {
		t.Errorf("GetRow() = Sealed %q version %d, want writer-%d version 2", got.Sealed, got.Version, w)
	}

	// Racing inserts of an absent row with expect 0: exactly one.
	errs = race(20, func(i int) error {
		r := sampleRow("cas-new")
		r.Sealed = []byte(fmt.Sprint(i))
		_, err := b.PutRow(ctx, r, 0)
		return err
	})
	oneWinner(t, "20 concurrent inserts expecting no row", errs)
}

func testConcurrentPutRowAny(t *testing.T, b tokenstore.Backend) {
	const n = 20
	errs := race(n, func(i int) error {
		_, err := b.PutRow(t.Context(), sampleRow("any"), tokenstore.AnyVersion)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("PutRow(AnyVersion) writer %d err = %v, want nil", i, err)
		}
	}
	if got := mustGetRow(t, b, "any").Version; got != n {
		t.Errorf("version after %d concurrent AnyVersion writes = %d, want %d (each write +1)", n, got, n)
	}
}

func testConcurrentDifferentRows(t *testing.T, b tokenstore.Backend) {
	const n = 32
	ctx := t.Context()
	errs := race(n, func(i int) error {
		id := fmt.Sprintf("w%02d", i)
		if _, err := b.PutRow(ctx, sampleRow(id), 0); err != nil {
			return err
		}
		// Interleave the key space too.
		return b.Claim(ctx, "w:"+id, []byte(id), time.Hour)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d err = %v, want nil", i, err)
		}
	}
	rows, err := b.ListRows(ctx, tokenstore.Filter{Limit: n + 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Errorf("ListRows() after %d concurrent writers = %d rows, want %d", n, len(rows), n)
	}
	for _, r := range rows {
		want := sampleRow(r.ID)
		want.Version = 1
		if diff := cmp.Diff(want, r, rowCmp); diff != "" {
			t.Errorf("row %q mismatch (-want +got):\n%s", r.ID, diff)
		}
	}
	es, err := b.Scan(ctx, "w:", "", n+10)
	if err != nil || len(es) != n {
		t.Errorf("Scan(w:) = %d entries, %v; want %d", len(es), err, n)
	}
}
