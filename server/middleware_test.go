package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// TestRecoverPanics_NoLeak: a handler that panics with a token in hand
// yields a clean 500 page, and neither the page nor the log holds the
// token (the panic value is never printed).
func TestRecoverPanics_NoLeak(t *testing.T) {
	var logs bytes.Buffer
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	s, err := New(Config{PublicURL: "http://app.test", Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		&finch.Client{}, tokenstore.New(tokenstore.NewMemory(), kr))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "tok_PANIC_MARKER_91f2"
	h := s.logRequests(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("exchange failed for token " + marker)
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/callback?code="+marker, nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `id="request-id"`) {
		t.Errorf("panic answered %d, want a 500 page with a request id:\n%s", rec.Code, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), marker) || strings.Contains(logs.String(), marker) {
		t.Errorf("the token leaked through a panic:\npage: %s\nlog: %s", rec.Body.String(), logs.String())
	}
	if !strings.Contains(logs.String(), "panic in handler") {
		t.Errorf("the panic was not logged at all:\n%s", logs.String())
	}
}
