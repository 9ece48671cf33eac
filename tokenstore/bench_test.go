package tokenstore_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

// benchToken is 64 bytes, the size the keyring benchmarks use.
const benchToken = "a7c3e1d2-9b8f-4e6a-8c1d-2f3e4a5b6c7d-0123456789abcdef0123456789a"

func benchBackends(b *testing.B) map[string]func(b *testing.B) tokenstore.Backend {
	return map[string]func(b *testing.B) tokenstore.Backend{
		"memory": func(b *testing.B) tokenstore.Backend { return tokenstore.NewMemory() },
		"sqlite": func(b *testing.B) tokenstore.Backend {
			be, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { be.Close() })
			return be
		},
	}
}

func benchConn(i int) finchconnect.Connection {
	c := conn(fmt.Sprintf("conn-%08d", i), benchToken)
	c.Products = []string{"company", "directory", "individual", "employment", "payment", "pay_statement"}
	c.EntityIDs = []string{"2f2c1c55-6a4b-4a8e-9d8e-3f1a1b2c3d4e"}
	return c
}

// BenchmarkStore_Put is the whole write path: a read for CreatedAt, JSON,
// sealing, and the compare-and-set write.
func BenchmarkStore_Put(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			kr, _ := mustKeyring(b, 1)
			s := tokenstore.New(benchBackends(b)[name](b), kr)
			i := 0
			for b.Loop() {
				if err := s.Put(b.Context(), benchConn(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkStore_Get is the whole read path: the row, JSON, and opening the
// token.
func BenchmarkStore_Get(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			kr, _ := mustKeyring(b, 1)
			s := tokenstore.New(benchBackends(b)[name](b), kr)
			const n = 1000
			for i := range n {
				if err := s.Put(b.Context(), benchConn(i)); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				if _, err := s.Get(b.Context(), fmt.Sprintf("conn-%08d", i%n)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkMemory_PutRow(b *testing.B) {
	m := tokenstore.NewMemory()
	row := tokenstore.Row{Meta: make([]byte, 300), Sealed: make([]byte, 97), Status: "connected"}
	i := 0
	for b.Loop() {
		row.ID = fmt.Sprintf("conn-%08d", i)
		if _, err := m.PutRow(b.Context(), row, tokenstore.AnyVersion); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemory_GetRow(b *testing.B) {
	m := tokenstore.NewMemory()
	for i := range 1000 {
		m.PutRow(b.Context(), tokenstore.Row{ID: fmt.Sprintf("conn-%08d", i), Meta: make([]byte, 300), Sealed: make([]byte, 97)}, 0)
	}
	i := 0
	for b.Loop() {
		if _, err := m.GetRow(b.Context(), fmt.Sprintf("conn-%08d", i%1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemory_Claim(b *testing.B) {
	m := tokenstore.NewMemory()
	v := make([]byte, 200)
	i := 0
	for b.Loop() {
		if err := m.Claim(b.Context(), fmt.Sprintf("callback:%08d", i), v, 10*time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
