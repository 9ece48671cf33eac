package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/finchconnect/finchconnect"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/metrics"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// The demo's sandbox answers to these credentials; they are the sandbox's
// documented defaults.
const (
	demoClientID     = "sandbox-client-id"
	demoClientSecret = "sandbox-client-secret"
)

// serveFlags are the settings of `finchconnect serve`.
type serveFlags struct {
	addr, publicURL, products string
	store                     storeFlags
	clientID, clientSecret    string
	finchBaseURL, sandboxMode string
	logFormat, logLevel       string
	shutdownTimeout           time.Duration
	connectLimit              float64
	recoverAfter              time.Duration
	keysReload                time.Duration
	returnOrigins             string
	callbackLimit             float64
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:3000", "address to listen on")
	fs.StringVar(&f.publicURL, "public-url", "", "URL browsers reach this server at; redirect_uri is this plus /callback (default http://ADDR)")
	fs.StringVar(&f.products, "products", "company,directory,individual,employment", "products ticked by default on the connect form, comma-separated")
	f.store.register(fs)
	fs.StringVar(&f.clientID, "client-id", "", "Finch client id; without it and -client-secret, the offline demo runs")
	fs.StringVar(&f.clientSecret, "client-secret", "", "Finch client secret")
	fs.StringVar(&f.finchBaseURL, "finch-base-url", "https://api.tryfinch.com", "Finch API base URL (point it at `finchconnect sandbox` to test offline)")
	fs.StringVar(&f.sandboxMode, "sandbox", "", `Connect session "sandbox" field: finch or provider (Finch's own sandboxes)`)
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Float64Var(&f.connectLimit, "connect-limit", 20, "flows one client address may start per minute (0 disables)")
	fs.Float64Var(&f.callbackLimit, "callback-limit", 120, "callbacks one client address may make per minute (0 disables)")
	fs.DurationVar(&f.recoverAfter, "recover-after", 3*time.Minute, "how long a callback may be in flight before it counts as abandoned by a crashed process")
	fs.StringVar(&f.returnOrigins, "return-origins", "", "origins (https://app.example.com), comma-separated, besides -public-url's, that API-started flows may return the browser to")
	fs.DurationVar(&f.keysReload, "keys-reload", 10*time.Second, "how often to re-read a changed key file, so `keys rotate` needs no restart (0 disables)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on shutdown")
}

const serveSynopsis = "finchconnect [serve] [flags]"

// runServe runs the Connect back-end until ctx is cancelled (SIGINT or
// SIGTERM in main), then shuts down gracefully: the listener closes, in-flight
// callbacks finish and are stored, and the store closes last.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	lcF := registerLifecycleFlags(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return handleParseError(err, fs, stdout, stderr, serveSynopsis)
	}
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	demo := f.clientID == "" && f.clientSecret == ""
	if !demo && (f.clientID == "" || f.clientSecret == "") {
		return errors.New("-client-id (FINCH_CLIENT_ID) and -client-secret (FINCH_CLIENT_SECRET) go together: set both, or neither for the demo")
	}
	if demo {
		f.store.demo = true
	}
	kr, err := f.store.keyring(stderr)
	if err != nil {
		return err
	}
	backend, err := f.store.open(ctx)
	if err != nil {
		return err
	}
	defer backend.Close()
	// Metrics see every store operation and every call to Finch.
	m := metrics.New()
	backend = m.Backend(backend)
	store := tokenstore.New(backend, kr)
	// The Finch client keeps its own pool of connections (not
	// http.DefaultTransport's two idle per host) and never follows redirects.
	finchHTTP := &http.Client{Transport: m.Transport(finch.NewTransport()), CheckRedirect: finch.NoRedirects}

	// Listen before anything else starts, so a busy port is reported at once
	// and -addr 127.0.0.1:0 yields the real address.
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	defer ln.Close()
	publicURL := strings.TrimSuffix(f.publicURL, "/")
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}

	mux := http.NewServeMux()
	fc := &finch.Client{BaseURL: f.finchBaseURL, ClientID: f.clientID, ClientSecret: secret(f.clientSecret), HTTPClient: finchHTTP}
	var sb *sandbox.Server
	webhookSecrets := lcF.webhookSecrets()
	if demo {
		// The demo's sandbox sends its webhooks to this server, signed
		// with a secret made for this run, so the whole lifecycle runs.
		demoSecret := base64.StdEncoding.EncodeToString([]byte(randomString(32)))
		webhookSecrets = append(webhookSecrets, finchconnect.NewSecret(demoSecret))
		// The demo runs the sandbox in-process under /finch on the same
		// listener, so one URL serves both the app and the Connect pages.
		sb, err = sandbox.New(sandbox.Options{
			ClientID:      demoClientID,
			ClientSecret:  demoClientSecret,
			PublicURL:     publicURL + "/finch",
			DataFile:      filepath.Join(f.store.dataDir, "sandbox.json"),
			Logger:        logger.With("component", "sandbox"),
			WebhookURL:    "http://" + ln.Addr().String() + "/webhooks/finch",
			WebhookSecret: demoSecret,
		})
		if err != nil {
			return err
		}
		defer sb.Close()
		mux.Handle("/finch/", http.StripPrefix("/finch", sb))
		fc = &finch.Client{BaseURL: "http://" + ln.Addr().String() + "/finch", ClientID: demoClientID, ClientSecret: finchconnect.NewSecret(demoClientSecret), HTTPClient: finchHTTP}
	}
	// Tokens exchanged while the store is down wait, sealed, in a local
	// journal, and are replayed as soon as it answers again.
	journal, err := store.OpenJournal(filepath.Join(f.store.dataDir, "journal"))
	if err != nil {
		return err
	}
	defer journal.Close()

	deps := &appDeps{logger: logger, store: store, backend: backend, finch: fc, publicURL: publicURL, dataDir: f.store.dataDir, demo: demo, metrics: m}
	lc, err := startLifecycle(ctx, lcF, deps)
	if err != nil {
		return err
	}
	defer lc.stop()

	products := splitList(f.products)
	srv, err := server.New(server.Config{
		PublicURL:      publicURL,
		Products:       products,
		Sandbox:        f.sandboxMode,
		Logger:         logger,
		Notify:         lc.notify,
		Audit:          lc.audit,
		Observe:        lc.observe,
		Failpoint:      failpoint(getenv),
		WebhookSecrets: webhookSecrets,
		Journal:        journal,
		RecoverAfter:   f.recoverAfter,
		ReturnOrigins:  splitList(f.returnOrigins),
		// Bursts: a page of tabs for /connect; a crowd of duplicates for
		// /callback, which are cheap once the first has claimed the code.
		ConnectLimit:  rateLimit(f.connectLimit, 1),
		CallbackLimit: rateLimit(f.callbackLimit, 2),
	}, fc, store)
	if err != nil {
		return err
	}
	// Finish what a crashed predecessor left half done before serving.
	replayed, err := journal.Replay(ctx)
	if err != nil {
		logger.Warn("replay the journal", "err", err, "pending", journal.Pending())
	} else if len(replayed) > 0 {
		logger.Info("replayed the journal into the store", "connections", len(replayed))
	}
	srv.SettleReplayed(ctx, replayed)
	if res, err := srv.Recover(ctx); err != nil {
		logger.Error("recover callbacks", "err", err)
	} else if res.Stored+res.Interrupted > 0 {
		logger.Warn("recovered callbacks", "stored", res.Stored, "interrupted", res.Interrupted)
	}
	// A key file that changes (keys rotate) is re-read, so rotation needs
	// no restart.
	keyFile := f.store.keyFilePath()
	keyStamp := fileStamp(keyFile)
	reloadKeys := func() {
		stamp := fileStamp(keyFile)
		if stamp == keyStamp {
			return
		}
		kr, err := keyring.LoadFile(keyFile)
		if err != nil {
			logger.Error("reload the key file; keeping the current keys", "err", err)
			return
		}
		keyStamp = stamp
		store.SetKeyring(kr)
		logger.Info("reloaded the key file", "primary", kr.PrimaryID(), "keys", len(kr.IDs()))
	}

	// Keep finishing abandoned callbacks whose users never came back,
	// replay the journal as soon as the store takes writes again, and watch
	// the key file.
	recoverCtx, stopRecover := context.WithCancel(ctx)
	recoverDone := make(chan struct{})
	go func() {
		defer close(recoverDone)
		recoverTick := time.NewTicker(max(f.recoverAfter/2, time.Second))
		defer recoverTick.Stop()
		journalTick := time.NewTicker(2 * time.Second)
		defer journalTick.Stop()
		var reloadTick <-chan time.Time
		if keyFile != "" && f.keysReload > 0 {
			t := time.NewTicker(f.keysReload)
			defer t.Stop()
			reloadTick = t.C
		}
		for {
			select {
			case <-recoverCtx.Done():
				return
			case <-recoverTick.C:
				if _, err := srv.Recover(recoverCtx); err != nil && recoverCtx.Err() == nil {
					logger.Error("recover callbacks", "err", err)
				}
			case <-reloadTick:
				reloadKeys()
			case <-journalTick.C:
				if journal.Pending() == 0 {
					continue
				}
				done, err := journal.Replay(recoverCtx)
				if err != nil && recoverCtx.Err() == nil {
					logger.Warn("replay the journal", "err", err, "pending", journal.Pending())
				}
				if len(done) > 0 {
					logger.Info("replayed the journal into the store", "connections", len(done))
					srv.SettleReplayed(recoverCtx, done)
				}
			}
		}
	}()
	defer func() { stopRecover(); <-recoverDone }()
	deps.flows = srv
	lc.mount(mux)
	lc.startSweeps(srv)
	m.Gauge("finchconnect_journal_pending", "Tokens held in the local journal until the store takes them.", func() float64 { return float64(journal.Pending()) })
	mux.Handle("/", srv)

	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A duplicate callback may wait for the first one's exchange.
		WriteTimeout:   3 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	if demo {
		fmt.Fprintf(stdout, "\nfinchconnect demo: open %s/ and connect an employer.\n", publicURL)
		fmt.Fprintf(stdout, "Finch is the offline sandbox at %s/finch; sign in as authorized_simple / letmein.\n", publicURL)
		fmt.Fprintf(stdout, "Data (store, key file, sandbox state) is kept in %s. Stop with Ctrl-C.\n", f.store.dataDir)
	}
	logger.Info("serving", "addr", ln.Addr().String(), "public_url", publicURL, "demo", demo)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-serveErr // Serve has returned http.ErrServerClosed
	return nil
}

// appDeps are what the app-facing API and the lifecycle machinery share
// with the Connect back-end.
type appDeps struct {
	logger    *slog.Logger
	store     *tokenstore.Store
	backend   tokenstore.Backend
	finch     *finch.Client
	flows     *server.Server // set once the server exists
	publicURL string
	dataDir   string
	demo      bool
	metrics   *metrics.Metrics
}

// rateLimit turns a per-minute flag into a server.RateLimit; 0 disables.
func rateLimit(perMinute float64, burstFactor int) server.RateLimit {
	if perMinute <= 0 {
		return server.RateLimit{PerMinute: -1}
	}
	return server.RateLimit{PerMinute: perMinute, Burst: max(1, int(perMinute)*burstFactor)}
}

// randomString returns n random bytes as a string, for per-run secrets.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return string(b)
}

// fileStamp identifies a file's version by size and modification time.
func fileStamp(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, p)
	}
	return out
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("-log-format: %q is not text or json", format)
	}
}

// fileMode0600 is the mode of every file finchconnect creates that holds a
// secret.
const fileMode0600 os.FileMode = 0o600
