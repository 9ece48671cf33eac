package server_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

// harness runs the Connect back-end and the sandbox on one real listener:
// the sandbox under /finch, as the demo mounts it.
type harness struct {
	t       *testing.T
	sb      *sandbox.Server
	srv     *server.Server
	store   *tokenstore.Store
	backend tokenstore.Backend
	ts      *httptest.Server
	client  *http.Client // a browser: cookie jar, stops at every redirect
	dbPath  string
}

type harnessOptions struct {
	backend   tokenstore.Backend // nil: SQLite in a temp dir
	now       func() time.Time   // the time of records; waits run in real time
	clock     clock.Clock        // nil: now, or the system clock
	failpoint func(string)
	stateTTL  time.Duration
	finch     func(http.Handler) http.Handler // wraps the sandbox, as the Finch the server calls
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	return newHarnessWith(t, opts, nil)
}

// newHarnessWith is newHarness with a chance to adjust the server's Config.
func newHarnessWith(t *testing.T, opts harnessOptions, adjust func(*server.Config)) *harness {
	t.Helper()
	h := &harness{t: t}
	mux := http.NewServeMux()
	h.ts = httptest.NewServer(mux)
	t.Cleanup(h.ts.Close)

	sb, err := sandbox.New(sandbox.Options{PublicURL: h.ts.URL + "/finch"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	h.sb = sb

	h.backend = opts.backend
	if h.backend == nil {
		h.dbPath = filepath.Join(t.TempDir(), "store.db")
		b, err := sqlite.Open(t.Context(), h.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		h.backend = b
	}
	h.store = newTestStore(t, h.backend)
	fc := &finch.Client{BaseURL: h.ts.URL + "/finch", ClientID: "sandbox-client-id", ClientSecret: finchconnect.NewSecret("sandbox-client-secret")}
	cfg := server.Config{PublicURL: h.ts.URL, StateTTL: opts.stateTTL}
	if adjust != nil {
		adjust(&cfg)
	}
	var sopts []server.Option
	switch {
	case opts.clock != nil:
		sopts = append(sopts, server.WithClock(opts.clock))
	case opts.now != nil:
		sopts = append(sopts, server.WithClock(clock.Func(opts.now)))
	}
	if opts.failpoint != nil {
		sopts = append(sopts, server.WithFailpoint(opts.failpoint))
	}
	h.srv, err = server.New(cfg, fc, h.store, sopts...)
	if err != nil {
		t.Fatal(err)
	}
	var finchHandler http.Handler = sb
	if opts.finch != nil {
		finchHandler = opts.finch(sb)
	}
	mux.Handle("/finch/", http.StripPrefix("/finch", finchHandler))
	mux.Handle("/", h.srv)
	h.client = newBrowser(t)
	return h
}

// openSQLiteAt opens a SQLite backend in a temp dir that judges expiry by
// now, as the harness's default backend but on a test's clock.
func openSQLiteAt(t *testing.T, now func() time.Time) *sqlite.Backend {
	t.Helper()
	b, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	b.Now = now
	return b
}

// onlyConnectionID returns the id of the one connection in the store.
func (h *harness) onlyConnectionID() string {
	h.t.Helper()
	conns, _, err := h.store.List(h.t.Context(), tokenstore.Filter{})
	if err != nil || len(conns) != 1 {
		h.t.Fatalf("List = %d connections, %v; want 1", len(conns), err)
	}
	return conns[0].ConnectionID
}

// completeFlow completes an app-started flow, as an app's back-end would.
func completeFlow(ctx context.Context, srv *server.Server, code, state string) (string, error) {
	out, err := srv.Protocol().Complete(ctx, connect.Callback{Code: code, State: state})
	return out.ConnectionID, err
}

// newTestStore returns a Store on b under a fresh key.
func newTestStore(t *testing.T, b tokenstore.Backend) *tokenstore.Store {
	t.Helper()
	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return tokenstore.New(b, kr)
}

// jsonError sends req from the harness's browser and returns the answer's
// status and the error code of its JSON body (err if it is not JSON).
func (h *harness) jsonError(req *http.Request) (status int, code string, err error) {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Error string }
	err = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Error, err
}

// newBrowser returns a client with a cookie jar that does not follow
// redirects, so tests can look at each hop.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type response struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (h *harness) do(c *http.Client, method, rawURL string, form url.Values) response {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	if strings.HasPrefix(rawURL, "/") {
		rawURL = h.ts.URL + rawURL
	}
	req, err := http.NewRequestWithContext(context.Background(), method, rawURL, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: res.StatusCode, location: res.Header.Get("Location"), body: string(b), header: res.Header}
}

var (
	formRe  = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input[^>]*>`)
	attrRe  = regexp.MustCompile(`(?is)(\w+)="([^"]*)"`)
)

// hiddenFields returns the action and the hidden inputs of the first form in
// page whose body contains marker.
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
	t.Fatalf("no form containing %q in page:\n%s", marker, page)
	return "", nil
}

// connect walks a browser from the connect form through the sandbox's
// Connect page, and returns the callback URL that Connect redirected to,
// without following it.
func (h *harness) connect(c *http.Client, customerID, username string) string {
	h.t.Helper()
	res := h.do(c, "POST", "/connect", url.Values{
		"customer_id": {customerID}, "customer_name": {"Customer " + customerID},
		"products": {"company", "directory", "individual", "employment"},
	})
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("POST /connect = %d, want 303; body:\n%s", res.status, res.body)
	}
	return h.signIn(c, res.location, username)
}

// signIn drives the sandbox's Connect page at authorizeURL and returns the
// redirect it ends in.
func (h *harness) signIn(c *http.Client, authorizeURL, username string) string {
	h.t.Helper()
	picker := h.do(c, "GET", authorizeURL, nil)
	if picker.status != http.StatusOK {
		h.t.Fatalf("GET authorize = %d, want 200; body:\n%s", picker.status, picker.body)
	}
	creds := picker
	if !strings.Contains(picker.body, `id="password"`) {
		// The provider picker first (a re-authentication knows its
		// provider and goes straight to the sign-in form).
		action, vals := hiddenFields(h.t, picker.body, `value="gusto"`)
		vals.Set("provider", "gusto")
		creds = h.do(c, "POST", action, vals)
		if creds.status != http.StatusOK {
			h.t.Fatalf("choose provider = %d, want 200; body:\n%s", creds.status, creds.body)
		}
	}
	action, vals := hiddenFields(h.t, creds.body, `id="password"`)
	vals.Set("username", username)
	vals.Set("password", "letmein")
	done := h.do(c, "POST", action, vals)
	if done.status != http.StatusFound && done.status != http.StatusSeeOther {
		h.t.Fatalf("sign in = %d, want a redirect; body:\n%s", done.status, done.body)
	}
	return done.location
}

// skipClock is a clock on which a wait takes no real time: After(d) moves
// the clock on by d and fires at once. It is for tests whose code waits out
// a retry backoff with nothing else running that the wait would let
// happen (a store that fails, then answers): the backoff is still taken on
// the clock, records see the time it took, and the test does not sleep.
// Not for tests where a follower waits for a leader in another goroutine:
// its deadline would pass at once. now is the time before any wait (nil:
// the system clock).
type skipClock struct {
	now     func() time.Time
	skipped atomic.Int64
}

func (c *skipClock) Now() time.Time {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	return now().Add(time.Duration(c.skipped.Load()))
}

func (c *skipClock) After(d time.Duration) <-chan time.Time {
	if d > 0 {
		c.skipped.Add(int64(d))
	}
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}
