package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/finchconnect/finchconnect/keyring"
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// seedConnections stores n connections straight into the harness's store,
// as an operator with n employers has them: customer i was connected i
// minutes after base, at providers and in statuses by turns. Their tokens
// are not Finch's; the pages that list them open none.
func seedConnections(t testing.TB, store *tokenstore.Store, n int, base time.Time) {
	t.Helper()
	providers := []string{"gusto", "paychex_flex", "adp_workforce_now", "bamboo_hr"}
	for i := range n {
		status := finchconnect.StatusConnected
		switch {
		case i%50 == 7:
			status = finchconnect.StatusReauth
		case i%50 == 9:
			status = finchconnect.StatusDisconnected
		}
		err := store.Put(t.Context(), finchconnect.Connection{
			ConnectionID: fmt.Sprintf("seed-%08x-%04d", uint32(i)*2654435761, i), // ids sort unlike creation
			CustomerID:   fmt.Sprintf("cust-%04d", i),
			CustomerName: fmt.Sprintf("Employer %04d Inc.", i),
			ProviderID:   providers[i%len(providers)],
			Products:     []string{"company", "directory"},
			Status:       status,
			CreatedAt:    base.Add(time.Duration(i) * time.Minute),
			AccessToken:  finchconnect.NewSecret(fmt.Sprintf("seed-token-%d", i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

var customerLinkRe = regexp.MustCompile(`<a href="/connections/[^"]+">([^<]+)</a><div class="muted">([^<]*)</div>`)

// listedCustomers are the customer ids of a home page's rows, in order.
func listedCustomers(body string) []string {
	var ids []string
	for _, m := range customerLinkRe.FindAllStringSubmatch(body, -1) {
		ids = append(ids, html.UnescapeString(m[2]))
	}
	return ids
}

func TestHome_ListsNewestFirstWithCountsAndPaging(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	seedConnections(t, h.store, 120, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))

	first := h.do(h.client, "GET", "/", nil)
	if first.status != http.StatusOK {
		t.Fatalf("GET / = %d", first.status)
	}
	got := listedCustomers(first.body)
	if len(got) != 50 || got[0] != "cust-0119" || got[49] != "cust-0070" {
		t.Fatalf("first page = %d rows from %v, want 50, cust-0119 (newest) down to cust-0070", len(got), got)
	}
	for _, want := range []string{`<strong id="total">120</strong> connections`, "Showing 1–50 of 120", "Page 1 of 3",
		`Needs re-authentication <b>3</b>`, `Disconnected <b>3</b>`, `Connected <b>114</b>`, `href="/?page=2" id="next-page"`} {
		if !strings.Contains(first.body, want) {
			t.Errorf("first page lacks %q", want)
		}
	}
	if strings.Contains(first.body, `id="prev-page"`) {
		t.Error("the first page links a previous page")
	}

	second := h.do(h.client, "GET", "/?page=2", nil)
	if got := listedCustomers(second.body); len(got) != 50 || got[0] != "cust-0069" {
		t.Errorf("second page starts at %v, want cust-0069", got)
	}
	if !strings.Contains(second.body, `href="/" id="prev-page"`) || !strings.Contains(second.body, `href="/?page=3" id="next-page"`) {
		t.Errorf("second page lacks Previous (to /) or Next (to page 3):\n%s", second.body)
	}
	last := h.do(h.client, "GET", "/?page=3", nil)
	if got := listedCustomers(last.body); len(got) != 20 || got[19] != "cust-0000" {
		t.Errorf("last page = %v, want 20 rows ending with the oldest, cust-0000", got)
	}
	if !strings.Contains(last.body, "Showing 101–120 of 120") || strings.Contains(last.body, `id="next-page"`) {
		t.Errorf("last page: want 101–120 and no Next:\n%s", last.body)
	}
	// A page past the end shows the last one rather than nothing.
	if got := listedCustomers(h.do(h.client, "GET", "/?page=99", nil).body); len(got) != 20 {
		t.Errorf("page 99 shows %d rows, want the last page's 20", len(got))
	}
	oldest := h.do(h.client, "GET", "/?sort=oldest", nil)
	if got := listedCustomers(oldest.body); len(got) == 0 || got[0] != "cust-0000" {
		t.Errorf("oldest first starts with %v, want cust-0000", got)
	}
	if !strings.Contains(oldest.body, `href="/?page=2&amp;sort=oldest" id="next-page"`) {
		t.Errorf("Next does not keep the order:\n%s", oldest.body)
	}
}

func TestHome_SearchAndFilters(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	seedConnections(t, h.store, 200, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	conns, _, err := h.store.List(t.Context(), tokenstore.Filter{CustomerID: "cust-0042"})
	if err != nil || len(conns) != 1 {
		t.Fatalf("seeded cust-0042: %v, %v", conns, err)
	}
	tests := []struct {
		name, query string
		want        []string // customer ids, newest first; nil: check count only
		count       int
	}{
		{"by customer id", "q=cust-0042", []string{"cust-0042"}, 1},
		{"by customer name, any case", "q=employer+0042+INC", []string{"cust-0042"}, 1},
		{"by connection id", "q=" + url.QueryEscape(strings.ToUpper(conns[0].ConnectionID)), []string{"cust-0042"}, 1},
		{"by a part of names", "q=Employer+019", []string{"cust-0199", "cust-0198", "cust-0197", "cust-0196", "cust-0195", "cust-0194", "cust-0193", "cust-0192", "cust-0191", "cust-0190"}, 10},
		{"by provider", "provider=paychex_flex", nil, 50},
		{"by status", "status=reauth", []string{"cust-0157", "cust-0107", "cust-0057", "cust-0007"}, 4},
		{"by provider and status", "provider=gusto&status=reauth", nil, 0},
		{"search and provider", "q=cust-00&provider=gusto", nil, 25},
		{"nothing matches", "q=nobody-here", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(h.client, "GET", "/?"+tt.query, nil)
			if res.status != http.StatusOK {
				t.Fatalf("GET /?%s = %d", tt.query, res.status)
			}
			got := listedCustomers(res.body)
			if tt.want != nil && strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("listed %v, want %v", got, tt.want)
			}
			if tt.count == 0 {
				if len(got) != 0 || !strings.Contains(res.body, `id="no-match"`) {
					t.Errorf("listed %v, want none and the no-match line", got)
				}
				return
			}
			if !strings.Contains(res.body, fmt.Sprintf("of %d matching", tt.count)) {
				t.Errorf("page does not say %d matching:\n%s", tt.count, res.body)
			}
			if !strings.Contains(res.body, `<strong id="total">200</strong>`) {
				t.Error("the total is not every connection's")
			}
			if !strings.Contains(res.body, `id="clear"`) {
				t.Error("a filtered list offers no way back to all")
			}
		})
	}
	// Filters survive paging.
	res := h.do(h.client, "GET", "/?status=connected&provider=gusto", nil)
	if !strings.Contains(res.body, `<option value="gusto" selected>Gusto (50)</option>`) {
		t.Errorf("the provider filter does not show its choice and count:\n%s", res.body)
	}
	res = h.do(h.client, "GET", "/?status=connected", nil)
	if !strings.Contains(res.body, `href="/?page=2&amp;status=connected" id="next-page"`) {
		t.Errorf("Next drops the status filter:\n%s", res.body)
	}
	if !strings.Contains(res.body, `<option value="connected" selected>Connected (192)</option>`) {
		t.Errorf("the status filter does not show its choice and count:\n%s", res.body)
	}
}

func TestHome_DisplayNames(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	seedConnections(t, h.store, 10, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	res := h.do(h.client, "GET", "/", nil)
	for _, want := range []string{`<td data-label="Provider">Paychex Flex</td>`, `<td data-label="Provider">ADP Workforce Now</td>`,
		`<td data-label="Provider">BambooHR</td>`, `status-reauth">Needs re-authentication</span>`, `status-connected">Connected</span>`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	// Raw values stay in attributes (a filter's value, a class), never in text.
	for _, raw := range []string{">paychex_flex<", ">reauth<", ">reauth ", "bamboo_hr<", ">gusto<"} {
		if strings.Contains(res.body, raw) {
			t.Errorf("home page shows the raw value %q", raw)
		}
	}
}

func TestHome_ConnectFormAtTheTop(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	empty := h.do(h.client, "GET", "/", nil)
	if !strings.Contains(empty.body, `id="connect-panel" open`) {
		t.Errorf("with no connection, the connect form is folded away:\n%s", empty.body)
	}
	seedConnections(t, h.store, 60, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	full := h.do(h.client, "GET", "/", nil)
	form, table := strings.Index(full.body, `id="connect-form"`), strings.Index(full.body, `id="connections"`)
	if form < 0 || table < 0 || form > table {
		t.Errorf("connect form at %d, table at %d: want the form above the rows", form, table)
	}
	if strings.Contains(full.body, `id="connect-panel" open`) {
		t.Error("with connections listed, the connect form is unfolded over them")
	}
	if strings.Count(full.body, `id="connect-form"`) != 1 {
		t.Error("the connect form appears more than once")
	}
}

func TestConnect_NoProductsKeepsTheEmptyChoice(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	res := h.do(h.client, "POST", "/connect", url.Values{"customer_id": {"c-1"}, "customer_name": {"C One"}})
	if res.status != http.StatusBadRequest {
		t.Fatalf("POST /connect with no product = %d, want 400", res.status)
	}
	if !strings.Contains(res.body, "Choose at least one product") {
		t.Errorf("no error about the products:\n%s", res.body)
	}
	if n := strings.Count(res.body, `name="products"`); n < 9 {
		t.Errorf("%d product boxes, want all of them", n)
	}
	if regexp.MustCompile(`name="products"[^>]*checked`).MatchString(res.body) {
		t.Errorf("the defaults were ticked again over the operator's empty choice:\n%s", res.body)
	}
	if !strings.Contains(res.body, `id="connect-panel" open`) || !strings.Contains(res.body, `value="C One"`) {
		t.Error("the form with its problem is not shown open with what was typed")
	}
	// A choice is kept as made.
	res = h.do(h.client, "POST", "/connect", url.Values{"customer_id": {"c-1"}, "customer_name": {""}, "products": {"payment"}})
	if !regexp.MustCompile(`value="payment"[^>]*checked`).MatchString(res.body) || regexp.MustCompile(`value="company"[^>]*checked`).MatchString(res.body) {
		t.Errorf("the operator's choice (payment only) is not what the form shows again:\n%s", res.body)
	}
	// The plain form still ticks the defaults.
	if !regexp.MustCompile(`value="company"[^>]*checked`).MatchString(h.do(h.client, "GET", "/", nil).body) {
		t.Error("a fresh form ticks no default product")
	}
}

func TestDisconnect_AsksFirst(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.finish(h.client, h.connect(h.client, "acme-ask", "authorized_simple"))
	page := h.do(h.client, "GET", "/connections/"+id, nil)
	if !strings.Contains(page.body, `href="/connections/`+id+`/disconnect" id="disconnect"`) {
		t.Fatalf("the connection page's Disconnect does not lead to the confirmation:\n%s", page.body)
	}
	if regexp.MustCompile(`<form[^>]*action="[^"]*/disconnect"`).MatchString(page.body) {
		t.Error("the connection page holds a form that disconnects in one click")
	}
	ask := h.do(h.client, "GET", "/connections/"+id+"/disconnect", nil)
	if ask.status != http.StatusOK {
		t.Fatalf("GET the confirmation = %d", ask.status)
	}
	for _, want := range []string{"Disconnect Customer acme-ask?", "cannot be undone", `name="confirm" value="yes"`, `id="cancel"`, "Gusto"} {
		if !strings.Contains(ask.body, want) {
			t.Errorf("confirmation page lacks %q", want)
		}
	}
	if n := h.sb.Stats().Requests["POST /disconnect"]; n != 0 {
		t.Errorf("Finch was asked to disconnect %d times before any confirmation", n)
	}
	if _, err := h.store.Lookup(t.Context(), id); err != nil {
		t.Fatalf("the connection is gone before the confirmation: %v", err)
	}
	action, vals := hiddenFields(t, ask.body, `name="confirm"`)
	res := h.do(h.client, "POST", action, vals)
	if res.status != http.StatusSeeOther {
		t.Fatalf("POST the confirmation = %d; body:\n%s", res.status, res.body)
	}
	if _, err := h.store.Lookup(t.Context(), id); err == nil {
		t.Error("the confirmed disconnect left the connection stored")
	}
	if missing := h.do(h.client, "GET", "/connections/nope/disconnect", nil); missing.status != http.StatusNotFound {
		t.Errorf("confirmation of an unknown connection = %d, want 404", missing.status)
	}
}

func TestFavicon(t *testing.T) {
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	res := h.do(h.client, "GET", "/favicon.ico", nil)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "image/x-icon" {
		t.Fatalf("GET /favicon.ico = %d %q, want 200 image/x-icon", res.status, res.header.Get("Content-Type"))
	}
	if !strings.HasPrefix(res.body, "\x00\x00\x01\x00") || len(res.body) > 4096 {
		t.Errorf("favicon is %d bytes starting %q, want a small ICO", len(res.body), res.body[:min(4, len(res.body))])
	}
	if !strings.Contains(h.do(h.client, "GET", "/", nil).body, `<link rel="icon" href="/favicon.ico"`) {
		t.Error("pages do not link the icon (needed when mounted under a path)")
	}
}

// connectWith connects an employer through the sandbox with the given
// products and returns the connection id.
func (h *harness) connectWith(customerID string, products ...string) string {
	h.t.Helper()
	res := h.do(h.client, "POST", "/connect", url.Values{
		"customer_id": {customerID}, "customer_name": {"Customer " + customerID}, "products": products,
	})
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("POST /connect = %d; body:\n%s", res.status, res.body)
	}
	return h.finish(h.client, h.signIn(h.client, res.location, "authorized_simple"))
}

var employeeLinkRe = regexp.MustCompile(`<a href="(/connections/[^"]+/employees/[^"]+)">([^<]+)</a>`)

func TestEmployeePage(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.connectWith("acme-people", "company", "directory", "individual", "employment", "payment", "pay_statement", "ssn")
	conn, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	page := h.do(h.client, "GET", "/connections/"+id, nil)
	links := employeeLinkRe.FindAllStringSubmatch(page.body, -1)
	if len(links) == 0 {
		t.Fatalf("the directory links no employee:\n%s", page.body)
	}
	// Find someone who is paid: the sandbox pays its active salaried people.
	var emp response
	var individual string
	for _, l := range links {
		emp = h.do(h.client, "GET", html.UnescapeString(l[1]), nil)
		if emp.status != http.StatusOK {
			t.Fatalf("GET %s = %d; body:\n%s", l[1], emp.status, emp.body)
		}
		individual = l[1][strings.LastIndex(l[1], "/")+1:]
		if strings.Contains(emp.body, `id="pay-statements"`) {
			break
		}
	}
	if d := os.Getenv("DUMP_PAGES"); d != "" {
		os.WriteFile(d+"/employee.html", []byte(emp.body), 0o644)
	}
	for _, want := range []string{`id="individual"`, `id="employment"`, `id="pay-statements"`, "$", `id="ssn">•••-••-`} {
		if !strings.Contains(emp.body, want) {
			t.Errorf("employee page lacks %q:\n%s", want, emp.body)
		}
	}
	// The SSN as the sandbox holds it: only its last four show.
	ssn := sandboxSSN(t, h, conn.AccessToken.Reveal(), individual)
	if strings.Contains(emp.body, ssn) || strings.Contains(emp.body, ssn[:6]) {
		t.Errorf("employee page shows the SSN unmasked:\n%s", emp.body)
	}
	if !strings.Contains(emp.body, `id="ssn">•••-••-`+ssn[len(ssn)-4:]+`<`) {
		t.Errorf("employee page does not show the SSN's last four digits, masked:\n%s", emp.body)
	}
	if strings.Contains(emp.body, conn.AccessToken.Reveal()) {
		t.Error("employee page shows the access token")
	}
	if missing := h.do(h.client, "GET", "/connections/"+id+"/employees/no-such-person", nil); missing.status != http.StatusNotFound {
		t.Errorf("an unknown employee = %d, want 404", missing.status)
	}

	// Without the ssn product, Finch sends none and none is shown.
	plain := h.connectWith("acme-plain", "company", "directory", "individual", "employment")
	page = h.do(h.client, "GET", "/connections/"+plain, nil)
	links = employeeLinkRe.FindAllStringSubmatch(page.body, -1)
	if len(links) == 0 {
		t.Fatal("no employee link")
	}
	emp = h.do(h.client, "GET", html.UnescapeString(links[0][1]), nil)
	if !strings.Contains(emp.body, `id="ssn">—<`) || strings.Contains(emp.body, `id="pay"`) {
		t.Errorf("without ssn and pay products: want no SSN and no pay section:\n%s", emp.body)
	}
}

func TestConnectionPage_EntityAndProviderByName(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.finish(h.client, h.connect(h.client, "acme-corp", "authorized_simple"))
	conn, err := h.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	company := map[string]any{
		"legal_name": "Acme", "entity": map[string]any{"type": "corporation", "subtype": "s_corporation"}, "primary_email": nil,
		"primary_phone_number": nil, "departments": []any{}, "locations": []any{}, "accounts": []any{}, "ein": nil,
	}
	b, _ := json.Marshal(company)
	req, _ := http.NewRequest("PUT", h.ts.URL+"/finch/sandbox/company", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+conn.AccessToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	page := h.do(h.client, "GET", "/connections/"+id, nil)
	if !strings.Contains(page.body, "<dd>S corporation</dd>") || strings.Contains(page.body, "corporation s corporation") {
		t.Errorf("entity not shown as \"S corporation\":\n%s", page.body)
	}
	if !strings.Contains(page.body, `id="provider">Gusto<`) || !strings.Contains(page.body, `id="status">Connected<`) {
		t.Errorf("provider or status not shown by name:\n%s", page.body)
	}
}

// TestConnectionPage_ReauthSaidOnce: a connection Finch says needs
// re-authentication is explained once, by the notice with its button.
func TestConnectionPage_ReauthSaidOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.finish(h.client, h.connect(h.client, "acme-re", "authorized_simple"))
	if err := h.sb.SetConnectionStatus(id, "reauth"); err != nil {
		t.Fatal(err)
	}
	page := h.do(h.client, "GET", "/connections/"+id, nil)
	if !strings.Contains(page.body, `id="reauth-needed"`) || strings.Contains(page.body, `id="data-error"`) {
		t.Errorf("want the re-authentication notice and no separate error:\n%s", page.body)
	}
	if n := strings.Count(strings.ToLower(page.body), "re-authenticat"); n != 2 { // the status, the button
		t.Errorf("re-authentication is mentioned %d times, want the status and the button only:\n%s", n, page.body)
	}
}

// sandboxSSN asks the sandbox for an individual's SSN, as Finch gives it
// with the ssn product.
func sandboxSSN(t *testing.T, h *harness, token, individual string) string {
	t.Helper()
	body := `{"requests":[{"individual_id":"` + individual + `"}],"options":{"include":["ssn"]}}`
	req, _ := http.NewRequest("POST", h.ts.URL+"/finch/employer/individual", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Responses []struct {
			Body struct {
				SSN string `json:"ssn"`
			} `json:"body"`
		} `json:"responses"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Responses) != 1 || len(out.Responses[0].Body.SSN) != 11 {
		t.Fatalf("the sandbox's individual %s: %v %+v", individual, err, out)
	}
	return out.Responses[0].Body.SSN
}

// TestConnectionPage_MissingKey: a row sealed under a key this server's
// keyring lacks answers 503 naming the key id, on the page and in /v1,
// and never a bare 500.
func TestConnectionPage_MissingKey(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key, err := keyring.Generate(9)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keyring.Parse(key.Encode())
	if err != nil {
		t.Fatal(err)
	}
	conn := finchconnect.Connection{ConnectionID: "c0ffee00-0000-4000-8000-000000000009", AccessToken: finchconnect.NewSecret("sealed-elsewhere-token"),
		CustomerID: "elsewhere", ProviderID: "gusto", Products: []string{"company"}, Status: "connected", CreatedAt: time.Now()}
	if err := tokenstore.New(h.backend, other).Put(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	page := h.do(h.client, "GET", "/connections/"+conn.ConnectionID, nil)
	if page.status != http.StatusServiceUnavailable || !strings.Contains(page.body, "encryption key id 9") {
		t.Fatalf("connection page of a row under a missing key = %d, want 503 naming key id 9; body:\n%s", page.status, page.body)
	}
	if strings.Contains(page.body, "sealed-elsewhere-token") {
		t.Error("the page shows the token")
	}
}
