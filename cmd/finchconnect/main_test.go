package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running
// command and the reads of a test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a finchconnect process started through run() in a goroutine.
type running struct {
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() error // cancels ctx and returns run's error
}

// start runs `finchconnect args...` until the test ends or stop is called. It
// waits for the "listening on" line and then for /healthz.
func start(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	return startWith(t, run, env, args...)
}

// runFunc is run's signature.
type runFunc func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error

// serveWith is `finchconnect serve` with limits lowered for a test, as no
// flag can lower them.
func serveWith(limits serveLimits) runFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
		return serve(ctx, args[1:], getenv, stdout, stderr, limits)
	}
}

// startWith is start with another entry point than run.
func startWith(t *testing.T, run runFunc, env map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"finchconnect"}, args...), func(k string) string { return env[k] },
			strings.NewReader(""), io.MultiWriter(pw, r.stdout), r.stderr)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		done <- err
	}()
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { r.stop() })

	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr) // keep the pipe flowing
	if err != nil {
		t.Fatalf("finchconnect %v: no listening line: %v\nstderr:\n%s", args, err, r.stderr.String())
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first line = %q, want \"listening on http://…\"", line)
	}
	r.url = addr
	waitForReady(t, r.url+healthPath(args))
	return r
}

// healthPath is what to poll for readiness: the sandbox, being Finch, has
// no /healthz of its own, so its admin stats stand in.
func healthPath(args []string) string {
	if len(args) > 0 && args[0] == "sandbox" {
		return "/_sandbox/stats"
	}
	return "/healthz"
}

func waitForReady(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(u)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", u)
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, form url.Values) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Location"), string(data)
}

var (
	formRe  = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input[^>]*>`)
	attrRe  = regexp.MustCompile(`(?is)(\w+)="([^"]*)"`)
	legalRe = regexp.MustCompile(`id="legal-name">([^<]*)<`)
)

func hiddenFields(t *testing.T, page, marker string) (string, url.Values) {
	t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[2], marker) {
			continue
		}
		vals := url.Values{}
		for _, in := range inputRe.FindAllString(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrRe.FindAllStringSubmatch(in, -1) {
				attrs[strings.ToLower(a[1])] = html.UnescapeString(a[2])
			}
			if attrs["type"] == "hidden" {
				vals.Add(attrs["name"], attrs["value"])
			}
		}
		return html.UnescapeString(m[1]), vals
	}
	t.Fatalf("no form containing %q in:\n%s", marker, page)
	return "", nil
}

// connectThroughSandbox walks the demo's flow over HTTP: home, the connect
// form, the sandbox's Connect page (provider, then credentials), and stops
// at the callback URL, which it returns.
func connectThroughSandbox(t *testing.T, b *browser, base, customer string) string {
	t.Helper()
	return connectThroughSandboxWith(t, b, base, customer, "company", "directory")
}

// connectThroughSandboxWith is connectThroughSandbox for the given products.
func connectThroughSandboxWith(t *testing.T, b *browser, base, customer string, products ...string) string {
	t.Helper()
	status, _, home := b.do("GET", base+"/", nil)
	if status != http.StatusOK || !strings.Contains(home, `id="connect-form"`) {
		t.Fatalf("GET / = %d, want the home page with the connect form", status)
	}
	status, loc, body := b.do("POST", base+"/connect", url.Values{"customer_id": {customer}, "customer_name": {"Customer " + customer}, "products": products})
	if status != http.StatusSeeOther {
		t.Fatalf("POST /connect = %d; body:\n%s", status, body)
	}
	return signInAtSandbox(t, b, loc)
}

// signInAtSandbox walks the sandbox's Connect page at connectURL (Gusto,
// then authorized_simple) and returns the callback URL it redirects to.
func signInAtSandbox(t *testing.T, b *browser, connectURL string) string {
	t.Helper()
	_, _, picker := b.do("GET", connectURL, nil)
	action, vals := hiddenFields(t, picker, `value="gusto"`)
	vals.Set("provider", "gusto")
	_, _, creds := b.do("POST", action, vals)
	action, vals = hiddenFields(t, creds, `id="password"`)
	vals.Set("username", "authorized_simple")
	vals.Set("password", "letmein")
	status, loc, body := b.do("POST", action, vals)
	if status != http.StatusFound && status != http.StatusSeeOther {
		t.Fatalf("sign in = %d; body:\n%s", status, body)
	}
	return loc
}

// TestDemo_EndToEnd runs the README's demo command through run() and walks
// the whole flow as a browser would, then restarts the demo and checks the
// connection still works.
func TestDemo_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", dir}
	app := start(t, nil, args...)
	if !strings.Contains(app.stderr.String(), "WARNING: no encryption key configured") {
		t.Errorf("the demo did not warn about its generated key; stderr:\n%s", app.stderr.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("demo key file: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}

	b := newBrowser(t)
	cb := connectThroughSandbox(t, b, app.url, "demo-1")
	status, loc, body := b.do("GET", cb, nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/connections/") {
		t.Fatalf("GET /callback = %d → %q; body:\n%s", status, loc, body)
	}
	id := strings.TrimPrefix(loc, "/connections/")
	_, _, page := b.do("GET", app.url+loc, nil)
	m := legalRe.FindStringSubmatch(page)
	if m == nil || strings.TrimSpace(m[1]) == "" || m[1] == "—" {
		t.Fatalf("the company page shows no legal name:\n%s", page)
	}
	legalName := m[1]

	// The operator commands see the connection; only -reveal shows the token.
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "list", "-data-dir", dir}, func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("token list: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("token list output lacks %s or the redaction:\n%s", id, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"finchconnect", "token", "get", id, "-reveal", "-data-dir", dir}, func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("token get -reveal: %v\n%s", err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if len(token) < 32 || !strings.Contains(errOut.String(), "WARNING") {
		t.Fatalf("token get -reveal printed %d bytes, stderr %q; want a token and a warning", len(token), errOut.String())
	}
	for _, name := range []string{"finchconnect.db", "finchconnect.db-wal", "finchconnect.db-shm"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && bytes.Contains(raw, []byte(token)) {
			t.Errorf("%s contains the plaintext token", name)
		}
	}
	if strings.Contains(app.stdout.String()+app.stderr.String(), token) {
		t.Error("the server's output contains the token")
	}

	// Restarting the demo keeps the connection usable: same key file, same
	// store, same sandbox state.
	if err := app.stop(); err != nil {
		t.Fatalf("demo stopped with %v", err)
	}
	app2 := start(t, nil, args...)
	if strings.Contains(app2.stderr.String(), "WARNING: no encryption key configured") {
		t.Error("the restarted demo generated a new key")
	}
	status, _, page = b.do("GET", app2.url+"/connections/"+id, nil)
	if status != http.StatusOK || !strings.Contains(page, legalName) {
		t.Errorf("after restart GET /connections/%s = %d, want the company %q; body:\n%s", id, status, legalName, page)
	}
}

// TestServe_ShutdownDuringCallbacks stops the server (as SIGTERM does, by
// cancelling run's context) while a burst of callbacks is in flight, against
// a separate sandbox: every code the sandbox exchanged must end up stored.
func TestServe_ShutdownDuringCallbacks(t *testing.T) {
	t.Parallel()
	sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	var key bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "keygen"}, nil, nil, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := map[string]string{
		"FINCH_CLIENT_ID":     "sandbox-client-id",
		"FINCH_CLIENT_SECRET": "sandbox-client-secret",
		"FINCH_BASE_URL":      sb.url,
		"FINCHCONNECT_KEYS":   strings.TrimSpace(key.String()),
	}
	app := start(t, env, "-addr", "127.0.0.1:0", "-data-dir", dir, "-connect-limit", "0")

	const n = 30
	b := newBrowser(t)
	callbacks := make([]string, n)
	for i := range n {
		callbacks[i] = connectThroughSandbox(t, b, app.url, fmt.Sprintf("term-%d", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	landed := map[string]bool{}
	for _, cb := range callbacks {
		wg.Go(func() {
			res, err := b.c.Get(cb)
			if err != nil {
				return // refused once shutdown began: never reached the exchange
			}
			res.Body.Close()
			if res.StatusCode == http.StatusSeeOther {
				mu.Lock()
				landed[strings.TrimPrefix(res.Header.Get("Location"), "/connections/")] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := app.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()

	res, err := http.Get(sb.url + "/_sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		TokenExchanges int `json:"token_exchanges"`
	}
	if err := decodeJSON(res, &stats); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "token", "list", "-json", "-data-dir", dir}, func(k string) string { return env[k] }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	stored := strings.Count(out.String(), `"connection_id"`)
	if stored != stats.TokenExchanges {
		t.Errorf("sandbox exchanged %d codes but %d connections are stored: tokens were lost", stats.TokenExchanges, stored)
	}
	for id := range landed {
		if !strings.Contains(out.String(), id) {
			t.Errorf("connection %s was shown to the user but is not stored", id)
		}
	}
	t.Logf("%d of %d callbacks completed before shutdown; %d exchanged, %d stored", len(landed), n, stats.TokenExchanges, stored)
}
