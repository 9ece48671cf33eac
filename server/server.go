package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/internal/seam"
	"github.com/finchconnect/finchconnect/records"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// Config configures a [Server]. Zero-value fields mean the default.
type Config struct {
	// PublicURL is the URL browsers reach this handler at, with any path
	// prefix the app mounts it under, e.g. "https://app.example.com/finch".
	// The redirect_uri sent to Finch is PublicURL + "/callback", so it must
	// be registered in Finch's dashboard. Required.
	PublicURL string

	// Products are the products ticked by default on the connect form.
	// Default: company, directory, individual, employment.
	Products []string

	// Sandbox is passed as the Connect session's "sandbox" field ("finch"
	// or "provider") when set.
	Sandbox string

	// Ready, when set, is asked by GET /readyz after the store answers: a
	// non-nil error (such as stored records the keyring cannot open) makes
	// it 503 "unavailable", with the error's text. It must be cheap: it
	// runs on every probe.
	Ready func() error

	// ReturnOrigins are origins ("https://app.example.com") besides
	// PublicURL's to which app-started flows may return the browser.
	ReturnOrigins []string

	// StateTTL is how long a Connect flow may take from POST /connect to the
	// callback. Default 10 minutes, the life of a Finch authorization code.
	StateTTL time.Duration

	// WaitTimeout bounds how long a duplicate callback waits for the first
	// one to finish. Default 90 seconds.
	WaitTimeout time.Duration

	// ConnectLimit and CallbackLimit bound how often one client address may
	// start a flow (each creates a Finch Connect session) and call back, so
	// that a flood cannot exhaust the store or the app's Finch rate limits.
	// Defaults: 20 per minute with bursts of 20, and 120 per minute with
	// bursts of 200. A negative PerMinute disables a limit (load tests).
	ConnectLimit  RateLimit
	CallbackLimit RateLimit

	// TrustedProxies are the networks of the load balancers and proxies in
	// front of the server. A request from one of them is counted against
	// the client address they record in X-Forwarded-For, for the rate
	// limits; without them every browser behind a proxy shares the proxy's
	// limit. Nil trusts no proxy.
	TrustedProxies []netip.Prefix

	// Notify receives every event about a connection: created,
	// re-authenticated, needs re-authentication, disconnected. Nil drops
	// them. It should hand the event to a durable outbox and return, and
	// return an error only when the event was not recorded. Where the
	// server can, it then leaves the change unrecorded too and fails the
	// request, so that the change is seen, and announced, again: a Finch
	// webhook is answered 503 (Finch delivers it again), a sweep counts
	// the connection as failed (the next sweep checks it again). A change
	// made by a callback or a disconnect cannot be undone; the error is
	// logged.
	Notify func(ctx context.Context, e finchconnect.Event) error

	// Audit receives one record per use of a token. Nil drops them.
	Audit func(ctx context.Context, r finchconnect.AuditRecord)

	// Journal holds tokens that the store could not take during an outage,
	// until the protocol's replay ([connect.Service.Replay], run by
	// [connect.Service.Run]) moves them into it. Nil: such a token is
	// disconnected at Finch instead, and the employer asked to connect
	// again.
	Journal connect.Journal

	// WebhookSecrets verify Finch's webhooks at POST /webhooks/finch
	// (several during a rotation). Empty: the route answers 404.
	WebhookSecrets []finchconnect.Secret

	// RecoverAfter is how long a callback may stay in flight before it is
	// considered abandoned by a crashed process and finished by
	// [connect.Service.Recover] or by a duplicate. Default 3 minutes, longer than
	// any exchange.
	RecoverAfter time.Duration

	// ProxyForward lets the proxy pass Finch's request forwarding (POST
	// /forward: any call, write or read, to the employer's own payroll
	// system) for API keys of scope forward. Off by default: the proxy
	// then refuses /forward to every key.
	ProxyForward bool

	// APIKeyCacheTTL is how long the /v1 API remembers an API key's record
	// once read from the store ([apikey.Cache]): the secret is checked on
	// every request, but a revocation takes effect within this time.
	// Default 1 second; negative reads the store on every request.
	APIKeyCacheTTL time.Duration

	// ConnectionCacheTTL is how long the proxy remembers a connection read
	// from the store with its token opened, so that a busy proxy reads and
	// unseals each connection's row about once per TTL rather than on every
	// call. This replica's own writes (status, re-authentication,
	// disconnect) and a changed keyring take effect at once; another
	// replica's within this time. Default 1 second; negative reads the
	// store on every call.
	ConnectionCacheTTL time.Duration

	// Records is the local copy of each connection's data that the sync
	// engine keeps (issue #19). With it, /v1 serves each connection's
	// change feed and its records, and a disconnect shreds the
	// connection's records. Nil: those routes answer 404 sync_off.
	Records *records.Store
	// SyncNow, if set, is called with a connection's id when a Finch
	// webhook says its data changed or a data job completed (serve: the
	// sync scheduler's Kick). It must not block.
	SyncNow func(connectionID string)

	// Logger receives one line per request and the errors someone must act
	// on. Nil means slog.Default(): an embedder who sets nothing still sees
	// the errors.
	Logger *slog.Logger
}

// DefaultAPIKeyCacheTTL is Config.APIKeyCacheTTL's default: long enough
// that a busy API reads each key's record from the store about once a
// second, short enough that a revoked key stops working in a second.
const DefaultAPIKeyCacheTTL = time.Second

// Option sets one of the Server's test seams and observers.
type Option func(*options)

type options struct {
	seam.Set
	observe func(outcome string, d time.Duration)
}

// WithClock sets the one clock the server, its sweeps and its protocol
// service read. Default: the system clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.Clock = c } }

// WithRand sets the randomness of states, nonces, cookies and ids.
// Default crypto/rand.
func WithRand(r io.Reader) Option { return func(o *options) { o.Rand = r } }

// WithFailpoint sets a hook called at named points of a callback (those of
// [connect.WithFailpoint], and "before-response"), so that crash tests can
// kill the process there.
func WithFailpoint(f func(name string)) Option { return func(o *options) { o.Failpoint = f } }

// WithObserver sets a function told how each callback ended, for metrics:
// outcome is one of "connected", "duplicate", "invalid_state",
// "invalid_code", "connect_error", "exchange_failed", "store_failed",
// "pending", "saving", "interrupted", "disconnected", "error".
func WithObserver(f func(outcome string, d time.Duration)) Option {
	return func(o *options) { o.observe = f }
}

// Server is the Connect back-end. Create it with [New]; it is safe for
// concurrent use.
type Server struct {
	cfg       Config
	publicURL *url.URL
	log       *slog.Logger
	finch     *finch.Client
	store     *tokenstore.Store
	backend   serverBackend
	handler   http.Handler
	pages     *pages
	keys      func(ctx context.Context, authorization string) (apikey.Record, error)
	protocol  *connect.Service
	clock     clock.Clock
	rand      io.Reader
	failpoint func(string)
	observe   func(outcome string, d time.Duration)
	conns     *connCache // the proxy's opened connections
}

// serverBackend is what the server uses of the store's backend directly:
// the API keys' part of the key space, and Ping for the readiness check.
// Everything else goes through the vault (tokenstore.Store) or the
// protocol (connect.Service).
type serverBackend interface {
	apikey.KeySpace
	Ping(ctx context.Context) error
}

// New returns the Connect back-end. fc talks to Finch (or to the sandbox);
// store is the vault, whose backend also holds the protocol's records
// (flow states, the callback ledger, webhook claims). The exactly-once
// protocol runs in a [connect.Service] built from cfg, which
// [Server.Protocol] returns: call its Run to start its recovery and replay
// loops, and its Drain before closing the store.
func New(cfg Config, fc *finch.Client, store *tokenstore.Store, opts ...Option) (*Server, error) {
	if fc == nil || store == nil {
		return nil, errors.New("server: a finch client and a token store are required")
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.PublicURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("server: PublicURL must be an absolute http(s) URL")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Products) == 0 {
		cfg.Products = []string{"company", "directory", "individual", "employment"}
	}
	if cfg.ConnectLimit == (RateLimit{}) {
		cfg.ConnectLimit = RateLimit{PerMinute: 20, Burst: 20}
	}
	if cfg.CallbackLimit == (RateLimit{}) {
		cfg.CallbackLimit = RateLimit{PerMinute: 120, Burst: 200}
	}
	if cfg.Notify == nil {
		cfg.Notify = func(context.Context, finchconnect.Event) error { return nil }
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, finchconnect.AuditRecord) {}
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.Set = o.WithDefaults() // a nil seam is the default, the same as connect's
	if o.observe == nil {
		o.observe = func(string, time.Duration) {}
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		publicURL: u,
		log:       cfg.Logger,
		finch:     fc,
		store:     store,
		backend:   store.Backend(),
		pages:     p,
		clock:     o.Clock,
		rand:      o.Rand,
		failpoint: o.Failpoint,
		observe:   o.observe,
	}
	if s.protocol, err = connect.New(connect.Config{
		RedirectURI:   s.redirectURI(),
		ReturnOrigins: cfg.ReturnOrigins,
		Sandbox:       cfg.Sandbox,
		StateTTL:      cfg.StateTTL,
		WaitTimeout:   cfg.WaitTimeout,
		RecoverAfter:  cfg.RecoverAfter,
		Journal:       cfg.Journal,
		Notify:        cfg.Notify,
		Audit:         cfg.Audit,
		Logger:        cfg.Logger,
	}, fc, store, connect.WithClock(o.Clock), connect.WithRand(o.Rand), connect.WithFailpoint(o.Failpoint)); err != nil {
		return nil, err
	}
	switch {
	case cfg.APIKeyCacheTTL < 0:
		s.keys = func(ctx context.Context, auth string) (apikey.Record, error) {
			return apikey.Verify(ctx, s.backend, auth)
		}
	default:
		ttl := cmp.Or(cfg.APIKeyCacheTTL, DefaultAPIKeyCacheTTL)
		s.keys = apikey.NewCache(s.backend, ttl, o.Clock.Now).Verify
	}
	s.conns = newConnCache(cmp.Or(cfg.ConnectionCacheTTL, DefaultConnCacheTTL), o.Clock.Now)
	mux := http.NewServeMux()
	s.addRoutes(mux)
	s.handler = s.middleware(mux)
	return s, nil
}

// Protocol returns the exactly-once protocol's service the server's
// callbacks, flows and webhooks go through: for its loops (Run), Drain,
// Recover, Replay, StagedKeyIDs, and for flows an app starts and completes
// itself (StartFlow, Complete).
func (s *Server) Protocol() *connect.Service { return s.protocol }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// redirectURI is the redirect_uri registered with Finch for the redirect flow.
func (s *Server) redirectURI() string { return s.publicURL.String() + "/callback" }

// link builds an absolute path under the public URL's path prefix.
func (s *Server) link(p string) string { return s.publicURL.Path + p }

// secureCookies reports whether cookies must carry the Secure attribute: yes
// whenever the app is served over https.
func (s *Server) secureCookies() bool { return s.publicURL.Scheme == "https" }

// notify publishes an event about conn.
func (s *Server) notify(ctx context.Context, typ string, conn finchconnect.Connection) error {
	return s.publish(ctx, typ, conn, nil)
}

// notifyData publishes a data-changed event, naming Finch's event type.
func (s *Server) notifyData(ctx context.Context, conn finchconnect.Connection, finchEvent string) error {
	return s.publish(ctx, finchconnect.EventDataChanged, conn, map[string]any{"finch_event_type": finchEvent})
}

func (s *Server) publish(ctx context.Context, typ string, conn finchconnect.Connection, data map[string]any) error {
	id, err := s.randomToken()
	if err != nil {
		return err
	}
	err = s.cfg.Notify(ctx, finchconnect.Event{
		ID: "evt_" + id[:22], Type: typ, At: s.clock.Now().UTC(),
		ConnectionID: conn.ConnectionID, CustomerID: conn.CustomerID, ProviderID: conn.ProviderID, Status: conn.Status,
		Data: data,
	})
	if err != nil {
		return fmt.Errorf("server: publish %s for %s: %w", typ, conn.ConnectionID, err)
	}
	return nil
}

// notifyAfter publishes an event for a change that is recorded already
// and cannot be undone: a failure is logged, for the operator.
func (s *Server) notifyAfter(ctx context.Context, typ string, conn finchconnect.Connection) {
	if err := s.notify(ctx, typ, conn); err != nil {
		s.log.Error("an event about a recorded change was not published", "type", typ, "connection_id", conn.ConnectionID, "err", err)
	}
}

// statusEvent is the event that announces a connection's new status.
func statusEvent(status string) string {
	switch status {
	case finchconnect.StatusReauth:
		return finchconnect.EventConnectionReauthRequired
	case finchconnect.StatusDisconnected:
		return finchconnect.EventConnectionDisconnected
	default:
		return finchconnect.EventConnectionStatusChanged
	}
}

// changeStatus applies change to the stored connection id, which was
// before when read, and announces a new status. The event is published
// first: if publishing fails nothing is written, and if the write fails
// after it the change is still unrecorded. Either way whoever saw the
// change (a webhook Finch delivers again, the next sweep) sees it again,
// and announces it again, so no change goes unannounced; at worst one is
// announced twice. It reports whether the status changed.
func (s *Server) changeStatus(ctx context.Context, id string, before finchconnect.Connection, change func(c *finchconnect.Connection)) (bool, error) {
	preview := before
	change(&preview)
	changed := preview.Status != before.Status
	if changed {
		preview.AccessToken = finchconnect.Secret{}
		if err := s.notify(ctx, statusEvent(preview.Status), preview); err != nil {
			return false, err
		}
	}
	err := s.store.Update(ctx, id, func(c *finchconnect.Connection) error {
		change(c)
		return nil
	})
	s.conns.forget(id)
	if err == nil && changed && preview.Status == finchconnect.StatusDisconnected {
		// Finch says the employer is gone: so is the local copy.
		s.shredRecords(ctx, id)
	}
	return changed, err
}

// audit records a use of a connection's token.
func (s *Server) audit(ctx context.Context, action, connectionID, actor, purpose string) {
	s.cfg.Audit(ctx, finchconnect.AuditRecord{
		At: s.clock.Now().UTC(), Action: action, ConnectionID: connectionID,
		Actor: actor, Purpose: purpose, RequestID: requestID(ctx),
	})
}
