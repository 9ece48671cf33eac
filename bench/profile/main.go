// Command profile mounts finchconnect's Connect back-end (server.New) the
// way `finchconnect serve` wires it — metrics around the store and the
// Finch client, the audit trail written off the request path, the journal —
// and serves net/http/pprof on a second loopback listener, so that CPU and
// allocation profiles can be taken while bench/load drives it. The product
// itself exposes no pprof, and nothing is added to it for this.
//
// It prints "listening on URL" and "pprof on URL". bench/run.sh uses it when
// run with PROFILE=1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/metrics"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address of the Connect back-end")
	pprofAddr := fs.String("pprof-addr", "127.0.0.1:0", "address of net/http/pprof (keep it on loopback)")
	storeURL := fs.String("store", "", "sqlite:///path/to.db or redis://host:port/db?prefix=NAME")
	finchURL := fs.String("finch", "", "Finch base URL (bench/upstream's)")
	dataDir := fs.String("data-dir", "", "folder for the journal (default: a new temporary folder)")
	keyFile := fs.String("api-key-file", "", "if set, create a read API key and write it to this file (mode 0600)")
	idle := fs.Int("finch-idle-conns", 0, "idle connections kept per Finch host; 0 keeps finch.NewTransport's pool, as finchconnect serve does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *storeURL == "" || *finchURL == "" {
		return errors.New("-store and -finch are required")
	}
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "finchconnect-profile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dataDir = d
	}
	backend, err := openBackend(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer backend.Close()
	key, err := keyring.Generate(1)
	if err != nil {
		return err
	}
	kr, err := keyring.New(key)
	if err != nil {
		return err
	}
	m := metrics.New()
	instrumented := m.Backend(backend)
	store := tokenstore.New(instrumented, kr)
	journal, err := store.OpenJournal(filepath.Join(*dataDir, "journal"))
	if err != nil {
		return err
	}
	defer journal.Close()
	if *keyFile != "" {
		secret, _, err := apikey.Create(ctx, instrumented, "bench", apikey.ScopeRead)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*keyFile, []byte(secret.Reveal()+"\n"), 0o600); err != nil {
			return err
		}
	}

	// As `finchconnect serve` does: audit records queue for one writer,
	// which writes them in batches, so a request does not wait for its
	// record's store write.
	auditQ := audit.NewQueue(audit.New(instrumented), 4096, nil)
	defer auditQ.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// As finchconnect serve does: finch.NewTransport's idle pool, no
	// redirects; the flag tries another pool size against it.
	transport := finch.NewTransport()
	if *idle > 0 {
		transport.MaxIdleConns, transport.MaxIdleConnsPerHost = *idle, *idle
	}
	fc := &finch.Client{BaseURL: *finchURL, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret"), HTTPClient: &http.Client{Transport: m.Transport(transport), CheckRedirect: finch.NoRedirects}}
	srv, err := server.New(server.Config{
		PublicURL:     "http://" + ln.Addr().String(),
		Journal:       journal,
		Audit:         auditQ.Add,
		ConnectLimit:  server.RateLimit{PerMinute: -1},
		CallbackLimit: server.RateLimit{PerMinute: -1},
	}, fc, store, server.WithObserver(m.Callback))
	if err != nil {
		return err
	}

	pln, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		return err
	}
	pmux := http.NewServeMux()
	pmux.HandleFunc("/debug/pprof/", pprof.Index)
	pmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	pmux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	servers := []*http.Server{
		{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 3 * time.Minute, IdleTimeout: 2 * time.Minute},
		// A CPU profile streams for as long as it was asked to run.
		{Handler: pmux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Minute},
	}
	errc := make(chan error, 2)
	for i, l := range []net.Listener{ln, pln} {
		go func() { errc <- servers[i].Serve(l) }()
	}
	fmt.Fprintf(stdout, "listening on http://%s\npprof on http://%s\n", ln.Addr(), pln.Addr())
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// openBackend opens the store a URL names, as `finchconnect -store` reads
// it, for the two stores of the load runs.
func openBackend(ctx context.Context, raw string) (tokenstore.Backend, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("-store: not a URL")
	}
	switch u.Scheme {
	case "sqlite":
		return sqlite.Open(ctx, u.Host+u.Path)
	case "redis":
		return redis.Open(ctx, raw)
	default:
		return nil, fmt.Errorf("-store: scheme %q: want sqlite or redis", u.Scheme)
	}
}
