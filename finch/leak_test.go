package finch_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/finchconnect/finchconnect"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

// renderings returns the ways a value commonly ends up in a log line or a
// response: %v, %+v, %#v and JSON. (A mismatched verb such as %s on a
// struct that points to a Secret bypasses Secret's Format: fmt prints the
// pointee raw while it reports the bad verb. That is a property of fmt and
// of the root Secret type, not checked here.)
func renderings(v any) []string {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(err.Error())
	}
	out := []string{fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), string(b)}
	if e, ok := v.(error); ok {
		out = append(out, e.Error())
		var apiErr *finch.APIError
		if errors.As(e, &apiErr) {
			out = append(out, string(apiErr.Body), apiErr.Message, apiErr.Name, apiErr.FinchCode, apiErr.RequestID)
		}
	}
	return out
}

func assertNoSecret(t *testing.T, what string, v any, secrets ...string) {
	t.Helper()
	for _, r := range renderings(v) {
		for _, s := range secrets {
			if s != "" && strings.Contains(r, s) {
				t.Errorf("%s leaks a secret: %s", what, r)
			}
		}
	}
}

// TestClient_NoTokenInValues: the values the client returns, printed or
// encoded, never show the token (nor an SSN).
func TestClient_NoTokenInValues(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	conn := e.connection("authorized_complex", "company", "directory", "individual", "employment", "payment", "pay_statement", "ssn")
	tok := conn.AccessToken
	secret := tok.Reveal()
	assertNoSecret(t, "Connection", conn, secret)
	assertNoSecret(t, "*Connection", &conn, secret)

	in, err := e.client.Introspect(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "Introspection", in, secret)
	page, err := e.client.DirectoryPage(ctx, tok, finch.DirectoryOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	inds, err := e.client.Individuals(ctx, tok, []string{page.Individuals[0].ID}, finch.IndividualOptions{IncludeSSN: true})
	if err != nil || inds[0].Individual == nil || inds[0].Individual.SSN.IsZero() {
		t.Fatalf("Individuals = %+v, %v, want one with an SSN", inds, err)
	}
	ssn := inds[0].Individual.SSN.Reveal()
	assertNoSecret(t, "IndividualResult", inds, secret, ssn)
	assertNoSecret(t, "IndividualDetail", *inds[0].Individual, secret, ssn)
	co, err := e.client.Company(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "Company", co, secret)
	res, err := e.client.Do(ctx, tok, "GET", "/introspect", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "Do response", res, secret)
}

// TestClient_NoSecretInErrors uses a server that echoes every credential it
// receives into its error bodies and headers: no error the client returns
// may carry them.
func TestClient_NoSecretInErrors(t *testing.T) {
	const (
		tok          = "tok_LEAK_CANARY_7f3a9c"
		code         = "code_LEAK_CANARY_b81e"
		clientSecret = "secret_LEAK_CANARY_44d0"
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		echo := r.Header.Get("Authorization") + " " + string(b)
		w.Header().Set("Finch-Request-Id", echo)
		w.Header().Set("X-Echo", echo)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/employer/individual" || r.URL.Path == "/employer/pay-statement" {
			item := map[string]any{"code": 404, "individual_id": "i", "payment_id": "p",
				"body": map[string]any{"code": 404, "name": echo, "finch_code": echo, "message": echo}}
			json.NewEncoder(w).Encode(map[string]any{"responses": []any{item}})
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"code": 400, "name": echo, "finch_code": echo, "message": echo, "raw": echo})
	}))
	defer ts.Close()
	c := &finch.Client{BaseURL: ts.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret(clientSecret), MaxRetries: -1}
	ctx := t.Context()
	secrets := []string{tok, code, clientSecret}

	_, err := c.ExchangeCode(ctx, code, "https://app.example/cb")
	if err == nil {
		t.Fatal("ExchangeCode against an error server succeeded")
	}
	assertNoSecret(t, "ExchangeCode error", err, secrets...)
	_, err = c.NewConnectSession(ctx, finch.SessionRequest{CustomerID: "c", CustomerName: "n", Products: []string{"company"}})
	assertNoSecret(t, "NewConnectSession error", err, secrets...)
	_, err = c.ReauthenticateSession(ctx, finch.ReauthRequest{ConnectionID: "x"})
	assertNoSecret(t, "ReauthenticateSession error", err, secrets...)
	_, err = c.Introspect(ctx, finchconnect.NewSecret(tok))
	assertNoSecret(t, "Introspect error", err, secrets...)
	_, err = c.Company(ctx, finchconnect.NewSecret(tok))
	assertNoSecret(t, "Company error", err, secrets...)
	assertNoSecret(t, "Disconnect error", c.Disconnect(ctx, finchconnect.NewSecret(tok)), secrets...)
	assertNoSecret(t, "DisconnectEntity error", c.DisconnectEntity(ctx, finchconnect.NewSecret(tok), []string{"e"}), secrets...)

	inds, err := c.Individuals(ctx, finchconnect.NewSecret(tok), []string{"i"}, finch.IndividualOptions{})
	if err != nil || len(inds) != 1 || inds[0].Err == nil {
		t.Fatalf("Individuals = %+v, %v, want one failed item", inds, err)
	}
	assertNoSecret(t, "IndividualResult.Err", inds[0].Err, secrets...)
	ps, err := c.PayStatements(ctx, finchconnect.NewSecret(tok), []finch.PayStatementRequest{{PaymentID: "p"}})
	if err != nil || len(ps) != 1 || ps[0].Err == nil {
		t.Fatalf("PayStatements = %+v, %v, want one failed item", ps, err)
	}
	assertNoSecret(t, "PayStatementResult.Err", ps[0].Err, secrets...)

	res, err := c.Do(ctx, finchconnect.NewSecret(tok), "GET", "/employer/company", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "Do response", res, tok)
	assertNoSecret(t, "Do response error", res.Err(), tok)
	if res.StatusCode != 400 {
		t.Errorf("Do status = %d, want 400", res.StatusCode)
	}
}

// TestClient_LocalValidation: calls that cannot succeed fail before any
// request is sent, with an error naming the problem.
func TestClient_LocalValidation(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer ts.Close()
	ctx := t.Context()
	c := &finch.Client{BaseURL: ts.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("s")}
	noCreds := &finch.Client{BaseURL: ts.URL}
	tests := []struct {
		name string
		call func() error
	}{
		{"empty code", func() error { _, err := c.ExchangeCode(ctx, "", ""); return err }},
		{"exchange without credentials", func() error { _, err := noCreds.ExchangeCode(ctx, "code", ""); return err }},
		{"session without credentials", func() error {
			_, err := noCreds.NewConnectSession(ctx, finch.SessionRequest{CustomerID: "c", CustomerName: "n", Products: []string{"company"}})
			return err
		}},
		{"session without customer", func() error {
			_, err := c.NewConnectSession(ctx, finch.SessionRequest{Products: []string{"company"}})
			return err
		}},
		{"session without products", func() error {
			_, err := c.NewConnectSession(ctx, finch.SessionRequest{CustomerID: "c", CustomerName: "n"})
			return err
		}},
		{"reauth without connection", func() error { _, err := c.ReauthenticateSession(ctx, finch.ReauthRequest{}); return err }},
		{"empty token", func() error { _, err := c.Company(ctx, finchconnect.Secret{}); return err }},
		{"no entity ids", func() error { return c.DisconnectEntity(ctx, finchconnect.NewSecret("tok"), nil) }},
		{"negative limit", func() error {
			_, err := c.DirectoryPage(ctx, finchconnect.NewSecret("tok"), finch.DirectoryOptions{Limit: -1})
			return err
		}},
		{"bad date", func() error {
			_, err := c.Payments(ctx, finchconnect.NewSecret("tok"), "2024-13-01", "2024-12-31")
			return err
		}},
		{"eleven payments", func() error {
			_, err := c.PayStatements(ctx, finchconnect.NewSecret("tok"), make([]finch.PayStatementRequest, 11))
			return err
		}},
		{"bad method", func() error {
			_, err := c.Do(ctx, finchconnect.NewSecret("tok"), "CONNECT", "/x", nil, nil)
			return err
		}},
		{"absolute URL", func() error {
			_, err := c.Do(ctx, finchconnect.NewSecret("tok"), "GET", "https://evil.example/x", nil, nil)
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.call(); err == nil || !strings.HasPrefix(err.Error(), "finch: ") {
			t.Errorf("%s: err = %v, want a finch: error", tt.name, err)
		}
	}
	inds, err := c.Individuals(ctx, finchconnect.NewSecret("tok"), nil, finch.IndividualOptions{})
	if inds != nil || err != nil {
		t.Errorf("Individuals(no ids) = %v, %v, want nil, nil", inds, err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests were sent, want none", n)
	}
}
