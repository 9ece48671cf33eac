package finch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
)

// env runs the sandbox under /finch on a real listener, as go-github's
// tests use a base URL with a path, to catch absolute-path mistakes.
type env struct {
	t      *testing.T
	sb     *sandbox.Server
	ts     *httptest.Server
	rec    *recorder
	client *finch.Client
}

const redirectURI = "http://localhost:3000/callback"

func newEnv(t *testing.T) *env {
	t.Helper()
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	sb, err := sandbox.New(sandbox.Options{PublicURL: ts.URL + "/finch"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	rec := &recorder{}
	mux.Handle("/finch/", rec.wrap(http.StripPrefix("/finch", sb)))
	return &env{t: t, sb: sb, ts: ts, rec: rec, client: &finch.Client{
		BaseURL: ts.URL + "/finch", ClientID: sandbox.DefaultClientID, ClientSecret: finchconnect.NewSecret(sandbox.DefaultClientSecret),
	}}
}

// newClient is a fresh client for the sandbox, to adjust before first use.
func (e *env) newClient() *finch.Client {
	return &finch.Client{BaseURL: e.ts.URL + "/finch", ClientID: sandbox.DefaultClientID, ClientSecret: finchconnect.NewSecret(sandbox.DefaultClientSecret)}
}

var (
	formRe  = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*>`)
	attrRe  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

func postForm(t *testing.T, page string, set url.Values) *http.Response {
	t.Helper()
	m := formRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in:\n%s", page)
	}
	vals := url.Values{}
	for _, in := range inputRe.FindAllString(m[2], -1) {
		a := map[string]string{}
		for _, kv := range attrRe.FindAllStringSubmatch(in, -1) {
			a[kv[1]] = html.UnescapeString(kv[2])
		}
		vals.Add(a["name"], a["value"])
	}
	for k, v := range set {
		vals[k] = v
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(html.UnescapeString(m[1]), vals)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// code runs a Connect session through the sandbox's page and returns a code.
func (e *env) code(username string, products ...string) string {
	e.t.Helper()
	if len(products) == 0 {
		products = []string{"company", "directory", "individual", "employment", "payment", "pay_statement"}
	}
	sess, err := e.client.NewConnectSession(e.t.Context(), finch.SessionRequest{
		CustomerID: "c1", CustomerName: "Acme", Products: products, RedirectURI: redirectURI,
	})
	if err != nil {
		e.t.Fatalf("NewConnectSession: %v", err)
	}
	res, err := http.Get(sess.ConnectURL)
	if err != nil {
		e.t.Fatal(err)
	}
	page := body(e.t, postForm(e.t, body(e.t, res), url.Values{"provider": {"gusto"}}))
	done := postForm(e.t, page, url.Values{"username": {username}, "password": {"letmein"}})
	done.Body.Close()
	loc, err := url.Parse(done.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		e.t.Fatalf("Connect ended at %q", done.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func (e *env) connection(username string, products ...string) finchconnect.Connection {
	e.t.Helper()
	c, err := e.client.ExchangeCode(e.t.Context(), e.code(username, products...), redirectURI)
	if err != nil {
		e.t.Fatalf("ExchangeCode: %v", err)
	}
	return c
}

func TestClient_ExchangeCode(t *testing.T) {
	e := newEnv(t)
	code := e.code("authorized_complex")
	conn, err := e.client.ExchangeCode(t.Context(), code, redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	if conn.AccessToken.IsZero() || conn.ConnectionID == "" || conn.ProviderID != "gusto" || len(conn.EntityIDs) != 3 || conn.CustomerID != "c1" {
		t.Errorf("ExchangeCode = %+v", conn)
	}
	if _, err := e.client.ExchangeCode(t.Context(), code, redirectURI); !errors.Is(err, finchconnect.ErrInvalidCode) {
		t.Errorf("second ExchangeCode err = %v, want ErrInvalidCode", err)
	}
	bad := e.newClient()
	bad.ClientSecret = finchconnect.NewSecret("wrong")
	if _, err := bad.ExchangeCode(t.Context(), e.code("authorized_simple"), redirectURI); !errors.Is(err, finchconnect.ErrInvalidClient) {
		t.Errorf("wrong secret err = %v, want ErrInvalidClient", err)
	}
}

// TestClient_ExchangeCodeNeverRetried: a 500 from /auth/token is returned
// at once; the code is not sent again.
func TestClient_ExchangeCodeNeverRetried(t *testing.T) {
	e := newEnv(t)
	code := e.code("authorized_simple")
	e.sb.InjectFault(sandbox.Fault{Route: "POST /auth/token", Status: 503, Count: 1})
	before := e.sb.Stats().Requests["POST /auth/token"]
	_, err := e.client.ExchangeCode(t.Context(), code, redirectURI)
	var apiErr *finch.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("ExchangeCode under a 503 = %v, want the APIError", err)
	}
	if n := e.sb.Stats().Requests["POST /auth/token"] - before; n != 1 {
		t.Errorf("the code was sent %d times, want exactly once", n)
	}
}

func TestClient_Methods(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	conn := e.connection("authorized_complex")
	tok := conn.AccessToken

	in, err := e.client.Introspect(ctx, tok)
	if err != nil || in.ConnectionID != conn.ConnectionID || in.ConnectionStatus.Status != "connected" || len(in.Entities) != 3 {
		t.Errorf("Introspect = %+v, %v", in, err)
	}
	co, err := e.client.Company(ctx, tok)
	if err != nil || co.LegalName == "" || co.EIN == "" || len(co.Locations) == 0 || len(co.Accounts) == 0 {
		t.Errorf("Company = %+v, %v", co, err)
	}
	page, err := e.client.DirectoryPage(ctx, tok, finch.DirectoryOptions{Limit: 50, Offset: 10})
	if err != nil || len(page.Individuals) != 50 || page.Paging.Offset != 10 || page.Paging.Count < 300 {
		t.Errorf("DirectoryPage = %d people, paging %+v, %v", len(page.Individuals), page.Paging, err)
	}
	var ids []string
	for p, err := range e.client.Directory(ctx, tok, finch.DirectoryOptions{Limit: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if len(ids) != page.Paging.Count {
		t.Errorf("Directory walked %d people, want %d", len(ids), page.Paging.Count)
	}
	inds, err := e.client.Individuals(ctx, tok, []string{ids[0], "nope"}, finch.IndividualOptions{})
	if err != nil || len(inds) != 2 || inds[0].Individual == nil || inds[1].Err == nil {
		t.Errorf("Individuals = %+v, %v", inds, err)
	}
	emps, err := e.client.Employments(ctx, tok, ids[:2])
	if err != nil || len(emps) != 2 || emps[0].Employment == nil || emps[0].Employment.Income == nil {
		t.Errorf("Employments = %+v, %v", emps, err)
	}
	now := time.Now()
	pays, err := e.client.Payments(ctx, tok, now.AddDate(-1, 0, 0).Format(time.DateOnly), now.Format(time.DateOnly))
	if err != nil || len(pays) == 0 {
		t.Fatalf("Payments = %d, %v", len(pays), err)
	}
	ps, err := e.client.PayStatements(ctx, tok, []finch.PayStatementRequest{{PaymentID: pays[0].ID, Limit: 3}})
	if err != nil || len(ps) != 1 || len(ps[0].PayStatements) != 3 {
		t.Errorf("PayStatements = %+v, %v", ps, err)
	}
	provs, err := e.client.Providers(ctx)
	if err != nil || len(provs) < 6 {
		t.Errorf("Providers = %d, %v", len(provs), err)
	}
	ent := in.Entities[0].ID
	one, err := e.client.DirectoryPage(ctx, tok, finch.DirectoryOptions{EntityID: ent})
	if err != nil || one.Paging.Count >= page.Paging.Count {
		t.Errorf("directory of one entity = %+v, %v", one.Paging, err)
	}
	if err := e.client.DisconnectEntity(ctx, tok, []string{in.Entities[2].ID}); err != nil {
		t.Errorf("DisconnectEntity: %v", err)
	}

	re, err := e.client.ReauthenticateSession(ctx, finch.ReauthRequest{ConnectionID: conn.ConnectionID, RedirectURI: redirectURI})
	if err != nil || !strings.Contains(re.ConnectURL, "/finch/authorize?session=") {
		t.Errorf("ReauthenticateSession = %+v, %v", re, err)
	}

	if err := e.client.Disconnect(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Company(ctx, tok)
	if !errors.Is(err, finchconnect.ErrUnauthorized) {
		t.Errorf("Company after Disconnect err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), tok.Reveal()) || strings.Contains(fmt.Sprintf("%+v", err), tok.Reveal()) {
		t.Error("an error contains the token")
	}
}

func TestClient_ScopeAndReauth(t *testing.T) {
	e := newEnv(t)
	narrow := e.connection("authorized_simple", "company")
	if _, err := e.client.DirectoryPage(t.Context(), narrow.AccessToken, finch.DirectoryOptions{}); !errors.Is(err, finchconnect.ErrInsufficientScope) {
		t.Errorf("directory without the product err = %v, want ErrInsufficientScope", err)
	}
	conn := e.connection("authorized_simple")
	if err := e.sb.SetConnectionStatus(conn.ConnectionID, "reauth"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Company(t.Context(), conn.AccessToken); !errors.Is(err, finchconnect.ErrReauthRequired) {
		t.Errorf("company in reauth err = %v, want ErrReauthRequired", err)
	}
}

// TestClient_RetriesReads: a read meets 429 with Retry-After, waits what
// Finch asked, and succeeds.
func TestClient_RetriesReads(t *testing.T) {
	e := newEnv(t)
	conn := e.connection("authorized_simple")
	var waits []time.Duration
	c := e.newClient()
	c.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 429, RetryAfter: 3 * time.Second, Count: 2})
	before := e.sb.Stats().Requests["GET /employer/company"]
	co, err := c.Company(t.Context(), conn.AccessToken)
	if err != nil || co.LegalName == "" {
		t.Fatalf("Company after two 429s = %v", err)
	}
	if n := e.sb.Stats().Requests["GET /employer/company"] - before; n != 3 {
		t.Errorf("%d requests, want 3 (two retries)", n)
	}
	if len(waits) != 2 || waits[0] != 3*time.Second || waits[1] != 3*time.Second {
		t.Errorf("waits = %v, want Retry-After's 3s twice", waits)
	}

	// Retries stop at the context's deadline, rather than sleeping past it.
	e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Status: 503, RetryAfter: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = e.client.Company(ctx, conn.AccessToken)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Company under endless 503s with a 300 ms deadline = %v after %v", err, time.Since(start))
	}
	e.sb.ClearFaults()

	// A malformed body is a clear error.
	e.sb.InjectFault(sandbox.Fault{Route: "GET /employer/company", Malformed: true, Count: 1})
	if _, err := e.client.Company(t.Context(), conn.AccessToken); err == nil {
		t.Error("a malformed body decoded without error")
	}
}

func TestClient_BodyLimit(t *testing.T) {
	e := newEnv(t)
	conn := e.connection("authorized_complex")
	c := e.newClient()
	c.MaxBodyBytes = 1024
	if _, err := c.DirectoryPage(t.Context(), conn.AccessToken, finch.DirectoryOptions{}); !errors.Is(err, finch.ErrResponseTooLarge) {
		t.Errorf("a 300-person directory with a 1 KiB limit err = %v, want ErrResponseTooLarge", err)
	}
}

// TestAPIError_Mapping checks each Finch error of finch-api.md §8 against the
// sentinels, with a server that answers exactly that body.
func TestAPIError_Mapping(t *testing.T) {
	tests := []struct {
		status          int
		name, finchCode string
		want            error
	}{
		{400, "invalid_grant_error", "", finchconnect.ErrInvalidCode},
		{400, "bad_request", "invalid_request", nil},
		{401, "invalid_token_error", "", finchconnect.ErrUnauthorized},
		{401, "invalid_request_error", "", nil}, // the request, not the token, is wrong
		{401, "authentication_error", "reauthenticate_user", finchconnect.ErrReauthRequired},
		{401, "authentication_error", "account_setup_required", finchconnect.ErrReauthRequired}, // the employer must go back to Connect
		{401, "invalid_client_error", "", finchconnect.ErrInvalidClient},
		{401, "unauthorized_request_error", "", finchconnect.ErrUnauthorized},
		{402, "payment_required", "payment_required", nil},
		{403, "error_permissions", "insufficient_account_permissions", nil},
		{403, "insufficient_scope_error", "", finchconnect.ErrInsufficientScope},
		{404, "not_found_error", "item_not_found", nil},
		{408, "client_connection_closed", "", nil},
		{422, "unprocessable_request_error", "unsupported_parameters", nil},
		{429, "rate_limit_exceeded_error", "finch_application_rl", finchconnect.ErrRateLimited},
		{500, "server_error", "", nil},
		{501, "not_implemented", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.finchCode, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Finch-Request-Id", "req-123")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				json.NewEncoder(w).Encode(map[string]any{"code": tt.status, "name": tt.name, "finch_code": tt.finchCode, "message": "msg for " + tt.name})
			}))
			defer ts.Close()
			c := &finch.Client{BaseURL: ts.URL, MaxRetries: -1}
			_, err := c.Introspect(t.Context(), finchconnect.NewSecret("tok_SECRET_VALUE_123"))
			var apiErr *finch.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Name != tt.name || apiErr.FinchCode != tt.finchCode || apiErr.RequestID != "req-123" || !strings.Contains(apiErr.Message, "msg for") {
				t.Errorf("APIError = %+v", apiErr)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(err, %v) = false", tt.want)
			}
			for _, s := range []error{finchconnect.ErrInvalidCode, finchconnect.ErrReauthRequired, finchconnect.ErrUnauthorized, finchconnect.ErrInvalidClient, finchconnect.ErrInsufficientScope, finchconnect.ErrRateLimited} {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = true, want false", s)
				}
			}
			if strings.Contains(err.Error(), "tok_SECRET_VALUE_123") {
				t.Error("the error contains the token")
			}
		})
	}
}

func TestClient_Do(t *testing.T) {
	e := newEnv(t)
	conn := e.connection("authorized_simple")
	res, err := e.client.Do(t.Context(), conn.AccessToken, "GET", "/employer/company", nil, nil)
	if err != nil || res.StatusCode != 200 || !bytes.Contains(res.Body, []byte("legal_name")) || res.Header.Get("Finch-Request-Id") == "" {
		t.Errorf("Do = %+v, %v", res, err)
	}
	for _, p := range []string{"//evil.example/x", "http://evil.example/", "/employer/../auth/token", "employer/company", `/employer\company`, "/employer/company?x=1"} {
		if _, err := e.client.Do(t.Context(), conn.AccessToken, "GET", p, nil, nil); err == nil {
			t.Errorf("Do(%q) was sent; want it refused", p)
		}
	}
}
