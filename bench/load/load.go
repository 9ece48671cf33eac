package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A request is one prepared request of the timed phase. Everything that
// costs anything to build (a flow's state and browser cookie, a code) is
// built before the timing starts.
type request struct {
	URL    string
	Cookie string // the Cookie header, if any
	Auth   string // the Authorization header, if any
}

// driveOptions say how to drive a target.
type driveOptions struct {
	Concurrency int
	Duration    time.Duration
	WantStatus  int

	// IDFromLocation, when set, extracts a connection id from a
	// successful response's Location header, so that the run can count
	// distinct connections (every callback must create its own).
	IDFromLocation func(loc string) string
}

// result is what one timed phase measured on the client side.
type result struct {
	OK        int
	Errors    int
	ErrorKind map[string]int // "status 502", "transport", …: how the errors failed
	Elapsed   time.Duration
	Exhausted bool            // the prepared requests ran out before Duration
	Latencies []time.Duration // of successful requests, sorted
	Distinct  int             // distinct connection ids, when IDFromLocation is set
	IDs       map[string]bool // the connection ids, when IDFromLocation is set
	Sent      int             // how many of reqs were sent
}

// percentile returns the p-quantile (0 ≤ p ≤ 1) of the sorted latencies,
// by the nearest-rank method: the smallest latency that at least p of all
// requests did not exceed.
func (r result) percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(float64(n)*p+0.999999999) - 1
	return r.Latencies[min(max(rank, 0), n-1)]
}

// rate is successful requests per second over the phase.
func (r result) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// drive sends reqs to the target with opts.Concurrency clients until
// opts.Duration has passed or reqs run out, each request exactly once.
// Redirects are not followed: the response to the request itself is what is
// measured. Requests in flight at the deadline are waited for and counted,
// not cut off: a callback cut off after the target has claimed its code
// would still be stored, and stored connections must equal successful
// callbacks.
func drive(ctx context.Context, client *http.Client, reqs []request, opts driveOptions) result {
	deadline := time.Now().Add(opts.Duration)
	type worker struct {
		lat    []time.Duration
		errs   map[string]int
		ids    []string
		hitEnd bool
	}
	workers := make([]worker, opts.Concurrency)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		me := &workers[w]
		me.errs = map[string]int{}
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					me.hitEnd = true
					return
				}
				rq := reqs[i]
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, rq.URL, nil)
				if err != nil {
					me.errs["bad request"]++
					continue
				}
				if rq.Cookie != "" {
					req.Header.Set("Cookie", rq.Cookie)
				}
				if rq.Auth != "" {
					req.Header.Set("Authorization", rq.Auth)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					me.errs["transport"]++
					continue
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				d := time.Since(t0)
				switch {
				case err != nil:
					me.errs["body"]++
				case res.StatusCode != opts.WantStatus:
					me.errs[fmt.Sprintf("status %d", res.StatusCode)]++
				default:
					me.lat = append(me.lat, d)
					if opts.IDFromLocation != nil {
						me.ids = append(me.ids, opts.IDFromLocation(res.Header.Get("Location")))
					}
				}
			}
		})
	}
	wg.Wait()
	r := result{Elapsed: time.Since(start), ErrorKind: map[string]int{}, Sent: min(int(next.Load()), len(reqs))}
	ids := map[string]bool{}
	for _, w := range workers {
		r.Latencies = append(r.Latencies, w.lat...)
		for k, v := range w.errs {
			r.ErrorKind[k] += v
			r.Errors += v
		}
		for _, id := range w.ids {
			if id != "" {
				ids[id] = true
			}
		}
		r.Exhausted = r.Exhausted || w.hitEnd
	}
	slices.Sort(r.Latencies)
	r.OK = len(r.Latencies)
	r.Distinct = len(ids)
	if opts.IDFromLocation != nil {
		r.IDs = ids
	}
	return r
}

// connectionFromLocation returns the connection id of a redirect to
// finchconnect's connection page, "/connections/{id}".
func connectionFromLocation(loc string) string {
	_, id, ok := strings.Cut(loc, "/connections/")
	if !ok {
		return ""
	}
	id, _, _ = strings.Cut(id, "?")
	return id
}
