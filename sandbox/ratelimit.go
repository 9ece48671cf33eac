package sandbox

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Finch's rate limits (finch-api-more.md §7): per application (client id)
// and per product over a sliding 60 s window, shared by every token of the
// application; and per source IP, 1000 requests in 5 minutes, whose breach
// locks the IP out for an hour. Options.RateLimitFactor scales the counts
// (never the windows); 0 turns every limit off.
const (
	appWindow = time.Minute
	ipWindow  = 5 * time.Minute
	ipLockout = time.Hour
	ipLimit   = 1000
)

// productLimits are the requests a minute each product bucket allows an
// application: Finch's published numbers, 20 for documents (listed,
// number unpublished) and benefits (not listed), both the sandbox's choice.
var productLimits = map[string]int{
	"company": 20, "directory": 20, "individual": 20, "employment": 20, "pay-statement-item": 20,
	"payment": 12, "pay-groups": 12, "pay-statement": 12,
	"documents": 20, "benefits": 20,
}

// rateMessage is the message of Finch's documented 429 body, for the
// application limit and the IP limit alike.
const rateMessage = "Too many requests for token"

// bucketOf is the product bucket of an API path ("/employer/directory" is
// "directory", "/employer/benefits/x/individuals" "benefits"), or "" for
// a path no application limit covers (/introspect, /jobs, /sandbox, …).
func bucketOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/employer/")
	if !ok {
		return ""
	}
	seg, _, _ := strings.Cut(rest, "/")
	if _, ok := productLimits[seg]; ok {
		return seg
	}
	return ""
}

// window is a sliding log of the times (UnixNano) requests were admitted:
// it grows up to the limit, then is a ring whose head is the oldest
// admission. A request is admitted when fewer than limit admissions fall
// within span before it: O(1) per request.
type window struct {
	at   []int64
	head int
}

// admit records an admission at t and reports true, or reports false and
// how long until the oldest admission leaves the window.
func (w *window) admit(t int64, limit int, span time.Duration) (bool, time.Duration) {
	if len(w.at) < limit {
		w.at = append(w.at, t)
		return true, 0
	}
	oldest := w.at[w.head]
	if t-oldest >= int64(span) {
		w.at[w.head] = t
		w.head = (w.head + 1) % len(w.at)
		return true, 0
	}
	return false, time.Duration(oldest + int64(span) - t)
}

// newest is the time of the latest admission (0 for none).
func (w *window) newest() int64 {
	if len(w.at) == 0 {
		return 0
	}
	return w.at[(w.head+len(w.at)-1)%len(w.at)]
}

type appKey struct{ client, bucket string }

type ipState struct {
	w           window
	lockedUntil int64 // UnixNano; 0: not locked out
}

// limiter holds every window. Its mutex is its own, so it never waits
// on the sandbox's state lock, and it is held only for a map lookup and
// an admit. With limits off (factor 0) a request costs one atomic load.
type limiter struct {
	factor atomic.Uint64 // math.Float64bits of the factor; 0 is off

	mu        sync.Mutex
	apps      map[appKey]*window
	ips       map[string]*ipState
	swept     int64 // when ips was last swept (UnixNano)
	limited   int   // 429s for an application limit
	ipLimited int   // 429s for the IP limit (lockouts included)
	lockouts  int   // IP lockouts started
}

func (l *limiter) get() float64 { return math.Float64frombits(l.factor.Load()) }

// set changes the factor and forgets every window and lockout, so limits
// of the old size cannot linger.
func (l *limiter) set(f float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.factor.Store(math.Float64bits(f))
	l.apps, l.ips = nil, nil
}

// scaled is base requests scaled by factor f: at least 1, and bounded so
// that it stays an int on every platform.
func scaled(base int, f float64) int {
	n := math.Ceil(float64(base) * f)
	if n < 1 {
		return 1
	}
	if n > 1<<30 {
		return 1 << 30
	}
	return int(n)
}

func checkFactor(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return errors.New("sandbox: the rate-limit factor must be a finite number ≥ 0 (0 turns the limits off, 1 is Finch's numbers)")
	}
	return nil
}

// SetRateLimits sets the rate-limit factor (see Options.RateLimitFactor)
// and resets every window and IP lockout.
func (s *Server) SetRateLimits(factor float64) error {
	if err := checkFactor(factor); err != nil {
		return err
	}
	s.limits.set(factor)
	return nil
}

// ResetRateLimits forgets every window and IP lockout, keeping the factor.
func (s *Server) ResetRateLimits() { s.limits.set(s.limits.get()) }

// allowIP applies the IP limit to an API request (the Connect pages and
// the admin API are not Finch's API host and are not counted), answering
// 429 finch_api_ip_rl and reporting false when it is refused.
func (s *Server) allowIP(w http.ResponseWriter, r *http.Request) bool {
	f := s.limits.get()
	if f == 0 || strings.HasPrefix(r.URL.Path, "/authorize") {
		return true
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := s.now().UnixNano()
	l := &s.limits
	l.mu.Lock()
	if l.ips == nil {
		l.ips = map[string]*ipState{}
	}
	l.sweep(now)
	st := l.ips[ip]
	if st == nil {
		st = &ipState{}
		l.ips[ip] = st
	}
	var wait time.Duration
	switch {
	case st.lockedUntil != 0 && now < st.lockedUntil:
		wait = time.Duration(st.lockedUntil - now)
	case st.lockedUntil != 0:
		// The lockout is over: the IP starts afresh.
		*st = ipState{}
		fallthrough
	default:
		if ok, _ := st.w.admit(now, scaled(ipLimit, f), ipWindow); !ok {
			st.lockedUntil = now + int64(ipLockout)
			wait = ipLockout
			l.lockouts++
		}
	}
	if wait > 0 {
		l.ipLimited++
	}
	l.mu.Unlock()
	if wait > 0 {
		tooMany(w, "finch_api_ip_rl", wait)
		return false
	}
	return true
}

// sweep forgets, at most once per ipWindow and only when many IPs are
// known, the IPs neither locked out nor seen within ipWindow, so that
// memory stays bounded by recent traffic. l.mu must be held.
func (l *limiter) sweep(now int64) {
	if len(l.ips) < 1024 || now-l.swept < int64(ipWindow) {
		return
	}
	l.swept = now
	for ip, st := range l.ips {
		if st.lockedUntil <= now && now-st.w.newest() >= int64(ipWindow) {
			delete(l.ips, ip)
		}
	}
}

// allowApp applies the application limit of the request's product bucket
// to a request authenticated by token t: every token of one client id
// shares the window. It answers 429 finch_application_rl and reports
// false when the request is refused. Refused requests do not count.
func (s *Server) allowApp(w http.ResponseWriter, r *http.Request, t *token) bool {
	f := s.limits.get()
	if f == 0 {
		return true
	}
	bucket := bucketOf(r.URL.Path)
	if bucket == "" {
		return true
	}
	client := t.ClientID
	if client == "" {
		client = s.opts.ClientID // a token minted before tokens kept their client id
	}
	now := s.now().UnixNano()
	l := &s.limits
	l.mu.Lock()
	if l.apps == nil {
		l.apps = map[appKey]*window{}
	}
	k := appKey{client, bucket}
	win := l.apps[k]
	if win == nil {
		win = &window{}
		l.apps[k] = win
	}
	ok, wait := win.admit(now, scaled(productLimits[bucket], f), appWindow)
	if !ok {
		l.limited++
	}
	l.mu.Unlock()
	if !ok {
		tooMany(w, "finch_application_rl", wait)
	}
	return ok
}

// tooMany answers Finch's 429 with a Retry-After of wait in whole seconds,
// rounded up (Finch does not document the header; the SDKs honour it).
func tooMany(w http.ResponseWriter, finchCode string, wait time.Duration) {
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
	writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded_error", finchCode, rateMessage)
}

// handleRateLimits is GET /_sandbox/rate-limits: the factor, the limits
// it gives and how many requests were refused.
func (s *Server) handleRateLimits(w http.ResponseWriter, r *http.Request) {
	f := s.limits.get()
	limits := map[string]int{}
	for b, n := range productLimits {
		limits[b] = scaled(n, f)
	}
	l := &s.limits
	l.mu.Lock()
	counts := map[string]int{"application_limited": l.limited, "ip_limited": l.ipLimited, "ip_lockouts": l.lockouts}
	l.mu.Unlock()
	out := map[string]any{
		"enabled": f > 0, "factor": f, "window_seconds": int(appWindow / time.Second), "products": limits,
		"ip": map[string]any{"limit": scaled(ipLimit, f), "window_seconds": int(ipWindow / time.Second), "lockout_seconds": int(ipLockout / time.Second)},
	}
	if f == 0 {
		out["products"], out["ip"] = map[string]int{}, nil
	}
	for k, v := range counts {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSetRateLimits is PUT /_sandbox/rate-limits {"factor": 1}: it sets
// the factor and resets every window and lockout.
func (s *Server) handleSetRateLimits(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Factor *float64 `json:"factor"`
	}
	if err := decodeBody(r, &req); err != nil || req.Factor == nil {
		badRequest(w, `The body must be {"factor": 1} (0 turns the limits off, 1 is Finch's numbers).`)
		return
	}
	if err := s.SetRateLimits(*req.Factor); err != nil {
		badRequest(w, "factor must be a finite number ≥ 0 (0 turns the limits off, 1 is Finch's numbers).")
		return
	}
	s.handleRateLimits(w, r)
}

// handleResetRateLimits is DELETE /_sandbox/rate-limits: every window and
// lockout is forgotten; the factor stays.
func (s *Server) handleResetRateLimits(w http.ResponseWriter, r *http.Request) {
	s.ResetRateLimits()
	s.handleRateLimits(w, r)
}
