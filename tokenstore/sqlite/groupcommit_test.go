package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// batch is one transaction the committer ran.
type batch struct {
	Size      int
	Committed bool
}

// heldBackend is a Backend whose committer a test can hold before it takes
// a batch, so that writes queued meanwhile are known to share one batch.
type heldBackend struct {
	*Backend
	gate sync.Mutex // held: the committer waits before its next take

	mu      sync.Mutex
	batches []batch
}

func openHeld(t *testing.T) *heldBackend {
	t.Helper()
	return openHeldWith(t, options{})
}

func openHeldWith(t *testing.T, opts options) *heldBackend {
	t.Helper()
	h := &heldBackend{}
	opts.beforeTake = func() {
		h.gate.Lock()
		//lint:ignore SA2001 an empty critical section is the wait: it returns once the test unlocks the gate.
		h.gate.Unlock()
	}
	opts.afterBatch = func(n int, ok bool) {
		h.mu.Lock()
		h.batches = append(h.batches, batch{n, ok})
		h.mu.Unlock()
	}
	h.Backend = mustOpen(t, opts)
	return h
}

// hold stops the committer before its next batch until the returned
// release is called; the test's cleanup releases it too, before Close.
func (h *heldBackend) hold(t *testing.T) (release func()) {
	h.gate.Lock()
	release = sync.OnceFunc(h.gate.Unlock)
	t.Cleanup(release)
	return release
}

// takeBatches returns the batches run since the last call.
func (h *heldBackend) takeBatches() []batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.batches
	h.batches = nil
	return out
}

// waitQueued waits until n writes wait for the committer.
func waitQueued(t *testing.T, b *Backend, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("queued writes = %d after 10s, want %d", b.queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// queue starts each write in its own goroutine, in order, waiting for each
// to be queued before starting the next, so the queue holds them in this
// order; it returns a function that waits for their results.
func queue(t *testing.T, b *Backend, writes []func() error) (wait func() []error) {
	t.Helper()
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	base := b.queued()
	for i, w := range writes {
		wg.Go(func() { errs[i] = w() })
		waitQueued(t, b, base+i+1)
	}
	return func() []error { wg.Wait(); return errs }
}

func row(id, status string, sealed byte) tokenstore.Row {
	return tokenstore.Row{ID: id, Status: status, Meta: []byte("{}"), Sealed: []byte{sealed}}
}

func TestGroupCommit_claimsOfOneKeyOneWinner(t *testing.T) {
	h := openHeld(t)
	ctx := t.Context()
	const n = 50
	release := h.hold(t)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = h.Claim(ctx, "code", []byte{byte(i)}, time.Minute) })
	}
	waitQueued(t, h.Backend, n)
	release()
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("claims %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, finchconnect.ErrConflict):
			t.Errorf("claim %d err = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no claim won, want exactly one")
	}
	if v, err := h.Load(ctx, "code"); err != nil || string(v) != string([]byte{byte(winner)}) {
		t.Errorf("Load(code) = %v, %v; want the winner's value %v", v, err, []byte{byte(winner)})
	}
	if diff := cmp.Diff([]batch{{n, true}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

func TestGroupCommit_putRowsInOneBatchAsIfSerial(t *testing.T) {
	h := openHeld(t)
	ctx := t.Context()
	const n = 20

	// A chain: each write expects the version the previous one makes, so
	// all succeed only if they run in queue order, each seeing the last.
	release := h.hold(t)
	var chain []func() error
	versions := make([]int64, n)
	for i := range n {
		chain = append(chain, func() (err error) {
			versions[i], err = h.PutRow(ctx, row("r", "connected", byte(i)), int64(i))
			return err
		})
	}
	wait := queue(t, h.Backend, chain)
	release()
	for i, err := range wait() {
		if err != nil {
			t.Errorf("chained PutRow %d (expect %d) err = %v, want nil", i, i, err)
		}
	}
	wantVersions := make([]int64, n)
	for i := range wantVersions {
		wantVersions[i] = int64(i + 1)
	}
	if diff := cmp.Diff(wantVersions, versions); diff != "" {
		t.Errorf("chained versions (-want +got):\n%s", diff)
	}

	// Rivals: every write expects the current version; as if serial,
	// exactly one wins and the rest see the version it made.
	release = h.hold(t)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = h.PutRow(ctx, row("r", "rival", byte(100+i)), n) })
	}
	waitQueued(t, h.Backend, n)
	release()
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("rival PutRows %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, finchconnect.ErrConflict):
			t.Errorf("rival PutRow %d err = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no rival PutRow won, want exactly one")
	}
	got, err := h.GetRow(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if want := row("r", "rival", byte(100+winner)); got.Version != n+1 || got.Sealed[0] != want.Sealed[0] {
		t.Errorf("GetRow = version %d, sealed %v; want version %d, sealed %v", got.Version, got.Sealed, n+1, want.Sealed)
	}
	if diff := cmp.Diff([]batch{{n, true}, {n, true}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

// A SQL error in one write of a batch fails that write alone: the batch is
// rolled back and its writes run again one by one. The errors are real
// SQLite errors, raised by a trigger or a deferred foreign key the test
// adds to the schema: RAISE(ABORT) undoes the statement, RAISE(ROLLBACK)
// ends the whole transaction on its own, and a deferred foreign key makes
// COMMIT fail and leaves the transaction open.
func TestGroupCommit_sqlErrorFailsOnlyItsWrite(t *testing.T) {
	tests := []struct {
		name    string
		ddl     []string
		wantErr string
	}{
		{
			name:    "raise abort",
			ddl:     []string{`CREATE TRIGGER boom BEFORE INSERT ON entries WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`},
			wantErr: "injected failure",
		},
		{
			name:    "raise rollback",
			ddl:     []string{`CREATE TRIGGER boom BEFORE INSERT ON entries WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ROLLBACK, 'injected failure'); END`},
			wantErr: "injected failure",
		},
		{
			name: "commit fails",
			ddl: []string{
				`CREATE TABLE parent (k TEXT PRIMARY KEY)`,
				`CREATE TABLE child (k TEXT REFERENCES parent (k) DEFERRABLE INITIALLY DEFERRED)`,
				`CREATE TRIGGER boom AFTER INSERT ON entries WHEN NEW.key = 'boom' BEGIN INSERT INTO child VALUES ('orphan'); END`,
			},
			wantErr: "commit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := openHeld(t)
			ctx := t.Context()
			for _, q := range tt.ddl {
				if err := h.write(ctx, func(ctx context.Context, x execer) error {
					_, err := x.ExecContext(ctx, q)
					return err
				}); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := h.PutRow(ctx, row("gone", "connected", 1), 0); err != nil {
				t.Fatal(err)
			}
			if err := h.Claim(ctx, "swapped", []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			if err := h.Claim(ctx, "forgotten", []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
			h.takeBatches()

			release := h.hold(t)
			writes := []func() error{
				func() error { return h.Claim(ctx, "before", []byte("b"), 0) },
				func() error { _, err := h.PutRow(ctx, row("r", "connected", 7), 0); return err },
				func() error { return h.Claim(ctx, "boom", []byte("x"), 0) },
				func() error { return h.Swap(ctx, "swapped", []byte("old"), []byte("new"), 0) },
				func() error { return h.Forget(ctx, "forgotten") },
				func() error { return h.DeleteRow(ctx, "gone") },
				func() error { return h.Claim(ctx, "before", []byte("again"), 0) }, // loses to the first
			}
			wait := queue(t, h.Backend, writes)
			release()
			errs := wait()

			const boom, lost = 2, 6
			for i, err := range errs {
				switch i {
				case boom:
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome(err) {
						t.Errorf("the failing write's err = %v, want an error containing %q", err, tt.wantErr)
					}
				case lost:
					if !errors.Is(err, finchconnect.ErrConflict) {
						t.Errorf("write %d (a claim of a key claimed earlier in the batch) err = %v, want ErrConflict", i, err)
					}
				default:
					if err != nil {
						t.Errorf("write %d err = %v, want nil: only the failing write may fail", i, err)
					}
				}
			}
			// Every write but the failing one took effect, once.
			if v, err := h.Load(ctx, "before"); err != nil || string(v) != "b" {
				t.Errorf("Load(before) = %q, %v; want b", v, err)
			}
			if r, err := h.GetRow(ctx, "r"); err != nil || r.Version != 1 {
				t.Errorf("GetRow(r) = %+v, %v; want version 1", r, err)
			}
			if _, err := h.Load(ctx, "boom"); !errors.Is(err, finchconnect.ErrNotFound) {
				t.Errorf("Load(boom) err = %v, want ErrNotFound", err)
			}
			if v, err := h.Load(ctx, "swapped"); err != nil || string(v) != "new" {
				t.Errorf("Load(swapped) = %q, %v; want new", v, err)
			}
			if _, err := h.Load(ctx, "forgotten"); !errors.Is(err, finchconnect.ErrNotFound) {
				t.Errorf("Load(forgotten) err = %v, want ErrNotFound", err)
			}
			if _, err := h.GetRow(ctx, "gone"); !errors.Is(err, finchconnect.ErrNotFound) {
				t.Errorf("GetRow(gone) err = %v, want ErrNotFound", err)
			}
			want := []batch{{len(writes), false}}
			for i := range writes {
				want = append(want, batch{1, i != boom})
			}
			if diff := cmp.Diff(want, h.takeBatches()); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			// The committer is not left in a broken transaction.
			if err := h.Claim(ctx, "after", []byte("a"), 0); err != nil {
				t.Errorf("Claim after the failed batch err = %v, want nil", err)
			}
		})
	}
}

// When another process holds the write lock for all of busy_timeout, BEGIN
// fails and no write is to blame: every write of the batch gets that error
// once, rather than each being retried alone and waiting busy_timeout
// again; once the lock is free, writes work again.
func TestGroupCommit_lockedOutBatchFailsOnce(t *testing.T) {
	h := openHeldWith(t, options{busyTimeout: 100 * time.Millisecond})
	ctx := t.Context()
	var path string
	if err := h.r.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	release := h.hold(t)
	var writes []func() error
	for i := range 5 {
		writes = append(writes, func() error { return h.Claim(ctx, fmt.Sprint(i), nil, 0) })
	}
	wait := queue(t, h.Backend, writes)
	release()
	for i, err := range wait() {
		if err == nil || !strings.Contains(err.Error(), "begin") {
			t.Errorf("write %d while locked out err = %v, want the BEGIN's error", i, err)
		}
	}
	if diff := cmp.Diff([]batch{{len(writes), false}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got): no write may be retried alone\n%s", diff)
	}

	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := h.Claim(ctx, "after", nil, 0); err != nil {
		t.Errorf("Claim once the lock is free err = %v, want nil", err)
	}
}

func TestGroupCommit_batchBoundAndFIFO(t *testing.T) {
	h := openHeld(t)
	ctx := t.Context()
	const n = maxBatch + 44
	release := h.hold(t)
	var chain []func() error
	for i := range n {
		chain = append(chain, func() error {
			_, err := h.PutRow(ctx, row("r", "connected", byte(i)), int64(i))
			return err
		})
	}
	wait := queue(t, h.Backend, chain)
	release()
	for i, err := range wait() {
		if err != nil {
			t.Errorf("PutRow %d (expect %d) err = %v, want nil: writes ran out of order", i, i, err)
		}
	}
	if diff := cmp.Diff([]batch{{maxBatch, true}, {n - maxBatch, true}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

// A lone write is not held back waiting for company: each of a single
// goroutine's writes is a transaction of its own.
func TestGroupCommit_loneWriteRunsAlone(t *testing.T) {
	h := openHeld(t)
	ctx := t.Context()
	for i := range 3 {
		if err := h.Claim(ctx, fmt.Sprint(i), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]batch{{1, true}, {1, true}, {1, true}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

func TestGroupCommit_cancelWhileQueued(t *testing.T) {
	h := openHeld(t)
	release := h.hold(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Claim(ctx, "k", []byte("v"), 0) }()
	waitQueued(t, h.Backend, 1)
	cancel()
	// Driver-side errors are wrapped with %v, so the cause is in the text.
	if err := <-done; err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Errorf("Claim cancelled while queued err = %v, want context.Canceled", err)
	}
	release()
	if err := h.Claim(t.Context(), "other", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Load(t.Context(), "k"); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Load of the cancelled claim's key err = %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff([]batch{{1, true}}, h.takeBatches()); diff != "" {
		t.Errorf("batches (-want +got): the cancelled write must not run\n%s", diff)
	}
}

func TestGroupCommit_closeFinishesQueuedWrites(t *testing.T) {
	h := openHeld(t)
	ctx := t.Context()
	release := h.hold(t)
	var writes []func() error
	for i := range 10 {
		writes = append(writes, func() error { return h.Claim(ctx, fmt.Sprint(i), nil, 0) })
	}
	wait := queue(t, h.Backend, writes)
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	// Close must mark the backend closed before it waits for the committer.
	deadline := time.Now().Add(10 * time.Second)
	for !h.isClosed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := h.Claim(ctx, "late", nil, 0); err == nil || !strings.Contains(err.Error(), errClosed.Error()) {
		t.Errorf("Claim during Close err = %v, want errClosed", err)
	}
	release()
	for i, err := range wait() {
		if err != nil {
			t.Errorf("write %d, queued before Close, err = %v, want nil", i, err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close() err = %v", err)
	}
	if err := h.Claim(ctx, "after", nil, 0); err == nil || !strings.Contains(err.Error(), errClosed.Error()) {
		t.Errorf("Claim after Close err = %v, want errClosed", err)
	}
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// A write's effect is visible to any read that starts after the write
// returned, although reads use other connections than the committer.
func TestGroupCommit_readYourWrites(t *testing.T) {
	b := mustOpen(t, options{})
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				key := fmt.Sprintf("g%d-%d", g, i)
				if err := b.Claim(ctx, key, []byte(key), 0); err != nil {
					t.Errorf("Claim(%s) err = %v", key, err)
					return
				}
				if v, err := b.Load(ctx, key); err != nil || string(v) != key {
					t.Errorf("Load(%s) right after its Claim = %q, %v; want %q", key, v, err, key)
				}
				v, err := b.PutRow(ctx, row(key, "connected", byte(i)), tokenstore.AnyVersion)
				if err != nil {
					t.Errorf("PutRow(%s) err = %v", key, err)
					return
				}
				if r, err := b.GetRow(ctx, key); err != nil || r.Version != v {
					t.Errorf("GetRow(%s) right after its PutRow = version %d, %v; want %d", key, r.Version, err, v)
				}
				if err := b.DeleteRow(ctx, key); err != nil {
					t.Errorf("DeleteRow(%s) err = %v", key, err)
				}
				if _, err := b.GetRow(ctx, key); !errors.Is(err, finchconnect.ErrNotFound) {
					t.Errorf("GetRow(%s) right after its DeleteRow err = %v, want ErrNotFound", key, err)
				}
			}
		})
	}
	wg.Wait()
}

// Expired entries are still purged when writes come in batches: a batch
// counts as many writes as it holds.
func TestGroupCommit_purgeInBatches(t *testing.T) {
	h := openHeld(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	h.Now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	ctx := t.Context()
	for i := range 10 {
		if err := h.Claim(ctx, fmt.Sprintf("old-%d", i), nil, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clock.Lock()
	now = now.Add(time.Hour)
	clock.Unlock()
	release := h.hold(t)
	var writes []func() error
	for i := range purgeEvery {
		writes = append(writes, func() error { return h.Claim(ctx, fmt.Sprintf("new-%d", i), nil, time.Hour) })
	}
	wait := queue(t, h.Backend, writes)
	release()
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("claim %d err = %v", i, err)
		}
	}
	var n int
	if err := h.r.QueryRowContext(ctx, "SELECT count(*) FROM entries").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != purgeEvery {
		t.Errorf("entries after a batch of %d writes = %d, want %d: the expired ones purged", purgeEvery, n, purgeEvery)
	}
}

// Every write acknowledged before Close is in the file when it is opened
// again.
func TestGroupCommit_acknowledgedWritesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	ctx := t.Context()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]int64{}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 30 {
				id := fmt.Sprintf("g%02d-%02d", g, i)
				v, err := b.PutRow(ctx, row(id, "connected", byte(i)), tokenstore.AnyVersion)
				if err != nil {
					t.Errorf("PutRow(%s) err = %v", id, err)
					return
				}
				mu.Lock()
				acked[id] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := map[string]int64{}
	after := ""
	for {
		rows, err := b.ListRows(ctx, tokenstore.Filter{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			got[r.ID] = r.Version
		}
		after = rows[len(rows)-1].ID
	}
	if len(acked) != 64*30 {
		t.Errorf("acknowledged writes = %d, want %d", len(acked), 64*30)
	}
	if diff := cmp.Diff(acked, got); diff != "" {
		t.Errorf("rows after reopen (-acknowledged +stored):\n%s", diff)
	}
}

// crashChildEnv names the database a child process writes to until it is
// killed; see TestGroupCommit_acknowledgedWritesSurviveKill.
const crashChildEnv = "FINCHCONNECT_SQLITE_CRASH_CHILD_DB"

// TestGroupCommit_acknowledgedWritesSurviveKill kills a process that is
// writing as fast as it can (SIGKILL: no Close, no deferred code) and
// checks that every write it acknowledged is in the file. An
// acknowledgement must therefore come after the commit. (Power loss, which
// only synchronous=FULL covers, cannot be simulated here.)
func TestGroupCommit_acknowledgedWritesSurviveKill(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestGroupCommit_acknowledgedWritesSurviveKill$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if key, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			acked = append(acked, key)
			if len(acked) == 1500 {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	_ = cmd.Wait() // killed: the error says so
	if len(acked) < 1500 {
		t.Fatalf("the child acknowledged %d writes before it ended, want at least 1500", len(acked))
	}
	b, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	missing := 0
	for _, key := range acked {
		if v, err := b.Load(t.Context(), key); err != nil || string(v) != key {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged Claim(%s) after the kill: Load = %q, %v", key, v, err)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes lost", missing, len(acked))
	}
}

// crashChild claims keys from 32 goroutines and prints each one after its
// Claim returns, until it is killed (or, as a safety net, for 60 seconds).
func crashChild(path string) {
	ctx := context.Background()
	b, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("g%02d-%06d", g, i)
				if err := b.Claim(ctx, key, []byte(key), 0); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(os.Stdout, "acked "+key)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3) // never killed: the parent fails on the exit status
}
