package sandbox_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestToken_CodeSignedInBeforeDisconnect: a re-authentication completed
// before the connection was disconnected leaves a code; exchanging it after
// the disconnect must not mint a token that reads the employer's data.
func TestToken_CodeSignedInBeforeDisconnect(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	conn := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_id"].(string)
	r := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn, "redirect_uri": cb})
	if r.status != http.StatusCreated {
		t.Fatalf("reauthenticate = %d %s", r.status, r.body)
	}
	u, _ := url.Parse(r.json(t)["connect_url"].(string))
	code := e.signIn(u.Query(), "authorized_simple")
	if r := e.call("POST", "/disconnect", "bearer:"+tok, nil); r.status != http.StatusOK {
		t.Fatalf("disconnect = %d %s", r.status, r.body)
	}
	before := e.sb.Stats()
	r = e.exchange(code, cb)
	if r.status != http.StatusBadRequest || r.json(t)["name"] != "invalid_grant_error" {
		t.Errorf("exchange after the disconnect = %d %s, want 400 invalid_grant_error", r.status, r.body)
	}
	if got := e.sb.Stats(); got.TokenExchanges != before.TokenExchanges || got.FailedExchanges != before.FailedExchanges+1 {
		t.Errorf("Stats after the refused exchange = %d ok, %d failed; want %d and %d",
			got.TokenExchanges, got.FailedExchanges, before.TokenExchanges, before.FailedExchanges+1)
	}
	if m, ok := r.json(t)["access_token"].(string); ok {
		if c := e.call("GET", "/employer/company", "bearer:"+m, nil); c.status != http.StatusUnauthorized {
			t.Errorf("company with the token minted after the disconnect = %d, want 401", c.status)
		}
	}
}

// TestBearer_SchemeIsCaseInsensitive: RFC 7235 §2.1 makes the
// authentication scheme case-insensitive, so "bearer" works like "Bearer".
func TestBearer_SchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, _ := e.sandboxToken()
	tests := []struct {
		name, header string
		want         int
	}{
		{"Bearer", "Bearer " + tok, 200},
		{"bearer", "bearer " + tok, 200},
		{"BEARER", "BEARER " + tok, 200},
		{"extra spaces", "Bearer   " + tok + " ", 200},
		{"Basic", "Basic " + tok, 401},
		{"no space", "Bearer" + tok, 401},
		{"no token", "Bearer ", 401},
		{"no scheme", tok, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.ts.URL+"/finch/introspect", nil)
			req.Header.Set("Authorization", tt.header)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("GET /introspect with Authorization %q = %d, want %d", strings.Replace(tt.header, tok, "TOKEN", 1), res.StatusCode, tt.want)
			}
		})
	}
}

// TestConnectionType: connections of Finch-generated data (a session with
// "sandbox": "finch", or POST /sandbox/connections) report connection_type
// "finch", as Finch's SDK documents; the others "provider".
func TestConnectionType(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	session := func(sandboxField any) string {
		body := map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}, "redirect_uri": cb}
		if sandboxField != nil {
			body["sandbox"] = sandboxField
		}
		r := e.call("POST", "/connect/sessions", "basic", body)
		if r.status != http.StatusCreated {
			t.Fatalf("POST /connect/sessions = %d %s", r.status, r.body)
		}
		u, _ := url.Parse(r.json(t)["connect_url"].(string))
		x := e.exchange(e.signIn(u.Query(), "authorized_simple"), cb)
		if x.status != http.StatusOK {
			t.Fatalf("exchange = %d %s", x.status, x.body)
		}
		m := x.json(t)
		if in := e.call("GET", "/introspect", "bearer:"+m["access_token"].(string), nil).json(t); in["connection_type"] != m["connection_type"] {
			t.Errorf("introspect connection_type %v, token response %v; want the same", in["connection_type"], m["connection_type"])
		}
		return m["connection_type"].(string)
	}
	if got := session("finch"); got != "finch" {
		t.Errorf(`connection_type of a "sandbox": "finch" session = %q, want "finch"`, got)
	}
	if got := session("provider"); got != "provider" {
		t.Errorf(`connection_type of a "sandbox": "provider" session = %q, want "provider"`, got)
	}
	if got := session(nil); got != "provider" {
		t.Errorf(`connection_type of a session without "sandbox" = %q, want "provider"`, got)
	}
	tok, _ := e.sandboxToken()
	if got := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_type"]; got != "finch" {
		t.Errorf("connection_type of a POST /sandbox/connections connection = %v, want finch", got)
	}
}
