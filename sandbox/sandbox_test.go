package sandbox_test

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// env is a sandbox on a real listener, mounted under /finch as the demo
// mounts it, to catch absolute-path mistakes.
type env struct {
	t  *testing.T
	sb *sandbox.Server
	ts *httptest.Server
}

func newEnv(t *testing.T, opts sandbox.Options) *env {
	t.Helper()
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	opts.PublicURL = ts.URL + "/finch"
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	mux.Handle("/finch/", http.StripPrefix("/finch", sb))
	return &env{t: t, sb: sb, ts: ts}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// call sends a request; auth is "basic", "bearer:TOKEN" or "".
func (e *env) call(method, path, auth string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.ts.URL+"/finch"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	switch {
	case auth == "basic":
		req.SetBasicAuth(sandbox.DefaultClientID, sandbox.DefaultClientSecret)
	case strings.HasPrefix(auth, "bearer:"):
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(auth, "bearer:"))
	}
	// A timeout, so that a sandbox that stops answering fails the test
	// instead of hanging it.
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.Header.Get("Finch-Request-Id") == "" {
		e.t.Errorf("%s %s: no Finch-Request-Id header", method, path)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

var (
	formRe  = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*>`)
	attrRe  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

func hidden(page string) (string, url.Values) {
	m := formRe.FindStringSubmatch(page)
	if m == nil {
		return "", nil
	}
	vals := url.Values{}
	for _, in := range inputRe.FindAllString(m[2], -1) {
		a := map[string]string{}
		for _, kv := range attrRe.FindAllStringSubmatch(in, -1) {
			a[kv[1]] = html.UnescapeString(kv[2])
		}
		vals.Add(a["name"], a["value"])
	}
	return strings.TrimPrefix(html.UnescapeString(m[1]), ""), vals
}

// connect runs Connect over plain HTTP and returns the code (and the
// location the sandbox redirected to).
func (e *env) connect(redirectURI, username, password string, products ...string) (string, string) {
	e.t.Helper()
	if len(products) == 0 {
		products = []string{"company", "directory", "individual", "employment", "payment", "pay_statement"}
	}
	body := map[string]any{"customer_id": "cust-1", "customer_name": "Acme", "products": products}
	if redirectURI != "" {
		body["redirect_uri"] = redirectURI
	}
	r := e.call("POST", "/connect/sessions", "basic", body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("POST /connect/sessions = %d %s", r.status, r.body)
	}
	connectURL := r.json(e.t)["connect_url"].(string)
	if !strings.HasPrefix(connectURL, e.ts.URL+"/finch/authorize?session=") {
		e.t.Fatalf("connect_url = %q, want it under the public URL", connectURL)
	}
	u, _ := url.Parse(connectURL)
	page := e.call("GET", "/authorize?"+u.RawQuery+"&state=st-1", "", nil)
	_, vals := hidden(string(page.body))
	vals.Set("provider", "gusto")
	creds := e.call("POST", "/authorize", "", vals)
	_, vals = hidden(string(creds.body))
	vals.Set("username", username)
	vals.Set("password", password)
	done := e.call("POST", "/authorize", "", vals)
	if redirectURI == "" {
		m := regexp.MustCompile(`id="code">([^<]+)<`).FindSubmatch(done.body)
		if m == nil {
			return "", string(done.body)
		}
		return string(m[1]), ""
	}
	loc, _ := url.Parse(done.header.Get("Location"))
	if loc == nil {
		return "", ""
	}
	return loc.Query().Get("code"), done.header.Get("Location")
}

// signIn opens the Connect page for query (a session's or the legacy
// static parameters), picks gusto if the page asks for a provider, signs
// in as username and returns the code of the redirect to cb.
func (e *env) signIn(query url.Values, username string) string {
	e.t.Helper()
	page := e.call("GET", "/authorize?"+query.Encode(), "", nil)
	_, vals := hidden(string(page.body))
	if page.status == http.StatusOK && vals.Get("step") == "" {
		vals.Set("provider", "gusto")
		page = e.call("POST", "/authorize", "", vals)
		_, vals = hidden(string(page.body))
	}
	if page.status != http.StatusOK || vals.Get("step") != "credentials" {
		e.t.Fatalf("Connect page for %v = %d, want the sign-in form:\n%s", query, page.status, page.body)
	}
	vals.Set("username", username)
	vals.Set("password", "letmein")
	done := e.call("POST", "/authorize", "", vals)
	loc, err := url.Parse(done.header.Get("Location"))
	if done.status != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		e.t.Fatalf("sign-in = %d → %q, want a redirect with a code", done.status, done.header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func (e *env) exchange(code, redirectURI string) resp {
	e.t.Helper()
	body := map[string]any{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret, "code": code}
	if redirectURI != "" {
		body["redirect_uri"] = redirectURI
	}
	return e.call("POST", "/auth/token", "", body)
}

func (e *env) token(username string, products ...string) string {
	e.t.Helper()
	code, _ := e.connect("http://localhost:3000/callback", username, "letmein", products...)
	r := e.exchange(code, "http://localhost:3000/callback")
	if r.status != http.StatusOK {
		e.t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	return r.json(e.t)["access_token"].(string)
}

const cb = "http://localhost:3000/callback"

func TestConnect_RedirectFlow(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	code, loc := e.connect(cb, "authorized_simple", "letmein")
	if code == "" || !strings.Contains(loc, "state=st-1") || !strings.HasPrefix(loc, cb+"?") {
		t.Fatalf("redirect = %q, want %s?code=…&state=st-1", loc, cb)
	}
	r := e.exchange(code, cb)
	if r.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	m := r.json(t)
	for _, k := range []string{"access_token", "token_type", "connection_id", "client_type", "connection_type", "entity_ids", "products", "provider_id", "customer_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("token response lacks %s: %s", k, r.body)
		}
	}
	if tok := m["access_token"].(string); len(tok) < 64 {
		t.Errorf("access token is %d hex chars, want ≥ 64 (256 bits)", len(tok))
	}
}

func TestConnect_PageErrorsAndCancel(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	code, page := e.connect(cb, "authorized_simple", "wrong")
	if code != "" {
		t.Fatal("a wrong password produced a code")
	}
	_ = page
	r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}, "redirect_uri": cb})
	u, _ := url.Parse(r.json(t)["connect_url"].(string))
	picker := e.call("GET", "/authorize?"+u.RawQuery+"&state=s9", "", nil)
	cancel := regexp.MustCompile(`id="cancel" href="([^"]+)"`).FindStringSubmatch(string(picker.body))
	if cancel == nil {
		t.Fatal("no cancel link on the Connect page")
	}
	cu, _ := url.Parse(html.UnescapeString(cancel[1]))
	back := e.call("GET", strings.TrimPrefix(cu.Path, "/finch")+"?"+cu.RawQuery, "", nil)
	loc := back.header.Get("Location")
	if back.status != http.StatusFound || !strings.Contains(loc, "error=access_denied") || !strings.Contains(loc, "state=s9") {
		t.Errorf("cancel = %d → %q, want a redirect with error=access_denied and the state", back.status, loc)
	}
	bad := e.call("GET", "/authorize?session=nope", "", nil)
	if bad.status != http.StatusBadRequest || !bytes.Contains(bad.body, []byte(`id="error"`)) {
		t.Errorf("unknown session = %d, want 400 with an error", bad.status)
	}
}

func TestSessions_Validation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	for _, tc := range []struct {
		name, auth string
		body       any
		want       int
	}{
		{"no auth", "", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}}, 401},
		{"no customer", "basic", map[string]any{"customer_name": "C", "products": []string{"company"}}, 400},
		{"bad product", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"gold"}}, 400},
		{"bad expiry", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}, "minutes_to_expire": 200000}, 400},
		{"unregistered redirect", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}, "redirect_uri": "http://evil.example/cb"}, 400},
		{"ok", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}}, 201},
	} {
		r := e.call("POST", "/connect/sessions", tc.auth, tc.body)
		if r.status != tc.want {
			t.Errorf("%s: POST /connect/sessions = %d %s, want %d", tc.name, r.status, r.body, tc.want)
		}
		if r.status >= 400 {
			m := r.json(t)
			if m["name"] == nil || m["code"] == nil || m["message"] == nil {
				t.Errorf("%s: error body %s lacks code/name/message", tc.name, r.body)
			}
		}
	}
}

// TestToken_ExactlyOneOfManyConcurrentExchanges races 50 exchanges of one
// code: exactly one succeeds.
func TestToken_ExactlyOneOfManyConcurrentExchanges(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	code, _ := e.connect(cb, "authorized_simple", "letmein")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for range 50 {
		wg.Go(func() {
			r := e.exchange(code, cb)
			mu.Lock()
			defer mu.Unlock()
			switch r.status {
			case 200:
				ok++
			case 400:
				refused++
			}
		})
	}
	wg.Wait()
	if ok != 1 || refused != 49 {
		t.Errorf("50 concurrent exchanges: %d succeeded, %d refused; want 1 and 49", ok, refused)
	}
	if s := e.sb.Stats(); s.TokenExchanges != 1 || s.FailedExchanges != 49 {
		t.Errorf("Stats = %+v, want 1 exchange and 49 failures", s)
	}
}

func TestToken_Rules(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	code, _ := e.connect(cb, "authorized_simple", "letmein")
	if r := e.exchange(code, ""); r.status != 400 || r.json(t)["name"] != "invalid_grant_error" {
		t.Errorf("redirect-flow code without redirect_uri = %d %s, want 400 invalid_grant_error", r.status, r.body)
	}
	if r := e.exchange(code, cb+"x"); r.status != 400 {
		t.Errorf("redirect-flow code with another redirect_uri = %d, want 400", r.status)
	}
	bad := e.call("POST", "/auth/token", "", map[string]any{"client_id": "x", "client_secret": "y", "code": code})
	if bad.status != 401 || bad.json(t)["name"] != "invalid_client_error" {
		t.Errorf("wrong client = %d %s, want 401 invalid_client_error", bad.status, bad.body)
	}
	// Basic + form, as older clients send.
	form := e.call("POST", "/auth/token", "basic", url.Values{"code": {code}, "redirect_uri": {cb}})
	if form.status != 200 {
		t.Errorf("Basic+form exchange = %d %s", form.status, form.body)
	}
	if again := e.exchange(code, cb); again.status != 400 {
		t.Errorf("reused code = %d, want 400", again.status)
	}

	// Embedded codes must come without redirect_uri.
	emb, page := e.connect("", "authorized_simple", "letmein")
	if emb == "" || !strings.Contains(page+`"finch-auth-message-v2"`, "finch-auth-message-v2") {
		t.Fatalf("embedded flow gave no code")
	}
	if r := e.exchange(emb, cb); r.status != 400 {
		t.Errorf("embedded code with redirect_uri = %d, want 400", r.status)
	}
	if r := e.exchange(emb, ""); r.status != 200 {
		t.Errorf("embedded code without redirect_uri = %d %s, want 200", r.status, r.body)
	}

	// Expiry, through the clock.
	late, _ := e.connect(cb, "authorized_simple", "letmein")
	if r := e.call("POST", "/_sandbox/clock", "", `{"advance":"11m"}`); r.status != 200 {
		t.Fatalf("advance clock = %d", r.status)
	}
	if r := e.exchange(late, cb); r.status != 400 || !bytes.Contains(r.body, []byte("expired")) {
		t.Errorf("exchange after 11 minutes = %d %s, want 400 expired", r.status, r.body)
	}
}

func TestToken_RevokeOnReuse(t *testing.T) {
	e := newEnv(t, sandbox.Options{RevokeOnReuse: true})
	code, _ := e.connect(cb, "authorized_simple", "letmein")
	tok := e.exchange(code, cb).json(t)["access_token"].(string)
	if r := e.call("GET", "/introspect", "bearer:"+tok, nil); r.status != 200 {
		t.Fatalf("introspect = %d", r.status)
	}
	e.exchange(code, cb)
	if r := e.call("GET", "/introspect", "bearer:"+tok, nil); r.status != 401 {
		t.Errorf("after the code was reused the token answers %d, want 401 (revoked)", r.status)
	}
}

func TestData_ScopeEntitiesDirectoryAndDisconnect(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_complex")
	in := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)
	if in["connection_status"].(map[string]any)["status"] != "connected" {
		t.Errorf("introspect = %v", in)
	}
	co := e.call("GET", "/employer/company", "bearer:"+tok, nil).json(t)
	if co["legal_name"] == nil || co["ein"] == nil {
		t.Errorf("company = %v", co)
	}
	// A full walk of the directory, three pages and more.
	seen := map[string]bool{}
	count := -1
	for offset := 0; ; {
		r := e.call("GET", "/employer/directory?limit=100&offset="+itoa(offset), "bearer:"+tok, nil).json(t)
		paging := r["paging"].(map[string]any)
		count = int(paging["count"].(float64))
		ind := r["individuals"].([]any)
		for _, p := range ind {
			seen[p.(map[string]any)["id"].(string)] = true
		}
		offset += len(ind)
		if len(ind) == 0 || offset >= count {
			break
		}
	}
	if count < 300 || len(seen) != count {
		t.Errorf("directory walk saw %d distinct people of %d, want several hundred, all distinct", len(seen), count)
	}
	// Entities: a connection with three; one filters, two is refused.
	ents := in["entities"].([]any)
	if len(ents) != 3 {
		t.Fatalf("authorized_complex has %d entities, want 3", len(ents))
	}
	e1 := ents[0].(map[string]any)["id"].(string)
	part := e.call("GET", "/employer/directory?entity_ids[]="+e1, "bearer:"+tok, nil).json(t)
	if n := int(part["paging"].(map[string]any)["count"].(float64)); n == 0 || n >= count {
		t.Errorf("one entity's directory has %d people of %d", n, count)
	}
	if r := e.call("GET", "/employer/directory?entity_ids="+e1+"&entity_ids=x", "bearer:"+tok, nil); r.status != 400 {
		t.Errorf("two entity_ids = %d, want 400", r.status)
	}
	// Batch reads.
	first := ""
	for id := range seen {
		first = id
		break
	}
	ind := e.call("POST", "/employer/individual", "bearer:"+tok, map[string]any{"requests": []map[string]string{{"individual_id": first}, {"individual_id": "nope"}}}).json(t)
	rs := ind["responses"].([]any)
	if len(rs) != 2 || rs[0].(map[string]any)["code"].(float64) != 200 || rs[1].(map[string]any)["code"].(float64) != 404 {
		t.Errorf("individual batch = %v", ind)
	}
	emp := e.call("POST", "/employer/employment", "bearer:"+tok, map[string]any{"requests": []map[string]string{{"individual_id": first}}}).json(t)
	if emp["responses"].([]any)[0].(map[string]any)["body"].(map[string]any)["income"] == nil {
		t.Errorf("employment = %v", emp)
	}
	now := time.Now()
	pay := e.call("GET", "/employer/payment?start_date="+now.AddDate(-1, 0, 0).Format(time.DateOnly)+"&end_date="+now.Format(time.DateOnly), "bearer:"+tok, nil)
	var payments []map[string]any
	json.Unmarshal(pay.body, &payments)
	if pay.status != 200 || len(payments) == 0 {
		t.Fatalf("payments = %d %s", pay.status, pay.body)
	}
	if r := e.call("GET", "/employer/payment", "bearer:"+tok, nil); r.status != 400 {
		t.Errorf("payments without dates = %d, want 400", r.status)
	}
	// The payment that pays the most people: small pay groups (interns,
	// contractors) may pay fewer than the page asked for.
	biggest := payments[0]
	for _, p := range payments {
		if ids, _ := p["individual_ids"].([]any); len(ids) > len(biggest["individual_ids"].([]any)) {
			biggest = p
		}
	}
	if len(biggest["individual_ids"].([]any)) <= 5 {
		t.Fatalf("no payment pays more than 5 people: %v", payments)
	}
	ps := e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": []map[string]any{{"payment_id": biggest["id"], "limit": 5}}}).json(t)
	body := ps["responses"].([]any)[0].(map[string]any)["body"].(map[string]any)
	if len(body["pay_statements"].([]any)) != 5 {
		t.Errorf("pay statements = %v", body)
	}

	// Scope: a token without the payment product.
	narrow := e.token("authorized_simple", "company")
	if r := e.call("GET", "/employer/directory", "bearer:"+narrow, nil); r.status != 403 || r.json(t)["name"] != "insufficient_scope_error" {
		t.Errorf("directory without the product = %d %s, want 403 insufficient_scope_error", r.status, r.body)
	}

	// Disconnect revokes every token of the connection.
	if r := e.call("POST", "/disconnect", "bearer:"+tok, nil); r.status != 200 {
		t.Fatalf("disconnect = %d", r.status)
	}
	for _, p := range []string{"/introspect", "/employer/company"} {
		if r := e.call("GET", p, "bearer:"+tok, nil); r.status != 401 {
			t.Errorf("GET %s after disconnect = %d, want 401", p, r.status)
		}
	}
	if r := e.call("GET", "/employer/company", "", nil); r.status != 401 || r.json(t)["name"] != "unauthorized_request_error" {
		t.Errorf("no token = %d %s", r.status, r.body)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestReauth_ScenarioAndSession(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("reauthorization")
	var last resp
	for range 6 {
		last = e.call("GET", "/employer/company", "bearer:"+tok, nil)
	}
	if last.status != 401 || last.json(t)["finch_code"] != "reauthenticate_user" {
		t.Fatalf("reauthorization scenario after 6 calls = %d %s, want 401 reauthenticate_user", last.status, last.body)
	}
	conn := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_id"].(string)
	r := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn, "redirect_uri": cb})
	if r.status != 201 {
		t.Fatalf("reauthenticate session = %d %s", r.status, r.body)
	}
	u, _ := url.Parse(r.json(t)["connect_url"].(string))
	page := e.call("GET", "/authorize?"+u.RawQuery, "", nil)
	_, vals := hidden(string(page.body))
	vals.Set("username", "reauthorization")
	vals.Set("password", "letmein")
	done := e.call("POST", "/authorize", "", vals)
	loc, _ := url.Parse(done.header.Get("Location"))
	res := e.exchange(loc.Query().Get("code"), cb).json(t)
	if res["connection_id"] != conn || res["access_token"] == tok {
		t.Errorf("re-authentication gave connection %v (want %s) and a new token? %v", res["connection_id"], conn, res["access_token"] != tok)
	}
	if r := e.call("GET", "/employer/company", "bearer:"+res["access_token"].(string), nil); r.status != 200 {
		t.Errorf("company with the new token = %d", r.status)
	}
}

func TestSandboxAPI(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	r := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "employee_size": 7})
	if r.status != 200 {
		t.Fatalf("POST /sandbox/connections = %d %s", r.status, r.body)
	}
	tok := r.json(t)["access_token"].(string)
	dir := e.call("GET", "/employer/directory", "bearer:"+tok, nil).json(t)
	if n := dir["paging"].(map[string]any)["count"].(float64); n != 7 {
		t.Errorf("employee_size 7 gave %v people", n)
	}
	e.call("POST", "/sandbox/directory", "bearer:"+tok, []map[string]any{{"first_name": "New", "last_name": "Hire"}})
	dir = e.call("GET", "/employer/directory", "bearer:"+tok, nil).json(t)
	if n := dir["paging"].(map[string]any)["count"].(float64); n != 8 {
		t.Errorf("after POST /sandbox/directory the directory has %v people, want 8", n)
	}
	e.call("PUT", "/sandbox/company", "bearer:"+tok, map[string]any{"legal_name": "Renamed LLC", "ein": nil, "entity": nil, "primary_email": nil, "primary_phone_number": nil, "departments": nil, "locations": nil, "accounts": nil})
	if co := e.call("GET", "/employer/company", "bearer:"+tok, nil).json(t); co["legal_name"] != "Renamed LLC" {
		t.Errorf("company after PUT = %v", co["legal_name"])
	}
	if r := e.call("PUT", "/sandbox/connections/accounts", "bearer:"+tok, map[string]any{"connection_status": "reauth"}); r.status != 200 {
		t.Fatalf("PUT accounts = %d", r.status)
	}
	if r := e.call("GET", "/employer/company", "bearer:"+tok, nil); r.status != 401 {
		t.Errorf("company in reauth = %d, want 401", r.status)
	}
	if p := e.call("GET", "/providers", "", nil); p.status != 200 || bytes.Count(p.body, []byte(`"display_name"`)) < 6 {
		t.Errorf("providers = %d, want at least six", p.status)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	if r := e.call("POST", "/_sandbox/faults", "", `{"route":"GET /employer/company","status":429,"retry_after":"2s","count":2}`); r.status != 201 {
		t.Fatalf("add fault = %d", r.status)
	}
	for i := range 2 {
		r := e.call("GET", "/employer/company", "bearer:"+tok, nil)
		if r.status != 429 || r.header.Get("Retry-After") != "2" || r.json(t)["name"] != "rate_limit_exceeded_error" {
			t.Errorf("faulted call %d = %d (Retry-After %q) %s", i, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if r := e.call("GET", "/employer/company", "bearer:"+tok, nil); r.status != 200 {
		t.Errorf("after the fault's count the call = %d, want 200", r.status)
	}
	e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Malformed: true})
	if r := e.call("GET", "/employer/company", "bearer:"+tok, nil); json.Valid(r.body) {
		t.Errorf("malformed fault gave valid JSON %s", r.body)
	}
	e.call("DELETE", "/_sandbox/faults", "", nil)
	e.sb.InjectFault(sandbox.Fault{Latency: 150 * time.Millisecond, Count: 1})
	start := time.Now()
	e.call("GET", "/providers", "", nil)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("latency fault: the call took %v", d)
	}
}

func TestPersistence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{DataFile: file})
	tok := e.token("authorized_simple")
	name := e.call("GET", "/employer/company", "bearer:"+tok, nil).json(t)["legal_name"]
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, sandbox.Options{DataFile: file})
	r := e2.call("GET", "/employer/company", "bearer:"+tok, nil)
	if r.status != 200 || r.json(t)["legal_name"] != name {
		t.Errorf("after a restart the token gives %d %s, want the same company %v", r.status, r.body, name)
	}
}

// TestConnect_LegacyStaticURL opens the Connect page with the pre-session
// parameters that old SDK helpers still build.
func TestConnect_LegacyStaticURL(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	q := url.Values{"client_id": {sandbox.DefaultClientID}, "products": {"company directory"}, "redirect_uri": {cb}, "state": {"legacy"}, "payroll_provider": {"gusto"}, "sandbox": {"true"}}
	page := e.call("GET", "/authorize?"+q.Encode(), "", nil)
	if page.status != 200 || !bytes.Contains(page.body, []byte(`id="password"`)) {
		t.Fatalf("legacy authorize with payroll_provider = %d, want the sign-in form:\n%s", page.status, page.body)
	}
	_, vals := hidden(string(page.body))
	vals.Set("username", "authorized_simple")
	vals.Set("password", "letmein")
	done := e.call("POST", "/authorize", "", vals)
	loc, _ := url.Parse(done.header.Get("Location"))
	if done.status != 302 || loc.Query().Get("state") != "legacy" || loc.Query().Get("code") == "" {
		t.Fatalf("legacy sign-in = %d → %q", done.status, done.header.Get("Location"))
	}
	if r := e.exchange(loc.Query().Get("code"), cb); r.status != 200 {
		t.Errorf("legacy code exchange = %d %s", r.status, r.body)
	}
	if r := e.call("GET", "/authorize?client_id=someone-else&products=company", "", nil); r.status != 400 {
		t.Errorf("legacy URL with an unknown client_id = %d, want 400", r.status)
	}
}
