// Package sandbox is an offline server that behaves like Finch's API, so
// that finchconnect's demo, its tests and CI — and any Finch SDK pointed at
// it with FINCH_BASE_URL — run with no Finch account and no network.
//
// It serves every route of Finch's official SDK (docs/sandbox.md lists
// them): Connect sessions and a real (server-rendered) Connect page with
// scenario logins, the code exchange (10-minute, single-use codes consumed
// atomically, Finch's redirect_uri rule), introspection, disconnects, the
// employer data (company, directory, individuals, employments, payments
// and pay statements over two years and the current one, pay groups, pay
// statement items and their rules, documents, deductions and enrollments),
// jobs, request forwarding and Finch's sandbox API. It behaves as Finch
// operates: employers change on a daily refresh as its clock moves,
// deductions and syncs run as jobs, assisted connections take days,
// requests are rate-limited per application and product with the IP
// lockout, and every webhook type is sent, signed and retried. An admin
// API under /_sandbox/ (a prefix Finch never uses) gives statistics, fault
// injection, rate-limit and webhook settings and a clock that tests can
// move. It imports no other finchconnect package, so it cannot share the
// client's mistakes: it speaks JSON built from the wire shapes of Finch's
// documentation and SDKs.
package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Default credentials the sandbox accepts.
const (
	DefaultClientID     = "sandbox-client-id"
	DefaultClientSecret = "sandbox-client-secret"
)

// APIVersion is the Finch-API-Version the sandbox implements and sends on
// every response.
const APIVersion = "2020-09-17"

// CodeLifetime is how long an authorization code can be exchanged.
const CodeLifetime = 10 * time.Minute

// Options configure a Server. The zero value is usable.
type Options struct {
	ClientID, ClientSecret string // "" means DefaultClientID / DefaultClientSecret

	// PublicURL is the URL clients reach the sandbox at, e.g.
	// "http://127.0.0.1:3000/finch"; every absolute URL the sandbox emits
	// (connect_url, form actions) is built from it, so it can be mounted
	// under a path prefix with http.StripPrefix. "" means "http://" + the
	// request's Host.
	PublicURL string

	// DataFile keeps the sandbox's state across restarts: loaded by New,
	// saved shortly after changes and by Close. "" keeps state in memory.
	DataFile string

	// RevokeOnReuse makes a second exchange of a code revoke the tokens the
	// code minted, as RFC 6749 §10.5 suggests, so apps can test that they
	// never send a code twice. A used code is remembered until an hour
	// past its expiry (70 minutes after it was issued); a reuse after
	// that is refused as an unknown code and revokes nothing.
	RevokeOnReuse bool

	Now    func() time.Time // nil: time.Now
	Rand   io.Reader        // nil: crypto/rand
	Logger *slog.Logger     // nil: discard

	// WebhookURL, when set, receives signed webhooks (Finch's scheme,
	// finch-api.md §7) for status changes (account.updated) and data
	// changes (company.updated, directory.created), signed with
	// WebhookSecret (standard base64, like Finch's). Finch-Timestamp is
	// Now without the offset of Advance, since receivers check it against
	// their own clock.
	WebhookURL    string
	WebhookSecret string

	// RedirectURIs are the registered redirect URIs. Nil accepts any
	// http URI on localhost, 127.0.0.1 or [::1], and any https URI.
	RedirectURIs []string

	// Operations (docs/sandbox.md, "Operations: rate limits, assisted
	// connections, webhooks").

	// RateLimitFactor scales Finch's rate limits (per client id and
	// product over a sliding minute, and per IP with its lockout): 1 is
	// Finch's numbers, 2 allows twice as many requests, 0 — the zero
	// value — turns every limit off, so that tests and load runs
	// embedding the sandbox are never throttled unless they ask to be.
	// `finchconnect sandbox` uses 1 (its -rate-limits flag). Negative,
	// NaN or infinite is an error.
	RateLimitFactor float64

	// AssistedPending and AssistedProcessing are how long, on the
	// sandbox's clock, an assisted connection stays pending and then
	// processing before it is connected. 0 means DefaultAssistedPending
	// (1 day) and DefaultAssistedProcessing (2 days); a negative value
	// keeps the status until PUT /sandbox/connections/accounts sets one.
	AssistedPending, AssistedProcessing time.Duration

	// WebhookRetryDelays are the waits, on the wall clock, before each
	// retry of a failed webhook delivery: nil is Finch's schedule
	// (DefaultWebhookRetryDelays: 5 s, 5 min, 30 min, 2 h); an empty
	// slice never retries.
	WebhookRetryDelays []time.Duration
	// WebhookDuplicateEvery > 0 delivers every Nth event twice (same
	// Finch-Event-Id), as Finch may; 1 duplicates every event.
	WebhookDuplicateEvery int
	// WebhookReorderWindow > 1 delivers events in batches of that many,
	// newest first (a partial batch waits at most a second), as Finch
	// does not guarantee order.
	WebhookReorderWindow int

	// RefreshesPerHour is how many data_sync_all jobs POST /jobs/automated
	// lets a connection start in a clock hour; 0 means Finch's
	// DefaultRefreshesPerHour (1).
	RefreshesPerHour int
}

// Stats counts what the sandbox has done, for tests.
type Stats struct {
	TokenExchanges  int            `json:"token_exchanges"`  // successful POST /auth/token
	FailedExchanges int            `json:"failed_exchanges"` // refused POST /auth/token
	CodesIssued     int            `json:"codes_issued"`
	Requests        map[string]int `json:"requests"` // by "METHOD /path"
}

// Fault makes matching requests fail or slow down, for testing clients.
type Fault struct {
	Route      string        `json:"route"`       // "METHOD /path", or "" for every route
	Status     int           `json:"status"`      // an error status (400-599) to answer with (0: none)
	RetryAfter time.Duration `json:"retry_after"` // sets Retry-After (seconds, rounded up)
	Latency    time.Duration `json:"latency"`     // delay before answering
	Malformed  bool          `json:"malformed"`   // answer 200 with a broken JSON body
	Count      int           `json:"count"`       // requests it affects; 0: until cleared
}

// Server is the sandbox; it is an http.Handler. Create it with New and
// Close it to flush DataFile.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	// offset (nanoseconds) is added to Now by Advance and
	// POST /_sandbox/clock; atomic because now() is called with and
	// without mu held.
	offset atomic.Int64

	mu     sync.Mutex
	st     *state
	faults []*Fault
	stats  Stats
	dirty  bool
	pruned time.Time // when st was last pruned, on now()'s clock

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	hooks *hookQueue // webhook delivery (webhooks.go)

	limits limiter // rate limits (ratelimit.go)
}

// New returns a sandbox, loading DataFile when it exists.
func New(opts Options) (*Server, error) {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	clockInjected := opts.Now != nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	opts.PublicURL = strings.TrimSuffix(opts.PublicURL, "/")
	if err := checkFactor(opts.RateLimitFactor); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, st: newState(), stats: Stats{Requests: map[string]int{}}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.DataFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	s.limits.set(opts.RateLimitFactor)
	s.initWebhooks(clockInjected)
	// The loop starts after the webhook queue exists: its tick sends
	// webhooks (refresh notices, finished jobs) through s.hooks.
	if opts.DataFile != "" || opts.WebhookURL != "" {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.saveLoop()
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler: every response carries a
// Finch-Request-Id, and injected faults apply before the route runs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Finch-Request-Id", s.id())
	// Any Finch-API-Version is accepted (Finch documents only 2020-09-17 and
	// not what it does with others); the answer names the version it speaks.
	w.Header().Set("Finch-API-Version", APIVersion)
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	// Requests are counted by route pattern, not by path, so that a client
	// probing random paths cannot grow the counters without bound.
	route := "unmatched"
	if _, pattern := s.mux.Handler(r); pattern != "/" && pattern != "" {
		route = pattern
	}
	if !strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		if !s.allowIP(w, r) {
			return
		}
		s.mu.Lock()
		s.stats.Requests[route]++
		f := s.takeFault(route)
		s.mu.Unlock()
		if f != nil {
			if f.Latency > 0 {
				select {
				case <-time.After(f.Latency):
				case <-r.Context().Done():
					return
				}
			}
			if f.RetryAfter > 0 {
				// Whole seconds, rounded up; written so that it cannot
				// overflow for the largest Duration.
				secs := f.RetryAfter / time.Second
				if f.RetryAfter%time.Second != 0 {
					secs++
				}
				w.Header().Set("Retry-After", fmt.Sprint(int64(secs)))
			}
			switch {
			case f.Malformed:
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"broken": [1, 2,`))
				return
			case f.Status >= 400 && f.Status <= 599:
				name, code := faultName(f.Status)
				writeError(w, f.Status, name, code, "Injected fault.")
				return
			}
		}
	}
	s.mux.ServeHTTP(w, r)
}

// faultName is the Finch error name (and finch_code) an injected status
// answers with (finch-api.md §8).
func faultName(status int) (string, string) {
	switch status {
	case 400:
		return "bad_request", "invalid_request"
	case 401:
		return "invalid_token_error", ""
	case 402:
		return "payment_required", "payment_required"
	case 403:
		return "insufficient_scope_error", ""
	case 404:
		return "not_found_error", "item_not_found"
	case 408:
		return "client_connection_closed", ""
	case 422:
		return "unprocessable_request_error", "unsupported_parameters"
	case 429:
		return "rate_limit_exceeded_error", "finch_rate_limit_exceeded"
	case 501:
		return "not_implemented", ""
	}
	return "server_error", ""
}

// maxBody bounds every request body: a 10,000-id batch read is about
// 550 KB, so 8 MiB is room enough for any honest request.
const maxBody = 8 << 20

// takeFault returns the first fault matching route, consuming one of its
// uses. s.mu must be held.
func (s *Server) takeFault(route string) *Fault {
	for i, f := range s.faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		out := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// InjectFault adds a fault; the first matching fault applies.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		out.Requests[k] = v
	}
	return out
}

// Advance moves the sandbox's clock forward by d (back for a negative d).
// The clock's total offset saturates at the range of a [time.Duration],
// about 292 years either way, rather than wrap around.
func (s *Server) Advance(d time.Duration) {
	for {
		old := s.offset.Load()
		sum, ok := addOffset(old, d)
		if !ok {
			sum = math.MaxInt64
			if d < 0 {
				sum = math.MinInt64
			}
		}
		if s.offset.CompareAndSwap(old, sum) {
			s.tickAssisted()
			return
		}
	}
}

// advance is Advance, except that it reports false and leaves the clock
// alone when the offset would overflow.
func (s *Server) advance(d time.Duration) bool {
	for {
		old := s.offset.Load()
		sum, ok := addOffset(old, d)
		if !ok {
			return false
		}
		if s.offset.CompareAndSwap(old, sum) {
			s.tickAssisted()
			return true
		}
	}
}

// addOffset returns off+d, and false when that overflows an int64.
func addOffset(off int64, d time.Duration) (int64, bool) {
	sum := off + int64(d)
	if d > 0 && sum < off || d < 0 && sum > off {
		return 0, false
	}
	return sum, true
}

// now is the sandbox's clock: Options.Now moved by Advance. Codes,
// sessions and data follow it; webhook signatures use [Server.wallNow].
func (s *Server) now() time.Time { return s.opts.Now().Add(time.Duration(s.offset.Load())) }

// pruneEvery is how often, at most, issuing a code or a session prunes:
// a prune walks every code and session, so doing it at most once a minute
// of sandbox time keeps its cost negligible however fast flows come,
// and delays forgetting by at most a minute on top of the retention.
const pruneEvery = time.Minute

// maybePrune prunes the state when it was last pruned pruneEvery ago or
// more (see [state.prune]). It runs when a code or session is issued, so
// that what the sandbox remembers grows with its traffic and no more,
// with no goroutine of its own. s.mu must be held.
func (s *Server) maybePrune() {
	now := s.now()
	if d := now.Sub(s.pruned); d >= 0 && d < pruneEvery {
		return
	}
	s.pruned = now
	if s.st.prune(now) {
		s.dirty = true
	}
}

// wallNow is Options.Now without the offset of Advance: the time that
// other programs (a webhook receiver checking Finch-Timestamp) share.
func (s *Server) wallNow() time.Time { return s.opts.Now() }

// random returns n random bytes, hex-encoded.
func (s *Server) random(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
		panic("sandbox: randomness failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// id returns a random UUID (version 4), the shape of Finch's ids.
func (s *Server) id() string {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
		panic("sandbox: randomness failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// SetConnectionStatus sets a connection's status, as
// PUT /sandbox/connections/accounts does. "reauth" makes its data
// endpoints answer 401 reauthenticate_user; the other statuses' answers are
// listed in docs/sandbox.md. "disconnected" is POST /disconnect: it revokes
// every token, and a disconnected connection cannot change status again.
func (s *Server) SetConnectionStatus(connectionID, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.Connections[connectionID]
	if !ok {
		return errors.New("sandbox: no such connection")
	}
	if !validStatus(status) {
		return fmt.Errorf("sandbox: unknown status %q", status)
	}
	if c.Status == "disconnected" && status != "disconnected" {
		return errors.New("sandbox: the connection is disconnected, which is permanent")
	}
	if status == "disconnected" {
		s.disconnect(c)
		return nil
	}
	c.AssistedNext = time.Time{} // a status set by hand ends an assisted timeline
	if c.Status != status {
		c.Status = status
		s.emitStatus(c)
		if c.assisted() {
			s.initialSync(c, "") // an assisted connection's data arrives when it is first connected
		}
	}
	s.dirty = true
	return nil
}

func validStatus(st string) bool {
	switch st {
	case "pending", "processing", "connected", "error_no_account_setup", "error_permissions", "reauth", "disconnected":
		return true
	}
	return false
}

// Close stops the background saver and writes DataFile one last time.
// Calling it again returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopWebhooks()
		if s.stop == nil {
			return
		}
		close(s.stop)
		<-s.done
		if s.opts.DataFile != "" {
			s.closeErr = s.save()
		}
	})
	return s.closeErr
}

func (s *Server) saveLoop() {
	defer close(s.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.noticeRefreshes() // sb-payroll: webhooks of data refreshes (timeline.go)
			s.mu.Lock()
			s.settleJobs() // jobs due on the clock complete and send their webhooks
			dirty := s.dirty
			s.mu.Unlock()
			if dirty && s.opts.DataFile != "" {
				if err := s.save(); err != nil {
					s.log.Error("save sandbox state", "err", err)
				}
			}
		}
	}
}

// save writes the state atomically: a crash leaves the old file or the new.
// On failure the state stays dirty, so the next tick tries again.
func (s *Server) save() (err error) {
	b, err := s.snapshot()
	defer func() {
		if err != nil {
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
		}
	}()
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.opts.DataFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".sandbox-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.opts.DataFile)
}

// snapshot returns the state as JSON and marks it clean.
func (s *Server) snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = false
	return json.Marshal(s.st)
}

func (s *Server) load() error {
	b, err := os.ReadFile(s.opts.DataFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox: read %s: %w", s.opts.DataFile, err)
	}
	st := &state{} // no version field means version 1
	if err := json.Unmarshal(b, st); err != nil {
		return fmt.Errorf("sandbox: %s is not a sandbox state file: %v", s.opts.DataFile, err)
	}
	st.fill()
	st.upgrade()
	s.st = st
	return nil
}

// checkClient reports whether id and secret are the sandbox's, in constant
// time.
func (s *Server) checkClient(id, secret string) bool {
	a := subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID))
	b := subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret))
	return a&b == 1
}

// publicURL is the base of absolute URLs in responses.
func (s *Server) publicURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return s.opts.PublicURL
	}
	return "http://" + r.Host
}
