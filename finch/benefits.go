package finch

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/finchconnect/finchconnect"
)

// Deductions (benefits) are written through Finch's asynchronous jobs:
// create, register, update, enroll and unenroll answer with a job_id that
// [Client.ManualJob] polls. Every route needs the benefits product (or its
// deprecated alias deduction). Writes are retried only when they certainly
// did not reach Finch (see the package documentation): Finch offers no
// idempotency key, and a resent create would make a second deduction.

// Contribution is an employer contribution or employee deduction setting:
// Type "fixed" (Amount in cents), "percent" (Amount in basis points,
// 10000 = 100 %), "tiered" or "match" (Tiers).
type Contribution struct {
	Type   string `json:"type,omitempty"`
	Amount *int64 `json:"amount,omitempty"`
	Tiers  []Tier `json:"tiers,omitempty"`
}

// Tier is one step of a tiered or matching contribution: Match basis
// points of pay matched up to Threshold basis points.
type Tier struct {
	Match     int64 `json:"match"`
	Threshold int64 `json:"threshold"`
}

// CompanyBenefit is a deduction the company offers, from
// GET /employer/benefits.
type CompanyBenefit struct {
	BenefitID           string        `json:"benefit_id"`
	Description         string        `json:"description,omitempty"`
	Frequency           string        `json:"frequency,omitempty"` // every_paycheck, monthly, one_time
	Type                string        `json:"type,omitempty"`      // 401k, s125_medical, hsa_pre, …
	CompanyContribution *Contribution `json:"company_contribution,omitempty"`
}

// SupportedBenefit is what the provider supports for one benefit type,
// from GET /employer/benefits/meta.
type SupportedBenefit struct {
	Type                 string   `json:"type,omitempty"`
	Description          string   `json:"description,omitempty"`
	AnnualMaximum        *bool    `json:"annual_maximum,omitempty"`
	CatchUp              *bool    `json:"catch_up,omitempty"`
	CompanyContribution  []string `json:"company_contribution,omitempty"` // fixed, percent, tiered
	EmployeeDeduction    []string `json:"employee_deduction,omitempty"`   // fixed, percent
	Frequencies          []string `json:"frequencies,omitempty"`
	HSAContributionLimit []string `json:"hsa_contribution_limit,omitempty"` // individual, family
}

// BenefitJob is Finch's answer to a deduction write: the benefit it
// concerns (empty for enrollments) and the job to poll with
// [Client.ManualJob].
type BenefitJob struct {
	BenefitID string `json:"benefit_id,omitempty"`
	JobID     string `json:"job_id"`
}

// BenefitRequest describes a deduction for [Client.CreateBenefit] and
// [Client.RegisterBenefit] (which records one that already exists at the
// provider; it takes no CompanyContribution).
type BenefitRequest struct {
	Type                string        `json:"type,omitempty"`
	Description         string        `json:"description,omitempty"`
	Frequency           string        `json:"frequency,omitempty"`
	CompanyContribution *Contribution `json:"company_contribution,omitempty"`
}

// EnrolledIDs lists who is enrolled in a benefit, from
// GET /employer/benefits/{benefit_id}/enrolled.
type EnrolledIDs struct {
	BenefitID     string   `json:"benefit_id"`
	IndividualIDs []string `json:"individual_ids"`
}

// Enrollment is one individual's enrollment for [Client.EnrollIndividuals].
type Enrollment struct {
	IndividualID  string                   `json:"individual_id"`
	Configuration *EnrollmentConfiguration `json:"configuration,omitempty"`
}

// EnrollmentConfiguration is an individual's deduction settings.
type EnrollmentConfiguration struct {
	AnnualContributionLimit string        `json:"annual_contribution_limit,omitempty"` // individual or family
	AnnualMaximum           *int64        `json:"annual_maximum,omitempty"`            // cents
	CatchUp                 *bool         `json:"catch_up,omitempty"`
	CompanyContribution     *Contribution `json:"company_contribution,omitempty"`
	EmployeeDeduction       *Contribution `json:"employee_deduction,omitempty"`
	EffectiveDate           string        `json:"effective_date,omitempty"` // YYYY-MM-DD
}

// IndividualBenefit is one individual's settings for a benefit, from
// GET /employer/benefits/{benefit_id}/individuals.
type IndividualBenefit struct {
	AnnualMaximum        *int64        `json:"annual_maximum,omitempty"`
	CatchUp              *bool         `json:"catch_up,omitempty"`
	CompanyContribution  *Contribution `json:"company_contribution,omitempty"`
	EmployeeDeduction    *Contribution `json:"employee_deduction,omitempty"`
	HSAContributionLimit string        `json:"hsa_contribution_limit,omitempty"`
}

// IndividualBenefitResult is Finch's answer for one individual; as with
// [IndividualResult], Err is set (an *[APIError]) when Code is not 2xx.
type IndividualBenefitResult struct {
	IndividualID string
	Code         int
	Benefit      *IndividualBenefit
	Err          error `json:"-"`
}

// checkID refuses an id that cannot be one path segment, before anything
// is sent: an id with a slash would address another route.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("finch: %s is required", what)
	case id == "." || id == ".." || strings.ContainsAny(id, "/\\?#%") ||
		strings.ContainsFunc(id, func(r rune) bool { return r <= 0x20 || r == 0x7f }):
		return fmt.Errorf("finch: %s %q is not a valid id", what, cleanText(id, 64))
	}
	return nil
}

// write builds a request for a write, retried only when it certainly did
// not take effect.
func (c *Client) write(method, path string, token finchconnect.Secret, q url.Values, body []byte) *request {
	return &request{method: method, path: path, query: q, body: body, auth: authBearer, token: token, policy: retryUnsent}
}

// get decodes a read into a new T.
func get[T any](ctx context.Context, c *Client, token finchconnect.Secret, path string, q url.Values) (*T, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	var out T
	if err := c.do(ctx, c.read("GET", path, token, q, nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// send1 performs a write and decodes its answer into a new T.
func send1[T any](ctx context.Context, c *Client, token finchconnect.Secret, method, path string, q url.Values, body any) (*T, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	var b []byte
	if body != nil {
		b = encode(body)
	}
	var out T
	if err := c.do(ctx, c.write(method, path, token, q, b), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Benefits lists the company's deductions, with GET /employer/benefits
// (https://developer.tryfinch.com/api-reference/deductions/get-deductions).
func (c *Client) Benefits(ctx context.Context, token finchconnect.Secret, opts ...RequestOption) ([]CompanyBenefit, error) {
	out, err := get[[]CompanyBenefit](ctx, c, token, "/employer/benefits", entityQuery(opts))
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// Benefit returns one deduction, with GET /employer/benefits/{benefit_id}.
func (c *Client) Benefit(ctx context.Context, token finchconnect.Secret, benefitID string, opts ...RequestOption) (*CompanyBenefit, error) {
	if err := checkID("benefit id", benefitID); err != nil {
		return nil, err
	}
	return get[CompanyBenefit](ctx, c, token, "/employer/benefits/"+benefitID, entityQuery(opts))
}

// SupportedBenefits lists the benefit types the provider supports and
// their features, with GET /employer/benefits/meta.
func (c *Client) SupportedBenefits(ctx context.Context, token finchconnect.Secret, opts ...RequestOption) ([]SupportedBenefit, error) {
	out, err := get[[]SupportedBenefit](ctx, c, token, "/employer/benefits/meta", entityQuery(opts))
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// CreateBenefit creates a deduction at the provider, with
// POST /employer/benefits. The returned job says when it is done.
func (c *Client) CreateBenefit(ctx context.Context, token finchconnect.Secret, req BenefitRequest, opts ...RequestOption) (*BenefitJob, error) {
	if req.Type == "" {
		return nil, errors.New("finch: create benefit: Type is required")
	}
	return send1[BenefitJob](ctx, c, token, "POST", "/employer/benefits", entityQuery(opts), req)
}

// RegisterBenefit records a deduction that already exists at the provider,
// with POST /employer/benefits/register.
func (c *Client) RegisterBenefit(ctx context.Context, token finchconnect.Secret, req BenefitRequest, opts ...RequestOption) (*BenefitJob, error) {
	if req.Type == "" {
		return nil, errors.New("finch: register benefit: Type is required")
	}
	if req.CompanyContribution != nil {
		return nil, errors.New("finch: register benefit: Finch takes no CompanyContribution when registering")
	}
	return send1[BenefitJob](ctx, c, token, "POST", "/employer/benefits/register", entityQuery(opts), req)
}

// UpdateBenefit changes a deduction's description (the only field Finch
// lets one change), with POST /employer/benefits/{benefit_id}.
func (c *Client) UpdateBenefit(ctx context.Context, token finchconnect.Secret, benefitID, description string, opts ...RequestOption) (*BenefitJob, error) {
	if err := checkID("benefit id", benefitID); err != nil {
		return nil, err
	}
	body := struct {
		Description string `json:"description"`
	}{description}
	return send1[BenefitJob](ctx, c, token, "POST", "/employer/benefits/"+benefitID, entityQuery(opts), body)
}

// EnrolledIndividuals returns the ids of the individuals enrolled in a
// deduction, with GET /employer/benefits/{benefit_id}/enrolled.
func (c *Client) EnrolledIndividuals(ctx context.Context, token finchconnect.Secret, benefitID string, opts ...RequestOption) (*EnrolledIDs, error) {
	if err := checkID("benefit id", benefitID); err != nil {
		return nil, err
	}
	return get[EnrolledIDs](ctx, c, token, "/employer/benefits/"+benefitID+"/enrolled", entityQuery(opts))
}

// IndividualBenefits returns the enrollment settings of the given
// individuals (all enrolled ones when ids is empty), with
// GET /employer/benefits/{benefit_id}/individuals. An individual Finch
// could not return has Err set rather than failing the call.
func (c *Client) IndividualBenefits(ctx context.Context, token finchconnect.Secret, benefitID string, ids []string, opts ...RequestOption) ([]IndividualBenefitResult, error) {
	if err := checkID("benefit id", benefitID); err != nil {
		return nil, err
	}
	if err := needToken(token); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id == "" || strings.Contains(id, ",") {
			return nil, fmt.Errorf("finch: individual benefits: individual id %q is empty or has a comma", cleanText(id, 64))
		}
	}
	q := entityQuery(opts)
	if len(ids) > 0 {
		if q == nil {
			q = url.Values{}
		}
		q.Set("individual_ids", strings.Join(ids, ","))
	}
	var items []batchItem
	resp, err := c.doResp(ctx, c.read("GET", "/employer/benefits/"+benefitID+"/individuals", token, q, nil), &items)
	if err != nil {
		return nil, err
	}
	reqID := resp.Header.Get("Finch-Request-Id")
	out := make([]IndividualBenefitResult, len(items))
	for i, it := range items {
		if it.Code == 0 {
			it.Code = 200
		}
		out[i] = IndividualBenefitResult{IndividualID: it.IndividualID, Code: it.Code}
		out[i].Benefit, out[i].Err = itemBody[IndividualBenefit](c, it, reqID, token)
	}
	return out, nil
}

// EnrollIndividuals enrolls individuals in a deduction, or changes their
// settings, with POST /employer/benefits/{benefit_id}/individuals.
func (c *Client) EnrollIndividuals(ctx context.Context, token finchconnect.Secret, benefitID string, enrollments []Enrollment, opts ...RequestOption) (*BenefitJob, error) {
	if err := checkID("benefit id", benefitID); err != nil {
		return nil, err
	}
	if len(enrollments) == 0 {
		return nil, errors.New("finch: enroll individuals: no enrollments")
	}
	for _, e := range enrollments {
		if e.IndividualID == "" {
			return nil, errors.New("finch: enroll individuals: every enrollment needs an IndividualID")
		}
	}
	return send1[BenefitJob](ctx, c, token, "POST", "/employer/benefits/"+benefitID+"/individuals", entityQuery(opts), enrollments)
}

// UnenrollIndividuals ends the given individuals' enrollment in a
// deduction, with DELETE /employer/benefits/{benefit_id}/individuals.
func (c *Client) UnenrollIndividuals(ctx context.Context, token finchconnect.Secret, benefitID string, ids []string, opts ...RequestOption) (*BenefitJob, error) {
	if err := checkID("benefit id", benefitID); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("finch: unenroll individuals: no individual ids")
	}
	body := struct {
		IndividualIDs []string `json:"individual_ids"`
	}{ids}
	return send1[BenefitJob](ctx, c, token, "DELETE", "/employer/benefits/"+benefitID+"/individuals", entityQuery(opts), body)
}
