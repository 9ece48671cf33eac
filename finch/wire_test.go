package finch_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"github.com/finchconnect/finchconnect"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/google/go-cmp/cmp"
)

// recorded is one request as it reached the server, before the /finch
// prefix was stripped.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// recorder keeps every request the sandbox receives, so tests can check
// what the client put on the wire.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (rc *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(b))
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		rc.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// last returns the last request for method and path (without the prefix).
func (rc *recorder) last(t *testing.T, method, path string) recorded {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := len(rc.reqs) - 1; i >= 0; i-- {
		if r := rc.reqs[i]; r.Method == method && r.Path == "/finch"+path {
			return r
		}
	}
	t.Fatalf("no %s %s request was recorded", method, path)
	return recorded{}
}

// count returns how many requests for method and path were recorded.
func (rc *recorder) count(method, path string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, r := range rc.reqs {
		if r.Method == method && r.Path == "/finch"+path {
			n++
		}
	}
	return n
}

// jsonKeys returns the sorted top-level keys of a JSON object.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", b, err)
	}
	return slices.Sorted(maps.Keys(m))
}

// TestClient_Wire checks what every method sends: route, credentials,
// Finch's headers, Content-Type only with a body, and bodies without empty
// optionals.
func TestClient_Wire(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	conn := e.connection("authorized_complex", "company", "directory", "individual", "employment", "payment", "pay_statement", "ssn")
	tok := conn.AccessToken
	in, err := e.client.Introspect(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	ent := in.Entities[0].ID
	if _, err := e.client.Company(ctx, tok, finch.WithEntityID(ent)); err != nil {
		t.Fatal(err)
	}
	page, err := e.client.DirectoryPage(ctx, tok, finch.DirectoryOptions{Limit: 50, Offset: 10})
	if err != nil {
		t.Fatal(err)
	}
	id := page.Individuals[0].ID
	inds, err := e.client.Individuals(ctx, tok, []string{id}, finch.IndividualOptions{IncludeSSN: true})
	if err != nil || len(inds) != 1 || inds[0].Individual == nil {
		t.Fatalf("Individuals = %+v, %v", inds, err)
	}
	if inds[0].Individual.SSN.IsZero() {
		t.Error("Individuals with IncludeSSN and the ssn product returned no SSN")
	}
	if _, err := e.client.Employments(ctx, tok, []string{id}); err != nil {
		t.Fatal(err)
	}
	pays, err := e.client.Payments(ctx, tok, "2020-01-01", "2030-12-31")
	if err != nil || len(pays) == 0 {
		t.Fatalf("Payments = %d, %v", len(pays), err)
	}
	if _, err := e.client.PayStatements(ctx, tok, []finch.PayStatementRequest{{PaymentID: pays[0].ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Providers(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ReauthenticateSession(ctx, finch.ReauthRequest{ConnectionID: conn.ConnectionID, RedirectURI: redirectURI}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DisconnectEntity(ctx, tok, []string{in.Entities[2].ID}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Disconnect(ctx, tok); err != nil {
		t.Fatal(err)
	}

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(sandbox.DefaultClientID+":"+sandbox.DefaultClientSecret))
	bearer := "Bearer " + tok.Reveal()
	tests := []struct {
		method, path string
		auth         string
		keys         []string // top-level body keys; nil means no body
		query        url.Values
	}{
		{"POST", "/connect/sessions", basic, []string{"customer_id", "customer_name", "products", "redirect_uri"}, nil},
		{"POST", "/auth/token", "", []string{"client_id", "client_secret", "code", "redirect_uri"}, nil},
		{"GET", "/introspect", bearer, nil, nil},
		{"GET", "/employer/company", bearer, nil, url.Values{"entity_ids[]": {ent}}},
		{"GET", "/employer/directory", bearer, nil, url.Values{"limit": {"50"}, "offset": {"10"}}},
		{"POST", "/employer/individual", bearer, []string{"options", "requests"}, nil},
		{"POST", "/employer/employment", bearer, []string{"requests"}, nil},
		{"GET", "/employer/payment", bearer, nil, url.Values{"start_date": {"2020-01-01"}, "end_date": {"2030-12-31"}}},
		{"POST", "/employer/pay-statement", bearer, []string{"requests"}, nil},
		{"GET", "/providers", "", nil, nil},
		{"POST", "/connect/sessions/reauthenticate", basic, []string{"connection_id", "redirect_uri"}, nil},
		{"POST", "/disconnect-entity", bearer, []string{"entity_ids"}, nil},
		{"POST", "/disconnect", bearer, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.rec.last(t, tt.method, tt.path)
			if got := r.Header.Get("Authorization"); got != tt.auth {
				t.Errorf("Authorization = %q, want %q", got, tt.auth)
			}
			for h, want := range map[string]string{"Finch-API-Version": "2020-09-17", "Accept": "application/json"} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "finchconnect/") {
				t.Errorf("User-Agent = %q, want finchconnect/…", ua)
			}
			ct := r.Header.Get("Content-Type")
			if tt.keys == nil {
				if ct != "" || len(r.Body) != 0 {
					t.Errorf("Content-Type %q and body %q, want neither", ct, r.Body)
				}
			} else {
				if ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				if diff := cmp.Diff(tt.keys, jsonKeys(t, r.Body)); diff != "" {
					t.Errorf("body keys mismatch (-want +got):\n%s", diff)
				}
			}
			q, _ := url.ParseQuery(r.RawQuery)
			if len(q) == 0 {
				q = nil
			}
			if diff := cmp.Diff(tt.query, q); diff != "" {
				t.Errorf("query mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("auth token body", func(t *testing.T) {
		var got map[string]string
		if err := json.Unmarshal(e.rec.last(t, "POST", "/auth/token").Body, &got); err != nil {
			t.Fatal(err)
		}
		if got["client_id"] != sandbox.DefaultClientID || got["client_secret"] != sandbox.DefaultClientSecret || got["redirect_uri"] != redirectURI {
			t.Errorf("/auth/token body = %v, want the credentials in clear and redirect_uri %q", got, redirectURI)
		}
	})
	t.Run("individual options", func(t *testing.T) {
		got := string(e.rec.last(t, "POST", "/employer/individual").Body)
		if want := `{"requests":[{"individual_id":"` + id + `"}],"options":{"include":["ssn"]}}`; got != want {
			t.Errorf("/employer/individual body = %s, want %s", got, want)
		}
	})
}

// embeddedCode runs an embedded-flow Connect (a session without
// redirect_uri) and returns the code Connect hands to the page.
func (e *env) embeddedCode() string {
	e.t.Helper()
	sess, err := e.client.NewConnectSession(e.t.Context(), finch.SessionRequest{
		CustomerID: "c2", CustomerName: "Embedded Co", Products: []string{"company"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	u, _ := url.Parse(sess.ConnectURL)
	form := url.Values{"session": {u.Query().Get("session")}, "provider": {"gusto"}, "step": {"credentials"},
		"username": {"authorized_simple"}, "password": {"letmein"}}
	u.RawQuery = ""
	res, err := http.PostForm(u.String(), form)
	if err != nil {
		e.t.Fatal(err)
	}
	page := body(e.t, res)
	m := regexp.MustCompile(`"code":\s*"([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("no code in the embedded-flow page:\n%s", page)
	}
	return m[1]
}

// TestClient_ExchangeCodeEmbedded: an embedded-flow code is exchanged with
// no redirect_uri at all, not an empty one.
func TestClient_ExchangeCodeEmbedded(t *testing.T) {
	e := newEnv(t)
	conn, err := e.client.ExchangeCode(t.Context(), e.embeddedCode(), "")
	if err != nil {
		t.Fatalf("ExchangeCode(embedded code) = %v", err)
	}
	if conn.CustomerID != "c2" || conn.ProviderID != "gusto" {
		t.Errorf("ExchangeCode = %+v, want customer c2 at gusto", conn)
	}
	if diff := cmp.Diff([]string{"client_id", "client_secret", "code"}, jsonKeys(t, e.rec.last(t, "POST", "/auth/token").Body)); diff != "" {
		t.Errorf("/auth/token body keys mismatch (-want +got):\n%s", diff)
	}
}

// TestClient_ExchangeCodeResult compares the whole Connection built from
// the token response.
func TestClient_ExchangeCodeResult(t *testing.T) {
	e := newEnv(t)
	conn := e.connection("authorized_simple", "company", "directory")
	in, err := e.client.Introspect(t.Context(), conn.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var entities []string
	for _, en := range in.Entities {
		entities = append(entities, en.ID)
	}
	got := conn
	got.AccessToken = finchconnect.Secret{}
	want := got
	want.ConnectionID, want.CustomerID, want.CustomerName = in.ConnectionID, "c1", "Acme"
	want.ProviderID, want.ConnectionType, want.ClientType = "gusto", in.ConnectionType, in.ClientType
	want.Products, want.EntityIDs = []string{"company", "directory"}, entities
	want.Status, want.CreatedAt = "", time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExchangeCode mismatch (-want +got):\n%s", diff)
	}
	if conn.AccessToken.IsZero() || conn.ConnectionType == "" || conn.ClientType == "" {
		t.Errorf("ExchangeCode = %+v, want a token, a connection type and a client type", conn)
	}
}

// TestClient_Settings: a client's own API version and user agent are sent.
func TestClient_Settings(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.APIVersion, c.UserAgent = "2099-01-01", "acme-backend/2"
	if _, err := c.Providers(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := e.rec.last(t, "GET", "/providers")
	if v, ua := r.Header.Get("Finch-API-Version"), r.Header.Get("User-Agent"); v != "2099-01-01" || ua != "acme-backend/2" {
		t.Errorf("Finch-API-Version, User-Agent = %q, %q, want 2099-01-01, acme-backend/2", v, ua)
	}
	bad := &finch.Client{BaseURL: "ftp://example.com"}
	if _, err := bad.Providers(t.Context()); err == nil || !strings.Contains(err.Error(), "BaseURL") {
		t.Errorf("Providers with an ftp BaseURL = %v, want a BaseURL error", err)
	}
}

// TestClient_ProvidersWithToken: GET /providers goes without credentials
// from Providers, with the access token (as Finch's SDKs send it) from
// ProvidersWithToken, which refuses an empty token before sending.
func TestClient_ProvidersWithToken(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tok := e.connection("authorized_simple", "company").AccessToken
	tests := []struct {
		name string
		call func() ([]finch.Provider, error)
		auth string
	}{
		{"Providers", func() ([]finch.Provider, error) { return e.client.Providers(ctx) }, ""},
		{"ProvidersWithToken", func() ([]finch.Provider, error) { return e.client.ProvidersWithToken(ctx, tok) }, "Bearer " + tok.Reveal()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			provs, err := tt.call()
			if err != nil || len(provs) < 6 {
				t.Fatalf("%s = %d providers, %v; want at least 6", tt.name, len(provs), err)
			}
			if got := e.rec.last(t, "GET", "/providers").Header.Get("Authorization"); got != tt.auth {
				t.Errorf("Authorization = %q, want %q", got, tt.auth)
			}
		})
	}
	before := e.rec.count("GET", "/providers")
	if _, err := e.client.ProvidersWithToken(ctx, finchconnect.Secret{}); err == nil || !strings.HasPrefix(err.Error(), "finch: ") {
		t.Errorf("ProvidersWithToken with an empty token = %v, want a finch: error", err)
	}
	if got := e.rec.count("GET", "/providers"); got != before {
		t.Errorf("ProvidersWithToken with an empty token sent %d requests, want none", got-before)
	}
}
