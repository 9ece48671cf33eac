// Command floor is the least a Go server can do for the callback: read the
// code, make one call to Finch's /auth/token, read the answer, redirect. No
// state, no encryption, no store, no exactly-once handling. Its company
// route makes one call to Finch's /employer/company with a fixed token (it
// has no store to read one from). It shows how close finchconnect comes to
// the limit of the same work on the same machine.
package main

import (
	"bytes"
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
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	finch := fs.String("finch", "", "Finch base URL (bench/upstream's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *finch == "" {
		return errors.New("-finch is required")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]string{"client_id": "id", "client_secret": "secret", "code": r.URL.Query().Get("code")})
		res, err := client.Post(*finch+"/auth/token", "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		var tok struct {
			AccessToken  string `json:"access_token"`
			ConnectionID string `json:"connection_id"`
		}
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, "/company", http.StatusFound)
	})
	mux.HandleFunc("GET /company", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, *finch+"/employer/company", nil)
		req.Header.Set("Authorization", "Bearer tok_floor")
		res, err := client.Do(req)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, io.LimitReader(res.Body, 1<<20))
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
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
