package server_test

import (
	"bytes"
	"github.com/finchconnect/finchconnect"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// fuzzServer is a Connect back-end whose Finch counts every request and
// answers none usefully: no fuzzed callback can hold a valid state, so none
// may ever reach Finch.
func fuzzServer(f *testing.F) (*server.Server, *atomic.Int64) {
	var calls atomic.Int64
	finchAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"code":500,"name":"server_error","message":"no"}`, http.StatusInternalServerError)
	}))
	f.Cleanup(finchAPI.Close)
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(tokenstore.NewMemory(), kr)
	srv, err := server.New(server.Config{PublicURL: "http://app.test", CallbackLimit: server.RateLimit{PerMinute: -1}, Logger: discard},
		&finch.Client{BaseURL: finchAPI.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("secret")}, store)
	if err != nil {
		f.Fatal(err)
	}
	return srv, &calls
}

func checkFuzzResponse(t *testing.T, rec *httptest.ResponseRecorder, calls *atomic.Int64, inputs ...string) {
	t.Helper()
	if rec.Code < 300 || rec.Code >= 500 {
		t.Errorf("status = %d, want a redirect or a 4xx", rec.Code)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("a fuzzed callback reached Finch %d times", n)
	}
	body := rec.Body.String()
	for _, in := range inputs {
		// The page may echo Connect's error name, escaped; it must never
		// echo a code or a state.
		if len(in) >= 24 && strings.Contains(body, in) {
			t.Errorf("the response echoes the input %q", in)
		}
	}
}

// FuzzCallbackQuery throws arbitrary query strings and cookies at the
// redirect-flow callback.
func FuzzCallbackQuery(f *testing.F) {
	srv, calls := fuzzServer(f)
	f.Add("code=abc&state=def", "")
	f.Add("code=&state=", "fc_browser=x")
	f.Add("error=access_denied&error_description=%3Cscript%3E&state=s", "fc_browser=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Add("code=a&code=b&state=%00%ff", "fc_browser=%zz")
	f.Add(strings.Repeat("x", 5000), "")
	f.Fuzz(func(t *testing.T, query, cookie string) {
		req := httptest.NewRequest("GET", "/callback", nil)
		req.URL.RawQuery = query
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		q, _ := url.ParseQuery(query)
		checkFuzzResponse(t, rec, calls, q.Get("code"), q.Get("state"))
	})
}

// FuzzCallbackJSON throws arbitrary bodies at the embedded-flow callback.
func FuzzCallbackJSON(f *testing.F) {
	srv, calls := fuzzServer(f)
	f.Add([]byte(`{"code":"c","state":"s"}`))
	f.Add([]byte(`{"code":1,"state":null}`))
	f.Add([]byte(`{"error":"x"}`))
	f.Add([]byte(`[`))
	f.Add([]byte(strings.Repeat(`{"a":`, 10000)))
	f.Add(bytes.Repeat([]byte("x"), 70<<10)) // over the body limit
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/callback", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		checkFuzzResponse(t, rec, calls)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("embedded callback answered %q, want JSON", ct)
		}
	})
}
