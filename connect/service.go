// Package connect owns finchconnect's exactly-once protocol: Connect flows
// and their single-use states, the callback ledger that lets exactly one
// request exchange each authorization code, the write-ahead that stages an
// exchanged token before the vault write, the journal that holds tokens
// through a store outage, the recovery of callbacks a crashed process left
// half done, the drain that lets shutdown wait for them, and the claims that
// apply each Finch webhook once.
//
// One [Service] holds all of it behind a small API: [Service.StartFlow],
// [Service.Complete], [Service.Cancel], [Service.Webhook],
// [Service.Recover], [Service.Replay], [Service.Drain],
// [Service.StagedKeyIDs], and [Service.Run], which runs the recovery and
// replay loops until its context ends. Package server is the HTTP
// transport in front of it; nothing outside this package reads or writes
// its records (flow states, ledger entries, webhook claims).
//
// Every record starts with a format version, carries its claimant's own
// random nonce, and is changed only by compare-and-set, so that a claimant
// whose answer was lost (a store that timed out after the write, a client
// that sent it twice) reads back and tells its own claim from another's.
package connect

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/internal/inflight"
	"github.com/finchconnect/finchconnect/internal/reqid"
	"github.com/finchconnect/finchconnect/internal/seam"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// Config configures a [Service]. Zero-value fields mean the default.
type Config struct {
	// RedirectURI is the redirect_uri registered with Finch, where Connect
	// sends the browser with the code of a redirect flow. Required.
	RedirectURI string

	// ReturnOrigins are the origins ("https://app.example.com") to which
	// app-started flows may return the browser (FlowRequest.ReturnURL).
	ReturnOrigins []string

	// Sandbox is passed as the Connect session's "sandbox" field ("finch"
	// or "provider") when set.
	Sandbox string

	// StateTTL is how long a Connect flow may take from its start to the
	// callback. Default 10 minutes, the life of a Finch authorization code.
	StateTTL time.Duration

	// WaitTimeout bounds how long a duplicate callback waits for the first
	// one to finish. Default 90 seconds.
	WaitTimeout time.Duration

	// RecoverAfter is how long a callback may stay in flight before it is
	// considered abandoned by a crashed process and finished by
	// [Service.Recover] or by a duplicate. Default 3 minutes, longer than
	// any exchange.
	RecoverAfter time.Duration

	// Journal holds tokens that the store could not take during an outage,
	// until [Service.Replay] replays them into it. Nil: such a token is
	// disconnected at Finch instead, and the employer asked to connect
	// again.
	Journal Journal

	// Notify receives the events of the connections that callbacks store
	// (created, re-authenticated). Nil drops them. A callback's change
	// cannot be undone, so an error is logged.
	Notify func(ctx context.Context, e finchconnect.Event) error

	// Audit receives one record per exchanged code. Nil drops them.
	Audit func(ctx context.Context, r finchconnect.AuditRecord)

	// Logger receives the errors someone must act on. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Journal is a durable local holding area for exchanged tokens, used while
// the store is unreachable. *tokenstore.Journal implements it.
type Journal interface {
	// Hold keeps conn until the store takes it; tag comes back from
	// Replay.
	Hold(conn finchconnect.Connection, tag string) error
	// HoldReplacement is Hold for a re-authentication's token: replayed,
	// it replaces the stored connection and never inserts one.
	HoldReplacement(conn finchconnect.Connection, tag string) error
	// Replay moves the tokens held into the store and returns those it
	// moved.
	Replay(ctx context.Context) ([]tokenstore.Replayed, error)
	Pending() int
}

// Option sets one of the Service's test seams.
type Option func(*options)

type options struct{ seam.Set }

// WithClock sets the clock every step of the protocol reads (ages, TTLs,
// backoffs, polls, the loops of Run). Default: the system clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.Clock = c } }

// WithRand sets the randomness of states and nonces. Default crypto/rand.
func WithRand(r io.Reader) Option { return func(o *options) { o.Rand = r } }

// WithFailpoint sets a hook called at named points of a callback
// ("before-exchange", "after-exchange", "after-stage", reached only on the
// write-ahead path, "after-commit"), so that crash tests can kill the
// process there.
func WithFailpoint(f func(name string)) Option { return func(o *options) { o.Failpoint = f } }

// Service runs the protocol. Create it with [New]; it is safe for
// concurrent use.
type Service struct {
	cfg       Config
	log       *slog.Logger
	finch     *finch.Client
	store     *tokenstore.Store
	backend   keySpace
	clock     clock.Clock
	rand      io.Reader
	failpoint func(string)

	// waiters lets duplicate callbacks on this replica wake as soon as the
	// first one settles, instead of polling the store. Other replicas poll.
	mu      sync.Mutex
	waiters map[string]*waiter

	// inflight counts the callbacks past their claim, for Drain.
	inflight inflight.Group

	// unsettled are replayed callbacks whose ledger entries the store could
	// not settle yet; the next Replay tries them again.
	replayMu  sync.Mutex
	unsettled []tokenstore.Replayed
}

// keySpace is what the protocol uses of the store's backend besides the
// vault: the key space of its flow states, ledger entries and webhook
// claims, and the transaction that claims a callback's code
// (tokenstore.ClaimAllIf). It never reads or writes a connection row
// itself: those go through the tokenstore.Store.
type keySpace interface {
	tokenstore.KeySpace
	tokenstore.Transactor
}

// New returns the protocol's service over the Finch client fc and the vault
// store, whose backend also holds the flow states and the callback ledger.
func New(cfg Config, fc *finch.Client, store *tokenstore.Store, opts ...Option) (*Service, error) {
	if fc == nil || store == nil {
		return nil, errors.New("connect: a finch client and a token store are required")
	}
	if u, err := url.Parse(cfg.RedirectURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("connect: RedirectURI must be an absolute http(s) URL")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.Set = o.WithDefaults() // a nil seam is the default
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 10 * time.Minute
	}
	if cfg.RecoverAfter <= 0 {
		cfg.RecoverAfter = 3 * time.Minute
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 90 * time.Second
	}
	if cfg.Notify == nil {
		cfg.Notify = func(context.Context, finchconnect.Event) error { return nil }
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, finchconnect.AuditRecord) {}
	}
	origins := []string{}
	if u, err := url.Parse(cfg.RedirectURI); err == nil {
		origins = append(origins, u.Scheme+"://"+u.Host)
	}
	cfg.ReturnOrigins = append(origins, cfg.ReturnOrigins...)
	return &Service{
		cfg:       cfg,
		log:       cfg.Logger,
		finch:     fc,
		store:     store,
		backend:   store.Backend(),
		clock:     o.Clock,
		rand:      o.Rand,
		failpoint: o.Failpoint,
		waiters:   map[string]*waiter{},
	}, nil
}

// Stats are counts of work in progress, for metrics and tests.
type Stats struct {
	InFlight int // callbacks past their claim, which Drain waits for
	Waiting  int // codes this replica's duplicate callbacks wait on
}

// Stats returns the work in progress now.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	n := len(s.waiters)
	s.mu.Unlock()
	return Stats{InFlight: s.inflight.Running(), Waiting: n}
}

// Run runs the service's background loops until ctx ends: recovery of
// abandoned callbacks every RecoverAfter/2 (at least a second), and the
// journal's replay every 2 seconds while it holds tokens or replayed
// callbacks wait to be settled. It returns nil once ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.every(ctx, max(s.cfg.RecoverAfter/2, time.Second), func() {
			if _, err := s.Recover(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("recover callbacks", "err", err)
			}
		})
	}()
	go func() {
		defer wg.Done()
		s.every(ctx, replayInterval, func() {
			if _, err := s.Replay(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("replay the journal", "err", err, "pending", s.cfg.Journal.Pending())
			}
		})
	}()
	wg.Wait()
	return nil
}

// replayInterval is how often Run replays the journal: a token held there
// reaches the store within seconds of the store answering again.
const replayInterval = 2 * time.Second

// every calls f every d on the service's clock until ctx ends.
func (s *Service) every(ctx context.Context, d time.Duration, f func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(d):
			f()
		}
	}
}

// returnAllowed reports whether a return URL is on an allowed origin:
// anything else would make the callback an open redirect.
func (s *Service) returnAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	origin := u.Scheme + "://" + u.Host
	for _, o := range s.cfg.ReturnOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// notifyAfter publishes an event for a change that is recorded already
// and cannot be undone: a failure is logged, for the operator.
func (s *Service) notifyAfter(ctx context.Context, typ string, conn finchconnect.Connection) {
	id, err := s.randomToken()
	if err == nil {
		conn.AccessToken = finchconnect.Secret{}
		err = s.cfg.Notify(ctx, finchconnect.Event{
			ID: "evt_" + id[:22], Type: typ, At: s.clock.Now().UTC(),
			ConnectionID: conn.ConnectionID, CustomerID: conn.CustomerID, ProviderID: conn.ProviderID, Status: conn.Status,
		})
	}
	if err != nil {
		s.log.Error("an event about a recorded change was not published", "type", typ, "connection_id", conn.ConnectionID, "err", err)
	}
}

// detach returns a context that is not cancelled when the request's is: a
// code exchange, once started, must finish and be stored even if the
// browser goes away, or the token would be lost.
func detach(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// audit records a use of a connection's token.
func (s *Service) audit(ctx context.Context, action, connectionID, actor, purpose string) {
	s.cfg.Audit(ctx, finchconnect.AuditRecord{
		At: s.clock.Now().UTC(), Action: action, ConnectionID: connectionID,
		Actor: actor, Purpose: purpose, RequestID: reqid.From(ctx),
	})
}
