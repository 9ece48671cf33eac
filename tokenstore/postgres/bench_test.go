package postgres_test

import (
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
)

func BenchmarkBackend(b *testing.B) {
	tokenstoretest.Benchmark(b, func(b *testing.B) tokenstore.Backend { return newTestBackend(b) })
}
