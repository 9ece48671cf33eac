package redis_test

import (
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

func BenchmarkBackend(b *testing.B) {
	tokenstoretest.Benchmark(b, func(b *testing.B) tokenstore.Backend {
		be, _ := newTestBackend(b)
		return be
	})
}
