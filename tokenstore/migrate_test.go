package tokenstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
)

func TestMigrate_MemoryToMemory(t *testing.T) {
	ctx := t.Context()
	from, to := tokenstore.NewMemory(), tokenstore.NewMemory()
	const n = 10000
	for i := range n {
		r := tokenstore.Row{ID: fmt.Sprintf("c%05d", i), CustomerID: fmt.Sprintf("cu%d", i%7), ProviderID: "gusto", Status: "connected",
			Meta: []byte(fmt.Sprintf(`{"i":%d}`, i)), Sealed: []byte{1, 2, byte(i)}}
		if _, err := from.PutRow(ctx, r, tokenstore.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	if err := from.Claim(ctx, "state/a", []byte("s"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := from.Claim(ctx, "apikey/k", []byte("k"), 0); err != nil {
		t.Fatal(err)
	}
	var phases = map[string]int{}
	res, err := tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{Progress: func(p tokenstore.MigrateProgress) { phases[p.Phase] = p.Done }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != n || res.RowsCopied != n || res.Verified != n || res.Entries != 2 || res.EntriesCopied != 2 {
		t.Errorf("first Migrate = %+v, want all %d rows and 2 entries copied and verified", res, n)
	}
	if phases["connections"] != n || phases["verify"] != n {
		t.Errorf("progress reached %v, want %d in connections and verify", phases, n)
	}
	got, err := to.GetRow(ctx, "c04242")
	if err != nil || string(got.Meta) != `{"i":4242}` || got.CustomerID != "cu0" {
		t.Errorf("copied row = %+v, %v", got, err)
	}
	if e, err := to.Scan(ctx, "state/", "", 10); err != nil || len(e) != 1 || e[0].ExpiresAt.IsZero() {
		t.Errorf("copied state entries = %+v, %v; want one, with its expiry", e, err)
	}

	// A second run copies nothing and still verifies.
	res, err = tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{})
	if err != nil || res.RowsCopied != 0 || res.EntriesCopied != 0 || res.Verified != n {
		t.Errorf("second Migrate = %+v, %v; want nothing copied, all verified", res, err)
	}

	// A row changed in the source is copied again: the source wins.
	r, _ := from.GetRow(ctx, "c00001")
	r.Status = "reauth"
	if _, err := from.PutRow(ctx, r, r.Version); err != nil {
		t.Fatal(err)
	}
	res, err = tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{})
	if err != nil || res.RowsCopied != 1 {
		t.Errorf("third Migrate = %+v, %v; want one row copied", res, err)
	}
	if got, _ := to.GetRow(ctx, "c00001"); got.Status != "reauth" {
		t.Errorf("destination status = %q, want reauth", got.Status)
	}
}

// TestMigrate_KeepsVersions: a row the destination lacks is inserted at
// the source's version; one it holds with other contents takes its next
// version there.
func TestMigrate_KeepsVersions(t *testing.T) {
	ctx := t.Context()
	from, to := tokenstore.NewMemory(), tokenstore.NewMemory()
	const start = 1_772_366_400_123_456 // as a Store inserts: its clock in µs
	r := tokenstore.Row{ID: "c1", Status: "connected", Meta: []byte(`{}`), Sealed: []byte{1}, Version: start}
	if v, err := from.PutRow(ctx, r, 0); err != nil || v != start {
		t.Fatalf("PutRow(source, Version %d) = %d, %v", int64(start), v, err)
	}
	if _, err := tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := to.GetRow(ctx, "c1"); err != nil || got.Version != start {
		t.Errorf("copied row = version %d, %v; want the source's %d", got.Version, err, int64(start))
	}

	// The destination writes the row twice by itself, the source once.
	r.Status = "reauth"
	for _, expect := range []int64{start, start + 1} {
		if _, err := to.PutRow(ctx, r, expect); err != nil {
			t.Fatal(err)
		}
	}
	r.Status = "disconnected"
	if _, err := from.PutRow(ctx, r, start); err != nil {
		t.Fatal(err)
	}
	if _, err := tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := to.GetRow(ctx, "c1"); err != nil || got.Status != "disconnected" || got.Version != start+3 {
		t.Errorf("row copied over a stored one = status %q version %d, %v; want disconnected, %d (the destination's next)", got.Status, got.Version, err, int64(start+3))
	}
}

// TestMigrate_SecondPassEntries runs the documented two passes (migrate
// while the old server runs, stop it, migrate again) with entries changed,
// added and removed at the source in between: the second pass makes every
// entry the source holds equal at the destination, as it does for rows.
func TestMigrate_SecondPassEntries(t *testing.T) {
	ctx := t.Context()
	from, to := tokenstore.NewMemory(), tokenstore.NewMemory()
	for _, e := range []struct {
		key, value string
		ttl        time.Duration
	}{
		{"apikey/k", "active", 0},
		{"ledger/x", "pending", time.Hour},
		{"outbox/e", "event", 0},
		{"state/s", "s", time.Hour},
	} {
		if err := from.Claim(ctx, e.key, []byte(e.value), e.ttl); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{})
	if err != nil || res.EntriesCopied != 4 || res.EntriesOverwritten != 0 || res.EntriesVerified != 4 {
		t.Errorf("first Migrate = %+v, %v; want 4 entries copied and verified", res, err)
	}

	// Meanwhile the old server revokes the key, settles the ledger entry
	// (with a shorter ttl), delivers the event and starts a flow.
	swaps := []struct {
		key, old, value string
		ttl             time.Duration
	}{
		{"apikey/k", "active", "revoked", 0},
		{"ledger/x", "pending", "settled", 30 * time.Minute},
	}
	for _, s := range swaps {
		if err := from.Swap(ctx, s.key, []byte(s.old), []byte(s.value), s.ttl); err != nil {
			t.Fatal(err)
		}
	}
	if err := from.Forget(ctx, "outbox/e"); err != nil {
		t.Fatal(err)
	}
	if err := from.Claim(ctx, "state/t", []byte("t"), time.Hour); err != nil {
		t.Fatal(err)
	}

	res, err = tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{})
	if err != nil {
		t.Fatalf("second Migrate err = %v", err)
	}
	if res.Entries != 4 || res.EntriesCopied != 1 || res.EntriesOverwritten != 2 || res.EntriesVerified != 4 {
		t.Errorf("second Migrate = %+v; want 4 entries: 1 copied, 2 overwritten, 4 verified", res)
	}
	want := map[string]string{
		"apikey/k": "revoked",
		"ledger/x": "settled",
		"outbox/e": "event", // absent from the source: left alone (see Migrate)
		"state/s":  "s",
		"state/t":  "t",
	}
	for k, w := range want {
		if got, err := to.Load(ctx, k); err != nil || string(got) != w {
			t.Errorf("destination Load(%s) = %q, %v; want %q", k, got, err, w)
		}
	}
	// An overwritten entry takes the source's remaining time to live.
	es, err := to.Scan(ctx, "ledger/", "", 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("destination Scan(ledger/) = %+v, %v; want one entry", es, err)
	}
	if d := time.Until(es[0].ExpiresAt); d <= 29*time.Minute || d > 30*time.Minute {
		t.Errorf("overwritten ledger entry expires in %v, want the source's 30m", d)
	}
	es, err = to.Scan(ctx, "apikey/", "", 0)
	if err != nil || len(es) != 1 || !es[0].ExpiresAt.IsZero() {
		t.Errorf("destination Scan(apikey/) = %+v, %v; want one entry that never expires", es, err)
	}

	// A third pass finds nothing to do.
	res, err = tokenstore.Migrate(ctx, from, to, tokenstore.MigrateOptions{})
	if err != nil || res.EntriesCopied != 0 || res.EntriesOverwritten != 0 || res.EntriesVerified != 4 {
		t.Errorf("third Migrate = %+v, %v; want nothing copied or overwritten, 4 verified", res, err)
	}
}

// lostSwaps is a Backend whose Swap reports success and writes nothing.
type lostSwaps struct{ tokenstore.Backend }

func (lostSwaps) Swap(context.Context, string, []byte, []byte, time.Duration) error { return nil }

// TestMigrate_VerifiesEntries checks that an entry the destination did not
// keep fails the migration, as a row does.
func TestMigrate_VerifiesEntries(t *testing.T) {
	ctx := t.Context()
	from, mem := tokenstore.NewMemory(), tokenstore.NewMemory()
	if err := from.Claim(ctx, "apikey/k", []byte("revoked"), 0); err != nil {
		t.Fatal(err)
	}
	if err := mem.Claim(ctx, "apikey/k", []byte("active"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := tokenstore.Migrate(ctx, from, lostSwaps{mem}, tokenstore.MigrateOptions{})
	if err == nil || !strings.Contains(err.Error(), "apikey/k") {
		t.Errorf("Migrate to a destination that loses writes err = %v, want an error naming apikey/k", err)
	}
}
