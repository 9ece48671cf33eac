package sandbox

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// handleSandboxConnection is POST /sandbox/connections (Basic): a
// connection and a token without a Connect round trip.
func (s *Server) handleSandboxConnection(w http.ResponseWriter, r *http.Request) {
	if !s.basicAuth(w, r) {
		return
	}
	var req struct {
		ProviderID         string   `json:"provider_id"`
		AuthenticationType string   `json:"authentication_type"`
		Products           []string `json:"products"`
		EmployeeSize       int      `json:"employee_size"`
	}
	if err := decodeBody(r, &req); err != nil || providerName(req.ProviderID) == "" {
		badRequest(w, "provider_id must be one of GET /providers.")
		return
	}
	if problems := sandboxProductProblems(req.Products, req.AuthenticationType); problems != nil { // sb-items
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	if len(req.Products) == 0 {
		req.Products = []string{"company", "directory", "individual", "employment"}
	}
	if req.EmployeeSize <= 0 {
		req.EmployeeSize = 20
	}
	if req.AuthenticationType == "" {
		req.AuthenticationType = "credential"
	}
	if !validAuthType(req.AuthenticationType) {
		badRequest(w, "authentication_type must be assisted, credential, api_token or oauth.")
		return
	}
	// Finch Sandbox connections hold Finch-generated data: their
	// connection_type is "finch" (finch-api.md §6).
	sess := &session{Products: req.Products, Sandbox: "finch", AuthMethod: req.AuthenticationType}
	tok, conn, entityID := s.mintSandboxToken(sess, req.ProviderID, req.EmployeeSize, s.publicURL(r))
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "connection_id": conn.ID, "entity_id": entityID,
		"account_id": conn.AccountID, "company_id": conn.CompanyID, "provider_id": conn.ProviderID,
		"authentication_type": req.AuthenticationType, "products": conn.Products,
	})
}

// mintSandboxToken signs sess in to provider, consumes the code that
// makes and returns a token for the new connection, as
// POST /sandbox/connections gives one without a Connect round trip. Both
// happen under one lock, so nothing (a prune, say) comes between them.
func (s *Server) mintSandboxToken(sess *session, provider string, employees int, base string) (string, *connection, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	value := s.issueCodeLocked(sess, provider, "authorized_simple")
	c := s.st.Codes[digest(value)]
	c.Used = true
	conn := s.st.Connections[c.ConnectionID]
	conn.Employees = min(employees, 10000)
	s.initialSync(conn, base)
	tok := s.random(32)
	s.st.Tokens[digest(tok)] = &token{ConnectionID: conn.ID, ID: s.id(), Created: s.now(), ClientID: s.opts.ClientID}
	entityID := ""
	if len(conn.Entities) > 0 {
		entityID = conn.Entities[0].ID
	}
	s.dirty = true
	return tok, conn, entityID
}

// handleSandboxAccount is PUT /sandbox/connections/accounts: it drives the
// connection's status (e.g. reauth).
func (s *Server) handleSandboxAccount(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	var req struct {
		ConnectionStatus string `json:"connection_status"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a JSON object.")
		return
	}
	if req.ConnectionStatus != "" {
		if err := s.SetConnectionStatus(c.ID, req.ConnectionStatus); err != nil {
			badRequest(w, "connection_status is not a connection status.")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entityID := ""
	if len(c.Entities) > 0 {
		entityID = c.Entities[0].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account_id": c.AccountID, "authentication_type": c.authType(), "company_id": c.CompanyID,
		"connection_id": c.ID, "entity_id": entityID, "products": c.Products, "provider_id": c.ProviderID,
	})
}

// handleSandboxCompany is PUT /sandbox/company: the connection's company
// becomes the given object.
func (s *Server) handleSandboxCompany(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil || body == nil {
		badRequest(w, "The body must be a company object.")
		return
	}
	delete(body, "id")
	writeJSON(w, http.StatusOK, s.setCompany(c, body))
}

func (s *Server) setCompany(c *connection, body map[string]any) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Company = body
	s.emit(c, "company.updated", nil)
	s.dirty = true
	return c.company(0)
}

// handleSandboxDirectory is POST /sandbox/directory: a JSON array of
// individuals to add.
func (s *Server) handleSandboxDirectory(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	// Every element must be an object: decoding into []map[string]any
	// turns a null element into a nil map, which cannot take an id. The
	// body is checked whole before anything is added, so a bad element
	// adds nobody.
	var people []map[string]any
	if err := decodeBody(r, &people); err != nil || people == nil || slices.ContainsFunc(people, isNil) {
		badRequest(w, "The body must be a JSON array of individual objects.")
		return
	}
	s.addPeople(c, people)
	writeJSON(w, http.StatusOK, people)
}

func isNil(p map[string]any) bool { return p == nil }

func (s *Server) addPeople(c *connection, people []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range people {
		p["id"] = s.id()
		c.Extra = append(c.Extra, p)
		s.emit(c, "directory.created", map[string]any{"individual_id": p["id"]})
	}
	s.dirty = true
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// handleAddFault is POST /_sandbox/faults with a Fault; durations are Go
// strings ("2s").
func (s *Server) handleAddFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Route      string `json:"route"`
		Status     int    `json:"status"`
		RetryAfter string `json:"retry_after"`
		Latency    string `json:"latency"`
		Malformed  bool   `json:"malformed"`
		Count      int    `json:"count"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a fault object.")
		return
	}
	// A status must be an HTTP error status (net/http panics on one
	// outside 100-999, and a 2xx or 3xx "fault" would not fail), and a
	// negative count or duration means nothing.
	if req.Status != 0 && (req.Status < 400 || req.Status > 599) {
		badRequest(w, "status must be an HTTP error status (400-599), or 0 for none.")
		return
	}
	if req.Count < 0 {
		badRequest(w, "count must not be negative (0: until cleared).")
		return
	}
	f := Fault{Route: req.Route, Status: req.Status, Malformed: req.Malformed, Count: req.Count}
	for _, d := range []struct {
		text string
		dst  *time.Duration
	}{{req.RetryAfter, &f.RetryAfter}, {req.Latency, &f.Latency}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v < 0 {
			badRequest(w, "retry_after and latency are non-negative durations such as \"2s\".")
			return
		}
		*d.dst = v
	}
	s.InjectFault(f)
	writeJSON(w, http.StatusCreated, map[string]string{"status": "ok"})
}

func (s *Server) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleClock is POST /_sandbox/clock {"advance":"11m"}.
func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Advance string `json:"advance"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, `The body must be {"advance": "11m"}.`)
		return
	}
	d, err := time.ParseDuration(req.Advance)
	if err != nil || d < 0 {
		badRequest(w, "advance must be a non-negative duration such as \"11m\".")
		return
	}
	if !s.advance(d) {
		badRequest(w, "The clock cannot advance that far: its total advance is at most about 292 years (Go's time.Duration).")
		return
	}
	s.SettleJobs() // jobs now due complete, and send their webhooks, at once
	writeJSON(w, http.StatusOK, map[string]string{"now": s.now().UTC().Format(time.RFC3339)})
}
