package tokenstore_test

import (
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

func TestMemory_Conformance(t *testing.T) {
	tokenstoretest.RunClocked(t, func(t *testing.T, now func() time.Time) tokenstore.Backend {
		m := tokenstore.NewMemory()
		m.Now = now
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestMemory_Store(t *testing.T) {
	tokenstoretest.RunStore(t, func(t *testing.T) tokenstore.Backend {
		m := tokenstore.NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}
