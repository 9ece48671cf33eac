package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// hookBackend is a Memory whose PutRow runs beforePut first (an error from
// it fails the write) and afterPut once the write is stored.
type hookBackend struct {
	*tokenstore.Memory
	beforePut func(ctx context.Context, row tokenstore.Row) error
	afterPut  func(row tokenstore.Row)
}

func (h *hookBackend) PutRow(ctx context.Context, row tokenstore.Row, expect int64) (int64, error) {
	if h.beforePut != nil {
		if err := h.beforePut(ctx, row); err != nil {
			return 0, err
		}
	}
	v, err := h.Memory.PutRow(ctx, row, expect)
	if err == nil && h.afterPut != nil {
		h.afterPut(row)
	}
	return v, err
}

// rotation seeds n connections, c0000 onwards, under key 1 in a Memory,
// and returns it, the ids in order, and a keyring whose primary is key 2
// and that still opens key 1.
func rotation(t *testing.T, n int) (*tokenstore.Memory, []string, *keyring.Keyring) {
	t.Helper()
	mem := tokenstore.NewMemory()
	old, keys := mustKeyring(t, 1)
	s := tokenstore.New(mem, old)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("c%04d", i)
		if err := s.Put(t.Context(), conn(ids[i], "tok-"+ids[i])); err != nil {
			t.Fatal(err)
		}
	}
	k2, err := keyring.Generate(2)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(k2, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	return mem, ids, kr
}

// keyOf returns the key id that seals row id.
func keyOf(t *testing.T, b tokenstore.Backend, id string) uint32 {
	t.Helper()
	r, err := b.GetRow(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRow(%s) err = %v", id, err)
	}
	kid, _ := keyring.KeyID(r.Sealed)
	return kid
}

// checkBehindCursor fails unless every id up to cursor is sealed under key.
func checkBehindCursor(t *testing.T, b tokenstore.Backend, ids []string, cursor string, key uint32) {
	t.Helper()
	for _, id := range ids {
		if id > cursor {
			break
		}
		if got := keyOf(t, b, id); got != key {
			t.Errorf("row %s, at or before cursor %q, is under key %d, want %d", id, cursor, got, key)
		}
	}
}

// progressChecker is a Progress callback that checks, at every call, that
// done grows by one, that the cursor never moves back, and that every row
// up to the cursor has been written already.
type progressChecker struct {
	t       *testing.T
	ids     []string
	written sync.Map // id → true, set by a hookBackend's afterPut
	calls   int
	cursor  string
	next    int // ids[:next] are checked
	onCall  func(done int, cursor string)
}

func (p *progressChecker) progress(done, total int, cursor string) {
	p.calls++
	if done != p.calls {
		p.t.Errorf("Progress call %d: done = %d, want %d", p.calls, done, p.calls)
	}
	if cursor < p.cursor {
		p.t.Errorf("Progress call %d: cursor %q moved back from %q", p.calls, cursor, p.cursor)
	}
	p.cursor = cursor
	for p.next < len(p.ids) && p.ids[p.next] <= cursor {
		if _, ok := p.written.Load(p.ids[p.next]); !ok {
			p.t.Errorf("Progress call %d: cursor %q passed row %s, which is not re-sealed yet", p.calls, cursor, p.ids[p.next])
		}
		p.next++
	}
	if p.onCall != nil {
		p.onCall(done, cursor)
	}
}

func TestStore_Rewrap_workers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers int
		wantMax func(int) bool
	}{
		{"one", 1, func(n int) bool { return n == 1 }},
		{"eight", 8, func(n int) bool { return n > 1 && n <= 8 }},
		{"default", 0, func(n int) bool { return n > 1 && n <= 64 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 1234 // three pages, the last one short
			mem, ids, kr := rotation(t, n)
			var inFlight, most atomic.Int32
			pc := &progressChecker{t: t, ids: ids}
			b := &hookBackend{Memory: mem,
				beforePut: func(context.Context, tokenstore.Row) error {
					now := inFlight.Add(1)
					for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
					}
					time.Sleep(50 * time.Microsecond) // a round trip, so that writes overlap
					inFlight.Add(-1)
					return nil
				},
				afterPut: func(r tokenstore.Row) { pc.written.Store(r.ID, true) },
			}
			res, err := tokenstore.New(b, kr).Rewrap(t.Context(), tokenstore.RewrapOptions{Workers: tc.workers, Progress: pc.progress})
			if err != nil {
				t.Fatalf("Rewrap() err = %v", err)
			}
			if res.Scanned != n || res.Rewrapped != n || res.Cursor != ids[n-1] || len(res.Failed) != 0 {
				t.Errorf("Rewrap() = %+v, want %d scanned and rewrapped, cursor %s", res, n, ids[n-1])
			}
			if pc.calls != n || pc.cursor != ids[n-1] {
				t.Errorf("Progress called %d times, last cursor %q; want %d, %s", pc.calls, pc.cursor, n, ids[n-1])
			}
			if m := int(most.Load()); !tc.wantMax(m) {
				t.Errorf("at most %d writes in flight with Workers %d", m, tc.workers)
			}
			checkBehindCursor(t, mem, ids, res.Cursor, 2)
		})
	}
}

// A slow row holds the cursor back while the rows after it finish.
func TestStore_Rewrap_cursorWaitsForSlowRow(t *testing.T) {
	const n = 20
	mem, ids, kr := rotation(t, n)
	release := make(chan struct{})
	pc := &progressChecker{t: t, ids: ids}
	var cursorWhileBlocked string
	pc.onCall = func(done int, cursor string) {
		if done == n-1 { // everything but the slow row
			cursorWhileBlocked = cursor
			close(release)
		}
	}
	b := &hookBackend{Memory: mem,
		beforePut: func(ctx context.Context, r tokenstore.Row) error {
			if r.ID == "c0003" {
				<-release
			}
			return nil
		},
		afterPut: func(r tokenstore.Row) { pc.written.Store(r.ID, true) },
	}
	res, err := tokenstore.New(b, kr).Rewrap(t.Context(), tokenstore.RewrapOptions{Workers: 4, Progress: pc.progress})
	if err != nil || res.Rewrapped != n || res.Cursor != ids[n-1] {
		t.Fatalf("Rewrap() = %+v, %v; want %d rewrapped, cursor %s", res, err, n, ids[n-1])
	}
	if cursorWhileBlocked != "c0002" {
		t.Errorf("cursor while c0003 was being written = %q, want c0002", cursorWhileBlocked)
	}
}

// Cancelled in the middle of a page, with writes in flight, Rewrap leaves
// a cursor that no unhandled row precedes, and resuming from it finishes
// the job without writing any row twice.
func TestStore_Rewrap_cancelMidPageResumes(t *testing.T) {
	const n = 1200
	mem, ids, kr := rotation(t, n)
	ctx, cancel := context.WithCancel(t.Context())
	pc := &progressChecker{t: t, ids: ids, onCall: func(done int, _ string) {
		if done == 620 {
			cancel()
		}
	}}
	var writes atomic.Int32
	b := &hookBackend{Memory: mem,
		beforePut: func(context.Context, tokenstore.Row) error {
			time.Sleep(20 * time.Microsecond)
			return nil
		},
		afterPut: func(r tokenstore.Row) {
			writes.Add(1)
			pc.written.Store(r.ID, true)
		},
	}
	s := tokenstore.New(b, kr)
	first, err := s.Rewrap(ctx, tokenstore.RewrapOptions{Workers: 8, Progress: pc.progress})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Rewrap() err = %v, want context.Canceled", err)
	}
	if first.Rewrapped < 620 || first.Rewrapped == n || first.Cursor < ids[0] || first.Cursor >= ids[n-1] {
		t.Fatalf("cancelled Rewrap() = %+v, want at least 620 rewrapped, not all, and a cursor inside", first)
	}
	if int(writes.Load()) != first.Rewrapped {
		t.Errorf("cancelled Rewrap() wrote %d rows, reports %d", writes.Load(), first.Rewrapped)
	}
	checkBehindCursor(t, mem, ids, first.Cursor, 2)

	// The same checker, so that it knows the rows the first run wrote.
	pc.ids, pc.next, pc.calls, pc.cursor, pc.onCall = ids[slices.Index(ids, first.Cursor)+1:], 0, 0, "", nil
	second, err := s.Rewrap(t.Context(), tokenstore.RewrapOptions{After: first.Cursor, Workers: 8, Progress: pc.progress})
	if err != nil {
		t.Fatalf("resumed Rewrap() err = %v", err)
	}
	if first.Rewrapped+second.Rewrapped != n || int(writes.Load()) != n {
		t.Errorf("rewrapped %d then %d rows (%d writes), want %d in all, each row once", first.Rewrapped, second.Rewrapped, writes.Load(), n)
	}
	if second.Cursor != ids[n-1] {
		t.Errorf("resumed Rewrap() cursor = %q, want %s", second.Cursor, ids[n-1])
	}
	usage, _ := s.KeyUsage(t.Context())
	if usage[1] != 0 || usage[2] != n {
		t.Errorf("KeyUsage after resume = %v, want all %d under key 2", usage, n)
	}
}

// A backend error stops the run; the cursor stays before the failed row,
// and a second run picks it up.
func TestStore_Rewrap_backendError(t *testing.T) {
	const n = 1200
	mem, ids, kr := rotation(t, n)
	var failedOnce atomic.Bool
	b := &hookBackend{Memory: mem, beforePut: func(_ context.Context, r tokenstore.Row) error {
		if r.ID == "c0500" && failedOnce.CompareAndSwap(false, true) {
			return errors.New("disk on fire")
		}
		return nil
	}}
	s := tokenstore.New(b, kr)
	res, err := s.Rewrap(t.Context(), tokenstore.RewrapOptions{Workers: 8})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || errors.Is(err, finchconnect.ErrDecrypt) {
		t.Fatalf("Rewrap() err = %v, want the backend's error", err)
	}
	if res.Cursor >= "c0500" {
		t.Errorf("Rewrap() cursor = %q, past the row that failed", res.Cursor)
	}
	if got := keyOf(t, mem, "c0500"); got != 1 {
		t.Errorf("c0500 is under key %d after its write failed, want 1", got)
	}
	checkBehindCursor(t, mem, ids, res.Cursor, 2)
	if _, err := s.Rewrap(t.Context(), tokenstore.RewrapOptions{After: res.Cursor}); err != nil {
		t.Fatalf("resumed Rewrap() err = %v", err)
	}
	usage, _ := s.KeyUsage(t.Context())
	if usage[1] != 0 || usage[2] != n {
		t.Errorf("KeyUsage after resume = %v, want all %d under key 2", usage, n)
	}
}

// Live writes that land between Rewrap's read and its write make it read
// again: an update that kept the old sealed bytes is re-sealed, one that
// sealed a new token under the primary is left as it is, and no update is
// lost.
func TestStore_Rewrap_conflicts(t *testing.T) {
	const n = 900
	mem, ids, kr := rotation(t, n)
	live := tokenstore.New(mem, kr) // another server, on the same data
	var raced sync.Map
	b := &hookBackend{Memory: mem, beforePut: func(ctx context.Context, r tokenstore.Row) error {
		var i int
		fmt.Sscanf(r.ID, "c%d", &i)
		if i%3 == 2 {
			return nil
		}
		if _, again := raced.LoadOrStore(r.ID, true); again {
			return nil
		}
		return live.Update(ctx, r.ID, func(c *finchconnect.Connection) error {
			c.Status = finchconnect.StatusReauth
			if i%3 == 1 {
				c.AccessToken = finchconnect.NewSecret("new-" + r.ID)
			}
			return nil
		})
	}}
	s := tokenstore.New(b, kr)
	res, err := s.Rewrap(t.Context(), tokenstore.RewrapOptions{Workers: 8})
	if err != nil {
		t.Fatalf("Rewrap() err = %v", err)
	}
	// Rows i%3 == 1 were re-sealed by their update, not by Rewrap.
	if want := n - n/3; res.Rewrapped != want || res.Cursor != ids[n-1] {
		t.Errorf("Rewrap() = %+v, want %d rewrapped, cursor %s", res, want, ids[n-1])
	}
	for i, id := range ids {
		got, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get(%s) err = %v", id, err)
		}
		wantStatus, wantToken := finchconnect.StatusReauth, "tok-"+id
		switch i % 3 {
		case 1:
			wantToken = "new-" + id
		case 2:
			wantStatus = finchconnect.StatusConnected
		}
		if got.Status != wantStatus || got.AccessToken.Reveal() != wantToken {
			t.Errorf("Get(%s) = status %q, token changed %v; want status %q and its own token", id, got.Status, got.AccessToken.Reveal() != wantToken, wantStatus)
		}
		if k := keyOf(t, mem, id); k != 2 {
			t.Errorf("row %s under key %d after Rewrap, want 2", id, k)
		}
	}
}

// Rows that do not open, spread over several pages, are each counted once,
// listed in order, and do not stop the others.
func TestStore_Rewrap_decryptFailures(t *testing.T) {
	const n = 1200
	mem, ids, kr := rotation(t, n)
	lostKR, _ := mustKeyring(t, 7)
	lost := []string{"c0100x", "c0700x", "c1100x", "c0001x"}
	for _, id := range lost {
		if err := tokenstore.New(mem, lostKR).Put(t.Context(), conn(id, "tok")); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tokenstore.New(mem, kr).Rewrap(t.Context(), tokenstore.RewrapOptions{Workers: 8})
	if !errors.Is(err, finchconnect.ErrDecrypt) || !strings.Contains(err.Error(), "4 row(s)") {
		t.Errorf("Rewrap() err = %v, want ErrDecrypt for 4 rows", err)
	}
	slices.Sort(lost)
	if !slices.Equal(res.Failed, lost) || res.Rewrapped != n || res.Scanned != n+len(lost) || res.Cursor != ids[n-1] {
		t.Errorf("Rewrap() = %+v, want Failed %v, %d rewrapped of %d, cursor %s", res, lost, n, n+len(lost), ids[n-1])
	}
}
