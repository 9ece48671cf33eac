package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// seenRequest is a request as it reached Finch (the sandbox).
type seenRequest struct {
	method, path, rawURI, host string
	header                     http.Header
	bodyLen                    int
}

// upstream stands in front of the sandbox and records every request that
// reaches "Finch", so tests can tell what the proxy sent, and that it sent
// nothing at all when it should not have. It also adds response headers
// the sandbox does not send: rate-limit headers the proxy must pass on, and
// others it must not.
type upstream struct {
	sb    *sandbox.Server
	mu    sync.Mutex
	rs    []seenRequest
	extra http.Header // added to every response
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	u.mu.Lock()
	u.rs = append(u.rs, seenRequest{method: r.Method, path: r.URL.Path, rawURI: r.RequestURI, host: r.Host, header: r.Header.Clone(), bodyLen: len(body)})
	for k, v := range u.extra {
		w.Header()[k] = v
	}
	u.mu.Unlock()
	w.Header().Set("X-RateLimit-Limit", "20")
	w.Header().Set("X-RateLimit-Remaining", "19")
	w.Header().Set("Set-Cookie", "finch_session=upstream")
	w.Header().Set("X-Upstream-Internal", "not for the app")
	u.sb.ServeHTTP(w, r)
}

// seen returns the requests that reached Finch for path (every path when
// path is empty) since the last reset.
func (u *upstream) seen(path string) []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []seenRequest
	for _, r := range u.rs {
		if path == "" || r.path == path {
			out = append(out, r)
		}
	}
	return out
}

func (u *upstream) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rs = nil
}

// flakyBackend is a store that can be taken down: all of it, or all but
// the API keys (so that requests get past authentication and meet the
// outage in the handler).
type flakyBackend struct {
	tokenstore.Backend
	down     atomic.Bool
	keysDown atomic.Bool
}

var errDown = errors.New("test: the store is down")

func (b *flakyBackend) err() error {
	if b.down.Load() {
		return errDown
	}
	return nil
}

func (b *flakyBackend) keyErr(key string) error {
	if b.down.Load() && (b.keysDown.Load() || !strings.HasPrefix(key, "apikey/")) {
		return errDown
	}
	return nil
}

func (b *flakyBackend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	if err := b.err(); err != nil {
		return tokenstore.Row{}, err
	}
	return b.Backend.GetRow(ctx, id)
}

func (b *flakyBackend) PutRow(ctx context.Context, row tokenstore.Row, expect int64) (int64, error) {
	if err := b.err(); err != nil {
		return 0, err
	}
	return b.Backend.PutRow(ctx, row, expect)
}

func (b *flakyBackend) DeleteRow(ctx context.Context, id string) error {
	if err := b.err(); err != nil {
		return err
	}
	return b.Backend.DeleteRow(ctx, id)
}

func (b *flakyBackend) ListRows(ctx context.Context, f tokenstore.Filter) ([]tokenstore.Row, error) {
	if err := b.err(); err != nil {
		return nil, err
	}
	return b.Backend.ListRows(ctx, f)
}

func (b *flakyBackend) Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := b.keyErr(key); err != nil {
		return err
	}
	return b.Backend.Claim(ctx, key, value, ttl)
}

func (b *flakyBackend) Load(ctx context.Context, key string) ([]byte, error) {
	if err := b.keyErr(key); err != nil {
		return nil, err
	}
	return b.Backend.Load(ctx, key)
}

// Txn fails as the store does: a transaction that touches a row fails
// while the store is down, one of entries only as their keys do.
func (b *flakyBackend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	for _, c := range t.If {
		err := b.keyErr(c.Key)
		if c.Kind == tokenstore.RowVersion {
			err = b.err()
		}
		if err != nil {
			return tokenstore.TxnResult{Failed: -1}, err
		}
	}
	for _, o := range t.Then {
		err := b.keyErr(o.Key)
		if o.Kind == tokenstore.PutRowOp || o.Kind == tokenstore.DeleteRowOp {
			err = b.err()
		}
		if err != nil {
			return tokenstore.TxnResult{Failed: -1}, err
		}
	}
	return b.Backend.Txn(ctx, t)
}

func (b *flakyBackend) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if err := b.keyErr(key); err != nil {
		return err
	}
	return b.Backend.Swap(ctx, key, old, value, ttl)
}

func (b *flakyBackend) Forget(ctx context.Context, key string) error {
	if err := b.keyErr(key); err != nil {
		return err
	}
	return b.Backend.Forget(ctx, key)
}

func (b *flakyBackend) Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error) {
	if err := b.keyErr(prefix); err != nil {
		return nil, err
	}
	return b.Backend.Scan(ctx, prefix, after, limit)
}

func (b *flakyBackend) Ping(ctx context.Context) error {
	if err := b.err(); err != nil {
		return err
	}
	return b.Backend.Ping(ctx)
}

// proxyFixture is the server with Finch (the sandbox) behind a recording
// upstream, a store that can go down, and one connection whose token the
// sandbox minted directly (POST /sandbox/connections), without Connect.
type proxyFixture struct {
	t       *testing.T
	up      *upstream
	upURL   string
	backend *flakyBackend
	store   *tokenstore.Store
	app     *httptest.Server
	id      string // the connection
	token   finchconnect.Secret
	read    *apiClient
	write   *apiClient
	forward *apiClient
	audits  func() []finchconnect.AuditRecord
}

func newProxyFixture(t *testing.T, fc func(*finch.Client)) *proxyFixture {
	t.Helper()
	return newProxyFixtureConfig(t, fc, nil)
}

// newProxyFixtureConfig is newProxyFixture with the server's Config
// changed by cfg.
func newProxyFixtureConfig(t *testing.T, fc func(*finch.Client), cfg func(*server.Config), opts ...server.Option) *proxyFixture {
	t.Helper()
	f := &proxyFixture{t: t}
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	f.up = &upstream{sb: sb}
	upSrv := httptest.NewServer(f.up)
	t.Cleanup(upSrv.Close)
	f.upURL = upSrv.URL

	f.backend = &flakyBackend{Backend: tokenstore.NewMemory()}
	f.store = newTestStore(t, f.backend)
	client := &finch.Client{BaseURL: upSrv.URL, ClientID: sandbox.DefaultClientID, ClientSecret: finchconnect.NewSecret(sandbox.DefaultClientSecret), MaxRetries: 1}
	if fc != nil {
		fc(client)
	}
	var mu sync.Mutex
	var audits []finchconnect.AuditRecord
	f.audits = func() []finchconnect.AuditRecord {
		mu.Lock()
		defer mu.Unlock()
		return append([]finchconnect.AuditRecord(nil), audits...)
	}
	mux := http.NewServeMux()
	f.app = httptest.NewServer(mux)
	t.Cleanup(f.app.Close)
	conf := server.Config{
		PublicURL: f.app.URL,
		Audit: func(_ context.Context, r finchconnect.AuditRecord) {
			mu.Lock()
			defer mu.Unlock()
			audits = append(audits, r)
		},
	}
	if cfg != nil {
		cfg(&conf)
	}
	srv, err := server.New(conf, client, f.store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", srv)

	// Mint a connection at the sandbox and store it, as a callback would.
	req, _ := http.NewRequest("POST", upSrv.URL+"/sandbox/connections", strings.NewReader(`{"provider_id":"gusto","employee_size":25,"products":["company","directory","individual","employment","payment","pay_statement","benefits","documents"]}`))
	req.SetBasicAuth(sandbox.DefaultClientID, sandbox.DefaultClientSecret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var minted struct{ AccessToken, ConnectionID, ProviderID string }
	err = json.NewDecoder(res.Body).Decode(&struct {
		AccessToken  *string `json:"access_token"`
		ConnectionID *string `json:"connection_id"`
		ProviderID   *string `json:"provider_id"`
	}{&minted.AccessToken, &minted.ConnectionID, &minted.ProviderID})
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || minted.AccessToken == "" {
		t.Fatalf("POST /sandbox/connections = %d, %v", res.StatusCode, err)
	}
	f.id, f.token = minted.ConnectionID, finchconnect.NewSecret(minted.AccessToken)
	err = f.store.Put(t.Context(), finchconnect.Connection{
		ConnectionID: f.id, CustomerID: "proxy-customer", CustomerName: "Proxy Inc.", ProviderID: minted.ProviderID,
		Products: []string{"company", "directory", "individual", "employment"}, Status: finchconnect.StatusConnected,
		AccessToken: f.token,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The apiClient helpers want a harness: give them one that points at
	// this fixture's server.
	h := &harness{t: t, ts: f.app, backend: f.backend, store: f.store, sb: sb}
	f.read, f.write, f.forward = h.api(apikey.ScopeRead), h.api(apikey.ScopeWrite), h.api(apikey.ScopeForward)
	f.up.reset()
	return f
}

func (f *proxyFixture) base() string { return "/v1/connections/" + f.id + "/finch/" }

// raw sends one HTTP/1.1 request with target exactly as given (no client
// cleans or escapes it) and returns the answer.
func (f *proxyFixture) raw(method, target, key string, extra ...string) (*http.Response, string) {
	f.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.app.URL, "http://"))
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	host := strings.TrimPrefix(f.app.URL, "http://")
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n", method, target, host, key)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		f.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestAPI_ProxyRefusesEscapes sends the proxy every way out of Finch's API
// that we know of, byte for byte as an attacker would, and checks that each
// is refused before anything reaches Finch, and that what is not refused
// still goes only to the configured Finch, with the stored token.
func TestAPI_ProxyRefusesEscapes(t *testing.T) {
	f := newProxyFixture(t, nil)
	base := f.base()
	refused := []struct {
		method, path string
		want         int
	}{
		// Not on the allow-list.
		{"POST", "auth/token", http.StatusForbidden},
		{"GET", "auth/token", http.StatusForbidden},
		{"POST", "disconnect", http.StatusForbidden},
		{"POST", "disconnect-entity", http.StatusForbidden},
		{"POST", "connect/sessions", http.StatusForbidden},
		{"POST", "connect/sessions/reauthenticate", http.StatusForbidden},
		{"POST", "sandbox/connections", http.StatusForbidden},
		{"PUT", "sandbox/connections/accounts", http.StatusForbidden},
		{"GET", "_sandbox/stats", http.StatusForbidden},
		{"POST", "forward", http.StatusForbidden},
		{"DELETE", "introspect", http.StatusForbidden},
		{"GET", "EMPLOYER/company", http.StatusForbidden},
		{"GET", "", http.StatusForbidden},
		// Smuggled past a prefix check: encoded slashes, dots, backslashes,
		// double encoding, query and fragment delimiters, control bytes.
		{"GET", "employer/..%2f..%2fdisconnect", http.StatusForbidden},
		{"GET", "employer/..%2F..%2Fauth/token", http.StatusForbidden},
		{"GET", "employer/%2e%2e/disconnect", http.StatusForbidden},
		{"GET", "employer/%2E%2E/%2E%2E/auth/token", http.StatusForbidden},
		{"GET", "employer%2fcompany", http.StatusForbidden},
		{"GET", "employer/%252e%252e/%252e%252e/disconnect", http.StatusForbidden},
		{"GET", "employer/%5c..%5cdisconnect", http.StatusForbidden},
		{"GET", `employer/..\..\disconnect`, http.StatusForbidden},
		{"GET", `employer\company`, http.StatusForbidden},
		{"GET", "employer/company%3fx=1", http.StatusForbidden},
		{"GET", "employer/company%23x", http.StatusForbidden},
		{"GET", "employer/company%00", http.StatusForbidden},
		{"GET", "employer/company%0d%0aHost:evil.example", http.StatusForbidden},
		{"GET", "employer/%ef%bc%8e%ef%bc%8e/disconnect", http.StatusForbidden}, // fullwidth dots
		{"GET", "employer/company/", http.StatusForbidden},
		{"GET", "evil.example/employer/company", http.StatusForbidden},
		{"GET", "http:evil.example/employer/company", http.StatusForbidden},
		{"GET", "@evil.example/employer/company", http.StatusForbidden},
		// Methods Finch's API does not use.
		{"TRACE", "employer/company", http.StatusMethodNotAllowed},
		{"OPTIONS", "employer/company", http.StatusMethodNotAllowed},
		{"PROPFIND", "employer/company", http.StatusMethodNotAllowed},
	}
	for _, tt := range refused {
		res, body := f.raw(tt.method, base+tt.path, f.write.key)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, res.StatusCode, body, tt.want)
			continue
		}
		var e struct{ Error, Message, RequestID string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: body %q is not a JSON error", tt.method, tt.path, body)
		}
		if tt.want == http.StatusMethodNotAllowed && res.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}

	// Paths with "//", "." or ".." segments never reach the proxy at all:
	// ServeMux redirects them to their clean form, on this server.
	redirected := []string{
		"employer/./company",
		"//evil.example/employer/company",
		"http://evil.example/employer/company",
		"employer/../../../disconnect",
		"employer/../auth/token",
	}
	for _, p := range redirected {
		res, body := f.raw("GET", base+p, f.write.key)
		loc := res.Header.Get("Location")
		if res.StatusCode/100 != 3 || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, "..") {
			t.Errorf("GET %s = %d (Location %q) %s, want a redirect to a clean path on this server", p, res.StatusCode, loc, body)
		}
	}
	if got := f.up.seen(""); len(got) != 0 {
		t.Errorf("refused requests reached Finch: %+v", got)
	}

	// Neither an absolute-form request target nor a Host header chooses
	// where the proxy goes: Finch's configured base URL does.
	overrides := []struct {
		name, target string
		extra        []string
	}{
		{"absolute-form target", "http://evil.example" + base + "employer/company", nil},
		{"Host header", base + "employer/company", []string{"X-Forwarded-Host: evil.example", "Forwarded: host=evil.example"}},
	}
	for _, o := range overrides {
		f.up.reset()
		res, body := f.raw("GET", o.target, f.read.key, o.extra...)
		seen := f.up.seen("")
		if res.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Errorf("%s: %d %s, %d requests reached Finch; want 200 and one", o.name, res.StatusCode, body, len(seen))
			continue
		}
		if want := strings.TrimPrefix(f.upURL, "http://"); seen[0].host != want || seen[0].path != "/employer/company" {
			t.Errorf("%s: Finch got %s%s, want %s/employer/company", o.name, seen[0].host, seen[0].path, want)
		}
	}
}

// TestAPI_ProxyHeaders checks what crosses the proxy in each direction:
// towards Finch only the stored token, never the caller's credentials,
// cookies or hop-by-hop headers; back to the app Finch's status, body,
// Finch-Request-Id and rate-limit headers, and nothing else of Finch's.
func TestAPI_ProxyHeaders(t *testing.T) {
	f := newProxyFixture(t, nil)
	r := f.read.callWith("GET", f.base()+"employer/company", "", http.Header{
		"Cookie":              {"app_session=secret-cookie"},
		"Proxy-Authorization": {"Basic c2VjcmV0"},
		"Connection":          {"X-Hop"},
		"X-Hop":               {"hop-value"},
		"X-Forwarded-For":     {"203.0.113.9"},
		"Finch-Api-Version":   {"1999-01-01"},
		"X-Api-Key":           {"another-secret"},
	})
	if r.status != http.StatusOK || !strings.Contains(r.body, "legal_name") {
		t.Fatalf("proxied company = %d %s", r.status, r.body)
	}
	seen := f.up.seen("/employer/company")
	if len(seen) != 1 {
		t.Fatalf("Finch got %d requests for the company, want 1", len(seen))
	}
	got := seen[0].header
	if auth := got.Get("Authorization"); auth != "Bearer "+f.token.Reveal() {
		t.Errorf("Finch got Authorization %q, want the stored token", auth)
	}
	for _, h := range []string{"Cookie", "Proxy-Authorization", "X-Hop", "X-Forwarded-For", "X-Api-Key"} {
		if v := got.Get(h); v != "" {
			t.Errorf("the caller's %s reached Finch: %q", h, v)
		}
	}
	if v := got.Get("Finch-Api-Version"); v == "1999-01-01" {
		t.Errorf("the caller chose Finch-API-Version %q", v)
	}
	if strings.Contains(fmt.Sprint(got), f.read.key) {
		t.Error("the caller's API key reached Finch")
	}

	want := map[string]string{"X-Ratelimit-Limit": "20", "X-Ratelimit-Remaining": "19", "Content-Type": "application/json"}
	for h, v := range want {
		if g := r.header.Get(h); !strings.HasPrefix(g, v) {
			t.Errorf("response %s = %q, want %q from Finch", h, g, v)
		}
	}
	if id := r.header.Get("Finch-Request-Id"); id == "" || id == r.header.Get("X-Request-Id") {
		t.Errorf("Finch-Request-Id = %q (X-Request-Id %q), want Finch's own", id, r.header.Get("X-Request-Id"))
	}
	for _, h := range []string{"Set-Cookie", "X-Upstream-Internal"} {
		if v := r.header.Get(h); v != "" {
			t.Errorf("Finch's %s reached the app: %q", h, v)
		}
	}
	if strings.Contains(r.body, f.token.Reveal()) || strings.Contains(fmt.Sprint(r.header), f.token.Reveal()) {
		t.Error("the token is in the proxy's answer")
	}

	// Every decryption for the proxy is audited, naming the key and the
	// call, and holding no secret.
	var proxied []finchconnect.AuditRecord
	for _, a := range f.audits() {
		if a.Action == finchconnect.AuditDecrypted {
			proxied = append(proxied, a)
		}
	}
	keyID := strings.Split(f.read.key, "_")[1]
	if len(proxied) != 1 || proxied[0].ConnectionID != f.id || proxied[0].Actor != "api:"+keyID || proxied[0].Purpose != "GET /employer/company" {
		t.Errorf("audit records = %+v, want one decryption by api:%s for GET /employer/company", proxied, keyID)
	}
	if raw, _ := json.Marshal(f.audits()); strings.Contains(string(raw), f.token.Reveal()) || strings.Contains(string(raw), f.read.key) {
		t.Error("an audit record holds a secret")
	}
}

// TestAPI_ProxyRetriesAndLimits checks that reads are retried and writes
// are not, that Finch's 429 reaches the app with its Retry-After, and the
// body bound: Finch's batch reads fit, anything over 1 MiB is refused
// before Finch sees it.
func TestAPI_ProxyRetriesAndLimits(t *testing.T) {
	var waitMu sync.Mutex
	var waits []time.Duration // the client's waits between attempts, recorded instead of slept
	f := newProxyFixture(t, func(c *finch.Client) {
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			waitMu.Lock()
			defer waitMu.Unlock()
			waits = append(waits, d)
			return ctx.Err()
		}
	})
	waited := func() []time.Duration {
		waitMu.Lock()
		defer waitMu.Unlock()
		w := waits
		waits = nil
		return w
	}
	base := f.base()

	// One 429, then success: the client retries the read.
	f.up.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 1})
	if r := f.read.call("GET", base+"employer/company", ""); r.status != http.StatusOK {
		t.Errorf("company after one 429 = %d %s, want 200 after a retry", r.status, r.body)
	}
	if n := len(f.up.seen("/employer/company")); n != 2 {
		t.Errorf("Finch got %d requests for the company, want 2 (one retry)", n)
	}
	if w := waited(); !slices.Equal(w, []time.Duration{time.Second}) {
		t.Errorf("waits before the retry = %v, want Finch's Retry-After, 1s", w)
	}

	// 429 every time: after the retries, Finch's answer is the proxy's.
	f.up.reset()
	f.up.sb.InjectFault(sandbox.Fault{Route: "GET /employer/directory", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 5})
	r := f.read.call("GET", base+"employer/directory", "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.header.Get("Finch-Request-Id") == "" ||
		!strings.Contains(r.body, "rate_limit_exceeded_error") {
		t.Errorf("directory under a rate limit = %d (Retry-After %q, Finch-Request-Id %q) %s; want Finch's 429 passed through",
			r.status, r.header.Get("Retry-After"), r.header.Get("Finch-Request-Id"), r.body)
	}
	if n := len(f.up.seen("/employer/directory")); n != 2 {
		t.Errorf("Finch got %d directory requests, want 2 (MaxRetries 1)", n)
	}
	f.up.sb.ClearFaults()

	// A write is sent once, whatever Finch answers.
	f.up.reset()
	f.up.sb.InjectFault(sandbox.Fault{Route: "", Status: http.StatusServiceUnavailable, Count: 1})
	r = f.write.call("POST", base+"jobs/automated", `{"type":"data_sync_all"}`)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("a write Finch answers 503 to = %d %s, want Finch's 503", r.status, r.body)
	}
	if n := len(f.up.seen("/jobs/automated")); n != 1 {
		t.Errorf("Finch got the write %d times, want once", n)
	}
	f.up.sb.ClearFaults()

	// A batch read of 3,000 individuals (about 170 KB, over the 64 KiB that
	// bounds other requests) goes through whole.
	f.up.reset()
	var batch strings.Builder
	batch.WriteString(`{"requests":[`)
	for i := range 3000 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"individual_id":"00000000-0000-4000-8000-%012d"}`, i)
	}
	batch.WriteString(`]}`)
	r = f.read.call("POST", base+"employer/individual", batch.String())
	seen := f.up.seen("/employer/individual")
	if r.status == http.StatusRequestEntityTooLarge || len(seen) != 1 || seen[0].bodyLen != batch.Len() {
		t.Errorf("a %d-byte batch read = %d, Finch got %d requests; want it forwarded whole", batch.Len(), r.status, len(seen))
	}

	f.up.reset()
	huge := `{"requests":[` + strings.Repeat(" ", 1<<20) + `]}`
	r = f.read.call("POST", base+"employer/individual", huge)
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "body_too_large") {
		t.Errorf("a body over 1 MiB = %d %s, want 413", r.status, r.body)
	}
	if n := len(f.up.seen("")); n != 0 {
		t.Errorf("Finch got %d requests for a body over the limit, want none", n)
	}
	// Elsewhere the bound stays 64 KiB.
	r = f.write.call("POST", "/v1/connect/sessions", `{"customer_id":"x","customer_name":"`+strings.Repeat("x", 70<<10)+`","products":["company"]}`)
	if r.status != http.StatusBadRequest {
		t.Errorf("a 70 KiB session request = %d, want 400", r.status)
	}
}

// TestAPI_Outages checks the API's answers when the store or Finch does not
// answer: documented statuses, JSON errors with a request id, nothing of
// the failure's text, and nothing sent to Finch while the store is down.
func TestAPI_Outages(t *testing.T) {
	// The store's outage is met by retries whose backoffs the clock skips.
	f := newProxyFixtureConfig(t, func(c *finch.Client) { c.MaxRetries = -1 }, nil, server.WithClock(&skipClock{}))
	calls := []struct{ method, path, body string }{
		{"GET", "/v1/connections", ""},
		{"GET", "/v1/connections/" + f.id, ""},
		{"POST", "/v1/connect/sessions", `{"customer_id":"c","customer_name":"C","products":["company"]}`},
		{"POST", "/v1/connections/" + f.id + "/reauthenticate", `{}`},
		{"POST", "/v1/connect/complete", `{"code":"c","state":"s"}`},
		{"GET", f.base() + "employer/company", ""},
		{"DELETE", "/v1/connections/" + f.id, ""},
	}
	check := func(label string, want int, r response) {
		t.Helper()
		var e struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.RequestID == "" || e.RequestID != r.header.Get("X-Request-Id") {
			t.Errorf("%s: body %s is not a JSON error with the request id %q", label, r.body, r.header.Get("X-Request-Id"))
		}
		if r.status != want {
			t.Errorf("%s = %d %s, want %d", label, r.status, r.body, want)
		}
		if strings.Contains(r.body, errDown.Error()) || strings.Contains(r.body, "127.0.0.1") {
			t.Errorf("%s: the failure's own text reached the app: %s", label, r.body)
		}
	}

	// The whole store down: the API key cannot be checked.
	f.backend.down.Store(true)
	f.backend.keysDown.Store(true)
	for _, c := range calls {
		check("store down: "+c.method+" "+c.path, http.StatusServiceUnavailable, f.write.call(c.method, c.path, c.body))
	}
	// All but the API keys down: the handlers meet the outage.
	f.backend.keysDown.Store(false)
	for _, c := range calls {
		check("store down after auth: "+c.method+" "+c.path, http.StatusServiceUnavailable, f.write.call(c.method, c.path, c.body))
	}
	if n := len(f.up.seen("")); n != 0 {
		t.Errorf("with the store down, %d requests reached Finch, want none", n)
	}
	f.backend.down.Store(false)
	if r := f.read.call("GET", "/v1/connections/"+f.id, ""); r.status != http.StatusOK {
		t.Errorf("after the outage GET connection = %d %s, want 200: a failed DELETE keeps the token", r.status, r.body)
	}

	// Finch refuses: a re-authentication session for a connection Finch
	// does not know is Finch's 4xx, which the app sees as a 502.
	ghost := finchconnect.Connection{ConnectionID: "00000000-0000-4000-8000-000000000000", ProviderID: "gusto", Status: "connected", AccessToken: finchconnect.NewSecret("not-a-token")}
	if err := f.store.Put(t.Context(), ghost); err != nil {
		t.Fatal(err)
	}
	check("Finch refuses: reauthenticate", http.StatusBadGateway, f.write.call("POST", "/v1/connections/"+ghost.ConnectionID+"/reauthenticate", `{}`))

	// Finch unreachable: every call that needs Finch is a 502, and a failed
	// DELETE keeps the token so that it can be retried.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	g := newProxyFixture(t, func(c *finch.Client) { c.BaseURL = deadURL; c.MaxRetries = -1 })
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/connect/sessions", `{"customer_id":"c","customer_name":"C","products":["company"]}`},
		{"POST", "/v1/connections/" + g.id + "/reauthenticate", `{}`},
		{"GET", g.base() + "employer/company", ""},
		{"DELETE", "/v1/connections/" + g.id, ""},
	} {
		check("Finch unreachable: "+c.method+" "+c.path, http.StatusBadGateway, g.write.call(c.method, c.path, c.body))
	}
	if r := g.read.call("GET", "/v1/connections/"+g.id, ""); r.status != http.StatusOK {
		t.Errorf("after a failed DELETE GET connection = %d, want 200", r.status)
	}
}
