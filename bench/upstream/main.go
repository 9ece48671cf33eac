// Command upstream answers like Finch with no delay, for load runs: any
// code exchanges to a new connection, sessions and company are fixed
// bodies. It keeps no state, so it is never what limits a benchmark.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	var n atomic.Int64
	company := []byte(`{"id":"c","legal_name":"Acme LLC","ein":"12-3456789","entity":{"type":"llc","subtype":null},"primary_email":"a@acme.test","primary_phone_number":null,"departments":[{"name":"Eng","parent":null}],"locations":[],"accounts":[]}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok_%058d","token_type":"bearer","connection_id":"conn-%012d","client_type":"sandbox","connection_type":"provider","entity_ids":[],"products":["company","directory"],"provider_id":"gusto","customer_id":"c","customer_name":"C"}`, i, i)
	})
	mux.HandleFunc("POST /connect/sessions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"session_id":"s%d","connect_url":"http://connect.test/authorize?session=s"}`, n.Add(1))
	})
	mux.HandleFunc("GET /employer/company", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(company)
	})
	mux.HandleFunc("GET /employer/directory", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"paging":{"count":1,"offset":0},"individuals":[{"id":"i1","first_name":"Ada","last_name":"L","is_active":true,"department":{"name":"Eng"},"manager":null}]}`))
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.Serve(ln))
}
