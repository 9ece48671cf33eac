package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
)

var connPathRe = regexp.MustCompile(`^/connections/([^/?]+)$`)

// finish follows a callback URL and returns the connection id it leads to.
func (h *harness) finish(c *http.Client, callbackURL string) string {
	h.t.Helper()
	res := h.do(c, "GET", callbackURL, nil)
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("GET /callback = %d, want 303; body:\n%s", res.status, res.body)
	}
	m := connPathRe.FindStringSubmatch(res.location)
	if m == nil {
		h.t.Fatalf("callback redirected to %q, want /connections/ID", res.location)
	}
	return m[1]
}

func (h *harness) exchanges() int { return h.sb.Stats().TokenExchanges }

func TestServer_ConnectFlow(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	home := h.do(h.client, "GET", "/", nil)
	if home.status != http.StatusOK || !strings.Contains(home.body, `id="no-connections"`) {
		t.Fatalf("GET / = %d, want 200 with no connections; body:\n%s", home.status, home.body)
	}

	cb := h.connect(h.client, "acme-1", "authorized_simple")
	u, err := url.Parse(cb)
	if err != nil || u.Path != "/callback" || u.Query().Get("code") == "" || u.Query().Get("state") == "" {
		t.Fatalf("Connect redirected to %q, want /callback?code=…&state=…", cb)
	}
	id := h.finish(h.client, cb)

	conn, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("store.Get(%q): %v", id, err)
	}
	if conn.CustomerID != "acme-1" || conn.Status != finchconnect.StatusConnected || conn.AccessToken.IsZero() {
		t.Errorf("stored connection = %+v, want customer acme-1, connected, with a token", conn)
	}
	fc := &finch.Client{BaseURL: h.ts.URL + "/finch"}
	company, err := fc.Company(t.Context(), conn.AccessToken)
	if err != nil {
		t.Fatalf("Company with the stored token: %v", err)
	}

	page := h.do(h.client, "GET", "/connections/"+id, nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET /connections/%s = %d; body:\n%s", id, page.status, page.body)
	}
	if company.LegalName == "" || !strings.Contains(page.body, htmlEscape(company.LegalName)) {
		t.Errorf("connection page does not show the legal name %v:\n%s", company.LegalName, page.body)
	}
	if !strings.Contains(page.body, `id="directory"`) {
		t.Errorf("connection page has no directory:\n%s", page.body)
	}
	if company.EIN != "" && strings.Contains(page.body, company.EIN) {
		t.Errorf("connection page shows the EIN %q unmasked", company.EIN)
	}
	for _, a := range company.Accounts {
		if a.AccountNumber != "" && strings.Contains(page.body, a.AccountNumber) {
			t.Errorf("connection page shows account number %q unmasked", a.AccountNumber)
		}
	}
	if got := page.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store on a page with employer data", got)
	}
	if strings.Contains(page.body, conn.AccessToken.Reveal()) {
		t.Error("connection page contains the access token")
	}

	home = h.do(h.client, "GET", "/", nil)
	if !strings.Contains(home.body, "/connections/"+id) {
		t.Errorf("home page does not list connection %s:\n%s", id, home.body)
	}

	// The raw store never holds the token in the clear.
	assertFilesLackToken(t, conn.AccessToken.Reveal(), h.dbPath, h.dbPath+"-wal", h.dbPath+"-shm")
}

func assertFilesLackToken(t *testing.T, token string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("%s contains the plaintext token", p)
		}
	}
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

// TestCallback_ExactlyOnce fires one callback 100 times at once: one
// exchange reaches Finch, and every request lands on the same connection.
func TestCallback_ExactlyOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cb := h.connect(h.client, "acme-2", "authorized_simple")

	const n = 100
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() { results[i] = h.do(h.client, "GET", cb, nil) })
	}
	wg.Wait()
	first := results[0].location
	for i, r := range results {
		if r.status != http.StatusSeeOther || r.location != first || !connPathRe.MatchString(r.location) {
			t.Errorf("callback %d = %d → %q, want 303 → %q", i, r.status, r.location, first)
		}
	}
	if got := h.exchanges(); got != 1 {
		t.Errorf("sandbox saw %d successful exchanges, want exactly 1", got)
	}
	if got := h.sb.Stats().FailedExchanges; got != 0 {
		t.Errorf("sandbox saw %d failed exchanges, want 0 (no code sent twice)", got)
	}
	conns, _, err := h.store.List(t.Context(), tokenstore.Filter{})
	if err != nil || len(conns) != 1 {
		t.Errorf("store holds %d connections (err %v), want 1", len(conns), err)
	}

	// A refresh long after still shows the connection.
	if again := h.do(h.client, "GET", cb, nil); again.location != first {
		t.Errorf("a later refresh = %d → %q, want → %q", again.status, again.location, first)
	}
}

func TestCallback_StateChecks(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cb := h.connect(h.client, "acme-3", "authorized_simple")
	u, _ := url.Parse(cb)
	code, state := u.Query().Get("code"), u.Query().Get("state")

	tests := []struct {
		name   string
		client *http.Client
		query  url.Values
	}{
		{"no state", h.client, url.Values{"code": {code}}},
		{"no code", h.client, url.Values{"state": {state}}},
		{"forged state", h.client, url.Values{"code": {code}, "state": {"forged-" + state[7:]}}},
		{"another browser", newBrowser(t), url.Values{"code": {code}, "state": {state}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(tt.client, "GET", "/callback?"+tt.query.Encode(), nil)
			if res.status != http.StatusBadRequest || !strings.Contains(res.body, `id="error"`) || !strings.Contains(res.body, `id="request-id"`) {
				t.Errorf("GET /callback = %d, want 400 with an error page and a request id; body:\n%s", res.status, res.body)
			}
			if got := h.exchanges() + h.sb.Stats().FailedExchanges; got != 0 {
				t.Errorf("sandbox saw %d exchange attempts, want 0", got)
			}
		})
	}

	// The genuine callback still works after the refused ones…
	id := h.finish(h.client, cb)

	// …and its state cannot carry a second code.
	cb2 := h.connect(h.client, "acme-4", "authorized_simple")
	u2, _ := url.Parse(cb2)
	reused := url.Values{"code": {u2.Query().Get("code")}, "state": {state}}
	res := h.do(h.client, "GET", "/callback?"+reused.Encode(), nil)
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "no longer valid") {
		t.Errorf("reused state = %d, want 400 'no longer valid'; body:\n%s", res.status, res.body)
	}
	if got := h.exchanges(); got != 1 {
		t.Errorf("sandbox saw %d exchanges, want 1 (the reused state must not exchange)", got)
	}
	if id == "" {
		t.Fatal("no connection id")
	}
}

func TestCallback_ExpiredState(t *testing.T) {
	clk := &testClock{}
	opts := clk.opts(openSQLiteAt(t, clk.Now))
	opts.stateTTL = 300 * time.Millisecond
	hs := newHarness(t, opts)
	cb := hs.connect(hs.client, "acme-5", "authorized_simple")
	clk.Advance(time.Second)
	res := hs.do(hs.client, "GET", cb, nil)
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "no longer valid") {
		t.Errorf("callback after the state expired = %d, want 400; body:\n%s", res.status, res.body)
	}
	if got := hs.exchanges(); got != 0 {
		t.Errorf("sandbox saw %d exchanges, want 0", got)
	}
}

func TestCallback_ConnectError(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	res := h.do(h.client, "POST", "/connect", url.Values{"customer_id": {"c"}, "customer_name": {"C"}, "products": {"company"}})
	au, _ := url.Parse(res.location)
	state := au.Query().Get("state")
	q := url.Values{"error": {"access_denied"}, "error_description": {"The employer <b>cancelled</b>"}, "state": {state}}
	page := h.do(h.client, "GET", "/callback?"+q.Encode(), nil)
	if page.status != http.StatusBadRequest || !strings.Contains(page.body, "access_denied") {
		t.Errorf("error callback = %d, want 400 naming the error; body:\n%s", page.status, page.body)
	}
	if strings.Contains(page.body, "<b>cancelled</b>") {
		t.Error("error description was not escaped")
	}
	if got := h.exchanges() + h.sb.Stats().FailedExchanges; got != 0 {
		t.Errorf("sandbox saw %d exchange attempts, want 0", got)
	}
}

func TestCallback_ExpiredCode(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cb := h.connect(h.client, "acme-6", "authorized_simple")
	// Codes live 10 minutes at Finch; move the sandbox's clock past that.
	res := h.doJSON(http.MethodPost, "/finch/_sandbox/clock", `{"advance":"11m"}`)
	if res.status/100 != 2 {
		t.Fatalf("advance sandbox clock = %d: %s", res.status, res.body)
	}
	page := h.do(h.client, "GET", cb, nil)
	if page.status != http.StatusBadRequest || !strings.Contains(page.body, "did not accept the authorization code") {
		t.Errorf("callback with an expired code = %d, want 400; body:\n%s", page.status, page.body)
	}
	if got := h.exchanges(); got != 0 {
		t.Errorf("sandbox saw %d successful exchanges, want 0", got)
	}
}

func (h *harness) doJSON(method, path, body string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return response{status: res.StatusCode, body: buf.String(), header: res.Header}
}

func TestConnectionPage_EscapesFinchData(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.finish(h.client, h.connect(h.client, "acme-7", "authorized_simple"))
	conn, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	const evil = `<script>alert(1)</script>`
	company := map[string]any{
		"legal_name": evil, "entity": map[string]any{"type": "llc", "subtype": nil}, "primary_email": "a@b.c",
		"primary_phone_number": "+15555550100", "departments": []any{}, "locations": []any{}, "accounts": []any{}, "ein": "12-3456789",
	}
	b, _ := json.Marshal(company)
	req, _ := http.NewRequest("PUT", h.ts.URL+"/finch/sandbox/company", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+conn.AccessToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PUT /sandbox/company = %d", res.StatusCode)
	}
	page := h.do(h.client, "GET", "/connections/"+id, nil)
	if strings.Contains(page.body, evil) {
		t.Errorf("page contains the company name unescaped:\n%s", page.body)
	}
	if !strings.Contains(page.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("page does not show the escaped company name:\n%s", page.body)
	}
	if strings.Contains(page.body, "12-3456789") || !strings.Contains(page.body, "••-•••6789") {
		t.Errorf("EIN not masked to its last four digits:\n%s", page.body)
	}
}

func TestCallback_EmbeddedFlow(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	req, _ := http.NewRequest("POST", h.ts.URL+"/connect", strings.NewReader(url.Values{
		"customer_id": {"emb-1"}, "customer_name": {"Embedded"}, "products": {"company", "directory"}, "mode": {"embedded"},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var start struct {
		ConnectURL string `json:"connect_url"`
		State      string `json:"state"`
	}
	err = json.NewDecoder(res.Body).Decode(&start)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || start.ConnectURL == "" || start.State == "" {
		t.Fatalf("POST /connect (embedded) = %d, %+v, %v; want 200 with connect_url and state", res.StatusCode, start, err)
	}
	// With no redirect_uri, the sandbox's Connect page hands the code to the
	// opener by postMessage and shows it for people without JavaScript.
	page := h.signInPage(h.client, start.ConnectURL, "authorized_simple")
	m := regexp.MustCompile(`"code":\s*"([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		m = regexp.MustCompile(`id="code"[^>]*>([^<]+)<`).FindStringSubmatch(page)
	}
	if m == nil {
		t.Fatalf("no code in the embedded Connect result page:\n%s", page)
	}
	body, _ := json.Marshal(map[string]string{"code": m[1], "state": start.State})
	cb := h.doJSON("POST", "/callback", string(body))
	var out struct {
		ConnectionID string `json:"connection_id"`
	}
	if err := json.Unmarshal([]byte(cb.body), &out); err != nil || cb.status != http.StatusOK || out.ConnectionID == "" {
		t.Fatalf("POST /callback = %d %s, want 200 with connection_id", cb.status, cb.body)
	}
	if got := h.exchanges(); got != 1 {
		t.Errorf("sandbox saw %d exchanges, want 1 (embedded codes are exchanged without redirect_uri)", got)
	}
	// Posting it again gives the same answer and no new exchange.
	again := h.doJSON("POST", "/callback", string(body))
	if again.status != http.StatusOK || !strings.Contains(again.body, out.ConnectionID) {
		t.Errorf("second POST /callback = %d %s, want the same connection", again.status, again.body)
	}
	if got := h.exchanges(); got != 1 {
		t.Errorf("sandbox saw %d exchanges after a duplicate, want 1", got)
	}
	if bad := h.doJSON("POST", "/callback", "{not json"); bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "request_id") {
		t.Errorf("malformed JSON callback = %d %s, want 400 JSON error with a request id", bad.status, bad.body)
	}
}

// signInPage drives the Connect page like signIn, but returns the final
// page instead of expecting a redirect (the embedded flow).
func (h *harness) signInPage(c *http.Client, authorizeURL, username string) string {
	h.t.Helper()
	picker := h.do(c, "GET", authorizeURL, nil)
	action, vals := hiddenFields(h.t, picker.body, `value="gusto"`)
	vals.Set("provider", "gusto")
	creds := h.do(c, "POST", action, vals)
	action, vals = hiddenFields(h.t, creds.body, `id="password"`)
	vals.Set("username", username)
	vals.Set("password", "letmein")
	done := h.do(c, "POST", action, vals)
	if done.status != http.StatusOK {
		h.t.Fatalf("embedded sign in = %d, want 200; body:\n%s", done.status, done.body)
	}
	return done.body
}

func TestConnection_ReauthenticateAndDisconnect(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.finish(h.client, h.connect(h.client, "acme-8", "authorized_simple"))
	before, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sb.SetConnectionStatus(id, "reauth"); err != nil {
		t.Fatal(err)
	}
	page := h.do(h.client, "GET", "/connections/"+id, nil)
	if !strings.Contains(page.body, `id="reauthenticate"`) {
		t.Fatalf("a connection in reauth shows no re-authenticate button:\n%s", page.body)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Errorf("stored status = %q, want reauth after Finch said so", c.Status)
	}

	start := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{})
	if start.status != http.StatusSeeOther {
		t.Fatalf("POST reauthenticate = %d; body:\n%s", start.status, start.body)
	}
	if got := h.finish(h.client, h.signIn(h.client, start.location, "authorized_simple")); got != id {
		t.Errorf("re-authentication landed on connection %q, want the same %q", got, id)
	}
	after, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if after.AccessToken.Reveal() == before.AccessToken.Reveal() {
		t.Error("re-authentication kept the old token; want the new one stored")
	}
	if after.Status != finchconnect.StatusConnected {
		t.Errorf("status after re-authentication = %q, want connected", after.Status)
	}

	ask := h.do(h.client, "POST", "/connections/"+id+"/disconnect", url.Values{})
	if ask.status != http.StatusOK || !strings.Contains(ask.body, `id="confirm-disconnect"`) {
		t.Fatalf("POST disconnect without confirm = %d, want 200 and the confirmation page; body:\n%s", ask.status, ask.body)
	}
	if _, err := h.store.Lookup(t.Context(), id); err != nil {
		t.Fatalf("a disconnect without confirmation removed the connection: %v", err)
	}
	res := h.do(h.client, "POST", "/connections/"+id+"/disconnect", url.Values{"confirm": {"yes"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("POST disconnect = %d; body:\n%s", res.status, res.body)
	}
	if _, err := h.store.Lookup(t.Context(), id); err == nil {
		t.Error("the connection is still stored after disconnect")
	}
	fc := &finch.Client{BaseURL: h.ts.URL + "/finch"}
	if _, err := fc.Company(t.Context(), after.AccessToken); err == nil {
		t.Error("the token still works at Finch after disconnect")
	}
}

func TestConnect_InvalidFormKeepsInput(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	res := h.do(h.client, "POST", "/connect", url.Values{"customer_id": {"kept-id-42"}, "customer_name": {""}})
	if res.status != http.StatusBadRequest {
		t.Fatalf("POST /connect with no name = %d, want 400", res.status)
	}
	for _, want := range []string{`id="problems"`, "Customer name is required", "Choose at least one product", `value="kept-id-42"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("re-shown form lacks %q:\n%s", want, res.body)
		}
	}
}

func TestConnect_RefusesCrossSiteForm(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	req, _ := http.NewRequest("POST", h.ts.URL+"/connect", strings.NewReader("customer_id=a&customer_name=b&products=company"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST /connect = %d, want 403", res.StatusCode)
	}

	// The API and the embedded flow are refused in JSON, as docs/api.md
	// promises of every error.
	for _, path := range []string{"/v1/connect/sessions", "/callback"} {
		req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if status, code, err := h.jsonError(req); status != http.StatusForbidden || err != nil || code != "cross_site" {
			t.Errorf("cross-site POST %s = %d, error %q (decode: %v); want 403 in JSON, error cross_site", path, status, code, err)
		}
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := h.do(h.client, "GET", p, nil); res.status != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, res.status)
		}
	}
	h.backend.Close()
	if res := h.do(h.client, "GET", "/readyz", nil); res.status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the store closed = %d, want 503", res.status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	res := h.do(h.client, "GET", "/", nil)
	for k, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := res.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	start := h.do(h.client, "POST", "/connect", url.Values{"customer_id": {"c"}, "customer_name": {"C"}, "products": {"company"}})
	cookie := start.header.Get("Set-Cookie")
	for _, want := range []string{"fc_browser=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie = %q, want it to contain %q", cookie, want)
		}
	}
	if loc := start.location; strings.Contains(cookie, "state=") || !strings.Contains(loc, "state=") {
		t.Errorf("state must travel in the Connect URL (%q), never in a cookie (%q)", loc, cookie)
	}
	// The next flow renews the same cookie's life, so that a flow started
	// late in the cookie's day does not come back to a browser without it.
	again := h.do(h.client, "POST", "/connect", url.Values{"customer_id": {"c"}, "customer_name": {"C"}, "products": {"company"}})
	renewed := again.header.Get("Set-Cookie")
	if value := func(c string) string { return strings.SplitN(c, ";", 2)[0] }; !strings.Contains(renewed, "Max-Age=86400") || value(renewed) != value(cookie) {
		t.Errorf("second flow's Set-Cookie = %q, want the same value as %q with a fresh Max-Age", renewed, cookie)
	}
}

func TestConnect_RateLimited(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) { c.ConnectLimit = server.RateLimit{PerMinute: 1, Burst: 2} })
	form := url.Values{"customer_id": {"r"}, "customer_name": {"R"}, "products": {"company"}}
	for i := range 2 {
		if res := h.do(h.client, "POST", "/connect", form); res.status != http.StatusSeeOther {
			t.Fatalf("POST /connect #%d = %d, want 303 within the burst", i+1, res.status)
		}
	}
	res := h.do(h.client, "POST", "/connect", form)
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
		t.Errorf("POST /connect past the burst = %d (Retry-After %q), want 429 with Retry-After", res.status, res.header.Get("Retry-After"))
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("the browser's 429 is %q, want a page", ct)
	}
	// The embedded flow's client gets the same refusal in JSON.
	req, _ := http.NewRequest("POST", h.ts.URL+"/connect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if status, code, err := h.jsonError(req); status != http.StatusTooManyRequests || err != nil || code != "rate_limited" {
		t.Errorf("embedded POST /connect past the burst = %d, error %q (decode: %v); want 429 in JSON, error rate_limited", status, code, err)
	}
}

// TestCallback_RefreshAfterStateExpiry: a refresh of a finished callback
// after its state has expired still shows the connection, from the ledger.
func TestCallback_RefreshAfterStateExpiry(t *testing.T) {
	clk := &testClock{}
	opts := clk.opts(openSQLiteAt(t, clk.Now))
	opts.stateTTL = 400 * time.Millisecond
	h := newHarness(t, opts)
	cb := h.connect(h.client, "late-1", "authorized_simple")
	first := h.do(h.client, "GET", cb, nil)
	if first.status != http.StatusSeeOther {
		t.Fatalf("callback = %d", first.status)
	}
	clk.Advance(time.Second)
	again := h.do(h.client, "GET", cb, nil)
	if again.status != http.StatusSeeOther || again.location != first.location {
		t.Errorf("refresh after the state expired = %d → %q, want → %q", again.status, again.location, first.location)
	}
	if got := h.exchanges(); got != 1 {
		t.Errorf("sandbox saw %d exchanges, want 1", got)
	}
}

// countingBackend counts the calls made to a backend, by method.
type countingBackend struct {
	tokenstore.Backend
	mu    sync.Mutex
	calls map[string]int
}

func (b *countingBackend) count(op string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[op]++
}

func (b *countingBackend) take() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = map[string]int{}
	return c
}

func (b *countingBackend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	b.count("GetRow")
	return b.Backend.GetRow(ctx, id)
}

func (b *countingBackend) PutRow(ctx context.Context, r tokenstore.Row, expect int64) (int64, error) {
	b.count("PutRow")
	return b.Backend.PutRow(ctx, r, expect)
}

func (b *countingBackend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	b.count("Txn")
	return b.Backend.Txn(ctx, t)
}

func (b *countingBackend) Claim(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	b.count("Claim")
	return b.Backend.Claim(ctx, key, v, ttl)
}

func (b *countingBackend) Load(ctx context.Context, key string) ([]byte, error) {
	b.count("Load")
	return b.Backend.Load(ctx, key)
}

func (b *countingBackend) Swap(ctx context.Context, key string, old, v []byte, ttl time.Duration) error {
	b.count("Swap")
	return b.Backend.Swap(ctx, key, old, v, ttl)
}

// TestServer_CallbackRoundTrips pins what a callback costs the store, the
// hot path's main expense (BENCHMARKS.md): read the state, claim the code
// and spend the state in one transaction (tokenstore.ClaimAllIf); store
// the new connection and settle the ledger in another
// (tokenstore.PutRowSwap). A duplicate of a finished callback
// loses the claim and reads the ledger. A re-authentication, whose
// connection is stored already, stages the token in the ledger first (the
// write-ahead), then replaces the stored connection.
func TestServer_CallbackRoundTrips(t *testing.T) {
	b := &countingBackend{Backend: tokenstore.NewMemory(), calls: map[string]int{}}
	h := newHarness(t, harnessOptions{backend: b})
	cb := h.connect(h.client, "acme-rt", "authorized_simple")
	b.take()
	id := h.finish(h.client, cb)
	got := b.take()
	delete(got, "Claim") // audit records, written in batches off the request path
	if diff := cmp.Diff(map[string]int{"Txn": 2}, got); diff != "" {
		t.Errorf("backend calls of one callback (-want +got):\n%s", diff)
	}
	if again := h.finish(h.client, cb); again != id {
		t.Errorf("the repeated callback led to %q, want %q", again, id)
	}
	got = b.take()
	delete(got, "Claim")
	if diff := cmp.Diff(map[string]int{"Txn": 1, "Load": 1}, got); diff != "" {
		t.Errorf("backend calls of a repeated callback (-want +got):\n%s", diff)
	}

	start := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{})
	if start.status != http.StatusSeeOther {
		t.Fatalf("POST reauthenticate = %d; body:\n%s", start.status, start.body)
	}
	reauth := h.signIn(h.client, start.location, "authorized_simple")
	b.take()
	if got := h.finish(h.client, reauth); got != id {
		t.Fatalf("re-authentication led to %q, want %q", got, id)
	}
	got = b.take()
	delete(got, "Claim")
	// ReplaceSwap reads the stored row and replaces it; it never tries an
	// insert.
	if diff := cmp.Diff(map[string]int{"Txn": 2, "Swap": 1, "GetRow": 1}, got); diff != "" {
		t.Errorf("backend calls of a re-authentication's callback (-want +got):\n%s", diff)
	}
}

// writesRow reports whether t writes a connection row: a vault write
// (tokenstore.PutRowSwap's transaction), not a claim.
func writesRow(t tokenstore.Txn) bool {
	for _, o := range t.Then {
		if o.Kind == tokenstore.PutRowOp {
			return true
		}
	}
	return false
}

// lostReplyBackend commits the first vault write and then reports an
// error, as when the store's answer is lost on the way back.
type lostReplyBackend struct {
	tokenstore.Backend
	lost atomic.Bool
}

func (b *lostReplyBackend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	res, err := b.Backend.Txn(ctx, t)
	if err == nil && writesRow(t) && b.lost.CompareAndSwap(false, true) {
		return tokenstore.TxnResult{Failed: -1}, errors.New("test: the answer was lost")
	}
	return res, err
}

// TestCallback_VaultWriteAnswerLost: the vault write commits but its answer
// is lost; the retry finds the connection stored and the ledger settled,
// and the callback ends as usual, with nothing for an operator to chase.
func TestCallback_VaultWriteAnswerLost(t *testing.T) {
	var logs bytes.Buffer
	b := &lostReplyBackend{Backend: tokenstore.NewMemory()}
	h := newHarnessWith(t, harnessOptions{backend: b}, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	cb := h.connect(h.client, "acme-lost", "authorized_simple")
	id := h.finish(h.client, cb)
	if !b.lost.Load() {
		t.Fatal("the vault write's answer was never lost; the test did not run its case")
	}
	if again := h.finish(h.client, cb); again != id {
		t.Errorf("the refreshed callback led to %q, want %q (a settled ledger)", again, id)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a recovered write logged an error:\n%s", logs.String())
	}
}

// refusedOnceBackend refuses the first vault write without writing anything,
// and records the values of the Swaps it passes on.
type refusedOnceBackend struct {
	tokenstore.Backend
	refused atomic.Bool
	mu      sync.Mutex
	swapped [][]byte
}

func (b *refusedOnceBackend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	if writesRow(t) && b.refused.CompareAndSwap(false, true) {
		return tokenstore.TxnResult{Failed: -1}, errors.New("test: the store is busy")
	}
	return b.Backend.Txn(ctx, t)
}

func (b *refusedOnceBackend) Swap(ctx context.Context, key string, old, v []byte, ttl time.Duration) error {
	b.mu.Lock()
	b.swapped = append(b.swapped, bytes.Clone(v))
	b.mu.Unlock()
	return b.Backend.Swap(ctx, key, old, v, ttl)
}

// TestCallback_FirstVaultWriteFails: a new connection's single vault write
// fails; the callback stages the sealed token in the ledger (the
// write-ahead) before trying again, and ends with the connection stored,
// the ledger settled and the staged copy sealed.
func TestCallback_FirstVaultWriteFails(t *testing.T) {
	b := &refusedOnceBackend{Backend: tokenstore.NewMemory()}
	h := newHarness(t, harnessOptions{backend: b})
	cb := h.connect(h.client, "acme-busy", "authorized_simple")
	id := h.finish(h.client, cb)
	if !b.refused.Load() {
		t.Fatal("no vault write was refused; the test did not run its case")
	}
	conn, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("the connection is not stored after the retried write: %v", err)
	}
	b.mu.Lock()
	staged := b.swapped
	b.mu.Unlock()
	if len(staged) != 1 || !bytes.Contains(staged[0], []byte(`"exchanged"`)) {
		t.Fatalf("ledger swaps = %q, want one write-ahead entry", staged)
	}
	if bytes.Contains(staged[0], []byte(conn.AccessToken.Reveal())) {
		t.Error("the write-ahead holds the token in plaintext")
	}
	if again := h.finish(h.client, cb); again != id {
		t.Errorf("the refreshed callback led to %q, want %q (a settled ledger)", again, id)
	}
}

// TestConnectionPage_ReadsFinchAtOnce: the page's two reads from Finch
// overlap. The stand-in holds the company answer until the directory
// request has arrived, so a page that read them one after the other would
// get the company's 503 (after 10 s) and show an error instead of both.
// When the company read fails, the page shows the failure and the
// directory's read does not hold it up.
func TestConnectionPage_ReadsFinchAtOnce(t *testing.T) {
	var (
		dirArrived = make(chan struct{})
		once       sync.Once
		failCo     atomic.Bool
	)
	fin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/employer/company":
			if failCo.Load() {
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"code":401,"name":"authentication_error","finch_code":"reauthenticate_user","message":"Please reauthenticate user"}`))
				return
			}
			select {
			case <-dirArrived:
			case <-time.After(10 * time.Second):
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"code":503,"name":"server_error","message":"the directory was never asked for while the company was"}`))
				return
			}
			w.Write([]byte(`{"id":"c","legal_name":"Overlap Inc","ein":"12-3456789","entity":{"type":"llc","subtype":null},"departments":[],"locations":[],"accounts":[]}`))
		case "/employer/directory":
			once.Do(func() { close(dirArrived) })
			if failCo.Load() {
				<-r.Context().Done() // held until the page gives up on it
				return
			}
			w.Write([]byte(`{"paging":{"count":1,"offset":0},"individuals":[{"id":"i1","first_name":"Ada","last_name":"Lovelace","middle_name":null,"is_active":true,"department":{"name":"Eng"},"manager":null}]}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(fin.Close)

	store := newTestStore(t, tokenstore.NewMemory())
	conn := finchconnect.Connection{ConnectionID: "conn-overlap", CustomerID: "c1", CustomerName: "Overlap", ProviderID: "gusto",
		Products: []string{"company", "directory"}, Status: finchconnect.StatusConnected, AccessToken: finchconnect.NewSecret("tok-overlap")}
	if err := store.Put(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	fc := &finch.Client{BaseURL: fin.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret"), MaxRetries: -1}
	srv, err := server.New(server.Config{PublicURL: "http://app.test"}, fc, store)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(srv)
	t.Cleanup(app.Close)

	get := func() string {
		t.Helper()
		res, err := http.Get(app.URL + "/connections/conn-overlap")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	page := get()
	if !strings.Contains(page, "Overlap Inc") || !strings.Contains(page, "Lovelace") || strings.Contains(page, `id="data-error"`) {
		t.Fatalf("page lacks the company or the directory, or shows an error; the reads did not overlap:\n%s", page)
	}

	failCo.Store(true)
	done := make(chan string, 1)
	go func() { done <- get() }()
	select {
	case page = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a failed company read left the page waiting on the directory's")
	}
	if !strings.Contains(page, `id="reauth-needed"`) || strings.Count(page, "sign in again") != 1 || strings.Contains(page, "Lovelace") {
		t.Errorf("page after a refused company read, want the re-authentication notice once and no directory:\n%s", page)
	}
}

// lostThenDownBackend commits the first vault write but loses its answer,
// then fails every later vault write, as a store that stops answering right
// after a write would.
type lostThenDownBackend struct {
	tokenstore.Backend
	calls atomic.Int64
}

func (b *lostThenDownBackend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	if !writesRow(t) {
		return b.Backend.Txn(ctx, t)
	}
	if b.calls.Add(1) > 1 {
		return tokenstore.TxnResult{Failed: -1}, errors.New("test: the store is down")
	}
	if res, err := b.Backend.Txn(ctx, t); err != nil {
		return res, err
	}
	return tokenstore.TxnResult{Failed: -1}, errors.New("test: the answer was lost")
}

// TestCallback_FirstWriteLandedThenStoreDown: the new connection's vault
// write lands but its answer is lost, and the store fails the writes after
// it. The callback must see from the ledger that the connection is stored
// and settled, and finish: not treat the token as unsaved, which without a
// journal means disconnecting it at Finch.
func TestCallback_FirstWriteLandedThenStoreDown(t *testing.T) {
	b := &lostThenDownBackend{Backend: tokenstore.NewMemory()}
	h := newHarness(t, harnessOptions{backend: b})
	id := h.finish(h.client, h.connect(h.client, "acme-lost-down", "authorized_simple"))
	if b.calls.Load() != 1 {
		t.Errorf("vault writes = %d, want the one that landed and no retry", b.calls.Load())
	}
	conn, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("the connection is not stored: %v", err)
	}
	fc := &finch.Client{BaseURL: h.ts.URL + "/finch"}
	if _, err := fc.Company(t.Context(), conn.AccessToken); err != nil {
		t.Errorf("the stored token no longer works at Finch (disconnected as unsaved?): %v", err)
	}
}

// vaultDownBackend fails vault writes (tokenstore.PutRowSwap's
// transactions) while down is set.
type vaultDownBackend struct {
	tokenstore.Backend
	down atomic.Bool
}

func (b *vaultDownBackend) Txn(ctx context.Context, t tokenstore.Txn) (tokenstore.TxnResult, error) {
	if writesRow(t) && b.down.Load() {
		return tokenstore.TxnResult{Failed: -1}, errors.New("test: the vault is down")
	}
	return b.Backend.Txn(ctx, t)
}

// TestRecover_KeepsANewerToken: a re-authentication is exchanged and
// staged but never reaches the vault; the employer re-authenticates again,
// and that one finishes. Recovering the first must not bring its older
// token back over the newer one.
func TestRecover_KeepsANewerToken(t *testing.T) {
	b := &vaultDownBackend{Backend: tokenstore.NewMemory()}
	var skew atomic.Int64 // the server's clock, ahead or behind the store's
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	h := newHarnessWith(t, harnessOptions{backend: b, clock: &skipClock{now: now}}, func(c *server.Config) { c.RecoverAfter = time.Minute })
	id := h.finish(h.client, h.connect(h.client, "acme-recover", "authorized_simple"))

	reauth := func() string {
		t.Helper()
		start := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{})
		if start.status != http.StatusSeeOther {
			t.Fatalf("POST reauthenticate = %d; body:\n%s", start.status, start.body)
		}
		return h.signIn(h.client, start.location, "authorized_simple")
	}

	// The first re-authentication, ten minutes ago, stages its token and
	// cannot store it.
	skew.Store(int64(-10 * time.Minute))
	first := reauth()
	b.down.Store(true)
	if res := h.do(h.client, "GET", first, nil); res.status == http.StatusSeeOther {
		t.Fatalf("the first re-authentication's callback stored its token with the vault down")
	}
	b.down.Store(false)

	// The second, now, finishes.
	skew.Store(0)
	if got := h.finish(h.client, reauth()); got != id {
		t.Fatalf("the second re-authentication led to %q, want %q", got, id)
	}
	newer, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}

	res, err := h.srv.Protocol().Recover(t.Context())
	if err != nil || res.Stored != 1 {
		t.Fatalf("Recover() = %+v, %v; want the staged callback settled as stored", res, err)
	}
	got, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.AccessToken.Equal(newer.AccessToken) {
		t.Error("recovery replaced the newer re-authentication's token with the older staged one")
	}
	if again := h.finish(h.client, first); again != id {
		t.Errorf("the first re-authentication's callback, refreshed, led to %q, want %q", again, id)
	}
}

// writesDownBackend fails every vault write and ledger swap while down is
// set: a store that went away between the callback's claim and its writes.
type writesDownBackend struct {
	vaultDownBackend
}

func (b *writesDownBackend) Swap(ctx context.Context, key string, old, v []byte, ttl time.Duration) error {
	if b.down.Load() {
		return errors.New("test: the store is down")
	}
	return b.Backend.Swap(ctx, key, old, v, ttl)
}

// TestCallback_ReauthStoreDownKeepsConnection: a re-authentication's new
// token can be saved nowhere (no journal). A new connection would be
// disconnected at Finch; this one must not be, since Finch's /disconnect
// revokes every token of the connection, the one the vault holds too.
func TestCallback_ReauthStoreDownKeepsConnection(t *testing.T) {
	b := &writesDownBackend{vaultDownBackend{Backend: tokenstore.NewMemory()}}
	h := newHarness(t, harnessOptions{backend: b, clock: &skipClock{}})
	id := h.finish(h.client, h.connect(h.client, "acme-reauth-down", "authorized_simple"))
	before, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}

	start := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{})
	if start.status != http.StatusSeeOther {
		t.Fatalf("POST reauthenticate = %d; body:\n%s", start.status, start.body)
	}
	cb := h.signIn(h.client, start.location, "authorized_simple")
	b.down.Store(true)
	res := h.do(h.client, "GET", cb, nil)
	b.down.Store(false)
	if res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, "as it was") {
		t.Errorf("callback with the store down = %d, want 503 saying the connection is unchanged; body:\n%s", res.status, res.body)
	}
	if n := h.sb.Stats().Requests["POST /disconnect"]; n != 0 {
		t.Errorf("POST /disconnect calls = %d, want 0", n)
	}
	got, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.AccessToken.Equal(before.AccessToken) || got.Status != finchconnect.StatusConnected {
		t.Errorf("the stored connection changed: status %q, same token %v", got.Status, got.AccessToken.Equal(before.AccessToken))
	}
	fc := &finch.Client{BaseURL: h.ts.URL + "/finch"}
	if _, err := fc.Company(t.Context(), got.AccessToken); err != nil {
		t.Errorf("the stored token no longer works at Finch: %v", err)
	}
}

// TestCallback_FollowersLeaveNothingBehind: callbacks refreshed after they
// settled follow the ledger; their waits must not stay registered, or a
// long-running replica would keep one entry per refreshed callback.
func TestCallback_FollowersLeaveNothingBehind(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	for i := range 3 {
		cb := h.connect(h.client, fmt.Sprintf("acme-refresh-%d", i), "authorized_simple")
		id := h.finish(h.client, cb)
		if again := h.finish(h.client, cb); again != id {
			t.Fatalf("refreshed callback led to %q, want %q", again, id)
		}
	}
	if n := h.srv.Protocol().Stats().Waiting; n != 0 {
		t.Errorf("waiters after every callback settled = %d, want 0", n)
	}
}

// claimFailsBackend fails every Claim while down is set.
type claimFailsBackend struct {
	rowReadFailsBackend
	down atomic.Bool
}

func (b *claimFailsBackend) Claim(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if b.down.Load() {
		return errors.New("test: the store is down")
	}
	return b.Backend.Claim(ctx, key, v, ttl)
}

// TestStoreDown_Pages: with the store failing, the browser's pages answer
// 503 (try again), not 500, and starting a connection sends nothing to
// Finch: its state is recorded before Finch is asked for a session.
func TestStoreDown_Pages(t *testing.T) {
	b := &claimFailsBackend{rowReadFailsBackend: rowReadFailsBackend{Backend: tokenstore.NewMemory()}}
	h := newHarness(t, harnessOptions{backend: b})
	id := h.finish(h.client, h.connect(h.client, "acme-down", "authorized_simple"))
	sessions := func() int {
		st := h.sb.Stats()
		return st.Requests["POST /connect/sessions"] + st.Requests["POST /connect/sessions/reauthenticate"]
	}
	before := sessions()

	b.down.Store(true)
	form := url.Values{"customer_id": {"acme-2"}, "customer_name": {"Acme 2"}, "products": {"company"}}
	if res := h.do(h.client, "POST", "/connect", form); res.status != http.StatusServiceUnavailable {
		t.Errorf("POST /connect with the store down = %d, want 503", res.status)
	}
	if res := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{}); res.status != http.StatusServiceUnavailable {
		t.Errorf("POST reauthenticate with the store down = %d, want 503", res.status)
	}
	if n := sessions() - before; n != 0 {
		t.Errorf("Connect sessions created at Finch with the store down = %d, want 0", n)
	}
	b.down.Store(false)

	b.n.Store(1)
	if res := h.do(h.client, "GET", "/connections/"+id, nil); res.status != http.StatusServiceUnavailable {
		t.Errorf("GET /connections/{id} with the store failing = %d, want 503", res.status)
	}
	b.n.Store(1)
	if res := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{}); res.status != http.StatusServiceUnavailable {
		t.Errorf("POST reauthenticate with the store failing = %d, want 503", res.status)
	}
}

// TestCallback_ReauthEndsInAnotherConnection: Finch answers a
// re-authentication's code with a connection other than the one being
// re-authenticated. That one is stored as a new connection and announced
// as created; the original keeps its token.
func TestCallback_ReauthEndsInAnotherConnection(t *testing.T) {
	var n atomic.Int64
	fin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/connect/sessions", "/connect/sessions/reauthenticate":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"session_id":"s","connect_url":"https://connect.test/authorize?session=s"}`)
		case "/auth/token":
			i := n.Add(1)
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","connection_id":"conn-%d","client_type":"sandbox","connection_type":"provider","entity_ids":[],"products":["company"],"provider_id":"gusto"}`, i, i)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer fin.Close()
	var log eventLog
	store := newTestStore(t, tokenstore.NewMemory())
	srv, err := server.New(server.Config{PublicURL: "http://app.test", Notify: log.notify},
		&finch.Client{BaseURL: fin.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret")}, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	first, err := srv.Protocol().StartFlow(ctx, connect.FlowRequest{CustomerID: "c", CustomerName: "C", Products: []string{"company"}, Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := completeFlow(ctx, srv, "code-1", first.State); err != nil || id != "conn-1" {
		t.Fatalf("CompleteFlow = %q, %v; want conn-1", id, err)
	}
	reauth, err := srv.Protocol().StartFlow(ctx, connect.FlowRequest{ConnectionID: "conn-1", Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := completeFlow(ctx, srv, "code-2", reauth.State)
	if err != nil || id != "conn-2" {
		t.Fatalf("re-authentication's CompleteFlow = %q, %v; want conn-2, the connection Finch answered with", id, err)
	}
	if got := strings.Join(log.types(), ","); got != finchconnect.EventConnectionCreated+","+finchconnect.EventConnectionCreated {
		t.Errorf("events = %s, want connection.created twice (no reauthenticated for conn-1)", got)
	}
	c1, err := store.Get(ctx, "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	if c1.AccessToken.Reveal() != "tok-1" || c1.Status != finchconnect.StatusConnected {
		t.Errorf("conn-1 has status %q and its token changed: %v", c1.Status, c1.AccessToken.Reveal() != "tok-1")
	}
	if _, err := store.Lookup(ctx, "conn-2"); err != nil {
		t.Errorf("conn-2 is not stored: %v", err)
	}
}

// TestDrain_WaitsForClaimedCallbacks: Drain returns once a callback that
// claimed its code has stored its connection, however long Finch took,
// and not before; with a deadline that passes first it says so.
func TestDrain_WaitsForClaimedCallbacks(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	cb := h.connect(h.client, "acme-drain", "authorized_simple")
	h.sb.InjectFault(sandbox.Fault{Route: "POST /auth/token", Latency: 700 * time.Millisecond, Count: 1})

	done := make(chan response, 1)
	go func() { done <- h.do(h.client, "GET", cb, nil) }()
	for deadline := time.Now().Add(5 * time.Second); h.srv.Protocol().Stats().InFlight == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the callback never claimed its code")
		}
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := h.srv.Protocol().Drain(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a deadline before the exchange ends = %v, want DeadlineExceeded", err)
	}
	if err := h.srv.Protocol().Drain(t.Context()); err != nil {
		t.Fatalf("Drain = %v", err)
	}
	list, _, err := h.store.List(t.Context(), tokenstore.Filter{})
	if err != nil || len(list) != 1 {
		t.Errorf("connections stored when Drain returned = %d (%v), want 1", len(list), err)
	}
	<-done
}

// TestConnect_RateLimitBehindProxy: behind a trusted proxy each browser
// has its own limit, read from the address the proxy appended to
// X-Forwarded-For; what the client wrote there itself does not count, and
// an untrusted peer's header is ignored.
func TestConnect_RateLimitBehindProxy(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) {
		c.ConnectLimit = server.RateLimit{PerMinute: 1, Burst: 1}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	form := url.Values{"customer_id": {"r"}, "customer_name": {"R"}, "products": {"company"}}
	post := func(xff ...string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", h.ts.URL+"/connect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, v := range xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := post("203.0.113.1"); got != http.StatusSeeOther {
		t.Fatalf("first browser = %d, want 303", got)
	}
	if got := post("203.0.113.2"); got != http.StatusSeeOther {
		t.Errorf("second browser behind the same proxy = %d, want 303 (its own limit)", got)
	}
	if got := post("198.51.100.7, 203.0.113.1"); got != http.StatusTooManyRequests {
		t.Errorf("first browser again, with a forged entry in front = %d, want 429", got)
	}
	if got := post("203.0.113.2", "127.0.0.1"); got != http.StatusTooManyRequests {
		t.Errorf("second browser again, through two trusted proxies = %d, want 429", got)
	}

	// A peer that is not a trusted proxy is counted by its own address.
	plain := newHarnessWith(t, harnessOptions{}, func(c *server.Config) { c.ConnectLimit = server.RateLimit{PerMinute: 1, Burst: 1} })
	h = plain
	if got := post("203.0.113.3"); got != http.StatusSeeOther {
		t.Fatalf("first request = %d, want 303", got)
	}
	if got := post("203.0.113.4"); got != http.StatusTooManyRequests {
		t.Errorf("second request claiming another address, no trusted proxy = %d, want 429", got)
	}
}

// lateJournal is a server.Journal whose tokenstore.Journal is opened after
// the server, on the harness's own store.
type lateJournal struct {
	j           *tokenstore.Journal
	afterReplay func() // called after each replay, before its callbacks are settled
}

func (l *lateJournal) Hold(c finchconnect.Connection, tag string) error { return l.j.Hold(c, tag) }
func (l *lateJournal) HoldReplacement(c finchconnect.Connection, tag string) error {
	return l.j.HoldReplacement(c, tag)
}
func (l *lateJournal) Pending() int { return l.j.Pending() }
func (l *lateJournal) Replay(ctx context.Context) ([]tokenstore.Replayed, error) {
	done, err := l.j.Replay(ctx)
	if l.afterReplay != nil {
		l.afterReplay()
	}
	return done, err
}

// TestCallback_StoredLateIsAnnounced: a connection that reaches the vault
// after its callback ended (from the journal, or by the recovery of its
// staged token) is announced to the app then, as the callback could not;
// also when its ledger entry expired during a long outage, and as the
// re-authentication it was.
func TestCallback_StoredLateIsAnnounced(t *testing.T) {
	journalled := func(t *testing.T, expire bool) {
		var log eventLog
		b := &writesDownBackend{vaultDownBackend{Backend: tokenstore.NewMemory()}}
		lj := &lateJournal{}
		h := newHarnessWith(t, harnessOptions{backend: b, clock: &skipClock{}}, func(c *server.Config) {
			c.Notify = log.notify
			c.Journal = lj
		})
		j, err := h.store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		lj.j = j
		cb := h.connect(h.client, "acme-journal", "authorized_simple")
		b.down.Store(true)
		if res := h.do(h.client, "GET", cb, nil); res.status != http.StatusAccepted {
			t.Fatalf("callback with the store down = %d, want 202 (held in the journal)", res.status)
		}
		b.down.Store(false)
		if len(log.types()) != 0 {
			t.Fatalf("events before the connection was stored: %v", log.types())
		}
		if expire { // the ledger entry outlived by the outage
			entries, err := b.Scan(t.Context(), "callback/", "", 0)
			if err != nil || len(entries) != 1 {
				t.Fatalf("ledger = %v, %v", entries, err)
			}
			if err := b.Forget(t.Context(), entries[0].Key); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := h.srv.Protocol().Replay(t.Context()); err != nil || n != 1 {
			t.Fatalf("Replay = %d, %v; want 1", n, err)
		}
		if _, err := h.store.Get(t.Context(), h.onlyConnectionID()); err != nil {
			t.Errorf("the replayed connection does not open: %v", err)
		}
		if got := log.types(); !slices.Equal(got, []string{finchconnect.EventConnectionCreated}) {
			t.Errorf("events after the replay = %v, want connection.created", got)
		}
	}
	t.Run("journal", func(t *testing.T) { journalled(t, false) })
	t.Run("journal, ledger entry expired", func(t *testing.T) { journalled(t, true) })

	recovered := func(t *testing.T, reauth bool) {
		var log eventLog
		b := &vaultDownBackend{Backend: tokenstore.NewMemory()}
		h := newHarnessWith(t, harnessOptions{backend: b, clock: &skipClock{}}, func(c *server.Config) {
			c.Notify = log.notify
			c.RecoverAfter = time.Nanosecond
		})
		cb := h.connect(h.client, "acme-recovered", "authorized_simple")
		want := finchconnect.EventConnectionCreated
		if reauth {
			id := h.finish(h.client, cb)
			start := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{})
			cb = h.signIn(h.client, start.location, "authorized_simple")
			want = finchconnect.EventConnectionReauthenticated
		}
		log.mu.Lock()
		log.events = nil
		log.mu.Unlock()
		b.down.Store(true)
		if res := h.do(h.client, "GET", cb, nil); res.status == http.StatusSeeOther {
			t.Fatal("the callback stored its connection with the vault down")
		}
		b.down.Store(false)
		if res, err := h.srv.Protocol().Recover(t.Context()); err != nil || res.Stored != 1 {
			t.Fatalf("Recover() = %+v, %v; want the staged connection stored", res, err)
		}
		if got := log.types(); !slices.Equal(got, []string{want}) {
			t.Errorf("events after the recovery = %v, want %s", got, want)
		}
	}
	t.Run("recovery", func(t *testing.T) { recovered(t, false) })
	t.Run("recovery of a re-authentication", func(t *testing.T) { recovered(t, true) })
}

// TestJournal_SettledAfterRecoverAndStoreErrors: a callback whose token
// waited in the journal shows its connection on refresh even when Recover,
// which cannot know the journal held the token, settled its ledger entry
// as interrupted first, and even when the store failed the first settle:
// SettleReplayed returns what it could not settle, for the next round.
func TestJournal_SettledAfterRecoverAndStoreErrors(t *testing.T) {
	b := &writesDownBackend{vaultDownBackend{Backend: tokenstore.NewMemory()}}
	lj := &lateJournal{}
	h := newHarnessWith(t, harnessOptions{backend: b, clock: &skipClock{}}, func(c *server.Config) {
		c.Journal = lj
		c.RecoverAfter = time.Nanosecond
	})
	j, err := h.store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	lj.j = j
	cb := h.connect(h.client, "acme-settle", "authorized_simple")
	b.down.Store(true)
	if res := h.do(h.client, "GET", cb, nil); res.status != http.StatusAccepted {
		t.Fatalf("callback with the store down = %d, want 202 (held in the journal)", res.status)
	}
	b.down.Store(false)
	if res, err := h.srv.Protocol().Recover(t.Context()); err != nil || res.Interrupted != 1 {
		t.Fatalf("Recover = %+v, %v; want the journaled callback's entry taken for interrupted", res, err)
	}
	if res := h.do(h.client, "GET", cb, nil); res.status != http.StatusConflict {
		t.Fatalf("refresh before the replay = %d, want 409 interrupted", res.status)
	}
	// The store goes down right after the journal's replay: the ledger
	// entry cannot be settled, and the next Replay settles it.
	lj.afterReplay = func() { b.down.Store(true) }
	if n, err := h.srv.Protocol().Replay(t.Context()); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	lj.afterReplay = nil
	if res := h.do(h.client, "GET", cb, nil); res.status == http.StatusSeeOther {
		t.Fatalf("refresh with the replayed callback unsettled = %d, want it not yet connected", res.status)
	}
	b.down.Store(false)
	if n, err := h.srv.Protocol().Replay(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Replay = %d, %v; want 0 tokens, and the callback left over settled", n, err)
	}
	if res := h.do(h.client, "GET", cb, nil); res.status != http.StatusSeeOther || !strings.HasPrefix(res.location, "/connections/"+h.onlyConnectionID()) {
		t.Errorf("refresh after the replay = %d → %q, want its connection", res.status, res.location)
	}
}
