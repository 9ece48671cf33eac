// Package postgrestest gives tests a PostgreSQL backend in a schema of its
// own, dropped when the test ends, so that tests share one server but no
// tables.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/finchconnect/finchconnect/tokenstore/postgres"
)

// Schema creates a schema named prefix plus random hex on the server at
// url, and drops it, with everything in it, when the test ends.
func Schema(t testing.TB, url, prefix string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	admin, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	return schema
}

// Open returns a backend on the server at url, in a fresh schema (see
// [Schema]), over a pool of at most maxConns connections closed when the
// test ends.
func Open(t testing.TB, url, prefix string, maxConns int32) *postgres.Backend {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = Schema(t, url, prefix)
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b, err := postgres.New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
