package pgbudget_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
	"github.com/finchconnect/finchconnect/budget/pgbudget"
	"github.com/finchconnect/finchconnect/internal/testenv"
	"github.com/finchconnect/finchconnect/tokenstore/postgres/postgrestest"
)

func TestShared(t *testing.T) {
	url := testenv.PostgresURL(t)
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
