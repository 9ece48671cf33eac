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

// sandboxToken makes a Finch Sandbox connection with the given products
// through the typed sandbox API and returns its token.
func (e *env) sandboxToken(products ...string) finchconnect.Secret {
	e.t.Helper()
	conn, err := e.client.SandboxCreateConnection(e.t.Context(), finch.SandboxConnectionRequest{ProviderID: "gusto", Products: products, EmployeeSize: 12})
	if err != nil {
		e.t.Fatalf("SandboxCreateConnection: %v", err)
	}
	return conn.AccessToken
}

// apiErr asserts err is an *APIError with the given status.
func apiErr(t *testing.T, err error, status int) *finch.APIError {
	t.Helper()
	var ae *finch.APIError
	if !errors.As(err, &ae) || ae.StatusCode != status {
		t.Fatalf("err = %v, want an APIError with status %d", err, status)
	}
	return ae
}

func (e *env) firstIDs(tok finchconnect.Secret, n int) []string {
	e.t.Helper()
	page, err := e.client.DirectoryPage(e.t.Context(), tok, finch.DirectoryOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(page.Individuals) < n {
		e.t.Fatalf("directory has %d individuals, want %d", len(page.Individuals), n)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = page.Individuals[i].ID
	}
	return ids
}

func TestProducts(t *testing.T) {
	for _, p := range []string{"benefits", "deduction", "ssn", "documents", "pay_statement", "company"} {
		if !finch.IsProduct(p) {
			t.Errorf("IsProduct(%q) = false", p)
		}
	}
	for _, p := range []string{"", "bogus", "employer:company", "Benefits"} {
		if finch.IsProduct(p) {
			t.Errorf("IsProduct(%q) = true", p)
		}
	}
}

func TestBenefits_Lifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tok := e.sandboxToken("directory", "benefits")
	c := e.client

	meta, err := c.SupportedBenefits(ctx, tok)
	if err != nil || len(meta) == 0 {
		t.Fatalf("SupportedBenefits = %v, %v", meta, err)
	}
	if len(meta[0].Frequencies) == 0 || meta[0].Type == "" || meta[0].EmployeeDeduction == nil {
		t.Errorf("supported benefit without frequencies: %+v", meta[0])
	}

	before, err := c.Benefits(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	amt := int64(10000)
	job, err := c.CreateBenefit(ctx, tok, finch.BenefitRequest{
		Type: "401k", Description: "Retirement", Frequency: "every_paycheck",
	})
	if err != nil || job.BenefitID == "" || job.JobID == "" {
		t.Fatalf("CreateBenefit = %+v, %v", job, err)
	}
	mj, err := c.ManualJob(ctx, tok, job.JobID)
	if err != nil || mj.JobID != job.JobID || mj.Status == "" {
		t.Fatalf("ManualJob = %+v, %v", mj, err)
	}
	e.sb.Advance(time.Hour)
	if mj, err = c.ManualJob(ctx, tok, job.JobID); err != nil || mj.Status != "complete" {
		t.Fatalf("ManualJob after an hour = %+v, %v", mj, err)
	}

	after, err := c.Benefits(ctx, tok)
	if err != nil || len(after) != len(before)+1 {
		t.Fatalf("Benefits after create = %d (%v), before %d", len(after), err, len(before))
	}
	b, err := c.Benefit(ctx, tok, job.BenefitID)
	if err != nil {
		t.Fatal(err)
	}
	if b.BenefitID != job.BenefitID || b.Type != "401k" || b.Description != "Retirement" || b.Frequency != "every_paycheck" {
		t.Errorf("Benefit = %+v (contribution %+v)", b, b.CompanyContribution)
	}

	up, err := c.UpdateBenefit(ctx, tok, job.BenefitID, "Retirement plan")
	if err != nil || up.JobID == "" {
		t.Fatalf("UpdateBenefit = %+v, %v", up, err)
	}
	e.sb.Advance(time.Hour)
	if b, err = c.Benefit(ctx, tok, job.BenefitID); err != nil || b.Description != "Retirement plan" {
		t.Fatalf("Benefit after update = %+v, %v", b, err)
	}

	ids := e.firstIDs(tok, 2)
	en, err := c.EnrollIndividuals(ctx, tok, job.BenefitID, []finch.Enrollment{
		{IndividualID: ids[0], Configuration: &finch.EnrollmentConfiguration{EmployeeDeduction: &finch.Contribution{Type: "fixed", Amount: &amt}}},
		{IndividualID: ids[1], Configuration: &finch.EnrollmentConfiguration{EmployeeDeduction: &finch.Contribution{Type: "percent", Amount: &amt}}},
	})
	if err != nil || en.JobID == "" {
		t.Fatalf("EnrollIndividuals = %+v, %v", en, err)
	}
	e.sb.Advance(time.Hour)
	enrolled, err := c.EnrolledIndividuals(ctx, tok, job.BenefitID)
	if err != nil || enrolled.BenefitID != job.BenefitID || len(enrolled.IndividualIDs) != 2 ||
		!slices.Contains(enrolled.IndividualIDs, ids[0]) || !slices.Contains(enrolled.IndividualIDs, ids[1]) {
		t.Fatalf("EnrolledIndividuals = %+v, %v", enrolled, err)
	}
	res, err := c.IndividualBenefits(ctx, tok, job.BenefitID, ids[:1])
	if err != nil || len(res) != 1 {
		t.Fatalf("IndividualBenefits = %+v, %v", res, err)
	}
	if r := res[0]; r.IndividualID != ids[0] || r.Code != 200 || r.Err != nil || r.Benefit == nil ||
		r.Benefit.EmployeeDeduction == nil || r.Benefit.EmployeeDeduction.Type != "fixed" || *r.Benefit.EmployeeDeduction.Amount != amt {
		t.Errorf("IndividualBenefits[0] = %+v (benefit %+v)", r, r.Benefit)
	}
	if q := e.rec.last(t, "GET", "/employer/benefits/"+job.BenefitID+"/individuals").RawQuery; q != "individual_ids="+ids[0] {
		t.Errorf("IndividualBenefits query = %q", q)
	}
	all, err := c.IndividualBenefits(ctx, tok, job.BenefitID, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("IndividualBenefits(all) = %d results, %v", len(all), err)
	}
	// An individual who is not enrolled comes back as an item error.
	notEnrolled := e.firstIDs(tok, 3)[2]
	mixed, err := c.IndividualBenefits(ctx, tok, job.BenefitID, []string{ids[0], notEnrolled})
	if err != nil || len(mixed) != 2 {
		t.Fatalf("IndividualBenefits(mixed) = %+v, %v", mixed, err)
	}
	i := slices.IndexFunc(mixed, func(r finch.IndividualBenefitResult) bool { return r.IndividualID == notEnrolled })
	if i < 0 {
		t.Fatalf("no result for the individual who is not enrolled: %+v", mixed)
	}
	if r := mixed[i]; r.Err == nil || r.Benefit != nil || r.Code < 400 {
		t.Errorf("not enrolled individual: %+v", r)
	} else if ae := apiErr(t, r.Err, r.Code); ae.Name == "" {
		t.Errorf("item error without a name: %+v", ae)
	}

	un, err := c.UnenrollIndividuals(ctx, tok, job.BenefitID, ids[:1])
	if err != nil || un.JobID == "" {
		t.Fatalf("UnenrollIndividuals = %+v, %v", un, err)
	}
	e.sb.Advance(time.Hour)
	if enrolled, err = c.EnrolledIndividuals(ctx, tok, job.BenefitID); err != nil || !slices.Equal(enrolled.IndividualIDs, ids[1:2]) {
		t.Fatalf("EnrolledIndividuals after unenroll = %+v, %v", enrolled, err)
	}
}

func TestBenefits_Errors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("benefits")

	// 404: a well-formed benefit id that does not exist.
	const missing = "00000000-0000-4000-8000-000000000000"
	ae := apiErr(t, func() error { _, err := c.Benefit(ctx, tok, missing); return err }(), http.StatusNotFound)
	if ae.FinchCode != "benefit_not_found" {
		t.Errorf("404 = %+v", ae)
	}
	_, err := c.EnrolledIndividuals(ctx, tok, missing)
	apiErr(t, err, http.StatusNotFound)
	_, err = c.ManualJob(ctx, tok, missing)
	apiErr(t, err, http.StatusNotFound)

	// 400: Finch's validation of the body.
	_, err = c.CreateBenefit(ctx, tok, finch.BenefitRequest{Type: "not_a_type", Description: "x"})
	if ae := apiErr(t, err, http.StatusBadRequest); ae.Name != "invalid_request_error" || !strings.Contains(ae.Message, "type") {
		t.Errorf("400 = %+v", ae)
	}
	// 422: the provider does not support the request.
	_, err = c.CreateBenefit(ctx, tok, finch.BenefitRequest{Type: "401k", Description: "x",
		CompanyContribution: &finch.Contribution{Type: "match", Tiers: []finch.Tier{{Match: 5000, Threshold: 400}}}})
	if ae := apiErr(t, err, http.StatusUnprocessableEntity); ae.FinchCode != "unsupported_parameters" {
		t.Errorf("422 = %+v", ae)
	}
	// Registering is for assisted connections only.
	_, err = c.RegisterBenefit(ctx, tok, finch.BenefitRequest{Type: "401k", Description: "x"})
	apiErr(t, err, http.StatusNotImplemented)

	// 403 without the product.
	other := e.sandboxToken("company")
	_, err = c.Benefits(ctx, other)
	apiErr(t, err, http.StatusForbidden)
	if !errors.Is(err, finchconnect.ErrInsufficientScope) {
		t.Errorf("403 is not ErrInsufficientScope: %v", err)
	}

	// Client-side checks send nothing.
	n := e.rec.total()
	for _, err := range []error{
		func() error { _, err := c.Benefit(ctx, tok, "a/b"); return err }(),
		func() error { _, err := c.Benefit(ctx, tok, ""); return err }(),
		func() error { _, err := c.CreateBenefit(ctx, tok, finch.BenefitRequest{}); return err }(),
		func() error { _, err := c.EnrollIndividuals(ctx, tok, missing, nil); return err }(),
		func() error { _, err := c.UnenrollIndividuals(ctx, tok, missing, nil); return err }(),
		func() error { _, err := c.IndividualBenefits(ctx, tok, missing, []string{"a,b"}); return err }(),
		func() error { _, err := c.Benefits(ctx, finchconnect.Secret{}); return err }(),
	} {
		if err == nil {
			t.Error("a client-side check passed")
		}
	}
	if e.rec.total() != n {
		t.Errorf("client-side checks sent %d requests", e.rec.total()-n)
	}
}

func TestBenefits_DeductionAlias(t *testing.T) {
	e := newEnv(t)
	tok := e.sandboxToken("deduction")
	if _, err := e.client.Benefits(t.Context(), tok); err != nil {
		t.Fatalf("Benefits with the deduction product: %v", err)
	}
}

// total returns how many requests were recorded.
func (rc *recorder) total() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}
