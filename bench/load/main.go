// Command load drives one target of the load runs with fixed concurrency for
// a fixed time and reports throughput, latency percentiles, errors, and the
// target's CPU time per request and peak memory (from /proc, given -pid).
// Inputs (codes, and for finchconnect valid states) are prepared before the
// timed phase, so the timed work is the request itself.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	mode := flag.String("mode", "callback", "callback or read")
	kind := flag.String("kind", "floor", "floor, peer or finchconnect (how to build requests)")
	target := flag.String("target", "", "the target's base URL")
	pid := flag.Int("pid", 0, "the target's process id, for CPU and memory")
	conc := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "how long to drive the target")
	max := flag.Int("n", 60000, "requests to prepare (the run stops early if they run out)")
	apiKey := flag.String("api-key", "", "finchconnect API key (to prepare states, and for the proxy)")
	path := flag.String("path", "", "read mode: the path to GET")
	label := flag.String("label", "", "name of this run in the report")
	flag.Parse()

	client := &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxIdleConns: *conc * 2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	reqs := prepare(client, *mode, *kind, *target, *apiKey, *path, *max)
	want := http.StatusOK
	if *mode == "callback" {
		want = map[string]int{"floor": 302, "peer": 302, "finchconnect": 303}[*kind]
	}

	cpu0 := cpuTicks(*pid)
	var next, errs atomic.Int64
	lat := make([][]time.Duration, *conc)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodGet, reqs[i], nil)
				if *apiKey != "" && *mode == "read" {
					req.Header.Set("Authorization", "Bearer "+*apiKey)
				}
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := cpuTicks(*pid)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	ok := len(all)
	res := map[string]any{
		"label": *label, "ok": ok, "errors": errs.Load(), "seconds": elapsed.Seconds(),
		"rps":    float64(ok) / elapsed.Seconds(),
		"p50_ms": ms(pct(0.50)), "p99_ms": ms(pct(0.99)), "max_ms": ms(pct(1)),
		"cpu_us_per_req": 0.0, "peak_rss_mib": peakRSS(*pid),
	}
	if ok > 0 && cpu1 >= cpu0 {
		res["cpu_us_per_req"] = float64(cpu1-cpu0) * 1e4 / float64(ok) // ticks are 10 ms
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// prepare builds the request URLs. For finchconnect's callback it asks the
// /v1 API for n flows first: each gives a state that finchconnect will
// accept once, with no browser cookie (app-started flows).
func prepare(client *http.Client, mode, kind, target, apiKey, path string, n int) []string {
	out := make([]string, n)
	if mode == "read" {
		for i := range out {
			out[i] = target + path
		}
		return out
	}
	if kind != "finchconnect" {
		for i := range out {
			out[i] = fmt.Sprintf("%s/callback?code=code-%d-%d", target, os.Getpid(), i)
		}
		return out
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Int64
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req, _ := http.NewRequest("POST", target+"/v1/connect/sessions", strings.NewReader(`{"customer_id":"bench","customer_name":"Bench","products":["company","directory"]}`))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				var flow struct{ State string }
				json.NewDecoder(res.Body).Decode(&flow)
				res.Body.Close()
				out[i] = fmt.Sprintf("%s/callback?code=code-%d-%d&state=%s", target, os.Getpid(), i, flow.State)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		log.Fatalf("preparing states: %d failed", failed.Load())
	}
	return out
}

// cpuTicks is the process's user+system CPU time in clock ticks.
func cpuTicks(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// peakRSS is the process's peak resident memory (VmHWM) in MiB.
func peakRSS(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
