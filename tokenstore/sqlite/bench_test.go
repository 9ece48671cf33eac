package sqlite

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// benchRow is the size of a real row: ~300 bytes of metadata and a sealed
// 64-byte token.
func benchRow(id string) tokenstore.Row {
	return tokenstore.Row{
		ID: id, CustomerID: "cust-" + id, ProviderID: "gusto", Status: "connected",
		Meta:   []byte(`{"connection_id":"` + id + `","customer_id":"cust","customer_name":"Acme Corporation","provider_id":"gusto","products":["company","directory","individual","employment","payment","pay_statement"],"entity_ids":["2f2c1c55-6a4b-4a8e-9d8e-3f1a1b2c3d4e"],"connection_type":"provider","client_type":"production","status":"connected","created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z"}`),
		Sealed: make([]byte, 64+33),
	}
}

func BenchmarkPutRow(b *testing.B) {
	be := mustOpen(b, options{})
	i := 0
	for b.Loop() {
		if _, err := be.PutRow(b.Context(), benchRow(fmt.Sprintf("conn-%08d", i)), tokenstore.AnyVersion); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetRow(b *testing.B) {
	be := mustOpen(b, options{})
	const n = 1000
	for i := range n {
		if _, err := be.PutRow(b.Context(), benchRow(fmt.Sprintf("conn-%08d", i)), 0); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		if _, err := be.GetRow(b.Context(), fmt.Sprintf("conn-%08d", i%n)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkClaim(b *testing.B) {
	be := mustOpen(b, options{})
	v := make([]byte, 200)
	i := 0
	for b.Loop() {
		if err := be.Claim(b.Context(), fmt.Sprintf("callback:%08d", i), v, 10*time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// runParallel runs op from 64 goroutines (whatever GOMAXPROCS is), the
// callback path's shape under load, and reports the process's CPU time per
// write (wall time is mostly fsync waits, and CPU is what the rest of the
// product competes for), p99 latency, and how many writes shared each
// commit.
func runParallel(b *testing.B, op func(be *Backend, i int64) error) {
	var commits, ops atomic.Int64
	be := mustOpen(b, options{afterBatch: func(n int, ok bool) {
		if ok {
			commits.Add(1)
			ops.Add(int64(n))
		}
	}})
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if err := op(be, seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if cpu1, ok := cpuTime(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	if n := commits.Load(); n > 0 {
		b.ReportMetric(float64(ops.Load())/float64(n), "writes/commit")
	}
}

func BenchmarkPutRowParallel(b *testing.B) {
	runParallel(b, func(be *Backend, i int64) error {
		_, err := be.PutRow(b.Context(), benchRow(fmt.Sprintf("conn-%08d", i)), tokenstore.AnyVersion)
		return err
	})
}

func BenchmarkClaimParallel(b *testing.B) {
	v := make([]byte, 200)
	runParallel(b, func(be *Backend, i int64) error {
		return be.Claim(b.Context(), fmt.Sprintf("callback:%08d", i), v, 10*time.Minute)
	})
}

// BenchmarkLayout compares the dedicated writer connection with one shared
// pool, under 16 concurrent goroutines per core, for a write-only load
// (callbacks claiming ledger keys and storing rows) and a mixed load (one
// write in five). It reports p99 latency next to ns/op, because a shared
// pool's cost shows most in the tail: losers of the write lock sleep in
// SQLite's busy handler.
func BenchmarkLayout(b *testing.B) {
	for _, layout := range []struct {
		name string
		opts options
	}{{"single-writer", options{}}, {"shared-pool", options{sharedPool: true}}} {
		for _, load := range []struct {
			name       string
			writeEvery int
		}{{"writes", 1}, {"mixed", 5}} {
			b.Run(layout.name+"/"+load.name, func(b *testing.B) {
				be := mustOpen(b, layout.opts)
				for i := range 500 {
					if _, err := be.PutRow(b.Context(), benchRow(fmt.Sprintf("conn-%08d", i)), 0); err != nil {
						b.Fatal(err)
					}
				}
				var seq atomic.Int64
				var mu sync.Mutex
				var lat []time.Duration
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						i := seq.Add(1)
						start := time.Now()
						var err error
						switch {
						case i%int64(load.writeEvery) != 0:
							_, err = be.GetRow(b.Context(), fmt.Sprintf("conn-%08d", i%500))
						case i%2 == 0:
							err = be.Claim(b.Context(), fmt.Sprintf("callback:%d", i), []byte("pending"), time.Minute)
						default:
							_, err = be.PutRow(b.Context(), benchRow(fmt.Sprintf("conn-%08d", i%500)), tokenstore.AnyVersion)
						}
						if err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				b.StopTimer()
				if len(lat) > 0 {
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				}
			})
		}
	}
}
