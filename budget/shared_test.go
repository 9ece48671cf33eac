package budget_test

import (
	"testing"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
)

// TestMemoryShared runs the conformance suite on the in-memory store, so
// that the shared-window logic (leases per lane, the reserve across
// replicas) is tested without Redis or PostgreSQL.
func TestMemoryShared(t *testing.T) {
	budgettest.Run(t, func(t *testing.T) budget.Shared { return budgettest.NewMemory() })
}
