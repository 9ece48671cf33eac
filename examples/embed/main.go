// Command embed mounts finchconnect's Connect back-end under /finch in an
// app's own net/http server, behind the app's own sign-in. It is the
// program README.md shows under "Embed it in your app"; CI builds it and
// runs it against the sandbox.
//
//	(umask 077 && go run ./cmd/finchconnect keygen > embed-keys)   # once, kept with finch.db
//	export FINCHCONNECT_KEYS="$(cat embed-keys)" STAFF_PASSWORD=…
//	export FINCH_CLIENT_ID=… FINCH_CLIENT_SECRET=…   # FINCH_BASE_URL too, for the sandbox
//	go run ./examples/embed
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"log"
	"net/http"
	"os"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/events"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

func main() {
	ctx := context.Background()
	backend, err := sqlite.Open(ctx, "finch.db") // or redis.Open, postgres.Open for many replicas
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	h, err := newHandler(backend, os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/finch/", http.StripPrefix("/finch", h))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

// newHandler builds the Connect back-end on backend, configured from getenv,
// behind requireStaff.
func newHandler(backend tokenstore.Backend, getenv func(string) string) (http.Handler, error) {
	kr, err := keyring.Parse(getenv("FINCHCONNECT_KEYS"))
	if err != nil {
		return nil, err
	}
	fc := &finch.Client{
		BaseURL:      getenv("FINCH_BASE_URL"), // "" is https://api.tryfinch.com
		ClientID:     getenv("FINCH_CLIENT_ID"),
		ClientSecret: finchconnect.NewSecret(getenv("FINCH_CLIENT_SECRET")),
	}
	outbox := events.NewOutbox(backend) // deliver with events.Deliverer, see docs/events.md
	auditLog := audit.New(backend)
	h, err := server.New(server.Config{
		PublicURL: getenv("APP_PUBLIC_URL") + "/finch", // e.g. https://app.example.com
		Notify:    outbox.Publish,
		Audit: func(ctx context.Context, r finchconnect.AuditRecord) {
			if err := auditLog.Record(ctx, r); err != nil {
				log.Printf("audit: %v", err)
			}
		},
		// Journal: nil, so a token the store cannot take during an outage is
		// disconnected at Finch and the employer asked to connect again;
		// docs/scaling.md shows how to keep it instead.
	}, fc, tokenstore.New(backend, kr))
	if err != nil {
		return nil, err
	}
	staff, err := requireStaff(h, getenv("STAFF_PASSWORD"))
	if err != nil {
		return nil, err
	}
	// The pages list every employer: staff only. The rest has its own
	// guard: the callback a state bound to the browser, /v1 API keys,
	// Finch's webhooks their signature.
	mux := http.NewServeMux()
	mux.Handle("/", staff)
	for _, open := range []string{"/callback", "/v1/", "/webhooks/finch", "/static/", "/healthz", "/readyz"} {
		mux.Handle(open, h)
	}
	return mux, nil
}

// requireStaff stands for the app's own sign-in: the Connect back-end's pages
// list every employer the instance holds, so only staff may see them.
func requireStaff(h http.Handler, password string) (http.Handler, error) {
	if len(password) < 12 {
		return nil, errors.New("set STAFF_PASSWORD to at least 12 characters")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, got, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="staff"`)
			http.Error(w, "sign in as staff", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
