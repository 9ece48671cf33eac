package main

import (
	"flag"
	"fmt"

	"github.com/finchconnect/finchconnect/budget"
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
func (a *app) attachBudget() error {
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
	b, err := budget.New(a.fc.ClientID, budget.Options{Limits: lim})
	if err != nil {
		return fmt.Errorf("cannot build the Finch rate budget: %s", plainError(err))
	}
	a.onClose(func() { b.Close() })
	a.fc.Budget = b
	return nil
}
