package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	ts := httptest.NewServer(handler())
	defer ts.Close()
	tests := []struct {
		name, method, path, contentType, body, auth string
		want                                        int
	}{
		{name: "exchange", method: "POST", path: "/auth/token", contentType: "application/json", body: `{"client_id":"id","client_secret":"s","code":"c1"}`, want: 200},
		{name: "the seed's unfixed body", method: "POST", path: "/auth/token", contentType: "text/plain", body: `[object Object]`, want: 400},
		{name: "no code", method: "POST", path: "/auth/token", contentType: "application/json", body: `{"client_id":"id"}`, want: 400},
		{name: "session", method: "POST", path: "/connect/sessions", contentType: "application/json", body: `{}`, want: 201},
		{name: "company", method: "GET", path: "/employer/company", auth: "Bearer tok_1", want: 200},
		{name: "company without a token", method: "GET", path: "/employer/company", want: 401},
		{name: "company with a missing Redis key", method: "GET", path: "/employer/company", auth: "Bearer null", want: 401},
		{name: "directory", method: "GET", path: "/employer/directory", auth: "Bearer tok_1", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("got status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}

// TestExchangeMintsNewConnections checks that every code gets a connection
// of its own, as the stored-equals-successful check relies on.
func TestExchangeMintsNewConnections(t *testing.T) {
	ts := httptest.NewServer(handler())
	defer ts.Close()
	seen := map[string]bool{}
	for range 5 {
		res, err := http.Post(ts.URL+"/auth/token", "application/json", strings.NewReader(`{"client_id":"id","code":"same"}`))
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken  string `json:"access_token"`
			ConnectionID string `json:"connection_id"`
		}
		err = json.NewDecoder(res.Body).Decode(&tok)
		res.Body.Close()
		if err != nil || tok.AccessToken == "" || seen[tok.ConnectionID] {
			t.Fatalf("got %+v, %v; want a new connection with a token", tok, err)
		}
		seen[tok.ConnectionID] = true
	}
}
