package sandbox_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// connState is what a re-authentication may change on a connection, as
// one of its existing tokens sees it.
type connState struct {
	products []string
	status   string
	entities []string // each entity's status
	company  int      // GET /employer/company's status code
}

func (e *env) connState(tok string) connState {
	e.t.Helper()
	in := e.call("GET", "/introspect", "bearer:"+tok, nil)
	if in.status != http.StatusOK {
		e.t.Fatalf("introspect = %d %s", in.status, in.body)
	}
	m := in.json(e.t)
	var st connState
	for _, p := range m["products"].([]any) {
		st.products = append(st.products, p.(string))
	}
	st.status = m["connection_status"].(map[string]any)["status"].(string)
	for _, x := range m["entities"].([]any) {
		st.entities = append(st.entities, x.(map[string]any)["status"].(string))
	}
	st.company = e.call("GET", "/employer/company", "bearer:"+tok, nil).status
	return st
}

// TestReauth_AppliedOnlyWhenCodeExchanged: signing in to a
// re-authentication (a reauthenticate session, or a legacy link with
// connection_id) changes nothing on the connection: its products, its
// reauth status and its removed entities stay as they are for every
// existing token until the code is exchanged with the client secret.
// Before, the sign-in alone re-scoped the connection, so anyone with the
// public client_id and the published password could widen the scopes of
// any connection whose id they knew through a legacy link.
func TestReauth_AppliedOnlyWhenCodeExchanged(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		name  string
		query func(t *testing.T, conn string) url.Values
	}{
		{"session", func(t *testing.T, conn string) url.Values {
			r := e.on(t).call("POST", "/connect/sessions/reauthenticate", "basic",
				map[string]any{"connection_id": conn, "redirect_uri": cb, "products": []string{"company", "directory"}})
			if r.status != http.StatusCreated {
				t.Fatalf("reauthenticate = %d %s", r.status, r.body)
			}
			u, _ := url.Parse(r.json(t)["connect_url"].(string))
			return u.Query()
		}},
		{"legacy connection_id link", func(t *testing.T, conn string) url.Values {
			return url.Values{"client_id": {sandbox.DefaultClientID}, "products": {"company directory"},
				"redirect_uri": {cb}, "connection_id": {conn}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			// A connection with company only, one entity removed, and
			// in reauth.
			tok := e.token("authorized_complex", "company")
			in := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)
			conn := in["connection_id"].(string)
			gone := in["entities"].([]any)[2].(map[string]any)["id"].(string)
			if r := e.call("POST", "/disconnect-entity", "bearer:"+tok, map[string]any{"entity_ids": []string{gone}}); r.status != http.StatusOK {
				t.Fatalf("disconnect-entity = %d %s", r.status, r.body)
			}
			if err := e.sb.SetConnectionStatus(conn, "reauth"); err != nil {
				t.Fatal(err)
			}
			before := e.connState(tok)
			want := connState{products: []string{"company"}, status: "reauth", entities: []string{"connected", "connected", "disconnected"}, company: http.StatusUnauthorized}
			if !equalState(before, want) {
				t.Fatalf("set-up state = %+v, want %+v", before, want)
			}

			code := e.signIn(tt.query(t, conn), "authorized_complex")
			if got := e.connState(tok); !equalState(got, before) {
				t.Errorf("after the sign-in, before any exchange: state = %+v, want it unchanged %+v", got, before)
			}
			// Without the client secret the code is worth nothing.
			bad := e.call("POST", "/auth/token", "", map[string]any{"client_id": sandbox.DefaultClientID, "client_secret": "guess", "code": code, "redirect_uri": cb})
			if bad.status != http.StatusUnauthorized {
				t.Errorf("exchange with a wrong secret = %d %s, want 401", bad.status, bad.body)
			}
			if got := e.connState(tok); !equalState(got, before) {
				t.Errorf("after an exchange with a wrong secret: state = %+v, want it unchanged %+v", got, before)
			}

			x := e.exchange(code, cb)
			if x.status != http.StatusOK {
				t.Fatalf("exchange = %d %s", x.status, x.body)
			}
			if got := x.json(t)["products"]; len(got.([]any)) != 2 {
				t.Errorf("exchange products = %v, want [company directory]", got)
			}
			after := connState{products: []string{"company", "directory"}, status: "connected", entities: []string{"connected", "connected", "connected"}, company: http.StatusOK}
			if got := e.connState(tok); !equalState(got, after) {
				t.Errorf("after the exchange: state = %+v, want %+v", got, after)
			}
		})
	}
}

// TestReauth_ExpiredCodeAppliesNothing: a re-authentication signed in but
// never exchanged in time leaves the connection as it was.
func TestReauth_ExpiredCodeAppliesNothing(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple", "company")
	conn := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_id"].(string)
	if err := e.sb.SetConnectionStatus(conn, "reauth"); err != nil {
		t.Fatal(err)
	}
	before := e.connState(tok)
	legacy := url.Values{"client_id": {sandbox.DefaultClientID}, "products": {"company ssn"}, "redirect_uri": {cb}, "connection_id": {conn}}
	code := e.signIn(legacy, "authorized_simple")
	e.sb.Advance(sandbox.CodeLifetime + 1)
	if r := e.exchange(code, cb); r.status != http.StatusBadRequest || r.json(t)["name"] != "invalid_grant_error" {
		t.Errorf("exchange of an expired code = %d %s, want 400 invalid_grant_error", r.status, r.body)
	}
	if got := e.connState(tok); !equalState(got, before) {
		t.Errorf("after an expired re-authentication code: state = %+v, want it unchanged %+v", got, before)
	}
}

func equalState(a, b connState) bool {
	return slices.Equal(a.products, b.products) && a.status == b.status && slices.Equal(a.entities, b.entities) && a.company == b.company
}
