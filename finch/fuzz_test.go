package finch_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

// FuzzResponses has a server answer with arbitrary statuses and bodies
// (malformed, huge, wrong types): the client returns values or errors,
// never panics, and never echoes the token.
func FuzzResponses(f *testing.F) {
	f.Add(200, `{"legal_name":"Acme","locations":[{"city":"X"}]}`)
	f.Add(200, `{"legal_name":123,"accounts":"nope"}`)
	f.Add(200, `{"paging":{"count":"x"},"individuals":null}`)
	f.Add(401, `{"code":401,"name":"authentication_error","finch_code":"reauthenticate_user","message":"Please reauthenticate"}`)
	f.Add(500, `<html>oops</html>`)
	f.Add(429, `{"name":`)
	f.Add(200, strings.Repeat("[", 100000))
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 599 {
			status = 200
		}
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		defer ts.Close()
		c := &finch.Client{BaseURL: ts.URL, MaxRetries: -1, MaxBodyBytes: 1 << 16}
		const tok = "tok_FUZZ_MARKER_0123456789"
		_, err := c.Company(t.Context(), tok)
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error %q contains the token", err)
		}
		_, _ = c.DirectoryPage(t.Context(), tok, finch.DirectoryOptions{})
		_, _ = c.Introspect(t.Context(), tok)
	})
}
