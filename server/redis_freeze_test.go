package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/webhook"
	goredis "github.com/redis/go-redis/v9"
)

// privateRedis starts a redis-server of the test's own on a free loopback
// port, with no persistence, in a temporary folder, and kills it when the
// test ends. It returns the server's address and its process. Without
// redis-server on PATH the test skips, except under CI=true, where it fails.
func privateRedis(t *testing.T) (string, *os.Process) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not on PATH under CI")
		}
		t.Skip("redis-server is not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT) // a stopped process is not killed until it runs
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("redis-server's output:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return addr, cmd.Process
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisFrozen_WebhookAndCallbackExactlyOnce: the real failure behind
// issue 15. Redis is frozen (SIGSTOP) past the client's timeouts while a
// signed account.updated webhook and a callback arrive; go-redis times
// out and sends the scripts again, and Redis runs every copy once it is
// resumed (SIGCONT). The webhook must be applied (by the delivery or by
// Finch's redelivery, never dropped as a duplicate of itself), and the
// callback's code exchanged exactly once, ending in the stored connection.
//
// The client's timeouts are short (200 ms, 3 retries), so the freeze
// needs only a second and a half to outlast them.
func TestRedisFrozen_WebhookAndCallbackExactlyOnce(t *testing.T) {
	addr, proc := privateRedis(t)
	rdb := goredis.NewClient(&goredis.Options{
		Addr:            addr,
		DialTimeout:     200 * time.Millisecond,
		ReadTimeout:     200 * time.Millisecond,
		WriteTimeout:    200 * time.Millisecond,
		PoolTimeout:     200 * time.Millisecond,
		MaxRetries:      3,
		MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		// A warm pool, as a busy server has, and no handshake on a new
		// connection: the frozen Redis takes every copy of a command on
		// its socket (and runs it when it resumes), where a handshake
		// would time out before the command was sent.
		PoolSize:        16,
		MinIdleConns:    16,
		Protocol:        2,
		DisableIdentity: true,
	})
	t.Cleanup(func() { rdb.Close() })
	clk := &testClock{}
	var log eventLog
	h := newHarnessWith(t, clk.opts(redis.New(rdb, redis.Options{Prefix: "freeze"})), func(c *server.Config) {
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
		c.Notify = log.notify
		c.WaitTimeout = 5 * time.Second
	})
	// Several of each, as a busy server has during a freeze: which copy
	// of a command Redis runs first varies from one to the next.
	const n = 3
	type frozen struct {
		hooked, body string // a connection, and a webhook for it
		cb           string // a callback, in its own browser
		browser      *http.Client
		hookStatus   int
		hookBody     string
		callback     response
	}
	runs := make([]*frozen, n)
	for i := range runs {
		r := &frozen{browser: newBrowser(t)}
		r.hooked = h.finish(r.browser, h.connect(r.browser, fmt.Sprintf("acme-frozen-hook-%d", i), "authorized_simple"))
		r.body = `{"event_type":"account.updated","connection_id":"` + r.hooked + `","data":{"status":"reauth"}}`
		r.cb = h.connect(r.browser, fmt.Sprintf("acme-frozen-callback-%d", i), "authorized_simple")
		runs[i] = r
	}
	exchanges := h.exchanges()

	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", h.ts.URL+"/webhooks/finch", strings.NewReader(r.body))
			if err := webhook.SetHeaders(req.Header, webhook.Finch, hookSecret, fmt.Sprintf("msg_frozen_%d", i), clk.Now(), []byte(r.body)); err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			r.hookStatus, r.hookBody = res.StatusCode, string(b)
		}()
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", r.cb, nil)
			res, err := r.browser.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			r.callback = response{status: res.StatusCode, location: res.Header.Get("Location"), body: string(b)}
		}()
	}
	// Past every client timeout and retry of the first copies (4 tries of
	// 200 ms and the backoffs between them).
	time.Sleep(1500 * time.Millisecond)
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	wg.Wait()
	t.Logf("frozen for %v", resumed.Sub(stopped))

	for i, r := range runs {
		// The webhook: applied now, or by Finch's redelivery.
		answers := []string{r.hookBody}
		if r.hookStatus/100 != 2 {
			answers = append(answers, deliverLikeFinch(h, clk, fmt.Sprintf("msg_frozen_%d", i), r.body)...)
		}
		t.Logf("webhook %d answers: %q; callback %d answered %d", i, answers, i, r.callback.status)
		for _, a := range answers {
			if strings.Contains(a, `"duplicate"`) {
				t.Errorf("webhook %d: a delivery was acknowledged as a duplicate of itself: answers %q", i, answers)
			}
		}
		if c, err := h.store.Lookup(t.Context(), r.hooked); err != nil || c.Status != finchconnect.StatusReauth {
			t.Errorf("webhook %d: after the freeze its connection is %q, %v; want reauth (the event was lost)", i, c.Status, err)
		}
	}

	// The callbacks: each code exchanged once, and each callback (or the
	// employer's refresh) ends in its stored connection, announced once.
	if got := h.exchanges() - exchanges; got > n {
		t.Errorf("%d callbacks made %d exchanges before any refresh, want at most one each", n, got)
	}
	for i, r := range runs {
		id := ""
		if m := connPathRe.FindStringSubmatch(r.callback.location); r.callback.status == http.StatusSeeOther && m != nil {
			id = m[1]
		}
		res := h.do(r.browser, "GET", r.cb, nil)
		m := connPathRe.FindStringSubmatch(res.location)
		if res.status != http.StatusSeeOther || m == nil {
			t.Errorf("callback %d: the refresh after the freeze = %d, want 303 to its connection; body:\n%s", i, res.status, res.body)
			continue
		}
		if id != "" && m[1] != id {
			t.Errorf("callback %d: the refresh led to %q, the callback to %q", i, m[1], id)
		}
		if _, err := h.store.Get(t.Context(), m[1]); err != nil {
			t.Errorf("callback %d: its connection is not stored: %v", i, err)
		}
		created := 0
		log.mu.Lock()
		for _, e := range log.events {
			if e.Type == finchconnect.EventConnectionCreated && e.ConnectionID == m[1] {
				created++
			}
		}
		log.mu.Unlock()
		if created != 1 {
			t.Errorf("callback %d: connection.created published %d times, want once", i, created)
		}
	}
	if got := h.exchanges() - exchanges; got != n {
		t.Errorf("%d callbacks and their refreshes made %d exchanges, want %d", n, got, n)
	}
}
