package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

// Example mounts the Connect back-end under /finch in an app's own server,
// behind the app's own authentication, as README.md shows. Here the offline
// sandbox stands in for Finch; in production fc has no BaseURL and Finch's
// real credentials.
func Example() {
	ctx := context.Background()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	// In production: keyring.Parse(os.Getenv("FINCHCONNECT_KEYS")).
	key, err := keyring.Generate(1)
	if err != nil {
		fmt.Println(err)
		return
	}
	kr, err := keyring.Parse(key.Encode())
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "finchconnect-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	backend, err := sqlite.Open(ctx, filepath.Join(dir, "finch.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backend.Close()
	store := tokenstore.New(backend, kr)

	sb, err := sandbox.New(sandbox.Options{PublicURL: app.URL + "/sandbox"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close()
	mux.Handle("/sandbox/", http.StripPrefix("/sandbox", sb))
	fc := &finch.Client{
		BaseURL:      app.URL + "/sandbox", // production: unset, https://api.tryfinch.com
		ClientID:     sandbox.DefaultClientID,
		ClientSecret: finchconnect.NewSecret(sandbox.DefaultClientSecret),
	}

	h, err := server.New(server.Config{PublicURL: app.URL + "/finch"}, fc, store)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux.Handle("/finch/", http.StripPrefix("/finch", requireStaff(h)))

	for _, staff := range []bool{true, false} {
		req, _ := http.NewRequest("GET", app.URL+"/finch/", nil)
		if staff {
			req.Header.Set("X-Staff", "yes") // your real authentication here
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		res.Body.Close()
		fmt.Println(res.StatusCode)
	}
	// Output:
	// 200
	// 403
}

// requireStaff stands for the app's own authentication: the Connect
// back-end's pages list every employer the instance holds.
func requireStaff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Staff") != "yes" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
