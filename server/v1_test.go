package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/server"
)

// apiClient calls the /v1 API with one key and holds every answer to the
// OpenAPI document: its status must be documented for the operation, and a
// JSON body must validate against the documented schema.
type apiClient struct {
	h   *harness
	key string
	doc apiDoc
}

func (h *harness) apiKey(scope string) string {
	h.t.Helper()
	key, _, err := apikey.Create(h.t.Context(), h.backend, "test", scope)
	if err != nil {
		h.t.Fatal(err)
	}
	return key.Reveal()
}

func (h *harness) api(scope string) *apiClient {
	h.t.Helper()
	c := &apiClient{h: h}
	if scope != "" {
		c.key = h.apiKey(scope)
	}
	res := h.do(http.DefaultClient, "GET", "/v1/openapi.json", nil)
	doc, err := parseAPIDoc([]byte(res.body))
	if err != nil {
		h.t.Fatalf("GET /v1/openapi.json: %v", err)
	}
	c.doc = doc
	return c
}

// docPath maps a request path to the documented path template.
var docPath = []struct {
	re   *regexp.Regexp
	path string
}{
	{regexp.MustCompile(`^/v1/connections/[^/]+/finch/.+$`), "/v1/connections/{id}/finch/{path}"},
	{regexp.MustCompile(`^/v1/connections/[^/]+/reauthenticate$`), "/v1/connections/{id}/reauthenticate"},
	{regexp.MustCompile(`^/v1/connections/[^/]+/changes$`), "/v1/connections/{id}/changes"},
	{regexp.MustCompile(`^/v1/connections/[^/]+/records/[^/]+$`), "/v1/connections/{id}/records/{kind}"},
	{regexp.MustCompile(`^/v1/connections/[^/]+/records/[^/]+/[^/]+$`), "/v1/connections/{id}/records/{kind}/{record_id}"},
	{regexp.MustCompile(`^/v1/connections/[^/]+$`), "/v1/connections/{id}"},
	{regexp.MustCompile(`^/v1/[a-z/.]+$`), ""},
}

func templateOf(path string) string {
	p, _, _ := strings.Cut(path, "?")
	for _, d := range docPath {
		if d.re.MatchString(p) {
			if d.path != "" {
				return d.path
			}
			break
		}
	}
	return p
}

func (c *apiClient) call(method, path, body string) response {
	c.h.t.Helper()
	return c.callWith(method, path, body, nil)
}

// callWith is call with extra request headers.
func (c *apiClient) callWith(method, path, body string, header http.Header) response {
	c.h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.h.ts.URL+path, rd)
	if err != nil {
		c.h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, body: string(b), header: res.Header}
	c.checkDocumented(method, path, out)
	return out
}

// checkDocumented fails the test if the OpenAPI document does not describe
// the answer a real handler gave: its status for the operation, and its
// JSON body. A 500 is a bug of its own, reported by the test that sees it.
func (c *apiClient) checkDocumented(method, path string, r response) {
	c.h.t.Helper()
	if r.status == http.StatusInternalServerError {
		return
	}
	for _, problem := range c.doc.check(method, templateOf(path), r.status, r.header, []byte(r.body)) {
		c.h.t.Errorf("%s %s answered %d, which the OpenAPI document does not describe: %s", method, path, r.status, problem)
	}
}

func TestAPI_Auth(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	h := newHarness(t, harnessOptions{now: clock})
	read := h.api(apikey.ScopeRead)
	none := h.api("")
	wrong := h.api("")
	wrong.key = "fck_000000000000_nope"
	if r := none.call("GET", "/v1/connections", ""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no key = %d, want 401 with WWW-Authenticate", r.status)
	}
	if r := wrong.call("GET", "/v1/connections", ""); r.status != http.StatusUnauthorized {
		t.Errorf("wrong key = %d, want 401", r.status)
	}
	if r := read.call("GET", "/v1/connections", ""); r.status != http.StatusOK {
		t.Errorf("read key on GET = %d, want 200: %s", r.status, r.body)
	}
	if r := read.call("POST", "/v1/connect/sessions", `{"customer_id":"c","customer_name":"C","products":["company"]}`); r.status != http.StatusForbidden {
		t.Errorf("read key on POST /v1/connect/sessions = %d, want 403", r.status)
	}
	id := strings.Split(read.key, "_")[1]
	if err := apikey.Revoke(t.Context(), h.backend, id); err != nil {
		t.Fatal(err)
	}
	// The server remembers a key's record for DefaultAPIKeyCacheTTL: the
	// revocation shows once that has passed.
	mu.Lock()
	now = now.Add(server.DefaultAPIKeyCacheTTL)
	mu.Unlock()
	if r := read.call("GET", "/v1/connections", ""); r.status != http.StatusUnauthorized {
		t.Errorf("revoked key, %v later = %d, want 401", server.DefaultAPIKeyCacheTTL, r.status)
	}
}

// TestAPI_AuthNoCache: with a negative APIKeyCacheTTL a revocation shows
// on the next request.
func TestAPI_AuthNoCache(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) { c.APIKeyCacheTTL = -1 })
	read := h.api(apikey.ScopeRead)
	if r := read.call("GET", "/v1/connections", ""); r.status != http.StatusOK {
		t.Fatalf("read key on GET = %d, want 200: %s", r.status, r.body)
	}
	if err := apikey.Revoke(t.Context(), h.backend, strings.Split(read.key, "_")[1]); err != nil {
		t.Fatal(err)
	}
	if r := read.call("GET", "/v1/connections", ""); r.status != http.StatusUnauthorized {
		t.Errorf("revoked key = %d, want 401", r.status)
	}
}

// connectViaAPI runs a redirect flow started through the API and returns
// the connection id.
func connectViaAPI(t *testing.T, h *harness, api *apiClient, customer string) string {
	t.Helper()
	r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"`+customer+`","customer_name":"API customer","products":["company","directory","individual"],"return_url":"`+h.ts.URL+`/app/done"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/connect/sessions = %d: %s", r.status, r.body)
	}
	var flow struct {
		ConnectURL string `json:"connect_url"`
		State      string `json:"state"`
	}
	json.Unmarshal([]byte(r.body), &flow)
	// A browser that never visited finchconnect completes it: the state
	// alone authorises an app-started flow.
	b := newBrowser(t)
	cb := h.signIn(b, flow.ConnectURL, "authorized_simple")
	done := h.do(b, "GET", cb, nil)
	u, err := url.Parse(done.location)
	if done.status != http.StatusSeeOther || err != nil || u.Path != "/app/done" || u.Query().Get("connection_id") == "" {
		t.Fatalf("callback of an API flow = %d → %q, want the return_url with connection_id", done.status, done.location)
	}
	return u.Query().Get("connection_id")
}

func TestAPI_Routes(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	api := h.api(apikey.ScopeWrite)
	id := connectViaAPI(t, h, api, "api-1")

	if r := api.call("GET", "/v1/connections/"+id, ""); r.status != http.StatusOK || !strings.Contains(r.body, `"customer_id":"api-1"`) || strings.Contains(r.body, "access_token") {
		t.Errorf("GET connection = %d %s; want it, without any token field", r.status, r.body)
	}
	if r := api.call("GET", "/v1/connections/nope", ""); r.status != http.StatusNotFound {
		t.Errorf("GET unknown connection = %d, want 404", r.status)
	}
	if r := api.call("GET", "/v1/connections?customer_id=api-1&limit=10", ""); r.status != http.StatusOK || !strings.Contains(r.body, id) {
		t.Errorf("list by customer = %d %s", r.status, r.body)
	}
	if r := api.call("GET", "/v1/connections?customer_id=other", ""); !strings.Contains(r.body, `"data":[]`) {
		t.Errorf("list by another customer = %s, want no data", r.body)
	}
	if r := api.call("GET", "/v1/connections?limit=501", ""); r.status != http.StatusBadRequest {
		t.Errorf("limit=501 = %d, want 400", r.status)
	}
	if r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"x","products":["company"],"bogus":1}`); r.status != http.StatusBadRequest || !strings.Contains(r.body, "unknown field") {
		t.Errorf("unknown field = %d %s, want 400 naming it", r.status, r.body)
	}
	if r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"x","customer_name":"X","products":["company"],"return_url":"https://evil.example/steal"}`); r.status != http.StatusBadRequest {
		t.Errorf("foreign return_url = %d, want 400 (no open redirect)", r.status)
	}
	if r := api.call("POST", "/v1/connections/"+id+"/reauthenticate", `{}`); r.status != http.StatusCreated || !strings.Contains(r.body, "connect_url") {
		t.Errorf("reauthenticate = %d %s", r.status, r.body)
	}
	// Products are checked on a re-authentication as on a new flow: a typo
	// is the caller's 400, never Finch's refusal passed on as a 502.
	sessions := h.sb.Stats().Requests["POST /connect/sessions/reauthenticate"]
	if sessions == 0 {
		t.Fatal("the sandbox counted no re-authentication session; the count below would prove nothing")
	}
	if r := api.call("POST", "/v1/connections/"+id+"/reauthenticate", `{"products":["bogus"]}`); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, `"invalid_request"`) || !strings.Contains(r.body, `\"bogus\" is not a Finch product`) {
		t.Errorf("reauthenticate with an unknown product = %d %s, want 400 invalid_request naming it", r.status, r.body)
	}
	// Every product Finch accepts is valid, the deprecated "deduction"
	// too, but not with "benefits", which replaced it.
	if r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"d","customer_name":"D","products":["company","deduction"]}`); r.status != http.StatusCreated {
		t.Errorf("a session with deduction = %d %s, want 201", r.status, r.body)
	}
	if r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"d","customer_name":"D","products":["benefits","deduction"]}`); r.status != http.StatusBadRequest || !strings.Contains(r.body, "deprecated") {
		t.Errorf("a session with benefits and deduction = %d %s, want 400 naming the alias", r.status, r.body)
	}
	if got := h.sb.Stats().Requests["POST /connect/sessions/reauthenticate"]; got != sessions {
		t.Errorf("a refused re-authentication reached Finch (%d session requests, want %d)", got, sessions)
	}

	// Embedded flow through the API: complete exactly once.
	r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"api-emb","customer_name":"Embedded","products":["company"],"embedded":true}`)
	var flow struct{ ConnectURL, State string }
	json.Unmarshal([]byte(strings.NewReplacer(`"connect_url"`, `"ConnectURL"`, `"state"`, `"State"`).Replace(r.body)), &flow)
	page := h.signInPage(newBrowser(t), flow.ConnectURL, "authorized_simple")
	m := regexp.MustCompile(`"code":\s*"([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no code on the embedded page:\n%s", page)
	}
	before := h.exchanges()
	body := `{"code":"` + m[1] + `","state":"` + flow.State + `"}`
	first := api.call("POST", "/v1/connect/complete", body)
	second := api.call("POST", "/v1/connect/complete", body)
	if first.status != http.StatusOK || second.status != http.StatusOK || !strings.Contains(second.body, "api-emb") {
		t.Errorf("complete twice = %d, %d (%s), want 200 twice with the connection", first.status, second.status, second.body)
	}
	if got := h.exchanges() - before; got != 1 {
		t.Errorf("completing twice made %d exchanges, want 1", got)
	}

	// DELETE disconnects at Finch, then forgets.
	conn, _ := h.store.Get(t.Context(), id)
	if r := api.call("DELETE", "/v1/connections/"+id, ""); r.status != http.StatusNoContent {
		t.Errorf("DELETE = %d %s, want 204", r.status, r.body)
	}
	if r := api.call("GET", "/v1/connections/"+id, ""); r.status != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", r.status)
	}
	introspect := h.doBearer("GET", "/finch/introspect", conn.AccessToken.Reveal())
	if introspect.status != http.StatusUnauthorized {
		t.Errorf("the token after DELETE: Finch answered %d, want 401", introspect.status)
	}
}

func (h *harness) doBearer(method, path, token string) response {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: string(b), header: res.Header}
}

func TestAPI_Proxy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	write := h.api(apikey.ScopeWrite)
	read := h.api(apikey.ScopeRead)
	id := connectViaAPI(t, h, write, "proxy-1")
	base := "/v1/connections/" + id + "/finch/"

	r := read.call("GET", base+"employer/company", "")
	if r.status != http.StatusOK || !strings.Contains(r.body, "legal_name") || r.header.Get("Finch-Request-Id") == "" {
		t.Errorf("proxied company = %d (Finch-Request-Id %q) %s", r.status, r.header.Get("Finch-Request-Id"), r.body)
	}
	if strings.Contains(r.body, "Bearer") {
		t.Error("the proxied body mentions a bearer token")
	}
	r = read.call("GET", base+"employer/directory?limit=2&offset=1", "")
	var dir struct {
		Individuals []json.RawMessage `json:"individuals"`
		Paging      struct{ Offset int }
	}
	if json.Unmarshal([]byte(r.body), &dir); r.status != http.StatusOK || len(dir.Individuals) != 2 || dir.Paging.Offset != 1 {
		t.Errorf("proxied directory with a query = %d, %d individuals, offset %d", r.status, len(dir.Individuals), dir.Paging.Offset)
	}
	if r := read.call("POST", base+"employer/individual", `{"requests":[]}`); r.status == http.StatusForbidden {
		t.Errorf("a batch read with a read key = 403, want it allowed")
	}
	if r := read.call("PUT", base+"employer/benefits/x", `{}`); r.status != http.StatusForbidden {
		t.Errorf("a write with a read key = %d, want 403", r.status)
	}

	attempts := []string{
		"auth/token", "disconnect", "connect/sessions", "sandbox/company", "_sandbox/stats",
		"employer/..%2f..%2fdisconnect", "employer/%2e%2e/disconnect", "employer%2fcompany",
		"//evil.example/x", "employer/..\\disconnect", "http://evil.example/employer/company",
		"employer/%5c..%5cdisconnect",
	}
	for _, p := range attempts {
		req, _ := http.NewRequest("GET", h.ts.URL+base+p, nil)
		if req == nil {
			continue
		}
		req.Header.Set("Authorization", "Bearer "+write.key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMovedPermanently && res.StatusCode != http.StatusBadRequest {
			t.Errorf("proxy %q = %d %s, want it refused", p, res.StatusCode, bytes.TrimSpace(b))
		}
	}
	// The token still works: none of the attempts disconnected it.
	if r := read.call("GET", base+"employer/company", ""); r.status != http.StatusOK {
		t.Errorf("after the SSRF attempts the proxy answers %d", r.status)
	}

	// A connection Finch puts in reauth: Finch's 401 passes through, and the
	// connection is marked.
	if err := h.sb.SetConnectionStatus(id, "reauth"); err != nil {
		t.Fatal(err)
	}
	r = read.call("GET", base+"employer/company", "")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "reauthenticate_user") {
		t.Errorf("proxy on a reauth connection = %d %s, want Finch's 401", r.status, r.body)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != "reauth" {
		t.Errorf("stored status = %q, want reauth", c.Status)
	}
}

// TestAPI_FlowFromABrowserWithACookie: an app-started flow (bound to no
// browser) completes from a browser that holds finchconnect's browser
// cookie from a flow of its own, and a refresh of its callback returns to
// the same return_url.
func TestAPI_FlowFromABrowserWithACookie(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	api := h.api(apikey.ScopeWrite)
	h.connect(h.client, "cookie-holder", "authorized_simple") // gives h.client its browser cookie
	r := api.call("POST", "/v1/connect/sessions", `{"customer_id":"api-c","customer_name":"API customer","products":["company"],"return_url":"`+h.ts.URL+`/app/done"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/connect/sessions = %d: %s", r.status, r.body)
	}
	var flow struct {
		ConnectURL string `json:"connect_url"`
	}
	json.Unmarshal([]byte(r.body), &flow)
	cb := h.signIn(h.client, flow.ConnectURL, "authorized_simple")
	first := h.do(h.client, "GET", cb, nil)
	u, err := url.Parse(first.location)
	if first.status != http.StatusSeeOther || err != nil || u.Path != "/app/done" || u.Query().Get("connection_id") == "" {
		t.Fatalf("callback = %d → %q, want the return_url with connection_id", first.status, first.location)
	}
	if again := h.do(h.client, "GET", cb, nil); again.status != http.StatusSeeOther || again.location != first.location {
		t.Errorf("refreshed callback = %d → %q, want → %q", again.status, again.location, first.location)
	}
	if got := h.exchanges(); got != 1 {
		t.Errorf("sandbox saw %d exchanges, want 1", got)
	}
}
