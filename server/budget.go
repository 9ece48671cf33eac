package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/budget"
)

// budgetFinchCode marks finchconnect's own 429, answered when the
// application's Finch rate budget (package budget) had no permit before
// the call's deadline: the call never reached Finch.
const budgetFinchCode = "finchconnect_rate_budget"

// noBudget reports whether err is the budget's refusal, and its
// Retry-After.
func noBudget(err error) (time.Duration, bool) {
	var nb *budget.NoBudgetError
	if errors.As(err, &nb) {
		return nb.RetryAfter, true
	}
	return 0, false
}

// writeNoBudget answers a call the budget refused: 429 in Finch's shape,
// with Retry-After, named as finchconnect's own so that nobody mistakes
// it for Finch's.
func (s *Server) writeNoBudget(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64(max(wait/time.Second, 1)), 10))
	s.writeNamedError(w, r, http.StatusTooManyRequests, "rate_limit_exceeded_error", budgetFinchCode,
		"finchconnect held this call back: the application's Finch rate budget has no room before the request's deadline, so it was not sent to Finch. Retry after the Retry-After header's seconds.")
}

// background marks ctx as background work for connection id: it waits
// behind interactive calls for the Finch rate budget.
func background(ctx context.Context, id string) context.Context {
	return budget.WithConnection(budget.WithLane(ctx, budget.Background), id)
}

// PriorityHeader is the request header with which an app puts a proxied
// call in the budget's background lane ("background"): batch work such as
// its own nightly syncs, which should wait behind the reads a person waits
// for. Without it a proxied call is interactive. It is not sent to Finch.
const PriorityHeader = "Finch-Connect-Priority"

// proxyLane maps a PriorityHeader value to its lane; ok is false for a
// value that is neither empty, "interactive" nor "background".
func proxyLane(v string) (lane budget.Lane, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "interactive":
		return budget.Interactive, true
	case "background":
		return budget.Background, true
	}
	return budget.Interactive, false
}
