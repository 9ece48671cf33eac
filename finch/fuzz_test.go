package finch_test

import (
	"encoding/json"
	"errors"
	"github.com/finchconnect/finchconnect"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

// FuzzResponses has a server answer every call with arbitrary statuses and
// bodies (malformed, huge, wrong types, null everywhere): each method
// returns a value or an error, never panics, never echoes the token, and
// reports a non-2xx status as an *APIError with that status.
func FuzzResponses(f *testing.F) {
	f.Add(200, `{"legal_name":"Acme","locations":[{"city":"X"}]}`)
	f.Add(200, `{"legal_name":123,"accounts":"nope"}`)
	f.Add(200, `{"paging":{"count":"x"},"individuals":null}`)
	f.Add(200, `{"paging":{"count":3,"offset":0},"individuals":[{"id":"a","is_active":null,"manager":null}]}`)
	f.Add(200, `{"responses":[{"individual_id":"a","code":200,"body":null},{"code":"x"}]}`)
	f.Add(200, `{"responses":[{"payment_id":"p","code":200,"body":{"paging":null,"pay_statements":[null]}}]}`)
	f.Add(200, `[{"id":"p","gross_pay":{"amount":1.5}},null]`)
	f.Add(200, `{"access_token":"t","connection_id":"c","token_type":"mac"}`)
	f.Add(200, `{"connection_status":{"last_successful_sync":"2024-02-30T25:00:00Z"}}`)
	f.Add(202, `{"code":202,"name":"accepted","finch_code":"data_sync_in_progress"}`)
	f.Add(401, `{"code":401,"name":"authentication_error","finch_code":"reauthenticate_user","message":"Please reauthenticate"}`)
	f.Add(500, `<html>oops</html>`)
	f.Add(429, `{"name":`)
	f.Add(200, strings.Repeat("[", 100000))
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 200 || status > 599 {
			status = 200
		}
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		defer ts.Close()
		c := &finch.Client{BaseURL: ts.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("client_secret_FUZZ_0001"), MaxRetries: -1, MaxBodyBytes: 1 << 16}
		const tok = "tok_FUZZ_MARKER_0123456789"
		ctx := t.Context()
		check := func(method string, err error) {
			if err == nil {
				return
			}
			if msg := err.Error(); strings.Contains(msg, tok) || strings.Contains(msg, "client_secret_FUZZ_0001") {
				t.Errorf("%s: error %q contains a secret", method, msg)
			}
			var apiErr *finch.APIError
			if status >= 300 && errors.As(err, &apiErr) && apiErr.StatusCode != status {
				t.Errorf("%s: APIError status %d, want %d", method, apiErr.StatusCode, status)
			}
			if _, jerr := json.Marshal(err); jerr != nil {
				t.Errorf("%s: the error does not encode: %v", method, jerr)
			}
		}
		_, err := c.ExchangeCode(ctx, "code_FUZZ_0001", "")
		check("ExchangeCode", err)
		_, err = c.Introspect(ctx, finchconnect.NewSecret(tok))
		check("Introspect", err)
		_, err = c.Company(ctx, finchconnect.NewSecret(tok))
		check("Company", err)
		_, err = c.DirectoryPage(ctx, finchconnect.NewSecret(tok), finch.DirectoryOptions{})
		check("DirectoryPage", err)
		n := 0
		for _, err := range c.Directory(ctx, finchconnect.NewSecret(tok), finch.DirectoryOptions{Limit: 1}) {
			check("Directory", err)
			if n++; n > 50 {
				break // the server answers the same page forever; that is fine
			}
		}
		inds, err := c.Individuals(ctx, finchconnect.NewSecret(tok), []string{"a"}, finch.IndividualOptions{})
		check("Individuals", err)
		for _, r := range inds {
			check("Individuals item", r.Err)
		}
		_, err = c.Employments(ctx, finchconnect.NewSecret(tok), []string{"a"})
		check("Employments", err)
		_, err = c.Payments(ctx, finchconnect.NewSecret(tok), "2024-01-01", "2024-12-31")
		check("Payments", err)
		ps, err := c.PayStatements(ctx, finchconnect.NewSecret(tok), []finch.PayStatementRequest{{PaymentID: "p"}})
		check("PayStatements", err)
		for _, r := range ps {
			check("PayStatements item", r.Err)
		}
		_, err = c.Providers(ctx)
		check("Providers", err)
		_, err = c.NewConnectSession(ctx, finch.SessionRequest{CustomerID: "c", CustomerName: "n", Products: []string{"company"}})
		check("NewConnectSession", err)
		check("Disconnect", c.Disconnect(ctx, finchconnect.NewSecret(tok)))
		res, err := c.Do(ctx, finchconnect.NewSecret(tok), "GET", "/employer/company", nil, nil)
		check("Do", err)
		if err == nil {
			check("Do response", res.Err())
		}
	})
}
