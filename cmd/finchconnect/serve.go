package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
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

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/inflight"
	"github.com/finchconnect/finchconnect/metrics"
	"github.com/finchconnect/finchconnect/records"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/syncer"
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
	budget                    budgetFlags
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
	demoRateLimits            float64
	allowDegraded             bool
	proxyForward              bool
	sync                      syncFlags
}

// connectProducts are the products the connect form offers.
var connectProducts = []string{"company", "directory", "individual", "employment", "payment", "pay_statement", "benefits", "ssn", "documents"}

var logLevels = []string{"debug", "info", "warn", "error"}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:3000", "address to listen on")
	fs.StringVar(&f.publicURL, "public-url", "", "URL browsers reach this server at; redirect_uri is this plus /callback (default http://ADDR)")
	enumListVar(fs, &f.products, "products", "company,directory,individual,employment", connectProducts, "products ticked by default on the connect form")
	f.store.register(fs)
	f.budget.register(fs)
	fs.StringVar(&f.clientID, "client-id", "", "Finch client id; without it and -client-secret, the offline demo runs, on a loopback -addr only unless -demo")
	fs.StringVar(&f.clientSecret, "client-secret", "", "Finch client secret (pass it in the environment: a command line is visible to every user)")
	fs.Float64Var(&f.demoRateLimits, "demo-rate-limits", 1, "factor of Finch's rate limits in the demo's sandbox: 1 is Finch's numbers, 0 turns them off (load tests)")
	fs.BoolVar(&f.demo, "demo", false, "run the offline demo even on an address other machines can reach (its pages and the sandbox's admin API have no authentication)")
	fs.StringVar(&f.finchBaseURL, "finch-base-url", "https://api.tryfinch.com", "Finch API base URL (point it at `finchconnect sandbox` to test offline)")
	enumVar(fs, &f.sandboxMode, "sandbox", "", []string{"finch", "provider"}, `Connect session "sandbox" field, for Finch's own sandboxes`)
	enumVar(fs, &f.logFormat, "log-format", "text", []string{"text", "json"}, "log format")
	enumVar(fs, &f.logLevel, "log-level", "info", logLevels, "log level")
	fs.Float64Var(&f.connectLimit, "connect-limit", 20, "flows one client address may start per minute (0 disables)")
	fs.Float64Var(&f.callbackLimit, "callback-limit", 120, "callbacks one client address may make per minute (0 disables)")
	fs.DurationVar(&f.recoverAfter, "recover-after", 3*time.Minute, "how long a callback may be in flight before it counts as abandoned by a crashed process (at least "+minRecoverAfter.String()+")")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "networks (10.0.0.0/8) or addresses of the load balancers in front, comma-separated: their requests are rate-limited by the client address in X-Forwarded-For")
	fs.StringVar(&f.returnOrigins, "return-origins", "", "origins (https://app.example.com), comma-separated, besides -public-url's, that API-started flows may return the browser to")
	fs.DurationVar(&f.keysReload, "keys-reload", 10*time.Second, "how often to re-read a changed key file, so `keys rotate` needs no restart (0 disables)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on shutdown; callbacks holding a code get up to "+drainTimeout.String()+" more to store their token")
	fs.BoolVar(&f.proxyForward, "proxy-forward", false, "let API keys of scope forward call Finch's POST /forward (a raw call to the employer's payroll system) through the proxy")
	f.sync.register(fs)
	fs.BoolVar(&f.allowDegraded, "allow-degraded", false, "start even when stored records name keys the keyring lacks, or do not open with its keys (/readyz then fails until they do)")
}

// minRecoverAfter is the shortest -recover-after: a callback may run for
// connect.CallbackTimeout after it claims its code, so a shorter wait would
// count a live callback as abandoned and settle its ledger entry as failed
// while it still exchanges and stores the token. The margin covers the
// writes after the timeout and clock skew between replicas (the ledger
// records the claiming replica's time, in whole seconds).
const minRecoverAfter = connect.CallbackTimeout + 30*time.Second

// drainTimeout bounds how long shutdown waits, after -shutdown-timeout,
// for callbacks that hold a code: each runs at most connect.CallbackTimeout
// after its claim; the margin lets it record its outcome.
const drainTimeout = connect.CallbackTimeout + 10*time.Second

// serveLimits are the bounds of serve's settings that tests must be able
// to lower without a flag an operator could set: the binary always uses
// the real ones.
type serveLimits struct {
	minRecoverAfter time.Duration
}

// serveCmd runs the Connect back-end until ctx is cancelled (SIGINT or
// SIGTERM in main), then shuts down gracefully: the listener closes,
// in-flight requests finish, callbacks that hold a code store their token
// (even past -shutdown-timeout), and the store closes last.
type serveCmd struct {
	f      serveFlags
	lcF    *lifecycleFlags
	limits serveLimits
}

func (*serveCmd) spec() cmdSpec {
	return cmdSpec{name: "serve", env: serverEnv,
		summary: "Run the Connect back-end (without Finch credentials: the offline demo, on this machine only unless -demo).",
		detail: "Every flag can also be set with its environment variable, listed below; a flag given on the\n" +
			"command line wins. See docs/configuration.md."}
}

func (s *serveCmd) flags(fs *flag.FlagSet) {
	s.f.register(fs)
	s.lcF = registerLifecycleFlags(fs)
}

func (s *serveCmd) run(ctx context.Context, c *cli, _ []string) error {
	a := &app{f: &s.f, lcF: s.lcF, c: c, getenv: c.getenv}
	defer a.close()
	if err := a.setup(ctx, s.limits); err != nil {
		return err
	}
	return a.serve(ctx)
}

// serve is `finchconnect serve` with the limits given, for the tests.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, limits serveLimits) error {
	c := &cli{getenv: getenv, stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}
	return c.runCommand(ctx, &serveCmd{limits: limits}, args)
}

// app is a running `serve`: what it opened, in order, and what it runs.
type app struct {
	f      *serveFlags
	lcF    *lifecycleFlags
	c      *cli
	getenv func(string) string

	logger    *slog.Logger
	demo      bool
	closers   []func() // run in reverse by close
	store     *tokenstore.Store
	backend   tokenstore.Backend
	metrics   *metrics.Metrics
	ln        net.Listener
	publicURL string
	mux       *http.ServeMux
	fc        *finch.Client
	webhooks  []finchconnect.Secret
	journal   *tokenstore.Journal
	records   *records.Store    // nil: sync is off
	sched     *syncer.Scheduler // nil: sync is off
	lc        *lifecycle
	srv       *server.Server
	keys      keyHealth
	requests  inflight.Group
	hs        *http.Server
}

func (a *app) onClose(f func()) { a.closers = append(a.closers, f) }

// close closes what setup opened, last opened first: the store last.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// setup checks the settings, opens the vault, checks its keys, listens,
// and builds the server; nothing is served yet.
func (a *app) setup(ctx context.Context, limits serveLimits) error {
	trusted, err := a.checkSettings(limits)
	if err != nil {
		return err
	}
	if err := a.openVault(ctx); err != nil {
		return err
	}
	if err := a.checkKeysAtStart(ctx); err != nil {
		return err
	}
	if err := a.openRecords(ctx); err != nil {
		return err
	}
	if err := a.listen(); err != nil {
		return err
	}
	a.mux = http.NewServeMux()
	finchHTTP := &http.Client{Transport: a.metrics.Transport(finch.NewTransport()), CheckRedirect: finch.NoRedirects}
	a.fc = &finch.Client{BaseURL: a.f.finchBaseURL, ClientID: a.f.clientID, ClientSecret: secret(a.f.clientSecret), HTTPClient: finchHTTP}
	a.webhooks = a.lcF.webhookSecrets()
	if a.demo {
		if err := a.startDemoSandbox(finchHTTP); err != nil {
			return err
		}
	}
	if err := a.attachBudget(ctx); err != nil {
		return err
	}
	// Tokens exchanged while the store is down wait, sealed, in a local
	// journal, and are replayed as soon as it answers again.
	if a.journal, err = a.store.OpenJournal(a.f.store.journalPath()); err != nil {
		return fmt.Errorf("cannot open the journal %s: %s", a.f.store.journalPath(), plainError(err))
	}
	a.onClose(func() { a.journal.Close() })
	return a.newServer(ctx, trusted)
}

// checkSettings validates the flags that need more than their own parse.
func (a *app) checkSettings(limits serveLimits) ([]netip.Prefix, error) {
	f := a.f
	var err error
	if a.logger, err = newLogger(a.c.stderr, f.logFormat, f.logLevel); err != nil {
		return nil, err
	}
	if err := f.budget.check(); err != nil {
		return nil, err
	}
	for _, u := range [][2]string{{"-public-url", f.publicURL}, {"-finch-base-url", f.finchBaseURL}, {"-events-url", a.lcF.eventsURL}} {
		if u[1] != "" {
			if err := checkHTTPURL(u[0], u[1]); err != nil {
				return nil, err
			}
		}
	}
	if a.demo, err = f.demoMode(); err != nil {
		return nil, err
	}
	f.store.demoKey = demoKeyRefuse
	if a.demo {
		f.store.demoKey = demoKeyCreate
	}
	if f.demoRateLimits < 0 {
		return nil, fmt.Errorf("-demo-rate-limits must be 0 (off) or a positive factor of Finch's numbers, not %v", f.demoRateLimits)
	}
	if f.recoverAfter < limits.minRecoverAfter {
		return nil, fmt.Errorf("-recover-after %s is too short: a callback may run for %s after it claims its code, so under %s a live callback would be taken for abandoned",
			f.recoverAfter, connect.CallbackTimeout, limits.minRecoverAfter)
	}
	if host, _, err := net.SplitHostPort(f.addr); err == nil && f.publicURL == "" && unspecifiedHost(host) {
		return nil, fmt.Errorf("-addr %s listens on every interface, so the URL browsers reach finchconnect at (and Finch's redirect_uri) cannot be derived from it: set -public-url (FINCHCONNECT_PUBLIC_URL), e.g. https://app.example.com", f.addr)
	}
	if err := a.lcF.validate(); err != nil {
		return nil, err
	}
	return parseTrustedProxies(f.trustedProxies)
}

// openVault loads the keys and opens the store, creating a SQLite store
// that does not exist yet, and says so.
func (a *app) openVault(ctx context.Context) error {
	// A bad -store is reported before the demo's key file is made for it.
	if err := a.f.store.check(mayCreate); err != nil {
		return err
	}
	kr, err := a.f.store.keyring(a.c.stderr)
	if err != nil {
		return err
	}
	backend, created, err := a.f.store.open(ctx, mayCreate)
	if err != nil {
		return err
	}
	a.onClose(func() { backend.Close() })
	if created {
		a.logger.Info("created a new, empty store", "store", describeStore(a.f.store.storeURL()))
	}
	// Metrics see every store operation and every call to Finch.
	a.metrics = metrics.New()
	a.backend = a.metrics.Backend(backend)
	a.store = tokenstore.New(a.backend, kr)
	return nil
}

// listen listens before anything else starts, so a busy port is reported
// at once and -addr 127.0.0.1:0 yields the real address.
func (a *app) listen() error {
	ln, err := net.Listen("tcp", a.f.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (%s): pick another -addr (FINCHCONNECT_ADDR), or stop what uses it", a.f.addr, unwrapNetError(err))
	}
	a.ln = ln
	a.onClose(func() { ln.Close() })
	a.publicURL = strings.TrimSuffix(a.f.publicURL, "/")
	if a.publicURL == "" {
		a.publicURL = "http://" + ln.Addr().String()
	}
	if a.demo && !loopbackHost(ln.Addr().(*net.TCPAddr).IP.String()) {
		a.logger.Warn("the demo is reachable from other machines: its pages and the sandbox's admin API have no authentication; use Finch credentials for anything but a demo",
			"addr", ln.Addr().String(), "public_url", a.publicURL)
	}
	return nil
}

// startDemoSandbox runs the sandbox in-process under /finch on the same
// listener, so one URL serves both the app and the Connect pages. It sends
// its webhooks to this server, signed with a secret made for this run, so
// the whole lifecycle runs.
func (a *app) startDemoSandbox(finchHTTP *http.Client) error {
	demoSecret := base64.StdEncoding.EncodeToString([]byte(randomString(32)))
	a.webhooks = append(a.webhooks, finchconnect.NewSecret(demoSecret))
	sb, err := sandbox.New(sandbox.Options{
		ClientID:      demoClientID,
		ClientSecret:  demoClientSecret,
		PublicURL:     a.publicURL + "/finch",
		DataFile:      filepath.Join(a.f.store.dataDir, "sandbox.json"),
		Logger:        a.logger.With("component", "sandbox"),
		WebhookURL:    "http://" + a.ln.Addr().String() + "/webhooks/finch",
		WebhookSecret: demoSecret,
		// Finch's numbers, as a real application meets them (-demo-rate-limits).
		RateLimitFactor: a.f.demoRateLimits,
	})
	if err != nil {
		return fmt.Errorf("cannot start the demo's sandbox: %s", plainError(err))
	}
	a.onClose(func() { sb.Close() })
	a.mux.Handle("/finch/", http.StripPrefix("/finch", sb))
	a.fc = &finch.Client{BaseURL: "http://" + a.ln.Addr().String() + "/finch", ClientID: demoClientID, ClientSecret: finchconnect.NewSecret(demoClientSecret), HTTPClient: finchHTTP}
	return nil
}

// newServer builds the lifecycle machinery and the Connect server, and
// finishes what a crashed predecessor left half done.
func (a *app) newServer(ctx context.Context, trusted []netip.Prefix) error {
	deps := &appDeps{logger: a.logger, store: a.store, backend: a.backend, finch: a.fc, publicURL: a.publicURL, dataDir: a.f.store.dataDir, demo: a.demo, metrics: a.metrics}
	a.lc = newLifecycle(a.lcF, deps)
	a.onClose(a.lc.close)
	srv, err := server.New(server.Config{
		PublicURL:      a.publicURL,
		Products:       splitList(a.f.products),
		Sandbox:        a.f.sandboxMode,
		Logger:         a.logger,
		Notify:         a.notify,
		Audit:          a.lc.audit,
		WebhookSecrets: a.webhooks,
		Journal:        a.journal,
		RecoverAfter:   a.f.recoverAfter,
		ReturnOrigins:  splitList(a.f.returnOrigins),
		TrustedProxies: trusted,
		Ready:          a.keys.get,
		ProxyForward:   a.f.proxyForward,
		Records:        a.records,
		SyncNow: func(id string) {
			if a.sched != nil {
				a.sched.Kick(id)
			}
		},
		// Bursts: a page of tabs for /connect; a crowd of duplicates for
		// /callback, which are cheap once the first has claimed the code.
		ConnectLimit:  rateLimit(a.f.connectLimit, 1),
		CallbackLimit: rateLimit(a.f.callbackLimit, 2),
	}, a.fc, a.store, server.WithObserver(a.lc.observe), server.WithFailpoint(failpoint(a.getenv)))
	if err != nil {
		return err
	}
	a.srv, deps.flows = srv, srv
	if a.records != nil {
		a.sched = a.newScheduler()
		a.metrics.GaugeSet("finchconnect_sync_connections", "Connections by the state of their sync (new, syncing, synced, waiting, stopped, failed).", "state",
			[]string{syncer.StateNew, syncer.StateSyncing, syncer.StateSynced, syncer.StateWaiting, syncer.StateStopped, syncer.StateFailed},
			func(state string) float64 { return float64(syncStateCounts(a.sched)[state]) })
	}
	if _, err := srv.Protocol().Replay(ctx); err != nil {
		a.logger.Warn("replay the journal", "err", err, "pending", a.journal.Pending())
	}
	if res, err := srv.Protocol().Recover(ctx); err != nil {
		a.logger.Error("recover callbacks", "err", err)
	} else if res.Stored+res.Interrupted > 0 {
		a.logger.Warn("recovered callbacks", "stored", res.Stored, "interrupted", res.Interrupted)
	}
	a.lc.mount(a.mux)
	a.metrics.Gauge("finchconnect_journal_pending", "Tokens held in the local journal until the store takes them.", func() float64 { return float64(a.journal.Pending()) })
	a.mux.Handle("/", srv)
	return nil
}

// serve runs the HTTP server and every background loop in one run group
// until ctx is done or one of them fails; the group then stops them in
// the reverse order they were added: the HTTP server first (its requests
// and callbacks finish), then the sweeps and event delivery, then the
// recovery, journal and key loops. close then closes the audit queue, the
// journal, the sandbox and the store, in that order.
func (a *app) serve(ctx context.Context) error {
	var g runGroup
	g.add("recover callbacks and replay the journal", a.srv.Protocol().Run, nil)
	if path := a.f.store.keyFilePath(); path != "" && a.f.keysReload > 0 {
		g.add("reload the key file", func(ctx context.Context) error { return a.keyReloadLoop(ctx, path) }, nil)
	}
	g.add("check the keys", a.keyCheckLoop, nil)
	a.lc.addTo(&g, a.srv)
	a.syncLoops(&g)
	a.hs = &http.Server{
		Handler:           a.requests.Track(a.mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A duplicate callback may wait for the first one's exchange.
		WriteTimeout:   3 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	g.add("serve HTTP", a.serveHTTP, a.shutdownHTTP)
	a.announce()
	return g.run(ctx)
}

func (a *app) announce() {
	out := a.c.stdout
	fmt.Fprintf(out, "listening on http://%s\n", a.ln.Addr())
	if a.demo {
		fmt.Fprintf(out, "\nfinchconnect demo: open %s/ and connect an employer.\n", a.publicURL)
		fmt.Fprintf(out, "Finch is the offline sandbox at %s/finch; sign in as authorized_simple / letmein.\n", a.publicURL)
		fmt.Fprintf(out, "Data (store, key file, sandbox state) is kept in %s. Stop with Ctrl-C.\n", a.f.store.dataDir)
	}
	a.logger.Info("serving", "addr", a.ln.Addr().String(), "public_url", a.publicURL, "demo", a.demo)
}

func (a *app) serveHTTP(context.Context) error {
	if err := a.hs.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("the HTTP server stopped: %w", err)
	}
	return nil
}

// shutdownHTTP stops taking requests and lets those in flight finish for
// -shutdown-timeout. Requests may still run then: a callback past its
// claim may be waiting for Finch to answer the exchange (up to
// connect.CallbackTimeout), and the token Finch issues must find the store,
// the journal and the audit queue open. So it waits for those callbacks
// first, so they also answer their browsers; then closes the connections
// left, which ends the other requests' contexts, and waits for their
// handlers to return.
func (a *app) shutdownHTTP() error {
	a.logger.Info("shutting down; waiting for requests in flight", "shutdown_timeout", a.f.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.f.shutdownTimeout)
	defer cancel()
	if err := a.hs.Shutdown(sctx); err == nil {
		return nil // every request has finished
	}
	a.logger.Warn("requests still running after -shutdown-timeout; waiting for callbacks that hold a code to store their token",
		"requests", a.requests.Running(), "wait_at_most", drainTimeout)
	dctx, dcancel := context.WithTimeout(context.Background(), drainTimeout)
	defer dcancel()
	// Their ledger entries stay in flight if they outlast the wait; the
	// next start's recovery finishes what it can.
	if err := a.srv.Protocol().Drain(dctx); err != nil {
		return fmt.Errorf("shutdown: callbacks still running after %s more; stopping anyway: %w", drainTimeout, err)
	}
	a.hs.Close()
	// A callback may have claimed its code between Drain's return and
	// Close; closing its connection does not stop its exchange.
	if err := a.srv.Protocol().Drain(dctx); err != nil {
		return fmt.Errorf("shutdown: callbacks still running after %s more; stopping anyway: %w", drainTimeout, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := a.requests.Wait(wctx); err != nil {
		return fmt.Errorf("shutdown: %d requests still running after their connections closed; stopping anyway: %w", a.requests.Running(), err)
	}
	a.logger.Info("callbacks in flight have finished; closing the store")
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
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
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

// checkHTTPURL refuses a URL flag that is not an absolute http or https
// URL with a host.
func checkHTTPURL(flagName, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not a URL: write it in full, such as https://app.example.com", flagName, raw)
	}
	return nil
}

// unwrapNetError is a listen or dial failure without the operation and
// addresses the message already names ("address already in use").
func unwrapNetError(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return unwrapPathError(oe.Err).Error()
	}
	return err.Error()
}
