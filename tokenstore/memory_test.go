package tokenstore_test

import (
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

func TestMemory_Conformance(t *testing.T) {
	tokenstoretest.Run(t, func(t *testing.T) tokenstore.Backend {
		m := tokenstore.NewMemory()
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
