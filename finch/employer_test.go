package finch_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/google/go-cmp/cmp"
)

// TestClient_Directory walks the sandbox's directory page by page.
func TestClient_Directory(t *testing.T) {
	e := newEnv(t)
	tok := e.connection("authorized_complex").AccessToken
	all, err := e.client.DirectoryPage(t.Context(), tok, finch.DirectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range all.Individuals {
		want = append(want, p.ID)
	}
	if len(want) < 200 {
		t.Fatalf("the complex scenario has %d people, want hundreds", len(want))
	}

	tests := []struct {
		name      string
		opts      finch.DirectoryOptions
		stopAfter int // 0: walk to the end
		want      []string
		wantPages int
	}{
		{"pages of 64", finch.DirectoryOptions{Limit: 64}, 0, want, (len(want) + 63) / 64},
		{"from an offset", finch.DirectoryOptions{Limit: 100, Offset: 150}, 0, want[150:], (len(want) - 150 + 99) / 100},
		{"break early", finch.DirectoryOptions{Limit: 10}, 15, want[:15], 2},
		{"one page when Finch sends all", finch.DirectoryOptions{}, 0, want, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.rec.count("GET", "/employer/directory")
			var got []string
			for p, err := range e.client.Directory(t.Context(), tok, tt.opts) {
				if err != nil {
					t.Fatalf("Directory yielded %v", err)
				}
				got = append(got, p.ID)
				if tt.stopAfter > 0 && len(got) == tt.stopAfter {
					break
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Directory(%+v) mismatch (-want +got):\n%s", tt.opts, diff)
			}
			if n := e.rec.count("GET", "/employer/directory") - before; n != tt.wantPages {
				t.Errorf("Directory(%+v) fetched %d pages, want %d", tt.opts, n, tt.wantPages)
			}
		})
	}
}

// directoryServer answers GET /employer/directory with pages built by page.
func directoryServer(t *testing.T, page func(offset int) (status int, body string)) (*httptest.Server, *int) {
	t.Helper()
	calls := new(int)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*calls++
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		status, body := page(off)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return ts, calls
}

func people(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":"p` + strconv.Itoa(i) + `"}`)
	}
	return "[" + b.String() + "]"
}

// TestClient_DirectoryEdges: the iterator ends on every stop condition of
// the SDK's paging rule, and on a server that would page forever.
func TestClient_DirectoryEdges(t *testing.T) {
	tests := []struct {
		name      string
		page      func(offset int) (int, string)
		wantItems int
		wantErr   string
		wantCalls int
	}{
		{"no count", func(int) (int, string) { return 200, `{"paging":{"offset":0},"individuals":` + people(3) + `}` }, 3, "", 1},
		{"empty page", func(off int) (int, string) {
			if off == 0 {
				return 200, `{"paging":{"offset":0,"count":10},"individuals":` + people(4) + `}`
			}
			return 200, `{"paging":{"offset":4,"count":10},"individuals":[]}`
		}, 4, "", 2},
		{"offset ignored", func(int) (int, string) {
			return 200, `{"paging":{"offset":0,"count":10},"individuals":` + people(3) + `}`
		}, 6, "did not advance", 2},
		{"error on page two", func(off int) (int, string) {
			if off == 0 {
				return 200, `{"paging":{"offset":0,"count":10},"individuals":` + people(5) + `}`
			}
			return 401, `{"code":401,"name":"invalid_token_error","message":"bad token"}`
		}, 5, "invalid_token_error", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, calls := directoryServer(t, tt.page)
			c := &finch.Client{BaseURL: ts.URL, MaxRetries: -1}
			items, errs := 0, []error{}
			for _, err := range c.Directory(t.Context(), finchconnect.NewSecret("tok"), finch.DirectoryOptions{Limit: 5}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				items++
			}
			if items != tt.wantItems {
				t.Errorf("%d individuals, want %d", items, tt.wantItems)
			}
			switch {
			case tt.wantErr == "" && len(errs) > 0:
				t.Errorf("errors %v, want none", errs)
			case tt.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr)):
				t.Errorf("errors %v, want one containing %q", errs, tt.wantErr)
			}
			if *calls != tt.wantCalls {
				t.Errorf("%d requests, want %d", *calls, tt.wantCalls)
			}
		})
	}
}

// TestClient_NotReady: while Finch is still fetching an assisted
// connection's data it answers 202; the client reports that as an error
// instead of decoding an empty company.
func TestClient_NotReady(t *testing.T) {
	e := newEnv(t)
	conn := e.connection("authorized_simple")
	if err := e.sb.SetConnectionStatus(conn.ConnectionID, "pending"); err != nil {
		t.Fatal(err)
	}
	co, err := e.client.Company(t.Context(), conn.AccessToken)
	var apiErr *finch.APIError
	if co != nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 202 || apiErr.FinchCode != "data_sync_in_progress" {
		t.Errorf("Company of a pending connection = %+v, %v, want a 202 data_sync_in_progress APIError", co, err)
	}
	// Do passes the 202 through as it is.
	res, err := e.client.Do(t.Context(), conn.AccessToken, "GET", "/employer/company", nil, nil)
	if err != nil || res.StatusCode != 202 || res.Err() != nil {
		t.Errorf("Do = %+v, %v, want the 202 response with no error", res, err)
	}
	for status, want := range map[string]error{"error_no_account_setup": finchconnect.ErrReauthRequired, "reauth": finchconnect.ErrReauthRequired} {
		if err := e.sb.SetConnectionStatus(conn.ConnectionID, status); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Company(t.Context(), conn.AccessToken); !errors.Is(err, want) || errors.Is(err, finchconnect.ErrUnauthorized) {
			t.Errorf("Company in status %s = %v, want %v and not ErrUnauthorized", status, err, want)
		}
	}
}

// TestClient_BatchItems: per-item results of the batch endpoints, as a
// server answers them (one found, one not found, one still syncing).
func TestClient_BatchItems(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Finch-Request-Id", "req-7")
		switch r.URL.Path {
		case "/employer/individual":
			w.Write([]byte(`{"responses":[
				{"individual_id":"a","code":200,"body":{"id":"a","first_name":"Ada","dob":null,"phone_numbers":[{"data":"+1555","type":null}],"ssn":null}},
				{"individual_id":"b","code":404,"body":{"code":404,"name":"not_found_error","finch_code":"individual_not_found","message":"no such individual"}},
				{"individual_id":"c","body":{"id":"c"}}]}`))
		case "/employer/pay-statement":
			w.Write([]byte(`{"responses":[
				{"payment_id":"p1","code":200,"body":{"paging":{"offset":0,"count":1},"pay_statements":[{"individual_id":"a","gross_pay":{"amount":123456,"currency":"usd"},"total_hours":80.5,"earnings":[{"amount":null,"name":"Salary","type":"salary"}]}]}},
				{"payment_id":"p2","code":202,"body":{"code":202,"finch_code":"data_sync_in_progress","name":"accepted","message":"The pay statements for this payment are being fetched. Please check back later."}},
				{"payment_id":"p3","code":403,"body":{"code":403,"name":"insufficient_scope_error","message":"no"}}]}`))
		}
	}))
	defer ts.Close()
	c := &finch.Client{BaseURL: ts.URL}
	ctx := t.Context()

	inds, err := c.Individuals(ctx, finchconnect.NewSecret("tok"), []string{"a", "b", "c"}, finch.IndividualOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantInds := []finch.IndividualResult{
		{IndividualID: "a", Code: 200, Individual: &finch.IndividualDetail{ID: "a", FirstName: "Ada", PhoneNumbers: []finch.Contact{{Data: "+1555"}}}},
		{IndividualID: "b", Code: 404},
		{IndividualID: "c", Code: 200, Individual: &finch.IndividualDetail{ID: "c"}},
	}
	if diff := cmp.Diff(wantInds, inds, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); diff != "" {
		t.Errorf("Individuals mismatch (-want +got):\n%s", diff)
	}
	var apiErr *finch.APIError
	if !errors.As(inds[1].Err, &apiErr) || apiErr.FinchCode != "individual_not_found" || apiErr.RequestID != "req-7" || inds[0].Err != nil {
		t.Errorf("item errors = %v, %v, want nil and individual_not_found (request id req-7)", inds[0].Err, inds[1].Err)
	}

	ps, err := c.PayStatements(ctx, finchconnect.NewSecret("tok"), []finch.PayStatementRequest{{PaymentID: "p1"}, {PaymentID: "p2"}, {PaymentID: "p3"}})
	if err != nil || len(ps) != 3 {
		t.Fatalf("PayStatements = %+v, %v", ps, err)
	}
	amount, hours := int64(123456), 80.5
	wantP1 := []finch.PayStatement{{IndividualID: "a", GrossPay: &finch.Money{Amount: &amount, Currency: "usd"}, TotalHours: &hours,
		Earnings: []finch.Earning{{Name: "Salary", Type: "salary"}}}}
	if diff := cmp.Diff(wantP1, ps[0].PayStatements); diff != "" || ps[0].Err != nil || ps[0].Paging.Count != 1 {
		t.Errorf("payment p1 = %+v mismatch (-want +got):\n%s", ps[0], diff)
	}
	if !errors.As(ps[1].Err, &apiErr) || apiErr.StatusCode != 202 || apiErr.FinchCode != "data_sync_in_progress" || ps[1].PayStatements != nil {
		t.Errorf("payment p2 = %+v, want a 202 data_sync_in_progress error", ps[1])
	}
	if !errors.Is(ps[2].Err, finchconnect.ErrInsufficientScope) {
		t.Errorf("payment p3 err = %v, want ErrInsufficientScope", ps[2].Err)
	}
}

// TestClient_DecodeErrors: a body of the wrong shape is a clear error,
// never a panic or a half-filled value.
func TestClient_DecodeErrors(t *testing.T) {
	tests := []struct {
		name, body string
		call       func(c *finch.Client) error
	}{
		{"company as array", `[1,2]`, func(c *finch.Client) error {
			_, err := c.Company(t.Context(), finchconnect.NewSecret("tok"))
			return err
		}},
		{"wrong type", `{"legal_name":42}`, func(c *finch.Client) error {
			_, err := c.Company(t.Context(), finchconnect.NewSecret("tok"))
			return err
		}},
		{"empty body", ``, func(c *finch.Client) error {
			_, err := c.Introspect(t.Context(), finchconnect.NewSecret("tok"))
			return err
		}},
		{"payments as object", `{"id":"x"}`, func(c *finch.Client) error {
			_, err := c.Payments(t.Context(), finchconnect.NewSecret("tok"), "2024-01-01", "2024-02-01")
			return err
		}},
		{"token without access_token", `{"connection_id":"c"}`, func(c *finch.Client) error {
			_, err := c.ExchangeCode(t.Context(), "code", "")
			return err
		}},
		{"token without connection_id", `{"access_token":"t"}`, func(c *finch.Client) error {
			_, err := c.ExchangeCode(t.Context(), "code", "")
			return err
		}},
		{"session without url", `{"session_id":"s"}`, func(c *finch.Client) error {
			_, err := c.NewConnectSession(t.Context(), finch.SessionRequest{CustomerID: "c", CustomerName: "n", Products: []string{"company"}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tt.body)) }))
			defer ts.Close()
			c := &finch.Client{BaseURL: ts.URL, ClientID: "id", ClientSecret: finchconnect.NewSecret("s")}
			err := tt.call(c)
			if err == nil || !strings.HasPrefix(err.Error(), "finch: ") {
				t.Errorf("err = %v, want a finch: error", err)
			}
			var apiErr *finch.APIError
			if errors.As(err, &apiErr) {
				t.Errorf("err = %v is an APIError; a 200 with a bad body is not Finch's refusal", err)
			}
		})
	}
}

// TestIntrospection_LastSync: last_successful_sync is read leniently.
func TestIntrospection_LastSync(t *testing.T) {
	tests := []struct {
		raw  string
		want string // RFC 3339, "" for nil
	}{
		{`"2024-05-01T10:00:00Z"`, "2024-05-01T10:00:00Z"},
		{`"2024-05-01T10:00:00.123+02:00"`, "2024-05-01T10:00:00.123+02:00"},
		{`"2024-05-01"`, "2024-05-01T00:00:00Z"},
		{`null`, ""},
		{`"last tuesday"`, ""},
		{`17`, ""},
	}
	for _, tt := range tests {
		var in finch.Introspection
		if err := json.Unmarshal([]byte(`{"connection_status":{"status":"connected","last_successful_sync":`+tt.raw+`}}`), &in); err != nil {
			t.Errorf("decode with last_successful_sync %s: %v", tt.raw, err)
			continue
		}
		got := ""
		if ts := in.ConnectionStatus.LastSuccessfulSync; ts != nil {
			got = ts.Format("2006-01-02T15:04:05.999Z07:00")
		}
		if got != tt.want || in.ConnectionStatus.Status != "connected" {
			t.Errorf("last_successful_sync %s = %q (status %q), want %q", tt.raw, got, in.ConnectionStatus.Status, tt.want)
		}
	}
}
