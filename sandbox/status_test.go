package sandbox_test

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// sandboxToken makes a connection through POST /sandbox/connections and
// returns its token and connection id.
func (e *env) sandboxToken() (string, string) {
	e.t.Helper()
	r := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "employee_size": 3})
	if r.status != http.StatusOK {
		e.t.Fatalf("POST /sandbox/connections = %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	return m["access_token"].(string), m["connection_id"].(string)
}

// TestData_ConnectionStatuses: each connection status gives data endpoints
// the answer Finch gives for it, while /introspect keeps answering.
func TestData_ConnectionStatuses(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		status          string
		code            int
		name, finchCode string
	}{
		{"connected", 200, "", ""},
		{"reauth", 401, "authentication_error", "reauthenticate_user"},
		{"error_no_account_setup", 401, "authentication_error", "account_setup_required"},
		{"error_permissions", 403, "error_permissions", "insufficient_account_permissions"},
		{"pending", 202, "accepted", "data_sync_in_progress"},
		{"processing", 202, "accepted", "data_sync_in_progress"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			tok, conn := e.sandboxToken()
			if err := e.sb.SetConnectionStatus(conn, tt.status); err != nil {
				t.Fatalf("SetConnectionStatus(%q) = %v", tt.status, err)
			}
			r := e.call("GET", "/employer/directory", "bearer:"+tok, nil)
			if r.status != tt.code {
				t.Fatalf("directory in %s = %d %s, want %d", tt.status, r.status, r.body, tt.code)
			}
			if tt.name != "" {
				if m := r.json(t); m["name"] != tt.name || m["finch_code"] != tt.finchCode {
					t.Errorf("directory in %s = %s, want name %q, finch_code %q", tt.status, r.body, tt.name, tt.finchCode)
				}
			}
			in := e.call("GET", "/introspect", "bearer:"+tok, nil)
			if got := in.json(t)["connection_status"].(map[string]any)["status"]; in.status != 200 || got != tt.status {
				t.Errorf("introspect in %s = %d, status %v", tt.status, in.status, got)
			}
		})
	}
	if err := e.sb.SetConnectionStatus("no-such-connection", "reauth"); err == nil {
		t.Error("SetConnectionStatus of an unknown connection succeeded")
	}
	_, conn := e.sandboxToken()
	if err := e.sb.SetConnectionStatus(conn, "sleepy"); err == nil {
		t.Error(`SetConnectionStatus("sleepy") succeeded`)
	}
}

// TestDisconnect_IsPermanent: once disconnected, a connection's tokens are
// refused and nothing — a re-authentication session, a legacy
// connection_id link, the sandbox API — brings it back.
func TestDisconnect_IsPermanent(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	conn := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_id"].(string)
	// A re-authentication session opened before the disconnect.
	early := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn, "redirect_uri": cb})
	if early.status != http.StatusCreated {
		t.Fatalf("reauthenticate = %d %s", early.status, early.body)
	}
	if r := e.call("POST", "/disconnect", "bearer:"+tok, nil); r.status != 200 {
		t.Fatalf("disconnect = %d", r.status)
	}
	if r := e.call("GET", "/employer/company", "bearer:"+tok, nil); r.status != 401 || r.json(t)["name"] != "invalid_token_error" {
		t.Errorf("company after disconnect = %d %s, want 401 invalid_token_error", r.status, r.body)
	}
	if r := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn}); r.status != 400 {
		t.Errorf("reauthenticate a disconnected connection = %d %s, want 400", r.status, r.body)
	}
	u, _ := url.Parse(early.json(t)["connect_url"].(string))
	if r := e.call("GET", "/authorize?"+u.RawQuery, "", nil); r.status != 400 || bytes.Contains(r.body, []byte(`id="password"`)) {
		t.Errorf("earlier re-authentication link after disconnect = %d, want 400 and no sign-in form", r.status)
	}
	legacy := url.Values{"client_id": {sandbox.DefaultClientID}, "products": {"company"}, "redirect_uri": {cb}, "connection_id": {conn}}
	if r := e.call("GET", "/authorize?"+legacy.Encode(), "", nil); r.status != 400 {
		t.Errorf("legacy connection_id link after disconnect = %d, want 400", r.status)
	}
	if err := e.sb.SetConnectionStatus(conn, "connected"); err == nil {
		t.Error("SetConnectionStatus(connected) revived a disconnected connection")
	}

	// The sandbox API's "disconnected" is a disconnect too.
	tok2, _ := e.sandboxToken()
	if r := e.call("PUT", "/sandbox/connections/accounts", "bearer:"+tok2, map[string]any{"connection_status": "disconnected"}); r.status != 200 {
		t.Fatalf("PUT accounts disconnected = %d %s", r.status, r.body)
	}
	if r := e.call("GET", "/introspect", "bearer:"+tok2, nil); r.status != 401 {
		t.Errorf("introspect after PUT disconnected = %d, want 401", r.status)
	}
}

// TestDisconnectEntity_RefusedThenRestored: a disconnected entity's data is
// refused and left out of the connection's directory; a re-authentication
// brings it back.
func TestDisconnectEntity_RefusedThenRestored(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_complex")
	in := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)
	conn := in["connection_id"].(string)
	ents := in["entities"].([]any)
	gone := ents[2].(map[string]any)["id"].(string)
	count := func(query string) (int, int) {
		r := e.call("GET", "/employer/directory"+query, "bearer:"+tok, nil)
		if r.status != 200 {
			return r.status, -1
		}
		return r.status, int(r.json(t)["paging"].(map[string]any)["count"].(float64))
	}
	_, all := count("")
	_, part := count("?entity_ids[]=" + gone)
	if r := e.call("POST", "/disconnect-entity", "bearer:"+tok, map[string]any{"entity_ids": []string{gone}}); r.status != 200 {
		t.Fatalf("disconnect-entity = %d %s", r.status, r.body)
	}
	if st, _ := count("?entity_ids[]=" + gone); st != 400 {
		t.Errorf("directory of a disconnected entity = %d, want 400", st)
	}
	if _, n := count(""); n != all-part {
		t.Errorf("directory without entity_ids after disconnecting an entity of %d people = %d, want %d", part, n, all-part)
	}
	if r := e.call("POST", "/disconnect-entity", "bearer:"+tok, map[string]any{"entity_ids": []string{"no-such-entity"}}); r.status != 404 {
		t.Errorf("disconnect an unknown entity = %d, want 404", r.status)
	}
	st := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["entities"].([]any)[2].(map[string]any)["status"]
	if st != "disconnected" {
		t.Errorf("introspect entity status = %v, want disconnected", st)
	}

	// Re-authenticate: the entity is back.
	r := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn, "redirect_uri": cb})
	u, _ := url.Parse(r.json(t)["connect_url"].(string))
	_, vals := hidden(string(e.call("GET", "/authorize?"+u.RawQuery, "", nil).body))
	vals.Set("username", "authorized_complex")
	vals.Set("password", "letmein")
	done := e.call("POST", "/authorize", "", vals)
	loc, _ := url.Parse(done.header.Get("Location"))
	if x := e.exchange(loc.Query().Get("code"), cb); x.status != 200 {
		t.Fatalf("re-authentication exchange = %d %s", x.status, x.body)
	}
	if st, n := count("?entity_ids[]=" + gone); st != 200 || n != part {
		t.Errorf("entity after re-authentication = %d with %d people, want 200 with %d", st, n, part)
	}
}
