// Command load drives one target of the load runs with a fixed number of
// concurrent clients for a fixed time, and prints one JSON line: throughput,
// latency percentiles, errors, and, given the target's process id, its CPU
// time per request (utime+stime from /proc/PID/stat, before and after) and
// its peak memory during the phase (VmHWM from /proc/PID/status, reset just
// before the phase).
//
// Inputs are prepared before the timed phase, so that the timed work is the
// request itself: unique codes; for finchconnect, also a valid state and
// browser cookie per callback, from its own POST /connect. bench/run.sh
// runs it against every target; see bench/README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// report is the JSON line load prints.
type report struct {
	Label       string         `json:"label"`
	Role        string         `json:"role,omitempty"` // for bench/report: target.phase, e.g. fc-redis.callback
	OK          int            `json:"ok"`
	Errors      int            `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	Seconds     float64        `json:"seconds"`
	Exhausted   bool           `json:"exhausted"` // the prepared requests ran out before the duration
	RPS         float64        `json:"rps"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	Distinct    int            `json:"distinct_connections,omitempty"` // over the warm-up and the timed phase
	WarmupOK    int            `json:"warmup_ok"`
	WarmupErrs  int            `json:"warmup_errors"`
	CPUus       float64        `json:"cpu_us_per_req"`
	PeakRSSMiB  float64        `json:"peak_rss_mib"`
	UpstreamCPU float64        `json:"upstream_cpu_us_per_req,omitempty"`
	StoreCPU    float64        `json:"store_cpu_us_per_req,omitempty"` // the store's server (redis-server), when it is a process of its own
	LoadCPU     float64        `json:"load_cpu_us_per_req"`            // this load generator's own
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		mode     = fs.String("mode", "callback", "callback or read")
		kind     = fs.String("kind", "floor", "callback mode: floor, peer or finchconnect (how to prepare callbacks)")
		flow     = fs.String("flow", "browser", "finchconnect callbacks: browser (POST /connect, cookie) or app (POST /v1/connect/sessions)")
		target   = fs.String("target", "", "the target's base URL, e.g. http://127.0.0.1:3000")
		pid      = fs.Int("pid", 0, "the target's process id, for its CPU time and peak memory")
		upPID    = fs.Int("upstream-pid", 0, "the upstream's process id, for its CPU time per request")
		storePID = fs.Int("store-pid", 0, "the store server's process id (redis-server), for its CPU time per request")
		conc     = fs.Int("c", 32, "concurrent clients")
		dur      = fs.Duration("d", 10*time.Second, "how long to drive the target")
		warmup   = fs.Duration("warmup", 2*time.Second, "how long to drive the target, untimed, before the timed phase (a JIT, caches and pools warm up)")
		n        = fs.Int("n", 0, "requests to prepare; the phase ends early if they run out (0: 300000, or 40000 finchconnect flows)")
		browsers = fs.Int("browsers", 64, "simulated browsers sharing the finchconnect flows")
		apiKey   = fs.String("api-key", "", "finchconnect API key: a write key for -flow app, a read key for /v1 reads")
		path     = fs.String("path", "", `read mode: the path to GET; "{id}" is replaced by each of -ids in turn`)
		idsFile  = fs.String("ids", "", "read mode: file of connection ids, one per line")
		label    = fs.String("label", "", "name of this run in the report")
		role     = fs.String("role", "", "what bench/report files this run under, e.g. peer.callback")
		pprofURL = fs.String("pprof", "", "the target's net/http/pprof base URL (bench/profile's): profile the timed phase")
		pprofOut = fs.String("pprof-out", "profile", "with -pprof: file prefix for PREFIX.cpu, PREFIX.allocs-before and PREFIX.allocs-after")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		return errors.New("-target is required")
	}
	if *conc < 1 || *dur <= 0 {
		return errors.New("-c must be at least 1 and -d positive")
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        *conc * 2,
			MaxIdleConnsPerHost: *conc * 2,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	// Codes must be unique across runs against one store: a code seen
	// before is a duplicate callback, which finchconnect answers from its
	// ledger without an exchange.
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	opts := driveOptions{Concurrency: *conc, Duration: *dur, WantStatus: http.StatusOK}
	var reqs []request
	var err error
	switch *mode {
	case "read":
		var ids []string
		if *idsFile != "" {
			if ids, err = readLines(*idsFile); err != nil {
				return err
			}
			if len(ids) == 0 {
				return fmt.Errorf("%s holds no ids", *idsFile)
			}
		}
		auth := ""
		if *apiKey != "" {
			auth = "Bearer " + *apiKey
		}
		reqs = prepareReads(*target, *path, ids, auth, orDefault(*n, 300000))
	case "callback":
		switch *kind {
		case "floor", "peer":
			// Both answer with Express's and net/http's default, 302.
			opts.WantStatus = http.StatusFound
			reqs = prepareCodes(*target, tag, orDefault(*n, 300000))
		case "finchconnect":
			opts.WantStatus = http.StatusSeeOther
			opts.IDFromLocation = connectionFromLocation
			t0 := time.Now()
			if *flow == "app" {
				reqs, err = prepareAppFlows(ctx, client, *target, *apiKey, tag, orDefault(*n, 40000))
			} else {
				reqs, err = prepareBrowserFlows(ctx, client, *target, tag, orDefault(*n, 40000), *browsers)
			}
			if err != nil {
				return fmt.Errorf("prepare flows: %w", err)
			}
			fmt.Fprintf(stderr, "%s: prepared %d flows in %s\n", *label, len(reqs), time.Since(t0).Round(time.Millisecond))
		default:
			return fmt.Errorf("-kind %q: want floor, peer or finchconnect", *kind)
		}
	default:
		return fmt.Errorf("-mode %q: want callback or read", *mode)
	}
	// The warm-up sends the same kind of requests, from the same prepared
	// ones, so that every target reaches its steady state (Node's JIT
	// most of all) before the timing starts.
	var warm result
	if *warmup > 0 {
		wopts := opts
		wopts.Duration = *warmup
		warm = drive(ctx, client, reqs, wopts)
		reqs = reqs[warm.Sent:]
	}
	// Let the preparation's connections close and the target settle, so
	// the phase starts from the same point for every target.
	client.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)

	if *pid != 0 {
		if err := resetPeakRSS(*pid); err != nil {
			fmt.Fprintf(stderr, "%s: cannot reset the target's peak RSS (%v); it will include the preparation\n", *label, err)
		}
	}
	// The CPU time of every process on the machine's cores that the
	// phase involves, over the timed phase only.
	var clocks [4]cpuClock
	for i, p := range []int{*pid, *upPID, *storePID, os.Getpid()} {
		if clocks[i], err = startCPU(p); err != nil {
			return err
		}
	}
	var prof *profiler
	if *pprofURL != "" {
		if prof, err = startProfile(ctx, *pprofURL, *pprofOut, *dur); err != nil {
			return err
		}
	}
	res := drive(ctx, client, reqs, opts)
	if prof != nil {
		if err := prof.finish(ctx); err != nil {
			return err
		}
	}
	rep := report{
		Label: *label, Role: *role, OK: res.OK, Errors: res.Errors, Seconds: res.Elapsed.Seconds(), Exhausted: res.Exhausted,
		RPS: res.rate(), P50ms: ms(res.percentile(0.50)), P99ms: ms(res.percentile(0.99)), MaxMs: ms(res.percentile(1)),
		Distinct: res.Distinct, WarmupOK: warm.OK, WarmupErrs: warm.Errors,
	}
	if opts.IDFromLocation != nil {
		// Distinct over both phases: a connection id seen in both would
		// be one connection for two callbacks.
		for id := range warm.IDs {
			res.IDs[id] = true
		}
		rep.Distinct = len(res.IDs)
	}
	if len(res.ErrorKind) > 0 {
		rep.ErrorKinds = res.ErrorKind
	}
	for i, field := range []*float64{&rep.CPUus, &rep.UpstreamCPU, &rep.StoreCPU, &rep.LoadCPU} {
		if *field, err = clocks[i].perRequest(res.OK + res.Errors); err != nil {
			return err
		}
	}
	if *pid != 0 {
		peak, err := peakRSS(*pid)
		if err != nil {
			return err
		}
		rep.PeakRSSMiB = float64(peak) / (1 << 20)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuClock measures a process's CPU time from startCPU on; the zero
// cpuClock, for no process, measures nothing.
type cpuClock struct {
	pid   int
	start time.Duration
}

func startCPU(pid int) (cpuClock, error) {
	if pid == 0 {
		return cpuClock{}, nil
	}
	t, err := cpuTime(pid)
	return cpuClock{pid, t}, err
}

// perRequest is the CPU time since startCPU, in µs per request.
func (c cpuClock) perRequest(requests int) (float64, error) {
	if c.pid == 0 {
		return 0, nil
	}
	t, err := cpuTime(c.pid)
	return perRequest(t-c.start, requests), err
}

// perRequest is d per request in microseconds.
func perRequest(d time.Duration, requests int) float64 {
	if requests == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(requests)
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}
