package audit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// gated counts the store writes and holds the first until released.
type gated struct {
	*tokenstore.Memory
	writes  atomic.Int64
	release chan struct{}
}

func (g *gated) wait() {
	if g.writes.Add(1) == 1 {
		<-g.release
	}
}

func (g *gated) Claim(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	g.wait()
	return g.Memory.Claim(ctx, key, v, ttl)
}

func (g *gated) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	g.wait()
	return g.Memory.Txn(ctx, t)
}

// TestQueue_Batches: records that queue while a write runs go to the store
// together, in one write, and Close writes everything still queued.
func TestQueue_Batches(t *testing.T) {
	g := &gated{Memory: tokenstore.NewMemory(), release: make(chan struct{})}
	l := audit.New(g)
	var failed atomic.Int64
	q := audit.NewQueue(l, 1000, func(error, []finchconnect.AuditRecord) { failed.Add(1) })

	q.Add(t.Context(), finchconnect.AuditRecord{Action: finchconnect.AuditDecrypted, ConnectionID: "first"})
	for g.writes.Load() == 0 { // the writer holds the first record
		time.Sleep(time.Millisecond)
	}
	const n = 300
	for i := range n {
		q.Add(t.Context(), finchconnect.AuditRecord{Action: finchconnect.AuditDecrypted, ConnectionID: fmt.Sprintf("c%03d", i)})
	}
	close(g.release)
	q.Close()

	all, err := l.List(t.Context(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n+1 {
		t.Errorf("List() = %d records, want %d", len(all), n+1)
	}
	// One write for the first record, then 300 in batches of at most 256.
	if got := g.writes.Load(); got != 3 {
		t.Errorf("%d store writes for %d records, want 3 (1 + 256 + 44)", got, n+1)
	}
	if failed.Load() != 0 {
		t.Errorf("%d writes failed", failed.Load())
	}
}

// TestQueue_ReportsFailures: a failed write reaches onErr with its records.
func TestQueue_ReportsFailures(t *testing.T) {
	m := tokenstore.NewMemory()
	m.Close()
	got := make(chan []finchconnect.AuditRecord, 10)
	q := audit.NewQueue(audit.New(m), 10, func(_ error, rs []finchconnect.AuditRecord) { got <- rs })
	q.Add(t.Context(), finchconnect.AuditRecord{Action: finchconnect.AuditDeleted, ConnectionID: "c1"})
	q.Close()
	select {
	case rs := <-got:
		if len(rs) != 1 || rs[0].ConnectionID != "c1" {
			t.Errorf("onErr got %+v, want the record of c1", rs)
		}
	default:
		t.Error("onErr was not called for a write to a closed store")
	}
}

func TestLog_RecordAll(t *testing.T) {
	l := audit.New(tokenstore.NewMemory())
	at := time.Now().UTC()
	rs := make([]finchconnect.AuditRecord, 50)
	for i := range rs {
		rs[i] = finchconnect.AuditRecord{At: at, Action: finchconnect.AuditDecrypted, ConnectionID: fmt.Sprint(i)}
	}
	if err := l.RecordAll(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	all, err := l.List(t.Context(), audit.Filter{})
	if err != nil || len(all) != 50 {
		t.Errorf("List() = %d records, %v; want 50 (records of one instant kept apart)", len(all), err)
	}
}

// TestQueue_AddAfterClose: a record added after Close (a request that
// outlived the server's shutdown) is written at once, not lost, and Add
// does not panic.
func TestQueue_AddAfterClose(t *testing.T) {
	l := audit.New(tokenstore.NewMemory())
	q := audit.NewQueue(l, 10, nil)
	q.Close()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Add after Close panicked: %v", p)
			}
		}()
		q.Add(t.Context(), finchconnect.AuditRecord{Action: finchconnect.AuditDecrypted, ConnectionID: "late"})
	}()
	all, err := l.List(t.Context(), audit.Filter{})
	if err != nil || len(all) != 1 || all[0].ConnectionID != "late" {
		t.Errorf("List() = %+v, %v; want the record added after Close", all, err)
	}
	q.Close() // closing twice is harmless
}

// TestQueue_AddRacesClose: many Adds racing Close all end in the store,
// whether queued before Close (and written by it) or added after; run it
// with -race.
func TestQueue_AddRacesClose(t *testing.T) {
	const writers, each = 16, 50
	l := audit.New(tokenstore.NewMemory())
	q := audit.NewQueue(l, 8, nil) // small: some Adds also write in the caller's time
	var panics atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			defer func() {
				if recover() != nil {
					panics.Add(1)
				}
			}()
			<-start
			for i := range each {
				q.Add(context.Background(), finchconnect.AuditRecord{Action: finchconnect.AuditDecrypted, ConnectionID: fmt.Sprintf("w%02d-%03d", w, i)})
			}
		})
	}
	close(start)
	q.Close()
	wg.Wait()
	if n := panics.Load(); n != 0 {
		t.Fatalf("%d writers panicked in Add", n)
	}
	all, err := l.List(t.Context(), audit.Filter{})
	if err != nil || len(all) != writers*each {
		t.Errorf("List() = %d records, %v; want %d", len(all), err, writers*each)
	}
}
