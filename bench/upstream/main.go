// Command upstream answers like Finch with no delay, for the load runs:
// POST /auth/token (JSON body with a code) mints a new connection for any
// code, POST /connect/sessions a session, and /employer/company and
// /employer/directory answer fixed bodies to any bearer token. It keeps no
// state, so it is never what limits a benchmark, and it costs the shared
// CPUs as little as an HTTP server can.
//
// finchconnect's own sandbox (`finchconnect sandbox`) checks codes, tokens
// and scopes like Finch; it serves about 30,000 exchanges a second on this
// machine (BENCHMARKS.md), but on two shared cores every microsecond it
// spends is taken from the target being measured, and minting each code
// through its Connect pages would dominate the preparation. Hence this
// stand-in.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler() http.Handler {
	var n atomic.Int64
	company := []byte(`{"id":"c","legal_name":"Acme LLC","ein":"12-3456789","entity":{"type":"llc","subtype":null},"primary_email":"a@acme.test","primary_phone_number":null,"departments":[{"name":"Eng","parent":null}],"locations":[],"accounts":[]}`)
	directory := []byte(`{"paging":{"count":1,"offset":0},"individuals":[{"id":"i1","first_name":"Ada","middle_name":null,"last_name":"L","is_active":true,"department":{"name":"Eng"},"manager":null}]}`)
	bearer := func(w http.ResponseWriter, r *http.Request) bool {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || tok == "" || tok == "null" || tok == "undefined" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"statusCode":401,"status":401,"code":401,"message":"Unauthorized","name":"unauthorized_error"}`))
			return false
		}
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		// Finch wants a JSON body; the seed's unfixed example sends none.
		var req struct {
			ClientID string `json:"client_id"`
			Code     string `json:"code"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&req); err != nil || req.Code == "" || req.ClientID == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok_%058d","token_type":"bearer","connection_id":"conn-%012d","client_type":"sandbox","connection_type":"provider","entity_ids":[],"products":["company","directory"],"provider_id":"gusto","customer_id":"c","customer_name":"C"}`, i, i)
	})
	mux.HandleFunc("POST /connect/sessions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		i := n.Add(1)
		fmt.Fprintf(w, `{"session_id":"s%d","connect_url":"http://connect.test/authorize?session=s%d"}`, i, i)
	})
	mux.HandleFunc("GET /employer/company", func(w http.ResponseWriter, r *http.Request) {
		if bearer(w, r) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(company)
		}
	})
	mux.HandleFunc("GET /employer/directory", func(w http.ResponseWriter, r *http.Request) {
		if bearer(w, r) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(directory)
		}
	})
	return mux
}
