package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

// mustOpen opens a fresh database in a temporary folder and closes it when
// the test ends.
func mustOpen(tb testing.TB, opts options) *Backend {
	tb.Helper()
	b, err := open(tb.Context(), filepath.Join(tb.TempDir(), "sub", "vault.db"), opts)
	if err != nil {
		tb.Fatalf("open() err = %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

func TestBackend_Conformance(t *testing.T) {
	tokenstoretest.Run(t, func(t *testing.T) tokenstore.Backend { return mustOpen(t, options{}) })
}

// The shared-pool layout is only kept for the benchmarks' comparison, but
// it must be just as correct.
func TestBackend_ConformanceSharedPool(t *testing.T) {
	tokenstoretest.Run(t, func(t *testing.T) tokenstore.Backend { return mustOpen(t, options{sharedPool: true}) })
}

func TestBackend_Store(t *testing.T) {
	tokenstoretest.RunStore(t, func(t *testing.T) tokenstore.Backend { return mustOpen(t, options{}) })
}
