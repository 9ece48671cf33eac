package sandbox

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// sandboxAccount is an account POST /sandbox/connections/accounts added
// to an existing connection: another authentication of the same company
// and provider, with its own token and products.
type sandboxAccount struct {
	ID                 string    `json:"id"`
	AuthenticationType string    `json:"authentication_type"`
	Products           []string  `json:"products"`
	Created            time.Time `json:"created"`
}

// maxAccounts is how many accounts a Finch Sandbox connection holds, its
// first included (finch-api-more.md §6.2).
const maxAccounts = 3

var authenticationTypes = []string{"api_token", "assisted", "credential", "oauth"}

// orgProducts are the products the sandbox API grants when none are asked
// for: Finch's Organization products.
var orgProducts = []string{"company", "directory", "individual", "employment"}

// sandboxProductProblems checks the products and authentication_type of
// a sandbox API call: every unknown product is named in one problem.
func sandboxProductProblems(products []string, authType string) []string {
	var problems, unknown []string
	for _, p := range products {
		if !slices.Contains(productNames, p) && !slices.Contains(unknown, p) {
			unknown = append(unknown, p)
		}
	}
	if unknown != nil {
		problems = append(problems, "products: unknown products "+strings.Join(unknown, ", ")+" (Finch's products are "+strings.Join(productNames, ", ")+")")
	}
	if slices.Contains(products, "deduction") && slices.Contains(products, "benefits") {
		problems = append(problems, "deduction is a deprecated alias of benefits; ask for one of them")
	}
	if authType != "" && !slices.Contains(authenticationTypes, authType) {
		problems = append(problems, "authentication_type must be one of "+strings.Join(authenticationTypes, ", "))
	}
	return problems
}

// handleSandboxAccountCreate is POST /sandbox/connections/accounts
// (Basic): a new account, with a new token, on the existing connection of
// company_id and provider_id. The connection's products become those of
// all its accounts together, since the sandbox checks products per
// connection.
func (s *Server) handleSandboxAccountCreate(w http.ResponseWriter, r *http.Request) {
	if !s.basicAuth(w, r) {
		return
	}
	var req struct {
		CompanyID          string   `json:"company_id"`
		ProviderID         string   `json:"provider_id"`
		AuthenticationType string   `json:"authentication_type"`
		Products           []string `json:"products"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a JSON object with company_id and provider_id.")
		return
	}
	var problems []string
	if req.CompanyID == "" {
		problems = append(problems, "company_id is required")
	}
	switch {
	case req.ProviderID == "":
		problems = append(problems, "provider_id is required")
	case providerName(req.ProviderID) == "":
		problems = append(problems, "provider_id must be one of GET /providers")
	}
	problems = append(problems, sandboxProductProblems(req.Products, req.AuthenticationType)...)
	if problems != nil {
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	if len(req.Products) == 0 {
		req.Products = orgProducts
	}
	if req.AuthenticationType == "" {
		req.AuthenticationType = "credential"
	}
	s.addAccount(req.CompanyID, req.ProviderID, req.AuthenticationType, req.Products)(w)
}

// addAccount adds the account to the connection of company and provider.
func (s *Server) addAccount(company, provider, authType string, products []string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c *connection
	for _, x := range s.st.Connections {
		if x.CompanyID == company && x.ProviderID == provider {
			c = x
			break
		}
	}
	switch {
	case c == nil:
		return func(w http.ResponseWriter) {
			writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No connection of that company_id and provider_id.")
		}
	case c.Status == "disconnected":
		return replyBadRequest("That connection was disconnected, which is permanent; create a new connection instead.")
	case 1+len(c.Accounts) >= maxAccounts:
		return replyBadRequest("A sandbox connection holds at most 3 accounts.")
	}
	acct := sandboxAccount{ID: s.id(), AuthenticationType: authType, Products: slices.Clone(products), Created: s.now()}
	c.Accounts = append(c.Accounts, acct)
	for _, p := range products {
		if !slices.Contains(c.Products, p) {
			c.Products = append(slices.Clip(c.Products), p)
		}
	}
	tok := s.random(32)
	s.st.Tokens[digest(tok)] = &token{ConnectionID: c.ID, ID: s.id(), Created: s.now()}
	s.dirty = true
	entityID := ""
	if len(c.Entities) > 0 {
		entityID = c.Entities[0].ID
	}
	return replyJSON(http.StatusOK, map[string]any{
		"access_token": tok, "account_id": acct.ID, "authentication_type": acct.AuthenticationType,
		"company_id": c.CompanyID, "connection_id": c.ID, "entity_id": entityID,
		"products": acct.Products, "provider_id": c.ProviderID,
	})
}

// accountMethods are the authentication methods of the accounts
// POST /sandbox/connections/accounts added, for /introspect. The
// connection's Server mu must be held.
func (c *connection) accountMethods(status any) []any {
	var out []any
	for _, a := range c.Accounts {
		out = append(out, map[string]any{"type": a.AuthenticationType, "connection_status": status, "products": a.Products})
	}
	return out
}
