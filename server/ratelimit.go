package server

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimit is a token bucket per client address: Burst requests at once,
// refilled at PerMinute. The zero value disables the limit.
type RateLimit struct {
	PerMinute float64
	Burst     int
}

// limiter enforces a RateLimit per client IP. Its memory is bounded: idle
// buckets are dropped when the table grows past maxClients.
type limiter struct {
	rate  RateLimit
	now   func() time.Time
	mu    sync.Mutex
	table map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxClients = 10000

func newLimiter(rate RateLimit, now func() time.Time) *limiter {
	return &limiter{rate: rate, now: now, table: map[string]*bucket{}}
}

// allow takes a token for client, or reports how long until one is free.
func (l *limiter) allow(client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	perSec := l.rate.PerMinute / 60
	b, ok := l.table[client]
	if !ok {
		if len(l.table) >= maxClients {
			l.sweep(now, perSec)
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.table[client] = b
	}
	// A clock that goes back (Config.Now is not always time.Now, whose
	// monotonic reading never does) refills nothing, rather than drain
	// the bucket.
	b.tokens = math.Min(float64(l.rate.Burst), b.tokens+max(now.Sub(b.last), 0).Seconds()*perSec)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / perSec * float64(time.Second))
}

// sweep drops buckets that have refilled completely: forgetting them
// changes nothing. If that frees too little, the table is reset, which at
// worst grants a burst to clients seen before.
func (l *limiter) sweep(now time.Time, perSec float64) {
	for k, b := range l.table {
		if b.tokens+now.Sub(b.last).Seconds()*perSec >= float64(l.rate.Burst) {
			delete(l.table, k)
		}
	}
	if len(l.table) >= maxClients {
		clear(l.table)
	}
}

// limit wraps h with rate's limit per client address (see clientIP). A client over its
// limit gets 429 with Retry-After, before any work reaches the store or
// Finch.
func (s *Server) limit(rate RateLimit, h http.Handler) http.Handler {
	if rate.PerMinute <= 0 || rate.Burst <= 0 {
		return h
	}
	l := newLimiter(rate, s.clock.Now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.allow(s.clientIP(r))
		if !ok {
			w.Header().Set("Retry-After", formatSeconds(wait))
			s.refuse(w, r, http.StatusTooManyRequests, "rate_limited", "Too many requests.", "Please wait a moment and try again.")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// clientIP is the address the request came from: the connection's peer,
// or, when that peer is one of Config.TrustedProxies, the address the
// proxies recorded in X-Forwarded-For. That list is read from the right
// (each proxy appends the address it was reached from), skipping trusted
// proxies; the first other address is the client. Entries left of it are
// whatever the client sent, and are never used.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.cfg.TrustedProxies) == 0 || !s.trustedProxy(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(hop)
		if err != nil {
			// Not an address: the proxies' record is broken; count the
			// request against the proxy rather than a name anyone chose.
			return host
		}
		if !s.trustedProxy(hop) {
			return a.Unmap().String()
		}
	}
	return host // every hop is a trusted proxy
}

func (s *Server) trustedProxy(host string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func formatSeconds(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
