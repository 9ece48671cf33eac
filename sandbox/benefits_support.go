package sandbox

import "slices"

// benefitTypes (sandboxdata.go) are Finch's BenefitType values, in the
// SDK's order; every benefits_support object has all of them as keys
// (null = unsupported).

var benefitDescriptions = map[string]string{
	"457": "457(b)", "401k": "401(k)", "401k_roth": "Roth 401(k)", "401k_loan": "401(k) loan", "403b": "403(b)", "403b_roth": "Roth 403(b)",
	"457_roth": "Roth 457(b)", "commuter": "Commuter benefits", "custom_post_tax": "Custom post-tax deduction", "custom_pre_tax": "Custom pre-tax deduction",
	"fsa_dependent_care": "Dependent care FSA", "fsa_medical": "Medical FSA", "hsa_post": "HSA (post-tax)", "hsa_pre": "HSA (pre-tax)",
	"s125_dental": "Dental (section 125)", "s125_medical": "Medical (section 125)", "s125_vision": "Vision (section 125)", "simple": "SIMPLE plan", "simple_ira": "SIMPLE IRA",
}

var benefitFrequencies = []string{"every_paycheck", "monthly", "one_time"}

// retirement reports whether benefit type t is a retirement plan (the
// only kind with catch-up contributions).
func retirement(t string) bool {
	switch t {
	case "401k", "401k_roth", "401k_loan", "403b", "403b_roth", "457", "457_roth", "simple", "simple_ira":
		return true
	}
	return false
}

func hsa(t string) bool { return t == "hsa_pre" || t == "hsa_post" }

// Operation support values (the SDK's OperationSupport).
const (
	supported           = "supported"
	notSupportedByFinch = "not_supported_by_finch"
	notByProvider       = "not_supported_by_provider"
)

// benefitFeatures is what a provider supports for one benefit type: the
// SupportedBenefit of /employer/benefits/meta and the operations of
// benefits_support.
type benefitFeatures struct {
	Type                string
	Description         string
	EmployeeDeduction   []string // fixed, percent
	CompanyContribution []string // fixed, percent, tiered
	Frequencies         []string
	AnnualMaximum       bool
	CatchUp             bool
	HSALimit            bool

	// Operations on company benefits (create covers register) and on
	// individual enrollments (create and update are enroll, delete is
	// unenroll).
	CompanyCreate, CompanyUpdate, CompanyDelete, CompanyRead             string
	IndividualCreate, IndividualUpdate, IndividualDelete, IndividualRead string
}

// providerProfile is a provider's deductions support, compact: the types
// it supports and what it allows for retirement and other types.
type providerProfile struct {
	types                  []string
	retireEE, retireER     []string // employee deduction, company contribution kinds for retirement types
	otherEE, otherER       []string // the same for the other types
	frequencies            []string
	annualMaximum, catchUp bool
	companyUpdate          string // "" = supported
	individualDelete       string // "" = supported
	maxDescription         int    // 0 = no limit of its own
}

var (
	allBut = func(skip ...string) []string {
		var out []string
		for _, t := range benefitTypes {
			if !slices.Contains(skip, t) {
				out = append(out, t)
			}
		}
		return out
	}
	fixed        = []string{"fixed"}
	percent      = []string{"percent"}
	fixedPercent = []string{"fixed", "percent"}
	allKinds     = []string{"fixed", "percent", "tiered"}
	none         = []string{}
)

// providerProfiles differ on purpose, so that an app can see what
// varies between providers: the types, the contribution kinds, the
// frequencies, annual maximums, catch-up and the operations. Finch
// publishes the real matrices only per account (GET /providers); these
// are plausible, not copies.
var providerProfiles = map[string]providerProfile{
	"gusto": {types: allBut("457_roth", "simple"), retireEE: fixedPercent, retireER: fixedPercent, otherEE: fixed, otherER: fixed,
		frequencies: []string{"every_paycheck", "one_time"}, annualMaximum: true, catchUp: true},
	"adp_workforce_now": {types: benefitTypes, retireEE: fixedPercent, retireER: allKinds, otherEE: fixedPercent, otherER: fixed,
		frequencies: benefitFrequencies, annualMaximum: true, catchUp: true},
	"bamboo_hr": {types: []string{"401k", "401k_roth", "s125_medical", "s125_dental", "s125_vision", "hsa_pre", "fsa_medical"},
		retireEE: fixedPercent, retireER: none, otherEE: fixed, otherER: none, frequencies: []string{"every_paycheck"}},
	"paychex_flex": {types: []string{"401k", "401k_roth", "401k_loan", "simple", "simple_ira", "s125_medical", "s125_dental", "s125_vision", "hsa_pre", "hsa_post", "fsa_medical", "fsa_dependent_care", "commuter", "custom_pre_tax", "custom_post_tax"},
		retireEE: fixedPercent, retireER: allKinds, otherEE: fixed, otherER: fixed, frequencies: []string{"every_paycheck", "one_time"}, annualMaximum: true, catchUp: true},
	"rippling": {types: allBut("457_roth", "simple"), retireEE: fixedPercent, retireER: allKinds, otherEE: fixedPercent, otherER: fixedPercent,
		frequencies: []string{"every_paycheck", "monthly"}, annualMaximum: true, catchUp: true},
	"justworks": {types: []string{"401k", "401k_roth", "hsa_pre", "commuter", "custom_pre_tax", "custom_post_tax"},
		retireEE: fixedPercent, retireER: none, otherEE: fixed, otherER: none, frequencies: []string{"every_paycheck"}, catchUp: true,
		companyUpdate: notByProvider, maxDescription: 30},
	"paylocity": {types: []string{"401k", "401k_roth", "401k_loan", "403b", "403b_roth", "457", "s125_medical", "s125_dental", "s125_vision", "hsa_pre", "hsa_post", "fsa_medical", "fsa_dependent_care", "custom_pre_tax", "custom_post_tax"},
		retireEE: fixedPercent, retireER: fixedPercent, otherEE: fixed, otherER: fixed, frequencies: []string{"every_paycheck", "one_time"}, annualMaximum: true, catchUp: true},
	"workday": {types: []string{"401k", "401k_roth", "403b", "s125_medical", "s125_dental", "s125_vision", "hsa_pre", "fsa_medical"},
		retireEE: percent, retireER: []string{"percent", "tiered"}, otherEE: fixed, otherER: fixed, frequencies: []string{"every_paycheck"},
		individualDelete: notSupportedByFinch},
}

// benefitFeaturesOf is what provider supports for benefit type t, or nil.
func benefitFeaturesOf(provider, t string) *benefitFeatures {
	p, ok := providerProfiles[provider]
	if !ok || !slices.Contains(p.types, t) {
		return nil
	}
	f := &benefitFeatures{
		Type: t, Description: benefitDescriptions[t], Frequencies: p.frequencies, AnnualMaximum: p.annualMaximum,
		CatchUp: p.catchUp && retirement(t), HSALimit: hsa(t),
		EmployeeDeduction: p.otherEE, CompanyContribution: p.otherER,
		CompanyCreate: supported, CompanyUpdate: supported, CompanyDelete: notSupportedByFinch, CompanyRead: supported,
		IndividualCreate: supported, IndividualUpdate: supported, IndividualDelete: supported, IndividualRead: supported,
	}
	if retirement(t) {
		f.EmployeeDeduction, f.CompanyContribution = p.retireEE, p.retireER
	}
	if t == "401k_loan" {
		f.CompanyContribution = none // an employer does not match a loan repayment
	}
	if p.companyUpdate != "" {
		f.CompanyUpdate = p.companyUpdate
	}
	if p.individualDelete != "" {
		f.IndividualDelete = p.individualDelete
	}
	return f
}

// supportedBenefit is f as /employer/benefits/meta gives it (the SDK's
// SupportedBenefit, plus the type its older spec carried).
func (f *benefitFeatures) supportedBenefit() map[string]any {
	var limit any
	if f.HSALimit {
		limit = []string{"individual", "family"}
	}
	return map[string]any{
		"type": f.Type, "description": f.Description, "annual_maximum": f.AnnualMaximum, "catch_up": f.CatchUp,
		"employee_deduction": f.EmployeeDeduction, "company_contribution": f.CompanyContribution,
		"frequencies": f.Frequencies, "hsa_contribution_limit": limit,
	}
}

// benefitsSupport is provider's benefits_support: all 19 benefit types,
// null for the unsupported ones.
func benefitsSupport(provider string) map[string]any {
	out := make(map[string]any, len(benefitTypes))
	for _, t := range benefitTypes {
		f := benefitFeaturesOf(provider, t)
		if f == nil {
			out[t] = nil
			continue
		}
		features := f.supportedBenefit()
		delete(features, "type")
		out[t] = map[string]any{
			"supported_features": features,
			"supported_operations": map[string]any{
				"company_benefits":    map[string]string{"create": f.CompanyCreate, "update": f.CompanyUpdate, "delete": f.CompanyDelete, "read": f.CompanyRead},
				"individual_benefits": map[string]string{"create": f.IndividualCreate, "update": f.IndividualUpdate, "delete": f.IndividualDelete, "read": f.IndividualRead},
			},
		}
	}
	return out
}
