package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore/postgres/postgrestest"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/postgres"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

// testURL returns the test database's URL, skipping the test without one —
// except under CI, where PostgreSQL must be there.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("FINCHCONNECT_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FINCHCONNECT_TEST_POSTGRES_URL is not set under CI; .ci/run sets it")
		}
		t.Skip("set FINCHCONNECT_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	return u
}

// NewTestBackend returns a backend in a schema of its own, dropped when the
// test ends, so tests share the server but no data.
func newTestBackend(t testing.TB) *postgres.Backend {
	t.Helper()
	return postgrestest.Open(t, testURL(t), "fc_test_", 8)
}

func TestBackend_Conformance(t *testing.T) {
	tokenstoretest.Run(t, func(t *testing.T) tokenstore.Backend { return newTestBackend(t) })
}

func TestBackend_Store(t *testing.T) {
	tokenstoretest.RunStore(t, func(t *testing.T) tokenstore.Backend { return newTestBackend(t) })
}

func TestOpen_BadURLKeepsPasswordOut(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:s3cr3tpass@[::1:5432/db")
	if err == nil {
		t.Fatal("Open with a malformed URL succeeded")
	}
	if got := err.Error(); strings.Contains(got, "s3cr3tpass") {
		t.Errorf("error %q contains the password", got)
	}
}

// TestBackend_MarkerNeverInRows writes a known token through the Store and
// reads every row of both tables as text: the token is not there.
func TestBackend_MarkerNeverInRows(t *testing.T) {
	b := newTestBackend(t)
	ctx := t.Context()
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(b, kr)
	const marker = "tok_PG_MARKER_8c41e0d2"
	if err := store.Put(ctx, finchconnect.Connection{ConnectionID: "c1", CustomerID: "cu", ProviderID: "gusto", Status: "connected", AccessToken: finchconnect.NewSecret(marker)}); err != nil {
		t.Fatal(err)
	}
	staged, err := store.SealStaged(finchconnect.Connection{ConnectionID: "c1", ProviderID: "gusto", Status: "connected", AccessToken: finchconnect.NewSecret(marker)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "callback/x", staged, time.Hour); err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, q := range []string{
		`SELECT t::text, encode(meta, 'escape'), encode(sealed, 'escape'), encode(sealed, 'base64') FROM finchconnect_connections t`,
		`SELECT t::text, encode(value, 'escape'), encode(value, 'base64') FROM finchconnect_entries t`,
	} {
		rows, err := b.Pool().Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&dump, vals...)
		}
		rows.Close()
	}
	if !strings.Contains(dump.String(), "gusto") {
		t.Fatalf("the dump holds no row; the check would prove nothing:\n%s", dump.String())
	}
	if strings.Contains(dump.String(), marker) {
		t.Error("a PostgreSQL row contains the plaintext token")
	}
}
