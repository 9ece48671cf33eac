package sandbox

import "time"

// state is everything the sandbox remembers; it is what DataFile holds.
type state struct {
	Sessions    map[string]*session    `json:"sessions"`
	Codes       map[string]*code       `json:"codes"`
	Tokens      map[string]*token      `json:"tokens"`
	Connections map[string]*connection `json:"connections"`
}

func newState() *state {
	st := &state{}
	st.fill()
	return st
}

func (st *state) fill() {
	if st.Sessions == nil {
		st.Sessions = map[string]*session{}
	}
	if st.Codes == nil {
		st.Codes = map[string]*code{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*token{}
	}
	if st.Connections == nil {
		st.Connections = map[string]*connection{}
	}
}

// session is a Connect session, created by POST /connect/sessions (or
// reauthenticate) or implied by legacy authorize parameters.
type session struct {
	ID            string    `json:"id"`
	CustomerID    string    `json:"customer_id"`
	CustomerName  string    `json:"customer_name"`
	CustomerEmail string    `json:"customer_email,omitempty"`
	Products      []string  `json:"products"`
	RedirectURI   string    `json:"redirect_uri,omitempty"`
	ConnectionID  string    `json:"connection_id,omitempty"` // re-authentication
	Provider      string    `json:"provider,omitempty"`      // integration.provider: skips the picker
	State         string    `json:"state,omitempty"`
	Expires       time.Time `json:"expires"`
}

// code is an authorization code issued by the Connect page.
type code struct {
	ConnectionID string    `json:"connection_id"`
	RedirectURI  string    `json:"redirect_uri,omitempty"` // "" for embedded-flow codes
	Expires      time.Time `json:"expires"`
	Used         bool      `json:"used"`
	Minted       []string  `json:"minted,omitempty"` // tokens it produced, for revoke-on-reuse
}

// token is an access token.
type token struct {
	ConnectionID string    `json:"connection_id"`
	ID           string    `json:"id"`
	Revoked      bool      `json:"revoked"`
	Created      time.Time `json:"created"`
}

// connection is an employer's connection with its data seed.
type connection struct {
	ID            string           `json:"id"`
	CustomerID    string           `json:"customer_id,omitempty"`
	CustomerName  string           `json:"customer_name,omitempty"`
	CustomerEmail string           `json:"customer_email,omitempty"`
	ProviderID    string           `json:"provider_id"`
	Products      []string         `json:"products"`
	Status        string           `json:"status"`
	Scenario      string           `json:"scenario"`
	Seed          uint64           `json:"seed"`
	Employees     int              `json:"employees"`
	Entities      []entity         `json:"entities"`
	AccountID     string           `json:"account_id"`
	CompanyID     string           `json:"company_id"`
	Created       time.Time        `json:"created"`
	DataCalls     int              `json:"data_calls"`
	Company       map[string]any   `json:"company,omitempty"` // set by PUT /sandbox/company
	Extra         []map[string]any `json:"extra,omitempty"`   // added by POST /sandbox/directory
	Username      string           `json:"username,omitempty"`
}

type entity struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func (c *connection) hasProduct(p string) bool {
	for _, q := range c.Products {
		if q == p || (p == "benefits" && q == "deduction") {
			return true
		}
	}
	return false
}
