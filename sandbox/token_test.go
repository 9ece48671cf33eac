package sandbox_test

import (
	"net/http"
	"net/url"
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
	_, vals := hidden(string(e.call("GET", "/authorize?"+u.RawQuery, "", nil).body))
	vals.Set("username", "authorized_simple")
	vals.Set("password", "letmein")
	done := e.call("POST", "/authorize", "", vals)
	loc, err := url.Parse(done.header.Get("Location"))
	if done.status != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("re-authentication sign-in = %d → %q, want a code", done.status, done.header.Get("Location"))
	}
	if r := e.call("POST", "/disconnect", "bearer:"+tok, nil); r.status != http.StatusOK {
		t.Fatalf("disconnect = %d %s", r.status, r.body)
	}
	before := e.sb.Stats()
	r = e.exchange(loc.Query().Get("code"), cb)
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
