package budget

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Finch's published limits (finch-api-more.md §7), the defaults of
// [Limits]: per application (client id) and product bucket over a sliding
// 60 s window; per source IP, 1000 requests in 5 minutes, whose breach
// locks the IP out for an hour. documents (listed, number unpublished) and
// benefits (not listed) get 20, as the sandbox does.
const (
	DefaultWindow    = time.Minute
	DefaultIPLimit   = 1000
	DefaultIPWindow  = 5 * time.Minute
	DefaultIPLockout = time.Hour
)

// defaultProducts is the one table of Finch's per-product numbers.
var defaultProducts = map[string]int{
	"company": 20, "directory": 20, "individual": 20, "employment": 20, "pay-statement-item": 20,
	"payment": 12, "pay-groups": 12, "pay-statement": 12,
	"documents": 20, "benefits": 20,
}

// Limits are the numbers a [Budget] keeps to. The zero value of a field
// means its default (Finch's published number); see [DefaultLimits].
type Limits struct {
	// Products maps a product bucket (the first segment after /employer/,
	// as Finch counts them: "company", "directory", "pay-statement", …)
	// to the requests a Window allows the application. A bucket absent
	// from the map takes Finch's number; a path whose bucket is not in the
	// resulting table counts against the IP limit only.
	Products map[string]int
	// Window is the sliding window of the product limits, default 60 s.
	Window time.Duration
	// IP is the requests IPWindow allows one source IP, default 1000 in
	// 5 minutes; IPLockout (default 1 h) is how long Finch refuses
	// everything after a breach, the breaker's default when a lockout
	// 429 carries no Retry-After.
	IP        int
	IPWindow  time.Duration
	IPLockout time.Duration
	// Reserve maps a product bucket to its interactive reserve: the last
	// slots of the bucket's window that Background calls may not take, so
	// that an Interactive call arriving while background work keeps the
	// window busy finds a slot at once. Background calls get a permit only
	// while the window (across every replica sharing it) holds fewer than
	// limit − reserve; Interactive calls may use the whole window. A
	// bucket absent from the map takes [DefaultReserve] of its limit; an
	// entry of 0 turns the reserve off for that bucket (background may
	// fill the window). A reserve must be less than the bucket's limit.
	Reserve map[string]int
	// IPReserve is the IP window's reserve, the same rule: 0 means
	// [DefaultReserve] of IP, -1 none.
	IPReserve int
}

// DefaultReserve is the interactive reserve of a window of limit slots
// when none is configured: one slot in twenty (5%), at least one, and at
// most limit − 1 so that background work always keeps a slot. With
// Finch's numbers: 1 of 20 and of 12 for the products, 50 of 1000 for
// the IP window; a window of one slot has none.
func DefaultReserve(limit int) int {
	return max(0, min(max(1, limit/20), limit-1))
}

// WithoutReserve returns l with every reserve off (background may fill
// every window), as before the reserve existed.
func (l Limits) WithoutReserve() Limits {
	l.Reserve = map[string]int{}
	for p := range l.withDefaults().Products {
		l.Reserve[p] = 0
	}
	l.IPReserve = -1
	return l
}

// reserves resolves the reserve of every window of l (defaults applied):
// bucket → reserve, and ipKey.
func (l Limits) reserves() (map[string]int, error) {
	out := map[string]int{}
	for p, n := range l.Products {
		r, ok := l.Reserve[p]
		if !ok {
			r = DefaultReserve(n)
		}
		if r < 0 || r >= n {
			return nil, fmt.Errorf("budget: the reserve of product %q must be at least 0 and less than its limit %d, got %d", p, n, r)
		}
		out[p] = r
	}
	for p := range l.Reserve {
		if _, ok := l.Products[p]; !ok {
			return nil, fmt.Errorf("budget: a reserve is given for %q, which has no limit", cleanName(p))
		}
	}
	switch r := l.IPReserve; {
	case r == 0:
		out[ipKey] = DefaultReserve(l.IP)
	case r == -1:
		out[ipKey] = 0
	case r < 0 || r >= l.IP:
		return nil, fmt.Errorf("budget: the IP reserve must be -1 (none) or less than the IP limit %d, got %d", l.IP, r)
	default:
		out[ipKey] = r
	}
	return out, nil
}

// DefaultLimits returns Finch's published numbers.
func DefaultLimits() Limits {
	return Limits{Products: maps.Clone(defaultProducts), Window: DefaultWindow,
		IP: DefaultIPLimit, IPWindow: DefaultIPWindow, IPLockout: DefaultIPLockout}
}

// withDefaults fills the zero fields with Finch's numbers.
func (l Limits) withDefaults() Limits {
	out := DefaultLimits()
	for p, n := range l.Products {
		out.Products[p] = n
	}
	if l.Window > 0 {
		out.Window = l.Window
	}
	if l.IP > 0 {
		out.IP = l.IP
	}
	if l.IPWindow > 0 {
		out.IPWindow = l.IPWindow
	}
	if l.IPLockout > 0 {
		out.IPLockout = l.IPLockout
	}
	if l.Reserve != nil {
		out.Reserve = maps.Clone(l.Reserve)
	}
	out.IPReserve = l.IPReserve
	return out
}

func (l Limits) check() error {
	for p, n := range l.Products {
		if n < 1 {
			return fmt.Errorf("budget: limit of product %q must be at least 1, got %d", p, n)
		}
		if !validBucket(p) {
			return fmt.Errorf("budget: %q is not a product bucket name (lower-case letters and -)", cleanName(p))
		}
	}
	if l.Window < 0 || l.IPWindow < 0 || l.IPLockout < 0 || l.IP < 0 {
		return errors.New("budget: windows, lockout and the IP limit must not be negative")
	}
	return nil
}

// Scale returns l with every count (the limits and the explicit
// reserves) multiplied by f (rounded up, at least 1) and the windows
// kept, as the sandbox's RateLimitFactor scales its limits.
func (l Limits) Scale(f float64) Limits {
	l = l.withDefaults()
	sc := func(n int) int { return max(1, int(float64(n)*f+0.999999)) }
	for p, n := range l.Products {
		l.Products[p] = sc(n)
	}
	l.IP = sc(l.IP)
	// An explicit reserve scales too (0 stays 0); a default one follows
	// the scaled limit by itself.
	for p, n := range l.Reserve {
		if n > 0 {
			l.Reserve[p] = min(sc(n), max(0, l.Products[p]-1))
		}
	}
	if l.IPReserve > 0 {
		l.IPReserve = min(sc(l.IPReserve), l.IP-1)
	}
	return l
}

func validBucket(p string) bool {
	return p != "" && len(p) <= 40 && !strings.ContainsFunc(p, func(r rune) bool {
		return (r < 'a' || r > 'z') && r != '-' && r != '_'
	})
}

func cleanName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// ParseProducts parses "company=20,payment=12" (the -budget-limits flag)
// into a Products map. Every bucket named must be a known Finch bucket or
// a lower-case name; every number at least 1.
func ParseProducts(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		n, err := strconv.Atoi(strings.TrimSpace(num))
		switch {
		case !ok:
			return nil, fmt.Errorf("budget: %q is not product=N", cleanName(part))
		case !validBucket(name):
			return nil, fmt.Errorf("budget: %q is not a product bucket (known: %s)", cleanName(name), strings.Join(Buckets(), ", "))
		case err != nil || n < 1:
			return nil, fmt.Errorf("budget: the limit of %s must be a whole number ≥ 1, got %q", name, cleanName(num))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("budget: %s is given twice", name)
		}
		out[name] = n
	}
	return out, nil
}

// Buckets lists Finch's product buckets, sorted.
func Buckets() []string { return slices.Sorted(maps.Keys(defaultProducts)) }

// BucketOf is the product bucket Finch counts a request to path against:
// "/employer/directory" is "directory", "/employer/benefits/x/individuals"
// "benefits", "/employer/pay-statement" "pay-statement". Paths outside
// /employer/ (/introspect, /auth/token, /jobs, /connect/sessions, …) have
// no bucket ("") and count against the IP limit only. A bucket that the
// Budget's table does not list also counts against the IP limit only.
func BucketOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/employer/")
	if !ok {
		return ""
	}
	seg, _, _ := strings.Cut(rest, "/")
	if !validBucket(seg) {
		return ""
	}
	return seg
}
