package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// privateRedis runs a redis-server of the test's own on a free port, with
// every write fsynced to an append-only file, so the test can kill it and
// start it again without touching the shared Redis.
type privateRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; .ci/run installs it")
		}
		t.Skip("redis-server is not installed; the store-outage test needs one of its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &privateRedis{t: t, bin: bin, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatal("the private redis-server did not start")
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// TestOutage_StoreDownDuringCallbacks stops the store in the middle of a
// burst of callbacks and starts it again: every token Finch exchanged ends
// up in the store (through the journal if need be), readyz reports the
// outage, and recovers. On Redis the store's process is killed (SIGKILL)
// and restarted from its append-only file; on PostgreSQL a proxy in front
// of the real server drops every connection and refuses new ones.
func TestOutage_StoreDownDuringCallbacks(t *testing.T) {
	t.Parallel() // its own store, processes and ports; mostly waiting
	if testing.Short() {
		t.Skip("runs a store outage; skipped with -short")
	}
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rds := startPrivateRedis(t)
		runOutage(t, rds.url(), rds.kill, rds.start)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		base := integrationURL(t, "FINCHCONNECT_TEST_POSTGRES_URL")
		schema := testSchema(t, base, "fc_out_")
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		proxy := newCutProxy(t, u.Host)
		u.Host = proxy.addr()
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		runOutage(t, u.String(), proxy.cut, proxy.restore)
	})
}

func runOutage(t *testing.T, storeURL string, stop, restart func()) {
	sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	env := finchEnv(t, sb.url, map[string]string{"FINCHCONNECT_STORE": storeURL, "FINCHCONNECT_RECOVER_AFTER": "2s"})
	// A recovery loop that finishes staged callbacks within seconds: fine
	// here, where no exchange takes more than 700 ms.
	app := startWith(t, serveWith(serveLimits{minRecoverAfter: time.Second}), env, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())

	const n = 40
	b := newBrowser(t)
	callbacks := make([]string, n)
	for i := range n {
		callbacks[i] = connectThroughSandbox(t, b, app.url, fmt.Sprintf("outage-%d", i))
	}

	// Slow exchanges keep callbacks in flight across the moment the store
	// dies, so some hold a token Finch has issued and cannot write it:
	// those must go through the journal.
	res, err := http.Post(sb.url+"/_sandbox/faults", "application/json", strings.NewReader(`{"route":"POST /auth/token","latency":"700ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i, cb := range callbacks {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 25 * time.Millisecond) // spread over the outage
			status, _, _ := b.do("GET", cb, nil)
			statuses[i] = status
		})
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	sawOutage := false
	for range 20 {
		res, err := http.Get(app.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				sawOutage = true
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Down until every callback has answered: those caught in flight have
	// run out their own write retries (1.5 s) with the store still down, so
	// they must have used the journal.
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-time.After(30 * time.Second):
		t.Error("callbacks still unanswered 30 s into the outage")
	}
	restart()
	wg.Wait()
	if !sawOutage {
		t.Error("readyz never reported the store outage")
	}

	// The journal is replayed and abandoned callbacks finished; readyz
	// comes back to 200.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(app.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover after the store came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The journal is replayed into the store: wait until it holds no token
	// and the store holds one connection per exchange Finch made (the loop
	// replays every 2 s, so this waits for a pass, not for a TTL).
	stats := getStats(t, sb.url)
	var stored int
	for deadline := time.Now().Add(30 * time.Second); ; {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"finchconnect", "token", "list", "-json"}, func(k string) string { return env[k] }, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		stored = strings.Count(out.String(), `"connection_id"`)
		_, _, metrics := b.do("GET", app.url+"/metrics", nil)
		if stored == stats.TokenExchanges && strings.Contains(metrics, "\nfinchconnect_journal_pending 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("Finch exchanged %d codes, the store holds %d connections 30 s after the outage (journal_pending 0: %v)",
				stats.TokenExchanges, stored, strings.Contains(metrics, "\nfinchconnect_journal_pending 0\n"))
			break
		}
		time.Sleep(50 * time.Millisecond) // polling for a condition
	}
	if stats.TokenExchanges == 0 {
		t.Error("no callback reached Finch; the test proved nothing")
	}
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	// A user told "being saved" who refreshes now sees the connection. The
	// replay that emptied the journal settles the callbacks' ledger entries
	// just after, in the same pass: a refresh in that instant may not see
	// it yet, so a refresh is repeated for up to 5 s (the replay loop's
	// period is 2 s).
	again := 0
	for i, st := range statuses {
		if st != http.StatusAccepted {
			continue
		}
		for deadline := time.Now().Add(5 * time.Second); ; again++ {
			status, loc, _ := b.do("GET", callbacks[i], nil)
			if status == http.StatusSeeOther && strings.HasPrefix(loc, "/connections/") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("refreshing a journaled callback = %d → %q, want its connection", status, loc)
				break
			}
			time.Sleep(50 * time.Millisecond) // polling for a condition
		}
	}
	if counts[http.StatusAccepted] == 0 {
		t.Errorf("no callback was caught between Finch's answer and the store write (answers %v); the journal went untested", counts)
	}
	t.Logf("callback answers during the outage: %v; exchanged %d, stored %d; refreshes repeated %d times", counts, stats.TokenExchanges, stored, again)
	if t.Failed() {
		for _, line := range strings.Split(app.stderr.String(), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				t.Log(line)
			}
		}
	}
}

// cutProxy forwards TCP connections to a real server until cut: then it
// drops every connection and refuses new ones, as a store outage would,
// until restored.
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.cut()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
