package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Deductions (/employer/benefits*), as Finch's SDK shapes them
// (resources/hris/benefits) and finch-api-more.md §1 describes them.
// Every write answers at once with a job (benefit_id and job_id, or
// job_id) and takes effect when the job completes on the sandbox's clock
// (see [manualJob]); reads show what completed jobs wrote.

// benefit is a company-wide deduction or contribution of a connection.
type benefit struct {
	ID          string  `json:"id"`
	Type        string  `json:"type"`
	Description string  `json:"description"`
	Frequency   *string `json:"frequency"`
	Match       []tier  `json:"match,omitempty"` // company_contribution {type: match, tiers}
	// Visible is set when the job that created (or registered) it
	// completes: before that the provider does not have it, so it is
	// neither listed nor found.
	Visible     bool                   `json:"visible"`
	Enrollments map[string]*enrollment `json:"enrollments,omitempty"` // by individual id

	// Seed names one of the employer's own plans ("401k", "medical"):
	// its enrollments are derived from the people, as their pay
	// statements are, so that a large employer's file does not hold
	// thousands of them; Enrollments and Unenrolled record what writes
	// changed.
	Seed       string          `json:"seed,omitempty"`
	Unenrolled map[string]bool `json:"unenrolled,omitempty"`
}

type tier struct {
	Match     int64 `json:"match"`
	Threshold int64 `json:"threshold"`
}

// contribution is an employee deduction or a company contribution of an
// enrollment: fixed (cents), percent (basis points) or tiered.
type contribution struct {
	Type   string `json:"type"`
	Amount *int64 `json:"amount,omitempty"`
	Tiers  []tier `json:"tiers,omitempty"`
}

func (k *contribution) wire() any {
	if k == nil {
		return nil
	}
	if k.Type == "tiered" {
		return map[string]any{"type": k.Type, "tiers": k.Tiers}
	}
	var amount int64
	if k.Amount != nil {
		amount = *k.Amount
	}
	return map[string]any{"type": k.Type, "amount": amount}
}

// enrollment is one individual's configuration of a benefit, replaced
// whole by each enrollment (Finch's enroll is an overwrite).
type enrollment struct {
	EmployeeDeduction   *contribution `json:"employee_deduction,omitempty"`
	CompanyContribution *contribution `json:"company_contribution,omitempty"`
	AnnualMaximum       *int64        `json:"annual_maximum,omitempty"`
	CatchUp             *bool         `json:"catch_up,omitempty"`
	HSALimit            *string       `json:"hsa_contribution_limit,omitempty"`
}

func (e *enrollment) wire(f *benefitFeatures) map[string]any {
	out := map[string]any{
		"employee_deduction": e.EmployeeDeduction.wire(), "company_contribution": e.CompanyContribution.wire(),
		"annual_maximum": nil, "catch_up": nil, "hsa_contribution_limit": nil,
	}
	if e.AnnualMaximum != nil {
		out["annual_maximum"] = *e.AnnualMaximum
	}
	if e.CatchUp != nil {
		out["catch_up"] = *e.CatchUp
	} else if f != nil && f.CatchUp {
		out["catch_up"] = false
	}
	if e.HSALimit != nil {
		out["hsa_contribution_limit"] = *e.HSALimit
	}
	return out
}

func (b *benefit) wire() map[string]any {
	var match any
	if len(b.Match) > 0 {
		match = map[string]any{"type": "match", "tiers": b.Match}
	}
	var freq any
	if b.Frequency != nil {
		freq = *b.Frequency
	}
	return map[string]any{"benefit_id": b.ID, "type": b.Type, "description": b.Description, "frequency": freq, "company_contribution": match}
}

// Timing of deductions jobs on the sandbox's clock. An automated
// integration writes to the provider within minutes; an assisted one
// has Finch's operations team do it, within 2 business days.
const (
	manualStart         = 10 * time.Second
	manualDone          = time.Minute
	assistedManualStart = time.Hour
	assistedManualDone  = 48 * time.Hour
)

// maxBenefits bounds a connection's benefits, and maxEnrollBatch an
// enrollment request.
const (
	maxBenefits    = 200
	maxEnrollBatch = 10000
)

// manualJob is a deductions job (GET /jobs/manual/{job_id}): pending
// until Starts, in_progress until Completes, then complete or error
// with one body item per benefit or individual.
type manualJob struct {
	ID           string    `json:"id"`
	ConnectionID string    `json:"connection_id"`
	Kind         string    `json:"kind"` // benefit_create, benefit_update, benefit_register, benefit_enroll, benefit_unenroll
	BenefitID    string    `json:"benefit_id"`
	URL          string    `json:"url"`
	Seq          int64     `json:"seq"` // orders jobs created at one instant
	Created      time.Time `json:"created"`
	Starts       time.Time `json:"starts"`
	Completes    time.Time `json:"completes"`
	Done         bool      `json:"done"`
	Status       string    `json:"status,omitempty"` // once Done
	Body         []any     `json:"body,omitempty"`   // once Done

	// What the job does when it completes.
	Description *string      `json:"description,omitempty"` // update
	Exists      bool         `json:"exists,omitempty"`      // create or register of a benefit that already existed
	Enroll      []enrollItem `json:"enroll,omitempty"`
	Unenroll    []string     `json:"unenroll,omitempty"`
	Entity      string       `json:"entity,omitempty"`
}

// status is the job's status at now.
func (j *manualJob) status(now time.Time) string {
	switch {
	case j.Done:
		return j.Status
	case now.Before(j.Starts):
		return "pending"
	}
	return "in_progress"
}

type enrollItem struct {
	IndividualID  string        `json:"individual_id"`
	Configuration *enrollConfig `json:"configuration"`
}

type enrollConfig struct {
	EmployeeDeduction       *contribution `json:"employee_deduction"`
	CompanyContribution     *contribution `json:"company_contribution"`
	AnnualMaximum           *int64        `json:"annual_maximum"`
	CatchUp                 *bool         `json:"catch_up"`
	AnnualContributionLimit *string       `json:"annual_contribution_limit"`
	EffectiveDate           *string       `json:"effective_date"`
}

// invalid answers Finch's 400 for a request that does not match its
// spec: {name: invalid_request_error, finch_code: invalid_request}.
func invalid(w http.ResponseWriter, message string) {
	writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", message)
}

func unprocessable(w http.ResponseWriter, finchCode, message string) {
	writeError(w, http.StatusUnprocessableEntity, "unprocessable_request_error", finchCode, message)
}

func benefitNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "not_found_error", "benefit_not_found", "Benefit not found")
}

func notImplemented(w http.ResponseWriter, message string) {
	writeError(w, http.StatusNotImplemented, "not_implemented_error", "", message)
}

// bodyProblem turns a JSON decoding error into Finch's
// "[body:field]: Not a valid …" message.
func bodyProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		kind := "value"
		switch te.Type.Kind().String() {
		case "string":
			kind = "string"
		case "int64", "int":
			kind = "integer"
		case "bool":
			kind = "boolean"
		case "slice":
			kind = "list"
		case "struct", "ptr", "map":
			kind = "object"
		}
		return "[body:" + te.Field + "]: Not a valid " + kind + "."
	}
	return "[body]: The body is not valid JSON of the expected shape."
}

// decodeStrict reads a JSON body into v, refusing trailing data. An empty
// body decodes as nothing (v untouched) and reports empty.
func decodeStrict(r *http.Request, v any) (empty bool, err error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return false, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return true, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return false, err
	}
	if d.More() {
		return false, errors.New("trailing data")
	}
	return false, nil
}

// benefitsOf returns c's benefits, adding first the employer's own plans
// that its pay statements already deduct (see [seededEnrollment]), when
// the provider supports their types. s.mu must be held.
func (s *Server) benefitsOf(c *connection) []*benefit {
	if c.BenefitsSeeded {
		return c.Benefits
	}
	c.BenefitsSeeded = true
	s.dirty = true
	every := "every_paycheck"
	var seeded []*benefit
	if benefitFeaturesOf(c.ProviderID, "401k") != nil {
		seeded = append(seeded, &benefit{ID: c.stableID(80, 0), Type: "401k", Description: "401(k)", Frequency: &every, Visible: true, Seed: "401k"})
	}
	if f := benefitFeaturesOf(c.ProviderID, "s125_medical"); f != nil {
		// Pay statements deduct the premium monthly, spread over the
		// month's runs: monthly where the provider has that frequency.
		freq := every
		if slices.Contains(f.Frequencies, "monthly") {
			freq = "monthly"
		}
		seeded = append(seeded, &benefit{ID: c.stableID(80, 1), Type: "s125_medical", Description: "Medical", Frequency: &freq, Visible: true, Seed: "medical"})
	}
	c.Benefits = append(seeded, c.Benefits...)
	return c.Benefits
}

// seededEnrollment is p's enrollment in the employer's own plan b, as
// p's pay statements deduct it, or nil: a 401(k) for the people who save
// 5% (matched at half, where the provider has company contributions),
// medical for full-time staff ($95 a month, $350 from the employer).
func (c *connection) seededEnrollment(b *benefit, p person) *enrollment {
	f := benefitFeaturesOf(c.ProviderID, b.Type)
	if f == nil || p.ID == "" {
		return nil
	}
	switch b.Seed {
	case "401k":
		if !p.Saves401k || p.Subtype == "individual_contractor" {
			return nil
		}
		e := &enrollment{EmployeeDeduction: &contribution{Type: "percent", Amount: ptr(int64(500))}}
		if slices.Contains(f.CompanyContribution, "percent") {
			e.CompanyContribution = &contribution{Type: "percent", Amount: ptr(int64(250))}
		}
		return e
	case "medical":
		if p.Subtype != "full_time" {
			return nil
		}
		e := &enrollment{EmployeeDeduction: &contribution{Type: "fixed", Amount: ptr(int64(9500))}}
		if slices.Contains(f.CompanyContribution, "fixed") {
			e.CompanyContribution = &contribution{Type: "fixed", Amount: ptr(int64(35000))}
		}
		return e
	}
	return nil
}

// enrollments returns b's enrollments now, by individual id: a seeded
// plan's, less those unenrolled, with what enrollments wrote over them.
// The map is the caller's. s.mu must be held.
func (s *Server) enrollments(c *connection, b *benefit) map[string]*enrollment {
	out := map[string]*enrollment{}
	if b.Seed != "" {
		for _, p := range s.viewOf(c).people { // the employer as of its latest refresh
			if e := c.seededEnrollment(b, p); e != nil && !b.Unenrolled[p.ID] {
				out[p.ID] = e
			}
		}
	}
	for id, e := range b.Enrollments {
		out[id] = e
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// findBenefit returns c's benefit id, visible ones only unless any.
// s.mu must be held.
func (s *Server) findBenefit(c *connection, id string, any bool) *benefit {
	for _, b := range s.benefitsOf(c) {
		if b.ID == id && (b.Visible || any) {
			return b
		}
	}
	return nil
}

// benefitPath checks the {benefit_id} of r: 400 when it is not a UUID.
func benefitPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("benefit_id")
	if !uuidRe.MatchString(id) {
		invalid(w, "[path_params:benefit_id]: Not a valid uuid")
		return "", false
	}
	return id, true
}

// newManualJob adds a deductions job of c, started at now, and returns
// it. s.mu must be held.
func (s *Server) newManualJob(r *http.Request, c *connection, kind, benefitID string) *manualJob {
	s.settleJobs()
	if s.st.ManualJobs == nil {
		s.st.ManualJobs = map[string]*manualJob{}
	}
	now := s.now()
	start, done := manualStart, manualDone
	if c.assisted() {
		start, done = assistedManualStart, assistedManualDone
	}
	s.st.JobSeq++
	j := &manualJob{ID: s.id(), ConnectionID: c.ID, Kind: kind, BenefitID: benefitID, Seq: s.st.JobSeq, Created: now, Starts: now.Add(start), Completes: now.Add(done)}
	j.URL = s.publicURL(r) + "/jobs/manual/" + j.ID
	s.st.ManualJobs[j.ID] = j
	s.pruneJobs()
	s.dirty = true
	return j
}

// benefitBody is the body of a create or register.
type benefitBody struct {
	Type                *string `json:"type"`
	Description         *string `json:"description"`
	Frequency           *string `json:"frequency"`
	CompanyContribution *struct {
		Type  string `json:"type"`
		Tiers []tier `json:"tiers"`
	} `json:"company_contribution"`
}

// handleBenefitCreate is POST /employer/benefits (and, with register,
// POST /employer/benefits/register): 201 {benefit_id, job_id}.
func (s *Server) handleBenefitCreate(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	s.createBenefit(w, r, c, "benefit_create")
}

func (s *Server) handleBenefitRegister(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	s.createBenefit(w, r, c, "benefit_register")
}

func (s *Server) createBenefit(w http.ResponseWriter, r *http.Request, c *connection, kind string) {
	var req benefitBody
	if _, err := decodeStrict(r, &req); err != nil {
		invalid(w, bodyProblem(err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == "benefit_register" && !c.assisted() {
		notImplemented(w, "Registering an existing benefit is available only for assisted connections; create it with POST /employer/benefits.")
		return
	}
	switch {
	case req.Type == nil:
		invalid(w, "[body:type]: Missing data for required field.")
		return
	case !slices.Contains(benefitTypes, *req.Type):
		invalid(w, "[body:type]: Must be one of: "+strings.Join(benefitTypes, ", ")+".")
		return
	case req.Description == nil || strings.TrimSpace(*req.Description) == "":
		invalid(w, "[body:description]: Missing data for required field.")
		return
	case len(*req.Description) > 255:
		invalid(w, "[body:description]: Longer than maximum length 255.")
		return
	case req.Frequency != nil && !slices.Contains(benefitFrequencies, *req.Frequency):
		invalid(w, "[body:frequency]: Must be one of: "+strings.Join(benefitFrequencies, ", ")+".")
		return
	}
	var match []tier
	if cc := req.CompanyContribution; cc != nil {
		if kind == "benefit_register" {
			invalid(w, "[body:company_contribution]: Unknown field.")
			return
		}
		if cc.Type != "match" || len(cc.Tiers) == 0 {
			invalid(w, `[body:company_contribution]: Must be {"type": "match", "tiers": [{"match", "threshold"}, ...]} with at least one tier.`)
			return
		}
		if problem := tierProblem(cc.Tiers); problem != "" {
			invalid(w, "[body:company_contribution.tiers]: "+problem)
			return
		}
		match = cc.Tiers
	}
	f := benefitFeaturesOf(c.ProviderID, *req.Type)
	switch {
	case f == nil:
		unprocessable(w, "unsupported_parameters", "Provider does not support benefit type '"+*req.Type+"'")
		return
	case f.CompanyCreate != supported:
		unprocessable(w, "not_supported_by_provider", "Creating a benefit of type '"+*req.Type+"' is "+f.CompanyCreate+".")
		return
	case req.Frequency != nil && !slices.Contains(f.Frequencies, *req.Frequency):
		unprocessable(w, "unsupported_parameters", "Provider does not support frequency '"+*req.Frequency+"' for benefit type '"+*req.Type+"'")
		return
	case match != nil && !slices.Contains(f.CompanyContribution, "tiered"):
		unprocessable(w, "unsupported_parameters", "Provider does not support a tiered company match for benefit type '"+*req.Type+"'")
		return
	}
	if problem := descriptionProblem(c.ProviderID, *req.Description); problem != "" {
		unprocessable(w, "unsupported_parameters", problem)
		return
	}
	// Finch's create is idempotent on type, frequency and description:
	// a repeat returns the benefit that exists (or is being created),
	// with a job of its own.
	var b *benefit
	for _, x := range s.benefitsOf(c) {
		if x.Type == *req.Type && x.Description == *req.Description && equalPtr(x.Frequency, req.Frequency) {
			b = x
			break
		}
	}
	exists := b != nil
	if !exists {
		if len(c.Benefits) >= maxBenefits {
			unprocessable(w, "unsupported_parameters", fmt.Sprintf("A connection can have at most %d benefits in the sandbox.", maxBenefits))
			return
		}
		b = &benefit{ID: s.id(), Type: *req.Type, Description: *req.Description, Frequency: req.Frequency, Match: match, Enrollments: map[string]*enrollment{}}
		c.Benefits = append(c.Benefits, b)
	}
	j := s.newManualJob(r, c, kind, b.ID)
	j.Exists = exists
	writeJSON(w, http.StatusCreated, map[string]string{"benefit_id": b.ID, "job_id": j.ID})
}

func equalPtr(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// tierProblem checks match tiers: non-negative basis points, thresholds
// ascending (cumulative upper bounds; finch-api-more.md §1.2).
func tierProblem(tiers []tier) string {
	for i, t := range tiers {
		if t.Match < 0 || t.Threshold < 0 || t.Threshold > 10000 {
			return "match and threshold are basis points: match at least 0, threshold 0 to 10000."
		}
		if i > 0 && t.Threshold <= tiers[i-1].Threshold {
			return "thresholds must be ascending."
		}
	}
	return ""
}

// descriptionProblem is a provider's own limit on a benefit's name:
// Justworks's 30 characters, which Finch's SDK warns of.
func descriptionProblem(provider, description string) string {
	if p := providerProfiles[provider]; p.maxDescription > 0 && len([]rune(description)) > p.maxDescription {
		return fmt.Sprintf("Provider does not support a description longer than %d characters.", p.maxDescription)
	}
	return ""
}

// handleBenefitUpdate is POST /employer/benefits/{benefit_id}: 200
// {benefit_id, job_id}; the description changes when the job completes.
func (s *Server) handleBenefitUpdate(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id, ok := benefitPath(w, r)
	if !ok {
		return
	}
	var req struct {
		Description *string `json:"description"`
	}
	if _, err := decodeStrict(r, &req); err != nil {
		invalid(w, bodyProblem(err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBenefit(c, id, false)
	if b == nil {
		benefitNotFound(w)
		return
	}
	switch {
	case req.Description == nil || strings.TrimSpace(*req.Description) == "":
		invalid(w, "[body:description]: Missing data for required field.")
		return
	case len(*req.Description) > 255:
		invalid(w, "[body:description]: Longer than maximum length 255.")
		return
	}
	if f := benefitFeaturesOf(c.ProviderID, b.Type); f == nil || f.CompanyUpdate != supported {
		op := notByProvider
		if f != nil {
			op = f.CompanyUpdate
		}
		unprocessable(w, "not_supported_by_provider", "Updating a benefit of type '"+b.Type+"' is "+op+".")
		return
	}
	if problem := descriptionProblem(c.ProviderID, *req.Description); problem != "" {
		unprocessable(w, "unsupported_parameters", problem)
		return
	}
	j := s.newManualJob(r, c, "benefit_update", b.ID)
	j.Description = req.Description
	writeJSON(w, http.StatusOK, map[string]string{"benefit_id": b.ID, "job_id": j.ID})
}

// readable answers 501 for deductions reads of an assisted connection
// (Finch's guide: "expected"), and reports whether the read may go on.
func readable(w http.ResponseWriter, c *connection) bool {
	if c.assisted() {
		notImplemented(w, "Deductions cannot be read for assisted connections; Finch writes them but does not read them back.")
		return false
	}
	return true
}

// handleBenefitList is GET /employer/benefits: a bare array.
func (s *Server) handleBenefitList(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !readable(w, c) {
		return
	}
	s.settleJobs()
	out := []any{}
	for _, b := range s.benefitsOf(c) {
		if b.Visible {
			out = append(out, b.wire())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleBenefitGet is GET /employer/benefits/{benefit_id}.
func (s *Server) handleBenefitGet(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id, ok := benefitPath(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !readable(w, c) {
		return
	}
	s.settleJobs()
	b := s.findBenefit(c, id, false)
	if b == nil {
		benefitNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, b.wire())
}

// handleBenefitMeta is GET /employer/benefits/meta: the provider's
// supported benefits, a bare array, the same as its benefits_support in
// GET /providers.
func (s *Server) handleBenefitMeta(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	out := []any{}
	for _, t := range benefitTypes {
		if f := benefitFeaturesOf(c.ProviderID, t); f != nil {
			out = append(out, f.supportedBenefit())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleBenefitEnrolled is GET /employer/benefits/{benefit_id}/enrolled.
func (s *Server) handleBenefitEnrolled(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id, ok := benefitPath(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !readable(w, c) {
		return
	}
	s.settleJobs()
	b := s.findBenefit(c, id, false)
	if b == nil {
		benefitNotFound(w)
		return
	}
	current := s.enrollments(c, b)
	ids := make([]string, 0, len(current))
	for id := range current {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	writeJSON(w, http.StatusOK, map[string]any{"benefit_id": b.ID, "individual_ids": ids})
}

// handleBenefitIndividuals is GET /employer/benefits/{benefit_id}/individuals
// ?individual_ids=a,b: a bare array of {individual_id, code, body}; with
// no individual_ids, every enrolled individual.
func (s *Server) handleBenefitIndividuals(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id, ok := benefitPath(w, r)
	if !ok {
		return
	}
	var asked []string
	q := r.URL.Query()
	for _, k := range []string{"individual_ids", "individual_ids[]"} {
		for _, v := range q[k] {
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					asked = append(asked, x)
				}
			}
		}
	}
	if len(asked) > maxEnrollBatch {
		invalid(w, fmt.Sprintf("[query:individual_ids]: At most %d individuals.", maxEnrollBatch))
		return
	}
	known := map[string]bool{}
	for _, p := range s.peopleOf(c, entity) {
		known[p.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !readable(w, c) {
		return
	}
	s.settleJobs()
	b := s.findBenefit(c, id, false)
	if b == nil {
		benefitNotFound(w)
		return
	}
	f := benefitFeaturesOf(c.ProviderID, b.Type)
	current := s.enrollments(c, b)
	if asked == nil {
		for id := range current {
			if known[id] {
				asked = append(asked, id)
			}
		}
		sort.Strings(asked)
	}
	out := []any{}
	for _, id := range asked {
		e, enrolled := current[id]
		switch {
		case !known[id]:
			out = append(out, map[string]any{"individual_id": id, "code": 404, "body": notFoundItem(id, "individual_not_found")})
		case !enrolled:
			out = append(out, map[string]any{"individual_id": id, "code": 404, "body": map[string]any{
				"code": 404, "name": "bad_request", "finch_code": "enrollment_not_found", "message": "could not find the enrollment"}})
		default:
			out = append(out, map[string]any{"individual_id": id, "code": 200, "body": e.wire(f)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleBenefitEnroll is POST /employer/benefits/{benefit_id}/individuals
// with a top-level array body (none is an empty batch): 200 {job_id}.
// What is malformed is refused at once (400); what the provider would
// refuse (an unknown individual, a contribution kind it lacks) fails
// that individual's item in the job's body.
func (s *Server) handleBenefitEnroll(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id, ok := benefitPath(w, r)
	if !ok {
		return
	}
	var items []enrollItem
	if _, err := decodeStrict(r, &items); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			invalid(w, "[body]: The body must be a JSON array of {individual_id, configuration}.")
			return
		}
		invalid(w, bodyProblem(err))
		return
	}
	if len(items) > maxEnrollBatch {
		invalid(w, fmt.Sprintf("[body]: At most %d individuals per request.", maxEnrollBatch))
		return
	}
	for i, it := range items {
		if problem := enrollProblem(it); problem != "" {
			invalid(w, fmt.Sprintf("[body:%d.%s", i, problem))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBenefit(c, id, false)
	if b == nil {
		benefitNotFound(w)
		return
	}
	if !c.assisted() && slices.ContainsFunc(items, func(it enrollItem) bool { return it.Configuration != nil && it.Configuration.EffectiveDate != nil }) {
		unprocessable(w, "unsupported_parameters", "effective_date is supported only for assisted connections; automated integrations write at once.")
		return
	}
	j := s.newManualJob(r, c, "benefit_enroll", b.ID)
	j.Enroll, j.Entity = items, entity
	writeJSON(w, http.StatusOK, map[string]string{"job_id": j.ID})
}

// enrollProblem is what is malformed in an enrollment item, as the end of
// a "[body:N." message, or "".
func enrollProblem(it enrollItem) string {
	if it.IndividualID == "" {
		return "individual_id]: Missing data for required field."
	}
	if !uuidRe.MatchString(it.IndividualID) {
		return "individual_id]: Not a valid uuid."
	}
	cfg := it.Configuration
	if cfg == nil {
		return ""
	}
	if k := cfg.EmployeeDeduction; k != nil {
		if k.Type != "fixed" && k.Type != "percent" {
			return "configuration.employee_deduction.type]: Must be one of: fixed, percent."
		}
		if k.Amount == nil || *k.Amount < 0 {
			return "configuration.employee_deduction.amount]: A non-negative integer is required."
		}
	}
	if k := cfg.CompanyContribution; k != nil {
		switch k.Type {
		case "fixed", "percent":
			if k.Amount == nil || *k.Amount < 0 {
				return "configuration.company_contribution.amount]: A non-negative integer is required."
			}
		case "tiered":
			if len(k.Tiers) == 0 {
				return "configuration.company_contribution.tiers]: Required when type is tiered."
			}
			if p := tierProblem(k.Tiers); p != "" {
				return "configuration.company_contribution.tiers]: " + p
			}
		default:
			return "configuration.company_contribution.type]: Must be one of: fixed, percent, tiered."
		}
	}
	if cfg.AnnualMaximum != nil && *cfg.AnnualMaximum < 0 {
		return "configuration.annual_maximum]: Must not be negative."
	}
	if l := cfg.AnnualContributionLimit; l != nil && *l != "individual" && *l != "family" {
		return "configuration.annual_contribution_limit]: Must be one of: individual, family."
	}
	return ""
}

// handleBenefitUnenroll is DELETE /employer/benefits/{benefit_id}/individuals
// {individual_ids}: 200 {job_id}.
func (s *Server) handleBenefitUnenroll(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id, ok := benefitPath(w, r)
	if !ok {
		return
	}
	var req struct {
		IndividualIDs []string `json:"individual_ids"`
	}
	if _, err := decodeStrict(r, &req); err != nil {
		invalid(w, bodyProblem(err))
		return
	}
	switch {
	case len(req.IndividualIDs) == 0:
		invalid(w, "[body:individual_ids]: Missing data for required field.")
		return
	case len(req.IndividualIDs) > maxEnrollBatch:
		invalid(w, fmt.Sprintf("[body:individual_ids]: At most %d individuals per request.", maxEnrollBatch))
		return
	}
	for i, x := range req.IndividualIDs {
		if !uuidRe.MatchString(x) {
			invalid(w, fmt.Sprintf("[body:individual_ids.%d]: Not a valid uuid.", i))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBenefit(c, id, false)
	if b == nil {
		benefitNotFound(w)
		return
	}
	if f := benefitFeaturesOf(c.ProviderID, b.Type); f == nil || f.IndividualDelete != supported {
		op := notByProvider
		if f != nil {
			op = f.IndividualDelete
		}
		unprocessable(w, "not_supported_by_provider", "Unenrolling individuals from a benefit of type '"+b.Type+"' is "+op+".")
		return
	}
	j := s.newManualJob(r, c, "benefit_unenroll", b.ID)
	j.Unenroll, j.Entity = req.IndividualIDs, entity
	writeJSON(w, http.StatusOK, map[string]string{"job_id": j.ID})
}

// handleManualJob is GET /jobs/manual/{job_id}: {job_id, status, body}.
func (s *Server) handleManualJob(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id := r.PathValue("job_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleJobs()
	j := s.st.ManualJobs[id]
	if j == nil || j.ConnectionID != c.ID {
		writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "could not find job with id '"+id+"'")
		return
	}
	var body any
	if j.Done {
		body = j.Body
		if j.Body == nil {
			body = []any{}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": j.ID, "status": j.status(s.now()), "body": body})
}

// completeManualJob does what job j was created for, records its outcome
// and sends its job.<kind>.completed webhook. s.mu must be held.
func (s *Server) completeManualJob(j *manualJob) {
	j.Done, j.Status = true, "complete"
	c := s.st.Connections[j.ConnectionID]
	if c == nil {
		j.Status = "error"
		return
	}
	b := s.findBenefit(c, j.BenefitID, true)
	if b == nil {
		j.Status, j.Body = "error", []any{map[string]any{"benefit_id": j.BenefitID, "code": 404, "message": "Benefit not found"}}
		return
	}
	item := func(individual string, code int, finchCode, message string) map[string]any {
		m := map[string]any{"individual_id": individual, "code": code, "message": message}
		if finchCode != "" {
			m["finch_code"] = finchCode
		}
		return m
	}
	switch j.Kind {
	case "benefit_create", "benefit_register":
		b.Visible = true
		msg, code := "Successfully created benefit", 201
		if j.Kind == "benefit_register" {
			msg = "Successfully registered benefit"
		}
		if j.Exists {
			msg, code = "Benefit already exists", 200
		}
		j.Body = []any{map[string]any{"benefit_id": b.ID, "code": code, "message": msg}}
	case "benefit_update":
		if j.Description != nil {
			b.Description = *j.Description
		}
		j.Body = []any{map[string]any{"benefit_id": b.ID, "code": 200, "message": "Successfully updated benefit"}}
	case "benefit_enroll", "benefit_unenroll":
		people := map[string]bool{}
		for _, p := range s.viewOf(c).people { // the employer as of its latest refresh
			if j.Entity == "" || p.Entity == j.Entity {
				people[p.ID] = true
			}
		}
		f := benefitFeaturesOf(c.ProviderID, b.Type)
		current := s.enrollments(c, b)
		failed := 0
		if j.Kind == "benefit_enroll" {
			for _, it := range j.Enroll {
				code, finchCode, msg := enroll(b, f, people, current, it)
				if code >= 400 {
					failed++
				}
				j.Body = append(j.Body, item(it.IndividualID, code, finchCode, msg))
			}
			if failed > 0 && failed == len(j.Enroll) {
				j.Status = "error"
			}
		} else {
			for _, id := range j.Unenroll {
				switch _, enrolled := current[id]; {
				case !people[id]:
					failed++
					j.Body = append(j.Body, item(id, 404, "individual_not_found", "Individual not found"))
				case !enrolled:
					failed++
					j.Body = append(j.Body, item(id, 404, "enrollment_not_found", "could not find the enrollment"))
				default:
					delete(current, id)
					delete(b.Enrollments, id)
					if b.Seed != "" {
						if b.Unenrolled == nil {
							b.Unenrolled = map[string]bool{}
						}
						b.Unenrolled[id] = true
					}
					j.Body = append(j.Body, item(id, 200, "", "Successfully unenrolled individual from benefit"))
				}
			}
			if failed > 0 && failed == len(j.Unenroll) {
				j.Status = "error"
			}
		}
	}
	s.dirty = true
	if c.Status != "disconnected" {
		s.emit(c, "job."+j.Kind+".completed", map[string]any{"job_id": j.ID, "job_url": j.URL})
	}
}

// enroll applies one enrollment item to b, whose enrollments are current,
// as the provider would, and returns its outcome: 201 enrolled, 200
// updated, 404 or 422.
func enroll(b *benefit, f *benefitFeatures, people map[string]bool, current map[string]*enrollment, it enrollItem) (int, string, string) {
	if !people[it.IndividualID] {
		return 404, "individual_not_found", "Individual not found"
	}
	if f == nil {
		return 422, "unsupported_parameters", "Provider does not support benefit type '" + b.Type + "'"
	}
	_, exists := current[it.IndividualID]
	if op := f.IndividualCreate; exists {
		op = f.IndividualUpdate
		if op != supported {
			return 422, "not_supported_by_provider", "Updating an enrollment is " + op + "."
		}
	} else if op != supported {
		return 422, "not_supported_by_provider", "Enrolling an individual is " + op + "."
	}
	e := &enrollment{}
	if cfg := it.Configuration; cfg != nil {
		if k := cfg.EmployeeDeduction; k != nil {
			if !slices.Contains(f.EmployeeDeduction, k.Type) {
				return 422, "invalid_employee_enrollment", "Provider does not support a " + k.Type + " employee deduction for benefit type '" + b.Type + "'"
			}
			if k.Type == "percent" && *k.Amount > 10000 {
				return 422, "invalid_employee_enrollment", "A percent employee deduction is at most 10000 basis points (100%)."
			}
		}
		if k := cfg.CompanyContribution; k != nil && !slices.Contains(f.CompanyContribution, k.Type) {
			return 422, "invalid_employee_enrollment", "Provider does not support a " + k.Type + " company contribution for benefit type '" + b.Type + "'"
		}
		if cfg.AnnualMaximum != nil && !f.AnnualMaximum {
			return 422, "invalid_employee_enrollment", "Provider does not support an annual maximum for benefit type '" + b.Type + "'"
		}
		if cfg.CatchUp != nil && *cfg.CatchUp && !f.CatchUp {
			return 422, "invalid_employee_enrollment", "Provider does not support catch-up contributions for benefit type '" + b.Type + "'"
		}
		if cfg.AnnualContributionLimit != nil && !f.HSALimit {
			return 422, "invalid_employee_enrollment", "annual_contribution_limit applies only to HSA benefits."
		}
		e.EmployeeDeduction, e.CompanyContribution = cfg.EmployeeDeduction, cfg.CompanyContribution
		e.AnnualMaximum, e.CatchUp, e.HSALimit = cfg.AnnualMaximum, cfg.CatchUp, cfg.AnnualContributionLimit
	}
	if b.Enrollments == nil {
		b.Enrollments = map[string]*enrollment{}
	}
	b.Enrollments[it.IndividualID] = e
	delete(b.Unenrolled, it.IndividualID)
	current[it.IndividualID] = e
	if exists {
		return 200, "", "Successfully updated enrollment for individual"
	}
	return 201, "", "Successfully enrolled individual in benefit"
}
