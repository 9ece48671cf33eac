package tokenstoretest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// Benchmark measures a backend's PutRow, GetRow and Claim, one at a time and
// from 32 goroutines at once (the parallel form is what a busy callback
// path looks like). newBackend must return an empty backend, as for [Run].
func Benchmark(b *testing.B, newBackend func(b *testing.B) tokenstore.Backend) {
	row := func(id string) tokenstore.Row {
		return tokenstore.Row{
			ID: id, CustomerID: "cust-" + id, ProviderID: "gusto", Status: "connected",
			Meta:   []byte(`{"connection_id":"` + id + `","customer_id":"cust","customer_name":"Acme Corporation","provider_id":"gusto","products":["company","directory","individual","employment"],"connection_type":"provider","client_type":"production","status":"connected"}`),
			Sealed: make([]byte, 64+33),
		}
	}
	var seq atomic.Int64
	next := func() string { return fmt.Sprintf("id-%010d", seq.Add(1)) }
	ops := map[string]func(b *testing.B, be tokenstore.Backend, ids []string) func(){
		"PutRow": func(b *testing.B, be tokenstore.Backend, _ []string) func() {
			return func() {
				if _, err := be.PutRow(b.Context(), row(next()), tokenstore.AnyVersion); err != nil {
					b.Error(err)
				}
			}
		},
		"GetRow": func(b *testing.B, be tokenstore.Backend, ids []string) func() {
			return func() {
				if _, err := be.GetRow(b.Context(), ids[seq.Add(1)%int64(len(ids))]); err != nil {
					b.Error(err)
				}
			}
		},
		"Claim": func(b *testing.B, be tokenstore.Backend, _ []string) func() {
			v := make([]byte, 200)
			return func() {
				if err := be.Claim(b.Context(), "callback/"+next(), v, 10*time.Minute); err != nil {
					b.Error(err)
				}
			}
		},
	}
	for _, name := range []string{"PutRow", "GetRow", "Claim"} {
		for _, parallel := range []bool{false, true} {
			label := name + "/serial"
			if parallel {
				label = name + "/parallel32"
			}
			b.Run(label, func(b *testing.B) {
				be := newBackend(b)
				var ids []string
				if name == "GetRow" {
					for range 1000 {
						id := next()
						if _, err := be.PutRow(b.Context(), row(id), 0); err != nil {
							b.Fatal(err)
						}
						ids = append(ids, id)
					}
				}
				op := ops[name](b, be, ids)
				b.ResetTimer()
				if !parallel {
					for b.Loop() {
						op()
					}
					return
				}
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op()
					}
				})
			})
		}
	}
}
