package finch_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
)

func TestSandboxAPI_Connections(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client

	conn, err := c.SandboxCreateConnection(ctx, finch.SandboxConnectionRequest{ProviderID: "gusto", Products: []string{"company", "deduction"}, EmployeeSize: 5, AuthenticationType: "api_token"})
	if err != nil {
		t.Fatal(err)
	}
	if conn.AccessToken.IsZero() || conn.ConnectionID == "" || conn.CompanyID == "" || conn.AccountID == "" || conn.ProviderID != "gusto" ||
		conn.AuthenticationType != "api_token" || !slices.Contains(conn.Products, "deduction") {
		t.Errorf("SandboxCreateConnection = %+v", conn)
	}
	if _, err := c.Company(ctx, conn.AccessToken); err != nil {
		t.Errorf("Company with the new token: %v", err)
	}
	acct, err := c.SandboxCreateAccount(ctx, finch.SandboxAccountRequest{CompanyID: conn.CompanyID, ProviderID: "gusto", Products: []string{"company"}})
	if err != nil || acct.AccessToken.IsZero() || acct.CompanyID != conn.CompanyID || acct.ProviderID != "gusto" || acct.AccessToken.Reveal() == conn.AccessToken.Reveal() {
		t.Fatalf("SandboxCreateAccount = %+v, %v", acct, err)
	}

	up, err := c.SandboxUpdateAccount(ctx, conn.AccessToken, "reauth")
	if err != nil || up.ConnectionID != conn.ConnectionID || !up.AccessToken.IsZero() {
		t.Fatalf("SandboxUpdateAccount = %+v, %v", up, err)
	}
	if _, err := c.Company(ctx, conn.AccessToken); !errors.Is(err, finchconnect.ErrReauthRequired) {
		t.Errorf("Company after reauth = %v, want ErrReauthRequired", err)
	}
	if _, err := c.SandboxUpdateAccount(ctx, conn.AccessToken, "connected"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Company(ctx, conn.AccessToken); err != nil {
		t.Errorf("Company after connected: %v", err)
	}

	_, err = c.SandboxUpdateAccount(ctx, conn.AccessToken, "sideways")
	apiErr(t, err, http.StatusBadRequest)
	_, err = c.SandboxCreateConnection(ctx, finch.SandboxConnectionRequest{ProviderID: "no-such-provider"})
	apiErr(t, err, http.StatusBadRequest)
	bad := &finch.Client{BaseURL: e.client.BaseURL, ClientID: "x", ClientSecret: finchconnect.NewSecret("wrong-secret")}
	_, err = bad.SandboxCreateConnection(ctx, finch.SandboxConnectionRequest{ProviderID: "gusto"})
	apiErr(t, err, http.StatusUnauthorized)
	if _, err := (&finch.Client{BaseURL: e.client.BaseURL}).SandboxCreateConnection(ctx, finch.SandboxConnectionRequest{ProviderID: "gusto"}); err == nil {
		t.Error("no client credentials passed")
	}
	if _, err := c.SandboxCreateAccount(ctx, finch.SandboxAccountRequest{ProviderID: "gusto"}); err == nil {
		t.Error("an account without a company passed")
	}
}

func TestSandboxAPI_Data(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("company", "directory", "individual", "ssn", "employment", "payment", "pay_statement")

	comp, err := c.SandboxUpdateCompany(ctx, tok, finch.Company{ID: "ignored", LegalName: "Acme Test LLC", EIN: "12-3456789",
		Locations: []finch.Location{{Line1: "1 Main St", City: "Springfield", State: "IL", PostalCode: "62701", Country: "US"}}})
	if err != nil || comp.LegalName != "Acme Test LLC" || comp.ID == "" || comp.ID == "ignored" {
		t.Fatalf("SandboxUpdateCompany = %+v, %v", comp, err)
	}
	if got, err := c.Company(ctx, tok); err != nil || got.LegalName != "Acme Test LLC" || len(got.Locations) != 1 {
		t.Errorf("Company after update = %+v, %v", got, err)
	}
	if b := string(e.rec.last(t, "PUT", "/sandbox/company").Body); strings.Contains(b, `"id"`) {
		t.Errorf("the company id was sent: %s", b)
	}

	active := true
	ids, err := c.SandboxAddDirectory(ctx, tok, []finch.SandboxPerson{{
		Individual: finch.SandboxIndividual{FirstName: "Ada", LastName: "Lovelace", SSN: finchconnect.NewSecret("123-45-6789")},
		Employment: finch.Employment{ID: "ignored", Title: "Engineer", IsActive: &active, Employment: &finch.EmploymentType{Type: "employee", Subtype: "full_time"}},
	}})
	if err != nil || len(ids) != 1 || ids[0] == "" || ids[0] == "ignored" {
		t.Fatalf("SandboxAddDirectory = %v, %v", ids, err)
	}
	sent := string(e.rec.last(t, "POST", "/sandbox/directory").Body)
	for _, want := range []string{`"first_name":"Ada"`, `"title":"Engineer"`, `"ssn":"123-45-6789"`} {
		if !strings.Contains(sent, want) {
			t.Errorf("directory body %s lacks %s", sent, want)
		}
	}
	if strings.Contains(sent, "ignored") || strings.Contains(sent, "redacted") {
		t.Errorf("directory body %s", sent)
	}

	id := e.firstIDs(tok, 1)[0]
	ind, err := c.SandboxUpdateIndividual(ctx, tok, id, finch.SandboxIndividual{PreferredName: "Zed", SSN: finchconnect.NewSecret("234-56-7890")})
	if err != nil || ind.ID != id || ind.PreferredName != "Zed" {
		t.Fatalf("SandboxUpdateIndividual = %+v, %v", ind, err)
	}
	res, err := c.Individuals(ctx, tok, []string{id}, finch.IndividualOptions{IncludeSSN: true})
	if err != nil || len(res) != 1 || res[0].Individual == nil || res[0].Individual.SSN.Reveal() != "234-56-7890" {
		t.Errorf("Individuals after update = %+v, %v", res, err)
	}
	_, err = c.SandboxUpdateIndividual(ctx, tok, id, finch.SandboxIndividual{SSN: finchconnect.NewSecret("000-00-0000")})
	if ae := apiErr(t, err, http.StatusBadRequest); strings.Contains(ae.Error(), "000-00-0000") {
		t.Errorf("the SSN is in the error: %v", ae)
	}
	_, err = c.SandboxUpdateIndividual(ctx, tok, "00000000-0000-4000-8000-000000000000", finch.SandboxIndividual{PreferredName: "x"})
	apiErr(t, err, http.StatusNotFound)

	emp, err := c.SandboxUpdateEmployment(ctx, tok, id, finch.Employment{ID: "ignored", Title: "Chief Tester"})
	if err != nil || emp.ID != id || emp.Title != "Chief Tester" {
		t.Fatalf("SandboxUpdateEmployment = %+v, %v", emp, err)
	}
	_, err = c.SandboxUpdateEmployment(ctx, tok, "00000000-0000-4000-8000-000000000000", finch.Employment{Title: "x"})
	apiErr(t, err, http.StatusNotFound)

	gross, net := int64(500000), int64(400000)
	pay, err := c.SandboxCreatePayment(ctx, tok, finch.SandboxPaymentRequest{StartDate: "2025-01-01", EndDate: "2025-01-14",
		PayStatements: []finch.SandboxPayStatement{{IndividualID: id, Type: "regular_payroll", PaymentMethod: "direct_deposit", GrossPay: &gross, NetPay: &net}}})
	if err != nil || pay.PaymentID == "" || pay.PayDate == "" {
		t.Fatalf("SandboxCreatePayment = %+v, %v", pay, err)
	}
	// Finch dates a sandbox payment today, whatever period it covers.
	payments, err := c.Payments(ctx, tok, pay.PayDate, pay.PayDate)
	if err != nil || !slices.ContainsFunc(payments, func(p finch.Payment) bool { return p.ID == pay.PaymentID }) {
		t.Errorf("Payments = %+v, %v", payments, err)
	}
	_, err = c.SandboxCreatePayment(ctx, tok, finch.SandboxPaymentRequest{StartDate: "2025-02-01", EndDate: "2025-01-01"})
	apiErr(t, err, http.StatusBadRequest)
}

func TestSandboxAPI_Jobs(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("directory")

	cfgs, err := c.SandboxJobConfigurations(ctx, tok)
	if err != nil || len(cfgs) != 1 || cfgs[0].Type != "data_sync_all" || cfgs[0].CompletionStatus != "complete" {
		t.Fatalf("SandboxJobConfigurations = %+v, %v", cfgs, err)
	}
	set, err := c.SandboxSetJobConfiguration(ctx, tok, finch.SandboxJobConfiguration{Type: "data_sync_all", CompletionStatus: "reauth_error"})
	if err != nil || set.CompletionStatus != "reauth_error" {
		t.Fatalf("SandboxSetJobConfiguration = %+v, %v", set, err)
	}
	job, err := c.SandboxCreateJob(ctx, tok)
	if err != nil || job.JobID == "" || job.AllowedRefreshes == 0 {
		t.Fatalf("SandboxCreateJob = %+v, %v", job, err)
	}
	e.sb.Advance(time.Hour)
	if got, err := c.AutomatedJob(ctx, tok, job.JobID); err != nil || got.Status != "reauth_error" {
		t.Errorf("the sandbox job ended as %+v, %v", got, err)
	}
	_, err = c.SandboxSetJobConfiguration(ctx, tok, finch.SandboxJobConfiguration{Type: "data_sync_all", CompletionStatus: "sometimes"})
	apiErr(t, err, http.StatusBadRequest)
	if _, err := c.SandboxSetJobConfiguration(ctx, tok, finch.SandboxJobConfiguration{}); err == nil {
		t.Error("an empty configuration passed")
	}
	_, err = c.SandboxJobConfigurations(ctx, finchconnect.NewSecret("not-a-real-token"))
	apiErr(t, err, http.StatusUnauthorized)
}
