package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/pgbudget"
	"github.com/finchconnect/finchconnect/budget/redisbudget"
	"github.com/finchconnect/finchconnect/metrics"
)

// budgetFlags configure the Finch rate budget every call to Finch draws
// from (package budget).
type budgetFlags struct {
	mode   string
	limits string
}

func (f *budgetFlags) register(fs *flag.FlagSet) {
	enumVar(fs, &f.mode, "budget", "on", []string{"on", "off"}, "keep every call to Finch within Finch's rate limits for this client id (off: calls go out unchecked, for tests against an unlimited Finch)")
	fs.StringVar(&f.limits, "budget-limits", "", "per-product limits per 60 s that replace Finch's published numbers, e.g. payment=6,directory=10 (the rest keep Finch's)")
}

// check validates the flags without building anything.
func (f *budgetFlags) check() error {
	_, err := budget.ParseProducts(f.limits)
	if err != nil {
		return fmt.Errorf("-budget-limits: %s", plainError(err))
	}
	return nil
}

// attachBudget builds the budget of a.fc's client id and sets it on a.fc.
// In the demo the limits follow -demo-rate-limits, like its sandbox's.
func (a *app) attachBudget(ctx context.Context) error {
	if a.f.budget.mode == "off" || (a.demo && a.f.demoRateLimits == 0) {
		return nil
	}
	products, err := budget.ParseProducts(a.f.budget.limits)
	if err != nil {
		return fmt.Errorf("-budget-limits: %s", plainError(err))
	}
	lim := budget.Limits{Products: products}
	if a.demo {
		lim = lim.Scale(a.f.demoRateLimits)
	}
	shared, err := a.sharedBudget(ctx)
	if err != nil {
		return err
	}
	// Its metrics (docs/metrics.md) are labelled by the budget's table.
	bm := a.metrics.Budget(metrics.BudgetTable(lim))
	b, err := budget.New(a.fc.ClientID, budget.Options{Limits: lim, Shared: shared, Observer: bm})
	if err != nil {
		return fmt.Errorf("cannot build the Finch rate budget: %s", plainError(err))
	}
	bm.Watch(b)
	a.onClose(func() { b.Close() })
	a.fc.Budget = b
	return nil
}

// sharedBudget opens, for a Redis or PostgreSQL store, the windows every
// replica shares, on a connection of their own to the same server (the
// store's Backend is not used: its key space is the store's). SQLite and
// memory stores serve one process: nil, the budget stays in-process.
func (a *app) sharedBudget(ctx context.Context) (budget.Shared, error) {
	raw := a.f.store.storeURL()
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil // openBackend has already refused it
	}
	switch u.Scheme {
	case "redis", "rediss":
		// prefix is the store's own option: the budget's keys go below it.
		q := u.Query()
		prefix := q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
		opts, err := goredis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("cannot open the store for the Finch rate budget: %s", plainError(redactURLError(err)))
		}
		c := goredis.NewClient(opts)
		a.onClose(func() { c.Close() })
		if prefix == "" {
			prefix = "finchconnect:"
		}
		return redisbudget.New(c, prefix+"budget:"), nil
	case "postgres", "postgresql":
		pool, err := pgxpool.New(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("cannot open the store for the Finch rate budget: %s", plainError(redactURLError(err)))
		}
		a.onClose(pool.Close)
		s, err := pgbudget.New(ctx, pool)
		if err != nil {
			return nil, fmt.Errorf("cannot create the Finch rate budget's table: %s", plainError(redactURLError(err)))
		}
		return s, nil
	}
	return nil, nil
}
