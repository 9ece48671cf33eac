package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/postgres"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
	"github.com/jackc/pgx/v5/pgxpool"
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
	url := testURL(t)
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "fc_test_" + hex.EncodeToString(b[:])
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	be, err := postgres.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return be
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
