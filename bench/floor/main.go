// Command floor is the least a Go server can do for the callback: read the
// code, make one call to Finch's /auth/token, redirect. No state, no
// encryption, no store. Its company route makes one call to Finch. It shows
// how close finchconnect comes to the limit of the same work.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	finch := flag.String("finch", "", "Finch base URL")
	flag.Parse()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]string{"client_id": "id", "client_secret": "secret", "code": r.URL.Query().Get("code")})
		res, err := client.Post(*finch+"/auth/token", "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, "upstream", 502)
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		http.Redirect(w, r, "/company", http.StatusFound)
	})
	mux.HandleFunc("GET /company", func(w http.ResponseWriter, r *http.Request) {
		res, err := client.Get(*finch + "/employer/company")
		if err != nil {
			http.Error(w, "upstream", 502)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, res.Body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln))
}
