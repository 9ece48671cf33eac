package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

// fixedFinch answers like Finch with no delay: any code exchanges to a new
// connection, and the company is a fixed body. It stands in for Finch so
// that the benchmark measures finchconnect, not the upstream.
func fixedFinch() *httptest.Server {
	var n atomic.Int64
	company := []byte(`{"id":"c","legal_name":"Acme LLC","ein":"12-3456789","entity":{"type":"llc","subtype":null},"primary_email":null,"primary_phone_number":null,"departments":[],"locations":[],"accounts":[]}`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/connect/sessions":
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"session_id":"s","connect_url":"http://connect.test/authorize?session=s"}`)
		case "/auth/token":
			i := n.Add(1)
			fmt.Fprintf(w, `{"access_token":"tok_%064d","token_type":"bearer","connection_id":"conn-%012d","client_type":"sandbox","connection_type":"provider","entity_ids":[],"products":["company","directory"],"provider_id":"gusto","customer_id":"c"}`, i, i)
		case "/employer/company":
			w.Write(company)
		case "/employer/directory":
			w.Write([]byte(`{"paging":{"count":0,"offset":0},"individuals":[]}`))
		default:
			w.WriteHeader(404)
		}
	}))
}

func benchBackends(b *testing.B) map[string]func(b *testing.B) tokenstore.Backend {
	return map[string]func(b *testing.B) tokenstore.Backend{
		"memory": func(b *testing.B) tokenstore.Backend { return tokenstore.NewMemory() },
		"sqlite": func(b *testing.B) tokenstore.Backend {
			be, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { be.Close() })
			return be
		},
		"redis": func(b *testing.B) tokenstore.Backend {
			u := os.Getenv("FINCHCONNECT_TEST_REDIS_URL")
			if u == "" {
				b.Skip("set FINCHCONNECT_TEST_REDIS_URL")
			}
			opts, _ := goredis.ParseURL(u)
			opts.PoolSize = 64
			c := goredis.NewClient(opts)
			prefix := fmt.Sprintf("fcbench-%d", os.Getpid())
			b.Cleanup(func() {
				iter := c.Scan(context.Background(), 0, "{"+prefix+"}*", 1000).Iterator()
				for iter.Next(context.Background()) {
					c.Del(context.Background(), iter.Val())
				}
				c.Close()
			})
			return redis.New(c, redis.Options{Prefix: prefix})
		},
	}
}

// BenchmarkCallback measures the whole callback over HTTP — state check,
// ledger claim, state spend, the exchange with a zero-latency Finch, the
// write-ahead, the sealed write, the settle — with 32 concurrent browsers.
// States are prepared before the timing.
func BenchmarkCallback(b *testing.B) {
	for _, name := range []string{"memory", "sqlite", "redis"} {
		b.Run(name, func(b *testing.B) {
			backend := benchBackends(b)[name](b)
			fin := fixedFinch()
			defer fin.Close()
			key, _ := keyring.Generate(1)
			kr, _ := keyring.New(key)
			store := tokenstore.New(backend, kr)
			srv, err := server.New(server.Config{PublicURL: "http://app.test", CallbackLimit: server.RateLimit{PerMinute: -1}, ConnectLimit: server.RateLimit{PerMinute: -1}, Logger: discard},
				&finch.Client{BaseURL: fin.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret")}, store)
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			urls := make([]string, b.N)
			for i := range urls {
				flow, err := srv.Protocol().StartFlow(context.Background(), connect.FlowRequest{CustomerID: "c", CustomerName: "C", Products: []string{"company"}, Embedded: true})
				if err != nil {
					b.Fatal(err)
				}
				body, _ := json.Marshal(map[string]string{"code": fmt.Sprintf("code-%d", i), "state": flow.State})
				urls[i] = string(body)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var next, failed atomic.Int64
			b.ResetTimer()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := urls[next.Add(1)-1]
					res, err := client.Post(ts.URL+"/callback", "application/json", strings.NewReader(body))
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Errorf("%d callbacks failed", n)
			}
		})
	}
}

// BenchmarkCompanyPage measures the read path: the company page for a
// stored connection (decrypt the token, call Finch, render).
func BenchmarkCompanyPage(b *testing.B) {
	for _, name := range []string{"memory", "sqlite", "redis"} {
		b.Run(name, func(b *testing.B) {
			backend := benchBackends(b)[name](b)
			fin := fixedFinch()
			defer fin.Close()
			key, _ := keyring.Generate(1)
			kr, _ := keyring.New(key)
			store := tokenstore.New(backend, kr)
			fc := &finch.Client{BaseURL: fin.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret")}
			srv, _ := server.New(server.Config{PublicURL: "http://app.test", Logger: discard}, fc, store)
			conn, err := fc.ExchangeCode(context.Background(), "x", "")
			if err != nil {
				b.Fatal(err)
			}
			conn.Status = "connected"
			if err := store.Put(context.Background(), conn); err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			page := ts.URL + "/connections/" + url.PathEscape(conn.ConnectionID)
			b.ResetTimer()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get(page)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
					}
				}
			})
		})
	}
}

// discard is the logger of benchmarks and fuzzing: a nil Config.Logger is
// slog.Default(), which would write a line per request.
var discard = slog.New(slog.DiscardHandler)
