package finch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/finchconnect/finchconnect"
)

// Finch's sandbox API (https://developer.tryfinch.com/api-reference/sandbox)
// creates and shapes Finch Sandbox connections; it answers only at a
// sandbox. Every call is a write and is retried only when it certainly did
// not reach Finch, except the configuration read.

// SandboxConnectionRequest creates a sandbox connection with
// [Client.SandboxCreateConnection].
type SandboxConnectionRequest struct {
	ProviderID         string   `json:"provider_id"`                   // required, e.g. "gusto"
	AuthenticationType string   `json:"authentication_type,omitempty"` // credential (default), api_token, oauth, assisted
	EmployeeSize       int      `json:"employee_size,omitempty"`
	Products           []string `json:"products,omitempty"`
}

// SandboxAccountRequest adds an account to a sandbox company with
// [Client.SandboxCreateAccount].
type SandboxAccountRequest struct {
	CompanyID          string   `json:"company_id"`  // required
	ProviderID         string   `json:"provider_id"` // required
	AuthenticationType string   `json:"authentication_type,omitempty"`
	Products           []string `json:"products,omitempty"`
}

// SandboxConnection is a sandbox connection. AccessToken is set only when
// the connection was just created.
type SandboxConnection struct {
	AccessToken        finchconnect.Secret `json:"access_token,omitzero"`
	TokenType          string              `json:"token_type,omitempty"`
	AccountID          string              `json:"account_id"`
	AuthenticationType string              `json:"authentication_type"`
	CompanyID          string              `json:"company_id,omitempty"`
	ConnectionID       string              `json:"connection_id"`
	EntityID           string              `json:"entity_id,omitempty"`
	Products           []string            `json:"products"`
	ProviderID         string              `json:"provider_id"`
}

func (c *Client) basicWrite(ctx context.Context, what, path string, body any) (*SandboxConnection, error) {
	if c.ClientID == "" || c.ClientSecret.IsZero() {
		return nil, fmt.Errorf("finch: %s: ClientID and ClientSecret are required", what)
	}
	var out SandboxConnection
	r := &request{method: "POST", path: path, body: encode(body), auth: authBasic, policy: retryUnsent}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	if out.AccessToken.IsZero() {
		return nil, fmt.Errorf("finch: %s: the response has no access_token", what)
	}
	return &out, nil
}

// SandboxCreateConnection creates a Finch Sandbox connection and returns
// its token, with POST /sandbox/connections, authenticated with the client
// id and secret.
func (c *Client) SandboxCreateConnection(ctx context.Context, req SandboxConnectionRequest) (*SandboxConnection, error) {
	if req.ProviderID == "" {
		return nil, errors.New("finch: sandbox create connection: ProviderID is required")
	}
	return c.basicWrite(ctx, "sandbox create connection", "/sandbox/connections", req)
}

// SandboxCreateAccount adds a connection (an account) to an existing
// sandbox company, with POST /sandbox/connections/accounts.
func (c *Client) SandboxCreateAccount(ctx context.Context, req SandboxAccountRequest) (*SandboxConnection, error) {
	if req.CompanyID == "" || req.ProviderID == "" {
		return nil, errors.New("finch: sandbox create account: CompanyID and ProviderID are required")
	}
	return c.basicWrite(ctx, "sandbox create account", "/sandbox/connections/accounts", req)
}

// SandboxUpdateAccount sets the token's connection status (connected,
// reauth, pending, …; "" leaves it), with PUT /sandbox/connections/accounts.
func (c *Client) SandboxUpdateAccount(ctx context.Context, token finchconnect.Secret, connectionStatus string) (*SandboxConnection, error) {
	body := struct {
		ConnectionStatus string `json:"connection_status,omitempty"`
	}{connectionStatus}
	return send1[SandboxConnection](ctx, c, token, "PUT", "/sandbox/connections/accounts", nil, body)
}

// SandboxUpdateCompany replaces the connection's company data, with
// PUT /sandbox/company, and returns it as GET /employer/company now will.
// company.ID is not sent.
func (c *Client) SandboxUpdateCompany(ctx context.Context, token finchconnect.Secret, company Company) (*Company, error) {
	body := struct {
		Company
		ID string `json:"id,omitempty"` // shadows Company.ID: never sent
	}{Company: company}
	return send1[Company](ctx, c, token, "PUT", "/sandbox/company", nil, body)
}

// SandboxIndividual is personal data to write with
// [Client.SandboxUpdateIndividual] or [Client.SandboxAddDirectory]. Empty
// fields are not sent (Finch keeps their values).
type SandboxIndividual struct {
	FirstName     string    `json:"first_name,omitempty"`
	MiddleName    string    `json:"middle_name,omitempty"`
	LastName      string    `json:"last_name,omitempty"`
	PreferredName string    `json:"preferred_name,omitempty"`
	DOB           string    `json:"dob,omitempty"`
	Gender        string    `json:"gender,omitempty"`
	Ethnicity     string    `json:"ethnicity,omitempty"`
	MaritalStatus string    `json:"marital_status,omitempty"` // not every sandbox field is validated
	Emails        []Contact `json:"emails,omitempty"`
	PhoneNumbers  []Contact `json:"phone_numbers,omitempty"`
	Residence     *Location `json:"residence,omitempty"`
	EncryptedSSN  string    `json:"encrypted_ssn,omitempty"`
	// SSN is sent revealed (Finch takes it in the body); it stays a
	// Secret everywhere else.
	SSN finchconnect.Secret `json:"-"`
}

// MarshalJSON sends the SSN, which a Secret alone would redact.
func (s SandboxIndividual) MarshalJSON() ([]byte, error) {
	type plain SandboxIndividual
	return json.Marshal(struct {
		plain
		SSN string `json:"ssn,omitempty"`
	}{plain(s), s.SSN.Reveal()})
}

// employmentBody is an Employment without its id, which Finch assigns.
type employmentBody struct {
	Employment
	ID string `json:"id,omitempty"`
}

// SandboxUpdateIndividual updates an individual's personal data, with
// PUT /sandbox/individual/{individual_id}, and returns the result.
func (c *Client) SandboxUpdateIndividual(ctx context.Context, token finchconnect.Secret, individualID string, ind SandboxIndividual) (*IndividualDetail, error) {
	if err := checkID("individual id", individualID); err != nil {
		return nil, err
	}
	return send1[IndividualDetail](ctx, c, token, "PUT", "/sandbox/individual/"+individualID, nil, ind)
}

// SandboxUpdateEmployment updates an individual's employment, with
// PUT /sandbox/employment/{individual_id}; emp.ID is not sent.
func (c *Client) SandboxUpdateEmployment(ctx context.Context, token finchconnect.Secret, individualID string, emp Employment) (*Employment, error) {
	if err := checkID("individual id", individualID); err != nil {
		return nil, err
	}
	return send1[Employment](ctx, c, token, "PUT", "/sandbox/employment/"+individualID, nil, employmentBody{Employment: emp})
}

// SandboxPerson is one new individual for [Client.SandboxAddDirectory]:
// personal and employment fields, sent as one object.
type SandboxPerson struct {
	Individual SandboxIndividual
	Employment Employment // its ID is not sent
}

// MarshalJSON merges the two halves; a field both have (the names) is
// taken from Individual.
func (p SandboxPerson) MarshalJSON() ([]byte, error) {
	var emp, ind map[string]json.RawMessage
	for _, x := range []struct {
		v   any
		dst *map[string]json.RawMessage
	}{{employmentBody{Employment: p.Employment}, &emp}, {p.Individual, &ind}} {
		b, err := json.Marshal(x.v)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, x.dst); err != nil {
			return nil, err
		}
	}
	for k, v := range ind {
		emp[k] = v
	}
	return json.Marshal(emp)
}

// SandboxAddDirectory adds individuals to the connection's directory, with
// POST /sandbox/directory, and returns their new ids in order.
func (c *Client) SandboxAddDirectory(ctx context.Context, token finchconnect.Secret, people []SandboxPerson) ([]string, error) {
	if len(people) == 0 {
		return nil, errors.New("finch: sandbox add directory: no individuals")
	}
	out, err := send1[[]struct {
		ID string `json:"id"`
	}](ctx, c, token, "POST", "/sandbox/directory", nil, people)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(*out))
	for i, p := range *out {
		ids[i] = p.ID
	}
	return ids, nil
}

// SandboxPaymentRequest creates a payment with [Client.SandboxCreatePayment].
// Empty dates default to the two weeks ending today (the sandbox's clock).
type SandboxPaymentRequest struct {
	StartDate     string                `json:"start_date,omitempty"`
	EndDate       string                `json:"end_date,omitempty"`
	PayStatements []SandboxPayStatement `json:"pay_statements,omitempty"`
}

// SandboxPayStatement is one statement of a new payment. Amounts are in
// cents.
type SandboxPayStatement struct {
	IndividualID          string                 `json:"individual_id"`
	Type                  string                 `json:"type,omitempty"`           // regular_payroll, off_cycle_payroll, one_time_payment
	PaymentMethod         string                 `json:"payment_method,omitempty"` // check, direct_deposit, other
	TotalHours            *float64               `json:"total_hours,omitempty"`
	GrossPay              *int64                 `json:"gross_pay,omitempty"`
	NetPay                *int64                 `json:"net_pay,omitempty"`
	Earnings              []Earning              `json:"earnings,omitempty"`
	EmployeeDeductions    []EmployeeDeduction    `json:"employee_deductions,omitempty"`
	EmployerContributions []EmployerContribution `json:"employer_contributions,omitempty"`
	Taxes                 []Tax                  `json:"taxes,omitempty"`
}

// SandboxPayment is a created payment.
type SandboxPayment struct {
	PaymentID string `json:"payment_id"`
	PayDate   string `json:"pay_date"`
}

// SandboxCreatePayment adds a payment (with its pay statements), with
// POST /sandbox/payment.
func (c *Client) SandboxCreatePayment(ctx context.Context, token finchconnect.Secret, req SandboxPaymentRequest) (*SandboxPayment, error) {
	return send1[SandboxPayment](ctx, c, token, "POST", "/sandbox/payment", nil, req)
}

// SandboxJob is a job started by [Client.SandboxCreateJob]. JobID is
// empty when the refresh quota is spent.
type SandboxJob struct {
	JobID              string `json:"job_id,omitempty"`
	JobURL             string `json:"job_url,omitempty"`
	AllowedRefreshes   int    `json:"allowed_refreshes"`
	RemainingRefreshes int    `json:"remaining_refreshes"`
}

// SandboxCreateJob starts a data_sync_all job on a sandbox connection,
// with POST /sandbox/jobs.
func (c *Client) SandboxCreateJob(ctx context.Context, token finchconnect.Secret) (*SandboxJob, error) {
	body := struct {
		Type string `json:"type"`
	}{"data_sync_all"}
	return send1[SandboxJob](ctx, c, token, "POST", "/sandbox/jobs", nil, body)
}

// SandboxJobConfiguration says how a sandbox job type ends.
type SandboxJobConfiguration struct {
	Type             string `json:"type"`              // data_sync_all
	CompletionStatus string `json:"completion_status"` // complete, reauth_error, permissions_error, error
}

// SandboxJobConfigurations returns how each job type will end, with
// GET /sandbox/jobs/configuration.
func (c *Client) SandboxJobConfigurations(ctx context.Context, token finchconnect.Secret) ([]SandboxJobConfiguration, error) {
	out, err := get[[]SandboxJobConfiguration](ctx, c, token, "/sandbox/jobs/configuration", nil)
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// SandboxSetJobConfiguration sets how jobs of cfg.Type end, with
// PUT /sandbox/jobs/configuration.
func (c *Client) SandboxSetJobConfiguration(ctx context.Context, token finchconnect.Secret, cfg SandboxJobConfiguration) (*SandboxJobConfiguration, error) {
	if cfg.Type == "" || cfg.CompletionStatus == "" {
		return nil, errors.New("finch: sandbox set job configuration: Type and CompletionStatus are required")
	}
	return send1[SandboxJobConfiguration](ctx, c, token, "PUT", "/sandbox/jobs/configuration", nil, cfg)
}
