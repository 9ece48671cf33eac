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
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/inflight"
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
	trustedProxies            string
	demo                      bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:3000", "address to listen on")
	fs.StringVar(&f.publicURL, "public-url", "", "URL browsers reach this server at; redirect_uri is this plus /callback (default http://ADDR)")
	fs.StringVar(&f.products, "products", "company,directory,individual,employment", "products ticked by default on the connect form, comma-separated")
	f.store.register(fs)
	fs.StringVar(&f.clientID, "client-id", "", "Finch client id; without it and -client-secret, the offline demo runs, on a loopback -addr only unless -demo")
	fs.StringVar(&f.clientSecret, "client-secret", "", "Finch client secret (pass it in the environment: a command line is visible to every user)")
	fs.BoolVar(&f.demo, "demo", false, "run the offline demo even on an address other machines can reach (its pages and the sandbox's admin API have no authentication)")
	fs.StringVar(&f.finchBaseURL, "finch-base-url", "https://api.tryfinch.com", "Finch API base URL (point it at `finchconnect sandbox` to test offline)")
	fs.StringVar(&f.sandboxMode, "sandbox", "", `Connect session "sandbox" field: finch or provider (Finch's own sandboxes)`)
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Float64Var(&f.connectLimit, "connect-limit", 20, "flows one client address may start per minute (0 disables)")
	fs.Float64Var(&f.callbackLimit, "callback-limit", 120, "callbacks one client address may make per minute (0 disables)")
	fs.DurationVar(&f.recoverAfter, "recover-after", 3*time.Minute, "how long a callback may be in flight before it counts as abandoned by a crashed process (at least "+minRecoverAfter.String()+")")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "networks (10.0.0.0/8) or addresses of the load balancers in front, comma-separated: their requests are rate-limited by the client address in X-Forwarded-For")
	fs.StringVar(&f.returnOrigins, "return-origins", "", "origins (https://app.example.com), comma-separated, besides -public-url's, that API-started flows may return the browser to")
	fs.DurationVar(&f.keysReload, "keys-reload", 10*time.Second, "how often to re-read a changed key file, so `keys rotate` needs no restart (0 disables)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on shutdown; callbacks holding a code get up to "+drainTimeout.String()+" more to store their token")
}

const serveSynopsis = "finchconnect [serve] [flags]"

// minRecoverAfter is the shortest -recover-after: a callback may run for
// server.CallbackTimeout after it claims its code, so a shorter wait would
// count a live callback as abandoned and settle its ledger entry as failed
// while it still exchanges and stores the token. The margin covers the
// writes after the timeout and clock skew between replicas (the ledger
// records the claiming replica's time, in whole seconds).
const minRecoverAfter = server.CallbackTimeout + 30*time.Second

// drainTimeout bounds how long shutdown waits, after -shutdown-timeout,
// for callbacks that hold a code: each runs at most server.CallbackTimeout
// after its claim; the margin lets it record its outcome.
const drainTimeout = server.CallbackTimeout + 10*time.Second

// serveLimits are the bounds of serve's settings that tests must be able
// to lower without a flag an operator could set: runServe always uses
// the real ones.
type serveLimits struct {
	minRecoverAfter time.Duration
}

// runServe runs the Connect back-end until ctx is cancelled (SIGINT or
// SIGTERM in main), then shuts down gracefully: the listener closes,
// in-flight requests finish, callbacks that hold a code store their token
// (even past -shutdown-timeout), and the store closes last.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// recoverAfterFloor is minRecoverAfter, except in the crash tests'
	// failpoints builds (failpoint_on.go).
	return serve(ctx, args, getenv, stdout, stderr, serveLimits{minRecoverAfter: recoverAfterFloor})
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, limits serveLimits) error {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	lcF := registerLifecycleFlags(fs)
	if err := parseFlags(fs, args, getenv, stderr); err != nil {
		return handleParseError(err, fs, stdout, stderr, serveSynopsis)
	}
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	demo, err := f.demoMode()
	if err != nil {
		return err
	}
	f.store.demoKey = demoKeyRefuse
	if demo {
		f.store.demoKey = demoKeyCreate
	}
	if f.recoverAfter < limits.minRecoverAfter {
		return fmt.Errorf("-recover-after %s is too short: a callback may run for %s after it claims its code, so under %s a live callback would be taken for abandoned",
			f.recoverAfter, server.CallbackTimeout, limits.minRecoverAfter)
	}
	if host, _, err := net.SplitHostPort(f.addr); err == nil && f.publicURL == "" && unspecifiedHost(host) {
		return fmt.Errorf("-addr %s listens on every interface, so the URL browsers reach finchconnect at (and Finch's redirect_uri) cannot be derived from it: set -public-url (FINCHCONNECT_PUBLIC_URL), e.g. https://app.example.com", f.addr)
	}
	trustedProxies, err := parseTrustedProxies(f.trustedProxies)
	if err != nil {
		return err
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
	if demo && !loopbackHost(ln.Addr().(*net.TCPAddr).IP.String()) {
		logger.Warn("the demo is reachable from other machines: its pages and the sandbox's admin API have no authentication; use Finch credentials for anything but a demo",
			"addr", ln.Addr().String(), "public_url", publicURL)
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
		TrustedProxies: trustedProxies,
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

	// Requests are counted, so that shutdown can wait for the ones still
	// running after -shutdown-timeout before it closes what they use.
	var requests inflight.Group
	hs := &http.Server{
		Handler:           requests.Track(mux),
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
	logger.Info("shutting down; waiting for requests in flight", "shutdown_timeout", f.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	<-serveErr // Serve returned http.ErrServerClosed as soon as Shutdown began
	if err == nil {
		return nil // every request has finished; the deferred closes run in order
	}
	// Requests still run. A callback past its claim may be waiting for
	// Finch to answer the exchange (up to server.CallbackTimeout): the token
	// Finch issues must find the store, the journal and the audit queue
	// open. Wait for those callbacks first, so they also answer their
	// browsers; then close the connections left, which ends the other
	// requests' contexts, and wait for their handlers to return. Only then
	// do the deferred closes run: the recovery loop, the lifecycle (audit
	// queue, outbox), the journal, the store.
	logger.Warn("requests still running after -shutdown-timeout; waiting for callbacks that hold a code to store their token",
		"requests", requests.Running(), "wait_at_most", drainTimeout)
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer dcancel()
	if err := srv.Drain(dctx); err != nil {
		// Their ledger entries stay in flight; the next start's recovery
		// finishes what it can.
		return fmt.Errorf("shutdown: callbacks still running after %s more; stopping anyway: %w", drainTimeout, err)
	}
	hs.Close()
	// A callback may have claimed its code between Drain's return and
	// Close; closing its connection does not stop its exchange.
	if err := srv.Drain(dctx); err != nil {
		return fmt.Errorf("shutdown: callbacks still running after %s more; stopping anyway: %w", drainTimeout, err)
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	if err := requests.Wait(wctx); err != nil {
		return fmt.Errorf("shutdown: %d requests still running after their connections closed; stopping anyway: %w", requests.Running(), err)
	}
	logger.Info("callbacks in flight have finished; closing the store")
	return nil
}

// demoMode reports whether serve runs the offline demo: when no Finch
// credential is set, and only on this machine (a loopback -addr and, if
// set, an http -public-url on a loopback host) unless -demo asks for it.
// Anything else looks like production with a missing secret (a failed
// secret mount leaves FINCH_CLIENT_SECRET empty), where a fake Connect page
// and the sandbox's unauthenticated admin API must not be served.
func (f *serveFlags) demoMode() (bool, error) {
	switch {
	case f.clientID != "" && f.clientSecret == "":
		return false, errors.New("-client-id (FINCH_CLIENT_ID) is set but -client-secret (FINCH_CLIENT_SECRET) is empty: the two go together; set both, or neither for the demo")
	case f.clientID == "" && f.clientSecret != "":
		return false, errors.New("-client-secret (FINCH_CLIENT_SECRET) is set but -client-id (FINCH_CLIENT_ID) is empty: the two go together; set both, or neither for the demo")
	case f.clientID != "":
		if f.demo {
			return false, errors.New("-demo (FINCHCONNECT_DEMO) runs the offline sandbox, which takes no Finch credentials: drop -demo, or unset -client-id and -client-secret")
		}
		return false, nil
	case f.demo:
		return true, nil
	}
	if why := f.notLocal(); why != "" {
		return false, fmt.Errorf("no Finch credentials: set -client-id (FINCH_CLIENT_ID) and -client-secret (FINCH_CLIENT_SECRET). "+
			"Without them only the offline demo runs, and only on this machine, but %s; "+
			"to serve the demo there anyway, add -demo (FINCHCONNECT_DEMO=true)", why)
	}
	return true, nil
}

// notLocal says why the setup can be reached from other machines, or ""
// when it cannot.
func (f *serveFlags) notLocal() string {
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil || !loopbackHost(host) {
		return fmt.Sprintf("-addr %s is not a loopback address", f.addr)
	}
	if f.publicURL != "" {
		u, err := url.Parse(f.publicURL)
		if err != nil || u.Scheme != "http" || !loopbackHost(u.Hostname()) {
			return fmt.Sprintf("-public-url %s is not http on a loopback host", f.publicURL)
		}
	}
	return ""
}

// loopbackHost reports whether host names this machine only: localhost or
// a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// unspecifiedHost reports whether a listen address's host means every
// interface: empty, 0.0.0.0 or ::.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// parseTrustedProxies parses -trusted-proxies: networks (10.0.0.0/8) or
// single addresses, comma-separated. IPv4-mapped IPv6 forms are unmapped,
// as the server compares client addresses unmapped.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			pp, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("-trusted-proxies (FINCHCONNECT_TRUSTED_PROXIES): %q is not a network such as 10.0.0.0/8: %v", item, err)
			}
			p = pp
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("-trusted-proxies (FINCHCONNECT_TRUSTED_PROXIES): %q is neither a network (10.0.0.0/8) nor an IP address (10.0.0.7); host names are not accepted", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
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
