package pgbudget_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
	"github.com/finchconnect/finchconnect/budget/pgbudget"
	"github.com/finchconnect/finchconnect/tokenstore/postgres/postgrestest"
)

// testURL is the test PostgreSQL's URL, skipping without one — except
// under CI, where PostgreSQL must be there.
func testURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("FINCHCONNECT_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FINCHCONNECT_TEST_POSTGRES_URL is not set under CI; .ci/run sets it")
		}
		t.Skip("set FINCHCONNECT_TEST_POSTGRES_URL to run the PostgreSQL tests")
	}
	return u
}

func TestShared(t *testing.T) {
	url := testURL(t)
	budgettest.Run(t, func(t *testing.T) budget.Shared {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = postgrestest.Schema(t, url, "fcbudget")
		cfg.MaxConns = 8
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s, err := pgbudget.New(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
