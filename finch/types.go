package finch

import (
	"encoding/json"

	"github.com/finchconnect/finchconnect"
)

// The wire structs follow Finch's shapes
// (https://developer.tryfinch.com/api-reference and the TypeScript SDK).
// Finch sends null for almost any field it lacks. A null string decodes to
// "", which says the same; a nullable number or boolean is a pointer,
// because nil ("unknown") and 0 or false differ; a nullable object is a
// pointer; a null list is a nil slice. Dates stay "YYYY-MM-DD" strings, as
// Finch sends them. Money is in cents. Open-ended objects stay raw JSON.

// Company is an employer, from GET /employer/company.
type Company struct {
	ID                 string         `json:"id"`
	LegalName          string         `json:"legal_name,omitempty"`
	EIN                string         `json:"ein,omitempty"`
	Entity             *CompanyEntity `json:"entity,omitempty"`
	PrimaryEmail       string         `json:"primary_email,omitempty"`
	PrimaryPhoneNumber string         `json:"primary_phone_number,omitempty"` // E.164, maybe with " x<ext>"
	Departments        []Department   `json:"departments,omitempty"`
	Locations          []Location     `json:"locations,omitempty"`
	Accounts           []Account      `json:"accounts,omitempty"`
}

// CompanyEntity is a company's legal form.
type CompanyEntity struct {
	Type    string `json:"type,omitempty"`    // llc, lp, corporation, sole_proprietor, non_profit, partnership, cooperative
	Subtype string `json:"subtype,omitempty"` // s_corporation, c_corporation, b_corporation
}

// Department is a department's name and, in a company's list, its parent.
type Department struct {
	Name   string      `json:"name,omitempty"`
	Parent *Department `json:"parent,omitempty"` // only Name is set on a parent
}

// Location is a postal address.
type Location struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country,omitempty"` // ISO 3166-1 alpha-2
	Name       string `json:"name,omitempty"`
	SourceID   string `json:"source_id,omitempty"`
}

// Account is a company bank account.
type Account struct {
	AccountName     string `json:"account_name,omitempty"`
	AccountNumber   string `json:"account_number,omitempty"`
	AccountType     string `json:"account_type,omitempty"` // checking or savings
	InstitutionName string `json:"institution_name,omitempty"`
	RoutingNumber   string `json:"routing_number,omitempty"`
}

// Manager refers to another individual.
type Manager struct {
	ID string `json:"id"`
}

// Paging is an offset page's position. Count, the total, is 0 when Finch
// leaves it out.
type Paging struct {
	Count  int `json:"count,omitempty"`
	Offset int `json:"offset"`
}

// Individual is one entry of the company directory.
type Individual struct {
	ID         string      `json:"id"`
	FirstName  string      `json:"first_name,omitempty"`
	MiddleName string      `json:"middle_name,omitempty"`
	LastName   string      `json:"last_name,omitempty"`
	IsActive   *bool       `json:"is_active,omitempty"`
	Department *Department `json:"department,omitempty"`
	Manager    *Manager    `json:"manager,omitempty"`
}

// DirectoryPage is one page of GET /employer/directory.
type DirectoryPage struct {
	Paging      Paging       `json:"paging"`
	Individuals []Individual `json:"individuals"`
}

// IndividualDetail is an individual's personal data, from
// POST /employer/individual.
type IndividualDetail struct {
	ID            string    `json:"id"`
	FirstName     string    `json:"first_name,omitempty"`
	MiddleName    string    `json:"middle_name,omitempty"`
	LastName      string    `json:"last_name,omitempty"`
	PreferredName string    `json:"preferred_name,omitempty"`
	DOB           string    `json:"dob,omitempty"`
	Gender        string    `json:"gender,omitempty"`
	Ethnicity     string    `json:"ethnicity,omitempty"`
	MaritalStatus string    `json:"marital_status,omitempty"`
	PhoneNumbers  []Contact `json:"phone_numbers,omitempty"`
	Emails        []Contact `json:"emails,omitempty"`
	Residence     *Location `json:"residence,omitempty"`
	// SSN is set only with the ssn product and [IndividualOptions.IncludeSSN].
	// It is a Secret so that it never reaches a log line or a JSON
	// response by accident; Reveal it where it is truly needed.
	SSN          finchconnect.Secret `json:"ssn,omitzero"`
	EncryptedSSN string              `json:"encrypted_ssn,omitempty"`
}

// Contact is a phone number or an email address.
type Contact struct {
	Data string `json:"data,omitempty"`
	Type string `json:"type,omitempty"` // work or personal
}

// Employment is an individual's job, from POST /employer/employment.
type Employment struct {
	ID                        string          `json:"id"`
	FirstName                 string          `json:"first_name,omitempty"`
	MiddleName                string          `json:"middle_name,omitempty"`
	LastName                  string          `json:"last_name,omitempty"`
	Title                     string          `json:"title,omitempty"`
	StartDate                 string          `json:"start_date,omitempty"`
	EndDate                   string          `json:"end_date,omitempty"`
	LatestRehireDate          string          `json:"latest_rehire_date,omitempty"`
	IsActive                  *bool           `json:"is_active,omitempty"`
	EmploymentStatus          string          `json:"employment_status,omitempty"` // active, deceased, leave, onboarding, prehire, retired, terminated
	Employment                *EmploymentType `json:"employment,omitempty"`
	Department                *Department     `json:"department,omitempty"`
	Manager                   *Manager        `json:"manager,omitempty"`
	Location                  *Location       `json:"location,omitempty"`
	FLSAStatus                string          `json:"flsa_status,omitempty"` // exempt, non_exempt, unknown
	ClassCode                 string          `json:"class_code,omitempty"`
	UnionCode                 string          `json:"union_code,omitempty"`
	UnionLocal                string          `json:"union_local,omitempty"`
	HighlyCompensatedEmployee *bool           `json:"highly_compensated_employee,omitempty"`
	KeyEmployee               *bool           `json:"key_employee,omitempty"`
	Income                    *Income         `json:"income,omitempty"`
	IncomeHistory             []Income        `json:"income_history,omitempty"`
	CustomFields              []CustomField   `json:"custom_fields,omitempty"`
	SourceID                  string          `json:"source_id,omitempty"`
	WorkID                    string          `json:"work_id,omitempty"` // deprecated
}

// EmploymentType says what kind of worker someone is.
type EmploymentType struct {
	Type    string `json:"type,omitempty"`    // employee or contractor
	Subtype string `json:"subtype,omitempty"` // full_time, intern, part_time, temp, seasonal, individual_contractor
}

// Income is a pay rate.
type Income struct {
	Amount        *int64 `json:"amount,omitempty"` // cents
	Currency      string `json:"currency,omitempty"`
	EffectiveDate string `json:"effective_date,omitempty"`
	Unit          string `json:"unit,omitempty"` // yearly, …, hourly, fixed
}

// CustomField is a provider-specific field; Value is any JSON.
type CustomField struct {
	Name  string          `json:"name,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Money is an amount in cents.
type Money struct {
	Amount   *int64 `json:"amount"`
	Currency string `json:"currency,omitempty"`
}

// Payment is one payroll run, from GET /employer/payment.
type Payment struct {
	ID             string     `json:"id"`
	PayDate        string     `json:"pay_date,omitempty"`
	DebitDate      string     `json:"debit_date,omitempty"`
	PayPeriod      *PayPeriod `json:"pay_period,omitempty"`
	CompanyDebit   *Money     `json:"company_debit,omitempty"`
	GrossPay       *Money     `json:"gross_pay,omitempty"`
	NetPay         *Money     `json:"net_pay,omitempty"`
	EmployerTaxes  *Money     `json:"employer_taxes,omitempty"`
	EmployeeTaxes  *Money     `json:"employee_taxes,omitempty"`
	IndividualIDs  []string   `json:"individual_ids,omitempty"`
	PayGroupIDs    []string   `json:"pay_group_ids,omitempty"`
	PayFrequencies []string   `json:"pay_frequencies,omitempty"`
}

// PayPeriod is the span a payment covers.
type PayPeriod struct {
	StartDate string `json:"start_date,omitempty"`
	EndDate   string `json:"end_date,omitempty"`
}

// PayStatement is one individual's statement within a payment.
type PayStatement struct {
	IndividualID          string                 `json:"individual_id"`
	Type                  string                 `json:"type,omitempty"`           // regular_payroll, off_cycle_payroll, one_time_payment
	PaymentMethod         string                 `json:"payment_method,omitempty"` // check, direct_deposit, other
	TotalHours            *float64               `json:"total_hours,omitempty"`
	GrossPay              *Money                 `json:"gross_pay,omitempty"`
	NetPay                *Money                 `json:"net_pay,omitempty"`
	Earnings              []Earning              `json:"earnings,omitempty"`
	EmployeeDeductions    []EmployeeDeduction    `json:"employee_deductions,omitempty"`
	EmployerContributions []EmployerContribution `json:"employer_contributions,omitempty"`
	Taxes                 []Tax                  `json:"taxes,omitempty"`
}

// Earning is one line of pay.
type Earning struct {
	Amount     *int64          `json:"amount,omitempty"` // cents
	Currency   string          `json:"currency,omitempty"`
	Hours      *float64        `json:"hours,omitempty"`
	Name       string          `json:"name,omitempty"`
	Type       string          `json:"type,omitempty"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// EmployeeDeduction is one deduction from pay.
type EmployeeDeduction struct {
	Amount     *int64          `json:"amount,omitempty"` // cents
	Currency   string          `json:"currency,omitempty"`
	Name       string          `json:"name,omitempty"`
	PreTax     *bool           `json:"pre_tax,omitempty"`
	Type       string          `json:"type,omitempty"` // a benefit type, e.g. 401k
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// EmployerContribution is one employer contribution on top of pay.
type EmployerContribution struct {
	Amount     *int64          `json:"amount,omitempty"` // cents
	Currency   string          `json:"currency,omitempty"`
	Name       string          `json:"name,omitempty"`
	Type       string          `json:"type,omitempty"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// Tax is one tax line.
type Tax struct {
	Amount     *int64          `json:"amount,omitempty"` // cents
	Currency   string          `json:"currency,omitempty"`
	Employer   *bool           `json:"employer,omitempty"`
	Name       string          `json:"name,omitempty"`
	Type       string          `json:"type,omitempty"` // state, federal, local, fica
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// Provider is a payroll or HR system Finch connects to, from GET /providers.
type Provider struct {
	ID                    string               `json:"id"`
	DisplayName           string               `json:"display_name"`
	Products              []string             `json:"products"`
	AuthenticationMethods []ProviderAuthMethod `json:"authentication_methods,omitempty"`
	Beta                  bool                 `json:"beta,omitempty"`
	Icon                  string               `json:"icon,omitempty"`
	Logo                  string               `json:"logo,omitempty"`
	Manual                bool                 `json:"manual,omitempty"` // deprecated
	MFARequired           bool                 `json:"mfa_required,omitempty"`
	PrimaryColor          string               `json:"primary_color,omitempty"`
}

// ProviderAuthMethod is one way to connect a provider, with the fields it
// supports (raw JSON: a tree of booleans mirroring every data model).
type ProviderAuthMethod struct {
	Type            string          `json:"type"`
	BenefitsSupport json.RawMessage `json:"benefits_support,omitempty"`
	SupportedFields json.RawMessage `json:"supported_fields,omitempty"`
}
