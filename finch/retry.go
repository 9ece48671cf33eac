package finch

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryPolicy says when a request may be sent again.
type retryPolicy int

const (
	// retryNever: the request is sent at most once, whatever happens. Used
	// for POST /auth/token: a code is single use, so a second send after a
	// lost response can only fail (or, at a server that revokes on reuse,
	// revoke the token the first send minted).
	retryNever retryPolicy = iota

	// retryUnsent: a write, sent again only when it certainly did not take
	// effect: the connection was never established (a dial error), or
	// Finch refused it with 429 before doing anything. Used for Connect
	// sessions and disconnects, which Finch does not make idempotent (no
	// Idempotency-Key), so a retry after a timeout or a 5xx could create a
	// second session or race a disconnect.
	retryUnsent

	// retryRead: a read, retried on connection errors and timeouts, 408,
	// 409, 429 and 5xx, as Finch's own SDKs do.
	retryRead
)

// Backoff parameters, the same as Finch's SDKs: 0.5 s doubling to at most
// 8 s, minus up to 25 % jitter.
const (
	initialBackoff = 500 * time.Millisecond
	maxBackoff     = 8 * time.Second

	// maxServerDelay is the longest Retry-After the client waits out. A
	// longer one (Finch's IP block lasts an hour) is not slept through in a
	// request path; the 429 is returned with APIError.RetryAfter set and
	// the caller decides.
	maxServerDelay = 60 * time.Second
)

// retryResponse decides whether an HTTP response should be retried under
// policy p. The x-should-retry header, which Finch's SDKs obey, overrides
// the status rules for reads and unsent-writes alike: a server that says
// "true" has said the request did not take effect.
func retryResponse(p retryPolicy, resp *http.Response) bool {
	if p == retryNever {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("X-Should-Retry"))) {
	case "true":
		return true
	case "false":
		return false
	}
	s := resp.StatusCode
	if p == retryUnsent {
		return s == http.StatusTooManyRequests
	}
	return s == http.StatusRequestTimeout || s == http.StatusConflict ||
		s == http.StatusTooManyRequests || s >= 500
}

// retryError decides whether a failed attempt (no usable response) should be
// retried under policy p.
func retryError(p retryPolicy, err error) bool {
	switch {
	case p == retryNever:
		return false
	case errors.Is(err, ErrResponseTooLarge):
		return false // a second try gets the same large body
	case p == retryUnsent:
		return notSent(err)
	}
	return true
}

// notSent reports whether err shows the request never left this process:
// dialling (including the DNS lookup) failed, so no byte reached Finch.
// Errors after the connection was made, such as a reset or a timeout while
// waiting, prove nothing either way.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff returns the default wait before retry number n (0 for the first).
func (c *Client) backoff(n int) time.Duration {
	d := maxBackoff
	if n < 5 {
		d = min(time.Duration(float64(initialBackoff)*math.Pow(2, float64(n))), maxBackoff)
	}
	return time.Duration(float64(d) * (1 - c.jitter()*0.25))
}

// jitter returns a number in [0, 1). It is not key-like, so math/rand is
// the right source; tests replace it through the jitter field.
func (c *Client) jitter() float64 {
	if c.jitterFn != nil {
		return c.jitterFn()
	}
	return rand.Float64()
}

// serverDelay returns the wait a response asks for, from retry-after-ms
// (milliseconds, may be fractional) or Retry-After (seconds, may be
// fractional, or an HTTP-date), or -1 if it asks for none. A date in the
// past means 0.
func serverDelay(h http.Header, now func() time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) && !math.IsNaN(ms) {
			return durationOf(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || math.IsInf(s, 0) || math.IsNaN(s) {
			return -1
		}
		return durationOf(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now()), 0)
	}
	return -1
}

// durationOf converts nanoseconds to a Duration without overflowing.
func durationOf(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// sleep waits d or until ctx is done.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
