package tokenstore_test

import (
	"fmt"
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
