// Command budget is issue 18's budget load run: three finchconnect
// replicas on one shared store (Redis, then PostgreSQL) behind the sandbox
// with Finch's rate limits on (scaled by -factor), offered a multiple of
// the binding product's budget (company, through the /v1 proxy) in two
// lanes at once: interactive reads (-interactive, default 0.5× the budget)
// and background reads marked Finch-Connect-Priority: background
// (-background, default 2.5×), while each replica's health sweep
// introspects every connection (background too). Side by side, during the
// Redis phase, the same total offered load goes from the official Finch
// SDK (sdk.mjs, default retries) straight to a sandbox of its own.
//
// It reports, per phase: the 429s the sandbox answered, the share of the
// company budget used over one full window after a warm-up (every
// 60-second interval admits at most the limit, so the share is at most
// 100%), and per lane the p50/p99 of the reads' latency (their wait for
// budget included), plus what the app saw. It writes a Markdown table to
// -out and prints it.
//
// Everything it starts it stops; the Redis keys (a prefix of its own) and
// the PostgreSQL schema (its own) are deleted at the end. bench/run.sh runs
// it with BUDGET=1.
package main

import (
	"bytes"
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/postgres"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
)

type settings struct {
	bin, redisURL, pgURL, sdkDir, node, out, extra string
	replicas, conns                                int
	factor, interactive, background, sweepPerMin   float64
	warm, window                                   time.Duration
	stores                                         []string
}

func main() {
	var s settings
	var stores string
	flag.StringVar(&s.bin, "finchconnect", "", "the finchconnect binary")
	flag.StringVar(&s.redisURL, "redis", "redis://127.0.0.1:6379/11", "Redis URL (a database of its own; keys under a prefix of this run)")
	flag.StringVar(&s.pgURL, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL (a schema of this run is made and dropped)")
	flag.StringVar(&s.sdkDir, "sdk-dir", "../sandbox/sdktest", "folder where @tryfinch/finch-api is installed")
	flag.StringVar(&s.node, "node", "node", "Node.js")
	flag.StringVar(&s.out, "out", "results/budget.md", "Markdown results")
	flag.StringVar(&s.extra, "serve-args", "", "extra arguments for each replica, space-separated (e.g. -budget off)")
	flag.StringVar(&stores, "stores", "redis,postgres", "stores, in order")
	flag.IntVar(&s.replicas, "replicas", 3, "finchconnect replicas on the shared store")
	flag.IntVar(&s.conns, "conns", 30, "connections")
	flag.Float64Var(&s.factor, "factor", 1, "the sandbox's rate-limit factor (1: Finch's numbers)")
	flag.Float64Var(&s.interactive, "interactive", 0.5, "interactive company reads offered through the proxy, as a multiple of the company budget")
	flag.Float64Var(&s.background, "background", 2.5, "background company reads (Finch-Connect-Priority: background) offered through the proxy, as a multiple of the company budget")
	flag.Float64Var(&s.sweepPerMin, "sweep-per-minute", 60, "each replica's sweep rate (/introspect a minute, background lane)")
	flag.DurationVar(&s.warm, "warm", 20*time.Second, "time before the measured window")
	flag.DurationVar(&s.window, "window", time.Minute, "measured window (whole minutes: the share is exact then)")
	flag.Parse()
	s.stores = strings.Split(stores, ",")
	if err := run(s); err != nil {
		fmt.Fprintln(os.Stderr, "budget:", err)
		os.Exit(1)
	}
}

// recorder stands in front of a sandbox and keeps every API request's
// path, status and time.
type recorder struct {
	h  http.Handler
	mu sync.Mutex
	rs []seen
}

type seen struct {
	path   string
	status int
	at     time.Time
}

type statusRec struct {
	http.ResponseWriter
	status int
}

func (w *statusRec) WriteHeader(c int) {
	if w.status == 0 {
		w.status = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusRec{ResponseWriter: w}
	rc.h.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = 200
	}
	rc.mu.Lock()
	rc.rs = append(rc.rs, seen{r.URL.Path, sw.status, time.Now()})
	rc.mu.Unlock()
}

func (rc *recorder) snapshot() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.rs)
}

type finch struct {
	sb  *sandbox.Server
	rec *recorder
	srv *http.Server
	url string
}

func startSandbox() (*finch, error) {
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &finch{sb: sb, rec: &recorder{h: sb}, url: "http://" + ln.Addr().String()}
	f.srv = &http.Server{Handler: f.rec, ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *finch) close() { f.srv.Close(); f.sb.Close() }

// mint has the sandbox make n connections (limits off) and returns them.
func (f *finch) mint(n int) ([]finchconnect.Connection, error) {
	var out []finchconnect.Connection
	for i := range n {
		req, _ := http.NewRequest("POST", f.url+"/sandbox/connections", strings.NewReader(`{"provider_id":"gusto","employee_size":5,"products":["company","directory"]}`))
		req.SetBasicAuth(sandbox.DefaultClientID, sandbox.DefaultClientSecret)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var m struct {
			AccessToken  string `json:"access_token"`
			ConnectionID string `json:"connection_id"`
		}
		err = json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		if err != nil || m.AccessToken == "" {
			return nil, fmt.Errorf("mint connection %d: %d %v", i, res.StatusCode, err)
		}
		out = append(out, finchconnect.Connection{
			ConnectionID: m.ConnectionID, CustomerID: fmt.Sprintf("budget-%d", i), CustomerName: fmt.Sprintf("Budget %d", i),
			ProviderID: "gusto", Products: []string{"company", "directory"}, Status: finchconnect.StatusConnected,
			AccessToken: finchconnect.NewSecret(m.AccessToken),
		})
	}
	return out, nil
}

// limitsInfo is the sandbox's GET /_sandbox/rate-limits.
type limitsInfo struct {
	Products   map[string]int `json:"products"`
	AppLimited int            `json:"application_limited"`
	IPLimited  int            `json:"ip_limited"`
	Lockouts   int            `json:"ip_lockouts"`
}

func (f *finch) limits() (limitsInfo, error) {
	var li limitsInfo
	res, err := http.Get(f.url + "/_sandbox/rate-limits")
	if err != nil {
		return li, err
	}
	defer res.Body.Close()
	return li, json.NewDecoder(res.Body).Decode(&li)
}

// phase is one store's (or the SDK's) results.
type phase struct {
	name                       string
	lanes                      []lane
	sb429, sbLockouts          int
	companyAdmitted, limit     int
	introspects, introspect429 int
	note                       string
}

// lane is what the app saw of one lane's reads.
type lane struct {
	name     string
	sent, ok int
	app      map[int]int // statuses the app saw
	p50, p99 time.Duration
}

func run(s settings) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	keysOut, err := exec.CommandContext(ctx, s.bin, "keygen").Output()
	if err != nil {
		return fmt.Errorf("keygen: %v", err)
	}
	keys := strings.TrimSpace(string(keysOut))
	kr, err := keyring.Parse(keys)
	if err != nil {
		return err
	}
	var results []phase
	var sdkDone chan phase
	for i, store := range s.stores {
		if i == 0 {
			sdkDone = make(chan phase, 1)
			go func() { sdkDone <- s.sdkPhase(ctx) }()
		}
		p, err := s.storePhase(ctx, store, keys, kr)
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		results = append(results, p)
		if i == 0 {
			results = append(results, <-sdkDone)
		}
	}
	md := s.markdown(results)
	fmt.Print(md)
	if err := os.MkdirAll(filepath.Dir(s.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(s.out, []byte(md), 0o644)
}

// rate is reads a second at mult times a budget of limit a minute.
func rate(mult float64, limit int) float64 { return mult * float64(limit) / 60 }

func (s settings) storePhase(ctx context.Context, store, keys string, kr *keyring.Keyring) (phase, error) {
	p := phase{name: fmt.Sprintf("finchconnect ×%d, %s", s.replicas, store)}
	f, err := startSandbox()
	if err != nil {
		return p, err
	}
	defer f.close()
	conns, err := f.mint(s.conns)
	if err != nil {
		return p, err
	}
	tag := fmt.Sprintf("fcbudget%d", os.Getpid())
	var storeURL string
	var backend tokenstore.Backend
	switch store {
	case "redis":
		u, _ := url.Parse(s.redisURL)
		q := u.Query()
		q.Set("prefix", tag)
		u.RawQuery = q.Encode()
		storeURL = u.String()
		b, err := redis.Open(ctx, storeURL)
		if err != nil {
			return p, err
		}
		defer b.Close()
		backend = b
		defer dropRedis(s.redisURL, "{"+tag+"}*")
	case "postgres":
		conn, err := pgx.Connect(ctx, s.pgURL)
		if err != nil {
			return p, err
		}
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+tag); err != nil {
			conn.Close(ctx)
			return p, err
		}
		conn.Close(ctx)
		defer func() {
			if c, err := pgx.Connect(context.Background(), s.pgURL); err == nil {
				c.Exec(context.Background(), "DROP SCHEMA "+tag+" CASCADE")
				c.Close(context.Background())
			}
		}()
		u, _ := url.Parse(s.pgURL)
		q := u.Query()
		q.Set("search_path", tag)
		u.RawQuery = q.Encode()
		storeURL = u.String()
		b, err := postgres.Open(ctx, storeURL)
		if err != nil {
			return p, err
		}
		defer b.Close()
		backend = b
	default:
		return p, fmt.Errorf("unknown store %q", store)
	}
	st := tokenstore.New(backend, kr)
	for _, c := range conns {
		if err := st.Put(ctx, c); err != nil {
			return p, err
		}
	}
	secret, _, err := apikey.Create(ctx, backend, "budget-run", apikey.ScopeRead)
	if err != nil {
		return p, err
	}

	var reps []*replica
	defer func() {
		for _, r := range reps {
			r.stop()
		}
	}()
	for i := range s.replicas {
		r, err := s.startReplica(ctx, f.url, storeURL, keys, i)
		if err != nil {
			return p, err
		}
		reps = append(reps, r)
	}
	// The limits go on once everything is seeded and started.
	if err := f.sb.SetRateLimits(s.factor); err != nil {
		return p, err
	}
	li, err := f.limits()
	if err != nil {
		return p, err
	}
	p.limit = li.Products["company"]
	t0 := time.Now()
	reads := func(priority string, offset int) func(i int) (*http.Request, error) {
		return func(i int) (*http.Request, error) {
			i += offset // the lanes read different connections at each step
			r := reps[i%len(reps)]
			req, err := http.NewRequest("GET", r.url+"/v1/connections/"+conns[i%len(conns)].ConnectionID+"/finch/employer/company", nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+secret.Reveal())
				if priority != "" {
					req.Header.Set("Finch-Connect-Priority", priority)
				}
			}
			return req, err
		}
	}
	var wg sync.WaitGroup
	var inter, bg lane
	wg.Go(func() {
		lat, st := drive(ctx, rate(s.interactive, p.limit), s.warm+s.window, reads("", 0))
		inter = newLane(fmt.Sprintf("interactive, %g×", s.interactive), lat, st)
	})
	wg.Go(func() {
		lat, st := drive(ctx, rate(s.background, p.limit), s.warm+s.window, reads("background", len(conns)/2))
		bg = newLane(fmt.Sprintf("background, %g×", s.background), lat, st)
	})
	wg.Wait()
	p.lanes = []lane{inter, bg}
	if li, err = f.limits(); err != nil {
		return p, err
	}
	p.sbLockouts = li.Lockouts
	p.measure(f.rec.snapshot(), t0.Add(s.warm), t0.Add(s.warm+s.window))
	return p, nil
}

// newLane sums up what drive returned for one lane.
func newLane(name string, lat []time.Duration, statuses []int) lane {
	l := lane{name: name, app: map[int]int{}}
	for _, st := range statuses {
		l.sent++
		l.app[st]++
		if st == http.StatusOK {
			l.ok++
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		l.p50 = lat[len(lat)/2]
		l.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return l
}

// measure counts what the sandbox answered from the moment the limits went
// on, and the company reads it admitted within [from, to).
func (p *phase) measure(rs []seen, from, to time.Time) {
	for _, r := range rs {
		if r.at.Before(from.Add(-time.Hour)) {
			continue
		}
		if r.status == http.StatusTooManyRequests {
			p.sb429++
		}
		switch r.path {
		case "/employer/company":
			if r.status == http.StatusOK && !r.at.Before(from) && r.at.Before(to) {
				p.companyAdmitted++
			}
		case "/introspect":
			p.introspects++
			if r.status == http.StatusTooManyRequests {
				p.introspect429++
			}
		}
	}
}

// drive sends the requests next makes at rate a second for d, each once,
// open loop (a slow answer does not slow the offered load), and returns
// the latencies of the 200s and every status (0: no answer).
func drive(ctx context.Context, rate float64, d time.Duration, next func(i int) (*http.Request, error)) ([]time.Duration, []int) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var mu sync.Mutex
	var lat []time.Duration
	var statuses []int
	var wg sync.WaitGroup
	start := time.Now()
	gap := time.Duration(float64(time.Second) / rate)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * gap)
		if at.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(at))
		req, err := next(i)
		if err != nil {
			continue
		}
		wg.Go(func() {
			t := time.Now()
			res, err := client.Do(req.WithContext(ctx))
			st := 0
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				st = res.StatusCode
			}
			mu.Lock()
			statuses = append(statuses, st)
			if st == http.StatusOK {
				lat = append(lat, time.Since(t))
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, statuses
}

type replica struct {
	cmd *exec.Cmd
	url string
	dir string
}

var listening = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

func (s settings) startReplica(ctx context.Context, finchURL, storeURL, keys string, i int) (*replica, error) {
	dir, err := os.MkdirTemp("", "fcbudget-replica-")
	if err != nil {
		return nil, err
	}
	args := []string{"-addr", "127.0.0.1:0", "-store", storeURL, "-data-dir", dir,
		"-connect-limit", "0", "-callback-limit", "0", "-log-level", "error",
		"-sweep-interval", "1s", "-sweep-per-minute", fmt.Sprint(s.sweepPerMin)}
	args = append(args, strings.Fields(s.extra)...)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "FINCH_CLIENT_ID="+sandbox.DefaultClientID, "FINCH_CLIENT_SECRET="+sandbox.DefaultClientSecret,
		"FINCH_BASE_URL="+finchURL, "FINCHCONNECT_KEYS="+keys)
	var out bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &replica{cmd: cmd, dir: dir}
	found := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var acc []byte
		sent := false
		for {
			n, err := pr.Read(buf)
			acc = append(acc, buf[:n]...)
			if m := listening.FindSubmatch(acc); m != nil && !sent {
				found <- string(m[1])
				sent = true
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case r.url = <-found:
		return r, nil
	case <-time.After(30 * time.Second):
		r.stop()
		return nil, fmt.Errorf("replica %d did not start: %s", i, out.String())
	}
}

func (r *replica) stop() {
	if r.cmd.Process != nil {
		r.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { r.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(r.dir)
}

func dropRedis(raw, pattern string) {
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		return
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

// sdkPhase sends the same offered load from the official SDK to a sandbox
// of its own.
func (s settings) sdkPhase(ctx context.Context) phase {
	p := phase{name: "official SDK (Node, default retries), direct"}
	f, err := startSandbox()
	if err != nil {
		p.note = err.Error()
		return p
	}
	defer f.close()
	conns, err := f.mint(s.conns)
	if err != nil {
		p.note = err.Error()
		return p
	}
	if err := f.sb.SetRateLimits(s.factor); err != nil {
		p.note = err.Error()
		return p
	}
	li, _ := f.limits()
	p.limit = li.Products["company"]
	toks := make([]string, len(conns))
	for i, c := range conns {
		toks[i] = c.AccessToken.Reveal()
	}
	abs, _ := filepath.Abs(s.sdkDir)
	script, _ := filepath.Abs("budget/sdk.mjs")
	if _, err := os.Stat(script); err != nil {
		script, _ = filepath.Abs("sdk.mjs")
	}
	cmd := exec.CommandContext(ctx, s.node, script)
	cmd.Env = append(os.Environ(), "SDK_DIR="+abs, "FINCH_BASE_URL="+f.url, "TOKENS="+strings.Join(toks, ","),
		fmt.Sprintf("RATE=%g", rate(s.interactive+s.background, p.limit)), fmt.Sprintf("DURATION_MS=%d", (s.warm+s.window).Milliseconds()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		p.note = fmt.Sprintf("node: %v: %s", err, stderr.String())
		return p
	}
	var r struct {
		Sent   int            `json:"sent"`
		OK     int            `json:"ok"`
		Errors map[string]int `json:"errors"`
		P50    float64        `json:"p50_ms"`
		P99    float64        `json:"p99_ms"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		p.note = "sdk output: " + err.Error()
		return p
	}
	l := lane{name: fmt.Sprintf("all, %g×", s.interactive+s.background), sent: r.Sent, ok: r.OK, app: map[int]int{200: r.OK}}
	for k, v := range r.Errors {
		var st int
		if _, err := fmt.Sscan(k, &st); err != nil {
			st = 0
		}
		l.app[st] += v
	}
	l.p50, l.p99 = time.Duration(r.P50*float64(time.Millisecond)), time.Duration(r.P99*float64(time.Millisecond))
	p.lanes = []lane{l}
	li, _ = f.limits()
	p.sbLockouts = li.Lockouts
	p.measure(f.rec.snapshot(), t0.Add(s.warm), t0.Add(s.warm+s.window))
	return p
}

func (s settings) markdown(ps []phase) string {
	var b strings.Builder
	limit := ps[0].limit
	fmt.Fprintf(&b, "# Budget load run (bench/budget)\n\n%s UTC. Sandbox rate-limit factor %g (company: %d a minute); %d connections of one client id; "+
		"through the /v1 proxy, GET /employer/company offered in two lanes at once, round robin over the replicas: interactive at %g× the company budget (%.2f/s) "+
		"and background (`Finch-Connect-Priority: background`) at %g× (%.2f/s), %g× in all; "+
		"each replica's health sweep also runs, every 1 s at up to %g /introspect a minute (background lane); the SDK sends the same total (%.2f/s) straight to a sandbox of its own. "+
		"%v warm-up, then a measured window of %v. Replica arguments: `%s`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), s.factor, limit, s.conns, s.interactive, rate(s.interactive, limit), s.background, rate(s.background, limit),
		s.interactive+s.background, s.sweepPerMin, rate(s.interactive+s.background, limit), s.warm, s.window, s.extra)
	b.WriteString("| run | lane | sent | 200 | other answers the app saw | p50 / p99 of 200s | sandbox 429s | IP lockouts | company budget used (measured window) | /introspect (429) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range ps {
		want := float64(p.limit) * s.window.Minutes()
		share := 0.0
		if want > 0 {
			share = 100 * float64(p.companyAdmitted) / want
		}
		for i, l := range p.lanes {
			var other []string
			keys := make([]int, 0, len(l.app))
			for k := range l.app {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if k != 200 {
					other = append(other, fmt.Sprintf("%d×%d", l.app[k], k))
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %v / %v |", p.name, l.name, l.sent, l.ok, strings.Join(other, ", "), l.p50.Round(time.Millisecond), l.p99.Round(time.Millisecond))
			if i == 0 {
				fmt.Fprintf(&b, " %d | %d | %d of %.0f (%.0f%%) | %d (%d) |\n", p.sb429, p.sbLockouts, p.companyAdmitted, want, share, p.introspects, p.introspect429)
			} else {
				b.WriteString(" 〃 | 〃 | 〃 | 〃 |\n")
			}
		}
		if p.note != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", p.name, p.note)
		}
	}
	b.WriteString("\nStatus 0 counts requests with no answer within 60 s. The sandbox's counts (429s, lockouts, budget used) are per run, for both lanes together. " +
		"Targets (issue 18): 0 sandbox 429s, ≥ 95% of the binding product's budget used, p99 ≤ 2 s for interactive reads while background work is queued.\n")
	return b.String()
}
