package sandbox_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// introspected is what /introspect says of an assisted connection.
type introspected struct {
	status, authType  string
	message, lastSync any
	manual            any
}

func (e *env) introspect(tok string) introspected {
	e.t.Helper()
	r := e.call("GET", "/introspect", "bearer:"+tok, nil)
	mustStatus(e.t, "introspect", r, http.StatusOK)
	m := r.json(e.t)
	cs := m["connection_status"].(map[string]any)
	am := m["authentication_methods"].([]any)[0].(map[string]any)
	return introspected{status: cs["status"].(string), authType: am["type"].(string), message: cs["message"], lastSync: cs["last_successful_sync"], manual: m["manual"]}
}

// wantStatusHook checks the next webhook is account.updated with status
// for an assisted connection.
func wantStatusHook(t *testing.T, rc *receiver, conn, status string) {
	t.Helper()
	// The timeline's data events (a day's hires and raises) may come
	// first: only status events are this helper's business.
	h := rc.next()
	for range 5000 {
		if h.event["event_type"] == "account.updated" && h.event["connection_id"] == conn {
			break
		}
		h = rc.next()
	}
	data, _ := h.event["data"].(map[string]any)
	am, _ := data["authentication_method"].(map[string]any)
	if h.event["event_type"] != "account.updated" || h.event["connection_id"] != conn || data["status"] != status || am["type"] != "assisted" {
		t.Fatalf("webhook = %v, want account.updated %s of assisted connection %s", h.event, status, conn)
	}
}

// TestAssisted_Timeline: an assisted connection (POST /sandbox/connections
// with authentication_type assisted) is pending for a day, processing for
// two, then connected, on the sandbox's clock; until then its data routes
// answer 202 data_sync_in_progress, /introspect shows each status, and
// every step sends account.updated, even with no request in between.
func TestAssisted_Timeline(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	rc := newReceiver(t, nil)
	e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret, Now: fixedNow()})
	r := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "authentication_type": "assisted"})
	mustStatus(t, "POST /sandbox/connections", r, http.StatusOK)
	m := r.json(t)
	tok, conn := m["access_token"].(string), m["connection_id"].(string)
	if m["authentication_type"] != "assisted" {
		t.Errorf("authentication_type = %v, want assisted", m["authentication_type"])
	}
	dataSync := func(what string) {
		t.Helper()
		r := e.call("GET", "/employer/directory", "bearer:"+tok, nil)
		if r.status != http.StatusAccepted || r.json(t)["finch_code"] != "data_sync_in_progress" {
			t.Fatalf("%s: directory = %d %s, want 202 data_sync_in_progress", what, r.status, r.body)
		}
	}
	in := e.introspect(tok)
	if in.status != "pending" || in.authType != "assisted" || in.manual != true || in.message == nil || in.lastSync != nil {
		t.Fatalf("introspect at creation = %+v, want pending, assisted, manual, a message, no sync yet", in)
	}
	dataSync("pending")

	e.sb.Advance(24*time.Hour - time.Second)
	if in := e.introspect(tok); in.status != "pending" {
		t.Fatalf("a second before a day: %s, want pending", in.status)
	}
	rc.none("while pending")
	e.sb.Advance(time.Second)
	wantStatusHook(t, rc, conn, "processing") // sent by the clock move itself
	if in := e.introspect(tok); in.status != "processing" || in.lastSync != nil {
		t.Fatalf("after a day: %+v, want processing, no sync yet", in)
	}
	dataSync("processing")

	if r := e.call("POST", "/_sandbox/clock", "", `{"advance":"48h"}`); r.status != http.StatusOK {
		t.Fatalf("clock = %d", r.status)
	}
	wantStatusHook(t, rc, conn, "connected")
	if in := e.introspect(tok); in.status != "connected" || in.lastSync == nil || in.message != nil {
		t.Fatalf("after three days: %+v, want connected with a last sync", in)
	}
	mustStatus(t, "directory when connected", e.call("GET", "/employer/directory", "bearer:"+tok, nil), http.StatusOK)
	e.sb.Advance(30 * 24 * time.Hour)
	rc.noStatus("once connected")
}

// TestAssisted_ConnectAndManualSteps: a Connect session with manual: true
// (or integration.auth_method assisted) makes an assisted connection; with
// a negative Options.AssistedPending it waits for
// PUT /sandbox/connections/accounts, which sends account.updated too.
func TestAssisted_ConnectAndManualSteps(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret, Now: fixedNow(), AssistedPending: -1})
	for _, body := range []map[string]any{
		{"manual": true},
		{"integration": map[string]any{"provider": "gusto", "auth_method": "assisted"}},
	} {
		body["customer_id"], body["customer_name"], body["products"], body["redirect_uri"] = "c-1", "C", []string{"company", "directory"}, cb
		r := e.call("POST", "/connect/sessions", "basic", body)
		mustStatus(t, "session", r, http.StatusCreated)
		u, _ := url.Parse(r.json(t)["connect_url"].(string))
		x := e.exchange(e.signIn(u.Query(), "authorized_simple"), cb)
		mustStatus(t, "exchange", x, http.StatusOK)
		tok, conn := x.json(t)["access_token"].(string), x.json(t)["connection_id"].(string)
		if in := e.introspect(tok); in.status != "pending" || in.authType != "assisted" {
			t.Fatalf("%v: introspect = %+v, want an assisted pending connection", body, in)
		}
		e.sb.Advance(90 * 24 * time.Hour)
		if in := e.introspect(tok); in.status != "pending" {
			t.Fatalf("%v: after 90 days with AssistedPending -1: %s, want pending", body, in.status)
		}
		r = e.call("PUT", "/sandbox/connections/accounts", "bearer:"+tok, map[string]any{"connection_status": "connected"})
		if mustStatus(t, "PUT connected", r, http.StatusOK); r.json(t)["authentication_type"] != "assisted" {
			t.Errorf("PUT answer authentication_type = %v, want assisted", r.json(t)["authentication_type"])
		}
		wantStatusHook(t, rc, conn, "connected")
		mustStatus(t, "company when connected", e.call("GET", "/employer/company", "bearer:"+tok, nil), http.StatusOK)
	}
	bad := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"},
		"integration": map[string]any{"provider": "gusto", "auth_method": "carrier_pigeon"}})
	mustStatus(t, "an unknown auth_method", bad, http.StatusBadRequest)
	mustStatus(t, "an unknown authentication_type", e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "authentication_type": "x"}), http.StatusBadRequest)
}

// TestWebhooks_StatusChangesAndReauth: account.updated goes out on every
// status change: the reauthorization scenario losing access, a
// re-authentication restoring it (when its code is exchanged), an entity
// disconnected (with its entity_id) and restored, and a disconnect.
func TestWebhooks_StatusChangesAndReauth(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	rc := newReceiver(t, nil)
	e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret})
	tok := e.token("reauthorization")
	conn := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_id"].(string)
	for range 6 {
		e.call("GET", "/employer/company", "bearer:"+tok, nil)
	}
	want := func(status, entity string) {
		t.Helper()
		h := rc.next()
		data, _ := h.event["data"].(map[string]any)
		am, _ := data["authentication_method"].(map[string]any)
		if h.event["event_type"] != "account.updated" || h.event["connection_id"] != conn || data["status"] != status || am["type"] != "credential" {
			t.Fatalf("webhook = %v, want account.updated %s", h.event, status)
		}
		if got, _ := h.event["entity_id"].(string); got != entity {
			t.Fatalf("webhook entity_id = %v, want %q", h.event["entity_id"], entity)
		}
	}
	want("reauth", "")
	reauth := func() {
		t.Helper()
		r := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn, "redirect_uri": cb})
		mustStatus(t, "reauthenticate", r, http.StatusCreated)
		u, _ := url.Parse(r.json(t)["connect_url"].(string))
		code := e.signIn(u.Query(), "reauthorization")
		rc.none("signed in, code not exchanged")
		mustStatus(t, "exchange", e.exchange(code, cb), http.StatusOK)
	}
	reauth()
	want("connected", "")

	// An entity removed and restored (authorized_complex has three).
	tok2 := e.token("authorized_complex")
	in := e.call("GET", "/introspect", "bearer:"+tok2, nil).json(t)
	conn = in["connection_id"].(string)
	gone := in["entities"].([]any)[1].(map[string]any)["id"].(string)
	mustStatus(t, "disconnect-entity", e.call("POST", "/disconnect-entity", "bearer:"+tok2, map[string]any{"entity_ids": []string{gone}}), http.StatusOK)
	want("disconnected", gone)
	reauth()
	want("connected", gone)
	rc.none("the connection itself stayed connected")
	mustStatus(t, "disconnect", e.call("POST", "/disconnect", "bearer:"+tok2, nil), http.StatusOK)
	want("disconnected", "")
}
